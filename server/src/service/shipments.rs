//! Creating shipments and reading them for coordinators.

use std::collections::HashMap;

use serde::Serialize;

use aidsync_shared::derive::{Summary, summarize};
use aidsync_shared::ids::ShipmentId;
use aidsync_shared::model::{
    Conflict, Header, Line, ModelError, NewReview, NewShipment, Review, Shipment, ShipmentDoc,
};
use aidsync_shared::roles::Action;

use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Arrival, ChangeAuthor, Db, StorageError, StoredDocument, Tx};

/// The one shipment id the API cannot address: its path is the import route.
const RESERVED_ID: &str = "import";

/// A new shipment checked and built, not yet stored.
pub struct Prepared {
    pub doc: ShipmentDoc,
    pub shipment: Shipment,
    pub summary: Summary,
}

/// Why a new shipment cannot be created, and which field is to blame.
pub struct Unfit {
    pub field: Option<String>,
    pub error: AppError,
}

/// Checks a new shipment (the model's rules, its facility, the caller's
/// region) and builds its document, signed by the caller's device.
pub async fn prepare(
    db: &Db,
    caller: &Caller,
    new: &NewShipment,
    now_ms: i64,
) -> Result<Prepared, Unfit> {
    if new.id.as_str() == RESERVED_ID {
        return Err(Unfit {
            field: Some("id".to_owned()),
            error: AppError::Unprocessable(format!(
                "id: {RESERVED_ID:?} is reserved (POST /api/v1/shipments/{RESERVED_ID} imports manifests)"
            )),
        });
    }
    let facility_field = || Some("destination_facility".to_owned());
    let facility =
        super::facilities::require(db, "destination_facility", &new.destination_facility)
            .await
            .map_err(|error| Unfit {
                field: facility_field(),
                error,
            })?;
    if !caller
        .scope()
        .contains(&facility.id, Some(facility.region.as_str()))
    {
        return Err(Unfit {
            field: facility_field(),
            error: AppError::Forbidden(format!(
                "destination_facility: {} is outside your region",
                facility.id
            )),
        });
    }
    let model = |e: ModelError| Unfit {
        field: None,
        error: AppError::Unprocessable(e.to_string()),
    };
    let doc =
        ShipmentDoc::create(new, &caller.user, caller.actor.clone(), now_ms).map_err(model)?;
    let shipment = doc.read().map_err(model)?;
    let summary = summarize(&shipment);
    Ok(Prepared {
        doc,
        shipment,
        summary,
    })
}

/// Stores a prepared shipment and its projections in `tx`; 409 if its id
/// is taken (in any region: ids are global). Returns when its changes
/// reached the server, by hex hash.
pub async fn insert(
    tx: &mut Tx,
    caller: &Caller,
    prepared: &mut Prepared,
    now_ms: i64,
) -> Result<HashMap<String, Arrival>, AppError> {
    let header = &prepared.shipment.header;
    if tx.document_exists(header.id.as_str()).await? {
        return Err(AppError::Conflict(format!(
            "shipment {} already exists",
            header.id
        )));
    }
    let version = tx.next_version().await?;
    let author = ChangeAuthor {
        device_id: Some(caller.device.as_str()),
        user_id: caller.user.as_str(),
        signers: None,
    };
    tx.insert_document(
        header.id.as_str(),
        header.destination_facility.as_str(),
        prepared.doc.automerge_mut(),
        version,
        &author,
        now_ms,
    )
    .await?;
    let received_at = super::projections::refresh(
        tx,
        &prepared.doc,
        &prepared.shipment,
        &prepared.summary,
        now_ms,
    )
    .await?
    .0;
    tracing::info!(shipment = %header.id, facility = %header.destination_facility, "shipment created");
    Ok(received_at)
}

/// Creates a shipment: coordinators only, for a facility in their region.
pub async fn create(
    db: &Db,
    caller: &Caller,
    new: NewShipment,
    now_ms: i64,
) -> Result<ShipmentDetail, AppError> {
    caller.require(Action::ManageShipments)?;
    let mut prepared = prepare(db, caller, &new, now_ms)
        .await
        .map_err(|unfit| unfit.error)?;
    let mut tx = db.begin_write().await?;
    let received_at = insert(&mut tx, caller, &mut prepared, now_ms).await?;
    tx.commit().await?;
    let Prepared {
        doc,
        shipment,
        summary,
    } = prepared;
    Ok(detail_of(&doc, shipment, summary, &received_at))
}

/// A coordinator's review of a shipment: a note, a verdict, and the
/// receipts it settles. It is a change to the document like any other, so
/// phones receive it on their next sync.
pub async fn review(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
    new: NewReview,
    now_ms: i64,
) -> Result<ShipmentDetail, AppError> {
    caller.require(Action::WriteReviews)?;
    let by = caller.user.clone();
    edit(db, caller, id, now_ms, move |doc| {
        doc.add_review(new, &by, now_ms).map(|_| ())
    })
    .await
}

/// Applies one edit, made on the server with the caller's device actor, to
/// a stored shipment (see [`change_document`]). A shipment outside the
/// caller's scope is reported as missing.
async fn edit(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
    now_ms: i64,
    change: impl FnOnce(&mut ShipmentDoc) -> Result<(), ModelError>,
) -> Result<ShipmentDetail, AppError> {
    edit_with(db, caller, id, now_ms, change, |doc, shipment, arrivals| {
        let summary = summarize(&shipment);
        detail_of(doc, shipment, summary, arrivals)
    })
    .await
}

/// [`edit`], answering with what `finish` makes of the committed state.
pub(crate) async fn edit_with<T>(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
    now_ms: i64,
    change: impl FnOnce(&mut ShipmentDoc) -> Result<(), ModelError>,
    finish: impl FnOnce(&ShipmentDoc, Shipment, &HashMap<String, Arrival>) -> T,
) -> Result<T, AppError> {
    let scope = caller.shipment_scope()?;
    let author = ChangeAuthor {
        device_id: Some(caller.device.as_str()),
        user_id: caller.user.as_str(),
        signers: None,
    };
    change_document(
        db,
        id,
        Some(&scope),
        caller.actor.clone(),
        &author,
        now_ms,
        change,
        finish,
    )
    .await
}

/// Who the server's own changes (schema upgrades) are recorded as.
pub const SERVER_USER: &str = "aidsync-server";

/// Brings a stored shipment to the current schema ([`ShipmentDoc::upgrade`])
/// as a change of the server's own, through the one write path; phones
/// receive it on their next sync. Returns whether it changed anything.
pub async fn upgrade(db: &Db, id: &ShipmentId, now_ms: i64) -> Result<bool, AppError> {
    let author = ChangeAuthor {
        device_id: None,
        user_id: SERVER_USER,
        signers: None,
    };
    let mut upgraded = false;
    change_document(
        db,
        id,
        None,
        automerge::ActorId::random(),
        &author,
        now_ms,
        |doc| {
            upgraded = doc.upgrade(now_ms)?;
            Ok(())
        },
        |_, _, _| (),
    )
    .await?;
    Ok(upgraded)
}

/// Applies one edit, signed by `actor`, to a stored shipment: stores the
/// new changes, refreshes the projections and bumps the version (so phones
/// fetch it) in one transaction. An edit that makes no change stores
/// nothing. A shipment outside `scope` (when given) is reported as
/// missing; an edit the model refuses is a 422 and stores nothing.
/// `finish` sees the committed state (document, model, when each change
/// arrived) before it goes back to the cache.
#[allow(clippy::too_many_arguments)]
async fn change_document<T>(
    db: &Db,
    id: &ShipmentId,
    scope: Option<&crate::storage::Scope>,
    actor: automerge::ActorId,
    author: &ChangeAuthor<'_>,
    now_ms: i64,
    change: impl FnOnce(&mut ShipmentDoc) -> Result<(), ModelError>,
    finish: impl FnOnce(&ShipmentDoc, Shipment, &HashMap<String, Arrival>) -> T,
) -> Result<T, AppError> {
    let not_found = || AppError::NotFound(format!("no shipment {id}"));
    let mut tx = db.begin_write().await?;
    let mut co = tx
        .checkout(db.documents(), id.as_str(), true)
        .await?
        .ok_or_else(not_found)?;
    let stored = &co.loaded.stored;
    if scope.is_some_and(|scope| !scope.contains(&stored.facility_id, stored.region.as_deref())) {
        co.keep();
        return Err(not_found());
    }
    // Edited in place; a refused edit discards the cached state.
    let mut doc = ShipmentDoc::from_automerge(std::mem::take(&mut co.loaded.stored.doc));
    let before = doc.heads();
    doc.set_actor(actor);
    let edited = change(&mut doc).and_then(|()| doc.read());
    let shipment = match edited {
        Ok(shipment) => shipment,
        Err(e) => {
            co.discard();
            return Err(AppError::Unprocessable(e.to_string()));
        }
    };
    let new_changes = doc.automerge_mut().get_changes(&before);
    co.loaded.stored.doc = doc.into_automerge();
    if !new_changes.is_empty() {
        let version = tx.next_version().await?;
        super::store::store_changes(
            &mut tx,
            &mut co,
            shipment.clone(),
            &new_changes,
            version,
            author,
            now_ms,
        )
        .await?;
    }
    let arrivals = tx.arrivals(id.as_str()).await?;
    tx.commit().await?;
    let doc = ShipmentDoc::from_automerge(std::mem::take(&mut co.loaded.stored.doc));
    let result = finish(&doc, shipment, &arrivals);
    co.loaded.stored.doc = doc.into_automerge();
    co.keep();
    Ok(result)
}

/// A receipt with when it reached the server.
#[derive(Debug, Serialize)]
pub struct ReceiptView {
    #[serde(flatten)]
    pub receipt: aidsync_shared::model::Receipt,
    pub voided: bool,
    /// When the server stored it (ms since epoch); `None` if unknown.
    pub received_at: Option<i64>,
    /// The name its device was given at login (e.g. "anna's phone
    /// (Android, Chrome)"); `None` if unknown.
    pub device_name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ShipmentDetail {
    #[serde(flatten)]
    pub header: Header,
    pub lines: Vec<Line>,
    pub receipts: Vec<ReceiptView>,
    pub reviews: Vec<Review>,
    pub conflicts: Vec<Conflict>,
    /// Files attached (with whether they were removed since) and removals.
    pub attachments: Vec<aidsync_shared::projection::AttachmentRow>,
    /// Deliveries (trucks) recorded, in id order; a later one may
    /// `replace` an earlier one.
    pub deliveries: Vec<aidsync_shared::model::Delivery>,
    pub summary: Summary,
}

/// One shipment with everything derived from it. A shipment the caller may
/// not see is reported exactly like one that does not exist.
pub async fn detail(db: &Db, caller: &Caller, id: &ShipmentId) -> Result<ShipmentDetail, AppError> {
    let mut tx = db.begin_read().await?;
    let stored = load_visible(&mut tx, caller, id).await?;
    let received_at = tx.arrivals(id.as_str()).await?;
    tx.commit().await?;
    let doc = ShipmentDoc::from_automerge(stored.doc);
    let shipment = read_stored(&doc, id)?;
    let summary = summarize(&shipment);
    Ok(detail_of(&doc, shipment, summary, &received_at))
}

/// A stored shipment the caller may see, loaded in `tx`. One they may not
/// see is a 404, exactly like one that does not exist.
pub(crate) async fn load_visible(
    tx: &mut Tx,
    caller: &Caller,
    id: &ShipmentId,
) -> Result<StoredDocument, AppError> {
    let scope = caller.shipment_scope()?;
    let not_found = || AppError::NotFound(format!("no shipment {id}"));
    let stored = tx
        .load_document(id.as_str(), false)
        .await?
        .ok_or_else(not_found)?;
    if !scope.contains(&stored.facility_id, stored.region.as_deref()) {
        return Err(not_found());
    }
    Ok(stored)
}

/// A shipment the caller may see, read, with its facility's name (`None`
/// if the facility is gone): what the reports, notes and registers that
/// read documents start from. One the caller may not see is a 404.
pub(crate) async fn read_visible(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
) -> Result<(Shipment, Option<String>), AppError> {
    let mut tx = db.begin_read().await?;
    let stored = load_visible(&mut tx, caller, id).await?;
    tx.commit().await?;
    let facility = db.facility(&stored.facility_id).await?.map(|f| f.name);
    let doc = ShipmentDoc::from_automerge(stored.doc);
    Ok((read_stored(&doc, id)?, facility))
}

/// A stored document's shipment. Every stored document was checked when
/// it was written, so one that does not read is the server's fault (500).
pub(crate) fn read_stored(doc: &ShipmentDoc, id: &ShipmentId) -> Result<Shipment, AppError> {
    doc.read().map_err(|e| {
        AppError::Storage(StorageError::CorruptDocument {
            id: id.to_string(),
            reason: e.to_string(),
        })
    })
}

fn detail_of(
    doc: &ShipmentDoc,
    shipment: Shipment,
    summary: Summary,
    arrivals: &HashMap<String, Arrival>,
) -> ShipmentDetail {
    let origins = doc.receipt_origins();
    let voided = shipment.voided();
    let receipts = shipment
        .receipts
        .values()
        .map(|r| {
            let arrival = origins
                .get(&r.id)
                .and_then(|hash| arrivals.get(&hash.to_string()));
            ReceiptView {
                voided: voided.contains(&r.id),
                received_at: arrival.map(|a| a.at),
                device_name: arrival.and_then(|a| a.device_name.clone()),
                receipt: r.clone(),
            }
        })
        .collect();
    ShipmentDetail {
        attachments: aidsync_shared::projection::attachment_rows(
            &shipment,
            shipment.header.id.as_str(),
        ),
        lines: shipment.lines.values().cloned().collect(),
        deliveries: shipment.deliveries.values().cloned().collect(),
        reviews: shipment.reviews.values().cloned().collect(),
        conflicts: shipment.conflicts.clone(),
        header: shipment.header,
        receipts,
        summary,
    }
}
