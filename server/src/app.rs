//! Building and running the server: `Application::build` binds and
//! migrates, `run_until_stopped` serves until the shutdown future resolves,
//! finishing requests already in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::connections::ConnectionLimits;
use crate::events::Events;
use crate::http::throttle::Throttles;
use crate::service::Limits;
use crate::storage::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub limits: Arc<Limits>,
    pub clock: Clock,
    pub throttles: Arc<Throttles>,
    /// Password checks running at once (argon2 is memory-hard on purpose).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// The phone web app's files, served at `/`; `None`: API only.
    pub web_root: Option<PathBuf>,
    /// Notifications for live dashboards.
    pub events: Events,
}

impl AppState {
    pub fn new(db: Db, limits: Limits, clock: Clock, web_root: Option<PathBuf>) -> AppState {
        AppState {
            db,
            throttles: Arc::new(Throttles::new(&limits)),
            limits: Arc::new(limits),
            clock,
            password_checks: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            )),
            web_root,
            events: Events::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    pub bind: String,
    /// `sqlite:PATH`, a bare path, or `postgres://…`.
    pub database_url: String,
    /// Memory the document cache may use (`--document-cache-bytes`).
    pub document_cache_bytes: usize,
    /// Most syncs stored in one transaction (`--syncs-per-commit`).
    pub syncs_per_commit: usize,
    /// How long one transaction takes in more syncs (`--commit-window-ms`).
    pub commit_window: std::time::Duration,
    pub limits: Limits,
    /// Directory of the phone web app (`web/`), served at `/`; `None` for
    /// an API-only server.
    pub web_root: Option<PathBuf>,
    pub connections: ConnectionLimits,
    /// Where to serve `/metrics` instead of on `bind` (`--metrics-bind`);
    /// `None`: on `bind`, beside the API.
    pub metrics_bind: Option<String>,
    /// Serve HTTPS on `bind` with these (`--tls-cert`, `--tls-key`);
    /// `None`: plain HTTP. The metrics address stays plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
}

/// Open connections at most on the metrics listener: a scraper or two, and
/// no way for anyone else reaching it to hold many file descriptors.
const METRICS_MAX_CONNECTIONS: usize = 16;

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    connections: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        // First: a wrong certificate path should not cost a database open.
        let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let db = Db::connect(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", redact(&config.database_url)))?
            .with_document_cache(config.document_cache_bytes)
            .with_group_commit(config.syncs_per_commit, config.commit_window);
        // Before serving: coordinators must never read rows from older rules.
        crate::service::projections::rebuild_if_stale(&db, crate::service::now_ms())
            .await
            .context("rebuilding coordinator projections")?;
        let listener = TcpListener::bind(&config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let metrics_listener = match &config.metrics_bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding {bind} (metrics)"))?,
            ),
            None => None,
        };
        // Before the first request, so none goes uncounted.
        crate::metrics::handle();
        let mut state = AppState::new(
            db.clone(),
            config.limits,
            Clock::default(),
            web_root(config.web_root),
        );
        if db.backend() == crate::storage::Backend::Postgres {
            // Other server processes may share the database: dashboards
            // hear of changes made through any of them.
            let listener = crate::events::listen_postgres(&config.database_url)
                .await
                .context("listening for other servers' change notifications")?;
            state.events = state.events.clone().relayed_through(db);
            tokio::spawn(crate::events::relay_postgres(
                config.database_url.clone(),
                state.events.clone(),
                listener,
            ));
        }
        Ok(Application {
            listener,
            metrics_listener,
            connections: config.connections,
            tls,
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// The clock handlers read; tests move it forward.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    pub fn limits(&self) -> &Limits {
        &self.state.limits
    }

    /// Serves until `shutdown` resolves, then waits for in-flight requests
    /// (a sync that has started commits and answers) and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let db = self.state.db.clone();
        let events = self.state.events.clone();
        // Tells the metrics listener, if any, to stop with the main one.
        let (stopping, mut stopped) = tokio::sync::watch::channel(false);
        // Open event streams never end by themselves: end them when the
        // shutdown starts, or the graceful shutdown would wait forever.
        let shutdown = async move {
            shutdown.await;
            events.close();
            let _ = stopping.send(true);
        };
        let router = crate::http::router(self.state.clone(), self.metrics_listener.is_none());
        let api =
            crate::connections::serve(self.listener, router, &self.connections, self.tls, shutdown);
        match self.metrics_listener {
            Some(listener) => {
                let limits = ConnectionLimits {
                    max_connections: METRICS_MAX_CONNECTIONS,
                    ..self.connections.clone()
                };
                let metrics = crate::connections::serve(
                    listener,
                    crate::http::metrics_router(self.state),
                    &limits,
                    None,
                    async move {
                        // An error means the sender is gone: stop too.
                        let _ = stopped.wait_for(|stop| *stop).await;
                    },
                );
                tokio::join!(api, metrics);
            }
            None => api.await,
        }
        db.close().await;
        Ok(())
    }
}

/// The web root if it holds a built app; otherwise says why in the log and
/// serves the API alone, which phones syncing from elsewhere still need.
fn web_root(root: Option<PathBuf>) -> Option<PathBuf> {
    let root = root?;
    if !root.join("index.html").is_file() {
        tracing::warn!(root = %root.display(), "no web app there (index.html missing); serving the API only");
        return None;
    }
    if !root
        .join("pkg")
        .join("aidsync_client_wasm_bg.wasm")
        .is_file()
    {
        tracing::warn!(
            root = %root.display(),
            "the web app's engine is not built (web/pkg missing): run scripts/build-web"
        );
    }
    Some(root)
}

/// A database URL fit for logs: no password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
