use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;

use aidsync_shared::ids::UserId;

use super::ApiJson;
use super::throttle::client_ip;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::auth::{self, LoginRequest, Me, Session};
use crate::storage::DeviceRow;

/// `POST /api/v1/login`: password in, a new device and its token out.
pub async fn login(
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, Json<Session>), AppError> {
    let ip = client_ip(request.extensions());
    let ApiJson(req) = ApiJson::<LoginRequest>::from_request(request, &state).await?;
    let now = state.clock.now_ms();
    // The limiter's key is the user id the login will look up, so padding
    // a name does not dodge the limit, and a junk name (up to the body
    // limit in size) is never stored as a key.
    let user = UserId::parse(req.user.trim())
        .map(String::from)
        .unwrap_or_default();
    state
        .throttles
        .start_login(&state.db, ip, &user, now)
        .await?;
    // At most one argon2 check per core at a time: each takes ~19 MiB, and a
    // flood of logins must queue here rather than exhaust memory.
    let _permit = state
        .password_checks
        .acquire()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password check queue: {e}")))?;
    let result = auth::login(&state.db, req, state.limits.token_ttl_ms, now).await;
    match &result {
        Ok(_) => {
            state
                .throttles
                .login_succeeded(&state.db, ip, &user, now)
                .await?
        }
        Err(AppError::BadCredentials) => {
            crate::metrics::login_failed();
            tracing::info!(user = %user, ?ip, "login failed");
        }
        Err(_) => {}
    }
    result.map(|session| (StatusCode::CREATED, Json(session)))
}

/// `POST /api/v1/logout`: revokes the calling device's token.
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<DeviceRow>, AppError> {
    Ok(Json(
        auth::logout(&state.db, &caller, state.clock.now_ms()).await?,
    ))
}

/// `GET /api/v1/me`
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, AppError> {
    Ok(Json(auth::me(&state.db, &caller).await?))
}
