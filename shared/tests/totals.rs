//! Honest totals: on random shipments, every figure a person reads adds up.
//! Per line and in total, received (against expected) + outstanding =
//! expected; a line's surplus never fills another line's gap; a shipment
//! reads 100 % only when every line has arrived in full.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use aidsync_shared::derive::{Status, summarize};
use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
use aidsync_shared::model::{Condition, Header, Line, Receipt, Shipment};

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => Just(Condition::Good),
        1 => Just(Condition::Damaged),
        1 => Just(Condition::MissingParts),
        1 => Just(Condition::WrongItem),
    ]
}

/// Lines with their expected quantities, and receipts as (line index,
/// quantity, condition, voids an earlier receipt).
fn shipment() -> impl Strategy<Value = Shipment> {
    (1..6usize)
        .prop_flat_map(|lines| {
            (
                proptest::collection::vec(0..12u64, lines),
                proptest::collection::vec(
                    (
                        0..lines,
                        0..15u64,
                        condition(),
                        proptest::option::of(0..20usize),
                    ),
                    0..25,
                ),
            )
        })
        .prop_map(|(expected, receipts)| build(&expected, &receipts))
}

fn build(expected: &[u64], receipts: &[(usize, u64, Condition, Option<usize>)]) -> Shipment {
    let line_id = |i: usize| LineId::parse(format!("l{i}")).unwrap();
    let lines: BTreeMap<LineId, Line> = expected
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let line = Line {
                id: line_id(i),
                item: format!("item {i}"),
                category: "imaging".into(),
                unit: "unit".into(),
                quantity_expected: q,
                serials_expected: Vec::new(),
            };
            (line.id.clone(), line)
        })
        .collect();
    let receipt_id = |i: usize| ReceiptId::parse(format!("r{i:02}")).unwrap();
    let receipts: BTreeMap<ReceiptId, Receipt> = receipts
        .iter()
        .enumerate()
        .map(|(i, &(line, quantity, condition, voids))| {
            let r = Receipt {
                id: receipt_id(i),
                line_id: line_id(line),
                quantity,
                condition,
                serials: Vec::new(),
                note: String::new(),
                recorded_by: UserId::parse(if i % 2 == 0 { "anna" } else { "petro" }).unwrap(),
                device_id: DeviceId::parse("phone-1").unwrap(),
                recorded_at: 1_790_000_000_000 + i as i64 * 60_000,
                voids: voids.filter(|&v| v < i).map(receipt_id),
            };
            (r.id.clone(), r)
        })
        .collect();
    Shipment {
        header: Header {
            id: ShipmentId::parse("jica-2026-001").unwrap(),
            donor: "JICA".into(),
            programme: String::new(),
            reference: String::new(),
            destination_facility: FacilityId::parse("kharkiv-regional").unwrap(),
            expected_on: None,
            created_by: UserId::parse("olena").unwrap(),
            created_at: 1_790_000_000_000,
            note: String::new(),
        },
        lines,
        receipts,
        reviews: BTreeMap::new(),
        conflicts: Vec::new(),
    }
}

proptest! {
    #[test]
    fn every_figure_adds_up(shipment in shipment()) {
        let s = summarize(&shipment);
        for l in &s.lines {
            prop_assert_eq!(l.received_against_expected + l.outstanding, l.expected);
            prop_assert!(l.received_against_expected <= l.expected);
            prop_assert_eq!(l.received, l.good + l.damaged + l.missing_parts);
            prop_assert_eq!(l.received_against_expected + l.over_received, l.received);
        }
        prop_assert_eq!(s.received + s.outstanding, s.expected);
        prop_assert_eq!(s.received, s.lines.iter().map(|l| l.received_against_expected).sum::<u64>());
        prop_assert_eq!(s.surplus, s.lines.iter().map(|l| l.over_received).sum::<u64>());
        prop_assert_eq!(s.wrong_item, s.lines.iter().map(|l| l.wrong_item).sum::<u64>());
        // 100 % only when every line is.
        let every_line_full = s.lines.iter().all(|l| l.outstanding == 0);
        prop_assert_eq!(s.received == s.expected, every_line_full);
        if s.status == Status::Complete {
            prop_assert!(every_line_full && s.surplus == 0 && s.wrong_item == 0 && s.damaged == 0);
        }
    }
}

/// The dashboard once read 16 / 16 (100 %) for a hospital whose MRI never
/// arrived, because seven surplus kits filled the gap.
#[test]
fn surplus_on_one_line_does_not_hide_a_missing_mri() {
    let shipment = build(&[1, 10], &[(1, 17, Condition::Good, None)]);
    let s = summarize(&shipment);
    assert_eq!((s.received, s.expected, s.outstanding), (10, 11, 1));
    assert_eq!(s.surplus, 7);
    assert_eq!(s.status, Status::Discrepancy);
    let mri = &s.lines[0];
    assert_eq!((mri.received_against_expected, mri.outstanding), (0, 1));
    let kits = &s.lines[1];
    assert_eq!(
        (
            kits.received,
            kits.received_against_expected,
            kits.over_received,
            kits.outstanding
        ),
        (17, 10, 7, 0)
    );
}
