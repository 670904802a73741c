//! Coordinator reports: the projections under a filter, within the
//! caller's scope. Nothing here loads a document.

use serde::{Deserialize, Serialize};

use aidsync_shared::derive::Status;
use aidsync_shared::ids::FacilityId;
use aidsync_shared::projection::{ConflictRow, DiscrepancyRow, LineRow, ReceiptRow, ShipmentRow};

use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Db, DuplicateReport, Page, ReportFilter, TotalsRow};

/// The filter as a query string. Unknown parameters are refused, so a
/// misspelt filter never silently returns everything.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterQuery {
    /// Search: serial number, shipment id or reference, donor, item.
    q: Option<String>,
    facility: Option<String>,
    region: Option<String>,
    donor: Option<String>,
    category: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Paging: at most `limit` rows (1 to 100,000), after skipping `offset`.
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The most rows one page may ask for.
const MAX_LIMIT: i64 = 100_000;

/// The longest search text (a serial number or a reference is far less).
const MAX_SEARCH_CHARS: usize = 100;

fn date(name: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let b = v.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if shaped {
        Ok(Some(v))
    } else {
        Err(AppError::BadRequest(format!(
            "{name}: {v:?} is not a date (YYYY-MM-DD)"
        )))
    }
}

impl FilterQuery {
    /// Checks each parameter; empty ones mean "any" (what an HTML form sends).
    pub fn parse(self) -> Result<ReportFilter, AppError> {
        let text = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let facility = text(self.facility)
            .map(|f| {
                FacilityId::parse(f)
                    .map(|f| f.to_string())
                    .map_err(|e| AppError::BadRequest(format!("facility: {e}")))
            })
            .transpose()?;
        let status =
            text(self.status)
                .map(|s| {
                    Status::parse(&s).map(|s| s.as_str().to_owned()).ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "status: {s:?} is not one of awaiting, partial, complete, discrepancy"
                    ))
                })
                })
                .transpose()?;
        let search = text(self.q).map(|q| q.trim().to_owned());
        if let Some(q) = &search
            && q.chars().count() > MAX_SEARCH_CHARS
        {
            return Err(AppError::BadRequest(format!(
                "q: longer than {MAX_SEARCH_CHARS} characters"
            )));
        }
        Ok(ReportFilter {
            search,
            facility,
            region: text(self.region),
            donor: text(self.donor),
            category: text(self.category),
            status,
            from: date("from", self.from)?,
            to: date("to", self.to)?,
            shipment: None,
            page: match (self.limit, self.offset) {
                (None, None) => None,
                (limit, offset) => {
                    let limit = limit.unwrap_or(MAX_LIMIT);
                    let offset = offset.unwrap_or(0);
                    if !(1..=MAX_LIMIT).contains(&limit) {
                        return Err(AppError::BadRequest(format!(
                            "limit: {limit} is not between 1 and {MAX_LIMIT}"
                        )));
                    }
                    if offset < 0 {
                        return Err(AppError::BadRequest(format!(
                            "offset: {offset} is negative"
                        )));
                    }
                    Some(Page { limit, offset })
                }
            },
        })
    }
}

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
    Duplicates(Vec<DuplicateReport>),
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
