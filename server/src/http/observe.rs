//! Seeing what the server does: a request id on every request (its log
//! lines, its response), request counts and durations, and `GET /metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::app::AppState;

/// The header a request id comes in (from a proxy that assigned one) and
/// goes out in.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client; longer ones are replaced.
const MAX_REQUEST_ID: usize = 64;

/// The route label of a request no route matched (web app files, 404s).
const UNMATCHED: &str = "unmatched";

/// Middleware, outermost: gives the request an id, runs it inside a
/// `request` span carrying that id (so every log line of the request does,
/// refusals and 5xx errors included), returns the id as `X-Request-Id`,
/// and counts the request by route template, method and status.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| is_sane_request_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new_request_id);
    // Handlers see the id that is logged, never the one it replaced.
    request.headers_mut().insert(REQUEST_ID, id.clone());
    // The template (`/api/v1/shipments/{id}`), never the path: a label per
    // path would let clients grow the metrics without bound.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        // Sane ids are visible ASCII, so `to_str` never fails. Displayed
        // (`%`), so text logs show them unquoted.
        request_id = %id.to_str().unwrap_or_default(),
        method = %method,
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    crate::metrics::request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// An id a client or proxy sent that is fit for logs and headers: 1 to 64
/// visible ASCII characters (no spaces, no control characters).
fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

/// 16 random hex digits: unique enough to find one request's lines among
/// a server's logs, short enough to read out over the phone.
fn new_request_id() -> HeaderValue {
    let id = format!("{:016x}", rand::random::<u64>());
    // Hex digits are always a valid header value.
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("0"))
}

/// `GET /metrics`: every metric in the Prometheus text format. The pool
/// gauges are read now, so they are as fresh as the scrape.
pub async fn metrics(State(state): State<AppState>) -> Response {
    crate::metrics::pool(state.db.pool_stats());
    crate::metrics::document_cache(state.db.documents().stats());
    crate::metrics::group_commit(state.db.group_stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{is_sane_request_id, new_request_id};

    #[test]
    fn request_ids_from_clients_are_short_visible_ascii() {
        assert!(is_sane_request_id(b"3f2a9c1e-7b7d-4c1b-9f00-1a2b3c4d5e6f"));
        assert!(is_sane_request_id(b"a"));
        assert!(is_sane_request_id(&[b'x'; 64]));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(&[b'x'; 65]));
        assert!(!is_sane_request_id(b"two words"));
        assert!(!is_sane_request_id(b"tab\there"));
        assert!(!is_sane_request_id(b"line\nbreak"));
        assert!(!is_sane_request_id("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn generated_request_ids_are_sane_and_differ() {
        let a = new_request_id();
        let b = new_request_id();
        assert!(is_sane_request_id(a.as_bytes()));
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
