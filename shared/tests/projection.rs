//! The rows coordinators query: what counts as a discrepancy, when a
//! review settles it, and what each row carries.

#![allow(clippy::unwrap_used)]

use automerge::ActorId;

use aidsync_shared::derive::summarize;
use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ReviewId, ShipmentId, UserId};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewReview, NewShipment, Reason, Recorder, ShipmentDoc, Verdict,
};
use aidsync_shared::projection::{Projection, project};

const T0: i64 = 1_790_000_000_000;

fn doc() -> ShipmentDoc {
    let line = |id: &str, quantity, serials: &[&str]| Line {
        id: LineId::parse(id).unwrap(),
        item: format!("item {id}"),
        category: "imaging".into(),
        unit: "unit".into(),
        quantity_expected: quantity,
        serials_expected: serials.iter().map(|s| s.to_string()).collect(),
        accessories: Vec::new(),
        unit_value: None,
    };
    let new = NewShipment {
        id: ShipmentId::parse("s1").unwrap(),
        donor: "JICA".into(),
        programme: String::new(),
        reference: "WB-1".into(),
        destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
        expected_on: Some("2026-11-30".into()),
        note: String::new(),
        lines: vec![line("ct", 2, &["CT-1", "CT-2"]), line("us", 5, &[])],
    };
    ShipmentDoc::create(
        &new,
        &UserId::parse("olena").unwrap(),
        ActorId::random(),
        T0,
    )
    .unwrap()
}

fn record(
    doc: &mut ShipmentDoc,
    id: &str,
    line: &str,
    quantity: u64,
    condition: Condition,
    serials: &[&str],
    at: i64,
) {
    let who = Recorder {
        user: UserId::parse("anna").unwrap(),
        device: DeviceId::parse("anna-phone").unwrap(),
    };
    let new = NewReceipt {
        id: ReceiptId::parse(id).unwrap(),
        line_id: LineId::parse(line).unwrap(),
        quantity,
        condition,
        serials: serials.iter().map(|s| s.to_string()).collect(),
        note: String::new(),
        voids: None,
        stage: None,
        // Any reason meets the model\'s rule on short, over or damaged
        // counts; these receipts are about something else.
        reason: Some(Reason::Short),
        delivery_id: None,
    };
    doc.record_receipt(new, &who, at).unwrap();
}

fn review(doc: &mut ShipmentDoc, id: &str, resolves: &[&str], at: i64) {
    judge(doc, id, resolves, at, Verdict::Approved);
}

fn judge(doc: &mut ShipmentDoc, id: &str, resolves: &[&str], at: i64, verdict: Verdict) {
    let new = NewReview {
        id: ReviewId::parse(id).unwrap(),
        note: "checked".into(),
        verdict: Some(verdict),
        resolves: resolves
            .iter()
            .map(|r| ReceiptId::parse(*r).unwrap())
            .collect(),
    };
    doc.add_review(new, &UserId::parse("olena").unwrap(), at)
        .unwrap();
}

fn rows(doc: &ShipmentDoc) -> Projection {
    let shipment = doc.read().unwrap();
    project(&shipment, &summarize(&shipment), |r| {
        (r.as_str() == "r1").then_some(T0 + 99)
    })
}

/// `(line, kind, quantity, serials, receipts, resolved)` of each discrepancy.
/// `(line, kind, quantity, serials, receipts, resolved)`.
type Seen = (String, String, i64, Vec<String>, Vec<String>, bool);

fn discrepancies(p: &Projection) -> Vec<Seen> {
    p.discrepancies
        .iter()
        .map(|d| {
            (
                d.line_id.clone(),
                d.kind.clone(),
                d.quantity,
                d.serials.clone(),
                d.receipts.clone(),
                d.resolved,
            )
        })
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn nothing_is_a_discrepancy_before_anything_arrives() {
    let p = rows(&doc());
    assert_eq!(p.shipment.status, "awaiting");
    assert!(p.discrepancies.is_empty());
    assert_eq!(p.shipment.open_discrepancies, 0);
    assert_eq!(p.lines.len(), 2);
    assert_eq!(p.shipment.expected, 7);
    assert_eq!(p.shipment.last_receipt_at, None);
}

#[test]
fn each_kind_of_discrepancy_names_its_receipts_and_a_review_settles_it() {
    let mut d = doc();
    // CT: one good with a serial not on the manifest, one damaged.
    record(&mut d, "r1", "ct", 1, Condition::Good, &["CT-9"], T0 + 1);
    record(&mut d, "r2", "ct", 1, Condition::Damaged, &["CT-1"], T0 + 2);
    // Ultrasound: 6 of 5 (one over), plus a wrong item.
    record(&mut d, "r3", "us", 6, Condition::Good, &[], T0 + 3);
    record(&mut d, "r4", "us", 1, Condition::WrongItem, &[], T0 + 4);
    let p = rows(&d);
    assert_eq!(p.shipment.status, "discrepancy");
    assert_eq!(
        discrepancies(&p),
        [
            (
                "ct".into(),
                "damaged".into(),
                1,
                vec![],
                strings(&["r2"]),
                false
            ),
            (
                "ct".into(),
                "serials_unexpected".into(),
                1,
                strings(&["CT-9"]),
                strings(&["r1"]),
                false
            ),
            (
                "ct".into(),
                "serials_missing".into(),
                1,
                strings(&["CT-2"]),
                vec![],
                false
            ),
            (
                "us".into(),
                "wrong_item".into(),
                1,
                vec![],
                strings(&["r4"]),
                false
            ),
            (
                "us".into(),
                "over_received".into(),
                1,
                vec![],
                strings(&["r3"]),
                false
            ),
        ]
    );
    assert_eq!(p.shipment.open_discrepancies, 5);

    // A review naming r2 settles the damage only.
    review(&mut d, "v1", &["r2"], T0 + 10);
    let p = rows(&d);
    let open: Vec<String> = p
        .discrepancies
        .iter()
        .filter(|x| !x.resolved)
        .map(|x| x.kind.clone())
        .collect();
    assert_eq!(
        open,
        [
            "serials_unexpected",
            "serials_missing",
            "wrong_item",
            "over_received"
        ]
    );
    // A review of the whole shipment settles what no receipt shows
    // (serials never seen), not what receipts show.
    review(&mut d, "v2", &[], T0 + 11);
    let p = rows(&d);
    let open: Vec<String> = p
        .discrepancies
        .iter()
        .filter(|x| !x.resolved)
        .map(|x| x.kind.clone())
        .collect();
    assert_eq!(open, ["serials_unexpected", "wrong_item", "over_received"]);
    assert_eq!(p.shipment.open_discrepancies, 3);
}

#[test]
fn missing_units_show_once_something_arrived_and_a_later_receipt_reopens_them() {
    let mut d = doc();
    record(&mut d, "r1", "us", 3, Condition::Good, &[], T0 + 1);
    review(&mut d, "v1", &[], T0 + 5);
    let p = rows(&d);
    assert_eq!(p.shipment.status, "partial");
    assert_eq!(
        discrepancies(&p),
        [
            (
                "ct".into(),
                "missing".into(),
                2,
                strings(&["CT-1", "CT-2"]),
                vec![],
                true
            ),
            ("us".into(), "missing".into(), 2, vec![], vec![], true),
        ]
    );
    // A receipt after the review: what is still missing there is open again.
    record(&mut d, "r2", "us", 1, Condition::Good, &[], T0 + 6);
    let p = rows(&d);
    let missing: Vec<(String, i64, bool)> = p
        .discrepancies
        .iter()
        .map(|x| (x.line_id.clone(), x.quantity, x.resolved))
        .collect();
    assert_eq!(missing, [("ct".into(), 2, true), ("us".into(), 1, false)]);
}

#[test]
fn receipt_rows_carry_who_when_and_voids() {
    let mut d = doc();
    record(&mut d, "r1", "us", 2, Condition::Good, &[], T0 + 1);
    let who = Recorder {
        user: UserId::parse("anna").unwrap(),
        device: DeviceId::parse("anna-phone").unwrap(),
    };
    let void = NewReceipt {
        id: ReceiptId::parse("r2").unwrap(),
        line_id: LineId::parse("us").unwrap(),
        quantity: 0,
        condition: Condition::Good,
        serials: Vec::new(),
        note: "counted twice".into(),
        voids: Some(ReceiptId::parse("r1").unwrap()),
        stage: None,
        reason: Some(Reason::Short),
        delivery_id: None,
    };
    d.record_receipt(void, &who, T0 + 2).unwrap();
    let p = rows(&d);
    type Row<'a> = (&'a str, bool, Option<&'a str>, Option<i64>, &'a str);
    let receipts: Vec<Row> = p
        .receipts
        .iter()
        .map(|r| {
            (
                r.receipt_id.as_str(),
                r.voided,
                r.voids.as_deref(),
                r.received_at,
                r.recorded_by.as_str(),
            )
        })
        .collect();
    assert_eq!(
        receipts,
        [
            ("r1", true, None, Some(T0 + 99), "anna"),
            ("r2", false, Some("r1"), None, "anna")
        ]
    );
    assert_eq!(p.shipment.receipts, 1);
    assert_eq!(p.shipment.voided_receipts, 1);
    assert_eq!(p.shipment.received, 0);
    assert_eq!(p.shipment.last_receipt_at, Some(T0 + 2));
}

/// "Has issues" says a problem was seen and still needs following up: it
/// leaves the discrepancy open. The latest verdict on a receipt decides, so
/// a later approval settles it and a later "has issues" reopens it.
#[test]
fn has_issues_keeps_a_discrepancy_open_and_the_latest_verdict_decides() {
    let mut d = doc();
    record(&mut d, "r1", "us", 1, Condition::Damaged, &["US-1"], T0 + 1);
    let damaged_open = |d: &ShipmentDoc| {
        rows(d)
            .discrepancies
            .iter()
            .find(|x| x.kind == "damaged")
            .map(|x| !x.resolved)
            .unwrap()
    };
    assert!(damaged_open(&d));
    judge(&mut d, "v1", &["r1"], T0 + 10, Verdict::HasIssues);
    assert!(damaged_open(&d), "has issues: still open");
    judge(&mut d, "v2", &["r1"], T0 + 20, Verdict::Approved);
    assert!(!damaged_open(&d), "approved later: settled");
    judge(&mut d, "v3", &["r1"], T0 + 30, Verdict::HasIssues);
    assert!(damaged_open(&d), "has issues later: reopened");
    judge(&mut d, "v4", &["r1"], T0 + 40, Verdict::Rejected);
    assert!(!damaged_open(&d), "rejected: decided, settled");
}
