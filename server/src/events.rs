//! Live updates for open dashboards: after a transaction that stored
//! changes commits, the handler publishes which shipments changed; each
//! `GET /api/v1/events` stream forwards what its caller may see. Only a
//! notification travels; the page then fetches what it shows.
//!
//! A stream lives no longer than its token: it re-reads its device's row
//! every [`Events::token_recheck`] (and at once after a revocation made
//! through this process's [`Db`](crate::storage::Db)), and ends at the
//! token's expiry.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

/// A shipment whose document changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub shipment: String,
    /// Its destination facility, which decides who may see it.
    pub facility: String,
}

/// The server's notification hub.
#[derive(Clone)]
pub struct Events {
    changes: broadcast::Sender<Arc<Vec<Changed>>>,
    /// Becomes true at shutdown, so open streams end and the server can
    /// finish its in-flight requests and stop.
    closing: watch::Sender<bool>,
    /// How often a stream re-reads its token's validity.
    token_recheck: Duration,
}

/// Batches a stream may fall behind by before it is told to reload
/// everything instead.
const BACKLOG: usize = 256;

/// The default [`Events::token_recheck`]: the longest a stream outlives a
/// revocation made by another process, for one primary-key read per open
/// dashboard every 2 s.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(2);

impl Default for Events {
    fn default() -> Self {
        Events {
            changes: broadcast::channel(BACKLOG).0,
            closing: watch::channel(false).0,
            token_recheck: TOKEN_RECHECK,
        }
    }
}

impl Events {
    /// The same hub, with streams re-checking their token every `every`
    /// (at least every 10 ms, so a zero cannot spin a stream).
    pub fn with_token_recheck(mut self, every: Duration) -> Events {
        self.token_recheck = every.max(Duration::from_millis(10));
        self
    }

    /// How often an open stream re-reads whether its token still works:
    /// what bounds how long it outlives a revocation made elsewhere (the
    /// `aidsync admin` CLI, another server on the same database).
    pub fn token_recheck(&self) -> Duration {
        self.token_recheck
    }

    /// Tells every open stream that these shipments changed.
    pub fn publish(&self, changed: Vec<Changed>) {
        if !changed.is_empty() {
            // No open stream is not an error.
            let _ = self.changes.send(Arc::new(changed));
        }
    }

    pub fn subscribe(
        &self,
    ) -> (
        broadcast::Receiver<Arc<Vec<Changed>>>,
        watch::Receiver<bool>,
    ) {
        (self.changes.subscribe(), self.closing.subscribe())
    }

    /// Ends every open stream (the server is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}
