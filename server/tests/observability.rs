//! The real `aidsync` binary's logs and metrics address, as an operator
//! sees them: `--log-format json` writes one JSON object per line to stderr,
//! each line of a request carrying its request id; `--metrics-bind` moves
//! `/metrics` to its own address and says where on stdout.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `aidsync serve` on free ports, logging to a file.
struct Server {
    child: Child,
    addr: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite:{}", dir.path().join("aidsync.db").display());
        let log = dir.path().join("server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_aidsync"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db])
            .args(["--metrics-bind", "127.0.0.1:0"])
            .args(["--web-root", dir.path().to_str().unwrap()])
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("AIDSYNC_LOG_FORMAT")
            .env_remove("AIDSYNC_METRICS_BIND")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut metrics) = (None, None);
        while addr.is_none() || metrics.is_none() {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "the server exited before serving:\n{}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            let line = line.trim();
            if let Some(a) = line.strip_prefix("aidsync: serving http://") {
                addr = Some(a.parse().unwrap());
            }
            if let Some(m) = line.strip_prefix("aidsync: metrics on http://") {
                metrics = m.strip_suffix("/metrics").and_then(|m| m.parse().ok());
            }
        }
        Server {
            child,
            addr: addr.unwrap(),
            metrics: metrics.unwrap(),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Waits up to 10 s for a log line containing `needle`.
    fn log_line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `Connection: close` exchange: the status, the headers (names in
/// lower case) and the body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every line of `log` as JSON; panics on one that is not.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `request_id` of the request span enclosing a JSON log line.
fn span_request_id(line: &Value) -> Option<&str> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "request")?["request_id"]
        .as_str()
}

fn failed_login(addr: SocketAddr, request_id: &str) -> (u16, Vec<(String, String)>, String) {
    request(
        addr,
        "POST",
        "/api/v1/login",
        &[
            ("Content-Type", "application/json"),
            ("X-Request-Id", request_id),
        ],
        r#"{"user": "nobody", "password": "not the password", "device_name": "test"}"#,
    )
}

#[test]
fn json_logs_carry_the_request_id_of_their_request() {
    let server = Server::start(&["--log-format", "json"]);
    let (status, headers, _) = failed_login(server.addr, "json-log-test-42");
    assert_eq!(status, 401);
    assert_eq!(header(&headers, "x-request-id"), Some("json-log-test-42"));

    let line = server.log_line_with("login failed");
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["message"], "login failed");
    assert_eq!(span_request_id(&line), Some("json-log-test-42"), "{line}");
    assert_eq!(line["span"]["path"], "/api/v1/login");
    // Every line, the start-up ones too, is JSON.
    let lines = json_lines(&server.log());
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "aidsync listening")
    );
}

#[test]
fn text_logs_carry_the_request_id_too() {
    let server = Server::start(&[]);
    let (status, headers, _) = failed_login(server.addr, "text-log-test-7");
    assert_eq!(status, 401);
    assert_eq!(header(&headers, "x-request-id"), Some("text-log-test-7"));
    let line = server.log_line_with("login failed");
    assert!(line.contains("request_id"), "{line}");
    assert!(line.contains("text-log-test-7"), "{line}");
    assert!(
        serde_json::from_str::<Value>(&line).is_err(),
        "text by default"
    );
}

#[test]
fn metrics_bind_serves_metrics_there_only() {
    let server = Server::start(&[]);
    let (status, _, _) = failed_login(server.addr, "metrics-bind-test");
    assert_eq!(status, 401);
    let (status, headers, body) = request(server.metrics, "GET", "/metrics", &[], "");
    assert_eq!(status, 200, "{body}");
    assert!(
        header(&headers, "content-type").is_some_and(|c| c.starts_with("text/plain")),
        "{headers:?}"
    );
    assert!(body.contains("aidsync_login_failures_total 1"), "{body}");
    assert!(
        body.contains(
            r#"aidsync_http_requests_total{route="/api/v1/login",method="POST",status="401"} 1"#
        ),
        "{body}"
    );
    assert!(header(&headers, "x-request-id").is_some());
    let (status, _, _) = request(server.addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 404, "not on the main address");
}

/// `aidsync admin …`: the flag goes after the subcommand too, or comes
/// from the environment; a format that does not exist is a usage error.
#[test]
fn admin_takes_the_log_format_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("admin.db").display());
    let admin = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aidsync"));
        command
            .args(["admin", "--database-url", &db])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("AIDSYNC_LOG_FORMAT");
        if let Some(format) = env {
            command.env("AIDSYNC_LOG_FORMAT", format);
        }
        command.output().unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let out = admin(&["facility", "list", "--log-format", "json"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("REGION"));
    json_lines(&text(&out.stderr));

    let out = admin(&["facility", "list"], Some("json"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    json_lines(&text(&out.stderr));

    let out = admin(&["facility", "list", "--log-format", "xml"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("xml"));
}
