//! HTTPS served by `aidsync serve` itself (`--tls-cert`, `--tls-key`): a
//! phone keeps the app for offline use only in a secure context, so a
//! server on a local network needs TLS with a certificate the phones trust
//! (README, "HTTPS on a local network"). HTTP/1.1 over rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// PEM files of the server's certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads the files and builds what accepts TLS connections; every problem
/// is named with the file it is in, at start rather than at the first
/// phone's handshake.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", files.cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{}: no certificate in it",
        files.cert.display()
    );
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?)
        .with_context(|| format!("{}: not a PEM private key", files.key.display()))?;
    // ring, not rustls's default aws-lc-rs: that one needs cmake and adds
    // minutes to every clean build. rustls deprecates ring's provider for
    // lacking post-quantum key exchange, which a field server's LAN can do
    // without for now.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the key do not belong together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
