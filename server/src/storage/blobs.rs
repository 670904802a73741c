//! Attachment bytes: each content stored once, addressed by its SHA-256,
//! and the chunks of uploads still in progress. Kept in the database (not
//! on a disk beside it) so every server process on a PostgreSQL database
//! sees the same files, and a backup of the database holds them all.
//!
//! Nothing here decides who may read or write: the service checks scope
//! against the projection rows first.

use sqlx::Row;

use super::{Db, StorageError, Tx};

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// How far an upload has come: bytes held so far, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub received: i64,
    /// The length its first chunk declared; `None` before any chunk.
    pub total: Option<i64>,
}

impl Db {
    /// The size of a stored content, or `None` if it is not (yet) stored.
    pub async fn blob_size(&self, sha256: &str) -> Result<Option<i64>, StorageError> {
        let row = sqlx::query("SELECT size FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("size")).transpose()?)
    }

    /// A stored content, whole.
    pub async fn blob(&self, sha256: &str) -> Result<Option<Blob>, StorageError> {
        let row = sqlx::query("SELECT media_type, bytes FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| -> Result<Blob, sqlx::Error> {
                Ok(Blob {
                    media_type: r.try_get("media_type")?,
                    bytes: r.try_get("bytes")?,
                })
            })
            .transpose()?)
    }

    /// A stored thumbnail of a content.
    pub async fn thumbnail(&self, sha256: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let row = sqlx::query("SELECT bytes FROM thumbnails WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("bytes")).transpose()?)
    }

    /// Keeps a thumbnail (the first one made, if two requests raced).
    pub async fn put_thumbnail(&self, sha256: &str, bytes: &[u8]) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO thumbnails (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(bytes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How far `user_id`'s upload of `sha256` has come.
    pub async fn upload_progress(
        &self,
        sha256: &str,
        user_id: &str,
    ) -> Result<Progress, StorageError> {
        progress(
            sqlx::query(PROGRESS_SQL)
                .bind(sha256)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Whether someone at `facility_id` has uploaded this content.
    pub async fn blob_granted(
        &self,
        sha256: &str,
        facility_id: &str,
    ) -> Result<bool, StorageError> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM blob_access WHERE sha256 = $1 AND facility_id = $2")
                .bind(sha256)
                .bind(facility_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Whether `scope` sees a shipment whose records name this content at
    /// a facility that has uploaded it: who may read a stored file.
    pub async fn blob_readable(
        &self,
        scope: &super::Scope,
        sha256: &str,
    ) -> Result<bool, StorageError> {
        if *scope == super::Scope::Nothing {
            return Ok(false);
        }
        let (facility, region) = scope.binds();
        let condition = super::scope_sql(2, 3).replace("facility_id", "s.facility_id");
        let row = sqlx::query(&format!(
            "SELECT 1 AS one FROM shipment_attachments d
             JOIN shipments s ON s.id = d.shipment_id
             JOIN blob_access g ON g.sha256 = d.sha256 AND g.facility_id = s.facility_id
             WHERE d.sha256 = $1 AND {condition} LIMIT 1"
        ))
        .bind(sha256)
        .bind(facility)
        .bind(region)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

/// The chunk that ends last says how far an upload has come: chunks are
/// only ever appended at the end.
const PROGRESS_SQL: &str = "SELECT start + CAST(length(bytes) AS BIGINT) AS received, total
     FROM upload_chunks WHERE sha256 = $1 AND user_id = $2 ORDER BY start DESC LIMIT 1";

/// Uploads left unfinished this long are forgotten (their chunks deleted).
pub const STALE_UPLOAD_MS: i64 = 30 * 24 * 60 * 60 * 1000;

fn progress(row: Option<sqlx::any::AnyRow>) -> Result<Progress, StorageError> {
    Ok(match row {
        None => Progress {
            received: 0,
            total: None,
        },
        Some(r) => Progress {
            received: r.try_get("received")?,
            total: Some(r.try_get("total")?),
        },
    })
}

impl Tx {
    /// [`Db::upload_progress`], as this transaction sees it.
    pub async fn upload_progress(
        &mut self,
        sha256: &str,
        user_id: &str,
    ) -> Result<Progress, StorageError> {
        let row = sqlx::query(PROGRESS_SQL)
            .bind(sha256)
            .bind(user_id)
            .fetch_optional(self.conn())
            .await?;
        progress(row)
    }

    /// Lets records at `facility_id` show this (stored) content.
    pub async fn grant_blob(
        &mut self,
        sha256: &str,
        facility_id: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO blob_access (sha256, facility_id, granted_at) VALUES ($1, $2, $3)
             ON CONFLICT (sha256, facility_id) DO NOTHING",
        )
        .bind(sha256)
        .bind(facility_id)
        .bind(now_ms)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Forgets every upload nobody continued for [`STALE_UPLOAD_MS`].
    pub async fn drop_stale_uploads(&mut self, now_ms: i64) -> Result<(), StorageError> {
        sqlx::query(
            "DELETE FROM upload_chunks WHERE (sha256, user_id) IN (
                 SELECT sha256, user_id FROM upload_chunks
                 GROUP BY sha256, user_id HAVING MAX(received_at) < $1)",
        )
        .bind(now_ms - STALE_UPLOAD_MS)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Whether the content is stored already.
    pub async fn blob_exists(&mut self, sha256: &str) -> Result<bool, StorageError> {
        Ok(sqlx::query("SELECT 1 AS one FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(self.conn())
            .await?
            .is_some())
    }

    /// Appends a chunk at `start`. The caller checked that `start` is where
    /// the upload stands; two requests racing for the same offset collide
    /// on the key, and the loser's transaction fails.
    pub async fn append_chunk(
        &mut self,
        sha256: &str,
        start: i64,
        total: i64,
        bytes: &[u8],
        user_id: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO upload_chunks (sha256, start, total, bytes, user_id, received_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(sha256)
        .bind(start)
        .bind(total)
        .bind(bytes)
        .bind(user_id)
        .bind(now_ms)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Every chunk of `user_id`'s upload, in order, joined; and forgets them.
    pub async fn take_chunks(
        &mut self,
        sha256: &str,
        user_id: &str,
    ) -> Result<Vec<u8>, StorageError> {
        let rows = sqlx::query(
            "SELECT bytes FROM upload_chunks WHERE sha256 = $1 AND user_id = $2 ORDER BY start",
        )
        .bind(sha256)
        .bind(user_id)
        .fetch_all(self.conn())
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let chunk: Vec<u8> = row.try_get("bytes")?;
            out.extend_from_slice(&chunk);
        }
        sqlx::query("DELETE FROM upload_chunks WHERE sha256 = $1 AND user_id = $2")
            .bind(sha256)
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(out)
    }

    /// Stores a verified content (once: storing it again does nothing).
    pub async fn insert_blob(
        &mut self,
        sha256: &str,
        blob: &Blob,
        uploaded_by: &str,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO blobs (sha256, media_type, size, bytes, stored_at, uploaded_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(&blob.media_type)
        .bind(i64::try_from(blob.bytes.len()).unwrap_or(i64::MAX))
        .bind(&blob.bytes)
        .bind(now_ms)
        .bind(uploaded_by)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Adds `bytes` to what `user_id` uploaded on `day` and returns the
    /// new total.
    pub async fn add_uploaded(
        &mut self,
        user_id: &str,
        day: i64,
        bytes: i64,
    ) -> Result<i64, StorageError> {
        let row = sqlx::query(
            "INSERT INTO upload_quota (user_id, day, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, day) DO UPDATE SET bytes = upload_quota.bytes + $3
             RETURNING bytes",
        )
        .bind(user_id)
        .bind(day)
        .bind(bytes)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get("bytes")?)
    }
}
