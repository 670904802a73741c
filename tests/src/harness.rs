//! A real server on a free port, over a database that exists only for one
//! test.

use anyhow::Context;
use rand::RngCore;
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use aidsync_server::app::{Application, Config};
use aidsync_server::clock::Clock;
use aidsync_server::service::Limits;
use aidsync_server::storage::Db;

/// Where the PostgreSQL tests find a server to create databases on, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. Unset: those tests skip.
pub const POSTGRES_URL_ENV: &str = "AIDSYNC_TEST_POSTGRES_URL";

/// A throwaway database.
pub enum TestDb {
    /// A SQLite file in a temporary directory, removed on drop.
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    /// A fresh database on a PostgreSQL server; [`TestDb::cleanup`] drops it.
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub fn sqlite() -> anyhow::Result<TestDb> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite:{}", dir.path().join("aidsync.db").display());
        Ok(TestDb::Sqlite { _dir: dir, url })
    }

    /// A fresh database on the server named by [`POSTGRES_URL_ENV`], or
    /// `None` (after saying why on stderr) when it is not set.
    pub async fn postgres(test: &str) -> anyhow::Result<Option<TestDb>> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_ENV) else {
            eprintln!("SKIPPED {test}: set {POSTGRES_URL_ENV} to run it against PostgreSQL");
            return Ok(None);
        };
        let mut suffix = [0u8; 6];
        rand::rng().fill_bytes(&mut suffix);
        let name = format!("aidsync_test_{}", aidsync_shared::ids::to_hex(&suffix));
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to {POSTGRES_URL_ENV}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let url = with_database(&admin_url, &name)?;
        Ok(Some(TestDb::Postgres {
            admin_url,
            name,
            url,
        }))
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// Drops a PostgreSQL database (a SQLite one goes with its directory).
    pub async fn cleanup(self) -> anyhow::Result<()> {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
        {
            let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

/// `postgres://user@host:port/db?opts` with the database replaced.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").context("not a URL")? + 3;
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    Ok(match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    })
}

/// A server running in this process on `127.0.0.1:0`.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    db: Db,
    clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(database_url: &str) -> anyhow::Result<TestServer> {
        TestServer::start_with(database_url, Limits::default()).await
    }

    pub async fn start_with(database_url: &str, limits: Limits) -> anyhow::Result<TestServer> {
        let app = Application::build(Config {
            web_root: Some(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("web"),
            ),
            bind: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            document_cache_bytes: aidsync_server::storage::DEFAULT_CACHE_BYTES,
            syncs_per_commit: aidsync_server::storage::DEFAULT_SYNCS_PER_COMMIT,
            // Debug builds merge slowly: a batch of tests' syncs is not cut
            // short by the release build's window.
            commit_window: std::time::Duration::from_secs(5),
            limits,
            connections: Default::default(),
            metrics_bind: None,
            tls: None,
        })
        .await?;
        let base = format!("http://{}", app.local_addr()?);
        let db = app.db().clone();
        let clock = app.clock().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(TestServer {
            base,
            db,
            clock,
            stop: Some(stop),
            task,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The server's clock: move it forward to expire tokens or refill rate
    /// limits without sleeping.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Graceful shutdown: in-flight requests finish, the pool closes.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A test that failed before `stop` must not leave a server serving.
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_of_a_postgres_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x").ok(),
            Some("postgres://postgres@127.0.0.1:5432/x".into())
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x").ok(),
            Some("postgres://u:p@h/x?sslmode=disable".into())
        );
        assert_eq!(
            with_database("postgres://h:5432", "x").ok(),
            Some("postgres://h:5432/x".into())
        );
    }
}
