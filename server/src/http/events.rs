//! `GET /api/v1/events`: Server-Sent Events telling an open dashboard
//! which shipments it may see have changed, for as long as its token works.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::app::AppState;
use crate::caller::Caller;
use crate::clock::Clock;
use crate::error::AppError;
use crate::events::Changed;
use crate::storage::{Db, Scope, StorageError};

/// Whether the caller may see a shipment of `facility`, looking regions up
/// once per facility for this stream.
async fn visible(
    db: &Db,
    scope: &Scope,
    regions: &mut HashMap<String, Option<String>>,
    facility: &str,
) -> bool {
    if !matches!(scope, Scope::Region(_)) {
        return scope.contains(facility, None);
    }
    if !regions.contains_key(facility) {
        // A failed lookup hides the event; the page's next refresh has it.
        let region = db.facility(facility).await.ok().flatten().map(|f| f.region);
        regions.insert(facility.to_owned(), region);
    }
    let region = regions.get(facility).cloned().flatten();
    scope.contains(facility, region.as_deref())
}

/// Everything one open stream holds between two events.
struct Open {
    changes: broadcast::Receiver<Arc<Vec<Changed>>>,
    closing: watch::Receiver<bool>,
    /// Nudged by every revocation made through this process's database.
    revocations: watch::Receiver<u64>,
    db: Db,
    clock: Clock,
    scope: Scope,
    regions: HashMap<String, Option<String>>,
    /// The caller's device, whose row says whether the token still works.
    device: String,
    /// When the token stops working (ms since epoch, by `clock`), as last
    /// read.
    expires_at: i64,
    recheck: Duration,
    /// When to re-read the token's validity next.
    next_check: Instant,
    /// The token stopped working and `unauthorized` went out: end.
    ended: bool,
    /// Counts this stream as open until it is dropped, however it ends.
    _counted: crate::metrics::Open,
}

/// What woke a stream up.
enum Wake {
    Batch(Result<Arc<Vec<Changed>>, RecvError>),
    /// Time to re-read whether the token still works.
    Check,
}

impl Open {
    /// The next re-check: after `recheck`, or at the token's expiry if that
    /// comes first, so a stream never outlives its token's `expires_at`.
    fn schedule_check(&mut self) {
        let left_ms = self.expires_at.saturating_sub(self.clock.now_ms());
        // An expiry already past: check now (and end).
        let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
        // Never longer than `recheck`: also keeps `Instant + Duration` far
        // from overflowing on a token that expires in centuries.
        self.next_check = Instant::now() + self.recheck.min(left);
    }

    /// Whether the token still works, by the database now: revoked,
    /// expired, its user disabled or gone all say no.
    async fn token_works(&mut self) -> Result<bool, StorageError> {
        let Some(state) = self.db.token_state(&self.device).await? else {
            return Ok(false);
        };
        // The expiry may have moved (demo tokens are renewed).
        self.expires_at = state.expires_at;
        Ok(state.usable_at(self.clock.now_ms()))
    }

    /// The ids in `batch` this caller may see.
    async fn visible_ids(&mut self, batch: &[Changed]) -> Vec<String> {
        let mut ids = Vec::new();
        for c in batch {
            if visible(&self.db, &self.scope, &mut self.regions, &c.facility).await {
                ids.push(c.shipment.clone());
            }
        }
        ids
    }

    /// The next event, or `None` to end the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.ended {
                return None;
            }
            let wake = tokio::select! {
                // Shutdown and the token's end win over pending changes.
                biased;
                _ = self.closing.wait_for(|closing| *closing) => return None,
                nudged = self.revocations.changed() => match nudged {
                    Ok(()) => Wake::Check,
                    // The database is gone: nothing more to stream.
                    Err(_) => return None,
                },
                () = tokio::time::sleep_until(self.next_check) => Wake::Check,
                batch = self.changes.recv() => Wake::Batch(batch),
            };
            match wake {
                Wake::Check => match self.token_works().await {
                    Ok(true) => self.schedule_check(),
                    Ok(false) => {
                        // Said once, so the page knows why; the client's
                        // reconnection then gets a 401.
                        self.ended = true;
                        return Some(Event::default().event("unauthorized").data("{}"));
                    }
                    Err(e) => {
                        // Fail closed: a stream whose token cannot be
                        // checked ends; the client reconnects, and the
                        // reconnection checks the token like any request.
                        tracing::warn!(device = %self.device, error = %e, "event stream: token re-check failed; ending the stream");
                        return None;
                    }
                },
                // Empty: notifications may have been lost (see
                // `events::relay_postgres`); so may some in a lag.
                Wake::Batch(Ok(batch)) if batch.is_empty() => {
                    return Some(Event::default().event("refresh").data("{}"));
                }
                Wake::Batch(Ok(batch)) => {
                    let ids = self.visible_ids(&batch).await;
                    if ids.is_empty() {
                        continue;
                    }
                    let data = serde_json::json!({ "shipments": ids }).to_string();
                    return Some(Event::default().event("changed").data(data));
                }
                Wake::Batch(Err(RecvError::Lagged(_))) => {
                    return Some(Event::default().event("refresh").data("{}"));
                }
                Wake::Batch(Err(RecvError::Closed)) => return None,
            }
        }
    }
}

/// `event: changed` with `{"shipments": [ids]}` for each batch of changes
/// the caller may see; `event: refresh` if this stream fell behind (reload
/// everything); a comment every 15 s keeps proxies from closing it.
///
/// The stream ends with `event: unauthorized` (data `{}`) once its token
/// stops working: at its expiry, at once after a logout, revocation or
/// password reset made through this server, and within
/// [`Events::token_recheck`](crate::events::Events::token_recheck) after
/// one made elsewhere on the same database.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let scope = caller.shipment_scope()?;
    let (changes, closing) = state.events.subscribe();
    let mut open = Open {
        changes,
        closing,
        revocations: state.db.revocations(),
        db: state.db.clone(),
        clock: state.clock.clone(),
        scope,
        regions: HashMap::new(),
        device: caller.device.to_string(),
        expires_at: caller.expires_at,
        recheck: state.events.token_recheck(),
        next_check: Instant::now(),
        ended: false,
        _counted: crate::metrics::Open::event_stream(),
    };
    open.schedule_check();
    let stream = futures_util::stream::unfold(open, |mut open| async move {
        let event = open.next().await?;
        Some((Ok(event), open))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
