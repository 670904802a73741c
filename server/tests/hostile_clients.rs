//! The real `aidsync serve` binary against clients that mean harm: request
//! bodies that once crashed it (measured by the process's own memory), and
//! connections that stay idle, trickle their bytes or come by thousands.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use aidsync_shared::sync::protocol::{RefusalCode, SyncResponse, UploadResult, decode};

/// `aidsync serve --demo` on a free port and a temporary SQLite file.
struct Server {
    child: Child,
    addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite:{}", dir.path().join("aidsync.db").display());
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_aidsync"))
            .args([
                "serve",
                "--demo",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                &db,
            ])
            .args(["--web-root", dir.path().to_str().unwrap()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
                panic!("the server exited before serving:\n{log}");
            }
            if let Some(url) = line.trim().strip_prefix("aidsync: serving http://") {
                break url.parse().unwrap();
            }
        };
        Server {
            child,
            addr,
            _stdout: stdout,
            _dir: dir,
        }
    }

    /// A line of `/proc/PID/status` in bytes (`VmRSS`, `VmHWM`).
    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} in /proc status"));
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap();
        kb * 1024
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        Reply::parse(&raw)
    }

    fn healthy(&self) -> bool {
        self.request("GET", "/healthz", &[], b"").status == 200
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    /// A `Connection: close` HTTP/1.1 response (the server sends bodies
    /// with a length, never chunked, for these routes).
    fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        Reply {
            status,
            body: raw[split + 4..].to_vec(),
        }
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let hex = std::fs::read_to_string(&path).unwrap();
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A demo coordinator's: she sees every demo shipment, so the uploads reach
/// the decoder rather than a "not found".
const SYNC_HEADERS: [(&str, &str); 2] = [
    ("Authorization", "Bearer demo-olena"),
    ("Content-Type", "application/cbor"),
];

#[test]
fn request_bodies_that_once_crashed_the_server_are_refused_in_bounded_memory() {
    let server = Server::start(&[]);
    assert!(server.healthy());
    let idle = server.memory("VmRSS");
    for name in [
        "sync-request-oom-653b.cbor.hex",
        "sync-request-panic-431b.cbor.hex",
    ] {
        let reply = server.request("POST", "/api/v1/sync", &SYNC_HEADERS, &fixture(name));
        assert!(
            (400..500).contains(&reply.status),
            "{name}: status {}",
            reply.status
        );
        let response: SyncResponse = decode(&reply.body).unwrap();
        let upload = response.docs.iter().find_map(|d| d.upload.clone());
        assert!(
            matches!(
                upload,
                Some(UploadResult::Refused {
                    code: RefusalCode::Corrupt,
                    ..
                })
            ),
            "{name}: {upload:?}"
        );
        assert!(server.healthy(), "{name} left the server unhealthy");
    }
    let peak = server.memory("VmHWM");
    assert!(
        peak < idle + 100 * 1024 * 1024,
        "peak RSS {} MB, idle {} MB",
        peak >> 20,
        idle >> 20
    );
}

/// Reads until the server closes the connection; what it sent, or `None`
/// if it was still open after `patience`.
fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(_) => return None,
        }
    }
}

#[test]
fn idle_connections_and_trickled_heads_are_closed_after_the_head_timeout() {
    let server = Server::start(&["--request-head-timeout-secs", "1"]);
    let mut idle = TcpStream::connect(server.addr).unwrap();
    let mut trickle = TcpStream::connect(server.addr).unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // A kept-alive connection that answered once, then went quiet.
    let mut kept = TcpStream::connect(server.addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    for (name, stream) in [("idle", &mut idle), ("trickle", &mut trickle)] {
        let got = read_until_closed(stream, Duration::from_secs(10));
        let got = got.unwrap_or_else(|| panic!("the {name} connection was still open after 10 s"));
        assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "{name}");
    }
    let got = read_until_closed(&mut kept, Duration::from_secs(10))
        .expect("the kept-alive connection was still open after 10 s");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK"));
    assert!(server.healthy());
}

#[test]
fn a_body_that_trickles_in_is_refused_with_408() {
    let server = Server::start(&["--body-read-timeout-secs", "1"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(
            b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"user\": \"anna\"",
        )
        .unwrap();
    let got = read_until_closed(&mut stream, Duration::from_secs(10))
        .expect("the slow body's connection was still open after 10 s");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive within 1 s"), "{text}");
    assert!(server.healthy());
}

#[test]
fn healthz_answers_while_2000_idle_connections_are_open() {
    // This process needs the descriptors too.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let server = Server::start(&[]);
    let idle: Vec<TcpStream> = (0..2_000)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    assert!(server.healthy());
    // Still open: the server did not shed them to answer.
    assert_eq!(idle.len(), 2_000);
}

#[test]
fn past_the_connection_cap_new_clients_wait_until_a_slot_frees() {
    let server = Server::start(&[
        "--max-connections",
        "10",
        "--request-head-timeout-secs",
        "3",
    ]);
    let idle: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let mut waiting = TcpStream::connect(server.addr).unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Not served while ten idle connections hold every slot...
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(waiting.read(&mut buf).is_err(), "served past the cap");
    // ...and served once the head timeout has closed them.
    let got = read_until_closed(&mut waiting, Duration::from_secs(15))
        .expect("never served after the idle connections closed");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK"));
    drop(idle);
}
