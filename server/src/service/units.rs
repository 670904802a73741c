//! Serialised units after receipt: each unit's record and the counts per
//! shipment and facility, a step recorded over the API (the hand-over, a
//! coordinator's), and the asset register a hospital imports.
//!
//! The records themselves live in the shipment documents
//! (`aidsync_shared::model::units`); everything here is read from them.

use std::collections::BTreeMap;

use aidsync_shared::ids::{FacilityId, ShipmentId};
use aidsync_shared::model::{
    NewUnitEvent, Recorder, Shipment, StepKind, UnitCounts, UnitRecord, UnitStep, UnitValue,
    date_of,
};
use aidsync_shared::roles::Action;
use serde::Serialize;

use super::export::{FileFormat, csv_table, rows_table, xlsx_table};
use crate::caller::Caller;
use crate::error::AppError;
use crate::storage::{Db, ReportFilter};

/// Most shipments one summary or register reads: each document is loaded
/// and read. A coordinator who needs more narrows the filter (413).
pub const MAX_SHIPMENTS: usize = 2_000;

/// One shipment's units with their counts.
#[derive(Debug, Serialize)]
pub struct ShipmentUnits {
    pub shipment_id: ShipmentId,
    pub facility_id: FacilityId,
    /// The day counts are judged on (warranties ending), UTC.
    pub today: String,
    pub counts: UnitCounts,
    pub units: Vec<UnitRecord>,
}

/// `GET /api/v1/shipments/{id}/units`.
pub async fn for_shipment(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
    now_ms: i64,
) -> Result<ShipmentUnits, AppError> {
    let (shipment, _) = super::shipments::read_visible(db, caller, id).await?;
    Ok(view(&shipment, &date_of(now_ms)))
}

fn view(shipment: &Shipment, today: &str) -> ShipmentUnits {
    let units = shipment.units();
    let mut counts = UnitCounts::default();
    for u in &units {
        counts.add(u, today);
    }
    ShipmentUnits {
        shipment_id: shipment.header.id.clone(),
        facility_id: shipment.header.destination_facility.clone(),
        today: today.to_owned(),
        counts,
        units,
    }
}

/// `POST /api/v1/shipments/{id}/units`: records one step of one unit as
/// the caller (a hand-over needs a coordinator, any other step a
/// receiver), superseding what the server shows as current.
pub async fn record(
    db: &Db,
    caller: &Caller,
    id: &ShipmentId,
    new: NewUnitEvent,
    now_ms: i64,
) -> Result<ShipmentUnits, AppError> {
    caller.require(match new.step.kind() {
        StepKind::HandedOver => Action::HandOverUnits,
        _ => Action::RecordReceipts,
    })?;
    let who = Recorder {
        user: caller.user.clone(),
        device: caller.device.clone(),
    };
    let today = date_of(now_ms);
    super::shipments::edit_with(
        db,
        caller,
        id,
        now_ms,
        move |doc| doc.record_unit_event(new, &who, now_ms).map(|_| ()),
        |_, shipment, _| view(&shipment, &today),
    )
    .await
}

/// Counts for one facility, over the shipments a filter selects.
#[derive(Debug, Serialize)]
pub struct FacilityUnits {
    pub facility_id: FacilityId,
    pub facility: String,
    pub counts: UnitCounts,
}

/// Counts for one shipment.
#[derive(Debug, Serialize)]
pub struct ShipmentCounts {
    pub shipment_id: ShipmentId,
    pub reference: String,
    pub facility_id: FacilityId,
    pub counts: UnitCounts,
}

/// A warranty that ends within 90 days.
#[derive(Debug, Serialize)]
pub struct WarrantyEnding {
    pub shipment_id: ShipmentId,
    pub facility_id: FacilityId,
    pub line_id: aidsync_shared::ids::LineId,
    pub serial: String,
    pub item: String,
    pub ends_on: String,
    pub service_agent: String,
}

/// `GET /api/v1/units?filter`: how far the units have come, per facility
/// and per shipment, and the warranties ending soon.
#[derive(Debug, Serialize)]
pub struct UnitsSummary {
    pub today: String,
    pub totals: UnitCounts,
    pub facilities: Vec<FacilityUnits>,
    pub shipments: Vec<ShipmentCounts>,
    pub warranties_ending: Vec<WarrantyEnding>,
}

pub async fn summary(
    db: &Db,
    caller: &Caller,
    filter: &ReportFilter,
    now_ms: i64,
) -> Result<UnitsSummary, AppError> {
    let today = date_of(now_ms);
    let mut totals = UnitCounts::default();
    let mut facilities: BTreeMap<FacilityId, FacilityUnits> = BTreeMap::new();
    let mut shipments = Vec::new();
    let mut warranties_ending = Vec::new();
    for (shipment, facility) in read_filtered(db, caller, filter).await? {
        let h = &shipment.header;
        let mut counts = UnitCounts::default();
        for unit in shipment.units() {
            counts.add(&unit, &today);
            if unit.warranty_ends_soon(&today)
                && let Some(UnitStep::Warranty {
                    ends_on,
                    service_agent,
                    ..
                }) = unit.step(StepKind::Warranty).map(|e| &e.step)
            {
                warranties_ending.push(WarrantyEnding {
                    shipment_id: h.id.clone(),
                    facility_id: h.destination_facility.clone(),
                    line_id: unit.line_id.clone(),
                    serial: unit.serial.clone(),
                    item: unit.item.clone(),
                    ends_on: ends_on.clone(),
                    service_agent: service_agent.clone(),
                });
            }
        }
        totals.merge(&counts);
        facilities
            .entry(h.destination_facility.clone())
            .or_insert_with(|| FacilityUnits {
                facility_id: h.destination_facility.clone(),
                facility: facility.clone(),
                counts: UnitCounts::default(),
            })
            .counts
            .merge(&counts);
        shipments.push(ShipmentCounts {
            shipment_id: h.id.clone(),
            reference: h.reference.clone(),
            facility_id: h.destination_facility.clone(),
            counts,
        });
    }
    warranties_ending.sort_by(|a, b| a.ends_on.cmp(&b.ends_on));
    Ok(UnitsSummary {
        today,
        totals,
        facilities: facilities.into_values().collect(),
        shipments,
        warranties_ending,
    })
}

/// One accepted unit as a row of a hospital's asset register. The column
/// layout is documented in the README ("Asset register"); changing it
/// breaks imports people have set up, so columns are only ever added at
/// the end.
#[derive(Debug, Default, Serialize)]
pub struct AssetRow {
    pub asset_number: String,
    pub handed_over_on: String,
    /// The manifest line's description: manufacturer and model as the
    /// donor gave them.
    pub item: String,
    pub category: String,
    pub serial: String,
    pub donor: String,
    pub programme: String,
    pub shipment_id: String,
    pub shipment_reference: String,
    pub line_id: String,
    pub facility_id: String,
    pub facility: String,
    pub department: String,
    pub room: String,
    pub custodian: String,
    pub arrival_condition: String,
    pub installed_on: String,
    pub installer: String,
    pub commissioned_on: String,
    pub acceptance_result: String,
    pub acceptance_on: String,
    pub trained_people: Option<u64>,
    pub trained_on: String,
    pub trainer: String,
    pub warranty_starts_on: String,
    pub warranty_ends_on: String,
    pub service_agent: String,
    pub status: String,
    pub status_note: String,
    pub accessories_checked: Vec<String>,
    pub accessories_missing: Vec<String>,
    pub estimated_value: String,
    pub currency: String,
    /// Steps recorded concurrently and not yet settled: check before import.
    pub conflicts: Vec<&'static str>,
}

/// `GET /api/v1/asset-register.{csv,xlsx}?filter`: every accepted unit
/// (acceptance test passed or not applicable) of the shipments the filter
/// selects, handed over or not (`handed_over_on` says).
pub async fn asset_register(
    db: &Db,
    caller: &Caller,
    filter: &ReportFilter,
    format: FileFormat,
) -> Result<Vec<u8>, AppError> {
    let mut rows = Vec::new();
    for (shipment, facility) in read_filtered(db, caller, filter).await? {
        for unit in shipment.units().iter().filter(|u| u.accepted()) {
            rows.push(asset_row(&shipment, &facility, unit));
        }
    }
    let (columns, cells) = if rows.is_empty() {
        rows_table(&[AssetRow::default()]).map(|(c, _)| (c, Vec::new()))?
    } else {
        rows_table(&rows)?
    };
    match format {
        FileFormat::Csv => csv_table(&columns, cells),
        FileFormat::Xlsx => xlsx_table(&columns, &cells, "asset register"),
    }
}

fn asset_row(shipment: &Shipment, facility: &str, unit: &UnitRecord) -> AssetRow {
    let h = &shipment.header;
    let value = shipment
        .lines
        .get(&unit.line_id)
        .and_then(|l| l.unit_value.as_deref())
        .and_then(UnitValue::parse);
    let mut row = AssetRow {
        item: unit.item.clone(),
        category: unit.category.clone(),
        serial: unit.serial.clone(),
        donor: h.donor.clone(),
        programme: h.programme.clone(),
        shipment_id: h.id.to_string(),
        shipment_reference: h.reference.clone(),
        line_id: unit.line_id.to_string(),
        facility_id: h.destination_facility.to_string(),
        facility: facility.to_owned(),
        arrival_condition: unit
            .received
            .as_ref()
            .map(|r| r.condition.as_str().to_owned())
            .unwrap_or_default(),
        accessories_missing: unit.accessories.clone(),
        estimated_value: value.as_ref().map(|v| v.amount.clone()).unwrap_or_default(),
        currency: value.map(|v| v.currency).unwrap_or_default(),
        conflicts: unit
            .steps
            .iter()
            .filter(|(_, s)| s.in_conflict())
            .map(|(k, _)| k.as_str())
            .collect(),
        ..AssetRow::default()
    };
    for state in unit.steps.values() {
        let Some(e) = state.latest() else { continue };
        match &e.step {
            UnitStep::Checklist { checked } => {
                row.accessories_missing = unit
                    .accessories
                    .iter()
                    .filter(|a| !checked.contains(a))
                    .cloned()
                    .collect();
                row.accessories_checked = checked.clone();
            }
            UnitStep::Installed { on, installer } => {
                row.installed_on = on.clone();
                row.installer = installer.clone();
            }
            UnitStep::Commissioned { on } => row.commissioned_on = on.clone(),
            UnitStep::AcceptanceTest { result, on } => {
                row.acceptance_result = result.as_str().to_owned();
                row.acceptance_on = on.clone();
            }
            UnitStep::Training {
                on,
                people,
                trainer,
            } => {
                row.trained_people = Some(*people);
                row.trained_on = on.clone();
                row.trainer = trainer.clone();
            }
            UnitStep::Warranty {
                starts_on,
                ends_on,
                service_agent,
            } => {
                row.warranty_starts_on = starts_on.clone();
                row.warranty_ends_on = ends_on.clone();
                row.service_agent = service_agent.clone();
            }
            UnitStep::Location {
                department,
                room,
                custodian,
            } => {
                row.department = department.clone();
                row.room = room.clone();
                row.custodian = custodian.clone();
            }
            UnitStep::Status { status } => {
                row.status = status.as_str().to_owned();
                row.status_note = e.note.clone();
            }
            UnitStep::HandedOver { on, asset_number } => {
                row.handed_over_on = on.clone();
                row.asset_number = asset_number.clone();
            }
        }
    }
    row
}

/// Every shipment `filter` selects in the caller's scope, read, at most
/// [`MAX_SHIPMENTS`] (413 beyond).
async fn read_filtered(
    db: &Db,
    caller: &Caller,
    filter: &ReportFilter,
) -> Result<Vec<(Shipment, String)>, AppError> {
    let rows = super::reports::shipments(db, caller, filter).await?;
    if rows.len() > MAX_SHIPMENTS {
        return Err(AppError::PayloadTooLarge(format!(
            "the filter selects {} shipments; at most {MAX_SHIPMENTS} are read at once: narrow the filter",
            rows.len()
        )));
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = ShipmentId::parse(&row.id).map_err(|e| {
            AppError::Internal(anyhow::anyhow!("stored shipment id {}: {e}", row.id))
        })?;
        let (shipment, facility) = super::shipments::read_visible(db, caller, &id).await?;
        let facility = facility.unwrap_or_else(|| shipment.header.destination_facility.to_string());
        out.push((shipment, facility));
    }
    Ok(out)
}
