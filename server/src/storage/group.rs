//! Group commit: writes that arrive together share one transaction and one
//! fsync.
//!
//! Every sync that uploads something is a [`GroupJob`] handed to the
//! process's writer task ([`Db::submit`]). The writer takes the first job
//! waiting, opens a write transaction (on SQLite, waiting for the single
//! writer's turn), then, job after job, every other one that queued
//! meanwhile, up to `--syncs-per-commit` and for up to
//! `--commit-window-ms`: under load, the time one batch takes is the time
//! in which the next one gathers. Each job runs inside its own savepoint, so
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
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::{Checkout, Db, DocCache, StorageError, Tx};

/// Most jobs in one transaction, unless configured: bounds how many
/// documents one batch keeps locked.
pub const DEFAULT_SYNCS_PER_COMMIT: usize = 64;

/// How long a batch keeps taking in jobs that queued meanwhile, unless
/// configured; past it, the jobs it holds are committed and answered, and
/// the next batch takes the rest. Long enough to share a slow disk's fsync
/// among many syncs, short enough that the first of them is not kept
/// waiting long, nor the documents the batch holds locked against readers.
pub const DEFAULT_COMMIT_WINDOW: Duration = Duration::from_millis(20);

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
pub(super) struct Writer {
    inbox: std::sync::Mutex<Option<mpsc::UnboundedSender<Box<dyn GroupJob>>>>,
    stats: Arc<GroupStats>,
    /// Most jobs per transaction; 1 commits each on its own.
    max_jobs: usize,
    /// How long a batch takes in more jobs.
    window: Duration,
}

impl Writer {
    pub(super) fn new(max_jobs: usize, window: Duration) -> Writer {
        Writer {
            inbox: std::sync::Mutex::default(),
            stats: Arc::default(),
            max_jobs: max_jobs.max(1),
            window,
        }
    }
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

    /// This pool, storing at most `max` syncs per transaction (1: each
    /// on its own), taking in more for at most `window`. Set it before
    /// the pool is shared.
    pub fn with_group_commit(mut self, max: usize, window: Duration) -> Db {
        self.writer = Arc::new(Writer::new(max, window));
        self
    }
}

type Inbox = mpsc::UnboundedReceiver<Box<dyn GroupJob>>;

async fn write_loop(db: Db, mut inbox: Inbox) {
    let stats = db.writer.stats.clone();
    let (max_jobs, window) = (db.writer.max_jobs, db.writer.window);
    while let Some(first) = inbox.recv().await {
        let tx = match db.begin_write().await {
            Ok(tx) => tx,
            Err(e) => {
                stats.waiting.fetch_sub(1, Ordering::Relaxed);
                first.finish(Err(format!("starting a write transaction: {e}")));
                continue;
            }
        };
        let batch = Batch {
            tx,
            cache: db.documents().clone(),
            open: HashMap::new(),
            stale: HashMap::new(),
            version: None,
            taken: HashSet::new(),
        };
        // A task of its own: should a job panic, the requests of its batch
        // and of the queue get an error (their replies are dropped), and
        // the next job handed in starts a new writer.
        let task = tokio::spawn(batch.run(first, inbox, (max_jobs, window), stats.clone()));
        match task.await {
            Ok(back) => inbox = back,
            Err(e) => {
                tracing::error!(error = %e, "a batch of writes panicked; its requests failed");
                return;
            }
        }
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

    /// Runs `first`, then jobs that queue meanwhile (up to `max_jobs`, for
    /// up to `window`), commits them, and answers each.
    async fn run(
        mut self,
        first: Box<dyn GroupJob>,
        mut inbox: Inbox,
        (max_jobs, window): (usize, Duration),
        stats: Arc<GroupStats>,
    ) -> Inbox {
        let started = Instant::now();
        let mut ran = Vec::new();
        let mut broken: Option<String> = None;
        let mut next = Some(first);
        while let Some(mut job) = next.take() {
            if let Err(e) = self.run_job(job.as_mut()).await {
                broken = Some(e);
            }
            ran.push(job);
            if broken.is_none() && ran.len() < max_jobs && started.elapsed() < window {
                next = inbox.try_recv().ok();
            }
        }
        let ran_for = started.elapsed();
        let outcome = match broken {
            Some(why) => Err(why),
            None => self.commit().await.map_err(|e| format!("committing: {e}")),
        };
        tracing::debug!(
            jobs = ran.len(),
            run_ms = ran_for.as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - ran_for).as_secs_f64() * 1e3,
            "batch of writes"
        );
        match &outcome {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.jobs.fetch_add(ran.len() as u64, Ordering::Relaxed);
            }
            Err(why) => {
                tracing::error!(%why, jobs = ran.len(), "a batch of writes failed; none was stored");
            }
        }
        stats.waiting.fetch_sub(ran.len() as u64, Ordering::Relaxed);
        for job in ran {
            job.finish(outcome.clone());
        }
        inbox
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
