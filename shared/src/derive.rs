//! Figures derived from a shipment: never stored, always recomputed, so every
//! replica that holds the same document shows the same totals.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{LineId, ReceiptId};
use crate::model::{Condition, Receipt, Shipment};

/// Two receipts by different people on the same line, recorded within this
/// many milliseconds with similar quantities, may be one delivery counted twice.
pub const DUPLICATE_WINDOW_MS: i64 = 12 * 60 * 60 * 1000;

/// Where a shipment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing recorded yet.
    Awaiting,
    /// Some units recorded, some still outstanding, nothing wrong so far.
    Partial,
    /// Every line received in full, in good order, serials matching.
    Complete,
    /// Something is wrong: damaged, incomplete, wrong or surplus units, or
    /// serial numbers that do not match the manifest.
    Discrepancy,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Awaiting,
        Status::Partial,
        Status::Complete,
        Status::Discrepancy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Awaiting => "awaiting",
            Status::Partial => "partial",
            Status::Complete => "complete",
            Status::Discrepancy => "discrepancy",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Totals for one manifest line, over receipts that are not voided.
///
/// Always `received_against_expected + outstanding == expected`: units
/// beyond the expected quantity are `over_received` (surplus), never a
/// stand-in for another line's missing units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineTotals {
    pub line_id: LineId,
    pub expected: u64,
    /// Units of the expected item that arrived, whatever their state,
    /// surplus included (`good + damaged + missing_parts`).
    pub received: u64,
    /// `received` capped at `expected`: what counts towards the line.
    pub received_against_expected: u64,
    pub good: u64,
    pub damaged: u64,
    pub missing_parts: u64,
    /// Units that arrived but are not the expected item (not in `received`).
    pub wrong_item: u64,
    /// `expected - received_against_expected`: still to arrive.
    pub outstanding: u64,
    /// Surplus: units of the item beyond `expected`.
    pub over_received: u64,
    /// On the manifest, but on no receipt.
    pub serials_missing: Vec<String>,
    /// On a receipt, but not on the manifest (only when the manifest lists serials).
    pub serials_unexpected: Vec<String>,
}

impl LineTotals {
    pub fn has_discrepancy(&self) -> bool {
        self.damaged > 0
            || self.missing_parts > 0
            || self.wrong_item > 0
            || self.over_received > 0
            || !self.serials_unexpected.is_empty()
            || (self.outstanding == 0 && !self.serials_missing.is_empty())
    }
}

/// Why two receipts look like the same delivery counted twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DuplicateReason {
    /// Both list these serial numbers: a serial can arrive only once.
    SameSerials { serials: Vec<String> },
    /// Different people, similar quantities, close in time.
    SimilarQuantity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PossibleDuplicate {
    pub line_id: LineId,
    pub first: ReceiptId,
    pub second: ReceiptId,
    #[serde(flatten)]
    pub reason: DuplicateReason,
}

/// Everything derived from one shipment.
///
/// Totals are honest sums of the lines: `received` counts each line's
/// units only up to its expected quantity, so `received + outstanding ==
/// expected` and `received == expected` only when every line has arrived in
/// full; surplus and wrong items are their own figures, never filling
/// another line's gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub status: Status,
    pub lines: Vec<LineTotals>,
    pub expected: u64,
    /// Σ `received_against_expected` of the lines.
    pub received: u64,
    /// Damaged units and units with missing parts, surplus included.
    pub damaged: u64,
    pub outstanding: u64,
    /// Σ `over_received` of the lines.
    pub surplus: u64,
    /// Σ `wrong_item` of the lines.
    pub wrong_item: u64,
    pub receipts: usize,
    pub voided_receipts: usize,
    pub duplicates: Vec<PossibleDuplicate>,
}

/// Derives totals, status and possible duplicates.
pub fn summarize(shipment: &Shipment) -> Summary {
    let active: Vec<&Receipt> = shipment.active_receipts().collect();
    let mut by_line: BTreeMap<&LineId, Vec<&Receipt>> = BTreeMap::new();
    for r in &active {
        by_line.entry(&r.line_id).or_default().push(r);
    }

    let lines: Vec<LineTotals> = shipment
        .lines
        .values()
        .map(|line| {
            let receipts = by_line.get(&line.id).map(Vec::as_slice).unwrap_or(&[]);
            let count = |c: Condition| -> u64 {
                receipts
                    .iter()
                    .filter(|r| r.condition == c)
                    .map(|r| r.quantity)
                    .sum()
            };
            let (good, damaged, missing_parts, wrong_item) = (
                count(Condition::Good),
                count(Condition::Damaged),
                count(Condition::MissingParts),
                count(Condition::WrongItem),
            );
            let received = good + damaged + missing_parts;
            let expected_serials: BTreeSet<&str> =
                line.serials_expected.iter().map(String::as_str).collect();
            let seen_serials: BTreeSet<&str> = receipts
                .iter()
                .filter(|r| r.condition != Condition::WrongItem)
                .flat_map(|r| r.serials.iter().map(String::as_str))
                .collect();
            let serials_unexpected = if expected_serials.is_empty() {
                Vec::new()
            } else {
                seen_serials
                    .difference(&expected_serials)
                    .map(|s| s.to_string())
                    .collect()
            };
            let received_against_expected = received.min(line.quantity_expected);
            LineTotals {
                line_id: line.id.clone(),
                expected: line.quantity_expected,
                received,
                received_against_expected,
                good,
                damaged,
                missing_parts,
                wrong_item,
                outstanding: line.quantity_expected - received_against_expected,
                over_received: received.saturating_sub(line.quantity_expected),
                serials_missing: expected_serials
                    .difference(&seen_serials)
                    .map(|s| s.to_string())
                    .collect(),
                serials_unexpected,
            }
        })
        .collect();

    let status = if active.iter().all(|r| r.quantity == 0) {
        Status::Awaiting
    } else if lines.iter().any(LineTotals::has_discrepancy) {
        Status::Discrepancy
    } else if lines.iter().all(|l| l.outstanding == 0) {
        Status::Complete
    } else {
        Status::Partial
    };

    Summary {
        status,
        expected: lines.iter().map(|l| l.expected).sum(),
        received: lines.iter().map(|l| l.received_against_expected).sum(),
        damaged: lines.iter().map(|l| l.damaged + l.missing_parts).sum(),
        outstanding: lines.iter().map(|l| l.outstanding).sum(),
        surplus: lines.iter().map(|l| l.over_received).sum(),
        wrong_item: lines.iter().map(|l| l.wrong_item).sum(),
        receipts: active.len(),
        voided_receipts: shipment.receipts.len() - active.len(),
        duplicates: duplicates(&by_line),
        lines,
    }
}

/// Possible duplicates on each line, found through indexes (by serial
/// number, and by quantity, recorder and time) rather than by comparing
/// every pair of a line's receipts: a line of thousands of receipts costs
/// about what its duplicates do. The pairs, their order and their reasons
/// are exactly those of comparing every pair `(a, b)`, `a` before `b` in
/// the line's order (`duplicates_pairwise` in the tests is that oracle).
fn duplicates(by_line: &BTreeMap<&LineId, Vec<&Receipt>>) -> Vec<PossibleDuplicate> {
    let mut out = Vec::new();
    for (line_id, receipts) in by_line {
        let mut pairs: BTreeMap<(usize, usize), DuplicateReason> = BTreeMap::new();
        for (i, j) in sharing_serials(receipts) {
            let (a, b) = (receipts[i], receipts[j]);
            let shared: Vec<String> = a
                .serials
                .iter()
                .filter(|s| b.serials.contains(s))
                .cloned()
                .collect();
            pairs.insert((i, j), DuplicateReason::SameSerials { serials: shared });
        }
        for (i, j) in similar_and_close(receipts) {
            // A shared serial says more; `a` must have counted something.
            if receipts[i].quantity > 0 {
                pairs
                    .entry((i, j))
                    .or_insert(DuplicateReason::SimilarQuantity);
            }
        }
        out.extend(pairs.into_iter().map(|((i, j), reason)| PossibleDuplicate {
            line_id: (*line_id).clone(),
            first: receipts[i].id.clone(),
            second: receipts[j].id.clone(),
            reason,
        }));
    }
    out
}

/// Pairs `(i, j)`, `i < j`, of receipts listing a serial number in common.
fn sharing_serials(receipts: &[&Receipt]) -> BTreeSet<(usize, usize)> {
    let mut by_serial: std::collections::HashMap<&str, Vec<usize>> =
        std::collections::HashMap::new();
    for (i, r) in receipts.iter().enumerate() {
        for s in &r.serials {
            let holders = by_serial.entry(s.as_str()).or_default();
            if holders.last() != Some(&i) {
                holders.push(i);
            }
        }
    }
    let mut pairs = BTreeSet::new();
    for holders in by_serial.values() {
        for (x, &i) in holders.iter().enumerate() {
            for &j in &holders[x + 1..] {
                pairs.insert((i.min(j), i.max(j)));
            }
        }
    }
    pairs
}

/// Pairs `(i, j)`, `i < j`, of receipts by different people with similar
/// quantities recorded within [`DUPLICATE_WINDOW_MS`] of each other. Each
/// receipt looks only at the quantities that can be similar to its own,
/// and there only at other people's receipts inside its time window.
fn similar_and_close(receipts: &[&Receipt]) -> Vec<(usize, usize)> {
    // quantity -> recorder -> (recorded_at, index), sorted.
    type ByTime = Vec<(i64, usize)>;
    let mut index: BTreeMap<u64, BTreeMap<&str, ByTime>> = BTreeMap::new();
    for (i, r) in receipts.iter().enumerate() {
        index
            .entry(r.quantity)
            .or_default()
            .entry(r.recorded_by.as_str())
            .or_default()
            .push((r.recorded_at, i));
    }
    for by_recorder in index.values_mut() {
        for times in by_recorder.values_mut() {
            times.sort_unstable();
        }
    }
    let mut pairs = Vec::new();
    for (i, a) in receipts.iter().enumerate() {
        // similar(q, p) implies p within [q - q/9 - 1, q + q/9 + 1]:
        // |q - p| <= max(q, p) / 10 + 1 <= (q + |q - p|) / 10 + 1.
        let reach = a.quantity / 9 + 1;
        let low = a.quantity.saturating_sub(reach);
        let high = a.quantity.saturating_add(reach);
        let from = a.recorded_at.saturating_sub(DUPLICATE_WINDOW_MS);
        let to = a.recorded_at.saturating_add(DUPLICATE_WINDOW_MS);
        for (&quantity, by_recorder) in index.range(low..=high) {
            if !similar(a.quantity, quantity) {
                continue;
            }
            for (recorder, times) in by_recorder {
                if *recorder == a.recorded_by.as_str() {
                    continue;
                }
                let start = times.partition_point(|&(t, _)| t < from);
                for &(t, j) in &times[start..] {
                    if t > to {
                        break;
                    }
                    if j > i {
                        pairs.push((i, j));
                    }
                }
            }
        }
    }
    pairs
}

/// Within 10% (at least one unit) of each other.
fn similar(a: u64, b: u64) -> bool {
    let tolerance = (a.max(b) / 10).max(1);
    a.abs_diff(b) <= tolerance
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DeviceId, UserId};
    use proptest::prelude::*;

    /// The definition: every pair of a line's receipts compared.
    fn duplicates_pairwise(by_line: &BTreeMap<&LineId, Vec<&Receipt>>) -> Vec<PossibleDuplicate> {
        let mut out = Vec::new();
        for (line_id, receipts) in by_line {
            for (i, a) in receipts.iter().enumerate() {
                for b in &receipts[i + 1..] {
                    let shared: Vec<String> = a
                        .serials
                        .iter()
                        .filter(|s| b.serials.contains(s))
                        .cloned()
                        .collect();
                    let reason = if !shared.is_empty() {
                        Some(DuplicateReason::SameSerials { serials: shared })
                    } else if a.recorded_by != b.recorded_by
                        && a.quantity > 0
                        && similar(a.quantity, b.quantity)
                        && (a.recorded_at - b.recorded_at).abs() <= DUPLICATE_WINDOW_MS
                    {
                        Some(DuplicateReason::SimilarQuantity)
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        out.push(PossibleDuplicate {
                            line_id: (*line_id).clone(),
                            first: a.id.clone(),
                            second: b.id.clone(),
                            reason,
                        });
                    }
                }
            }
        }
        out
    }

    fn receipt(
        n: usize,
        line: u8,
        quantity: u64,
        who: u8,
        hours: i64,
        serials: Vec<u8>,
    ) -> Receipt {
        Receipt {
            id: ReceiptId::parse(format!("r{n:04}")).unwrap_or_else(|e| panic!("{e}")),
            line_id: LineId::parse(format!("l{line}")).unwrap_or_else(|e| panic!("{e}")),
            quantity,
            condition: Condition::Good,
            serials: serials.iter().map(|s| format!("SN-{s}")).collect(),
            note: String::new(),
            recorded_by: UserId::parse(format!("user{who}")).unwrap_or_else(|e| panic!("{e}")),
            device_id: DeviceId::parse("phone").unwrap_or_else(|e| panic!("{e}")),
            // Around the window's edge, in minutes.
            recorded_at: 1_790_000_000_000 + hours * 6 * 60_000,
            voids: None,
            stage: None,
            reason: None,
            delivery_id: None,
        }
    }

    proptest! {
        #[test]
        fn indexed_duplicates_are_the_pairwise_ones(
            spec in proptest::collection::vec(
                (0..2u8, prop_oneof![0..4u64, 8..14u64, 90..112u64], 0..3u8, 0..300i64,
                 proptest::collection::vec(0..6u8, 0..3)),
                0..40,
            )
        ) {
            let receipts: Vec<Receipt> = spec
                .into_iter()
                .enumerate()
                .map(|(n, (line, q, who, t, serials))| receipt(n, line, q, who, t, serials))
                .collect();
            let mut by_line: BTreeMap<&LineId, Vec<&Receipt>> = BTreeMap::new();
            for r in &receipts {
                by_line.entry(&r.line_id).or_default().push(r);
            }
            prop_assert_eq!(duplicates(&by_line), duplicates_pairwise(&by_line));
        }
    }
}
