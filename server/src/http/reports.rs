//! Coordinator queries over the projections: shipments, lines, receipts,
//! discrepancies, possible duplicates, conflicts and totals, all under one
//! filter (`?facility=&region=&donor=&category=&status=&from=&to=`).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use aidsync_shared::derive::Status;
use aidsync_shared::ids::FacilityId;
use aidsync_shared::projection::ShipmentRow;

use super::json::ApiQuery;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::AppError;
use crate::service::reports::{self, Report};
use crate::storage::ReportFilter;

/// The filter as a query string. Unknown parameters are refused, so a
/// misspelt filter never silently returns everything.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterQuery {
    facility: Option<String>,
    region: Option<String>,
    donor: Option<String>,
    category: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

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
        Ok(ReportFilter {
            facility,
            region: text(self.region),
            donor: text(self.donor),
            category: text(self.category),
            status,
            from: date("from", self.from)?,
            to: date("to", self.to)?,
            shipment: None,
        })
    }
}

/// `GET /api/v1/shipments?facility=&region=&donor=&category=&status=&from=&to=`
pub async fn shipments(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Json<Vec<ShipmentRow>>, AppError> {
    let filter = q.parse()?;
    Ok(Json(reports::shipments(&state.db, &caller, &filter).await?))
}

/// `GET /api/v1/reports/{name}?filter`: `lines`, `receipts`,
/// `discrepancies`, `duplicates`, `conflicts`, `totals-by-facility`,
/// `totals-by-category` (and `shipments`), as JSON rows.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Json<Report>, AppError> {
    let kind = reports::Kind::parse(&name)?;
    let filter = q.parse()?;
    Ok(Json(
        reports::report(&state.db, &caller, kind, &filter).await?,
    ))
}
