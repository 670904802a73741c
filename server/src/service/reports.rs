//! Coordinator reports: the projections under a filter, within the
//! caller's scope. Nothing here loads a document.

use serde::Serialize;

use aidsync_shared::projection::{
    ConflictRow, DiscrepancyRow, DuplicateRow, LineRow, ReceiptRow, ShipmentRow,
};

use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Db, ReportFilter, TotalsRow};

/// Which rows a report holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shipments,
    Lines,
    Receipts,
    Discrepancies,
    Duplicates,
    Conflicts,
    TotalsByFacility,
    TotalsByCategory,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Shipments,
        Kind::Lines,
        Kind::Receipts,
        Kind::Discrepancies,
        Kind::Duplicates,
        Kind::Conflicts,
        Kind::TotalsByFacility,
        Kind::TotalsByCategory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Shipments => "shipments",
            Kind::Lines => "lines",
            Kind::Receipts => "receipts",
            Kind::Discrepancies => "discrepancies",
            Kind::Duplicates => "duplicates",
            Kind::Conflicts => "conflicts",
            Kind::TotalsByFacility => "totals-by-facility",
            Kind::TotalsByCategory => "totals-by-category",
        }
    }

    pub fn parse(name: &str) -> Result<Kind, AppError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                AppError::NotFound(format!("no report {name:?}; reports: {}", names.join(", ")))
            })
    }
}

/// A report's rows (a JSON array of one row type).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    Shipments(Vec<ShipmentRow>),
    Lines(Vec<LineRow>),
    Receipts(Vec<ReceiptRow>),
    Discrepancies(Vec<DiscrepancyRow>),
    Duplicates(Vec<DuplicateRow>),
    Conflicts(Vec<ConflictRow>),
    Totals(Vec<TotalsRow>),
}

impl Report {
    pub fn len(&self) -> usize {
        match self {
            Report::Shipments(r) => r.len(),
            Report::Lines(r) => r.len(),
            Report::Receipts(r) => r.len(),
            Report::Discrepancies(r) => r.len(),
            Report::Duplicates(r) => r.len(),
            Report::Conflicts(r) => r.len(),
            Report::Totals(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A report of the same kind holding one blank row: what names the
    /// columns of a report with no rows.
    pub fn blank(&self) -> Report {
        match self {
            Report::Shipments(_) => Report::Shipments(vec![Default::default()]),
            Report::Lines(_) => Report::Lines(vec![Default::default()]),
            Report::Receipts(_) => Report::Receipts(vec![Default::default()]),
            Report::Discrepancies(_) => Report::Discrepancies(vec![Default::default()]),
            Report::Duplicates(_) => Report::Duplicates(vec![Default::default()]),
            Report::Conflicts(_) => Report::Conflicts(vec![Default::default()]),
            Report::Totals(_) => Report::Totals(vec![Default::default()]),
        }
    }
}

/// Shipments the caller may see, under `filter`, newest first.
pub async fn shipments(
    db: &Db,
    caller: &Caller,
    filter: &ReportFilter,
) -> Result<Vec<ShipmentRow>, AppError> {
    Ok(db.list_shipments(&caller.shipment_scope()?, filter).await?)
}

/// One report under `filter`, within the caller's scope.
pub async fn report(
    db: &Db,
    caller: &Caller,
    kind: Kind,
    filter: &ReportFilter,
) -> Result<Report, AppError> {
    let scope = caller.shipment_scope()?;
    Ok(match kind {
        Kind::Shipments => Report::Shipments(db.list_shipments(&scope, filter).await?),
        Kind::Lines => Report::Lines(db.list_lines(&scope, filter).await?),
        Kind::Receipts => Report::Receipts(db.list_receipts(&scope, filter).await?),
        Kind::Discrepancies => Report::Discrepancies(db.list_discrepancies(&scope, filter).await?),
        Kind::Duplicates => Report::Duplicates(db.list_duplicates(&scope, filter).await?),
        Kind::Conflicts => Report::Conflicts(db.list_conflicts(&scope, filter).await?),
        Kind::TotalsByFacility => Report::Totals(db.totals_by_facility(&scope, filter).await?),
        Kind::TotalsByCategory => Report::Totals(db.totals_by_category(&scope, filter).await?),
    })
}
