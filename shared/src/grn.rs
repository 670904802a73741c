//! The goods-received note (GRN): what one delivery, or a whole shipment,
//! brought, line by line, as the receiving officer and the delivery person
//! sign it at the truck.
//!
//! This is the note's *content*, derived from the shipment like every other
//! figure; the server renders it (PDF) and a phone could show it as it is.
//! Deriving it here keeps the two from disagreeing about what was received,
//! accepted or rejected.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{DeliveryId, ReceiptId};
use crate::model::{
    Attachment, AttachmentEvent, Condition, Delivery, FileKind, Header, Line, Reason, Shipment,
    Stage,
};

/// One manifest line on the note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrnLine {
    pub line: Line,
    /// Units on the note's receipts, whatever their stage or state.
    pub received: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Counted, not yet inspected.
    pub provisional: u64,
    /// Serial numbers on the note's receipts, in order, each once.
    pub serials: Vec<String>,
    /// Every receipt that is not plain (a reason, a rejection, units not in
    /// good order), with what it says.
    pub exceptions: Vec<GrnException>,
}

/// A receipt the note must explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrnException {
    pub receipt: ReceiptId,
    pub quantity: u64,
    pub condition: Condition,
    pub stage: Stage,
    /// `None` only on receipts from before reasons existed.
    pub reason: Option<Reason>,
    pub note: String,
}

/// The whole note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsReceivedNote {
    pub header: Header,
    /// The delivery the note is for; `None`: every receipt of the shipment.
    pub delivery: Option<Delivery>,
    /// The deliveries it covers (the one asked for, or every one in force).
    pub deliveries: Vec<Delivery>,
    pub lines: Vec<GrnLine>,
    /// Signatures in force (not removed), in the order they were made.
    pub signatures: Vec<Attachment>,
    /// Photos in force of the note's receipts (and, for a whole shipment,
    /// of the shipment itself).
    pub photos: Vec<Attachment>,
    /// How many receipts the note counts.
    pub receipts: usize,
}

/// Why a note cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrnError {
    #[error("no delivery {0} in this shipment")]
    UnknownDelivery(DeliveryId),
}

/// The note for `delivery` (with every delivery it replaced), or for the
/// whole shipment.
pub fn goods_received_note(
    shipment: &Shipment,
    delivery: Option<&DeliveryId>,
) -> Result<GoodsReceivedNote, GrnError> {
    let (chosen, covered, ids) = match delivery {
        Some(id) => {
            let d = shipment
                .deliveries
                .get(id)
                .ok_or_else(|| GrnError::UnknownDelivery(id.clone()))?;
            let ids = replaced_chain(shipment, id);
            (Some(d.clone()), vec![d.clone()], Some(ids))
        }
        None => (
            None,
            shipment.active_deliveries().cloned().collect::<Vec<_>>(),
            None,
        ),
    };
    let in_scope = |d: &Option<DeliveryId>| match (&ids, d) {
        (None, _) => true,
        (Some(ids), Some(d)) => ids.contains(d),
        (Some(_), None) => false,
    };

    let mut lines: BTreeMap<_, GrnLine> = shipment
        .lines
        .values()
        .map(|line| {
            let row = GrnLine {
                line: line.clone(),
                received: 0,
                accepted: 0,
                rejected: 0,
                provisional: 0,
                serials: Vec::new(),
                exceptions: Vec::new(),
            };
            (line.id.clone(), row)
        })
        .collect();
    let mut counted: BTreeSet<&ReceiptId> = BTreeSet::new();
    for r in shipment.active_receipts() {
        if !in_scope(&r.delivery_id) || r.quantity == 0 {
            continue;
        }
        let Some(row) = lines.get_mut(&r.line_id) else {
            continue;
        };
        counted.insert(&r.id);
        row.received += r.quantity;
        match r.stage() {
            Stage::Accepted => row.accepted += r.quantity,
            Stage::Rejected => row.rejected += r.quantity,
            Stage::Provisional => row.provisional += r.quantity,
        }
        for s in &r.serials {
            if !row.serials.contains(s) {
                row.serials.push(s.clone());
            }
        }
        if r.reason.is_some() || r.stage() == Stage::Rejected || r.condition != Condition::Good {
            row.exceptions.push(GrnException {
                receipt: r.id.clone(),
                quantity: r.quantity,
                condition: r.condition,
                stage: r.stage(),
                reason: r.reason,
                note: r.note.clone(),
            });
        }
    }

    let mut signatures = Vec::new();
    let mut photos = Vec::new();
    for a in shipment.active_attachments() {
        let AttachmentEvent::File {
            file_kind,
            receipt_id,
            delivery_id,
            ..
        } = &a.event
        else {
            continue;
        };
        // A file on a receipt goes with it; one naming a delivery with that
        // delivery; a signature on neither (recorded before files named
        // their delivery) on every note of the shipment.
        let ours = match (receipt_id, delivery_id) {
            (Some(r), _) => counted.contains(r),
            (None, Some(_)) => in_scope(delivery_id),
            (None, None) => ids.is_none() || *file_kind == FileKind::Signature,
        };
        match file_kind {
            FileKind::Signature if ours => signatures.push(a.clone()),
            FileKind::Photo if ours => photos.push(a.clone()),
            _ => {}
        }
    }
    signatures.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
    photos.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));

    Ok(GoodsReceivedNote {
        header: shipment.header.clone(),
        delivery: chosen,
        deliveries: covered,
        lines: lines.into_values().collect(),
        signatures,
        photos,
        receipts: counted.len(),
    })
}

/// `id` and every delivery it replaces, directly or through others:
/// receipts recorded against a corrected delivery belong to its correction.
fn replaced_chain(shipment: &Shipment, id: &DeliveryId) -> BTreeSet<DeliveryId> {
    let mut ids = BTreeSet::from([id.clone()]);
    let mut next = shipment.deliveries.get(id).and_then(|d| d.replaces.clone());
    while let Some(r) = next {
        if !ids.insert(r.clone()) {
            break;
        }
        next = shipment.deliveries.get(&r).and_then(|d| d.replaces.clone());
    }
    ids
}
