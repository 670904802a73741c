//! The HTTP surface: routes, body handling and middleware. Handlers are thin:
//! they parse, call [`crate::service`], and shape the response.

mod devices;
mod facilities;
mod json;
mod shipments;
mod sync;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::error::AppError;

pub use json::ApiJson;

/// Every route, with its middleware. Tests drive this directly or over a port.
pub fn router(state: AppState) -> Router {
    let max_body = state.limits.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/devices", post(devices::register))
        .route("/api/v1/sync", post(sync::sync))
        .route(
            "/api/v1/facilities",
            get(facilities::list).post(facilities::create),
        )
        .route(
            "/api/v1/shipments",
            get(shipments::list).post(shipments::create),
        )
        .route("/api/v1/shipments/{id}", get(shipments::detail))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                // A panic is a bug, but it must not take the server down.
                .layer(CatchPanicLayer::custom(|_| {
                    AppError::Internal(anyhow::anyhow!("handler panicked")).into_response_owned()
                }))
                .layer(CompressionLayer::new())
                .layer(RequestDecompressionLayer::new())
                // Applies to the decompressed body, so a small gzip bomb is
                // refused as early as a large plain body.
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(state)
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, AppError> {
    state.db.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}

async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}

impl AppError {
    fn into_response_owned(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}
