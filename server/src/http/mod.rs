//! The HTTP surface: routes, body handling and middleware. Handlers are thin:
//! they parse, call [`crate::service`], and shape the response.

mod admin;
mod attachments;
mod auth;
mod events;
mod facilities;
mod json;
pub mod observe;
mod openapi;
mod reports;
mod shipments;
mod sync;
pub mod throttle;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::donor::DonorFormat;
use crate::service::export::FileFormat;
use crate::service::reports::FilterQuery;
use json::ApiQuery;

pub use json::ApiJson;

/// Every route, with its middleware. Tests drive this directly or over a port.
/// `serve_metrics`: whether `/metrics` is served here (not when it has a
/// listener of its own, `--metrics-bind`).
pub fn router(state: AppState, serve_metrics: bool) -> Router {
    let max_body = state.limits.max_body_bytes;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi::openapi))
        .route("/api/v1/login", post(auth::login))
        .route("/api/v1/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/sync", post(sync::sync))
        .route("/api/v1/sync/import", post(sync::import))
        .route("/api/v1/events", get(events::events))
        .route(
            "/api/v1/facilities",
            get(facilities::list).post(facilities::create),
        )
        .route(
            "/api/v1/shipments",
            get(reports::shipments).post(shipments::create),
        )
        .route("/api/v1/reports/{name}", get(reports::report))
        .route("/api/v1/attachments.zip", get(reports::attachments))
        .route("/api/v1/shipments/import", post(shipments::import))
        .route("/api/v1/shipments/{id}", get(shipments::detail))
        .route("/api/v1/shipments/{id}/reviews", post(shipments::review))
        .route("/api/v1/shipments/{id}/grn.pdf", get(shipments::grn))
        .route(
            "/api/v1/shipments/{id}/units",
            get(shipments::units).post(shipments::record_unit_step),
        )
        .route("/api/v1/units", get(reports::units))
        .route(
            "/api/v1/asset-register.csv",
            get(|s: State<AppState>, c: Caller, q: ApiQuery<FilterQuery>| {
                reports::asset_register(s, c, q, FileFormat::Csv)
            }),
        )
        .route(
            "/api/v1/asset-register.xlsx",
            get(|s: State<AppState>, c: Caller, q: ApiQuery<FilterQuery>| {
                reports::asset_register(s, c, q, FileFormat::Xlsx)
            }),
        )
        .route(
            "/api/v1/shipments/{id}/donor-report.pdf",
            get(|s: State<AppState>, c: Caller, p: Path<String>| {
                shipments::donor_report(s, c, p, DonorFormat::Pdf)
            }),
        )
        .route(
            "/api/v1/shipments/{id}/donor-report.xlsx",
            get(|s: State<AppState>, c: Caller, p: Path<String>| {
                shipments::donor_report(s, c, p, DonorFormat::Xlsx)
            }),
        )
        .route(
            "/api/v1/donor-report.pdf",
            get(|s: State<AppState>, c: Caller, q: ApiQuery<FilterQuery>| {
                reports::donor_report(s, c, q, DonorFormat::Pdf)
            }),
        )
        .route(
            "/api/v1/donor-report.xlsx",
            get(|s: State<AppState>, c: Caller, q: ApiQuery<FilterQuery>| {
                reports::donor_report(s, c, q, DonorFormat::Xlsx)
            }),
        )
        .route(
            "/api/v1/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route("/api/v1/users/{id}/password", post(admin::reset_password))
        .route("/api/v1/devices", get(admin::list_devices))
        .route("/api/v1/devices/{id}/revoke", post(admin::revoke_device))
        .route("/api/v1/changes", get(admin::list_changes))
        .route(
            "/api/v1/uploads/{sha256}",
            get(attachments::status).patch(attachments::upload),
        )
        .route("/api/v1/blobs/{sha256}", get(attachments::download))
        .route(
            "/api/v1/blobs/{sha256}/thumbnail",
            get(attachments::thumbnail),
        )
        .route(
            "/api/v1/shipments/{id}/attachments.zip",
            get(attachments::export),
        )
        .route("/api/{*rest}", axum::routing::any(not_found));
    let router = if serve_metrics {
        router.route("/metrics", get(observe::metrics))
    } else {
        router
    };
    let router = router
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                // Its events (debug: each request and response; error: 5xx)
                // go in the `request` span `observe::observe` opens around
                // everything, so no second span of its own.
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|_: &axum::extract::Request| tracing::Span::none()),
                )
                // Before any body is read or decompressed: a flood costs
                // the server as little as possible.
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    throttle::limit_requests,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    body_deadline,
                ))
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
        .with_state(state.clone());
    // Everything that is not the API is the phone web app, when there is one.
    let router = match &state.web_root {
        // Compressed for phones on 2G: `scripts/build-web` writes a `.gz`
        // beside the wasm and its glue, served as is; the compression
        // layer compresses the other files (it leaves encoded ones alone).
        Some(root) => router.fallback_service(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(same_origin_redirects))
                .layer(axum::middleware::from_fn(cache_policy))
                .layer(CompressionLayer::new())
                .service(
                    tower_http::services::ServeDir::new(root)
                        .precompressed_gzip()
                        .append_index_html_on_directories(true)
                        .fallback(axum::handler::HandlerWithoutStateExt::into_service(
                            not_found,
                        )),
                ),
        ),
        None => router.fallback(not_found),
    };
    SECURITY_HEADERS
        .into_iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::if_not_present(
                name,
                HeaderValue::from_static(value),
            ))
        })
        // Outermost, so it sees every request (the web app's files, 429s
        // included) and every log line of one carries its id.
        .layer(axum::middleware::from_fn(observe::observe))
}

/// `/metrics` alone, for its own listener (`--metrics-bind`): no API, no
/// web app, no rate limits (the address is meant to be reachable only by
/// the monitoring system).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(observe::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}

/// Headers on every response. The API serves no pages yet, but the phone
/// app will be served from here: a strict policy now means a page can only
/// run this origin's scripts and is never framed by another site.
const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data: blob:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Keeps the web app's directory redirects on this origin. `ServeDir`
/// redirects a directory to its request path plus `/`: for `//evil.example`
/// that is `Location: //evil.example/`, which a browser reads as another
/// host (an open redirect, handy for phishing with this server's name).
/// So a path starting with `//` (or `/\`, which browsers treat alike) is a
/// 404, an absolute-form request target (`GET http://host/dir`) is served
/// as its path alone, and any redirect that would still leave the origin
/// becomes a 404.
async fn same_origin_redirects(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !is_local_path(request.uri().path()) {
        return not_found().await.into_response_owned();
    }
    if request.uri().authority().is_some()
        && let Some(path) = request.uri().path_and_query().cloned()
    {
        *request.uri_mut() = axum::http::Uri::from(path);
    }
    let response = next.run(request).await;
    let leaves = response
        .headers()
        .get(header::LOCATION)
        .is_some_and(|to| !to.to_str().is_ok_and(is_local_path));
    if leaves {
        return not_found().await.into_response_owned();
    }
    response
}

/// How long browsers may keep the web app's files. Files under a
/// versioned path (`/pkg/zxing-<version>/`, written by `scripts/build-web`)
/// never change: a year, immutable. Everything else keeps its name across
/// releases, so a browser revalidates it each time (`no-cache`: a 304 when
/// unchanged), and a new release is never hidden behind an old copy; the
/// service worker keeps the app usable offline either way.
async fn cache_policy(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let immutable = request.uri().path().starts_with("/pkg/zxing-");
    let mut response = next.run(request).await;
    if response.status().is_success() && !response.headers().contains_key(header::CACHE_CONTROL) {
        let policy = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// Whether `path` is a path on this origin when used as a link or a
/// `Location`: it starts with one `/` that a browser will not read as the
/// start of `//host`.
fn is_local_path(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| !rest.starts_with(['/', '\\']))
}

/// Reads the whole request body within `--body-read-timeout-secs` of its
/// head, before any handler waits on it: a client trickling its body a byte
/// at a time holds its connection that long at most (408). The raw, maybe
/// compressed, body is bounded by the decompressed limit (a compressed body
/// is smaller), so this buffers no more than a handler would.
async fn body_deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limits = &state.limits;
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_body_bytes);
    let read = http_body_util::BodyExt::collect(limited);
    let bytes = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return AppError::PayloadTooLarge(format!(
                "request body larger than {} bytes",
                limits.max_body_bytes
            ))
            .into_response_owned();
        }
        Ok(Err(e)) => {
            return AppError::BadRequest(format!("reading the request body: {e}"))
                .into_response_owned();
        }
        Err(_) => {
            return AppError::RequestTimeout(format!(
                "the request body did not arrive within {} s",
                limits.body_read_timeout.as_secs()
            ))
            .into_response_owned();
        }
    };
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    next.run(request).await
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, AppError> {
    state.db.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}

impl AppError {
    fn into_response_owned(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}
