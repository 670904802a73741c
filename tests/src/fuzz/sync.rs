//! The server's sync path over the bytes of one request, without the
//! database: the same calls in the same order as
//! `aidsync_server::service::sync` and the HTTP handler make them.
//!
//! `protocol::decode` → the request checks (protocol, document count,
//! duplicates, cursor) → `parse_changes` for every document with one
//! shared `OpBudget` → per document: the stored document (or not found),
//! the change count limit, `merge_upload` against it as its uploader, the
//! size limit → for an accepted merge, what the server derives before it
//! stores (`summarize`, `project`, `receipt_origins`).
//!
//! Decoding and merging run under `catch_unwind` as the server's `contain`
//! runs them, so a panic there refuses the document (`refused:corrupt`) and
//! the case goes on; the harness's panic hook counts it all the same.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::Rng;
use rand::rngs::StdRng;
use serde_bytes::ByteBuf;

use aidsync_shared::derive::summarize;
use aidsync_shared::ids::ShipmentId;
use aidsync_shared::projection::project;
use aidsync_shared::sync::protocol::{
    Changes, DocUpload, PROTOCOL_VERSION, RefusalCode, SyncRequest, decode, encode,
};
use aidsync_shared::sync::server::{Refusal, merge_upload, parse_changes};
use aidsync_shared::sync::untrusted::OpBudget;

use super::corpus::SyncWorld;
use super::{Outcome, cbor, chunk, interesting_u64};

pub fn code_label(code: RefusalCode) -> &'static str {
    match code {
        RefusalCode::Corrupt => "refused:corrupt",
        RefusalCode::WrongActor => "refused:wrong_actor",
        RefusalCode::Forbidden => "refused:forbidden",
        RefusalCode::Invalid => "refused:invalid",
        RefusalCode::TooLarge => "refused:too_large",
    }
}

fn refusal_label(refusal: &Refusal) -> &'static str {
    match refusal.code() {
        Some(code) => code_label(code),
        None => "missing_dependencies",
    }
}

/// Runs one request body as the server would, returning one label per
/// document (or one for the request when it is refused whole).
pub fn run(world: &SyncWorld, body: &[u8]) -> Outcome {
    // The router refuses a (decompressed) body over the limit unread.
    if body.len() > world.limits.max_body_bytes {
        return Outcome::one("413:body");
    }
    let request: SyncRequest = match decode(body) {
        Ok(r) => r,
        Err(_) => return Outcome::one("400:cbor"),
    };
    if request.protocol != PROTOCOL_VERSION {
        return Outcome::one("400:protocol");
    }
    if request.docs.len() > world.limits.max_docs_per_sync {
        return Outcome::one("413:docs");
    }
    let mut seen = BTreeSet::new();
    if request.docs.iter().any(|d| !seen.insert(&d.id)) {
        return Outcome::one("400:duplicate_doc");
    }
    if i64::try_from(request.cursor).is_err() {
        return Outcome::one("400:cursor");
    }

    let mut budget = OpBudget::new(world.limits.max_ops_per_sync);
    let mut uploads: Vec<_> = request
        .docs
        .into_iter()
        .map(|d| {
            let parsed = catch_unwind(AssertUnwindSafe(|| parse_changes(&d.changes, &mut budget)))
                .unwrap_or(Err(Refusal::Corrupt {
                    reason: "decoding panicked".into(),
                }));
            (d.id, parsed)
        })
        .collect();
    uploads.sort_by(|a, b| a.0.cmp(&b.0));

    let mut results = Vec::with_capacity(uploads.len());
    for (id, parsed) in uploads {
        let Some(stored) = world.docs.get(id.as_str()) else {
            results.push("not_found".to_owned());
            continue;
        };
        let changes = match parsed {
            Ok(c) if c.len() > world.limits.max_changes_per_doc => {
                results.push("refused:too_large".to_owned());
                continue;
            }
            Ok(c) => c,
            Err(refusal) => {
                results.push(refusal_label(&refusal).to_owned());
                continue;
            }
        };
        let merged = catch_unwind(AssertUnwindSafe(|| {
            merge_upload(&stored.doc, changes, &stored.uploader)
        }));
        let label = match merged {
            Err(_) => "refused:corrupt".to_owned(),
            Ok(Err(refusal)) => refusal_label(&refusal).to_owned(),
            Ok(Ok(merged)) if merged.new_changes.is_empty() => "accepted".to_owned(),
            Ok(Ok(merged)) => {
                let incoming: usize = merged.new_changes.iter().map(|c| c.raw_bytes().len()).sum();
                if stored.stored_bytes.saturating_add(incoming) > world.limits.max_document_bytes {
                    "refused:too_large".to_owned()
                } else {
                    // What the server derives from an accepted merge, in
                    // its transaction and outside any containment.
                    let summary = summarize(&merged.shipment);
                    let origins = merged.doc.receipt_origins();
                    let rows = project(&merged.shipment, &summary, |r| {
                        origins.get(r).map(|_| super::corpus::T0)
                    });
                    std::hint::black_box(rows);
                    "accepted".to_owned()
                }
            }
        };
        results.push(label);
    }
    Outcome {
        results,
        server_error: None,
    }
}

/// A well-formed request around some seed uploads: one to three
/// documents (now and then the same one twice), a few as bundles.
fn base_request(rng: &mut StdRng, world: &SyncWorld) -> Vec<(String, Changes)> {
    let n = match rng.random_range(0..10) {
        0..=6 => 1,
        7 | 8 => 2,
        _ => 3,
    };
    let mut docs: Vec<(String, Changes)> = Vec::new();
    for _ in 0..n {
        let seed = &world.seeds[rng.random_range(0..world.seeds.len())];
        if docs.iter().any(|(d, _)| *d == seed.doc) && rng.random_range(0..4) != 0 {
            continue;
        }
        let changes = if rng.random_range(0..20) == 0 && !world.pool.bundles.is_empty() {
            let b = &world.pool.bundles[rng.random_range(0..world.pool.bundles.len())];
            Changes::Bundle(ByteBuf::from(b.clone()))
        } else {
            Changes::Chunks(seed.chunks.iter().cloned().map(ByteBuf::from).collect())
        };
        docs.push((seed.doc.clone(), changes));
    }
    docs
}

fn encode_request(rng: &mut StdRng, docs: Vec<(String, Changes)>) -> Vec<u8> {
    let cursor = match rng.random_range(0..8) {
        0 => interesting_u64(rng),
        1 | 2 => rng.random_range(0..100),
        _ => 0,
    };
    let docs = docs
        .into_iter()
        .filter_map(|(id, changes)| {
            Some(DocUpload {
                id: ShipmentId::parse(id).ok()?,
                changes,
            })
        })
        .collect();
    encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursor,
        docs,
    })
}

/// A `chunks` case: a well-formed envelope whose change chunks are
/// mutated (one to four mutations, each in a document's list of chunks).
pub fn generate_chunks(rng: &mut StdRng, world: &SyncWorld) -> Vec<u8> {
    let mut docs = base_request(rng, world);
    for _ in 0..rng.random_range(1..=4) {
        let n = docs.len();
        if n == 0 {
            break;
        }
        let (_, changes) = &mut docs[rng.random_range(0..n)];
        match changes {
            Changes::Chunks(chunks) => {
                let mut raw: Vec<Vec<u8>> = chunks.drain(..).map(ByteBuf::into_vec).collect();
                chunk::mutate_chunk_list(rng, &mut raw, &world.pool);
                *chunks = raw.into_iter().map(ByteBuf::from).collect();
            }
            Changes::Bundle(bytes) => {
                let mut raw = std::mem::take(bytes).into_vec();
                chunk::mutate_chunk(rng, &mut raw, &world.pool);
                *bytes = ByteBuf::from(raw);
            }
        }
    }
    encode_request(rng, docs)
}

/// A `sync` case: the envelope mutated as a CBOR value (one to three
/// mutations, after a chunk mutation now and then), then, one time in
/// four, as bytes.
pub fn generate_sync(rng: &mut StdRng, world: &SyncWorld) -> Vec<u8> {
    let body = if rng.random_range(0..4) == 0 {
        generate_chunks(rng, world)
    } else {
        let docs = base_request(rng, world);
        encode_request(rng, docs)
    };
    let mut body = match cbor::decode_value(&body) {
        Some(mut value) => {
            for _ in 0..rng.random_range(1..=3) {
                cbor::mutate_value(rng, &mut value, &world.pool);
            }
            cbor::encode_value(&value)
        }
        None => body,
    };
    if rng.random_range(0..4) == 0 {
        cbor::mutate_bytes(rng, &mut body);
    }
    if rng.random_range(0..50) == 0 {
        // Nesting past any recursion limit, at the top.
        let depth = rng.random_range(200..20_000);
        let mut deep = vec![0x81u8; depth];
        deep.append(&mut body);
        body = deep;
    }
    body
}

/// A person-readable account of a sync request body: its documents, and
/// for each change chunk its header fields and columns, for the report of
/// a failed case.
pub fn explain(body: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let request: SyncRequest = match decode(body) {
        Ok(r) => r,
        Err(e) => return format!("not a sync request: {e}"),
    };
    let _ = writeln!(
        out,
        "protocol {} cursor {} docs {}",
        request.protocol,
        request.cursor,
        request.docs.len()
    );
    for d in &request.docs {
        let chunks = match &d.changes {
            Changes::Bundle(b) => {
                let _ = writeln!(out, "doc {}: bundle of {} bytes", d.id, b.len());
                continue;
            }
            Changes::Chunks(c) => c,
        };
        let _ = writeln!(out, "doc {}: {} chunk(s)", d.id, chunks.len());
        for (i, bytes) in chunks.iter().enumerate().take(20) {
            let Some(c) = chunk::ChangeChunk::parse(bytes) else {
                let _ = writeln!(
                    out,
                    "  chunk {i}: {} bytes, not a change chunk",
                    bytes.len()
                );
                continue;
            };
            let _ = writeln!(
                out,
                "  chunk {i}: {} bytes, actor {} seq {} start_op {} time {} deps {} others {} message {} bytes extra {} bytes",
                bytes.len(),
                super::to_hex(&c.actor),
                c.seq,
                c.start_op,
                c.time,
                c.deps.len(),
                c.others.len(),
                c.message.len(),
                c.extra.len()
            );
            for col in &c.columns {
                let _ = writeln!(
                    out,
                    "    column {:>4} (id {:>2} type {}{}) {:>4} bytes: {}",
                    col.spec,
                    col.spec >> 4,
                    col.spec & 7,
                    if col.spec & 8 != 0 { " deflated" } else { "" },
                    col.data.len(),
                    super::to_hex(&col.data[..col.data.len().min(48)])
                );
            }
        }
    }
    out
}
