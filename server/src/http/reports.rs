//! Coordinator queries over the projections: shipments, lines, receipts,
//! discrepancies, possible duplicates, conflicts and totals, all under one
//! filter (`?facility=&region=&donor=&category=&status=&from=&to=`), paged
//! with `limit` and `offset` where wanted.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use aidsync_shared::derive::Status;
use aidsync_shared::ids::FacilityId;
use aidsync_shared::projection::ShipmentRow;

use super::json::ApiQuery;
use crate::app::AppState;
use crate::caller::Caller;
use crate::clock::format_utc;
use crate::error::AppError;
use crate::service::export::{self, FileFormat};
use crate::service::reports;
use crate::storage::{Page, ReportFilter};

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
    /// Paging: at most `limit` rows (1 to 100,000), after skipping `offset`.
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The most rows one page may ask for.
const MAX_LIMIT: i64 = 100_000;

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

/// `GET /api/v1/shipments?facility=&region=&donor=&category=&status=&from=&to=`
pub async fn shipments(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Json<Vec<ShipmentRow>>, AppError> {
    let filter = q.parse()?;
    Ok(Json(reports::shipments(&state.db, &caller, &filter).await?))
}

/// `GET /api/v1/reports/{name}?filter`: `shipments`, `lines`, `receipts`,
/// `discrepancies`, `duplicates`, `conflicts`, `totals-by-facility`,
/// `totals-by-category`, as JSON rows; `{name}.csv` or `{name}.xlsx` for
/// the same rows as a file to download.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Response, AppError> {
    let (stem, format) = FileFormat::split(&name)?;
    let kind = reports::Kind::parse(stem)?;
    let filter = q.parse()?;
    let report = reports::report(&state.db, &caller, kind, &filter).await?;
    let Some(format) = format else {
        return Ok(Json(report).into_response());
    };
    let bytes = match format {
        FileFormat::Csv => export::csv(&report)?,
        FileFormat::Xlsx => export::xlsx(&report, kind.as_str())?,
    };
    let day = &format_utc(state.clock.now_ms())[..10];
    let disposition = format!(
        "attachment; filename=\"aidsync-{}-{day}.{}\"",
        kind.as_str(),
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
