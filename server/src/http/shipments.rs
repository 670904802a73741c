use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use aidsync_shared::ids::{DeliveryId, ShipmentId};
use aidsync_shared::model::{NewReview, NewShipment, NewUnitEvent};

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::events::Changed;
use crate::service::donor::{self, DonorFormat};
use crate::service::import::{self, Imported};
use crate::service::shipments::{self, ShipmentDetail};
use crate::service::units::{self, ShipmentUnits};

/// `GET /api/v1/shipments/{id}`
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ShipmentDetail>, AppError> {
    let id = ShipmentId::parse(&id).map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    Ok(Json(shipments::detail(&state.db, &caller, &id).await?))
}

/// `?delivery=<id>`: the one delivery a goods-received note is for.
#[derive(Debug, serde::Deserialize)]
pub struct GrnQuery {
    #[serde(default)]
    delivery: Option<String>,
}

/// `GET /api/v1/shipments/{id}/grn.pdf[?delivery=<id>]`: the goods-received
/// note of one delivery, or of every receipt of the shipment, as PDF.
pub async fn grn(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<GrnQuery>,
) -> Result<Response, AppError> {
    let id = ShipmentId::parse(&id).map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    let delivery = query
        .delivery
        .filter(|d| !d.is_empty())
        .map(|d| DeliveryId::parse(&d).map_err(|_| AppError::NotFound(format!("no delivery {d}"))))
        .transpose()?;
    let pdf = crate::service::grn::pdf(
        &state.db,
        &caller,
        &id,
        delivery.as_ref(),
        state.clock.now_ms(),
    )
    .await?;
    let name = match &delivery {
        Some(d) => format!("{id}-grn-{d}.pdf"),
        None => format!("{id}-grn.pdf"),
    };
    Ok(download("application/pdf", &name, pdf))
}

/// `GET /api/v1/shipments/{id}/donor-report.{pdf,xlsx}`: the donor's
/// discrepancy report of one shipment.
pub async fn donor_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    format: DonorFormat,
) -> Result<Response, AppError> {
    let id = ShipmentId::parse(&id).map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    let bytes = donor::for_shipment(&state.db, &caller, &id, format, state.clock.now_ms()).await?;
    Ok(download(
        format.content_type(),
        &format!("{id}-donor-report.{}", format.extension()),
        bytes,
    ))
}

/// A file to save: its type, and the name to save it under (made of ids
/// and dates: letters, digits, `-`, `_` and `.`, safe quoted).
pub(crate) fn download(content_type: &'static str, name: &str, bytes: Vec<u8>) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `POST /api/v1/shipments`
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewShipment>,
) -> Result<(StatusCode, Json<ShipmentDetail>), AppError> {
    let created = shipments::create(&state.db, &caller, new, state.clock.now_ms()).await?;
    state.events.publish(vec![changed(&created)]);
    Ok((StatusCode::CREATED, Json(created)))
}

/// `POST /api/v1/shipments/{id}/reviews`: a coordinator's note, verdict and
/// the receipts it settles.
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewReview>,
) -> Result<(StatusCode, Json<ShipmentDetail>), AppError> {
    let id = ShipmentId::parse(&id).map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    let reviewed = shipments::review(&state.db, &caller, &id, new, state.clock.now_ms()).await?;
    state.events.publish(vec![changed(&reviewed)]);
    Ok((StatusCode::CREATED, Json(reviewed)))
}

/// `GET /api/v1/shipments/{id}/units`: every serialised unit with its
/// steps after receipt, and the counts.
pub async fn units(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ShipmentUnits>, AppError> {
    let id = ShipmentId::parse(&id).map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    let now = state.clock.now_ms();
    Ok(Json(
        units::for_shipment(&state.db, &caller, &id, now).await?,
    ))
}

/// `POST /api/v1/shipments/{id}/units`: one step of one unit (a
/// coordinator's hand-over, or a receiver's step from a browser).
pub async fn record_unit_step(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewUnitEvent>,
) -> Result<(StatusCode, Json<ShipmentUnits>), AppError> {
    let id = ShipmentId::parse(&id).map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    let now = state.clock.now_ms();
    let recorded = units::record(&state.db, &caller, &id, new, now).await?;
    state.events.publish(vec![Changed {
        shipment: recorded.shipment_id.to_string(),
        facility: recorded.facility_id.to_string(),
    }]);
    Ok((StatusCode::CREATED, Json(recorded)))
}

/// `POST /api/v1/shipments/import` with a CSV manifest as the body
/// (`text/csv`): creates every shipment in it, or none and a list of every
/// bad row.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Imported>), AppError> {
    // Who may import comes first: a receiver learns nothing about formats.
    caller.require(aidsync_shared::roles::Action::ManageShipments)?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(AppError::UnsupportedMediaType(format!(
            "send the manifest as text/csv, not {content_type:?}"
        )));
    }
    let imported = import::import(&state.db, &caller, &body, state.clock.now_ms()).await?;
    state.events.publish(imported.changed.clone());
    Ok((StatusCode::CREATED, Json(imported)))
}

fn changed(detail: &ShipmentDetail) -> Changed {
    Changed {
        shipment: detail.header.id.to_string(),
        facility: detail.header.destination_facility.to_string(),
    }
}
