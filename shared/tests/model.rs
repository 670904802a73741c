//! The model's rules, each with the precise error a person will read, and
//! the figures derived from a shipment.

#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, ROOT, ReadDoc};

use aidsync_shared::derive::{DuplicateReason, Status, summarize};
use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, ModelError, NewReceipt, NewShipment, Reason, Recorder, ShipmentDoc, keys,
};

const T0: i64 = 1_790_000_000_000;
const HOUR: i64 = 3_600_000;

fn line(id: &str, qty: u64, serials: &[&str]) -> Line {
    Line {
        id: LineId::parse(id).unwrap(),
        item: format!("item {id}"),
        category: "imaging".into(),
        unit: "unit".into(),
        quantity_expected: qty,
        serials_expected: serials.iter().map(|s| s.to_string()).collect(),
        accessories: Vec::new(),
        unit_value: None,
    }
}

fn new_shipment(lines: Vec<Line>) -> NewShipment {
    NewShipment {
        id: ShipmentId::parse("jica-model-1").unwrap(),
        donor: "JICA".into(),
        programme: "Kharkiv".into(),
        reference: "M-1".into(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: Some("2026-11-01".into()),
        note: String::new(),
        lines,
    }
}

fn doc() -> ShipmentDoc {
    ShipmentDoc::create(
        &new_shipment(vec![line("mri", 1, &["MRI-1"]), line("us", 4, &[])]),
        &UserId::parse("olena").unwrap(),
        ActorId::random(),
        T0,
    )
    .unwrap()
}

fn who(user: &str) -> Recorder {
    Recorder {
        user: UserId::parse(user).unwrap(),
        device: DeviceId::parse(format!("{user}-phone")).unwrap(),
    }
}

fn receipt(id: &str, line: &str, quantity: u64) -> NewReceipt {
    NewReceipt {
        id: ReceiptId::parse(id).unwrap(),
        line_id: LineId::parse(line).unwrap(),
        quantity,
        condition: Condition::Good,
        serials: Vec::new(),
        note: String::new(),
        voids: None,
        stage: None,
        // Any reason meets the model\'s rule on short, over or damaged
        // counts; these receipts are about something else.
        reason: Some(Reason::Short),
        delivery_id: None,
    }
}

/// Records `new` and expects it refused, with the document untouched.
fn refused(doc: &mut ShipmentDoc, new: NewReceipt) -> ModelError {
    let before = doc.heads();
    let err = doc.record_receipt(new, &who("anna"), T0).unwrap_err();
    assert_eq!(doc.heads(), before, "a refused edit changed the document");
    err
}

#[test]
fn receipts_are_checked_before_they_are_saved() {
    let mut d = doc();
    d.record_receipt(receipt("r1", "us", 1), &who("anna"), T0)
        .unwrap();

    assert!(matches!(
        refused(&mut d, receipt("r2", "ct", 1)),
        ModelError::UnknownLine { line, .. } if line.as_str() == "ct"
    ));
    assert!(matches!(
        refused(&mut d, receipt("r2", "us", 0)),
        ModelError::QuantityOutOfRange { path } if path == "receipts/r2/quantity"
    ));
    assert!(matches!(
        refused(&mut d, receipt("r2", "us", 1_000_001)),
        ModelError::QuantityOutOfRange { .. }
    ));
    assert!(matches!(
        refused(&mut d, receipt("r1", "us", 1)),
        ModelError::AlreadyExists {
            kind: "receipt",
            ..
        }
    ));
    let mut void_unknown = receipt("r2", "us", 0);
    void_unknown.voids = Some(ReceiptId::parse("r9").unwrap());
    assert!(matches!(
        refused(&mut d, void_unknown),
        ModelError::VoidsUnknownReceipt { voids, .. } if voids.as_str() == "r9"
    ));
    let mut void_self = receipt("r2", "us", 0);
    void_self.voids = Some(ReceiptId::parse("r2").unwrap());
    assert!(matches!(
        refused(&mut d, void_self),
        ModelError::VoidsItself { .. }
    ));
    let mut empty_serial = receipt("r2", "us", 1);
    empty_serial.serials = vec!["  ".into()];
    assert!(matches!(
        refused(&mut d, empty_serial),
        ModelError::Invalid { path, .. } if path == "receipts/r2/serials/0"
    ));
    let mut long_serial = receipt("r2", "us", 1);
    long_serial.serials = vec!["X".repeat(65)];
    assert!(matches!(
        refused(&mut d, long_serial),
        ModelError::Invalid { .. }
    ));
    let mut long_note = receipt("r2", "us", 1);
    long_note.note = "n".repeat(2_001);
    assert!(matches!(
        refused(&mut d, long_note),
        ModelError::Invalid { path, .. } if path == "receipts/r2/note"
    ));

    // A pure void carries no units and is accepted.
    let mut void = receipt("r2", "us", 0);
    void.voids = Some(ReceiptId::parse("r1").unwrap());
    d.record_receipt(void, &who("anna"), T0 + 1).unwrap();
    assert_eq!(d.read().unwrap().voided().len(), 1);
}

#[test]
fn ids_and_header_values_are_checked() {
    assert!(ShipmentId::parse("").is_err());
    assert!(ShipmentId::parse("has space").is_err());
    assert!(ShipmentId::parse("x".repeat(65)).is_err());
    assert!(ShipmentId::parse("jica-2026_001").is_ok());

    let create = |new: NewShipment| {
        ShipmentDoc::create(
            &new,
            &UserId::parse("olena").unwrap(),
            ActorId::random(),
            T0,
        )
    };
    let mut no_donor = new_shipment(vec![line("a", 1, &[])]);
    no_donor.donor = " ".into();
    assert!(matches!(
        create(no_donor).unwrap_err(),
        ModelError::Invalid { path, .. } if path == "shipment/donor"
    ));
    let mut bad_date = new_shipment(vec![line("a", 1, &[])]);
    bad_date.expected_on = Some("2026-13-01".into());
    assert!(matches!(
        create(bad_date).unwrap_err(),
        ModelError::Invalid { path, .. } if path == "shipment/expected_on"
    ));
    assert!(matches!(
        create(new_shipment(vec![line("a", 1, &[]), line("a", 2, &[])])).unwrap_err(),
        ModelError::AlreadyExists { kind: "line", .. }
    ));
    assert!(matches!(
        create(new_shipment(vec![line("a", 0, &[])])).unwrap_err(),
        ModelError::QuantityOutOfRange { .. }
    ));

    let mut d = doc();
    let before = d.heads();
    assert!(d.set_expected_on(Some("tomorrow"), T0).is_err());
    assert!(d.set_note(&"n".repeat(2_001), T0).is_err());
    assert_eq!(d.heads(), before);
    d.set_expected_on(None, T0).unwrap();
    assert_eq!(d.read().unwrap().header.expected_on, None);
}

/// Edits that only a tampered client could make are caught by reading the
/// document (the server reads every merged document before committing).
#[test]
fn tampered_documents_are_refused_precisely() {
    let mut base = doc();
    base.record_receipt(receipt("r1", "us", 2), &who("anna"), T0)
        .unwrap();
    let before = base.read().unwrap();
    let receipt_obj = |d: &ShipmentDoc| {
        let am = d.automerge();
        let (_, receipts) = am.get(ROOT, keys::RECEIPTS).unwrap().unwrap();
        let (_, r1) = am.get(&receipts, "r1").unwrap().unwrap();
        (receipts, r1)
    };

    // Editing a recorded receipt.
    let mut edited = base.clone();
    let (_, r1) = receipt_obj(&edited);
    edited
        .automerge_mut()
        .put(&r1, keys::QUANTITY, 5_u64)
        .unwrap();
    let after = edited.read().unwrap();
    assert!(matches!(
        after.check_transition_from(&before).unwrap_err(),
        ModelError::Immutable { path } if path.starts_with("receipts/r1")
    ));

    // Deleting it.
    let mut deleted = base.clone();
    let (receipts, _) = receipt_obj(&deleted);
    deleted.automerge_mut().delete(&receipts, "r1").unwrap();
    assert!(matches!(
        deleted
            .read()
            .unwrap()
            .check_transition_from(&before)
            .unwrap_err(),
        ModelError::Removed { path } if path == "receipts/r1"
    ));

    // Moving the shipment to another facility.
    let mut moved = base.clone();
    let (_, header) = moved
        .automerge()
        .get(ROOT, keys::SHIPMENT)
        .unwrap()
        .unwrap();
    moved
        .automerge_mut()
        .put(&header, keys::DESTINATION_FACILITY, "izium-central")
        .unwrap();
    assert!(
        moved
            .read()
            .unwrap()
            .check_transition_from(&before)
            .is_err()
    );

    // A receipt whose quantity is not a number.
    let mut garbled = base.clone();
    let (_, r1) = receipt_obj(&garbled);
    garbled
        .automerge_mut()
        .put(&r1, keys::QUANTITY, "two")
        .unwrap();
    assert!(matches!(
        garbled.read().unwrap_err(),
        ModelError::WrongType { path, .. } if path == "receipts/r1/quantity"
    ));

    // Bytes that are not a document at all.
    assert!(matches!(
        ShipmentDoc::load(b"not automerge").unwrap_err(),
        ModelError::Corrupt(_)
    ));
}

fn record(d: &mut ShipmentDoc, user: &str, new: NewReceipt, at: i64) {
    d.record_receipt(new, &who(user), at).unwrap();
}

fn with(mut r: NewReceipt, condition: Condition, serials: &[&str]) -> NewReceipt {
    r.condition = condition;
    r.serials = serials.iter().map(|s| s.to_string()).collect();
    r
}

#[test]
fn status_follows_what_arrived() {
    let mut d = doc();
    assert_eq!(summarize(&d.read().unwrap()).status, Status::Awaiting);

    record(&mut d, "anna", receipt("r1", "us", 2), T0);
    let s = summarize(&d.read().unwrap());
    assert_eq!(s.status, Status::Partial);
    assert_eq!((s.expected, s.received, s.outstanding), (5, 2, 3));

    record(&mut d, "anna", receipt("r2", "us", 2), T0 + 20 * HOUR);
    record(
        &mut d,
        "anna",
        with(receipt("r3", "mri", 1), Condition::Good, &["MRI-1"]),
        T0 + 40 * HOUR,
    );
    let s = summarize(&d.read().unwrap());
    assert_eq!(s.status, Status::Complete, "{s:?}");
    assert_eq!(s.outstanding, 0);
    assert!(s.lines.iter().all(|l| l.serials_missing.is_empty()));

    // One more unit than expected is a discrepancy.
    record(&mut d, "anna", receipt("r4", "us", 1), T0 + 60 * HOUR);
    let s = summarize(&d.read().unwrap());
    assert_eq!(s.status, Status::Discrepancy);
    let us = s.lines.iter().find(|l| l.line_id.as_str() == "us").unwrap();
    assert_eq!((us.received, us.over_received, us.outstanding), (5, 1, 0));

    // Voiding it brings the shipment back to complete.
    let mut void = receipt("r5", "us", 0);
    void.voids = Some(ReceiptId::parse("r4").unwrap());
    record(&mut d, "anna", void, T0 + 61 * HOUR);
    let s = summarize(&d.read().unwrap());
    assert_eq!(s.status, Status::Complete);
    assert_eq!(s.voided_receipts, 1);
}

#[test]
fn damage_and_serial_mismatches_are_discrepancies() {
    let mut d = doc();
    record(
        &mut d,
        "anna",
        with(receipt("r1", "mri", 1), Condition::Damaged, &["MRI-7"]),
        T0,
    );
    record(
        &mut d,
        "anna",
        with(receipt("r2", "us", 1), Condition::WrongItem, &[]),
        T0 + 20 * HOUR,
    );
    let s = summarize(&d.read().unwrap());
    assert_eq!(s.status, Status::Discrepancy);
    let mri = &s.lines[0];
    assert_eq!(mri.line_id.as_str(), "mri");
    assert_eq!((mri.received, mri.damaged, mri.good), (1, 1, 0));
    assert_eq!(mri.serials_missing, vec!["MRI-1".to_string()]);
    assert_eq!(mri.serials_unexpected, vec!["MRI-7".to_string()]);
    let us = &s.lines[1];
    assert_eq!((us.received, us.wrong_item, us.outstanding), (0, 1, 4));
    assert_eq!(s.damaged, 1);
}

#[test]
fn possible_duplicates() {
    let mut d = doc();
    // Same serial by two people, days apart: a serial arrives only once.
    record(
        &mut d,
        "anna",
        with(receipt("r1", "mri", 1), Condition::Good, &["MRI-1"]),
        T0,
    );
    record(
        &mut d,
        "bohdan",
        with(receipt("r2", "mri", 1), Condition::Good, &["MRI-1"]),
        T0 + 72 * HOUR,
    );
    // Similar quantities by two people within hours.
    record(&mut d, "anna", receipt("r3", "us", 2), T0);
    record(&mut d, "bohdan", receipt("r4", "us", 2), T0 + 2 * HOUR);
    let s = summarize(&d.read().unwrap());
    assert_eq!(s.duplicates.len(), 2, "{:?}", s.duplicates);
    assert!(s.duplicates.iter().any(|p| p.first.as_str() == "r1"
        && p.second.as_str() == "r2"
        && p.reason
            == DuplicateReason::SameSerials {
                serials: vec!["MRI-1".into()]
            }));
    assert!(s.duplicates.iter().any(|p| p.first.as_str() == "r3"
        && p.second.as_str() == "r4"
        && p.reason == DuplicateReason::SimilarQuantity));

    // Not duplicates: the same person twice, or two people far apart.
    let mut d = doc();
    record(&mut d, "anna", receipt("r1", "us", 2), T0);
    record(&mut d, "anna", receipt("r2", "us", 2), T0 + HOUR);
    record(&mut d, "bohdan", receipt("r3", "us", 2), T0 + 48 * HOUR);
    assert!(summarize(&d.read().unwrap()).duplicates.is_empty());
}

/// Found by `aidsync-fuzz` (csv, seed 1, case 8335): a 6 MB manifest of
/// one shipment with 1,000 lines of 1,000 serials each passed every rule,
/// and writing it took the server 16 s and 270 MB. A shipment is now
/// written with at most `MAX_LINES` lines and `MAX_SHIPMENT_SERIALS`
/// expected serials, whether created at once or grown line by line.
#[test]
fn a_shipment_is_written_with_bounded_lines_and_serials() {
    use aidsync_shared::model::{MAX_LINES, MAX_SERIALS, MAX_SHIPMENT_SERIALS};
    let olena = UserId::parse("olena").unwrap();
    let too_many_lines: Vec<Line> = (0..=MAX_LINES)
        .map(|i| line(&format!("l{i}"), 1, &[]))
        .collect();
    let err = ShipmentDoc::create(&new_shipment(too_many_lines), &olena, ActorId::random(), T0)
        .unwrap_err();
    assert!(err.to_string().contains("lines in one shipment"), "{err}");

    let serials: Vec<String> = (0..MAX_SERIALS).map(|i| format!("S-{i}")).collect();
    let serial_refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let full = |n: usize| -> Vec<Line> {
        (0..n)
            .map(|i| line(&format!("l{i}"), MAX_SERIALS as u64, &serial_refs))
            .collect()
    };
    let lines_at_limit = MAX_SHIPMENT_SERIALS / MAX_SERIALS;
    let err = ShipmentDoc::create(
        &new_shipment(full(lines_at_limit + 1)),
        &olena,
        ActorId::random(),
        T0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("expected serial numbers"), "{err}");

    let mut at_limit = ShipmentDoc::create(
        &new_shipment(full(lines_at_limit)),
        &olena,
        ActorId::random(),
        T0,
    )
    .unwrap();
    let err = at_limit
        .add_line(&line("one-more", 1, &["S-extra"]), T0 + HOUR)
        .unwrap_err();
    assert!(err.to_string().contains("expected serial numbers"), "{err}");
    at_limit
        .add_line(&line("no-serials", 1, &[]), T0 + HOUR)
        .unwrap();
}
