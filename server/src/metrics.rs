//! What the server counts, for Prometheus: metric names, the one recorder
//! of the process, and one-line helpers for the places that count.
//!
//! The recorder is installed once per process ([`handle`]); every
//! application in the process (tests start many) records into it and
//! `/metrics` renders it. Labels only ever take values from small fixed
//! sets (route templates, methods, status codes, refusal codes): a label
//! fed from client input would let a client grow the server's memory and
//! every scrape without bound.
//!
//! The names and labels are listed in the README ("Monitoring"); change
//! both together.

use std::sync::OnceLock;
use std::time::Duration;

use aidsync_shared::ids::ShipmentId;
use aidsync_shared::sync::protocol::{RefusalCode, UploadResult};
use aidsync_shared::sync::server::Refusal;
use automerge::Change;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "aidsync_http_requests_total";
/// Seconds from a request's arrival to its response head, same labels.
pub const HTTP_DURATION: &str = "aidsync_http_request_duration_seconds";
/// Uploaded documents by `result`: `accepted`, a refusal code, `missing_dependencies`, `not_found`.
pub const SYNC_UPLOADS: &str = "aidsync_sync_uploads_total";
/// New changes stored by syncs.
pub const SYNC_CHANGES_STORED: &str = "aidsync_sync_changes_stored_total";
/// Documents in one well-formed sync request (0: the phone only pulled).
pub const SYNC_DOCUMENTS: &str = "aidsync_sync_documents_per_request";
/// Changes in one decoded document upload.
pub const SYNC_CHANGES_PER_UPLOAD: &str = "aidsync_sync_changes_per_upload";
/// Uploads refused as corrupt, by `cause` (`malformed`: the strict walk
/// refused the bytes; `panic`: a decoder panicked and was contained) and
/// `stage` (`decoding`, `merging`).
pub const SYNC_DECODE_FAILURES: &str = "aidsync_sync_decode_failures_total";
/// Database connections lent out, at the last scrape.
pub const DB_IN_USE: &str = "aidsync_db_pool_connections_in_use";
/// Database connections open and idle, at the last scrape.
pub const DB_IDLE: &str = "aidsync_db_pool_connections_idle";
/// Database connections the pool may open.
pub const DB_MAX: &str = "aidsync_db_pool_connections_max";
/// Shipments kept loaded in the document cache, at the last scrape.
pub const CACHE_DOCUMENTS: &str = "aidsync_document_cache_documents";
/// The document cache's estimate of its memory, at the last scrape.
pub const CACHE_BYTES: &str = "aidsync_document_cache_bytes";
/// Write transactions the group writer committed (each holds one or more syncs).
pub const GROUP_COMMITS: &str = "aidsync_sync_commits_total";
/// Syncs with uploads those transactions held: divided by the commits, the mean batch.
pub const GROUP_COMMIT_SYNCS: &str = "aidsync_sync_committed_syncs_total";
/// Syncs handed to the group writer and not yet answered, at the last scrape.
pub const GROUP_WAITING: &str = "aidsync_sync_waiting_for_commit";
/// Open `/api/v1/events` streams.
pub const EVENT_STREAMS_OPEN: &str = "aidsync_event_streams_open";
/// Open client connections.
pub const CONNECTIONS_OPEN: &str = "aidsync_connections_open";
/// Requests refused with 429, by `limit` (`ip`, `token`, `login_ip`, `login_user`).
pub const RATE_LIMITED: &str = "aidsync_rate_limited_total";
/// Logins refused for a wrong user name or password.
pub const LOGIN_FAILURES: &str = "aidsync_login_failures_total";
/// Always 1, labelled with the server's `version`.
pub const BUILD_INFO: &str = "aidsync_build_info";

/// Histogram buckets of request durations, in seconds: sub-millisecond
/// reads up to syncs that merge thousands of changes.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Documents per sync: most phones touch a few; the limit is 1,000.
const DOCUMENT_BUCKETS: [f64; 10] = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0];
/// Changes per upload: a receipt is one; a long-offline phone has many.
const CHANGE_BUCKETS: [f64; 10] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0, 10000.0,
];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (a scrape does it too); until then each sample is kept.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. If another recorder
/// was installed first (a program embedding the server with its own), the
/// server's metrics go there and `/metrics` shows only what this one holds.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let upkeep = handle.clone();
        // A thread, not a task: the recorder outlives any one runtime (tests
        // run many), and the work is a few microseconds every few seconds.
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no metrics upkeep thread; histograms are folded at scrapes only");
        }
        handle
    })
}

/// The recorder's configuration: true Prometheus histograms (buckets, not
/// summaries) for the metrics that are histograms.
fn builder() -> PrometheusBuilder {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in [
        (HTTP_DURATION, &DURATION_BUCKETS[..]),
        (SYNC_DOCUMENTS, &DOCUMENT_BUCKETS[..]),
        (SYNC_CHANGES_PER_UPLOAD, &CHANGE_BUCKETS[..]),
    ] {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            // It refuses only empty buckets, and these constants are not.
            .expect("histogram buckets are not empty");
    }
    builder
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response head, by route template, method and status."
    );
    describe_counter!(
        SYNC_UPLOADS,
        "Uploaded documents by result: accepted, a refusal code, missing_dependencies or not_found."
    );
    describe_counter!(
        SYNC_CHANGES_STORED,
        "New automerge changes stored by syncs."
    );
    describe_histogram!(SYNC_DOCUMENTS, "Documents per well-formed sync request.");
    describe_histogram!(
        SYNC_CHANGES_PER_UPLOAD,
        "Changes per decoded document upload."
    );
    describe_counter!(
        SYNC_DECODE_FAILURES,
        "Uploads refused as corrupt: malformed bytes, or a contained decoder panic."
    );
    describe_gauge!(
        DB_IN_USE,
        "Database connections in use (at the last scrape)."
    );
    describe_gauge!(
        DB_IDLE,
        "Database connections open and idle (at the last scrape)."
    );
    describe_gauge!(DB_MAX, "Database connections the pool may open.");
    describe_gauge!(
        CACHE_DOCUMENTS,
        "Shipments kept loaded between requests (at the last scrape)."
    );
    describe_gauge!(
        CACHE_BYTES,
        Unit::Bytes,
        "Estimated memory of the shipments kept loaded (at the last scrape; bounded by --document-cache-bytes)."
    );
    describe_counter!(
        GROUP_COMMITS,
        "Write transactions of sync uploads committed (group commit: one may hold many syncs)."
    );
    describe_counter!(
        GROUP_COMMIT_SYNCS,
        "Syncs with uploads stored by those transactions."
    );
    describe_gauge!(
        GROUP_WAITING,
        "Syncs waiting for the writer or for their batch's commit (at the last scrape)."
    );
    describe_gauge!(EVENT_STREAMS_OPEN, "Open /api/v1/events streams.");
    describe_gauge!(CONNECTIONS_OPEN, "Open client connections.");
    describe_counter!(RATE_LIMITED, "Requests refused with 429, by limit.");
    describe_counter!(
        LOGIN_FAILURES,
        "Logins refused for a wrong user name or password."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the label is the server's version.");
}

/// The Prometheus text exposition of every metric of the process.
pub fn render() -> String {
    handle().render()
}

/// One answered request. `route` is the matched route template (never the
/// raw path) or `unmatched`.
pub fn request(route: &str, method: &axum::http::Method, status: u16, took: Duration) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method_label(method).to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(took.as_secs_f64());
}

/// A method as a label: the standard ones by name, any other (a client may
/// send any token as a method) as `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A well-formed sync request's batch, decoded: its size, and each
/// decoded upload's.
pub fn sync_batch(uploads: &[(ShipmentId, Result<Vec<Change>, Refusal>)]) {
    histogram!(SYNC_DOCUMENTS).record(uploads.len() as f64);
    for changes in uploads.iter().filter_map(|(_, r)| r.as_ref().ok()) {
        histogram!(SYNC_CHANGES_PER_UPLOAD).record(changes.len() as f64);
    }
}

/// What became of each upload of a sync whose uploads were committed.
pub fn upload_results<'a>(results: impl IntoIterator<Item = &'a UploadResult>) {
    for result in results {
        let label = match result {
            UploadResult::Accepted { new } => {
                counter!(SYNC_CHANGES_STORED).increment(u64::from(*new));
                "accepted"
            }
            UploadResult::Refused { code, .. } => match code {
                RefusalCode::Corrupt => "corrupt",
                RefusalCode::WrongActor => "wrong_actor",
                RefusalCode::Forbidden => "forbidden",
                RefusalCode::Invalid => "invalid",
                RefusalCode::TooLarge => "too_large",
            },
            UploadResult::MissingDependencies => "missing_dependencies",
            UploadResult::NotFound => "not_found",
        };
        counter!(SYNC_UPLOADS, "result" => label).increment(1);
    }
}

/// The strict decoder refused an upload: counted if as corrupt (over the
/// operation budget is `too_large`, not a decode failure).
pub fn decode_refused(refusal: &Refusal) {
    if matches!(refusal, Refusal::Corrupt { .. }) {
        counter!(SYNC_DECODE_FAILURES, "cause" => "malformed", "stage" => "decoding").increment(1);
    }
}

/// A decoder panicked on an upload at `stage` and was contained.
pub fn decode_panicked(stage: &'static str) {
    counter!(SYNC_DECODE_FAILURES, "cause" => "panic", "stage" => stage).increment(1);
}

/// The database pool as it is now.
pub fn pool(stats: crate::storage::PoolStats) {
    gauge!(DB_IN_USE).set(f64::from(stats.open.saturating_sub(stats.idle)));
    gauge!(DB_IDLE).set(f64::from(stats.idle));
    gauge!(DB_MAX).set(f64::from(stats.max));
}

/// The document cache as it is now.
pub fn document_cache(stats: crate::storage::CacheStats) {
    gauge!(CACHE_DOCUMENTS).set(stats.documents as f64);
    gauge!(CACHE_BYTES).set(stats.bytes as f64);
}

/// The group writer's counters as they are now.
pub fn group_commit(stats: &crate::storage::GroupStats) {
    use std::sync::atomic::Ordering::Relaxed;
    counter!(GROUP_COMMITS).absolute(stats.commits.load(Relaxed));
    counter!(GROUP_COMMIT_SYNCS).absolute(stats.jobs.load(Relaxed));
    gauge!(GROUP_WAITING).set(stats.waiting.load(Relaxed) as f64);
}

/// A 429 from the limit named `limit`.
pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// A login with a wrong user name or password.
pub fn login_failed() {
    counter!(LOGIN_FAILURES).increment(1);
}

/// Counts something open for as long as it lives: +1 on creation, −1 on
/// drop, so every way it ends (finished, failed, cancelled, the client
/// gone) is counted.
#[must_use = "the count drops back when this is dropped"]
pub struct Open(&'static str);

impl Open {
    /// An open `/api/v1/events` stream.
    pub fn event_stream() -> Open {
        Open::new(EVENT_STREAMS_OPEN)
    }

    /// An accepted client connection.
    pub fn connection() -> Open {
        Open::new(CONNECTIONS_OPEN)
    }

    fn new(name: &'static str) -> Open {
        gauge!(name).increment(1.0);
        Open(name)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series starting with `series` in `text`.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn open_counts_up_and_back_down() {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let stream = Open::event_stream();
            let a = Open::connection();
            let b = Open::connection();
            assert_eq!(value(&handle.render(), EVENT_STREAMS_OPEN), Some(1.0));
            assert_eq!(value(&handle.render(), CONNECTIONS_OPEN), Some(2.0));
            drop((stream, a));
            assert_eq!(value(&handle.render(), EVENT_STREAMS_OPEN), Some(0.0));
            assert_eq!(value(&handle.render(), CONNECTIONS_OPEN), Some(1.0));
            drop(b);
            assert_eq!(value(&handle.render(), CONNECTIONS_OPEN), Some(0.0));
        });
    }

    #[test]
    fn requests_are_labelled_with_bounded_values() {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let odd = axum::http::Method::from_bytes(b"FROBNICATE").ok();
            let odd = odd.unwrap_or(axum::http::Method::GET);
            request("unmatched", &odd, 404, Duration::from_millis(3));
            request(
                "/api/v1/shipments/{id}",
                &axum::http::Method::GET,
                200,
                Duration::ZERO,
            );
        });
        let text = handle.render();
        assert!(
            text.contains(
                r#"aidsync_http_requests_total{route="unmatched",method="other",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"route="/api/v1/shipments/{id}",method="GET",status="200""#));
        assert!(!text.contains("FROBNICATE"));
        // A real histogram, with buckets.
        assert!(
            text.contains("aidsync_http_request_duration_seconds_bucket{"),
            "{text}"
        );
    }

    #[test]
    fn upload_results_count_by_code_and_sum_stored_changes() {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            upload_results(&[
                UploadResult::Accepted { new: 3 },
                UploadResult::Accepted { new: 0 },
                UploadResult::Refused {
                    code: RefusalCode::WrongActor,
                    reason: String::new(),
                },
                UploadResult::MissingDependencies,
                UploadResult::NotFound,
            ]);
        });
        let text = handle.render();
        for (series, n) in [
            (r#"aidsync_sync_uploads_total{result="accepted"}"#, 2.0),
            (r#"aidsync_sync_uploads_total{result="wrong_actor"}"#, 1.0),
            (
                r#"aidsync_sync_uploads_total{result="missing_dependencies"}"#,
                1.0,
            ),
            (r#"aidsync_sync_uploads_total{result="not_found"}"#, 1.0),
            ("aidsync_sync_changes_stored_total", 3.0),
        ] {
            assert_eq!(value(&text, series), Some(n), "{series} in {text}");
        }
    }
}
