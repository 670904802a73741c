//! Building and running the server: `Application::build` binds and
//! migrates, `run_until_stopped` serves until the shutdown future resolves,
//! finishing requests already in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::service::Limits;
use crate::storage::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub limits: Arc<Limits>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    pub bind: String,
    /// `sqlite:PATH`, a bare path, or `postgres://…`.
    pub database_url: String,
    pub limits: Limits,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let db = Db::connect(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", redact(&config.database_url)))?;
        let listener = TcpListener::bind(&config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        Ok(Application {
            listener,
            state: AppState {
                db,
                limits: Arc::new(config.limits),
            },
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// Serves until `shutdown` resolves, then waits for in-flight requests
    /// (a sync that has started commits and answers) and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let db = self.state.db.clone();
        let router = crate::http::router(self.state);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        db.close().await;
        Ok(())
    }
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
