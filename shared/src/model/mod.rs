//! The shipment document: one automerge document per shipment.
//!
//! Layout of a document (keys are the constants in [`keys`], and no map may
//! hold any other key: the reader refuses unknown fields anywhere):
//!
//! ```text
//! { schema: 1,
//!   shipment: { id, donor, programme, reference, destination_facility,
//!               expected_on, created_by, created_at, note },
//!   lines:    { <line_id>: { item, category, unit, quantity_expected,
//!                            serials_expected: [..] } },
//!   receipts: { <receipt_id>: { line_id, quantity, condition, serials: [..],
//!                               note, recorded_by, device_id, recorded_at,
//!                               voids? } },
//!   reviews:  { <review_id>: { by, at, note, verdict?, resolves: [..] } } }
//! ```
//!
//! Every container is created once, in the document's first change, and every
//! replica starts from that document: two replicas that each created
//! `receipts` would make competing maps, and after a merge one replica's
//! receipts would vanish behind the conflict.
//!
//! Receipts and reviews are immutable events keyed by fresh ids, so concurrent
//! recording never overwrites; a correction is a new receipt that `voids` an
//! earlier one. Header scalars (note, expected date…) merge last-writer-wins
//! and the losing values stay visible as [`Conflict`]s.

mod doc;
pub mod keys;
mod read;
mod types;
mod units;

pub use doc::{NewReview, ShipmentDoc};
pub use read::{Touched, read_shipment, read_shipment_after};
pub use types::*;
pub use units::*;
