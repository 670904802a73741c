//! The real `aidsync serve` binary against clients that mean harm: request
//! bodies that once crashed it, measured by the process's own memory.

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
