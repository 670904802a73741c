//! The donor's discrepancy report, for one shipment or every shipment a
//! report filter selects: the content is derived in
//! `aidsync_shared::donor`, written here as PDF or XLSX.

use aidsync_shared::donor::{DonorDiscrepancy, donor_discrepancies};
use aidsync_shared::ids::ShipmentId;
use aidsync_shared::model::Header;
use serde::Serialize;

use super::export::{rows_table, xlsx_table};
use crate::caller::Caller;
use crate::clock::format_utc;
use crate::error::AppError;
use crate::pdf::donor::{DonorShipment, render};
use crate::storage::{Db, ReportFilter};

/// Most shipments one report covers: each document is loaded and read.
/// A coordinator who needs more narrows the filter (413 says so).
pub const MAX_REPORT_SHIPMENTS: usize = 2_000;

/// What the report is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DonorFormat {
    Pdf,
    Xlsx,
}

impl DonorFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            DonorFormat::Pdf => "application/pdf",
            DonorFormat::Xlsx => super::export::FileFormat::Xlsx.content_type(),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            DonorFormat::Pdf => "pdf",
            DonorFormat::Xlsx => "xlsx",
        }
    }
}

/// Reports written at once: each reads documents and lays out pages.
static WRITING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The report for one shipment; 404 for one the caller may not see.
pub async fn for_shipment(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
    format: DonorFormat,
    now_ms: i64,
) -> Result<Vec<u8>, AppError> {
    let shipments = vec![load(db, caller, id).await?];
    write(shipments, format, now_ms).await
}

/// The report for every shipment `filter` selects, in the caller's scope.
pub async fn for_filter(
    db: &Db,
    caller: &Caller,
    filter: &ReportFilter,
    format: DonorFormat,
    now_ms: i64,
) -> Result<Vec<u8>, AppError> {
    let rows = super::reports::shipments(db, caller, filter).await?;
    if rows.len() > MAX_REPORT_SHIPMENTS {
        return Err(AppError::PayloadTooLarge(format!(
            "the filter selects {} shipments; a donor report covers at most {MAX_REPORT_SHIPMENTS}: narrow the filter",
            rows.len()
        )));
    }
    let mut shipments = Vec::with_capacity(rows.len());
    for row in rows {
        let id = ShipmentId::parse(&row.id).map_err(|e| {
            AppError::Internal(anyhow::anyhow!("stored shipment id {}: {e}", row.id))
        })?;
        shipments.push(load(db, caller, &id).await?);
    }
    write(shipments, format, now_ms).await
}

async fn load(db: &Db, caller: &Caller, id: &ShipmentId) -> Result<DonorShipment, AppError> {
    let (shipment, facility_name) = super::shipments::read_visible(db, caller, id).await?;
    let discrepancies = donor_discrepancies(&shipment);
    Ok(DonorShipment {
        facility_name,
        file_names: discrepancies
            .iter()
            .map(|d| file_names(id.as_str(), d))
            .collect(),
        discrepancies,
        header: shipment.header,
    })
}

fn file_names(shipment: &str, d: &DonorDiscrepancy) -> Vec<String> {
    d.files
        .iter()
        .map(|f| {
            super::attachments::export_file_name(
                shipment,
                Some(f.receipt_id.as_str()),
                &f.attachment_id,
                f.kind.as_str(),
                &f.media_type,
            )
        })
        .collect()
}

async fn write(
    shipments: Vec<DonorShipment>,
    format: DonorFormat,
    now_ms: i64,
) -> Result<Vec<u8>, AppError> {
    let _permit = WRITING
        .acquire()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("report semaphore: {e}")))?;
    tokio::task::spawn_blocking(move || match format {
        DonorFormat::Pdf => render(&shipments, now_ms).map_err(|e| AppError::Internal(e.into())),
        DonorFormat::Xlsx => {
            let rows: Vec<DonorRow> = shipments
                .iter()
                .flat_map(|s| s.discrepancies.iter().map(|d| row(s, d)))
                .collect();
            let (columns, rows) = if rows.is_empty() {
                rows_table(&[DonorRow::default()]).map(|(c, _)| (c, Vec::new()))?
            } else {
                rows_table(&rows)?
            };
            xlsx_table(&columns, &rows, "discrepancies")
        }
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("report task: {e}")))?
}

/// One discrepancy as a spreadsheet row: a donor filters and sorts these.
#[derive(Debug, Default, Serialize)]
struct DonorRow {
    shipment_id: String,
    reference: String,
    donor: String,
    programme: String,
    facility: String,
    item: String,
    category: String,
    kind: String,
    quantity: i64,
    unit: String,
    serials: Vec<String>,
    status: &'static str,
    /// Each receipt: who, when, how many, condition, stage, reason, note.
    recorded: Vec<String>,
    reasons: Vec<&'static str>,
    reviews: Vec<String>,
    /// Names as in the attachments ZIP (`<shipment>/<receipt>/<attachment>-<kind>.<ext>`).
    files: Vec<String>,
}

fn row(s: &DonorShipment, d: &DonorDiscrepancy) -> DonorRow {
    let h: &Header = &s.header;
    let mut reasons: Vec<&'static str> = d
        .evidence
        .iter()
        .filter_map(|e| e.reason.map(|r| r.as_str()))
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    DonorRow {
        shipment_id: h.id.to_string(),
        reference: h.reference.clone(),
        donor: h.donor.clone(),
        programme: h.programme.clone(),
        facility: s
            .facility_name
            .clone()
            .unwrap_or_else(|| h.destination_facility.to_string()),
        item: d.item.clone(),
        category: d.category.clone(),
        kind: d.kind.clone(),
        quantity: d.quantity,
        unit: d.unit.clone(),
        serials: d.serials.clone(),
        status: if d.settled { "settled" } else { "open" },
        recorded: d
            .evidence
            .iter()
            .map(|e| {
                let mut text = format!(
                    "{} {}: {} {}, {}",
                    e.recorded_by,
                    format_utc(e.recorded_at),
                    e.quantity,
                    e.condition.as_str(),
                    e.stage.as_str()
                );
                if let Some(r) = e.reason {
                    text.push_str(&format!(", reason {}", r.as_str()));
                }
                if !e.note.is_empty() {
                    text.push_str(&format!(": {}", e.note));
                }
                text
            })
            .collect(),
        reasons,
        reviews: d
            .reviews
            .iter()
            .map(|r| {
                let verdict = r.verdict.map_or("note", |v| v.as_str());
                format!("{} {}: {verdict}: {}", r.by, format_utc(r.at), r.note)
            })
            .collect(),
        files: file_names(h.id.as_str(), d),
    }
}
