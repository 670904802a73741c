//! `POST /api/v1/sync`, minus HTTP: store what a phone sent, answer with
//! what it lacks. The protocol is described in `aidsync_shared::sync`.
//!
//! A write transaction checks and stores uploads (skipped when the phone
//! uploads nothing) and commits before anything is acknowledged; the answer
//! then reads documents from the cache, each brought up to date under its
//! slot lock (see `storage::cache`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use automerge::{Change, ChangeHash};
use serde_bytes::ByteBuf;

use aidsync_shared::ids::{DeviceId, ShipmentId};
use aidsync_shared::model::{Recorder, ShipmentDoc, read_shipment};
use aidsync_shared::sync::protocol::DocUpload;
use aidsync_shared::sync::protocol::{
    Changes, DocDownload, PROTOCOL_VERSION, RefusalCode, SyncRequest, SyncResponse, UploadResult,
    heads_to_wire,
};
use aidsync_shared::sync::server::{Accepted, Refusal, Uploader, merge_into, parse_changes};
use aidsync_shared::sync::untrusted::OpBudget;

use super::Limits;
use crate::caller::Caller;
use crate::error::AppError;
use crate::events::Changed;
use futures_util::future::BoxFuture;

use crate::storage::{
    Batch, ChangeAuthor, Checkout, Db, GroupJob, JobFailed, Scope, StoredDocument,
};

/// The answer, and how the HTTP layer should report it.
pub struct SyncOutcome {
    pub response: SyncResponse,
    /// Uploads refused because the caller may not make them (another
    /// device's actor, another user's receipt, a role's limits).
    pub forbidden: usize,
    /// Uploads refused for a reason a person must act on.
    pub refused: usize,
    /// Uploads for documents that do not exist (or the caller may not see).
    pub not_found: usize,
    /// Shipments this request stored changes to, for live dashboards.
    pub changed: Vec<Changed>,
}

pub async fn sync(
    db: &Db,
    caller: &Caller,
    request: SyncRequest,
    limits: &Limits,
    now_ms: i64,
) -> Result<SyncOutcome, AppError> {
    let scope = caller.shipment_scope()?;
    if request.protocol != PROTOCOL_VERSION {
        return Err(AppError::BadRequest(format!(
            "sync protocol {} is not supported (this server speaks {PROTOCOL_VERSION}); update the app",
            request.protocol
        )));
    }
    if request.docs.len() > limits.max_docs_per_sync {
        return Err(AppError::PayloadTooLarge(format!(
            "{} documents in one sync; the limit is {}",
            request.docs.len(),
            limits.max_docs_per_sync
        )));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = request.docs.iter().find(|d| !seen.insert(&d.id)) {
        return Err(AppError::BadRequest(format!(
            "document {} appears twice",
            dup.id
        )));
    }
    let cursor = Cursor::from_wire(request.cursor);

    // Decode before taking any lock: it is the expensive, client-controlled part.
    let uploads = decode_uploads(request.docs, limits.max_ops_per_sync).await?;
    crate::metrics::sync_batch(&uploads);
    let uploaded_hashes: BTreeMap<ShipmentId, BTreeSet<ChangeHash>> = uploads
        .iter()
        .map(|(id, r)| {
            let hashes = r
                .as_ref()
                .map(|cs| cs.iter().map(Change::hash).collect())
                .unwrap_or_default();
            (id.clone(), hashes)
        })
        .collect();

    let (results, changed) = if uploads.is_empty() {
        (BTreeMap::new(), Vec::new())
    } else {
        store_uploads(db, caller, &scope, uploads, limits, now_ms).await?
    };
    // Committed: what was stored is stored.
    crate::metrics::upload_results(results.values());
    let forbidden = results
        .values()
        .filter(|r| {
            matches!(
                r,
                UploadResult::Refused {
                    code: RefusalCode::Forbidden | RefusalCode::WrongActor,
                    ..
                }
            )
        })
        .count();
    let refused = results
        .values()
        .filter(|r| matches!(r, UploadResult::Refused { .. }))
        .count()
        - forbidden;
    let not_found = results
        .values()
        .filter(|r| matches!(r, UploadResult::NotFound))
        .count();

    let response = answer(db, &scope, cursor, results, &uploaded_hashes).await?;
    Ok(SyncOutcome {
        response,
        forbidden,
        refused,
        not_found,
        changed,
    })
}

/// Decodes every upload as hostile bytes, on the blocking pool: the walk in
/// `parse_changes` bounds what automerge may allocate or loop over, and a
/// panic inside automerge's decoder on some other malformation refuses that
/// document as corrupt instead of failing the request.
async fn decode_uploads(
    docs: Vec<DocUpload>,
    max_ops: u64,
) -> Result<Vec<(ShipmentId, Result<Vec<Change>, Refusal>)>, AppError> {
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    tokio::task::spawn_blocking(move || {
        let mut budget = OpBudget::new(max_ops);
        docs.into_iter()
            .map(|d| {
                let parsed = contain(&d.id, "decoding", || parse_changes(&d.changes, &mut budget))
                    .and_then(|r| r.inspect_err(crate::metrics::decode_refused));
                (d.id, parsed)
            })
            .collect()
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("decoding uploads: {e}")))
}

/// Runs `work` over a client's bytes; a panic becomes a `corrupt` refusal
/// of that document. The panic is a bug in a decoder (ours or automerge's),
/// logged for whoever fixes it; nothing `work` touched outlives it, since it
/// only ever works on copies.
fn contain<T>(id: &ShipmentId, what: &'static str, work: impl FnOnce() -> T) -> Result<T, Refusal> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|panic| {
        crate::metrics::decode_panicked(what);
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::warn!(shipment = %id, %message, "{what} an upload panicked; refused as corrupt");
        Refusal::Corrupt {
            reason: format!("malformed changes ({what} them failed)"),
        }
    })
}

/// Where a phone is in the server's commit history. On the wire one opaque
/// number: the epoch in the high bits, the version in the low
/// [`Cursor::VERSION_BITS`]. Epoch 0 makes it the bare version, as cursors
/// were before epochs, so older phones' cursors stay valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    epoch: i64,
    version: i64,
}

impl Cursor {
    /// 2^40 commits per timeline; epochs take the 23 bits above, so a
    /// cursor always fits an i64 too.
    const VERSION_BITS: u32 = 40;
    const EPOCH_MASK: u64 = (1 << 23) - 1;

    /// Any number is a cursor: one that names no state of this server
    /// (another epoch, a version not reached) resets the phone.
    fn from_wire(wire: u64) -> Cursor {
        Cursor {
            epoch: (wire >> Self::VERSION_BITS) as i64,
            version: (wire & ((1 << Self::VERSION_BITS) - 1)) as i64,
        }
    }

    fn to_wire(self) -> u64 {
        let epoch = (self.epoch as u64) & Self::EPOCH_MASK;
        let version = (self.version as u64) & ((1 << Self::VERSION_BITS) - 1);
        (epoch << Self::VERSION_BITS) | version
    }
}

/// A fresh epoch for a restored database: random, so restoring the same
/// backup twice still gives two timelines, and never 0 (the first).
pub fn new_epoch(random: u32) -> i64 {
    (u64::from(random) % Cursor::EPOCH_MASK) as i64 + 1
}

fn refusal_result(refusal: &Refusal) -> UploadResult {
    match refusal.code() {
        Some(code) => UploadResult::Refused {
            code,
            reason: refusal.to_string(),
        },
        None => UploadResult::MissingDependencies,
    }
}

/// The caller as the merge rules see it: their role, and every device and
/// actor of theirs, so records a phone made under an earlier login (before
/// its token expired or was revoked) still sync under the new one. Also
/// returns which device each actor id belongs to, for the audit trail.
async fn uploader(
    db: &Db,
    caller: &Caller,
) -> Result<(Uploader, BTreeMap<String, String>), AppError> {
    let me = Recorder {
        user: caller.user.clone(),
        device: caller.device.clone(),
    };
    let mut uploader = Uploader::single_device(&me, caller.role, caller.actor.clone());
    let mut signers = BTreeMap::new();
    for (device, actor) in db.user_actors(caller.user.as_str()).await? {
        let internal = |e: &dyn std::fmt::Display| {
            AppError::Internal(anyhow::anyhow!("device {device} of {}: {e}", caller.user))
        };
        uploader
            .editor
            .devices
            .insert(DeviceId::parse(&device).map_err(|e| internal(&e))?);
        uploader
            .actors
            .insert(automerge::ActorId::try_from(actor.as_str()).map_err(|e| internal(&e))?);
        signers.insert(actor, device);
    }
    Ok((uploader, signers))
}

/// Actors of other people's devices that sign changes in these uploads:
/// the merge skips their changes instead of refusing the document (see
/// [`Uploader::relayed`]). At most a few per request in practice; past 256
/// distinct ones the rest count as unknown, and are refused.
async fn relayed_actors(
    db: &Db,
    uploader: &Uploader,
    uploads: &[(ShipmentId, Result<Vec<Change>, Refusal>)],
) -> Result<BTreeSet<automerge::ActorId>, AppError> {
    let foreign: BTreeSet<&automerge::ActorId> = uploads
        .iter()
        .filter_map(|(_, parsed)| parsed.as_ref().ok())
        .flatten()
        .map(Change::actor_id)
        .filter(|a| !uploader.actors.contains(a))
        .take(256)
        .collect();
    let hex: Vec<String> = foreign.iter().map(|a| a.to_hex_string()).collect();
    let known = db.known_actors(&hex).await?;
    Ok(foreign
        .into_iter()
        .filter(|a| known.contains(&a.to_hex_string()))
        .cloned()
        .collect())
}

/// Whether storing `accepted`'s new changes would grow the document past
/// the limit. Raw change bytes over-count what a compacted snapshot holds,
/// so this errs on the side of refusing early; a retry of stored changes
/// adds nothing and is never refused.
fn too_large(stored: &StoredDocument, accepted: &Accepted, limits: &Limits) -> bool {
    let incoming: usize = accepted
        .new_changes
        .iter()
        .map(|c| c.raw_bytes().len())
        .sum();
    stored.stored_bytes.saturating_add(incoming) > limits.max_document_bytes
}

/// Merges an upload into a checked-out document, in place: the model
/// before is the one the cache kept (read now if it kept none). After a
/// refusal the state may hold some of the refused changes: discard it.
fn merge_checkout(
    co: &mut Checkout,
    changes: Vec<Change>,
    uploader: &Uploader,
) -> Result<Accepted, Refusal> {
    let before = match co.loaded.shipment.take() {
        Some(shipment) => shipment,
        None => read_shipment(&co.loaded.stored.doc)?,
    };
    let mut doc = ShipmentDoc::from_automerge(std::mem::take(&mut co.loaded.stored.doc));
    let merged = merge_into(&mut doc, &before, &mut co.loaded.lineage, changes, uploader);
    co.loaded.stored.doc = doc.into_automerge();
    co.loaded.shipment = Some(before);
    merged
}

/// Checks every upload and stores the acceptable ones, in a batch of the
/// group writer (see `storage::group`): the answer comes once the batch's
/// transaction committed.
async fn store_uploads(
    db: &Db,
    caller: &Caller,
    scope: &Scope,
    mut uploads: Vec<(ShipmentId, Result<Vec<Change>, Refusal>)>,
    limits: &Limits,
    now_ms: i64,
) -> Result<(BTreeMap<ShipmentId, UploadResult>, Vec<Changed>), AppError> {
    // A fixed lock order within the request.
    uploads.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut uploader, signers) = uploader(db, caller).await?;
    uploader.relayed = relayed_actors(db, &uploader, &uploads).await?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    db.submit(Box::new(StoreJob {
        device: caller.device.to_string(),
        user: caller.user.to_string(),
        scope: scope.clone(),
        uploads,
        limits: limits.clone(),
        now_ms,
        uploader: Arc::new(uploader),
        signers,
        stored: Stored::default(),
        error: None,
        reply: Some(reply),
    }));
    answer.await.map_err(|_| {
        AppError::Internal(anyhow::anyhow!(
            "the writer dropped a sync's uploads (see the log)"
        ))
    })?
}

/// What a sync's uploads came to: a result per document, and the shipments
/// that changed.
#[derive(Default)]
struct Stored {
    results: BTreeMap<ShipmentId, UploadResult>,
    changed: Vec<Changed>,
}

type StoreReply = Result<(BTreeMap<ShipmentId, UploadResult>, Vec<Changed>), AppError>;

/// Where a job's time went, for the debug log.
#[derive(Default)]
struct JobTiming {
    checkout: std::time::Duration,
    merge: std::time::Duration,
    store: std::time::Duration,
}

/// One sync's uploads, as a job of the group writer.
struct StoreJob {
    device: String,
    user: String,
    scope: Scope,
    uploads: Vec<(ShipmentId, Result<Vec<Change>, Refusal>)>,
    limits: Limits,
    now_ms: i64,
    uploader: Arc<Uploader>,
    signers: BTreeMap<String, String>,
    stored: Stored,
    error: Option<AppError>,
    reply: Option<tokio::sync::oneshot::Sender<StoreReply>>,
}

impl GroupJob for StoreJob {
    fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, Result<(), JobFailed>> {
        Box::pin(async move {
            match self.store(batch).await {
                Ok(stored) => {
                    self.stored = stored;
                    Ok(())
                }
                Err(e) => {
                    self.error = Some(e);
                    Err(JobFailed)
                }
            }
        })
    }

    fn finish(self: Box<Self>, batch: Result<(), String>) {
        let StoreJob {
            stored,
            error,
            reply,
            ..
        } = *self;
        let outcome = match (error, batch) {
            (Some(e), _) => Err(e),
            (None, Err(why)) => Err(AppError::Internal(anyhow::anyhow!(why))),
            (None, Ok(())) => Ok((stored.results, stored.changed)),
        };
        if let Some(reply) = reply {
            // The request may have gone (its client hung up): nothing to do.
            let _ = reply.send(outcome);
        }
    }
}

impl StoreJob {
    async fn store(&mut self, batch: &mut Batch) -> Result<Stored, AppError> {
        let mut results = BTreeMap::new();
        let mut accepted: Vec<(Checkout, Accepted)> = Vec::new();
        let mut timing = JobTiming::default();
        for (id, parsed) in std::mem::take(&mut self.uploads) {
            let t = std::time::Instant::now();
            let co = batch.checkout(id.as_str()).await?;
            timing.checkout += t.elapsed();
            let Some(co) = co else {
                results.insert(id, UploadResult::NotFound);
                continue;
            };
            let stored = &co.loaded.stored;
            if !self
                .scope
                .contains(&stored.facility_id, stored.region.as_deref())
            {
                results.insert(id, UploadResult::NotFound);
                batch.put_back(co);
                continue;
            }
            let changes = match parsed {
                Ok(c) if c.len() > self.limits.max_changes_per_doc => {
                    results.insert(
                        id,
                        UploadResult::Refused {
                            code: RefusalCode::TooLarge,
                            reason: format!(
                                "{} changes in one upload; the limit is {} (sync more often)",
                                c.len(),
                                self.limits.max_changes_per_doc
                            ),
                        },
                    );
                    batch.put_back(co);
                    continue;
                }
                Ok(c) => c,
                Err(refusal) => {
                    results.insert(id, refusal_result(&refusal));
                    batch.put_back(co);
                    continue;
                }
            };
            let who = self.uploader.clone();
            let doc_id = id.clone();
            let t = std::time::Instant::now();
            // Off the async threads: merging is CPU work on a client's changes,
            // and a panic in automerge must refuse this document, not the request.
            let (co, merged) = tokio::task::spawn_blocking(move || {
                let mut co = co;
                let merged = contain(&doc_id, "merging", || {
                    merge_checkout(&mut co, changes, &who)
                })
                .and_then(|r| r);
                (co, merged)
            })
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("merging an upload: {e}")))?;
            timing.merge += t.elapsed();
            match merged {
                Err(refusal) => {
                    tracing::info!(shipment = %id, device = %self.device, %refusal, "upload refused");
                    results.insert(id, refusal_result(&refusal));
                    batch.put_back_stale(co);
                }
                Ok(merged) if merged.new_changes.is_empty() => {
                    results.insert(id, UploadResult::Accepted { new: 0 });
                    batch.put_back(co);
                }
                Ok(merged) if too_large(&co.loaded.stored, &merged, &self.limits) => {
                    results.insert(
                        id,
                        UploadResult::Refused {
                            code: RefusalCode::TooLarge,
                            reason: format!(
                                "the shipment would exceed {} bytes; ask a coordinator to split it",
                                self.limits.max_document_bytes
                            ),
                        },
                    );
                    batch.put_back_stale(co);
                }
                Ok(merged) => {
                    results.insert(
                        id,
                        UploadResult::Accepted {
                            new: u32::try_from(merged.new_changes.len()).unwrap_or(u32::MAX),
                        },
                    );
                    accepted.push((co, merged));
                }
            }
        }
        if accepted.is_empty() {
            return Ok(Stored {
                results,
                changed: Vec::new(),
            });
        }
        let t = std::time::Instant::now();
        let version = batch.version().await?;
        let author = ChangeAuthor {
            device_id: Some(self.device.as_str()),
            user_id: self.user.as_str(),
            signers: Some(&self.signers),
        };
        let mut changed = Vec::with_capacity(accepted.len());
        for (mut co, merged) in accepted {
            changed.push(Changed {
                shipment: co.loaded.stored.id.clone(),
                facility: co.loaded.stored.facility_id.clone(),
            });
            super::store::store_changes(
                batch.tx(),
                &mut co,
                merged.shipment,
                &merged.new_changes,
                version,
                &author,
                self.now_ms,
            )
            .await?;
            batch.put_back(co);
        }
        timing.store += t.elapsed();
        tracing::debug!(
            checkout_ms = timing.checkout.as_secs_f64() * 1e3,
            merge_ms = timing.merge.as_secs_f64() * 1e3,
            store_ms = timing.store.as_secs_f64() * 1e3,
            "sync uploads stored"
        );
        Ok(Stored { results, changed })
    }
}

/// Builds the response. The cursor is the version committed when the
/// answer began; every document is then served at that version or a later
/// one (the cache's state under its slot lock, caught up to the database),
/// so the phone holds at least everything up to the cursor. What it gets
/// beyond that comes again next time, and applying it twice is harmless.
async fn answer(
    db: &Db,
    scope: &Scope,
    cursor: Cursor,
    mut results: BTreeMap<ShipmentId, UploadResult>,
    uploaded: &BTreeMap<ShipmentId, BTreeSet<ChangeHash>>,
) -> Result<SyncResponse, AppError> {
    let mut tx = db.begin_read().await?;
    let now = Cursor {
        epoch: tx.current_epoch().await?,
        version: tx.current_version().await?,
    };
    // A cursor from another timeline, or from the future, means this
    // server lost commits (restored from a backup): start the phone over,
    // so it re-sends what is missing.
    let reset = cursor.epoch != now.epoch || cursor.version > now.version;
    let since = if reset { 0 } else { cursor.version };

    let mut ids: BTreeSet<String> = tx
        .changed_documents(since, scope)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    tx.commit().await?;
    for (id, result) in &results {
        if !matches!(result, UploadResult::NotFound) {
            ids.insert(id.to_string());
        }
    }

    let mut docs = Vec::with_capacity(ids.len() + results.len());
    for id_s in ids {
        // The slot first, then a connection (see `DocCache::lock`).
        let slot = db.documents().lock(&id_s).await;
        let mut tx = db.begin_read().await?;
        let Some(mut co) = tx.checkout_slot(slot, false).await? else {
            continue;
        };
        let fresh = co.loaded.stored.created_version > since;
        let hashes = if fresh {
            Vec::new()
        } else {
            tx.change_hashes_since(&id_s, since).await?
        };
        tx.commit().await?;
        let id = ShipmentId::parse(&id_s)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored id {id_s}: {e}")))?;
        let (snapshot, changes) = if fresh {
            let saved = co.loaded.saved();
            (Some(ByteBuf::from(saved.as_slice())), Changes::default())
        } else {
            let doc = &mut co.loaded.stored.doc;
            let theirs = uploaded.get(&id);
            let mut wanted = Vec::with_capacity(hashes.len());
            for hash_s in hashes {
                let hash: ChangeHash = hash_s.parse().map_err(|e| {
                    AppError::Internal(anyhow::anyhow!("stored hash {hash_s}: {e}"))
                })?;
                // Never one the phone just sent; never one this state lacks
                // (stored by another process after it was caught up).
                if theirs.is_some_and(|t| t.contains(&hash)) || !has_change(doc, &hash) {
                    continue;
                }
                wanted.push(hash);
            }
            (None, Changes::encode_hashes(doc, &wanted))
        };
        let heads = heads_to_wire(&co.loaded.stored.doc.get_heads());
        co.keep();
        docs.push(DocDownload {
            upload: results.remove(&id),
            id,
            snapshot,
            changes,
            heads,
        });
    }
    // Uploads for documents the phone may not see get an answer too.
    for (id, result) in results {
        docs.push(DocDownload {
            id,
            upload: Some(result),
            snapshot: None,
            changes: Changes::default(),
            heads: Vec::new(),
        });
    }
    Ok(SyncResponse {
        cursor: now.to_wire(),
        reset,
        docs,
    })
}

/// Whether `doc` holds the change `hash`, without rebuilding it.
fn has_change(doc: &mut automerge::AutoCommit, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_round_trip_and_old_ones_are_epoch_zero() {
        let c = Cursor {
            epoch: 4_000_000,
            version: 123_456_789,
        };
        assert_eq!(Cursor::from_wire(c.to_wire()), c);
        assert_eq!(
            Cursor::from_wire(57),
            Cursor {
                epoch: 0,
                version: 57
            }
        );
        assert!(i64::try_from(Cursor::from_wire(u64::MAX).to_wire()).is_ok());
        assert!((1..=10_000).all(|r| super::new_epoch(r * 7_919) > 0));
    }
}
