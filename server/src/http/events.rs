//! `GET /api/v1/events`: Server-Sent Events telling an open dashboard
//! which shipments it may see have changed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Db, Scope};

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

/// `event: changed` with `{"shipments": [ids]}` for each batch of changes
/// the caller may see; `event: refresh` if this stream fell behind (reload
/// everything); a comment every 15 s keeps proxies from closing it.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let scope = caller.shipment_scope()?;
    let (changes, closing) = state.events.subscribe();
    let db = state.db.clone();
    let stream = futures_util::stream::unfold(
        (changes, closing, db, scope, HashMap::new()),
        |(mut changes, mut closing, db, scope, mut regions)| async move {
            loop {
                let batch = tokio::select! {
                    batch = changes.recv() => batch,
                    _ = closing.wait_for(|closing| *closing) => return None,
                };
                let event = match batch {
                    Ok(batch) => {
                        let mut ids = Vec::new();
                        for c in batch.iter() {
                            if visible(&db, &scope, &mut regions, &c.facility).await {
                                ids.push(c.shipment.clone());
                            }
                        }
                        if ids.is_empty() {
                            continue;
                        }
                        let data = serde_json::json!({ "shipments": ids }).to_string();
                        Event::default().event("changed").data(data)
                    }
                    Err(RecvError::Lagged(_)) => Event::default().event("refresh").data("{}"),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (changes, closing, db, scope, regions)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
