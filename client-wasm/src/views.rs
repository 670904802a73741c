//! What the phone's screens show, derived from documents with `shared`
//! (never stored): the shipment list with status and totals, and one
//! shipment with its lines, receipts and per-line figures. Plain Rust, so
//! it is tested natively; the wasm layer only turns it into JSON.

use serde::Serialize;

use aidsync_shared::derive::{Summary, summarize};
use aidsync_shared::model::{Delivery, Line, Receipt, Review, Shipment};
use aidsync_shared::projection::{AttachmentRow, attachment_rows};

/// One row of "my shipments".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShipmentRow {
    pub id: String,
    pub donor: String,
    pub programme: String,
    pub reference: String,
    pub destination_facility: String,
    pub expected_on: Option<String>,
    pub status: &'static str,
    pub expected: u64,
    /// Counted per line up to its expected quantity
    /// (`received + outstanding == expected`).
    pub received: u64,
    pub damaged: u64,
    pub outstanding: u64,
    /// Units beyond their line's expected quantity.
    pub surplus: u64,
    pub wrong_item: u64,
    pub receipts: usize,
    /// The server's last refusal of this shipment's records, if any.
    pub refused: Option<String>,
    /// What the list's search looks in, lowercased: id, donor, programme,
    /// reference, items and every serial number (expected or received).
    pub search: String,
}

pub fn row(shipment: &Shipment, refused: Option<&str>) -> ShipmentRow {
    let s = summarize(shipment);
    let h = &shipment.header;
    ShipmentRow {
        id: h.id.to_string(),
        donor: h.donor.clone(),
        programme: h.programme.clone(),
        reference: h.reference.clone(),
        destination_facility: h.destination_facility.to_string(),
        expected_on: h.expected_on.clone(),
        status: s.status.as_str(),
        expected: s.expected,
        received: s.received,
        damaged: s.damaged,
        outstanding: s.outstanding,
        surplus: s.surplus,
        wrong_item: s.wrong_item,
        receipts: s.receipts,
        refused: refused.map(str::to_owned),
        search: search_text(shipment),
    }
}

fn search_text(shipment: &Shipment) -> String {
    let h = &shipment.header;
    let mut words = vec![h.id.as_str(), &h.donor, &h.programme, &h.reference];
    for line in shipment.lines.values() {
        words.push(&line.item);
        words.extend(line.serials_expected.iter().map(String::as_str));
    }
    for receipt in shipment.receipts.values() {
        words.extend(receipt.serials.iter().map(String::as_str));
    }
    words.join("\n").to_lowercase()
}

/// A receipt as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRow {
    #[serde(flatten)]
    pub receipt: Receipt,
    /// A later receipt voids this one.
    pub voided: bool,
}

/// One shipment, everything the detail screen needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShipmentDetail {
    #[serde(flatten)]
    pub row: ShipmentRow,
    pub note: String,
    pub lines: Vec<Line>,
    /// Newest first.
    pub receipts: Vec<ReceiptRow>,
    pub reviews: Vec<Review>,
    /// Attachment events (files with `removed`, and removals), flat, as
    /// the server's detail lists them.
    pub attachments: Vec<AttachmentRow>,
    /// Whether files may be attached (schema 2; a shipment from before
    /// attachments waits for the server's upgrade).
    pub can_attach: bool,
    /// Deliveries (trucks) recorded, newest first, with whether a later
    /// one replaces each.
    pub deliveries: Vec<DeliveryRow>,
    /// Whether deliveries, stages and reasons may be recorded (schema 3; a
    /// shipment from before waits for the server's upgrade).
    pub can_record_delivery: bool,
    /// Whether units' steps after receipt may be recorded (schema 4; a
    /// shipment from before waits for the server's upgrade).
    pub can_record_unit_steps: bool,
    pub summary: Summary,
}

/// A delivery as the shipment screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub replaced: bool,
}

pub fn detail(shipment: &Shipment, refused: Option<&str>) -> ShipmentDetail {
    let voided = shipment.voided();
    let mut receipts: Vec<ReceiptRow> = shipment
        .receipts
        .values()
        .map(|r| ReceiptRow {
            voided: voided.contains(&r.id),
            receipt: r.clone(),
        })
        .collect();
    receipts.sort_by(|a, b| {
        (b.receipt.recorded_at, &b.receipt.id).cmp(&(a.receipt.recorded_at, &a.receipt.id))
    });
    ShipmentDetail {
        row: row(shipment, refused),
        note: shipment.header.note.clone(),
        lines: shipment.lines.values().cloned().collect(),
        receipts,
        reviews: shipment.reviews.values().cloned().collect(),
        attachments: attachment_rows(shipment, shipment.header.id.as_str()),
        can_attach: shipment.schema >= 2,
        deliveries: delivery_rows(shipment),
        can_record_delivery: shipment.schema >= 3,
        can_record_unit_steps: shipment.schema >= 4,
        summary: summarize(shipment),
    }
}

fn delivery_rows(shipment: &Shipment) -> Vec<DeliveryRow> {
    let active: std::collections::BTreeSet<_> =
        shipment.active_deliveries().map(|d| &d.id).collect();
    let mut rows: Vec<DeliveryRow> = shipment
        .deliveries
        .values()
        .map(|d| DeliveryRow {
            replaced: !active.contains(&d.id),
            delivery: d.clone(),
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.delivery.arrived_at, &b.delivery.id).cmp(&(a.delivery.arrived_at, &a.delivery.id))
    });
    rows
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
    use aidsync_shared::model::{
        Condition, NewReceipt, NewShipment, Reason, Recorder, ShipmentDoc,
    };

    #[test]
    fn rows_and_details_carry_the_derived_figures() {
        let new = NewShipment {
            id: ShipmentId::parse("s1").unwrap(),
            donor: "JICA".into(),
            programme: String::new(),
            reference: "R-1".into(),
            destination_facility: FacilityId::parse("f1").unwrap(),
            expected_on: None,
            note: String::new(),
            lines: vec![Line {
                id: LineId::parse("l1").unwrap(),
                item: "Ultrasound".into(),
                category: "imaging".into(),
                unit: "unit".into(),
                quantity_expected: 3,
                serials_expected: Vec::new(),
                accessories: Vec::new(),
                unit_value: None,
            }],
        };
        let mut doc = ShipmentDoc::create(
            &new,
            &UserId::parse("olena").unwrap(),
            automerge::ActorId::random(),
            1,
        )
        .unwrap();
        let who = Recorder {
            user: UserId::parse("anna").unwrap(),
            device: DeviceId::parse("d1").unwrap(),
        };
        let receipt = |id: &str, quantity, voids: Option<&str>| NewReceipt {
            id: ReceiptId::parse(id).unwrap(),
            line_id: LineId::parse("l1").unwrap(),
            quantity,
            condition: Condition::Good,
            serials: Vec::new(),
            note: String::new(),
            voids: voids.map(|v| ReceiptId::parse(v).unwrap()),
            stage: None,
            // Two of three, then one more: short counts, with their reason.
            reason: Some(Reason::Short),
            delivery_id: None,
        };
        doc.record_receipt(receipt("r1", 2, None), &who, 10)
            .unwrap();
        doc.record_receipt(receipt("r2", 1, None), &who, 20)
            .unwrap();
        doc.record_receipt(receipt("r3", 0, Some("r2")), &who, 30)
            .unwrap();
        let shipment = doc.read().unwrap();

        let row = row(&shipment, Some("refused"));
        assert_eq!((row.expected, row.received, row.outstanding), (3, 2, 1));
        assert_eq!(row.status, "partial");
        assert_eq!(row.refused.as_deref(), Some("refused"));
        assert!(row.search.contains("ultrasound"), "{}", row.search);
        assert!(
            row.search
                .contains(&shipment.header.id.as_str().to_lowercase())
        );

        let detail = detail(&shipment, None);
        let order: Vec<&str> = detail
            .receipts
            .iter()
            .map(|r| r.receipt.id.as_str())
            .collect();
        assert_eq!(order, ["r3", "r2", "r1"]);
        let voided: Vec<bool> = detail.receipts.iter().map(|r| r.voided).collect();
        assert_eq!(voided, [false, true, false]);
        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(json["received"], 2);
        assert_eq!(json["receipts"][1]["voided"], true);
        assert_eq!(json["lines"][0]["item"], "Ultrasound");
        assert_eq!(json["can_attach"], true);
        assert_eq!(json["attachments"], serde_json::json!([]));
    }
}
