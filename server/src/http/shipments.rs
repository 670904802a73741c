use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use aidsync_shared::derive::Status;
use aidsync_shared::ids::{FacilityId, ShipmentId};
use aidsync_shared::model::NewShipment;

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::shipments::{self, ShipmentDetail};
use crate::storage::{ShipmentFilter, ShipmentRow};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    facility: Option<String>,
    status: Option<String>,
}

/// `GET /api/v1/shipments?facility=&status=`
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<ShipmentRow>>, AppError> {
    let facility = q
        .facility
        .map(|f| FacilityId::parse(f).map_err(|e| AppError::BadRequest(format!("facility: {e}"))))
        .transpose()?;
    let status = q
        .status
        .map(|s| {
            Status::parse(&s).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "status: {s:?} is not one of awaiting, partial, complete, discrepancy"
                ))
            })
        })
        .transpose()?;
    let filter = ShipmentFilter {
        facility: facility.map(|f| f.to_string()),
        status: status.map(|s| s.as_str().to_owned()),
    };
    Ok(Json(shipments::list(&state.db, &caller, filter).await?))
}

/// `GET /api/v1/shipments/{id}`
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ShipmentDetail>, AppError> {
    let id = ShipmentId::parse(&id).map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    Ok(Json(shipments::detail(&state.db, &caller, &id).await?))
}

/// `POST /api/v1/shipments`
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewShipment>,
) -> Result<(StatusCode, Json<ShipmentDetail>), AppError> {
    let created = shipments::create(&state.db, &caller, new, state.clock.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}
