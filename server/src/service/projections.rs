//! Keeping the coordinator projections in step with the documents, and
//! rebuilding them from the documents.

use std::collections::HashMap;

use aidsync_shared::derive::{Summary, summarize};
use aidsync_shared::model::{Shipment, ShipmentDoc};
use aidsync_shared::projection::{Projection, project};

use crate::storage::{Arrival, Db, PROJECTION_VERSION, StorageError, Tx};

/// Writes all of a shipment's rows in `tx`, the transaction that stores
/// its changes, so the rows never disagree with a committed document.
/// Returns when each of its changes reached the server (by hex hash),
/// which the caller's answer may need too, and the rows.
pub async fn refresh(
    tx: &mut Tx,
    doc: &ShipmentDoc,
    shipment: &Shipment,
    summary: &Summary,
    now_ms: i64,
) -> Result<(HashMap<String, Arrival>, Projection), StorageError> {
    let arrivals = tx.arrivals(shipment.header.id.as_str()).await?;
    let origins = doc.receipt_origins();
    let rows = project(shipment, summary, |receipt| {
        origins
            .get(receipt)
            .and_then(|hash| arrivals.get(&hash.to_string()))
            .map(|a| a.at)
    });
    tx.write_projection(&rows, now_ms).await?;
    Ok((arrivals, rows))
}

/// Recomputes every row from the stored documents, one shipment per
/// transaction (so syncs carry on meanwhile), calling `progress(done,
/// total)` after each. A document of an older schema is upgraded first
/// ([`super::shipments::upgrade`]): a new schema comes with new rows, so
/// this pass runs once per upgrade anyway. Returns how many shipments it
/// rebuilt.
pub async fn rebuild(
    db: &Db,
    now_ms: i64,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize, StorageError> {
    let ids = db.document_ids().await?;
    for (done, id) in ids.iter().enumerate() {
        upgrade(db, id, now_ms).await?;
        let mut tx = db.begin_write().await?;
        // Deleted between listing and now: nothing to project.
        if let Some(stored) = tx.load_document(id, true).await? {
            let doc = ShipmentDoc::from_automerge(stored.doc);
            let shipment = doc.read().map_err(|e| StorageError::CorruptDocument {
                id: id.clone(),
                reason: e.to_string(),
            })?;
            tx.clear_projection(id).await?;
            refresh(&mut tx, &doc, &shipment, &summarize(&shipment), now_ms).await?;
        }
        tx.commit().await?;
        progress(done + 1, ids.len());
    }
    let mut tx = db.begin_write().await?;
    tx.set_projection_version(PROJECTION_VERSION).await?;
    tx.commit().await?;
    Ok(ids.len())
}

/// Rebuilds the rows if they follow older rules than this build's (or
/// were never built, on a database from before projections existed).
pub async fn rebuild_if_stale(db: &Db, now_ms: i64) -> Result<(), StorageError> {
    let stored = db.projection_version().await?;
    if stored >= PROJECTION_VERSION {
        return Ok(());
    }
    tracing::info!(
        stored,
        current = PROJECTION_VERSION,
        "rebuilding coordinator projections"
    );
    let rebuilt = rebuild(db, now_ms, |done, total| {
        if done % 500 == 0 || done == total {
            tracing::info!(done, total, "projections rebuilt");
        }
    })
    .await?;
    tracing::info!(shipments = rebuilt, "projections up to date");
    Ok(())
}

/// [`super::shipments::upgrade`] on a stored id, its errors as storage's.
async fn upgrade(db: &Db, id: &str, now_ms: i64) -> Result<(), StorageError> {
    let corrupt = |reason: String| StorageError::CorruptDocument {
        id: id.to_owned(),
        reason,
    };
    let shipment = id
        .parse()
        .map_err(|e: aidsync_shared::ids::IdError| corrupt(e.to_string()))?;
    match super::shipments::upgrade(db, &shipment, now_ms).await {
        Ok(true) => {
            tracing::info!(shipment = id, "document upgraded to the current schema");
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(crate::error::AppError::Storage(e)) => Err(e),
        // Deleted since it was listed: nothing to upgrade.
        Err(crate::error::AppError::NotFound(_)) => Ok(()),
        Err(e) => Err(corrupt(e.to_string())),
    }
}
