//! `aidsync serve --tls-cert --tls-key`: the real binary answers over HTTPS
//! with the given certificate, and says where. `fixtures/tls/` holds a
//! certificate for `localhost` and 127.0.0.1 (`cert.pem`, `key.pem`) issued
//! by a test authority (`ca.pem`, its key thrown away), for these tests
//! only.

#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// Starts the server; returns it and the URL it printed.
fn serve(dir: &tempfile::TempDir, cert: &PathBuf, key: &PathBuf) -> (Child, String) {
    let db = format!("sqlite:{}", dir.path().join("tls.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_aidsync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(url) =
        lines.find_map(|l| l.ok()?.strip_prefix("aidsync: serving ").map(str::to_owned))
    else {
        panic!("no URL printed: {:?}", child.wait_with_output());
    };
    (child, url)
}

async fn https_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // A TLS peer may close without close_notify; what arrived is enough.
    let _ = tls.read_to_end(&mut response).await;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn serve_answers_over_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = serve(&dir, &fixture("cert.pem"), &fixture("key.pem"));
    let addr = url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("{url}"));

    let response = https_get(addr, "/healthz").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));

    // The server still answers TLS after that.
    let response = https_get(addr, "/healthz").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_key_that_is_not_a_key_stops_the_server_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("tls.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_aidsync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db])
        .arg("--tls-cert")
        .arg(fixture("cert.pem"))
        .arg("--tls-key")
        .arg(fixture("cert.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a PEM private key"), "{stderr}");
    assert!(stderr.contains("cert.pem"), "{stderr}");
    assert!(
        !dir.path().join("tls.db").exists(),
        "nothing created before the check"
    );
}
