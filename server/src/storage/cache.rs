//! Documents kept loaded between requests.
//!
//! Loading a shipment means reading its snapshot and replaying the changes
//! after it; reading the model and deriving its projection rows walk all
//! of it again. A sync that adds 20 receipts to a shipment of 10,000 must
//! not pay for that every time, so the last state each recently used
//! document was in stays here, bounded by an estimate of its memory and
//! evicted least recently used first.
//!
//! The cache is never trusted on its own word. Each document has a slot
//! whose lock a request holds while it uses the state; under that lock
//! (and, for a writer, under the document's row lock) [`Tx::checkout`]
//! compares the state with the stored version and catches up from the
//! change log's tail when another request or another server process wrote
//! in between. A state goes back into its slot only after the transaction
//! that produced it committed ([`Checkout::keep`]); dropped otherwise, the
//! next request loads the document afresh.
//!
//! Lock order, so no two requests ever wait on each other in a cycle: a
//! database connection (and SQLite's write gate) first, then slots in
//! ascending document id, then the document's row. Readers hold one slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use automerge::Change;
use sqlx::Row as _;
use tokio::sync::OwnedMutexGuard;

use aidsync_shared::model::Shipment;
use aidsync_shared::projection::Projection;
use aidsync_shared::sync::lineage::LineageIndex;

use super::tx::{StoredDocument, replay};
use super::{Backend, StorageError, Tx};

/// What the cache may hold by default: enough for the hot shipments of a
/// large deployment, small beside a server's memory.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// In-memory bytes per stored byte of a document: automerge's op set and
/// indexes, the read model and the projection rows, against the compressed
/// columnar encoding on disk. Measured with `aidsync-sync-bench`'s memory
/// figures (README, "Benchmarks"); an estimate errs high, so the budget
/// holds.
const MEMORY_PER_STORED_BYTE: usize = 24;

/// A document's state, as the database held it at `stored.version`, with
/// what has been derived from it so far.
pub struct Loaded {
    pub stored: StoredDocument,
    /// The model read from `stored.doc`, once someone read it.
    pub shipment: Option<Shipment>,
    /// The projection rows stored for this very state, when the request
    /// that wrote them left them here. `None` means "unknown": the next
    /// writer rewrites the rows from scratch.
    pub projection: Option<Projection>,
    /// The document saved whole, with the heads it was saved at: what a
    /// phone without the shipment receives. Saving compresses every
    /// column, so one save serves every phone of a facility until the
    /// document changes (the heads say when).
    saved: Option<(Vec<automerge::ChangeHash>, Arc<Vec<u8>>)>,
    /// The history's index for checking uploads; it knows which heads it
    /// describes and is rebuilt when they are not the document's.
    pub lineage: LineageIndex,
}

impl Loaded {
    fn new(stored: StoredDocument) -> Loaded {
        Loaded {
            stored,
            shipment: None,
            projection: None,
            saved: None,
            lineage: LineageIndex::default(),
        }
    }

    /// The document saved whole, as it is now.
    pub fn saved(&mut self) -> Arc<Vec<u8>> {
        let heads = self.stored.doc.get_heads();
        match &self.saved {
            Some((at, bytes)) if *at == heads => bytes.clone(),
            _ => {
                let bytes = Arc::new(self.stored.doc.save());
                self.saved = Some((heads, bytes.clone()));
                bytes
            }
        }
    }

    fn estimated_bytes(&self) -> usize {
        self.stored
            .stored_bytes
            .saturating_mul(MEMORY_PER_STORED_BYTE)
            .saturating_add(self.saved.as_ref().map_or(0, |(_, b)| b.len()))
            .saturating_add(4096)
    }
}

type Cell = Arc<tokio::sync::Mutex<Option<Loaded>>>;

struct Slot {
    cell: Cell,
    last_used: u64,
    bytes: usize,
}

#[derive(Default)]
struct Slots {
    map: HashMap<String, Slot>,
    tick: u64,
    bytes: usize,
}

/// Figures for `/metrics` and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub documents: usize,
    pub bytes: usize,
    pub budget: usize,
}

pub struct DocCache {
    budget: usize,
    slots: Mutex<Slots>,
}

impl DocCache {
    pub fn new(budget: usize) -> DocCache {
        DocCache {
            budget,
            slots: Mutex::default(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A panic while holding this lock leaves only bookkeeping behind.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `id`, created empty if the document is not cached.
    /// Locks a document's slot: its state is the holder's until the
    /// checkout made of it ends. A reader takes the slot before a database
    /// connection, so that while a writer holds the slot, those waiting
    /// for it do not hold connections the writer's other requests need.
    pub async fn lock(self: &Arc<Self>, id: &str) -> LockedSlot {
        let cell = self.cell(id);
        let guard = cell.clone().lock_owned().await;
        LockedSlot {
            cache: self.clone(),
            id: id.to_owned(),
            cell,
            guard,
        }
    }

    fn cell(&self, id: &str) -> Cell {
        let mut slots = self.slots();
        slots.tick += 1;
        let tick = slots.tick;
        let slot = slots.map.entry(id.to_owned()).or_insert_with(|| Slot {
            cell: Cell::default(),
            last_used: tick,
            bytes: 0,
        });
        slot.last_used = tick;
        slot.cell.clone()
    }

    /// Records what the state now in `cell` costs, then evicts the least
    /// recently used documents until the cache fits its budget again.
    fn account(&self, id: &str, cell: &Cell, bytes: usize) {
        let mut slots = self.slots();
        let Slots {
            map, bytes: total, ..
        } = &mut *slots;
        // Evicted while checked out: the state lives on in `cell` only
        // until its holder lets go.
        if let Some(slot) = map.get_mut(id).filter(|s| Arc::ptr_eq(&s.cell, cell)) {
            *total = total.saturating_sub(slot.bytes).saturating_add(bytes);
            slot.bytes = bytes;
        }
        while *total > self.budget {
            let Some(oldest) = map
                .iter()
                .filter(|(_, s)| s.bytes > 0)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = map.remove(&oldest) {
                *total = total.saturating_sub(gone.bytes);
            }
        }
        // Slots made for documents that turned out not to exist, or whose
        // state was dropped, cost a map entry each: keep them few.
        if map.len() > 4 * 1024 && map.len() > 2 * map.values().filter(|s| s.bytes > 0).count() {
            map.retain(|_, s| s.bytes > 0 || Arc::strong_count(&s.cell) > 1);
        }
    }

    /// Forgets a document's state (it no longer exists, or could not be
    /// read).
    fn forget(&self, id: &str, cell: &Cell) {
        let mut slots = self.slots();
        if let Some(slot) = slots.map.get(id).filter(|s| Arc::ptr_eq(&s.cell, cell)) {
            let bytes = slot.bytes;
            slots.map.remove(id);
            slots.bytes = slots.bytes.saturating_sub(bytes);
        }
    }

    pub fn stats(&self) -> CacheStats {
        let slots = self.slots();
        CacheStats {
            documents: slots.map.values().filter(|s| s.bytes > 0).count(),
            bytes: slots.bytes,
            budget: self.budget,
        }
    }
}

/// A document checked out of the cache: its state, exclusively, until
/// [`Checkout::keep`] puts it back or the checkout is dropped (which
/// forgets it: whatever was done to it may not have been committed).
pub struct Checkout {
    cache: Arc<DocCache>,
    id: String,
    guard: OwnedMutexGuard<Option<Loaded>>,
    pub loaded: Loaded,
}

impl Checkout {
    /// Puts the state back for the next request. Call only once the state
    /// is what the database holds: after the commit that stored it, or
    /// unchanged from a read.
    pub fn keep(self) {
        let Checkout {
            cache,
            id,
            mut guard,
            loaded,
        } = self;
        let bytes = loaded.estimated_bytes();
        *guard = Some(loaded);
        let cell = OwnedMutexGuard::mutex(&guard).clone();
        drop(guard);
        cache.account(&id, &cell, bytes);
    }

    /// Drops the state (say, an upload was applied to it and refused).
    pub fn discard(self) {
        let cell = OwnedMutexGuard::mutex(&self.guard).clone();
        self.cache.forget(&self.id, &cell);
    }

    /// Loads the state afresh from what `tx` holds, keeping the slot (and
    /// its lock): for a state that may hold changes `tx` does not, such as
    /// a refused upload's. `false`: the document is gone.
    pub async fn reload(&mut self, tx: &mut Tx) -> Result<bool, StorageError> {
        let Some(row) = tx.document_row(&self.id, false).await? else {
            return Ok(false);
        };
        self.loaded = Loaded::new(tx.load_from_row(&self.id, row).await?);
        Ok(true)
    }
}

/// A document's slot, locked ([`DocCache::lock`]), to check out.
pub struct LockedSlot {
    cache: Arc<DocCache>,
    id: String,
    cell: Cell,
    guard: OwnedMutexGuard<Option<Loaded>>,
}

/// A document's row, as a checkout reads it.
pub(super) struct DocumentRow {
    facility_id: String,
    region: Option<String>,
    created_version: i64,
    version: i64,
    snapshot_seq: i64,
}

impl Tx {
    /// Checks a document out of `cache`, brought up to what this
    /// transaction sees; `None` if there is no such document. With `lock`,
    /// the document's row is locked until this transaction ends (on
    /// PostgreSQL; SQLite writers are serialized already), so no other
    /// writer, in this process or another, changes it meanwhile.
    pub async fn checkout(
        &mut self,
        cache: &Arc<DocCache>,
        id: &str,
        lock: bool,
    ) -> Result<Option<Checkout>, StorageError> {
        let slot = cache.lock(id).await;
        self.checkout_slot(slot, lock).await
    }

    /// [`Tx::checkout`] of a slot already locked ([`DocCache::lock`]).
    pub async fn checkout_slot(
        &mut self,
        slot: LockedSlot,
        lock: bool,
    ) -> Result<Option<Checkout>, StorageError> {
        let LockedSlot {
            cache,
            id,
            cell,
            mut guard,
        } = slot;
        let (cache, id) = (&cache, id.as_str());
        let Some(row) = self.document_row(id, lock).await? else {
            drop(guard);
            cache.forget(id, &cell);
            return Ok(None);
        };
        let loaded = match guard.take() {
            Some(mut l)
                if l.stored.created_version == row.created_version
                    && l.stored.version == row.version =>
            {
                l.stored.facility_id = row.facility_id;
                l.stored.region = row.region;
                l
            }
            // Written since, by another request or process: fold in the
            // changes after the last one this state holds. Unless the
            // snapshot was compacted meanwhile, which the bookkeeping of
            // `stored_bytes` and `tail` cannot follow: load afresh then.
            Some(l)
                if l.stored.created_version == row.created_version
                    && l.stored.version < row.version
                    && l.stored.snapshot_seq == row.snapshot_seq =>
            {
                self.catch_up(l, row).await?
            }
            _ => Loaded::new(self.load_from_row(id, row).await?),
        };
        Ok(Some(Checkout {
            cache: cache.clone(),
            id: id.to_owned(),
            guard,
            loaded,
        }))
    }

    pub(super) async fn document_row(
        &mut self,
        id: &str,
        lock: bool,
    ) -> Result<Option<DocumentRow>, StorageError> {
        let lock = if lock && self.backend() == Backend::Postgres {
            "FOR UPDATE"
        } else {
            ""
        };
        let sql = format!(
            "SELECT facility_id, created_version, version, snapshot_seq,
                    (SELECT region FROM facilities WHERE facilities.id = documents.facility_id)
                        AS region
             FROM documents WHERE id = $1 {lock}"
        );
        let Some(r) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(DocumentRow {
            facility_id: r.try_get("facility_id")?,
            region: r.try_get("region")?,
            created_version: r.try_get("created_version")?,
            version: r.try_get("version")?,
            snapshot_seq: r.try_get("snapshot_seq")?,
        }))
    }

    pub(super) async fn load_from_row(
        &mut self,
        id: &str,
        row: DocumentRow,
    ) -> Result<StoredDocument, StorageError> {
        let snapshot: Vec<u8> = sqlx::query("SELECT snapshot FROM documents WHERE id = $1")
            .bind(id)
            .fetch_one(self.conn())
            .await?
            .try_get("snapshot")?;
        let (changes, seq, bytes) = self.changes_after(id, row.snapshot_seq).await?;
        let tail = changes.len() as i64;
        let stored_bytes = snapshot.len() + bytes;
        let doc = replay(id, &snapshot, changes)?;
        Ok(StoredDocument {
            id: id.to_owned(),
            facility_id: row.facility_id,
            region: row.region,
            created_version: row.created_version,
            version: row.version,
            doc,
            tail,
            stored_bytes,
            snapshot_bytes: snapshot.len(),
            snapshot_seq: row.snapshot_seq,
            seq: seq.unwrap_or(row.snapshot_seq),
        })
    }

    async fn catch_up(&mut self, mut l: Loaded, row: DocumentRow) -> Result<Loaded, StorageError> {
        let id = l.stored.id.clone();
        let (changes, seq, bytes) = self.changes_after(&id, l.stored.seq).await?;
        let added = changes.len() as i64;
        let doc = std::mem::take(&mut l.stored.doc);
        l.stored.doc = super::tx::apply_stored(&id, doc, changes)?;
        l.stored.tail += added;
        l.stored.stored_bytes += bytes;
        l.stored.seq = seq.unwrap_or(l.stored.seq);
        l.stored.version = row.version;
        l.stored.facility_id = row.facility_id;
        l.stored.region = row.region;
        // Someone else derived the rows for the new state.
        l.shipment = None;
        l.projection = None;
        Ok(l)
    }

    /// A document's changes stored after `seq`, in order, with the last
    /// one's seq and their size in bytes. Per document, seqs grow in commit
    /// order: every writer of a document holds its row lock (or SQLite's
    /// single write lock) from before it appends until it commits.
    async fn changes_after(
        &mut self,
        id: &str,
        seq: i64,
    ) -> Result<(Vec<Change>, Option<i64>, usize), StorageError> {
        let rows = sqlx::query(
            "SELECT seq, bytes FROM changes WHERE document_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(id)
        .bind(seq)
        .fetch_all(self.conn())
        .await?;
        let mut last = None;
        let mut size = 0;
        let mut changes = Vec::with_capacity(rows.len());
        for r in rows {
            let bytes: Vec<u8> = r.try_get("bytes")?;
            last = Some(r.try_get::<i64, _>("seq")?);
            size += bytes.len();
            changes.push(Change::from_bytes(bytes).map_err(|e| super::tx::corrupt(id, e))?);
        }
        Ok((changes, last, size))
    }
}
