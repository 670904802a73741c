//! Flat rows derived from one shipment, for coordinators' queries and
//! reports. The server stores them in SQL tables beside each accepted sync,
//! so a dashboard over ten thousand shipments never loads a document; the
//! same function rebuilds them from the documents, which is how the tests
//! prove the tables are only ever a cache of what the documents say.
//!
//! Numbers are `i64` because that is what SQL stores (saturating: no real
//! shipment comes near).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::derive::{DuplicateReason, LineTotals, Status, Summary};
use crate::ids::{AttachmentId, ReceiptId};
use crate::model::{AttachmentEvent, Condition, REMOVAL_KIND, Receipt, Shipment, Verdict};

/// One shipment, with its totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRow {
    pub id: String,
    pub facility_id: String,
    pub donor: String,
    pub programme: String,
    pub reference: String,
    pub expected_on: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub status: String,
    pub expected: i64,
    pub received: i64,
    /// Damaged or with missing parts.
    pub damaged: i64,
    pub outstanding: i64,
    /// Receipts that count (not voided).
    pub receipts: i64,
    pub voided_receipts: i64,
    pub duplicates: i64,
    pub conflicts: i64,
    /// Discrepancies no review has settled yet.
    pub open_discrepancies: i64,
    /// When the latest receipt that counts was recorded on a phone.
    pub last_receipt_at: Option<i64>,
}

/// One manifest line with what arrived against it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRow {
    pub shipment_id: String,
    pub line_id: String,
    pub item: String,
    pub category: String,
    pub unit: String,
    pub expected: i64,
    pub received: i64,
    pub good: i64,
    pub damaged: i64,
    pub missing_parts: i64,
    pub wrong_item: i64,
    pub outstanding: i64,
    pub over_received: i64,
    pub serials_expected: Vec<String>,
    pub serials_missing: Vec<String>,
    pub serials_unexpected: Vec<String>,
}

/// One receipt, voided or not, with when it reached the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRow {
    pub shipment_id: String,
    pub receipt_id: String,
    pub line_id: String,
    pub quantity: i64,
    pub condition: String,
    pub serials: Vec<String>,
    pub note: String,
    pub recorded_by: String,
    pub device_id: String,
    /// When the phone recorded it (ms since epoch).
    pub recorded_at: i64,
    /// When the server stored it, if known.
    pub received_at: Option<i64>,
    pub voided: bool,
    pub voids: Option<String>,
}

/// What kind of thing is wrong on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// Units still outstanding on a shipment that has started to arrive.
    Missing,
    /// Units damaged or with missing parts.
    Damaged,
    /// Units that are not the item on the manifest.
    WrongItem,
    /// More units than the manifest lists.
    OverReceived,
    /// Serial numbers on receipts that the manifest does not list.
    SerialsUnexpected,
    /// Every unit counted, yet some listed serial numbers never seen.
    SerialsMissing,
}

impl DiscrepancyKind {
    pub const ALL: [DiscrepancyKind; 6] = [
        DiscrepancyKind::Missing,
        DiscrepancyKind::Damaged,
        DiscrepancyKind::WrongItem,
        DiscrepancyKind::OverReceived,
        DiscrepancyKind::SerialsUnexpected,
        DiscrepancyKind::SerialsMissing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::Missing => "missing",
            DiscrepancyKind::Damaged => "damaged",
            DiscrepancyKind::WrongItem => "wrong_item",
            DiscrepancyKind::OverReceived => "over_received",
            DiscrepancyKind::SerialsUnexpected => "serials_unexpected",
            DiscrepancyKind::SerialsMissing => "serials_missing",
        }
    }

    pub fn parse(s: &str) -> Option<DiscrepancyKind> {
        DiscrepancyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Something on a line that does not match the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyRow {
    pub shipment_id: String,
    pub line_id: String,
    pub kind: String,
    /// Units concerned (serials concerned, for the serial kinds).
    pub quantity: i64,
    pub serials: Vec<String>,
    /// The receipts that show it (none for what is absent).
    pub receipts: Vec<String>,
    /// Coordinators' reviews have settled it: for every receipt concerned,
    /// the latest review with a verdict that names it has a verdict that
    /// settles ([`crate::model::Verdict::settles`]: approved or rejected,
    /// not "has issues"); for what is absent, the latest review of the whole
    /// shipment with a verdict settles and came after the line's latest
    /// receipt.
    pub resolved: bool,
}

/// Two receipts that may be one delivery counted twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRow {
    pub shipment_id: String,
    pub line_id: String,
    pub first: String,
    pub second: String,
    /// `same_serials` or `similar_quantity`.
    pub reason: String,
    pub serials: Vec<String>,
}

/// A field two people edited at once; the document keeps one value and
/// this row lists them all, for a coordinator to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRow {
    pub shipment_id: String,
    pub path: String,
    pub values: Vec<String>,
}

/// One attachment event: a file attached (with whether it was removed
/// since) or a removal. The server decides from these rows who may upload
/// and download a file's bytes: anyone who may see a shipment whose rows
/// name its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRow {
    pub shipment_id: String,
    pub attachment_id: String,
    /// `photo`, `document`, `signature` or `removal`.
    pub kind: String,
    /// The receipt it is on; `None` for the shipment as a whole.
    pub receipt_id: Option<String>,
    pub sha256: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<i64>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub signer_name: Option<String>,
    pub signer_role: Option<String>,
    /// For a removal: the attachment it removes.
    pub removes: Option<String>,
    /// A file some later event removed.
    pub removed: bool,
    pub note: String,
    pub recorded_by: String,
    pub device_id: String,
    pub recorded_at: i64,
}

/// Every row derived from one shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    pub shipment: ShipmentRow,
    pub lines: Vec<LineRow>,
    pub receipts: Vec<ReceiptRow>,
    pub discrepancies: Vec<DiscrepancyRow>,
    pub duplicates: Vec<DuplicateRow>,
    pub conflicts: Vec<ConflictRow>,
    pub attachments: Vec<AttachmentRow>,
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Derives the rows of `shipment`, whose figures are `summary`
/// ([`crate::derive::summarize`]). `received_at` says when a receipt
/// reached the server (the server knows from its change log).
pub fn project(
    shipment: &Shipment,
    summary: &Summary,
    received_at: impl Fn(&ReceiptId) -> Option<i64>,
) -> Projection {
    let id = shipment.header.id.to_string();
    let voided = shipment.voided();
    let active: Vec<&Receipt> = shipment.active_receipts().collect();

    let lines = shipment
        .lines
        .values()
        .zip(&summary.lines)
        .map(|(line, t)| LineRow {
            shipment_id: id.clone(),
            line_id: line.id.to_string(),
            item: line.item.clone(),
            category: line.category.clone(),
            unit: line.unit.clone(),
            expected: n(t.expected),
            received: n(t.received),
            good: n(t.good),
            damaged: n(t.damaged),
            missing_parts: n(t.missing_parts),
            wrong_item: n(t.wrong_item),
            outstanding: n(t.outstanding),
            over_received: n(t.over_received),
            serials_expected: line.serials_expected.clone(),
            serials_missing: t.serials_missing.clone(),
            serials_unexpected: t.serials_unexpected.clone(),
        })
        .collect();

    let receipts = shipment
        .receipts
        .values()
        .map(|r| ReceiptRow {
            shipment_id: id.clone(),
            receipt_id: r.id.to_string(),
            line_id: r.line_id.to_string(),
            quantity: n(r.quantity),
            condition: r.condition.as_str().to_owned(),
            serials: r.serials.clone(),
            note: r.note.clone(),
            recorded_by: r.recorded_by.to_string(),
            device_id: r.device_id.to_string(),
            recorded_at: r.recorded_at,
            received_at: received_at(&r.id),
            voided: voided.contains(&r.id),
            voids: r.voids.as_ref().map(ToString::to_string),
        })
        .collect();

    let discrepancies = discrepancies(shipment, summary, &active);
    let duplicates = summary
        .duplicates
        .iter()
        .map(|d| {
            let (reason, serials) = match &d.reason {
                DuplicateReason::SameSerials { serials } => ("same_serials", serials.clone()),
                DuplicateReason::SimilarQuantity => ("similar_quantity", Vec::new()),
            };
            DuplicateRow {
                shipment_id: id.clone(),
                line_id: d.line_id.to_string(),
                first: d.first.to_string(),
                second: d.second.to_string(),
                reason: reason.to_owned(),
                serials,
            }
        })
        .collect::<Vec<_>>();
    let conflicts = shipment
        .conflicts
        .iter()
        .map(|c| ConflictRow {
            shipment_id: id.clone(),
            path: c.path.clone(),
            values: c.values.iter().map(|v| v.value.clone()).collect(),
        })
        .collect::<Vec<_>>();

    let h = &shipment.header;
    Projection {
        shipment: ShipmentRow {
            id: id.clone(),
            facility_id: h.destination_facility.to_string(),
            donor: h.donor.clone(),
            programme: h.programme.clone(),
            reference: h.reference.clone(),
            expected_on: h.expected_on.clone(),
            created_by: h.created_by.to_string(),
            created_at: h.created_at,
            status: summary.status.as_str().to_owned(),
            expected: n(summary.expected),
            received: n(summary.received),
            damaged: n(summary.damaged),
            outstanding: n(summary.outstanding),
            receipts: n(summary.receipts as u64),
            voided_receipts: n(summary.voided_receipts as u64),
            duplicates: n(duplicates.len() as u64),
            conflicts: n(conflicts.len() as u64),
            open_discrepancies: n(discrepancies.iter().filter(|d| !d.resolved).count() as u64),
            last_receipt_at: active.iter().map(|r| r.recorded_at).max(),
        },
        lines,
        receipts,
        discrepancies,
        duplicates,
        conflicts,
        attachments: attachment_rows(shipment, &id),
    }
}

/// The attachment rows of a shipment (also what the detail view lists).
pub fn attachment_rows(shipment: &Shipment, id: &str) -> Vec<AttachmentRow> {
    let active: BTreeSet<&AttachmentId> = shipment.active_attachments().map(|a| &a.id).collect();
    shipment
        .attachments
        .values()
        .map(|a| {
            let mut row = AttachmentRow {
                shipment_id: id.to_owned(),
                attachment_id: a.id.to_string(),
                note: a.note.clone(),
                recorded_by: a.recorded_by.to_string(),
                device_id: a.device_id.to_string(),
                recorded_at: a.recorded_at,
                ..AttachmentRow::default()
            };
            match &a.event {
                AttachmentEvent::File {
                    file_kind,
                    receipt_id,
                    file,
                    signer,
                    ..
                } => {
                    row.kind = file_kind.as_str().to_owned();
                    row.receipt_id = receipt_id.as_ref().map(ToString::to_string);
                    row.sha256 = Some(file.sha256.clone());
                    row.media_type = Some(file.media_type.clone());
                    row.size = Some(n(file.size));
                    row.width = file.width.map(n);
                    row.height = file.height.map(n);
                    row.signer_name = signer.as_ref().map(|s| s.name.clone());
                    row.signer_role = signer.as_ref().map(|s| s.role.clone());
                    row.removed = !active.contains(&a.id);
                }
                AttachmentEvent::Removal { removes } => {
                    row.kind = REMOVAL_KIND.to_owned();
                    row.removes = Some(removes.to_string());
                }
            }
            row
        })
        .collect()
}

fn discrepancies(
    shipment: &Shipment,
    summary: &Summary,
    active: &[&Receipt],
) -> Vec<DiscrepancyRow> {
    // The latest verdict decides: per named receipt, and for the shipment
    // as a whole; a later "has issues" reopens what an approval settled.
    let mut judged: Vec<_> = shipment
        .reviews
        .values()
        .filter_map(|r| r.verdict.map(|v| (r, v)))
        .collect();
    judged.sort_by_key(|(r, _)| (r.at, r.id.clone()));
    let mut latest_on: BTreeMap<&ReceiptId, Verdict> = BTreeMap::new();
    let mut whole: Option<(i64, Verdict)> = None;
    for (review, verdict) in judged {
        if review.resolves.is_empty() {
            whole = Some((review.at, verdict));
        }
        for receipt in &review.resolves {
            latest_on.insert(receipt, verdict);
        }
    }
    let resolved_receipts: BTreeSet<&ReceiptId> = latest_on
        .into_iter()
        .filter(|(_, v)| v.settles())
        .map(|(r, _)| r)
        .collect();
    let whole_review_at = whole.filter(|(_, v)| v.settles()).map(|(at, _)| at);

    let mut out = Vec::new();
    for t in &summary.lines {
        let on_line: Vec<&Receipt> = active
            .iter()
            .copied()
            .filter(|r| r.line_id == t.line_id)
            .collect();
        let latest = on_line.iter().map(|r| r.recorded_at).max();
        let mut push = |kind: DiscrepancyKind,
                        quantity: u64,
                        serials: Vec<String>,
                        receipts: Vec<&Receipt>| {
            let resolved = if receipts.is_empty() {
                whole_review_at.is_some_and(|at| latest.is_none_or(|l| at >= l))
            } else {
                receipts.iter().all(|r| resolved_receipts.contains(&r.id))
            };
            out.push(DiscrepancyRow {
                shipment_id: shipment.header.id.to_string(),
                line_id: t.line_id.to_string(),
                kind: kind.as_str().to_owned(),
                quantity: n(quantity),
                serials,
                receipts: receipts.iter().map(|r| r.id.to_string()).collect(),
                resolved,
            });
        };
        let with = |conditions: &[Condition]| -> Vec<&Receipt> {
            on_line
                .iter()
                .copied()
                .filter(|r| conditions.contains(&r.condition) && r.quantity > 0)
                .collect()
        };
        if t.outstanding > 0 && summary.status != Status::Awaiting {
            push(
                DiscrepancyKind::Missing,
                t.outstanding,
                t.serials_missing.clone(),
                Vec::new(),
            );
        }
        if t.damaged + t.missing_parts > 0 {
            let receipts = with(&[Condition::Damaged, Condition::MissingParts]);
            push(
                DiscrepancyKind::Damaged,
                t.damaged + t.missing_parts,
                Vec::new(),
                receipts,
            );
        }
        if t.wrong_item > 0 {
            push(
                DiscrepancyKind::WrongItem,
                t.wrong_item,
                Vec::new(),
                with(&[Condition::WrongItem]),
            );
        }
        if t.over_received > 0 {
            let receipts = with(&[Condition::Good, Condition::Damaged, Condition::MissingParts]);
            push(
                DiscrepancyKind::OverReceived,
                t.over_received,
                Vec::new(),
                receipts,
            );
        }
        if !t.serials_unexpected.is_empty() {
            let receipts = on_line
                .iter()
                .copied()
                .filter(|r| r.condition != Condition::WrongItem)
                .filter(|r| r.serials.iter().any(|s| t.serials_unexpected.contains(s)))
                .collect();
            push(
                DiscrepancyKind::SerialsUnexpected,
                t.serials_unexpected.len() as u64,
                t.serials_unexpected.clone(),
                receipts,
            );
        }
        if serials_missing_matter(t) {
            push(
                DiscrepancyKind::SerialsMissing,
                t.serials_missing.len() as u64,
                t.serials_missing.clone(),
                Vec::new(),
            );
        }
    }
    out
}

/// Listed serials never seen matter once every unit is counted; before
/// that, they are simply what is still to come (reported as missing).
fn serials_missing_matter(t: &LineTotals) -> bool {
    t.outstanding == 0 && !t.serials_missing.is_empty()
}
