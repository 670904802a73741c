//! One database transaction of the sync service or the write API.

use automerge::{AutoCommit, Change};
use sqlx::{Any, Row, Transaction};

use super::{Backend, ChangeAuthor, Scope, StorageError, scope_sql};

/// Compact a document's snapshot once this many changes follow it, so that
/// loading a document never replays a long tail...
const SNAPSHOT_EVERY: i64 = 32;
/// ...and the changes after it add up to this share of the snapshot's size
/// (1/4): saving a large document costs time in proportion to all of it, so
/// it is saved in proportion to its growth, never after every few changes.
const SNAPSHOT_GROWTH_DIVISOR: usize = 4;

/// A document as loaded: its automerge state and its bookkeeping.
pub struct StoredDocument {
    pub id: String,
    pub facility_id: String,
    /// The destination facility's region, which decides which coordinators
    /// see the document.
    pub region: Option<String>,
    pub created_version: i64,
    pub version: i64,
    pub doc: AutoCommit,
    /// Changes stored after the snapshot (what the next compaction folds in).
    pub tail: i64,
    /// Bytes stored for the document: its snapshot and the changes after it.
    pub stored_bytes: usize,
    /// The snapshot's size in bytes (part of `stored_bytes`).
    pub snapshot_bytes: usize,
    /// The last change the snapshot holds.
    pub snapshot_seq: i64,
    /// The last change `doc` holds (the change log's `seq`).
    pub seq: i64,
}

pub struct Tx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

pub(super) fn corrupt(id: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::CorruptDocument {
        id: id.to_owned(),
        reason: e.to_string(),
    }
}

/// Loads a stored document: its snapshot, then the changes stored after it.
pub(super) fn replay(
    id: &str,
    snapshot: &[u8],
    changes: Vec<Change>,
) -> Result<AutoCommit, StorageError> {
    let doc = contain_automerge(id, || AutoCommit::load(snapshot))?;
    apply_stored(id, doc, changes)
}

/// Applies stored changes to a loaded document.
pub(super) fn apply_stored(
    id: &str,
    mut doc: AutoCommit,
    changes: Vec<Change>,
) -> Result<AutoCommit, StorageError> {
    if changes.is_empty() {
        return Ok(doc);
    }
    contain_automerge(id, || doc.apply_changes(changes))?;
    Ok(doc)
}

/// automerge asserts instead of erring on some histories it does not expect;
/// uploads are checked so none is stored (`aidsync_shared::sync::lineage`),
/// and should one slip through, its document is reported corrupt instead of
/// a panic taking the worker thread's request with it.
fn contain_automerge<T>(
    id: &str,
    work: impl FnOnce() -> Result<T, automerge::AutomergeError>,
) -> Result<T, StorageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(|_| corrupt(id, "automerge panicked replaying its stored changes"))?
        .map_err(|e| corrupt(id, e))
}

impl Tx {
    pub(super) fn new(
        tx: Transaction<'static, Any>,
        backend: Backend,
        gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Self {
        Tx {
            tx,
            backend,
            _gate: gate,
        }
    }

    pub(super) fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection, for the other storage modules' statements.
    pub(super) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), StorageError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// The commit counter as this transaction sees it.
    pub async fn current_version(&mut self) -> Result<i64, StorageError> {
        let v = sqlx::query("SELECT value FROM sync_counter WHERE id = 1")
            .fetch_one(&mut *self.tx)
            .await?
            .try_get("value")?;
        Ok(v)
    }

    /// The commit timeline this database is on (see migration 0006).
    pub async fn current_epoch(&mut self) -> Result<i64, StorageError> {
        let v = sqlx::query("SELECT epoch FROM sync_counter WHERE id = 1")
            .fetch_one(&mut *self.tx)
            .await?
            .try_get("epoch")?;
        Ok(v)
    }

    /// Takes the next commit version. On PostgreSQL this locks the counter
    /// row until commit, which orders versions by commit time; take it last,
    /// after the per-document work, to hold the lock briefly.
    pub async fn next_version(&mut self) -> Result<i64, StorageError> {
        let v =
            sqlx::query("UPDATE sync_counter SET value = value + 1 WHERE id = 1 RETURNING value")
                .fetch_one(&mut *self.tx)
                .await?
                .try_get("value")?;
        Ok(v)
    }

    /// Loads a document, locking its row against concurrent writers
    /// (PostgreSQL; SQLite writers are already serialized). Bypasses the
    /// document cache: for work that reads every document once.
    pub async fn load_document(
        &mut self,
        id: &str,
        lock: bool,
    ) -> Result<Option<StoredDocument>, StorageError> {
        match self.document_row(id, lock).await? {
            Some(row) => Ok(Some(self.load_from_row(id, row).await?)),
            None => Ok(None),
        }
    }

    /// Whether a document with this id is stored.
    pub async fn document_exists(&mut self, id: &str) -> Result<bool, StorageError> {
        Ok(sqlx::query("SELECT 1 AS one FROM documents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some())
    }

    /// Stores a new document whose first changes are `changes`.
    pub async fn insert_document(
        &mut self,
        id: &str,
        facility_id: &str,
        doc: &mut AutoCommit,
        version: i64,
        author: &ChangeAuthor<'_>,
        received_at: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO documents (id, facility_id, created_version, version, snapshot, snapshot_seq)
             VALUES ($1, $2, $3, $3, $4, 0)",
        )
        .bind(id)
        .bind(facility_id)
        .bind(version)
        .bind(doc.save())
        .execute(&mut *self.tx)
        .await?;
        let changes = doc.get_changes(&[]);
        let seq = self
            .append_changes(id, &changes, version, author, received_at)
            .await?;
        // The snapshot already holds these changes.
        sqlx::query("UPDATE documents SET snapshot_seq = $2 WHERE id = $1")
            .bind(id)
            .bind(seq)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Appends changes (duplicates are skipped) and returns the last seq.
    pub async fn append_changes(
        &mut self,
        document_id: &str,
        changes: &[Change],
        version: i64,
        author: &ChangeAuthor<'_>,
        received_at: i64,
    ) -> Result<i64, StorageError> {
        for change in changes {
            let actor = change.actor_id().to_hex_string();
            sqlx::query(
                "INSERT INTO changes (document_id, hash, actor_id, bytes, version, device_id, user_id, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (document_id, hash) DO NOTHING",
            )
            .bind(document_id)
            .bind(change.hash().to_string())
            .bind(&actor)
            .bind(change.raw_bytes().to_vec())
            .bind(version)
            .bind(author.device_for(&actor))
            .bind(author.user_id)
            .bind(received_at)
            .execute(&mut *self.tx)
            .await?;
        }
        let seq =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes WHERE document_id = $1")
                .bind(document_id)
                .fetch_one(&mut *self.tx)
                .await?
                .try_get("seq")?;
        Ok(seq)
    }

    /// Records that `doc` changed at `version` by `added` (appended up to
    /// `last_seq`), compacting its snapshot when the tail has grown. The
    /// snapshot replaces nothing: changes stay.
    pub async fn touch_document(
        &mut self,
        stored: &mut StoredDocument,
        version: i64,
        last_seq: i64,
        added: &[Change],
    ) -> Result<(), StorageError> {
        let added_bytes: usize = added.iter().map(|c| c.raw_bytes().len()).sum();
        stored.stored_bytes += added_bytes;
        let tail_bytes = stored.stored_bytes.saturating_sub(stored.snapshot_bytes);
        let added = added.len() as i64;
        if stored.tail + added >= SNAPSHOT_EVERY
            && tail_bytes >= stored.snapshot_bytes / SNAPSHOT_GROWTH_DIVISOR
        {
            let snapshot = stored.doc.save();
            let snapshot_bytes = snapshot.len();
            sqlx::query(
                "UPDATE documents SET version = $2, snapshot = $3, snapshot_seq = $4 WHERE id = $1",
            )
            .bind(&stored.id)
            .bind(version)
            .bind(snapshot)
            .bind(last_seq)
            .execute(&mut *self.tx)
            .await?;
            stored.tail = 0;
            stored.snapshot_seq = last_seq;
            stored.snapshot_bytes = snapshot_bytes;
            stored.stored_bytes = snapshot_bytes;
        } else {
            sqlx::query("UPDATE documents SET version = $2 WHERE id = $1")
                .bind(&stored.id)
                .bind(version)
                .execute(&mut *self.tx)
                .await?;
            stored.tail += added;
        }
        stored.version = version;
        stored.seq = last_seq;
        Ok(())
    }

    /// Ids and creation versions of documents changed after `since` that a
    /// caller with `scope` may see.
    pub async fn changed_documents(
        &mut self,
        since: i64,
        scope: &Scope,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        if *scope == Scope::Nothing {
            return Ok(Vec::new());
        }
        let (facility, region) = scope.binds();
        let sql = format!(
            "SELECT id, created_version FROM documents WHERE version > $1 AND {} ORDER BY id",
            scope_sql(2, 3)
        );
        let rows = sqlx::query(&sql)
            .bind(since)
            .bind(facility)
            .bind(region)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("created_version")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Hex hashes of a document's changes committed after `since`.
    pub async fn change_hashes_since(
        &mut self,
        document_id: &str,
        since: i64,
    ) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query(
            "SELECT hash FROM changes WHERE document_id = $1 AND version > $2 ORDER BY seq",
        )
        .bind(document_id)
        .bind(since)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| r.try_get("hash"))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
