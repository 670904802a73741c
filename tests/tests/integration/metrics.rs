//! Seeing what the server does, from outside: `GET /metrics` counts syncs,
//! refusals, requests by route template, pool and stream gauges; every
//! response carries an `X-Request-Id`.
//!
//! The metrics recorder is one per process and these tests run in parallel
//! with every other test of this binary, so they compare scrapes before and
//! after (deltas, `>=`), never exact global values.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_bytes::ByteBuf;

use aidsync_server::app::{Application, Config};
use aidsync_server::service::Limits;
use aidsync_shared::model::Condition;
use aidsync_shared::sync::protocol::{
    self, Changes, DocUpload, PROTOCOL_VERSION, RefusalCode, SyncRequest,
};
use aidsync_tests::harness::TestDb;
use aidsync_tests::phone::post_raw;

use crate::common::*;

/// One series of a scrape: its name, labels and value.
#[derive(Debug)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One `GET /metrics`, parsed.
struct Scrape {
    text: String,
    series: Vec<Series>,
}

impl Scrape {
    /// Scrapes `base` (`http://host:port`); must answer 200 in the text
    /// format.
    async fn of(base: &str) -> Scrape {
        let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let series = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_line(l).unwrap_or_else(|| panic!("unparsable line {l:?}")))
            .collect();
        Scrape { text, series }
    }

    /// The sum of the series named `name` whose labels include `labels`
    /// (0 if there are none yet: a counter not yet incremented).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.matching(name, labels).next().is_some()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Every label value of every series.
    fn label_values(&self) -> impl Iterator<Item = &str> {
        self.series
            .iter()
            .flat_map(|s| s.labels.values().map(String::as_str))
    }
}

/// `name{k="v",…} value` or `name value`, with the format's escapes in
/// label values (`\\`, `\"`, `\n`).
fn parse_line(line: &str) -> Option<Series> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '}' {
                end = Some(i);
                break;
            }
            if c == ',' {
                continue;
            }
            // A key, `=`, then a quoted value.
            let key_start = i;
            let mut key_end = i;
            for (j, c) in chars.by_ref() {
                if c == '=' {
                    key_end = j;
                    break;
                }
            }
            let key = inner[key_start..key_end].to_owned();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
        }
        rest = &inner[end? + 1..];
    }
    let value = rest.trim().parse().ok()?;
    Some(Series {
        name,
        labels,
        value,
    })
}

const SYNC_ROUTE: (&str, &str) = ("route", "/api/v1/sync");

/// A receiver's sync that stores changes and one refused as corrupt (a
/// bundle of junk) both show: in the requests by route and status, the
/// uploads by result, the changes stored, the batch-size histograms and the
/// decode failures. A shipment fetched by id is counted under its route
/// template, and its id appears in no label. The pool gauges are there.
pub async fn syncs_and_refusals_are_counted(db: &TestDb) {
    let world = World::new(db).await;
    let base = world.server.base.clone();
    let id = shipment_id(SHIPMENT);
    let mut phone = world.receiver("anna", FACILITY).await;
    phone.sync_settled().await.unwrap();
    phone
        .record(
            &id,
            receipt("line-1", 2, Condition::Good, &["US-1", "US-2"]),
        )
        .await
        .unwrap();
    phone
        .record(&id, receipt("line-2", 1, Condition::Damaged, &[]))
        .await
        .unwrap();
    let sent: usize = phone
        .engine
        .sync_request()
        .docs
        .iter()
        .map(|d| match &d.changes {
            Changes::Chunks(chunks) => chunks.len(),
            Changes::Bundle(_) => panic!("phones send chunks"),
        })
        .sum();
    assert!(sent >= 2, "two receipts are at least two changes");

    let before = Scrape::of(&base).await;
    let report = phone.sync_settled().await.unwrap();
    assert_eq!(report.accepted, 1, "{report:?}");
    let junk = protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursor: 0,
        docs: vec![DocUpload {
            id: id.clone(),
            changes: Changes::Bundle(ByteBuf::from(b"not an automerge document".to_vec())),
        }],
    });
    let refused = post_raw(
        &world.api.http,
        &format!("{base}/api/v1/sync"),
        Some(phone.token()),
        protocol::CONTENT_TYPE,
        &junk,
        false,
    )
    .await
    .unwrap();
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = world.detail(SHIPMENT).await;
    assert_eq!(detail["receipts"].as_array().map(Vec::len), Some(2));
    let after = Scrape::of(&base).await;

    let grew =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    for status in ["200", "422"] {
        assert!(
            grew(
                "aidsync_http_requests_total",
                &[SYNC_ROUTE, ("method", "POST"), ("status", status)]
            ) >= 1.0,
            "sync answered {status}: {}",
            after.text
        );
        assert!(
            grew(
                "aidsync_http_request_duration_seconds_count",
                &[SYNC_ROUTE, ("method", "POST"), ("status", status)]
            ) >= 1.0
        );
    }
    assert!(grew("aidsync_sync_uploads_total", &[("result", "accepted")]) >= 1.0);
    let corrupt = format!("{:?}", RefusalCode::Corrupt).to_lowercase();
    assert!(grew("aidsync_sync_uploads_total", &[("result", &corrupt)]) >= 1.0);
    assert!(
        grew("aidsync_sync_changes_stored_total", &[]) >= sent as f64,
        "stored at least the {sent} changes sent"
    );
    assert!(
        grew(
            "aidsync_sync_decode_failures_total",
            &[("cause", "malformed"), ("stage", "decoding")]
        ) >= 1.0
    );
    // Sync batch sizes: both requests had one document; the accepted one
    // decoded into `sent` changes.
    assert!(grew("aidsync_sync_documents_per_request_count", &[]) >= 2.0);
    assert!(grew("aidsync_sync_changes_per_upload_count", &[]) >= 1.0);
    assert!(grew("aidsync_sync_changes_per_upload_sum", &[]) >= sent as f64);

    // By route template, never by path.
    assert!(
        grew(
            "aidsync_http_requests_total",
            &[
                ("route", "/api/v1/shipments/{id}"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    assert!(
        !after.text.contains(SHIPMENT),
        "a shipment id in the metrics:\n{}",
        after.text
    );

    for gauge in [
        "aidsync_db_pool_connections_in_use",
        "aidsync_db_pool_connections_idle",
        "aidsync_db_pool_connections_max",
    ] {
        assert!(after.has(gauge, &[]), "no {gauge}:\n{}", after.text);
    }
    assert!(after.sum("aidsync_db_pool_connections_max", &[]) >= 1.0);
    // The scrape's own connection, at least.
    assert!(after.sum("aidsync_connections_open", &[]) >= 1.0);
    assert!(after.has("aidsync_build_info", &[]));
    world.server.stop().await.unwrap();
}

/// Paths no route matches, unknown methods, failed logins and 429s: all
/// counted under fixed labels, and nothing a client chose becomes a label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_are_counted_under_fixed_labels() {
    // Nothing here depends on the backend: SQLite only.
    let db = &TestDb::sqlite().unwrap();
    let world = World::new(db).await;
    let base = world.server.base.clone();
    let http = &world.api.http;
    let before = Scrape::of(&base).await;

    let page = http
        .get(format!("{base}/no/such/page-7f3a"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let api = http
        .get(format!("{base}/api/v1/nothing-7f3a"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    let odd = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    let odd = http
        .request(odd, format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status(), StatusCode::METHOD_NOT_ALLOWED);
    // One user name's failed logins, past its limit.
    let limit = Limits::default().login_failures_per_minute;
    let mut limited = 0;
    for _ in 0..=limit {
        let (status, _) = world
            .api
            .post(
                None,
                "/api/v1/login",
                &serde_json::json!({ "user": "nobody", "password": "wrong-7f3a", "device_name": "x" }),
            )
            .await
            .unwrap();
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("login answered {other}"),
        }
    }
    assert!(limited >= 1, "the last login was over the limit");
    let after = Scrape::of(&base).await;
    let grew =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);

    for (route, method, status) in [
        ("unmatched", "GET", "404"),
        ("/api/{*rest}", "GET", "404"),
        ("/healthz", "other", "405"),
        ("/api/v1/login", "POST", "401"),
        ("/api/v1/login", "POST", "429"),
    ] {
        assert!(
            grew(
                "aidsync_http_requests_total",
                &[("route", route), ("method", method), ("status", status)]
            ) >= 1.0,
            "{method} {route} {status}:\n{}",
            after.text
        );
    }
    assert!(grew("aidsync_login_failures_total", &[]) >= f64::from(limit));
    // The address and the name reach their limit together; the address is
    // checked first.
    let login_limits = grew("aidsync_rate_limited_total", &[("limit", "login_ip")])
        + grew("aidsync_rate_limited_total", &[("limit", "login_user")]);
    assert!(login_limits >= 1.0, "{}", after.text);
    for value in after.label_values() {
        assert!(
            !value.contains("7f3a") && !value.contains("FROBNICATE") && !value.contains("nobody"),
            "client input became a label value: {value:?}"
        );
    }
    world.server.stop().await.unwrap();
}

/// A dashboard's open event stream is counted while it is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_event_streams_are_counted() {
    // Nothing here depends on the backend: SQLite only.
    let db = &TestDb::sqlite().unwrap();
    let world = World::new(db).await;
    let stream = EventStream::opened(&world, &world.coordinator.token).await;
    let open = Scrape::of(&world.server.base).await;
    assert!(
        open.sum("aidsync_event_streams_open", &[]) >= 1.0,
        "{}",
        open.text
    );
    drop(stream);
    world.server.stop().await.unwrap();
}

/// The `X-Request-Id` of a response to a request that sent `sent`.
async fn request_id(base: &str, path: &str, sent: Option<&[u8]>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(sent) = sent {
        request = request.header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(sent).unwrap(),
        );
    }
    let response = request.send().await.unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id on {path} ({})", response.status()))
        .to_str()
        .unwrap()
        .to_owned();
    (response.status(), id)
}

fn generated(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every response has an `X-Request-Id`: a sane one the client sent comes
/// back, anything else (too long, spaces, tabs, non-ASCII, empty) is
/// replaced by a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    // Nothing here depends on the backend: SQLite only.
    let db = &TestDb::sqlite().unwrap();
    let world = World::new(db).await;
    let base = world.server.base.clone();
    let mut seen = std::collections::BTreeSet::new();
    for (path, status) in [
        ("/healthz", StatusCode::OK),
        ("/api/v1/me", StatusCode::UNAUTHORIZED),
        ("/api/v1/nothing", StatusCode::NOT_FOUND),
        ("/no/such/page", StatusCode::NOT_FOUND),
        ("/", StatusCode::OK),
        ("/metrics", StatusCode::OK),
    ] {
        let (got, id) = request_id(&base, path, None).await;
        assert_eq!(got, status, "{path}");
        assert!(generated(&id), "{path}: {id:?}");
        assert!(seen.insert(id), "ids repeat");
    }
    // A stream's response head carries it too.
    let stream = world
        .api
        .http
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(&world.coordinator.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let id = stream.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(generated(&id), "event stream: {id:?}");
    drop(stream);

    let sane = "3f2a9c1e-7b7d-4c1b-9f00-1a2b3c4d5e6f";
    assert_eq!(
        request_id(&base, "/healthz", Some(sane.as_bytes())).await.1,
        sane
    );
    let longest = "x".repeat(64);
    assert_eq!(
        request_id(&base, "/healthz", Some(longest.as_bytes()))
            .await
            .1,
        longest
    );
    for insane in [
        "x".repeat(65).into_bytes(),
        b"two words".to_vec(),
        b"tab\there".to_vec(),
        "caf\u{e9}".as_bytes().to_vec(),
        Vec::new(),
    ] {
        let (_, id) = request_id(&base, "/healthz", Some(&insane)).await;
        assert!(
            generated(&id),
            "{:?} should have been replaced, got {id:?}",
            String::from_utf8_lossy(&insane)
        );
    }
    world.server.stop().await.unwrap();
}

/// With `--metrics-bind`, `/metrics` is served on its own address only,
/// and that listener stops with the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_their_own_listener() {
    // Nothing here depends on the backend: SQLite only.
    let db = &TestDb::sqlite().unwrap();
    let app = Application::build(Config {
        bind: "127.0.0.1:0".into(),
        database_url: db.url().into(),
        document_cache_bytes: aidsync_server::storage::DEFAULT_CACHE_BYTES,
        syncs_per_commit: aidsync_server::storage::DEFAULT_SYNCS_PER_COMMIT,
        commit_window: aidsync_server::storage::DEFAULT_COMMIT_WINDOW,
        limits: Limits::default(),
        web_root: None,
        connections: Default::default(),
        metrics_bind: Some("127.0.0.1:0".into()),
        tls: None,
    })
    .await
    .unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let metrics = format!("http://{}", app.metrics_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let scrape = Scrape::of(&metrics).await;
    assert!(scrape.has("aidsync_build_info", &[]), "{}", scrape.text);
    let status = |url: String| async move { reqwest::get(url).await.unwrap().status() };
    assert_eq!(
        status(format!("{base}/metrics")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status(format!("{base}/healthz")).await, StatusCode::OK);
    assert_eq!(
        status(format!("{metrics}/healthz")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(format!("{metrics}/api/v1/me")).await,
        StatusCode::NOT_FOUND
    );

    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("both listeners stop")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("{metrics}/metrics")).await.is_err(),
        "the metrics listener is closed"
    );
}

#[test]
fn scrape_lines_parse_with_braces_and_escapes_in_labels() {
    let s = parse_line(r#"aidsync_http_requests_total{route="/api/v1/shipments/{id}",method="GET",status="200"} 3"#).unwrap();
    assert_eq!(s.name, "aidsync_http_requests_total");
    assert_eq!(s.labels["route"], "/api/v1/shipments/{id}");
    assert_eq!(s.labels["status"], "200");
    assert_eq!(s.value, 3.0);
    let s = parse_line(r#"x{a="q\"b\\c",le="+Inf"} 1.5"#).unwrap();
    assert_eq!(s.labels["a"], r#"q"b\c"#);
    assert_eq!(s.labels["le"], "+Inf");
    assert_eq!(s.value, 1.5);
    let s = parse_line("aidsync_login_failures_total 0").unwrap();
    assert!(s.labels.is_empty());
}
