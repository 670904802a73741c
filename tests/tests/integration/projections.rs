//! The coordinator projections are a cache of the documents: after any
//! sequence of offline records, voids and syncs from several phones, the
//! rows the server keeps equal what `shared` derives from its stored
//! documents, and rebuilding them from scratch gives the same rows.

use std::collections::BTreeMap;

use proptest::prelude::*;

use aidsync_server::service::projections;
use aidsync_server::storage::{Db, ReportFilter, Scope};
use aidsync_shared::derive::summarize;
use aidsync_shared::model::{Condition, ShipmentDoc};
use aidsync_shared::projection::{Projection, project};
use aidsync_tests::harness::TestDb;
use aidsync_tests::phone::{Fault, Phone};

use crate::common::{FACILITY, SECOND_SHIPMENT, SHIPMENT, World, receipt, shipment_id};

/// One step of one phone.
#[derive(Debug, Clone)]
pub enum Op {
    /// Records offline: shipment, line, quantity, condition, serial.
    Record {
        phone: usize,
        shipment: usize,
        line: usize,
        quantity: u64,
        condition: usize,
        serial: Option<usize>,
    },
    /// Voids the n-th receipt this phone sees on a shipment.
    Void {
        phone: usize,
        shipment: usize,
        nth: usize,
    },
    /// Syncs; the answer may be lost on the way back.
    Sync { phone: usize, lose_response: bool },
}

const PHONES: usize = 3;
const SHIPMENTS: [&str; 2] = [SHIPMENT, SECOND_SHIPMENT];
const LINES: [&str; 2] = ["line-1", "line-2"];

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PHONES, 0..2usize, 0..2usize, 0..7u64, 0..4usize, proptest::option::of(0..7usize))
            .prop_map(|(phone, shipment, line, quantity, condition, serial)| Op::Record {
                phone, shipment, line, quantity, condition, serial,
            }),
        1 => (0..PHONES, 0..2usize, 0..8usize)
            .prop_map(|(phone, shipment, nth)| Op::Void { phone, shipment, nth }),
        2 => (0..PHONES, any::<bool>())
            .prop_map(|(phone, lose_response)| Op::Sync { phone, lose_response }),
    ]
}

/// Every projected row, per shipment, as the server stores them.
async fn stored_rows(db: &Db) -> BTreeMap<String, Projection> {
    let all = ReportFilter::default();
    let mut out = BTreeMap::new();
    for shipment in db.list_shipments(&Scope::All, &all).await.unwrap() {
        let filter = ReportFilter {
            shipment: Some(shipment.id.clone()),
            ..ReportFilter::default()
        };
        let p = Projection {
            lines: db.list_lines(&Scope::All, &filter).await.unwrap(),
            receipts: db.list_receipts(&Scope::All, &filter).await.unwrap(),
            discrepancies: db.list_discrepancies(&Scope::All, &filter).await.unwrap(),
            duplicates: db
                .list_duplicates(&Scope::All, &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.row)
                .collect(),
            conflicts: db.list_conflicts(&Scope::All, &filter).await.unwrap(),
            attachments: db.list_attachments(&Scope::All, &filter).await.unwrap(),
            shipment,
        };
        out.insert(p.shipment.id.clone(), p);
    }
    out
}

/// What `shared` derives from each stored document, in the order the
/// storage lists rows.
async fn derived_rows(db: &Db) -> BTreeMap<String, Projection> {
    let mut out = BTreeMap::new();
    for id in db.document_ids().await.unwrap() {
        let mut tx = db.begin_read().await.unwrap();
        let stored = tx.load_document(&id, false).await.unwrap().unwrap();
        let arrivals = tx.arrivals(&id).await.unwrap();
        tx.commit().await.unwrap();
        let doc = ShipmentDoc::from_automerge(stored.doc);
        let shipment = doc.read().unwrap();
        let origins = doc.receipt_origins();
        let mut p = project(&shipment, &summarize(&shipment), |r| {
            origins
                .get(r)
                .and_then(|h| arrivals.get(&h.to_string()))
                .map(|a| a.at)
        });
        p.receipts
            .sort_by(|a, b| (a.recorded_at, &a.receipt_id).cmp(&(b.recorded_at, &b.receipt_id)));
        p.discrepancies
            .sort_by(|a, b| (&a.line_id, &a.kind).cmp(&(&b.line_id, &b.kind)));
        p.duplicates.sort_by(|a, b| {
            (&a.line_id, &a.first, &a.second).cmp(&(&b.line_id, &b.first, &b.second))
        });
        out.insert(id, p);
    }
    out
}

/// Plays `ops` against a fresh server, then checks the projections;
/// returns the rows.
pub async fn projections_follow_the_documents(
    db: &TestDb,
    ops: Vec<Op>,
) -> BTreeMap<String, Projection> {
    let world = World::new(db).await;
    let mut phones: Vec<Phone> = Vec::new();
    for (i, user) in ["anna", "petro", "iryna"].into_iter().enumerate() {
        let mut phone = world.receiver(user, FACILITY).await;
        phone.sync_settled().await.unwrap();
        assert_eq!(
            phone.engine.shipment_ids().count(),
            2,
            "phone {i} sees both shipments"
        );
        phones.push(phone);
    }
    for op in ops {
        match op {
            Op::Record {
                phone,
                shipment,
                line,
                quantity,
                condition,
                serial,
            } => {
                let serials: Vec<String> = serial.map(|s| format!("US-{s}")).into_iter().collect();
                let serials: Vec<&str> = serials.iter().map(String::as_str).collect();
                let r = receipt(LINES[line], quantity, Condition::ALL[condition], &serials);
                // The model refuses some (quantity 0): that is its job.
                let _ = phones[phone]
                    .record(&shipment_id(SHIPMENTS[shipment]), r)
                    .await;
            }
            Op::Void {
                phone,
                shipment,
                nth,
            } => {
                let id = shipment_id(SHIPMENTS[shipment]);
                let seen = phones[phone].engine.shipment(&id).unwrap();
                if let Some(target) = seen.receipts.values().nth(nth) {
                    let mut void = receipt(target.line_id.as_str(), 0, Condition::Good, &[]);
                    void.voids = Some(target.id.clone());
                    let _ = phones[phone].record(&id, void).await;
                }
            }
            Op::Sync {
                phone,
                lose_response,
            } => {
                let fault = if lose_response {
                    Fault::LoseResponse
                } else {
                    Fault::None
                };
                let _ = phones[phone].sync(fault).await;
            }
        }
    }
    for phone in &mut phones {
        phone.sync_settled().await.unwrap();
    }

    let server_db = world.server.db();
    let stored = stored_rows(server_db).await;
    let derived = derived_rows(server_db).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored, derived,
        "the stored rows are what the documents say"
    );

    let rebuilt = projections::rebuild(server_db, aidsync_tests::now_ms(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(rebuilt, 2);
    assert_eq!(
        stored_rows(server_db).await,
        stored,
        "a rebuild gives the same rows"
    );
    world.server.stop().await.unwrap();
    stored
}

/// A fixed mix of every kind of step, for the PostgreSQL run.
pub fn fixed_ops() -> Vec<Op> {
    let record = |phone, shipment, line, quantity, condition, serial| Op::Record {
        phone,
        shipment,
        line,
        quantity,
        condition,
        serial,
    };
    vec![
        record(0, 0, 0, 2, 0, Some(1)),
        record(1, 0, 0, 2, 1, Some(1)),
        record(2, 0, 1, 3, 3, None),
        Op::Sync {
            phone: 0,
            lose_response: true,
        },
        Op::Sync {
            phone: 1,
            lose_response: false,
        },
        Op::Void {
            phone: 1,
            shipment: 0,
            nth: 0,
        },
        record(0, 1, 0, 6, 0, Some(6)),
        Op::Sync {
            phone: 2,
            lose_response: false,
        },
        Op::Sync {
            phone: 1,
            lose_response: false,
        },
    ]
}

pub async fn fixed_mix(db: &TestDb) {
    let rows = projections_follow_the_documents(db, fixed_ops()).await;
    // The mix reaches every kind of row that changes after it is written.
    let first = &rows[SHIPMENT];
    let voided = first.receipts.iter().filter(|r| r.voided).count();
    assert_eq!(voided, 1, "{:#?}", first.receipts);
    assert!(first.receipts.iter().all(|r| r.received_at.is_some()));
    let kinds: Vec<&str> = first
        .discrepancies
        .iter()
        .map(|d| d.kind.as_str())
        .collect();
    assert!(kinds.contains(&"wrong_item"), "{kinds:?}");
    assert_eq!(rows[SECOND_SHIPMENT].shipment.status, "discrepancy");
}

proptest! {
    // Each case starts a server and logs three phones in: a few cases,
    // each a long random story, find more than many short ones.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_projections_follow_the_documents(ops in proptest::collection::vec(op(), 1..24)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = TestDb::sqlite().unwrap();
            projections_follow_the_documents(&db, ops).await;
        });
    }
}
