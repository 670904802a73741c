//! Black-box test support for aidsync: a real server on a free port over a
//! throwaway database, and simulated phones that run `aidsync_shared`'s
//! client engine over real HTTP.
//!
//! - [`harness`]: [`harness::TestDb`] (a temporary SQLite file or a fresh
//!   PostgreSQL database) and [`harness::TestServer`] (start, stop, restart).
//! - [`phone`]: [`phone::Phone`], one simulated phone, with wire-level byte
//!   counts and fault injection (lost requests, lost responses).
//! - [`fingerprint`]: a digest of everything the server stored, to prove a
//!   refused request changed nothing.
//! - [`fuzz`]: the `aidsync-fuzz` harness's seeds, mutators and targets.
//!
//! The `aidsync-phones` binary builds the simulator from the same parts.

pub mod fingerprint;
pub mod fuzz;
pub mod harness;
pub mod phone;

/// Milliseconds since the Unix epoch, for the engine's `now_ms` arguments.
pub fn now_ms() -> i64 {
    aidsync_server::service::now_ms()
}

/// Records `new` on `doc` as a person does when the app asks for a reason:
/// if it needs one and has none, the one that fits (short, over, damaged
/// in transit…) is chosen.
pub fn record_as_asked(
    doc: &mut aidsync_shared::model::ShipmentDoc,
    mut new: aidsync_shared::model::NewReceipt,
    who: &aidsync_shared::model::Recorder,
    now_ms: i64,
) -> Result<aidsync_shared::model::Receipt, aidsync_shared::model::ModelError> {
    if new.reason.is_none() {
        new.reason = doc.read()?.suggested_reason(&new);
    }
    doc.record_receipt(new, who, now_ms)
}
