use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::ApiJson;
use crate::app::AppState;
use crate::error::AppError;
use crate::service::devices::{RegisterDevice, RegisteredDevice, register as register_device};
use crate::service::now_ms;

/// `POST /api/v1/devices`: open registration until accounts arrive.
pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterDevice>,
) -> Result<(StatusCode, Json<RegisteredDevice>), AppError> {
    let device = register_device(&state.db, req, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(device)))
}
