//! Warnings before a receipt is saved. Each is a discrepancy or possible
//! duplicate the coordinator would otherwise find days later, told to the
//! receiver standing at the crate, where fixing it takes seconds. The phone
//! shows them before Save; the receiver may still save (reality wins).
//!
//! Decided here, from the same figures as [`crate::derive`], so what the
//! phone warns about and what the server lists as a discrepancy agree.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::derive::summarize;
use crate::ids::{ReceiptId, UserId};
use crate::model::{Condition, NewReceipt, Shipment};

/// One thing about a receipt that is probably a mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceiptWarning {
    /// More units than the line still expects: the rest is surplus.
    MoreThanOutstanding { quantity: u64, outstanding: u64 },
    /// Serial numbers the manifest does not list (the line lists some).
    SerialsNotOnManifest { serials: Vec<String> },
    /// Serial numbers an earlier receipt on this shipment already has: a
    /// serial arrives once.
    SerialsAlreadyReceived {
        serials: Vec<String>,
        earlier: Vec<EarlierReceipt>,
    },
    /// A line with listed serials, and a different number of serials than
    /// units.
    SerialCountDiffers { quantity: u64, serials: u64 },
}

/// A receipt a warning points to, as a person recognises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierReceipt {
    pub id: ReceiptId,
    pub recorded_by: UserId,
    pub recorded_at: i64,
}

/// What is probably wrong with `receipt` if it were added to `shipment` as
/// the phone knows it. Empty for a receipt that only cancels another
/// (quantity 0), and for a unit of the wrong item (it is not counted
/// against the line).
pub fn receipt_warnings(shipment: &Shipment, receipt: &NewReceipt) -> Vec<ReceiptWarning> {
    if receipt.quantity == 0 || receipt.condition == Condition::WrongItem {
        return Vec::new();
    }
    let Some(line) = shipment.lines.get(&receipt.line_id) else {
        return Vec::new();
    };
    // A correction replaces the receipt it voids: judge it without that one.
    let mut before = shipment.clone();
    if let Some(voided) = &receipt.voids {
        before.receipts.remove(voided);
    }
    let mut warnings = Vec::new();

    let summary = summarize(&before);
    let outstanding = summary
        .lines
        .iter()
        .find(|l| l.line_id == receipt.line_id)
        .map_or(0, |l| l.outstanding);
    if receipt.quantity > outstanding {
        warnings.push(ReceiptWarning::MoreThanOutstanding {
            quantity: receipt.quantity,
            outstanding,
        });
    }

    let serials: BTreeSet<&str> = receipt
        .serials
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if !line.serials_expected.is_empty() {
        let not_listed: Vec<String> = serials
            .iter()
            .filter(|s| !line.serials_expected.iter().any(|e| e == *s))
            .map(|s| s.to_string())
            .collect();
        if !not_listed.is_empty() {
            warnings.push(ReceiptWarning::SerialsNotOnManifest {
                serials: not_listed,
            });
        }
        if serials.len() as u64 != receipt.quantity {
            warnings.push(ReceiptWarning::SerialCountDiffers {
                quantity: receipt.quantity,
                serials: serials.len() as u64,
            });
        }
    }

    let mut repeated: BTreeSet<String> = BTreeSet::new();
    let mut earlier = Vec::new();
    for other in before.active_receipts() {
        let shared: Vec<&String> = other
            .serials
            .iter()
            .filter(|s| serials.contains(s.as_str()))
            .collect();
        if !shared.is_empty() {
            repeated.extend(shared.into_iter().cloned());
            earlier.push(EarlierReceipt {
                id: other.id.clone(),
                recorded_by: other.recorded_by.clone(),
                recorded_at: other.recorded_at,
            });
        }
    }
    if !repeated.is_empty() {
        earlier.sort_by_key(|e| e.recorded_at);
        warnings.push(ReceiptWarning::SerialsAlreadyReceived {
            serials: repeated.into_iter().collect(),
            earlier,
        });
    }
    warnings
}
