//! aidsync's shared core: the CRDT domain model and the client sync engine.
//!
//! The same code runs on the phone (compiled to wasm32) and on the server
//! (native), so both sides agree on what a valid shipment is, how a receipt is
//! recorded, how totals and discrepancies are derived and how a client syncs.
//!
//! # Layout
//!
//! - [`ids`]: validated identifier newtypes (shipment, line, receipt, device…).
//! - [`model`]: one automerge document per shipment: creating it, recording
//!   receipts, reading it back into typed values, and validating it.
//! - [`derive`]: figures derived from a shipment, never stored: per-line totals,
//!   serial mismatches, shipment status, possible duplicates.
//! - [`donor`]: the donor's discrepancy report's content: every
//!   discrepancy with what was recorded, reviewed and photographed.
//! - [`grn`]: the goods-received note's content for a delivery or a
//!   shipment: per line received, accepted, rejected, reasons, serials,
//!   signatures and photos.
//! - [`projection`]: flat rows (shipments, lines, receipts, discrepancies,
//!   duplicates, conflicts) derived from a shipment for coordinators' queries.
//! - [`roles`]: who may do what (receiver, coordinator, admin).
//! - [`warnings`]: what is probably wrong with a receipt before it is saved
//!   (more than outstanding, serials not listed or already received).
//! - [`sync`]: the one-round-trip sync protocol (wire types), the server's
//!   sans-IO merge step and the client engine with its storage trait.
//!
//! Nothing here reads a clock, draws randomness or performs I/O: time and fresh
//! ids are passed in, so the crate behaves the same on wasm and in tests.

pub mod derive;
pub mod donor;
pub mod grn;
pub mod ids;
pub mod model;
pub mod projection;
pub mod roles;
pub mod sync;
pub mod warnings;

pub use automerge;
