//! The admin API: users, devices and the audit trail. Every handler
//! requires the admin role (403 otherwise).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use aidsync_shared::ids::UserId;
use aidsync_shared::roles::Action;

use super::ApiJson;
use super::json::ApiQuery;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::users::{self, CreateUser, WithPassword};
use crate::service::{audit, devices};
use crate::storage::{ChangeRow, DeviceRow, UserRow};

/// `GET /api/v1/users`
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserRow>>, AppError> {
    Ok(Json(users::list(&state.db, &caller).await?))
}

/// `POST /api/v1/users`
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<WithPassword>), AppError> {
    let created = users::create(&state.db, &caller, req, state.clock.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Default, Deserialize)]
pub struct NewPassword {
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/v1/users/{id}/password`: sets the given password, or
/// generates one and returns it once.
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<Json<WithPassword>, AppError> {
    caller.require(Action::Administer)?;
    let id = UserId::parse(&id).map_err(|_| AppError::NotFound(format!("no user {id}")))?;
    Ok(Json(
        users::reset(&state.db, &caller, &id, body.password, state.clock.now_ms()).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceQuery {
    user: Option<String>,
}

/// `GET /api/v1/devices?user=`
pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeviceQuery>,
) -> Result<Json<Vec<DeviceRow>>, AppError> {
    caller.require(Action::Administer)?;
    Ok(Json(state.db.list_devices(q.user.as_deref()).await?))
}

/// `POST /api/v1/devices/{id}/revoke`
pub async fn revoke_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeviceRow>, AppError> {
    caller.require(Action::Administer)?;
    Ok(Json(
        devices::revoke(&state.db, &id, state.clock.now_ms()).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    user: Option<String>,
    device: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/changes?user=&device=&limit=`: the audit trail.
pub async fn list_changes(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ChangeQuery>,
) -> Result<Json<Vec<ChangeRow>>, AppError> {
    caller.require(Action::Administer)?;
    Ok(Json(
        audit::changes(&state.db, q.user, q.device, q.limit).await?,
    ))
}
