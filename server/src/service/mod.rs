//! What the server does, independent of HTTP: each function takes the
//! database, the caller and parsed input, and returns domain results or an
//! [`AppError`](crate::error::AppError).

pub mod devices;
pub mod facilities;
pub mod shipments;
pub mod sync;
pub mod users;

/// Limits on what one client request may ask of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Most documents in one sync request.
    pub max_docs_per_sync: usize,
    /// Most changes for one document in one sync request.
    pub max_changes_per_doc: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_docs_per_sync: 1_000,
            max_changes_per_doc: 10_000,
        }
    }
}

/// Milliseconds since the Unix epoch: the only clock the server reads.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
