//! Creating shipments and reading them for coordinators.

use serde::Serialize;

use aidsync_shared::derive::{Summary, summarize};
use aidsync_shared::ids::ShipmentId;
use aidsync_shared::model::{Conflict, Header, Line, NewShipment, Review, Shipment, ShipmentDoc};
use aidsync_shared::roles::Action;

use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{ChangeAuthor, Db, ShipmentFilter, ShipmentRow, StorageError};

/// The projection row derived from a shipment.
pub fn projection(shipment: &Shipment, summary: &Summary, updated_at: i64) -> ShipmentRow {
    let h = &shipment.header;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    ShipmentRow {
        id: h.id.to_string(),
        facility_id: h.destination_facility.to_string(),
        donor: h.donor.clone(),
        programme: h.programme.clone(),
        reference: h.reference.clone(),
        expected_on: h.expected_on.clone(),
        status: summary.status.as_str().to_owned(),
        expected: n(summary.expected),
        received: n(summary.received),
        damaged: n(summary.damaged),
        outstanding: n(summary.outstanding),
        receipts: n(summary.receipts as u64),
        duplicates: n(summary.duplicates.len() as u64),
        conflicts: n(shipment.conflicts.len() as u64),
        created_at: h.created_at,
        updated_at,
    }
}

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
    tx.upsert_shipment(&projection(&shipment, &summary, now_ms))
        .await?;
    tx.commit().await?;
    tracing::info!(shipment = %new.id, facility = %new.destination_facility, "shipment created");
    detail_of(db, &doc, shipment, summary).await
}

/// Shipments the caller may see, from the projection.
pub async fn list(
    db: &Db,
    caller: &Caller,
    filter: ShipmentFilter,
) -> Result<Vec<ShipmentRow>, AppError> {
    Ok(db
        .list_shipments(&caller.shipment_scope()?, &filter)
        .await?)
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
    tx.commit().await?;
    if !scope.contains(&stored.facility_id, stored.region.as_deref()) {
        return Err(not_found());
    }
    let doc = ShipmentDoc::from_automerge(stored.doc);
    let shipment = doc.read().map_err(|e| {
        AppError::Storage(StorageError::CorruptDocument {
            id: id.to_string(),
            reason: e.to_string(),
        })
    })?;
    let summary = summarize(&shipment);
    detail_of(db, &doc, shipment, summary).await
}

async fn detail_of(
    db: &Db,
    doc: &ShipmentDoc,
    shipment: Shipment,
    summary: Summary,
) -> Result<ShipmentDetail, AppError> {
    let received_at = db.received_at(shipment.header.id.as_str()).await?;
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
    Ok(ShipmentDetail {
        lines: shipment.lines.values().cloned().collect(),
        reviews: shipment.reviews.values().cloned().collect(),
        conflicts: shipment.conflicts.clone(),
        header: shipment.header,
        receipts,
        summary,
    })
}
