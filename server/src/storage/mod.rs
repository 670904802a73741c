//! Storage: SQLite (the embedded default) or PostgreSQL, chosen by URL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver (runtime
//! queries, `$n` placeholders, which SQLite accepts too); they differ only in
//! their migrations and in how a transaction takes its locks, which
//! [`Backend`] decides in one place.
//!
//! Layout: [`Db`] owns the pool and answers single-statement reads;
//! [`Tx`] is a transaction for one sync or one API write.

mod audit;
mod backup;
mod blobs;
mod cache;
mod devices;
mod facilities;
mod group;
mod projection;
mod throttle;
mod tx;
mod users;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

pub use audit::{ChangeFilter, ChangeRow};
pub use blobs::{Blob, Progress};
pub use cache::{CacheStats, Checkout, DEFAULT_CACHE_BYTES, DocCache, Loaded, LockedSlot};
pub use devices::{CallerRow, DeviceRow, TokenState};
pub use facilities::FacilityRow;
pub use group::{
    Batch, DEFAULT_COMMIT_WINDOW, DEFAULT_SYNCS_PER_COMMIT, GroupJob, GroupStats, JobFailed,
};
pub use projection::{Arrival, DuplicateReport, PROJECTION_VERSION, Page, ReportFilter, TotalsRow};
pub use tx::{StoredDocument, Tx};
pub use users::UserRow;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Storage failed. Never the client's fault: mapped to a logged 500.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database URL {0:?} is neither sqlite: nor postgres:")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored document {id} is unreadable: {reason}")]
    CorruptDocument { id: String, reason: String },
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which shipments someone may see, by their destination facility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every facility (a coordinator without a region).
    All,
    /// One facility (a receiver).
    Facility(String),
    /// Every facility in a region (a regional coordinator).
    Region(String),
    /// None (an admin: accounts, not shipments).
    Nothing,
}

impl Scope {
    /// Whether a document destined to `facility`, in `region`, is visible.
    pub fn contains(&self, facility: &str, region: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Facility(f) => f == facility,
            Scope::Region(r) => region == Some(r.as_str()),
            Scope::Nothing => false,
        }
    }

    /// `(facility, region)` to bind to [`scope_sql`]'s `$a` and `$b`.
    fn binds(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Scope::Facility(f) => (Some(f), None),
            Scope::Region(r) => (None, Some(r)),
            Scope::All | Scope::Nothing => (None, None),
        }
    }
}

/// The condition a query over `facility_id` adds for a [`Scope`], with its
/// two placeholders written `$a` and `$b` (callers number them).
fn scope_sql(a: usize, b: usize) -> String {
    format!(
        "(${a} IS NULL OR facility_id = ${a}) AND \
         (${b} IS NULL OR facility_id IN (SELECT id FROM facilities WHERE region = ${b}))"
    )
}

/// Who sent a change, as stored beside it.
#[derive(Debug, Clone)]
pub struct ChangeAuthor<'a> {
    pub device_id: Option<&'a str>,
    pub user_id: &'a str,
    /// Devices by the hex actor id they sign with. A change signed by one
    /// of these is stored as that device's (a phone uploading, after a new
    /// login, what it recorded under the old one); any other as `device_id`'s.
    pub signers: Option<&'a std::collections::BTreeMap<String, String>>,
}

impl ChangeAuthor<'_> {
    /// The device a change signed by `actor` (hex) is attributed to.
    pub fn device_for(&self, actor: &str) -> Option<&str> {
        self.signers
            .and_then(|s| s.get(actor))
            .map(String::as_str)
            .or(self.device_id)
    }
}

/// Connections of the pool: open (idle or lent out), idle, and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has a single writer anyway; queueing writers here, rather than
    /// in SQLite's busy handler, keeps waits fair and cheap. PostgreSQL
    /// writers coordinate with row locks instead (see [`Tx`]).
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Counts the revocations made through this pool, so open event
    /// streams of this process re-check their token at once (see
    /// [`Db::revocations`]); other processes are caught by the streams'
    /// periodic re-check.
    revocations: Arc<tokio::sync::watch::Sender<u64>>,
    /// Recently used documents, loaded (see [`DocCache`]).
    documents: Arc<DocCache>,
    /// The group-commit writer of sync uploads (see [`group`]).
    writer: Arc<group::Writer>,
}

/// Turns what a person typed into a URL sqlx understands: a bare path means
/// a SQLite file, created if missing.
pub fn normalize_url(url: &str) -> Result<(String, Backend), StorageError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_owned(), Backend::Postgres));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StorageError::UnsupportedUrl(url.to_owned()));
    } else {
        url
    };
    let mut normalized = format!("sqlite://{path}");
    if !path.contains("mode=") {
        normalized.push(if path.contains('?') { '&' } else { '?' });
        normalized.push_str("mode=rwc");
    }
    Ok((normalized, Backend::Sqlite))
}

impl Db {
    /// Connects, applies durability settings and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Db, StorageError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL makes a
                        // commit survive power loss, which is the whole point.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => {
                // sqlx cannot lock a SQLite database for migrating: when two
                // processes start at once, the one that loses the race finds
                // the other's tables mid-way (each migration is its own
                // transaction, so nothing half-applied) and tries again,
                // then sees them applied.
                let mut tries = 0;
                while let Err(e) = SQLITE_MIGRATIONS.run(&pool).await {
                    tries += 1;
                    if tries >= 5 {
                        return Err(e.into());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Db {
            pool,
            backend,
            write_gate: (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(()))),
            revocations: Arc::new(tokio::sync::watch::channel(0).0),
            documents: Arc::new(DocCache::new(DEFAULT_CACHE_BYTES)),
            writer: Arc::new(group::Writer::new(
                group::DEFAULT_SYNCS_PER_COMMIT,
                group::DEFAULT_COMMIT_WINDOW,
            )),
        })
    }

    /// This pool with a document cache of `bytes` (0 keeps nothing loaded
    /// between requests). Set it before the pool is shared.
    pub fn with_document_cache(mut self, bytes: usize) -> Db {
        self.documents = Arc::new(DocCache::new(bytes));
        self
    }

    /// The document cache, for [`Tx::checkout`].
    pub fn documents(&self) -> &Arc<DocCache> {
        &self.documents
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction that may store changes.
    pub async fn begin_write(&self) -> Result<Tx, StorageError> {
        let gate = match &self.write_gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            // IMMEDIATE takes the write lock now, so the transaction can never
            // fail half-way on a lock upgrade.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx::new(tx, self.backend, gate))
    }

    /// A read-only transaction seeing one consistent state of the database,
    /// so a sync response's cursor matches the changes it carries.
    pub async fn begin_read(&self) -> Result<Tx, StorageError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        };
        Ok(Tx::new(tx, self.backend, None))
    }

    /// Counts rows of the append-only log and of documents (for tests and
    /// health checks that want to prove nothing was stored).
    pub async fn counts(&self) -> Result<(i64, i64), StorageError> {
        let changes: i64 = sqlx::query("SELECT COUNT(*) AS n FROM changes")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let documents: i64 = sqlx::query("SELECT COUNT(*) AS n FROM documents")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok((changes, documents))
    }

    /// The pool as it is now, for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Sends a PostgreSQL notification (`NOTIFY`) on `channel`; on SQLite,
    /// where one process owns the database, there is no one to tell.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StorageError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Runs a trivial query: is the database reachable?
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
