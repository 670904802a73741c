use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use aidsync_shared::ids::ShipmentId;
use aidsync_shared::model::NewShipment;

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::shipments::{self, ShipmentDetail};

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
