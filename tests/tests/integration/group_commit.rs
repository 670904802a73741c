//! Group commit: syncs that arrive while the writer is busy share one
//! transaction, each is answered after the commit that holds it, and a
//! refused upload among them refuses only itself.

use std::sync::atomic::Ordering;
use std::time::Duration;

use automerge::{ActorId, ReadDoc, ScalarValue, transaction::Transactable};

use aidsync_shared::model::{Condition, Recorder, ShipmentDoc, keys};
use aidsync_shared::sync::protocol::{
    self, Changes, DocUpload, PROTOCOL_VERSION, RefusalCode, SyncRequest, SyncResponse,
    UploadResult,
};
use aidsync_tests::harness::TestDb;
use aidsync_tests::now_ms;
use aidsync_tests::phone::{Fault, Phone, post_raw};

use crate::common::*;

/// A sync body from `phone` holding one receipt for a line that does not
/// exist: a change the model refuses, correctly signed.
fn broken_upload(phone: &Phone) -> Vec<u8> {
    let id = shipment_id(SHIPMENT);
    let mut doc = ShipmentDoc::from_automerge(phone.engine.document(&id).unwrap().clone());
    doc.set_actor(ActorId::try_from(phone.session.actor_id.as_str()).unwrap());
    let base = doc.heads();
    let identity = aidsync_tests::phone::identity(&phone.session).unwrap();
    let recorder = Recorder {
        user: identity.user,
        device: identity.device,
    };
    let forged = aidsync_tests::record_as_asked(
        &mut doc,
        receipt("line-1", 1, Condition::Good, &[]),
        &recorder,
        now_ms(),
    )
    .unwrap();
    let am = doc.automerge_mut();
    let (_, receipts) = am.get(automerge::ROOT, keys::RECEIPTS).unwrap().unwrap();
    let (_, obj) = am.get(&receipts, forged.id.as_str()).unwrap().unwrap();
    am.put(&obj, keys::LINE_ID, ScalarValue::Str("line-99".into()))
        .unwrap();
    am.commit();
    let changes = doc.automerge_mut().get_changes(&base);
    protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursor: 0,
        docs: vec![DocUpload {
            id,
            changes: Changes::chunks(&changes),
        }],
    })
}

pub async fn syncs_that_arrive_together_commit_together(db: &TestDb) {
    let world = World::new(db).await;
    let id = shipment_id(SHIPMENT);
    let mut phones = Vec::new();
    for n in 0..6 {
        let mut phone = world.receiver(&format!("receiver-{n}"), FACILITY).await;
        phone.sync_settled().await.unwrap();
        phone
            .record(&id, receipt("line-2", 1, Condition::Good, &[]))
            .await
            .unwrap();
        phones.push(phone);
    }
    let mut mallory = world.receiver("mallory", FACILITY).await;
    mallory.sync_settled().await.unwrap();
    let broken = broken_upload(&mallory);

    let server = world.server.db().clone();
    let stats = || {
        let s = server.group_stats();
        (
            s.commits.load(Ordering::Relaxed),
            s.jobs.load(Ordering::Relaxed),
            s.waiting.load(Ordering::Relaxed),
        )
    };
    let (commits_before, jobs_before, _) = stats();
    let waiting_for = |n: u64| {
        let stats = &stats;
        async move {
            for _ in 0..1_000 {
                if stats().2 == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{n} syncs never queued up: {:?}", stats());
        }
    };

    // Keep the writer busy: the shipment checked out for writing (and, on
    // SQLite, the write lock taken) by someone else.
    let mut tx = server.begin_write().await.unwrap();
    let held = tx
        .checkout(server.documents(), SHIPMENT, true)
        .await
        .unwrap()
        .unwrap();
    let mut syncing = Vec::new();
    let mut spawn_phone = |mut phone: Phone| {
        syncing.push(tokio::spawn(async move {
            let report = phone.sync(Fault::None).await;
            (phone, report)
        }));
    };
    // Three good syncs, the refused one, three more: in this order.
    let mut rest = phones.split_off(3);
    for phone in phones.drain(..) {
        spawn_phone(phone);
    }
    waiting_for(3).await;
    let http = world.api.http.clone();
    let url = format!("{}/api/v1/sync", world.server.base);
    let token = mallory.token().to_owned();
    let refused = tokio::spawn(async move {
        post_raw(
            &http,
            &url,
            Some(&token),
            protocol::CONTENT_TYPE,
            &broken,
            true,
        )
        .await
        .unwrap()
    });
    waiting_for(4).await;
    for phone in rest.drain(..) {
        spawn_phone(phone);
    }
    waiting_for(7).await;
    drop(held);
    drop(tx);

    let mut phones = Vec::new();
    for task in syncing {
        let (phone, report) = task.await.unwrap();
        let report = report.unwrap();
        assert_eq!(report.accepted, 1, "{report:?}");
        assert!(report.refused.is_empty(), "{report:?}");
        phones.push(phone);
    }
    let wire = refused.await.unwrap();
    let response: SyncResponse = protocol::decode(&wire.body).unwrap();
    let result = response.docs.into_iter().find_map(|d| d.upload);
    assert!(
        matches!(
            &result,
            Some(UploadResult::Refused { code: RefusalCode::Invalid, reason }) if reason.contains("line-99")
        ),
        "{result:?}"
    );

    let (commits, jobs, waiting) = stats();
    assert_eq!(jobs - jobs_before, 7, "every sync ran in a batch");
    assert_eq!(waiting, 0);
    // SQLite: all seven in one transaction. PostgreSQL has no process-wide
    // write lock, so the first sync may start a batch alone, before the
    // others arrive; the six behind it still share the next one.
    let most = if db.url().starts_with("postgres") {
        2
    } else {
        1
    };
    assert!(
        commits - commits_before <= most,
        "{} commits for 7 syncs",
        commits - commits_before
    );

    // Each good receipt stored once, the refused one not at all.
    let mut check = world.receiver("checker", FACILITY).await;
    check.sync_settled().await.unwrap();
    let shipment = check.engine.shipment(&id).unwrap();
    let on_line = |line: &str| {
        shipment
            .receipts
            .values()
            .filter(|r| r.line_id.as_str() == line)
            .count()
    };
    assert_eq!(on_line("line-2"), 6);
    assert_eq!(on_line("line-99"), 0);
    assert_eq!(shipment.receipts.len(), 6);
    // And the phones agree with it.
    for phone in &mut phones {
        phone.sync_settled().await.unwrap();
        assert_eq!(phone.engine.shipment(&id).unwrap().receipts.len(), 6);
    }
}
