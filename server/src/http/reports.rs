//! Coordinator queries over the projections: shipments, lines, receipts,
//! discrepancies, possible duplicates, conflicts and totals, all under one
//! filter (`?facility=&region=&donor=&category=&status=&from=&to=`), paged
//! with `limit` and `offset` where wanted.

use aidsync_shared::projection::ShipmentRow;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::json::ApiQuery;
use crate::app::AppState;
use crate::caller::Caller;
use crate::clock::format_utc;
use crate::error::AppError;
use crate::service::donor::{self, DonorFormat};
use crate::service::export::{self, FileFormat};
use crate::service::reports::{self, FilterQuery};
use crate::service::units;

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

/// `GET /api/v1/donor-report.{pdf,xlsx}?filter`: the donor's discrepancy
/// report of every shipment the filter selects.
pub async fn donor_report(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterQuery>,
    format: DonorFormat,
) -> Result<Response, AppError> {
    let filter = q.parse()?;
    let now = state.clock.now_ms();
    let bytes = donor::for_filter(&state.db, &caller, &filter, format, now).await?;
    let day = &format_utc(now)[..10];
    Ok(super::shipments::download(
        format.content_type(),
        &format!("aidsync-donor-report-{day}.{}", format.extension()),
        bytes,
    ))
}

/// `GET /api/v1/units?filter`: per facility and shipment, how many units
/// are installed, accepted, functioning, handed over; warranties ending
/// within 90 days.
pub async fn units(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Json<units::UnitsSummary>, AppError> {
    let filter = q.parse()?;
    let now = state.clock.now_ms();
    Ok(Json(
        units::summary(&state.db, &caller, &filter, now).await?,
    ))
}

/// `GET /api/v1/asset-register.{csv,xlsx}?filter`: the accepted units as
/// rows a hospital's asset register imports.
pub async fn asset_register(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterQuery>,
    format: FileFormat,
) -> Result<Response, AppError> {
    let filter = q.parse()?;
    let bytes = units::asset_register(&state.db, &caller, &filter, format).await?;
    let day = &format_utc(state.clock.now_ms())[..10];
    Ok(super::shipments::download(
        format.content_type(),
        &format!("aidsync-asset-register-{day}.{}", format.extension()),
        bytes,
    ))
}

/// `GET /api/v1/attachments.zip?filter`: the attached files of every
/// shipment the filter selects, with an `index.csv`.
pub async fn attachments(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Response, AppError> {
    let filter = q.parse()?;
    let zip = crate::service::attachments::export_filtered(&state.db, &caller, &filter).await?;
    let day = &format_utc(state.clock.now_ms())[..10];
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"aidsync-attachments-{day}.zip\""),
            ),
        ],
        zip,
    )
        .into_response())
}
