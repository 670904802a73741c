//! Live updates for open dashboards: after a transaction that stored
//! changes commits, the handler publishes which shipments changed; each
//! `GET /api/v1/events` stream forwards what its caller may see. Only a
//! notification travels; the page then fetches what it shows.
//!
//! With several server processes on one PostgreSQL database, a sync may
//! land on one process while a dashboard listens on another: there,
//! [`Events::publish`] sends the notification through PostgreSQL
//! (`NOTIFY`) instead, and every process, the sender included, forwards
//! what [`relay_postgres`] hears to its own streams.
//!
//! A stream lives no longer than its token: it re-reads its device's row
//! every [`Events::token_recheck`] (and at once after a revocation made
//! through this process's [`Db`](crate::storage::Db)), and ends at the
//! token's expiry.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

/// A shipment whose document changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Where notifications go to reach every process (`None`: this one
    /// is alone on its database, as on SQLite).
    relay: Option<crate::storage::Db>,
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
            relay: None,
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

    /// The same hub, publishing through PostgreSQL so that streams open
    /// on every server process of `db` hear of changes made on any (run
    /// [`relay_postgres`] beside it).
    pub fn relayed_through(mut self, db: crate::storage::Db) -> Events {
        self.relay = Some(db);
        self
    }

    /// Tells every open stream that these shipments changed.
    pub fn publish(&self, changed: Vec<Changed>) {
        if changed.is_empty() {
            return;
        }
        let Some(db) = self.relay.clone() else {
            self.deliver(changed);
            return;
        };
        let local = self.clone();
        tokio::spawn(async move {
            for payload in payloads(&changed) {
                if let Err(e) = db.notify(CHANNEL, &payload).await {
                    // Streams here still hear of it; those elsewhere
                    // catch up at their next reload.
                    tracing::warn!(error = %e, "could not relay a change notification");
                    local.deliver(changed);
                    return;
                }
            }
        });
    }

    /// Hands changes to this process's streams; an empty list tells them
    /// to reload everything.
    fn deliver(&self, changed: Vec<Changed>) {
        // No open stream is not an error.
        let _ = self.changes.send(Arc::new(changed));
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

/// The PostgreSQL channel change notifications travel on.
const CHANNEL: &str = "aidsync_changed";

/// PostgreSQL refuses a `NOTIFY` payload of 8,000 bytes or more: a long
/// list goes as several.
const MAX_PAYLOAD: usize = 7_000;

fn payloads(changed: &[Changed]) -> Vec<String> {
    let mut out = Vec::new();
    let mut batch: Vec<&Changed> = Vec::new();
    let mut size = 0;
    for c in changed {
        // Ids are at most a few hundred bytes, JSON quoting included.
        let len = c.shipment.len() + c.facility.len() + 40;
        if size + len > MAX_PAYLOAD && !batch.is_empty() {
            out.push(encode(&batch));
            batch.clear();
            size = 0;
        }
        batch.push(c);
        size += len;
    }
    if !batch.is_empty() {
        out.push(encode(&batch));
    }
    out
}

fn encode(batch: &[&Changed]) -> String {
    // A list of plain structs always serializes.
    serde_json::to_string(batch).unwrap_or_else(|_| "[]".to_owned())
}

/// Starts listening for the change notifications of every server process
/// on this PostgreSQL database; hand the result to [`relay_postgres`].
/// Awaited before serving, so no notification sent after the server
/// started is missed.
pub async fn listen_postgres(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    // Errors surface to `relay_postgres`, which reconnects and tells the
    // streams to reload.
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards what `listener` hears to `events`' streams, until `events`
/// closes. Should the connection drop, it reconnects; what was sent
/// meanwhile is lost, so open streams are told to reload everything.
pub async fn relay_postgres(url: String, events: Events, listener: sqlx::postgres::PgListener) {
    let mut closing = events.closing.subscribe();
    let mut listener = Some(listener);
    loop {
        let result = match listener.take() {
            Some(l) => forward(l, &events, &mut closing).await,
            None => match listen_postgres(&url).await {
                Ok(l) => {
                    // Reconnected: whatever was sent meanwhile is lost.
                    events.deliver(Vec::new());
                    forward(l, &events, &mut closing).await
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "change notifications from other servers interrupted; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = closing.changed() => return,
                }
            }
        }
    }
}

async fn forward(
    mut listener: sqlx::postgres::PgListener,
    events: &Events,
    closing: &mut watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    loop {
        let notification = tokio::select! {
            n = listener.try_recv() => n?,
            _ = closing.changed() => return Ok(()),
        };
        let Some(notification) = notification else {
            return Err(sqlx::Error::Protocol(
                "the notification connection closed".into(),
            ));
        };
        match serde_json::from_str::<Vec<Changed>>(notification.payload()) {
            Ok(changed) if !changed.is_empty() => events.deliver(changed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed change notification"),
        }
    }
}
