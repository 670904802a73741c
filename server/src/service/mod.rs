//! What the server does, independent of HTTP: each function takes the
//! database, the caller and parsed input, and returns domain results or an
//! [`AppError`](crate::error::AppError).

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod carried;
pub mod devices;
pub mod donor;
pub mod export;
pub mod facilities;
pub mod grn;
pub mod import;
pub mod projections;
pub mod reports;
pub mod shipments;
pub mod store;
pub mod sync;
pub mod units;
pub mod users;

/// Limits on what clients may ask of the server. Every one is a flag of
/// `aidsync serve` (see the README's configuration table).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, after decompression, in bytes.
    pub max_body_bytes: usize,
    /// A request's body must arrive in full within this long of its head
    /// (408 past it), so a client trickling bytes cannot hold a connection.
    pub body_read_timeout: std::time::Duration,
    /// Most documents in one sync request.
    pub max_docs_per_sync: usize,
    /// Most changes for one document in one sync request.
    pub max_changes_per_doc: usize,
    /// Operations the changes of one sync request may declare in all,
    /// counted before any is decoded (a receipt is about a dozen). Bounds
    /// the memory and time decoding and merging an upload can cost.
    pub max_ops_per_sync: u64,
    /// Largest stored size of one shipment document, in bytes; an upload
    /// that would grow a document past it is refused.
    pub max_document_bytes: usize,
    /// How long a login's token works, in milliseconds: long enough for
    /// weeks offline.
    pub token_ttl_ms: i64,
    /// Requests per minute one token may make (0: unlimited).
    pub requests_per_minute_per_token: u32,
    /// Requests per minute one IP address may make (0: unlimited).
    pub requests_per_minute_per_ip: u32,
    /// Failed logins per minute for one IP address, and for one user name,
    /// before further attempts are refused (0: unlimited).
    pub login_failures_per_minute: u32,
    /// Largest attachment (photo, scan, signature) one may upload, in bytes.
    pub max_attachment_bytes: u64,
    /// Attachment bytes one user may upload per day (UTC); 0: unlimited.
    pub attachment_bytes_per_user_per_day: u64,
}

pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            body_read_timeout: std::time::Duration::from_secs(60),
            max_docs_per_sync: 1_000,
            max_changes_per_doc: 10_000,
            max_ops_per_sync: 200_000,
            max_document_bytes: 32 * 1024 * 1024,
            token_ttl_ms: 90 * DAY_MS,
            requests_per_minute_per_token: 600,
            requests_per_minute_per_ip: 6_000,
            login_failures_per_minute: 10,
            // A phone photo shrunk to 1600 px is ~0.3 MB; a multi-page scan
            // a few MB.
            max_attachment_bytes: 20 * 1024 * 1024,
            attachment_bytes_per_user_per_day: 1024 * 1024 * 1024,
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
