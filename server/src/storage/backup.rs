//! Copies of a live database, and the epoch that tells phones a database
//! was restored from one.

use super::{Backend, Db, StorageError};

impl Db {
    /// Starts a new commit timeline: every phone's cursor becomes one from
    /// another timeline, so each starts over and re-sends what this
    /// database lacks. For a database just restored from a backup.
    pub async fn set_epoch(&self, epoch: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE sync_counter SET epoch = $1 WHERE id = 1")
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes a consistent copy of a live SQLite database to `path` (which
    /// must not exist) with `VACUUM INTO`: one read transaction, so the
    /// server keeps serving and the copy holds exactly the commits before
    /// it began. The copy is marked with `epoch`, so restoring it starts a
    /// new timeline on its own. `None` on PostgreSQL, which has `pg_dump`.
    pub async fn backup_sqlite(
        &self,
        target: &str,
        epoch: i64,
    ) -> Result<Option<()>, StorageError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        // One plain connection, not a pool in WAL mode: the mark must be in
        // the file itself when this returns. Through a pool, the update
        // could sit in `PATH-wal` until the last connection closed, and a
        // copy of `PATH` alone (what a person takes away) restored without
        // its new epoch, so phones kept cursors of the lost timeline and
        // never re-sent what the backup lacked (found by the backup drill
        // under load).
        use sqlx::Connection;
        let (url, _) = super::normalize_url(&format!("sqlite:{target}"))?;
        let mut copy = sqlx::AnyConnection::connect(&url).await?;
        sqlx::query("PRAGMA journal_mode = DELETE")
            .execute(&mut copy)
            .await?;
        let marked = sqlx::query("UPDATE sync_counter SET epoch = $1 WHERE id = 1")
            .bind(epoch)
            .execute(&mut copy)
            .await;
        copy.close().await?;
        marked?;
        Ok(Some(()))
    }
}
