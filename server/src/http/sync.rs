use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use aidsync_shared::sync::protocol::{CONTENT_TYPE, SyncRequest, decode, encode};

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::sync::sync as run_sync;

/// `POST /api/v1/sync`: CBOR in, CBOR out.
///
/// The body is always a `SyncResponse` once the request is well-formed. The
/// status tells whether every upload was stored: 200 if so (or nothing was
/// uploaded), 403 if some document's changes were not the caller's to make,
/// 422 if some were refused as invalid, 404 if an upload named a document
/// that does not exist for this caller. Refusals are per
/// document, and the other documents in the request are stored and answered.
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(CONTENT_TYPE) {
        return Err(AppError::UnsupportedMediaType(format!(
            "expected Content-Type: {CONTENT_TYPE}"
        )));
    }
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(format!(
            "sync body larger than {} bytes; sync more often",
            state.limits.max_body_bytes
        )),
        _ => AppError::BadRequest(e.body_text()),
    })?;
    let request: SyncRequest = decode(&body).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let outcome = run_sync(
        &state.db,
        &caller,
        request,
        &state.limits,
        state.clock.now_ms(),
    )
    .await?;
    state.events.publish(outcome.changed);
    let status = if outcome.forbidden > 0 {
        StatusCode::FORBIDDEN
    } else if outcome.refused > 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if outcome.not_found > 0 {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        encode(&outcome.response),
    )
        .into_response())
}

/// `POST /api/v1/sync/import`: a phone's hand-carried file (the body, as
/// the phone wrote it), checked and stored as a sync from that phone.
/// Answers the import's report as JSON, 200 when the file was read and
/// trusted (documents refused on their own are listed in it).
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<crate::service::carried::ImportReport>, AppError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(format!(
            "file larger than {} bytes; the phone should sync more often",
            state.limits.max_body_bytes
        )),
        _ => AppError::BadRequest(e.body_text()),
    })?;
    let (report, changed) = crate::service::carried::import(
        &state.db,
        Some(&caller),
        &body,
        &state.limits,
        state.clock.now_ms(),
    )
    .await?;
    state.events.publish(changed);
    Ok(axum::Json(report))
}
