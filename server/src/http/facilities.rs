use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::facilities::{self, NewFacility};
use crate::storage::FacilityRow;

/// `GET /api/v1/facilities`
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<FacilityRow>>, AppError> {
    Ok(Json(facilities::list(&state.db, &caller).await?))
}

/// `POST /api/v1/facilities`
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewFacility>,
) -> Result<(StatusCode, Json<FacilityRow>), AppError> {
    let row = facilities::create(&state.db, &caller, new, state.clock.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(row)))
}
