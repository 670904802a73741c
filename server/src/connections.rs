//! Accepting connections, with the limits that keep idle, slow or simply
//! too many clients from holding the server.
//!
//! `axum::serve` has no timeouts and no connection cap: 2,000 idle sockets
//! or 500 trickled request heads stayed open indefinitely, and with the
//! usual 1,024 open files, 1,100 idle connections made `/healthz` stop
//! answering. So the server runs its own accept loop over hyper's HTTP/1.1
//! connection (what `axum::serve` does inside), with:
//!
//! - a **request head deadline**: hyper starts it whenever a connection
//!   waits for a request head, on a new connection and again after each
//!   response, so it bounds both a trickled head and an idle keep-alive
//!   connection;
//! - a **connection cap**: past it the loop stops accepting until one
//!   closes (the kernel's backlog holds the rest), so file descriptors run
//!   out for no one;
//! - the **open-files limit** raised from its soft to its hard value at
//!   start ([`raise_open_files_limit`]).
//!
//! The request *body* deadline is a middleware (`http::body_deadline`),
//! since it concerns a request, not a connection. With TLS
//! (`crate::tls`), each connection's handshake runs in its own task within
//! the request head deadline, so a slow handshake holds no one else.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// What a connection may cost. Flags of `aidsync serve`.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// A connection must deliver a complete request head within this long
    /// of opening or of its previous response, or it is closed.
    pub request_head_timeout: Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            request_head_timeout: Duration::from_secs(20),
            max_connections: 10_000,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and waits for every open connection to finish what it is
/// doing (hyper closes idle ones at once and the rest after their
/// response).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ConnectionLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.request_head_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // never closed; stop rather than spin
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small request/response pairs: don't wait to fill a segment.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // The per-IP limits read the peer address like axum's
        // `into_make_service_with_connect_info` would provide it.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let watcher = graceful.watcher();
        let http = http.clone();
        let tls = tls.clone();
        let handshake_deadline = limits.request_head_timeout;
        let counted = crate::metrics::Open::connection();
        tokio::spawn(async move {
            // Dropped with the task however it ends: the gauge goes back down.
            let _counted = counted;
            let served = match tls {
                None => {
                    let io = TokioIo::new(stream);
                    watcher.watch(http.serve_connection(io, service)).await
                }
                Some(tls) => {
                    match tokio::time::timeout(handshake_deadline, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let io = TokioIo::new(stream);
                            watcher.watch(http.serve_connection(io, service)).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                // Timeouts and clients going away end up here; not faults.
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// An `accept` that failed: a client that gave up before we took it is
/// routine; anything else (out of file descriptors) is logged and waited
/// out briefly, so the loop does not spin while the condition lasts.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Raises this process's soft open-files limit to its hard limit (the
/// default soft limit, often 1,024, is far below what a server with many
/// phones and open dashboards holds). Returns the limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
