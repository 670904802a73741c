//! Creating shipments and reading them for coordinators.

use serde::Serialize;

use aidsync_shared::derive::{Summary, summarize};
use aidsync_shared::ids::ShipmentId;
use aidsync_shared::model::{Conflict, Header, Line, NewShipment, Review, Shipment, ShipmentDoc};
use aidsync_shared::roles::Action;

use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{ChangeAuthor, Db, StorageError};

/// Creates a shipment document signed by the caller's device: coordinators
/// only, for a facility in their region.
pub async fn create(
    db: &Db,
    caller: &Caller,
    new: NewShipment,
    now_ms: i64,
) -> Result<ShipmentDetail, AppError> {
    caller.require(Action::ManageShipments)?;
    let facility =
        super::facilities::require(db, "destination_facility", &new.destination_facility).await?;
    if !caller
        .scope()
        .contains(&facility.id, Some(facility.region.as_str()))
    {
        return Err(AppError::Forbidden(format!(
            "destination_facility: {} is outside your region",
            facility.id
        )));
    }
    let mut doc = ShipmentDoc::create(&new, &caller.user, caller.actor.clone(), now_ms)
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    let shipment = doc
        .read()
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    let summary = summarize(&shipment);

    let mut tx = db.begin_write().await?;
    if tx.load_document(new.id.as_str(), true).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "shipment {} already exists",
            new.id
        )));
    }
    let version = tx.next_version().await?;
    let author = ChangeAuthor {
        device_id: Some(caller.device.as_str()),
        user_id: caller.user.as_str(),
        signers: None,
    };
    tx.insert_document(
        new.id.as_str(),
        new.destination_facility.as_str(),
        doc.automerge_mut(),
        version,
        &author,
        now_ms,
    )
    .await?;
    super::projections::refresh(&mut tx, &doc, &shipment, &summary, now_ms).await?;
    let received_at = tx.received_at(new.id.as_str()).await?;
    tx.commit().await?;
    tracing::info!(shipment = %new.id, facility = %new.destination_facility, "shipment created");
    Ok(detail_of(&doc, shipment, summary, &received_at))
}

/// A receipt with when it reached the server.
#[derive(Debug, Serialize)]
pub struct ReceiptView {
    #[serde(flatten)]
    pub receipt: aidsync_shared::model::Receipt,
    pub voided: bool,
    /// When the server stored it (ms since epoch); `None` if unknown.
    pub received_at: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ShipmentDetail {
    #[serde(flatten)]
    pub header: Header,
    pub lines: Vec<Line>,
    pub receipts: Vec<ReceiptView>,
    pub reviews: Vec<Review>,
    pub conflicts: Vec<Conflict>,
    pub summary: Summary,
}

/// One shipment with everything derived from it. A shipment the caller may
/// not see is reported exactly like one that does not exist.
pub async fn detail(db: &Db, caller: &Caller, id: &ShipmentId) -> Result<ShipmentDetail, AppError> {
    let scope = caller.shipment_scope()?;
    let not_found = || AppError::NotFound(format!("no shipment {id}"));
    let mut tx = db.begin_read().await?;
    let stored = tx
        .load_document(id.as_str(), false)
        .await?
        .ok_or_else(not_found)?;
    if !scope.contains(&stored.facility_id, stored.region.as_deref()) {
        return Err(not_found());
    }
    let received_at = tx.received_at(id.as_str()).await?;
    tx.commit().await?;
    let doc = ShipmentDoc::from_automerge(stored.doc);
    let shipment = doc.read().map_err(|e| {
        AppError::Storage(StorageError::CorruptDocument {
            id: id.to_string(),
            reason: e.to_string(),
        })
    })?;
    let summary = summarize(&shipment);
    Ok(detail_of(&doc, shipment, summary, &received_at))
}

fn detail_of(
    doc: &ShipmentDoc,
    shipment: Shipment,
    summary: Summary,
    received_at: &std::collections::HashMap<String, i64>,
) -> ShipmentDetail {
    let origins = doc.receipt_origins();
    let voided = shipment.voided();
    let receipts = shipment
        .receipts
        .values()
        .map(|r| ReceiptView {
            voided: voided.contains(&r.id),
            received_at: origins
                .get(&r.id)
                .and_then(|hash| received_at.get(&hash.to_string()).copied()),
            receipt: r.clone(),
        })
        .collect();
    ShipmentDetail {
        lines: shipment.lines.values().cloned().collect(),
        reviews: shipment.reviews.values().cloned().collect(),
        conflicts: shipment.conflicts.clone(),
        header: shipment.header,
        receipts,
        summary,
    }
}
