//! Attachment bytes over HTTP: `GET`/`PATCH /api/v1/uploads/{sha256}` for
//! resumable uploads (the offset rules of tus, in two requests), and
//! `GET /api/v1/blobs/{sha256}` for downloads with `ETag` and `Range`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::attachments::{self, Chunk, UploadStatus};

/// Where the chunk in the body starts in the file.
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
/// The whole file's length.
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");

/// `GET /api/v1/uploads/{sha256}`: how many bytes of the file the server
/// holds (the next chunk starts there), and whether it is complete.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    let status = attachments::upload_status(&state.db, &caller, &sha256).await?;
    Ok(with_offset(status))
}

/// `PATCH /api/v1/uploads/{sha256}`: the body is the file's bytes from
/// `Upload-Offset` on; `Upload-Length` is the whole file's length.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let chunk = Chunk {
        offset: number(&headers, &UPLOAD_OFFSET)?,
        total: number(&headers, &UPLOAD_LENGTH)?,
        bytes: &body,
    };
    let status = attachments::upload_chunk(
        &state.db,
        &caller,
        &sha256,
        chunk,
        &state.limits,
        state.clock.now_ms(),
    )
    .await?;
    Ok(with_offset(status))
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Result<u64, AppError> {
    let value = headers
        .get(name)
        .ok_or_else(|| AppError::BadRequest(format!("header {name} is required")))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| AppError::BadRequest(format!("header {name}: expected a whole number")))
}

fn with_offset(status: UploadStatus) -> Response {
    let offset = HeaderValue::from(status.offset);
    let mut response = Json(status).into_response();
    response.headers_mut().insert(UPLOAD_OFFSET, offset);
    response
}

/// `GET /api/v1/blobs/{sha256}`: the file, to anyone who may see a shipment
/// that attaches it. Its hash is its `ETag`, so a browser revalidates for
/// free; one `Range` (`bytes=a-b`, `a-`, `-n`) gets a 206.
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let blob = attachments::download(&state.db, &caller, &sha256).await?;
    let etag = format!("\"{sha256}\"");
    let size = blob.bytes.len() as u64;
    let mut response = if if_none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match headers.get(header::RANGE).and_then(|r| r.to_str().ok()) {
            Some(range) => match parse_range(range, size) {
                Range::Whole => Response::new(Body::from(blob.bytes)),
                Range::Part { start, end } => {
                    let part = blob.bytes[start as usize..=end as usize].to_vec();
                    let mut r = (StatusCode::PARTIAL_CONTENT, part).into_response();
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                        r.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    r
                }
                Range::Unsatisfiable => return Err(AppError::RangeNotSatisfiable { size }),
            },
            None => Response::new(Body::from(blob.bytes)),
        }
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&blob.media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // The content never changes under its name; only people allowed to
    // see it fetch it, so only their own browser keeps it.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No range we serve (several ranges, another unit, or malformed):
    /// RFC 9110 lets the server send the whole file instead.
    Whole,
    /// Bytes `start..=end`.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

fn parse_range(header: &str, size: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match parse(last) {
            Some(0) => return Range::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            None => return Range::Whole,
        },
        (false, true) => match parse(first) {
            Some(a) => (a, size.saturating_sub(1)),
            None => return Range::Whole,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(a), Some(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
            _ => return Range::Whole,
        },
        (true, true) => return Range::Whole,
    };
    if size == 0 || start >= size {
        return Range::Unsatisfiable;
    }
    Range::Part { start, end }
}

/// `GET /api/v1/blobs/{sha256}/thumbnail`: a small JPEG of a stored image.
pub async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Response, AppError> {
    let bytes = attachments::thumbnail(&state.db, &caller, &sha256).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable",
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/shipments/{id}/attachments.zip`: every attached file with
/// an `index.csv`.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let shipment = aidsync_shared::ids::ShipmentId::parse(&id)
        .map_err(|_| AppError::NotFound(format!("no shipment {id}")))?;
    let zip = attachments::export_zip(&state.db, &caller, &shipment).await?;
    let disposition = format!("attachment; filename=\"{shipment}-attachments.zip\"");
    let mut response = ([(header::CONTENT_TYPE, "application/zip")], zip).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::{Range, parse_range};

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(
            parse_range("bytes=0-99", 1000),
            Range::Part { start: 0, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=900-", 1000),
            Range::Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-100", 1000),
            Range::Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-5000", 1000),
            Range::Part { start: 0, end: 999 }
        );
        assert_eq!(
            parse_range("bytes=990-5000", 1000),
            Range::Part {
                start: 990,
                end: 999
            }
        );
        assert_eq!(parse_range("bytes=1000-", 1000), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 1000), Range::Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Range::Whole);
        assert_eq!(parse_range("items=0-1", 1000), Range::Whole);
        assert_eq!(parse_range("bytes=x-", 1000), Range::Whole);
    }
}
