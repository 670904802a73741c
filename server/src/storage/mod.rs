//! Storage: SQLite (the embedded default) or PostgreSQL, chosen by URL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver (runtime
//! queries, `$n` placeholders, which SQLite accepts too); they differ only in
//! their migrations and in how a transaction takes its locks, which
//! [`Backend`] decides in one place.
//!
//! Layout: [`Db`] owns the pool and answers single-statement reads;
//! [`Tx`] is a transaction for one sync or one API write.

mod facilities;
mod tx;
mod users;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

pub use facilities::FacilityRow;
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

/// A registered device, as the request context needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: String,
    pub user_id: String,
    pub facility_id: Option<String>,
    pub name: String,
    pub actor_id: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// One row of the shipments projection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShipmentRow {
    pub id: String,
    pub facility_id: String,
    pub donor: String,
    pub programme: String,
    pub reference: String,
    pub expected_on: Option<String>,
    pub status: String,
    pub expected: i64,
    pub received: i64,
    pub damaged: i64,
    pub outstanding: i64,
    pub receipts: i64,
    pub duplicates: i64,
    pub conflicts: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Filter for [`Db::list_shipments`]. `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ShipmentFilter {
    pub facility: Option<String>,
    pub status: Option<String>,
}

/// Who sent a change, as stored beside it.
#[derive(Debug, Clone)]
pub struct ChangeAuthor<'a> {
    pub device_id: Option<&'a str>,
    pub user_id: &'a str,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has a single writer anyway; queueing writers here, rather than
    /// in SQLite's busy handler, keeps waits fair and cheap. PostgreSQL
    /// writers coordinate with row locks instead (see [`Tx`]).
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
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
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Db {
            pool,
            backend,
            write_gate: (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(()))),
        })
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

    pub async fn insert_device(
        &self,
        device: &DeviceRow,
        token_hash: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO devices (id, user_id, facility_id, name, actor_id, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&device.id)
        .bind(&device.user_id)
        .bind(&device.facility_id)
        .bind(&device.name)
        .bind(&device.actor_id)
        .bind(token_hash)
        .bind(device.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeviceRow>, StorageError> {
        let row = sqlx::query(
            "SELECT id, user_id, facility_id, name, actor_id, created_at, revoked_at
             FROM devices WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(DeviceRow {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                facility_id: r.try_get("facility_id")?,
                name: r.try_get("name")?,
                actor_id: r.try_get("actor_id")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .transpose()
    }

    /// Shipments from the projection, newest first.
    pub async fn list_shipments(
        &self,
        filter: &ShipmentFilter,
    ) -> Result<Vec<ShipmentRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, facility_id, donor, programme, reference, expected_on, status, expected,
                    received, damaged, outstanding, receipts, duplicates, conflicts, created_at,
                    updated_at
             FROM shipments
             WHERE ($1 IS NULL OR facility_id = $1) AND ($2 IS NULL OR status = $2)
             ORDER BY created_at DESC, id",
        )
        .bind(&filter.facility)
        .bind(&filter.status)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(shipment_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// When each of these changes reached the server (ms since epoch), by hex hash.
    pub async fn received_at(
        &self,
        document_id: &str,
    ) -> Result<std::collections::HashMap<String, i64>, StorageError> {
        let rows = sqlx::query("SELECT hash, received_at FROM changes WHERE document_id = $1")
            .bind(document_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("hash")?, r.try_get("received_at")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
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

    /// Runs a trivial query: is the database reachable?
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn shipment_row(r: &sqlx::any::AnyRow) -> Result<ShipmentRow, sqlx::Error> {
    Ok(ShipmentRow {
        id: r.try_get("id")?,
        facility_id: r.try_get("facility_id")?,
        donor: r.try_get("donor")?,
        programme: r.try_get("programme")?,
        reference: r.try_get("reference")?,
        expected_on: r.try_get("expected_on")?,
        status: r.try_get("status")?,
        expected: r.try_get("expected")?,
        received: r.try_get("received")?,
        damaged: r.try_get("damaged")?,
        outstanding: r.try_get("outstanding")?,
        receipts: r.try_get("receipts")?,
        duplicates: r.try_get("duplicates")?,
        conflicts: r.try_get("conflicts")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}
