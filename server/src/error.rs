//! The server's one error type at the HTTP boundary.
//!
//! 4xx bodies tell the client what was wrong; 5xx bodies say nothing
//! internal (the cause is logged instead).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::storage::StorageError;

/// One bad row of an uploaded file: its line number (the header is line 1),
/// the column if one is to blame, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowProblem {
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing, unknown, expired or revoked token; log in again")]
    Unauthorized,
    #[error("wrong user name or password")]
    BadCredentials,
    /// Known caller, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this path does not take that method")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// The client took too long to send what it started sending.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Input with several bad parts (rows of an imported file), each named
    /// so the person can fix them all at once.
    #[error("{message}")]
    InvalidRows {
        message: String,
        rows: Vec<RowProblem>,
    },
    /// Over a rate limit; the client may retry after this many seconds.
    #[error("{message}; retry in {retry_after_secs} s")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// A `Range` outside a file of `size` bytes.
    #[error("the requested range is not within the file's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unprocessable(_) | AppError::InvalidRows { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            AppError::Storage(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "internal error; it has been logged".to_owned()
        } else {
            self.to_string()
        };
        let retry_after = match &self {
            AppError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let body = match &self {
            AppError::InvalidRows { rows, .. } => json!({ "error": message, "rows": rows }),
            _ => json!({ "error": message }),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if matches!(self, AppError::Unauthorized) {
            headers.insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let AppError::RangeNotSatisfiable { size } = &self
            && let Ok(value) = axum::http::HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(axum::http::header::CONTENT_RANGE, value);
        }
        if let Some(secs) = retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
