//! `aidsync-sync-bench`: what one sync costs the server as its shipment
//! grows. For each size it stores one shipment already holding that many
//! receipts (on a fresh SQLite demo server in this process), lets a phone
//! download it, then times syncs that each upload 20 new receipts to it:
//! the request as the phone sees it, on localhost, answer included.
//!
//! The server should pay for what a sync changes, not for the shipment:
//! the README's target is the 10,000-receipt time within twice the
//! 100-receipt one. Prints one JSON line per size; progress on stderr.

use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;

use aidsync_server::demo;
use aidsync_server::service::projections;
use aidsync_server::storage::ChangeAuthor;
use aidsync_shared::derive::summarize;
use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewShipment, Reason, Recorder, ShipmentDoc,
};
use aidsync_shared::sync::protocol::{
    self, CONTENT_TYPE, Changes, DocUpload, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};
use aidsync_tests::harness::{TestDb, TestServer};
use aidsync_tests::phone::{Api, Phone, post_raw};

#[derive(Debug, Parser)]
#[command(about = "Server time per sync against the size of the shipment")]
struct Args {
    /// Receipts the shipment holds before the timed syncs.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1_000, 10_000])]
    sizes: Vec<usize>,
    /// Timed syncs per size (after one untimed warm-up sync).
    #[arg(long, default_value_t = 15)]
    syncs: usize,
    /// Receipts each sync uploads.
    #[arg(long, default_value_t = 20)]
    receipts: usize,
}

const SHIPMENT: &str = "bench-size-001";
const RECEIVER: &str = "anna";
const FACILITY: &str = "kharkiv-regional";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    for &size in &args.sizes {
        match run(&args, size).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("aidsync-sync-bench: {e:#}");
                std::process::exit(2);
            }
        }
    }
}

fn receipt(n: usize, line: usize) -> anyhow::Result<NewReceipt> {
    Ok(NewReceipt {
        id: ReceiptId::parse(format!("bench-r{n:07}"))?,
        line_id: LineId::parse(format!("line-{}", line % 3 + 1))?,
        quantity: 1,
        condition: if n.is_multiple_of(10) {
            Condition::Damaged
        } else {
            Condition::Good
        },
        serials: Vec::new(),
        note: String::new(),
        voids: None,
        stage: None,
        // One unit at a time of many expected: each count is short (or
        // damaged), so each carries its reason, as on a phone.
        reason: Some(if n.is_multiple_of(10) {
            Reason::DamagedInTransit
        } else {
            Reason::Short
        }),
        delivery_id: None,
    })
}

/// The shipment, with `size` receipts recorded by the demo receiver on
/// another of her devices, stored the way the server stores documents.
async fn store_shipment(server: &TestServer, size: usize) -> anyhow::Result<()> {
    let lines = (1..=3)
        .map(|l| {
            Ok(Line {
                id: LineId::parse(format!("line-{l}"))?,
                item: format!("Bench item {l}"),
                category: "imaging".into(),
                unit: "unit".into(),
                quantity_expected: (size / 3 + 100) as u64,
                serials_expected: Vec::new(),
                accessories: Vec::new(),
                unit_value: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let new = NewShipment {
        id: ShipmentId::parse(SHIPMENT)?,
        donor: "JICA".into(),
        programme: "Size benchmark".into(),
        reference: "BENCH-1".into(),
        destination_facility: FacilityId::parse(FACILITY)?,
        expected_on: None,
        note: String::new(),
        lines,
    };
    let now = aidsync_tests::now_ms();
    let mut doc = ShipmentDoc::create(
        &new,
        &UserId::parse(demo::COORDINATOR)?,
        automerge::ActorId::random(),
        now,
    )?;
    let earlier = Recorder {
        user: UserId::parse(RECEIVER)?,
        device: DeviceId::parse("bench-earlier-phone")?,
    };
    doc.set_actor(automerge::ActorId::random());
    let mut current = doc.read()?;
    for n in 0..size {
        doc.record_receipt_on(&mut current, receipt(n, n)?, &earlier, now)?;
    }
    let shipment = doc.read()?;
    let db = server.db();
    let mut tx = db.begin_write().await?;
    let version = tx.next_version().await?;
    let author = ChangeAuthor {
        device_id: None,
        user_id: RECEIVER,
        signers: None,
    };
    tx.insert_document(
        SHIPMENT,
        FACILITY,
        doc.automerge_mut(),
        version,
        &author,
        now,
    )
    .await?;
    projections::refresh(&mut tx, &doc, &shipment, &summarize(&shipment), now).await?;
    tx.commit().await?;
    Ok(())
}

async fn run(args: &Args, size: usize) -> anyhow::Result<serde_json::Value> {
    let db = TestDb::sqlite()?;
    let server = TestServer::start(db.url()).await?;
    demo::seed(server.db(), 90 * 24 * 3_600_000).await?;
    let started = Instant::now();
    store_shipment(&server, size).await?;
    eprintln!(
        "aidsync-sync-bench: {size} receipts stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The phone downloads the shipment, then records on a copy of it whose
    // model it keeps (reading a large document is the phone's own cost).
    let api = Api::new(&server.base);
    let mut phone = Phone::login(&api, RECEIVER, &demo::password(RECEIVER)).await?;
    phone.sync_settled().await?;
    let id = ShipmentId::parse(SHIPMENT)?;
    let mut doc = ShipmentDoc::from_automerge(
        phone
            .engine
            .document(&id)
            .context("the phone has the shipment")?
            .clone(),
    );
    let identity = aidsync_tests::phone::identity(&phone.session)?;
    doc.set_actor(automerge::ActorId::try_from(identity.actor.as_str())?);
    let who = Recorder {
        user: identity.user.clone(),
        device: identity.device.clone(),
    };
    let mut current = doc.read()?;
    let mut cursor = phone.engine.meta().cursor;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/sync", server.base);

    let mut times_ms = Vec::with_capacity(args.syncs);
    let mut bytes_up = 0;
    for round in 0..=args.syncs {
        let heads = doc.heads();
        for k in 0..args.receipts {
            let n = size + 1 + round * args.receipts + k;
            doc.record_receipt_on(&mut current, receipt(n, k)?, &who, aidsync_tests::now_ms())?;
        }
        let changes = doc.automerge_mut().get_changes(&heads);
        let request = protocol::encode(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor,
            docs: vec![DocUpload {
                id: id.clone(),
                changes: Changes::chunks(&changes),
            }],
        });
        let sent = Instant::now();
        let wire = post_raw(
            &http,
            &url,
            Some(phone.token()),
            CONTENT_TYPE,
            &request,
            true,
        )
        .await?;
        let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
        if wire.status != reqwest::StatusCode::OK {
            bail!(
                "sync {round}: {} {}",
                wire.status,
                String::from_utf8_lossy(&wire.body)
            );
        }
        let response: SyncResponse = protocol::decode(&wire.body)?;
        cursor = response.cursor;
        // The first sync warms the server's cache, as any sync after the
        // first does in the field.
        if round > 0 {
            times_ms.push(elapsed);
            bytes_up += wire.traffic.bytes_up;
        }
    }
    server.stop().await?;
    times_ms.sort_by(f64::total_cmp);
    let at = |p: f64| times_ms[((times_ms.len() as f64 - 1.0) * p).round() as usize];
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(json!({
        "receipts_in_shipment": size,
        "receipts_per_sync": args.receipts,
        "syncs": times_ms.len(),
        "sync_ms_min": round3(times_ms[0]),
        "sync_ms_median": round3(at(0.5)),
        "sync_ms_max": round3(at(1.0)),
        "bytes_up_per_receipt": round3(bytes_up as f64 / (times_ms.len() * args.receipts) as f64),
    }))
}
