//! Live updates for open dashboards: after a transaction that stored
//! changes commits, the handler publishes which shipments changed; each
//! `GET /api/v1/events` stream forwards what its caller may see. Only a
//! notification travels; the page then fetches what it shows.

use std::sync::Arc;

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
}

/// Batches a stream may fall behind by before it is told to reload
/// everything instead.
const BACKLOG: usize = 256;

impl Default for Events {
    fn default() -> Self {
        Events {
            changes: broadcast::channel(BACKLOG).0,
            closing: watch::channel(false).0,
        }
    }
}

impl Events {
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
