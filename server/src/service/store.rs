//! The one write path for a document's new changes: append them to the
//! change log, bring the projection rows up to date, bump the document's
//! version. Sync uploads and coordinators' edits both go through
//! [`store_changes`], so the log, the rows and the version never disagree.

use std::collections::HashSet;

use automerge::{Change, ChangeHash};

use aidsync_shared::derive::summarize;
use aidsync_shared::model::{Shipment, ShipmentDoc};
use aidsync_shared::projection::{Projection, project};

use crate::storage::{ChangeAuthor, Checkout, StorageError, Tx};

/// Stores `new_changes`, already merged into `co`'s document, whose model
/// is now `shipment`, in `tx` at `version`. The caller commits `tx`, then
/// [`Checkout::keep`]s `co`, which then holds the new state, its model and
/// its rows.
///
/// With the rows of the state before at hand (the cache kept them), only
/// the rows that differ are written; otherwise all are rewritten.
pub async fn store_changes(
    tx: &mut Tx,
    co: &mut Checkout,
    shipment: Shipment,
    new_changes: &[Change],
    version: i64,
    author: &ChangeAuthor<'_>,
    now_ms: i64,
) -> Result<(), StorageError> {
    let id = co.loaded.stored.id.clone();
    let last_seq = tx
        .append_changes(&id, new_changes, version, author, now_ms)
        .await?;
    let doc = ShipmentDoc::from_automerge(std::mem::take(&mut co.loaded.stored.doc));
    let before = co.loaded.shipment.take();
    let projection = match (co.loaded.projection.take(), before) {
        (Some(old), Some(before)) => {
            let new =
                project_after(tx, &doc, &before, &old, &shipment, new_changes, now_ms).await?;
            tx.write_projection_changes(&old, &new, now_ms).await?;
            new
        }
        _ => {
            let summary = summarize(&shipment);
            super::projections::refresh(tx, &doc, &shipment, &summary, now_ms)
                .await?
                .1
        }
    };
    co.loaded.stored.doc = doc.into_automerge();
    tx.touch_document(&mut co.loaded.stored, version, last_seq, new_changes)
        .await?;
    co.loaded.shipment = Some(shipment);
    co.loaded.projection = Some(projection);
    Ok(())
}

/// The rows of `after`, knowing those of `before` (`old`): a receipt keeps
/// the time it reached the server; a new one reached it now, when its
/// change is among `new_changes`, and otherwise (a receipt object that a
/// concurrent change replaced) when the change log says.
async fn project_after(
    tx: &mut Tx,
    doc: &ShipmentDoc,
    before: &Shipment,
    old: &Projection,
    after: &Shipment,
    new_changes: &[Change],
    now_ms: i64,
) -> Result<Projection, StorageError> {
    let id = after.header.id.to_string();
    let fresh: HashSet<ChangeHash> = new_changes.iter().map(Change::hash).collect();
    let old_at: std::collections::HashMap<&str, Option<i64>> = old
        .receipts
        .iter()
        .map(|r| (r.receipt_id.as_str(), r.received_at))
        .collect();
    let mut known = std::collections::HashMap::new();
    let mut look_up = Vec::new();
    for (receipt_id, receipt) in &after.receipts {
        let unchanged = before.receipts.get(receipt_id) == Some(receipt);
        match old_at.get(receipt_id.as_str()) {
            Some(at) if unchanged => {
                known.insert(receipt_id.clone(), *at);
            }
            _ => match doc.receipt_origin(receipt_id) {
                Some(hash) if fresh.contains(&hash) => {
                    known.insert(receipt_id.clone(), Some(now_ms));
                }
                Some(hash) => look_up.push((receipt_id.clone(), hash.to_string())),
                None => {
                    known.insert(receipt_id.clone(), None);
                }
            },
        }
    }
    if !look_up.is_empty() {
        let hashes: Vec<String> = look_up.iter().map(|(_, h)| h.clone()).collect();
        let found = tx.arrival_times(&id, &hashes).await?;
        for (receipt_id, hash) in look_up {
            known.insert(receipt_id, found.get(&hash).copied());
        }
    }
    let summary = summarize(after);
    Ok(project(after, &summary, |r| {
        known.get(r).copied().flatten()
    }))
}
