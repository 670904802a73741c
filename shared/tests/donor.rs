//! The donor's discrepancy report's content: every discrepancy with what
//! was recorded about it, its reviews and its files, open ones first.

#![allow(clippy::unwrap_used)]

use automerge::ActorId;

use aidsync_shared::donor::donor_discrepancies;
use aidsync_shared::ids::{
    AttachmentId, DeviceId, FacilityId, LineId, ReceiptId, ReviewId, ShipmentId, UserId,
};
use aidsync_shared::model::{
    Condition, FileKind, FileRef, Line, NewAttachment, NewReceipt, NewReview, NewShipment, Reason,
    Recorder, ShipmentDoc, Stage, Verdict,
};

const T0: i64 = 1_790_000_000_000;

#[test]
fn each_discrepancy_carries_its_reasons_reviews_and_files() {
    let line = |id: &str, item: &str, quantity| Line {
        id: LineId::parse(id).unwrap(),
        item: item.into(),
        category: "imaging".into(),
        unit: "unit".into(),
        quantity_expected: quantity,
        serials_expected: Vec::new(),
        accessories: Vec::new(),
        unit_value: None,
    };
    let new = NewShipment {
        id: ShipmentId::parse("jica-donor-1").unwrap(),
        donor: "JICA".into(),
        programme: String::new(),
        reference: "JICA-UA-2026-020".into(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: None,
        note: String::new(),
        lines: vec![
            line("us", "Portable ultrasound", 2),
            line("ct", "CT scanner", 1),
        ],
    };
    let olena = UserId::parse("olena").unwrap();
    let mut doc = ShipmentDoc::create(&new, &olena, ActorId::random(), T0).unwrap();
    let anna = Recorder {
        user: UserId::parse("anna").unwrap(),
        device: DeviceId::parse("anna-phone").unwrap(),
    };
    doc.record_receipt(
        NewReceipt {
            id: ReceiptId::parse("r-cracked").unwrap(),
            line_id: LineId::parse("us").unwrap(),
            quantity: 2,
            condition: Condition::Damaged,
            serials: Vec::new(),
            note: "screen cracked".into(),
            voids: None,
            stage: Some(Stage::Rejected),
            reason: Some(Reason::DamagedInTransit),
            delivery_id: None,
        },
        &anna,
        T0 + 1,
    )
    .unwrap();
    doc.record_attachment(
        NewAttachment {
            id: AttachmentId::parse("a-crate").unwrap(),
            file_kind: FileKind::Photo,
            receipt_id: Some(ReceiptId::parse("r-cracked").unwrap()),
            file: FileRef {
                sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                media_type: "image/jpeg".into(),
                size: 1_000,
                width: None,
                height: None,
            },
            signer: None,
            note: "crate".into(),
            delivery_id: None,
        },
        &anna,
        T0 + 2,
    )
    .unwrap();
    doc.add_review(
        NewReview {
            id: ReviewId::parse("rv-1").unwrap(),
            note: "supplier replaces both".into(),
            verdict: Some(Verdict::Approved),
            resolves: vec![ReceiptId::parse("r-cracked").unwrap()],
        },
        &olena,
        T0 + 3,
    )
    .unwrap();
    let report = donor_discrepancies(&doc.read().unwrap());

    let kinds: Vec<(&str, &str, bool)> = report
        .iter()
        .map(|d| (d.line_id.as_str(), d.kind.as_str(), d.settled))
        .collect();
    // Open first: the CT scanner never came; then the settled damage.
    assert_eq!(kinds, [("ct", "missing", false), ("us", "damaged", true)]);
    let damaged = &report[1];
    assert_eq!(damaged.item, "Portable ultrasound");
    assert_eq!(damaged.evidence.len(), 1);
    let e = &damaged.evidence[0];
    assert_eq!(
        (e.reason, e.stage, e.note.as_str()),
        (
            Some(Reason::DamagedInTransit),
            Stage::Rejected,
            "screen cracked"
        )
    );
    assert_eq!(damaged.reviews.len(), 1);
    assert_eq!(damaged.reviews[0].note, "supplier replaces both");
    assert_eq!(damaged.files.len(), 1);
    assert_eq!(damaged.files[0].attachment_id, "a-crate");
    let missing = &report[0];
    assert!(missing.evidence.is_empty() && missing.files.is_empty());
    assert!(
        missing.reviews.is_empty(),
        "the review named a receipt, not the shipment"
    );
}
