//! Honest figures. On random shipments, every total a person reads adds
//! up: per line and in total, received (against expected) + outstanding =
//! expected; a line's surplus never fills another line's gap; a shipment
//! reads 100 % only when every line has arrived in full. And the warnings a
//! phone shows before Save agree with the discrepancies and duplicates the
//! server would derive once the receipt is saved.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use aidsync_shared::derive::{DuplicateReason, Status, summarize};
use aidsync_shared::ids::{DeviceId, FacilityId, LineId, ReceiptId, ShipmentId, UserId};
use aidsync_shared::model::{Condition, Header, Line, NewReceipt, Receipt, Shipment};
use aidsync_shared::warnings::{ReceiptWarning, receipt_warnings};

/// A receipt as generated: line index, quantity, condition, the earlier
/// receipt it voids, and its serials as numbers (see [`serial`]).
type Spec = (usize, u64, Condition, Option<usize>, Vec<u8>);

/// Serial `n` of line `line`: lines with an even index list serials 0 to
/// expected − 1; higher numbers are not on the manifest.
fn serial(line: usize, n: u8) -> String {
    format!("S{line}-{n}")
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => Just(Condition::Good),
        1 => Just(Condition::Damaged),
        1 => Just(Condition::MissingParts),
        1 => Just(Condition::WrongItem),
    ]
}

fn spec(lines: usize) -> impl Strategy<Value = Spec> {
    (
        0..lines,
        0..15u64,
        condition(),
        proptest::option::of(0..20usize),
        proptest::collection::vec(0..14u8, 0..4),
    )
}

/// Lines with their expected quantities, and receipts.
fn lines_and_receipts() -> impl Strategy<Value = (Vec<u64>, Vec<Spec>)> {
    (1..6usize).prop_flat_map(|lines| {
        (
            proptest::collection::vec(0..12u64, lines),
            proptest::collection::vec(spec(lines), 0..25),
        )
    })
}

fn shipment() -> impl Strategy<Value = Shipment> {
    lines_and_receipts().prop_map(|(expected, receipts)| build(&expected, &receipts))
}

fn build(expected: &[u64], receipts: &[Spec]) -> Shipment {
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
                serials_expected: if i % 2 == 0 {
                    (0..q as u8).map(|n| serial(i, n)).collect()
                } else {
                    Vec::new()
                },
                accessories: Vec::new(),
                unit_value: None,
            };
            (line.id.clone(), line)
        })
        .collect();
    let receipt_id = |i: usize| ReceiptId::parse(format!("r{i:02}")).unwrap();
    let receipts: BTreeMap<ReceiptId, Receipt> = receipts
        .iter()
        .enumerate()
        .map(|(i, (line, quantity, condition, voids, serials))| {
            let (line, quantity, condition, voids) = (*line, *quantity, *condition, *voids);
            let r = Receipt {
                id: receipt_id(i),
                line_id: line_id(line),
                quantity,
                condition,
                serials: serials.iter().map(|&n| serial(line, n)).collect(),
                note: String::new(),
                recorded_by: UserId::parse(if i % 2 == 0 { "anna" } else { "petro" }).unwrap(),
                device_id: DeviceId::parse("phone-1").unwrap(),
                recorded_at: 1_790_000_000_000 + i as i64 * 60_000,
                voids: voids.filter(|&v| v < i).map(receipt_id),
                stage: None,
                reason: None,
                delivery_id: None,
            };
            (r.id.clone(), r)
        })
        .collect();
    Shipment {
        schema: aidsync_shared::model::SCHEMA_VERSION,
        attachments: BTreeMap::new(),
        deliveries: BTreeMap::new(),
        unit_events: BTreeMap::new(),
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
    let shipment = build(&[1, 10], &[(1, 17, Condition::Good, None, Vec::new())]);
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

proptest! {
    /// What the phone warns about before Save is what the server derives
    /// once the receipt is saved: surplus, serials not on the manifest,
    /// serials counted twice.
    #[test]
    fn warnings_agree_with_what_the_server_derives(
        (expected, receipts, new) in lines_and_receipts()
            .prop_flat_map(|(e, r)| { let lines = e.len(); (Just(e), Just(r), spec(lines)) })
    ) {
        let before = build(&expected, &receipts);
        let (line, quantity, condition, _, serials) = new;
        let receipt = NewReceipt {
            id: ReceiptId::parse("zz-new").unwrap(),
            line_id: LineId::parse(format!("l{line}")).unwrap(),
            quantity,
            condition,
            serials: serials.iter().map(|&n| serial(line, n)).collect(),
            note: String::new(),
            voids: None,
            stage: None,
            reason: None,
            delivery_id: None,
        };
        let warnings = receipt_warnings(&before, &receipt);
        let mut after = before.clone();
        after.receipts.insert(receipt.id.clone(), Receipt {
            id: receipt.id.clone(),
            line_id: receipt.line_id.clone(),
            quantity,
            condition,
            serials: receipt.serials.clone(),
            note: String::new(),
            recorded_by: UserId::parse("zoe").unwrap(),
            device_id: DeviceId::parse("phone-9").unwrap(),
            recorded_at: 1_790_100_000_000,
            voids: None,
            stage: None,
            reason: None,
            delivery_id: None,
        });
        let (was, now) = (summarize(&before), summarize(&after));
        let counted = quantity > 0 && condition != Condition::WrongItem;

        let surplus_warned = warnings.iter().any(|w| matches!(w, ReceiptWarning::MoreThanOutstanding { .. }));
        prop_assert_eq!(surplus_warned, counted && now.lines[line].over_received > was.lines[line].over_received);

        let not_listed: Vec<String> = warnings.iter().flat_map(|w| match w {
            ReceiptWarning::SerialsNotOnManifest { serials } => serials.clone(),
            _ => Vec::new(),
        }).collect();
        for s in &now.lines[line].serials_unexpected {
            if !was.lines[line].serials_unexpected.contains(s) {
                prop_assert!(!counted || not_listed.contains(s), "{} not warned", s);
            }
        }
        for s in &not_listed {
            prop_assert!(now.lines[line].serials_unexpected.contains(s));
        }

        let repeated: Vec<String> = warnings.iter().flat_map(|w| match w {
            ReceiptWarning::SerialsAlreadyReceived { serials, .. } => serials.clone(),
            _ => Vec::new(),
        }).collect();
        let duplicated: Vec<String> = now.duplicates.iter()
            .filter(|d| d.second == receipt.id || d.first == receipt.id)
            .flat_map(|d| match &d.reason {
                DuplicateReason::SameSerials { serials } => serials.clone(),
                DuplicateReason::SimilarQuantity => Vec::new(),
            })
            .collect();
        // Serials are per line here, so a repeat is always on this line.
        if counted {
            for s in &duplicated {
                prop_assert!(repeated.contains(s), "{} not warned", s);
            }
            for s in &repeated {
                prop_assert!(duplicated.contains(s), "{} warned, yet no duplicate", s);
            }
        } else {
            prop_assert!(warnings.is_empty());
        }
    }
}

#[test]
fn a_receipt_at_the_crate_hears_what_is_wrong_before_it_is_saved() {
    // Line 0: 2 ultrasounds S0-0, S0-1, one already received (S0-0).
    let shipment = build(&[2], &[(0, 1, Condition::Good, None, vec![0])]);
    let receipt = |quantity, serials: &[u8]| NewReceipt {
        id: ReceiptId::parse("zz-new").unwrap(),
        line_id: LineId::parse("l0").unwrap(),
        quantity,
        condition: Condition::Good,
        serials: serials.iter().map(|&n| serial(0, n)).collect(),
        note: String::new(),
        voids: None,
        stage: None,
        reason: None,
        delivery_id: None,
    };
    assert_eq!(receipt_warnings(&shipment, &receipt(1, &[1])), []);
    let warnings = receipt_warnings(&shipment, &receipt(5, &[0, 9]));
    assert!(warnings.contains(&ReceiptWarning::MoreThanOutstanding {
        quantity: 5,
        outstanding: 1
    }));
    assert!(warnings.contains(&ReceiptWarning::SerialsNotOnManifest {
        serials: vec!["S0-9".into()]
    }));
    assert!(warnings.contains(&ReceiptWarning::SerialCountDiffers {
        quantity: 5,
        serials: 2
    }));
    assert!(warnings.iter().any(|w| matches!(w,
        ReceiptWarning::SerialsAlreadyReceived { serials, earlier }
            if serials == &["S0-0"] && earlier[0].recorded_by.as_str() == "anna")));
    // A correction of the earlier receipt is judged without it.
    let mut correction = receipt(1, &[0]);
    correction.voids = Some(ReceiptId::parse("r00").unwrap());
    assert_eq!(receipt_warnings(&shipment, &correction), []);
}
