//! The donor's discrepancy report: every discrepancy of a shipment, open or
//! settled, with what the receivers recorded about it (condition, stage,
//! reason, note), the coordinators' reviews of it and the files that show
//! it, as a donor needs it to follow up with a supplier or a transporter.
//!
//! Derived from the shipment like every other figure: the discrepancies
//! are the projection's ([`crate::projection`]), so the report, the
//! dashboard and the discrepancy list never disagree.

use serde::{Deserialize, Serialize};

use crate::derive::summarize;
use crate::model::{
    AttachmentEvent, Condition, FileKind, Reason, Receipt, Review, Shipment, Stage,
};
use crate::projection::project;

/// What a receiver recorded about a discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub receipt_id: String,
    pub recorded_by: String,
    pub recorded_at: i64,
    pub quantity: u64,
    pub condition: Condition,
    pub stage: Stage,
    /// `None` on receipts recorded before reasons existed.
    pub reason: Option<Reason>,
    pub note: String,
    pub serials: Vec<String>,
}

/// A file attached to a receipt that shows a discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReference {
    pub attachment_id: String,
    pub receipt_id: String,
    pub kind: FileKind,
    pub sha256: String,
    pub media_type: String,
    pub caption: String,
}

/// One discrepancy, with everything recorded about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonorDiscrepancy {
    pub line_id: String,
    pub item: String,
    pub category: String,
    pub unit: String,
    /// missing, damaged, wrong_item, over_received, serials_unexpected or
    /// serials_missing (the projection's kinds).
    pub kind: String,
    pub quantity: i64,
    pub serials: Vec<String>,
    /// Settled by the coordinators' reviews (see the projection's rule).
    pub settled: bool,
    pub evidence: Vec<Evidence>,
    /// Reviews that name one of its receipts, or, for what is absent
    /// (missing units or serials), reviews of the whole shipment; oldest
    /// first.
    pub reviews: Vec<Review>,
    pub files: Vec<FileReference>,
}

/// Every discrepancy of `shipment`, open ones first, then by line.
pub fn donor_discrepancies(shipment: &Shipment) -> Vec<DonorDiscrepancy> {
    let rows = project(shipment, &summarize(shipment), |_| None).discrepancies;
    let mut out: Vec<DonorDiscrepancy> = rows
        .into_iter()
        .map(|row| {
            let line = shipment
                .lines
                .values()
                .find(|l| l.id.as_str() == row.line_id);
            let receipts: Vec<&Receipt> = row
                .receipts
                .iter()
                .filter_map(|id| shipment.receipts.values().find(|r| r.id.as_str() == id))
                .collect();
            let absent = receipts.is_empty();
            let mut reviews: Vec<Review> = shipment
                .reviews
                .values()
                .filter(|review| {
                    if absent {
                        review.resolves.is_empty()
                    } else {
                        review
                            .resolves
                            .iter()
                            .any(|r| row.receipts.contains(&r.to_string()))
                    }
                })
                .cloned()
                .collect();
            reviews.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
            let files = shipment
                .active_attachments()
                .filter_map(|a| match &a.event {
                    AttachmentEvent::File {
                        file_kind,
                        receipt_id: Some(r),
                        file,
                        ..
                    } if row.receipts.contains(&r.to_string()) => Some(FileReference {
                        attachment_id: a.id.to_string(),
                        receipt_id: r.to_string(),
                        kind: *file_kind,
                        sha256: file.sha256.clone(),
                        media_type: file.media_type.clone(),
                        caption: a.note.clone(),
                    }),
                    _ => None,
                })
                .collect();
            DonorDiscrepancy {
                item: line.map(|l| l.item.clone()).unwrap_or_default(),
                category: line.map(|l| l.category.clone()).unwrap_or_default(),
                unit: line.map(|l| l.unit.clone()).unwrap_or_default(),
                evidence: receipts
                    .iter()
                    .map(|r| Evidence {
                        receipt_id: r.id.to_string(),
                        recorded_by: r.recorded_by.to_string(),
                        recorded_at: r.recorded_at,
                        quantity: r.quantity,
                        condition: r.condition,
                        stage: r.stage(),
                        reason: r.reason,
                        note: r.note.clone(),
                        serials: r.serials.clone(),
                    })
                    .collect(),
                line_id: row.line_id,
                kind: row.kind,
                quantity: row.quantity,
                serials: row.serials,
                settled: row.resolved,
                reviews,
                files,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.settled, &a.line_id).cmp(&(b.settled, &b.line_id)));
    out
}
