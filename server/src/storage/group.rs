//! Group commit: writes that arrive together share one transaction and one
//! fsync.
//!
//! Every sync that uploads something is a [`GroupJob`] handed to the
//! process's writer task ([`Db::submit`]). The writer takes the first job
//! waiting, opens a write transaction (on SQLite, waiting for the single
//! writer's turn), then takes every other job that queued meanwhile, up to
//! [`MAX_JOBS`]: under load, the time one commit takes is the time in
//! which the next batch gathers. Each job runs inside its own savepoint, so
//! a job that fails (a database error in its statements) rolls back only
//! its own writes; refusing a document is not a failure, just an answer.
//! Jobs learn their outcome only after the commit that holds their writes,
//! so nothing is acknowledged before it is durable.
//!
//! Jobs of a batch share the documents they check out ([`Batch::checkout`]):
//! the second sync into a hot shipment merges into the state the first one
//! left in the transaction, under the same slot lock, and the cache gets
//! every document back once the commit is done.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::{Checkout, Db, DocCache, StorageError, Tx};

/// Most jobs in one transaction: bounds how long the first of them waits
/// for the last, and how many documents one batch keeps locked.
pub const MAX_JOBS: usize = 64;

/// A job's own failure: its writes are rolled back; it kept the reason.
#[derive(Debug)]
pub struct JobFailed;

/// One request's writes, run by the writer task inside a batch.
pub trait GroupJob: Send + 'static {
    /// Does the job's work in `batch`. `Err` rolls back what it wrote (and
    /// forgets the documents it checked out); the job keeps why.
    fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, Result<(), JobFailed>>;

    /// Once the batch is over: `Ok` when the transaction holding the job's
    /// writes committed (or, after [`JobFailed`], was at least not left
    /// half-done), `Err` with why when the batch as a whole failed.
    fn finish(self: Box<Self>, batch: Result<(), String>);
}

/// How the writer has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct GroupStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Jobs that ran in them.
    pub jobs: AtomicU64,
    /// Jobs handed to the writer and not yet finished.
    pub waiting: AtomicU64,
}

/// The writer task's inbox; a new task starts when there is none (first
/// use) or the last one's runtime went away (tests run many).
#[derive(Default)]
pub(super) struct Writer {
    inbox: std::sync::Mutex<Option<mpsc::UnboundedSender<Box<dyn GroupJob>>>>,
    pub(super) stats: Arc<GroupStats>,
}

impl Db {
    /// Hands `job` to this process's writer. The job replies through
    /// itself (its [`GroupJob::finish`]).
    pub fn submit(&self, job: Box<dyn GroupJob>) {
        let writer = &self.writer;
        writer.stats.waiting.fetch_add(1, Ordering::Relaxed);
        let mut inbox = writer
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let job = match inbox.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(self.clone(), rx));
        // Just made, its receiver alive: the send cannot fail.
        let _ = tx.send(job);
        *inbox = Some(tx);
    }

    /// The group writer's counters.
    pub fn group_stats(&self) -> &GroupStats {
        &self.writer.stats
    }
}

async fn write_loop(db: Db, mut inbox: mpsc::UnboundedReceiver<Box<dyn GroupJob>>) {
    let stats = db.writer.stats.clone();
    while let Some(first) = inbox.recv().await {
        let tx = match db.begin_write().await {
            Ok(tx) => tx,
            Err(e) => {
                stats.waiting.fetch_sub(1, Ordering::Relaxed);
                first.finish(Err(format!("starting a write transaction: {e}")));
                continue;
            }
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS {
            match inbox.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let count = jobs.len() as u64;
        // A task of its own: should a job panic, its batch's requests get
        // an error (their replies are dropped) and the writer goes on.
        let batch = tokio::spawn(run_batch(db.documents().clone(), tx, jobs, stats.clone()));
        if let Err(e) = batch.await {
            tracing::error!(error = %e, "a batch of writes panicked; its requests failed");
        }
        stats.waiting.fetch_sub(count, Ordering::Relaxed);
    }
}

async fn run_batch(
    cache: Arc<DocCache>,
    tx: Tx,
    jobs: Vec<Box<dyn GroupJob>>,
    stats: Arc<GroupStats>,
) {
    let mut batch = Batch {
        tx,
        cache,
        open: HashMap::new(),
        stale: HashMap::new(),
        version: None,
        taken: HashSet::new(),
    };
    let mut ran = Vec::with_capacity(jobs.len());
    let mut broken: Option<String> = None;
    for mut job in jobs {
        if broken.is_none()
            && let Err(e) = batch.run_job(job.as_mut()).await
        {
            broken = Some(e);
        }
        ran.push(job);
    }
    let outcome = match broken {
        Some(why) => Err(why),
        None => batch.commit().await.map_err(|e| format!("committing: {e}")),
    };
    if outcome.is_ok() {
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(ran.len() as u64, Ordering::Relaxed);
    } else if let Err(why) = &outcome {
        tracing::error!(%why, jobs = ran.len(), "a batch of writes failed; none was stored");
    }
    for job in ran {
        job.finish(outcome.clone());
    }
}

/// The transaction a batch of jobs shares, and the documents they checked
/// out of it.
pub struct Batch {
    tx: Tx,
    cache: Arc<DocCache>,
    /// Documents as this transaction holds them, for the batch's next jobs
    /// and, after the commit, for the cache.
    open: HashMap<String, Checkout>,
    /// Documents whose state may hold what the transaction does not (a
    /// refused upload, a failed job's writes): reloaded before use. Kept
    /// checked out rather than dropped, so the batch never lets go of a
    /// slot whose row it may have locked (on PostgreSQL, a request waiting
    /// for that row while holding the slot would wait for this batch,
    /// which would wait for the slot).
    stale: HashMap<String, Checkout>,
    /// The commit version, taken by the first job that stores something.
    version: Option<i64>,
    /// Documents the running job checked out: forgotten if it fails.
    taken: HashSet<String>,
}

impl Batch {
    /// The shared transaction, for the job's own statements.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Checks a document out for writing: as an earlier job of the batch
    /// left it, or from the transaction (and the cache). `None`: no such
    /// document.
    pub async fn checkout(&mut self, id: &str) -> Result<Option<Checkout>, StorageError> {
        self.taken.insert(id.to_owned());
        if let Some(co) = self.open.remove(id) {
            return Ok(Some(co));
        }
        if let Some(mut co) = self.stale.remove(id) {
            return Ok(co.reload(&mut self.tx).await?.then_some(co));
        }
        self.tx.checkout(&self.cache, id, true).await
    }

    /// Gives back a checkout whose state is the one this transaction
    /// holds (unchanged, or with what the job stored). A checkout not given
    /// back is forgotten (see [`Checkout::discard`]).
    pub fn put_back(&mut self, co: Checkout) {
        self.open.insert(co.loaded.stored.id.clone(), co);
    }

    /// Gives back a checkout whose state may hold changes this transaction
    /// does not (a refused upload's): the batch reloads it if a later job
    /// needs it, and the cache forgets it.
    pub fn put_back_stale(&mut self, co: Checkout) {
        self.stale.insert(co.loaded.stored.id.clone(), co);
    }

    /// The version this batch commits as, taken on first use: one commit,
    /// one version, whatever the number of jobs in it.
    pub async fn version(&mut self) -> Result<i64, StorageError> {
        if let Some(v) = self.version {
            return Ok(v);
        }
        let v = self.tx.next_version().await?;
        self.version = Some(v);
        Ok(v)
    }

    /// Runs one job in a savepoint. `Err`: the transaction cannot go on.
    async fn run_job(&mut self, job: &mut dyn GroupJob) -> Result<(), String> {
        self.taken.clear();
        let had_version = self.version.is_some();
        self.statement("SAVEPOINT job").await?;
        match job.run(self).await {
            Ok(()) => self.statement("RELEASE SAVEPOINT job").await,
            Err(JobFailed) => {
                self.statement("ROLLBACK TO SAVEPOINT job").await?;
                self.statement("RELEASE SAVEPOINT job").await?;
                // Their state may hold what was just rolled back.
                for id in std::mem::take(&mut self.taken) {
                    if let Some(co) = self.open.remove(&id) {
                        self.stale.insert(id, co);
                    }
                }
                if !had_version {
                    self.version = None;
                }
                Ok(())
            }
        }
    }

    async fn statement(&mut self, sql: &'static str) -> Result<(), String> {
        sqlx::query(sql)
            .execute(self.tx.conn())
            .await
            .map(drop)
            .map_err(|e| format!("{sql}: {e}"))
    }

    /// Commits, then gives the cache every document as committed.
    async fn commit(self) -> Result<(), StorageError> {
        let Batch {
            tx, open, stale, ..
        } = self;
        tx.commit().await?;
        open.into_values().for_each(Checkout::keep);
        stale.into_values().for_each(Checkout::discard);
        Ok(())
    }
}
