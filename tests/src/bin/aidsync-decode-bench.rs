//! What the server's guard on uploaded bytes costs per sync.
//!
//! Builds phone uploads of N receipts on a real shipment and times, per
//! upload: the structural walk alone, the whole guarded decode the server
//! runs (`decode_untrusted`: walk, automerge's decode, checksum), the
//! history check against the shipment (`check_lineage`, part of the merge),
//! the merge that follows (`merge_upload`), and for comparison automerge's bundle
//! decode that uploads used before. Also prints the bytes on the wire of
//! both encodings, raw and gzipped as the phone sends them.
//!
//! ```sh
//! cargo run --release -p aidsync-tests --bin aidsync-decode-bench -- [--runs 200]
//! ```
//!
//! One JSON line per upload size; times are the median over `--runs`.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use automerge::{ActorId, Change};
use clap::Parser;
use serde_json::json;

use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
use aidsync_shared::model::{Condition, Line, NewReceipt, NewShipment, Recorder, ShipmentDoc};
use aidsync_shared::roles::Role;
use aidsync_shared::sync::lineage::check_lineage;
use aidsync_shared::sync::protocol::{self, Changes, DocUpload, PROTOCOL_VERSION, SyncRequest};
use aidsync_shared::sync::server::{Uploader, merge_upload};
use aidsync_shared::sync::untrusted::{OpBudget, decode_untrusted};

#[derive(Parser)]
struct Args {
    /// Timed repetitions per figure (median reported).
    #[arg(long, default_value_t = 200)]
    runs: usize,
}

const T0: i64 = 1_790_000_000_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // (new receipts, with serials, receipts already on the shipment)
    for (receipts, serials, stored) in [
        (1usize, true, 0usize),
        (20, true, 0),
        (20, false, 0),
        (200, true, 0),
        (20, true, 500),
    ] {
        let (server, changes, uploader) = upload_of(receipts, serials, stored)?;
        let chunks = Changes::chunks(&changes);
        let bundle = Changes::encode(server.automerge(), &changes);
        let id = ShipmentId::parse("jica-bench-1")?;
        let request = |changes: &Changes| {
            protocol::encode(&SyncRequest {
                protocol: PROTOCOL_VERSION,
                cursor: 1,
                docs: vec![DocUpload {
                    id: id.clone(),
                    changes: changes.clone(),
                }],
            })
        };
        let chunk_body = request(&chunks);
        let bundle_body = request(&bundle);

        let decode = median(args.runs, || {
            decode_untrusted(&chunks, &mut OpBudget::new(u64::MAX))
                .map(drop)
                .map_err(anyhow::Error::from)
        })?;
        // The walk alone: a budget one short of the upload's cost walks every
        // chunk, then refuses before automerge decodes any.
        let mut probe = OpBudget::new(u64::MAX);
        decode_untrusted(&chunks, &mut probe)?;
        let cost = u64::MAX - probe.left();
        let walk_only = median(args.runs, || {
            match decode_untrusted(&chunks, &mut OpBudget::new(cost - 1)) {
                Err(_) => Ok(()),
                Ok(_) => anyhow::bail!("a budget below the cost accepted {receipts} receipts"),
            }
        })?;
        let plain = median(args.runs, || chunks_plain(&changes).map(drop))?;
        let bundle_decode = match &bundle {
            Changes::Bundle(_) => Some(median(args.runs, || {
                bundle.decode().map(drop).map_err(anyhow::Error::from)
            })?),
            Changes::Chunks(_) => None,
        };
        let mut doc = server.clone();
        let lineage = median(args.runs, || {
            check_lineage(doc.automerge_mut().document(), &changes).map_err(anyhow::Error::from)
        })?;
        let merge = median(args.runs, || {
            merge_upload(&server, changes.clone(), &uploader)
                .map(drop)
                .map_err(|e| anyhow::anyhow!("{e}"))
        })?;
        println!(
            "{}",
            json!({
                "receipts": receipts,
                "serials": serials,
                "stored_receipts": stored,
                "ops": changes.iter().map(|c| c.len()).sum::<usize>(),
                "guarded_decode_us": decode,
                "walk_only_us": walk_only,
                "unguarded_chunk_decode_us": plain,
                "bundle_decode_us": bundle_decode,
                "lineage_us": lineage,
                "merge_us": merge,
                "body_bytes_chunks": chunk_body.len(),
                "body_bytes_chunks_gzip": gzip_len(&chunk_body)?,
                "body_bytes_bundle": bundle_body.len(),
                "body_bytes_bundle_gzip": gzip_len(&bundle_body)?,
                "bundle_round_trips": matches!(bundle, Changes::Bundle(_)),
            })
        );
    }
    Ok(())
}

/// automerge's own decode of each chunk, no walk, no checksum: the floor.
fn chunks_plain(changes: &[Change]) -> anyhow::Result<Vec<Change>> {
    changes
        .iter()
        .map(|c| Change::from_bytes(c.raw_bytes().to_vec()).context("decode"))
        .collect()
}

/// Median wall time of `f` in microseconds, after one untimed run.
fn median(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2] * 10.0).round() / 10.0)
}

fn gzip_len(bytes: &[u8]) -> anyhow::Result<usize> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len())
}

/// A shipment on the server holding `stored` receipts from another phone,
/// a phone's `receipts` new receipts on it (each with a serial number, or
/// none), and the phone's user as the server sees her.
fn upload_of(
    receipts: usize,
    serials: bool,
    stored: usize,
) -> anyhow::Result<(ShipmentDoc, Vec<Change>, Uploader)> {
    let new = NewShipment {
        id: ShipmentId::parse("jica-bench-1")?,
        donor: "JICA".into(),
        programme: "Medical equipment for Kharkiv region".into(),
        reference: "WB-2026-0001".into(),
        destination_facility: FacilityId::parse("kharkiv-regional")?,
        expected_on: None,
        note: String::new(),
        lines: vec![Line {
            id: LineId::parse("us")?,
            item: "Portable ultrasound".into(),
            category: "ultrasound".into(),
            unit: "unit".into(),
            quantity_expected: 1_000,
            serials_expected: Vec::new(),
            accessories: Vec::new(),
            unit_value: None,
        }],
    };
    let mut server = ShipmentDoc::create(&new, &UserId::parse("olena")?, ActorId::random(), T0)?;
    let ivan = Recorder {
        user: UserId::parse("ivan")?,
        device: DeviceId::parse("ivan-phone")?,
    };
    let mut other = server.clone();
    other.set_actor(ActorId::random());
    record(&mut other, &ivan, "i", stored, serials)?;
    let earlier = other.automerge_mut().get_changes(&server.heads());
    server.automerge_mut().apply_changes(earlier)?;

    let actor = ActorId::random();
    let mut phone = server.clone();
    phone.set_actor(actor.clone());
    let anna = Recorder {
        user: UserId::parse("anna")?,
        device: DeviceId::parse("anna-phone")?,
    };
    record(&mut phone, &anna, "r", receipts, serials)?;
    let changes = phone.automerge_mut().get_changes(&server.heads());
    let uploader = Uploader::single_device(&anna, Role::Receiver, actor);
    Ok((server, changes, uploader))
}

/// Records `receipts` receipts of one unit each, ids `{prefix}{i}`.
fn record(
    phone: &mut ShipmentDoc,
    who: &Recorder,
    prefix: &str,
    receipts: usize,
    serials: bool,
) -> anyhow::Result<()> {
    for i in 0..receipts {
        let receipt = NewReceipt {
            id: ReceiptId::parse(format!("{prefix}{i}"))?,
            line_id: LineId::parse("us")?,
            quantity: 1,
            condition: if i % 7 == 0 {
                Condition::Damaged
            } else {
                Condition::Good
            },
            serials: if serials {
                vec![format!("US-{prefix}{i:05}")]
            } else {
                Vec::new()
            },
            note: String::new(),
            voids: None,
            stage: None,
            reason: None,
            delivery_id: None,
        };
        aidsync_tests::record_as_asked(phone, receipt, who, T0 + i as i64 * 1_000)?;
    }
    Ok(())
}
