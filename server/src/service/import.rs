//! Donor manifests in: a CSV file with one row per expected line, rows of
//! one shipment sharing its `shipment_id`. Every row is checked before
//! anything is stored; then every shipment is created in one transaction,
//! or none is.

use std::collections::BTreeMap;

use serde::Serialize;

use aidsync_shared::ids::{FacilityId, LineId, ShipmentId};
use aidsync_shared::model::{Line, NewShipment};
use aidsync_shared::roles::Action;

use super::shipments::{self, Prepared};
use crate::caller::Caller;
use crate::error::{AppError, RowProblem};
use crate::events::Changed;
use crate::storage::Db;

/// The columns a manifest has, in the order of the template. Names are
/// matched without regard to case or surrounding spaces.
pub const COLUMNS: [&str; 15] = [
    "shipment_id",
    "donor",
    "programme",
    "reference",
    "destination_facility",
    "expected_on",
    "shipment_note",
    "line_id",
    "item",
    "category",
    "unit",
    "quantity_expected",
    "serials_expected",
    "accessories",
    "unit_value",
];

/// Columns every manifest must have; the others may be left out.
const REQUIRED: [&str; 8] = [
    "shipment_id",
    "donor",
    "destination_facility",
    "line_id",
    "item",
    "category",
    "unit",
    "quantity_expected",
];

/// Most rows (expected lines) one manifest may hold. Every shipment of a
/// manifest is built before any is stored, and each costs the server tens
/// of kilobytes until then: found by `aidsync-fuzz`, a 560 KB file of
/// 10,000 one-line shipments held 250 MB, so an 8 MiB one could hold
/// gigabytes. A larger delivery is imported in several files.
pub const MAX_ROWS: usize = 2_000;
/// Most expected serial numbers in one manifest, for the same reason: a
/// shipment's serials cost the server hundreds of bytes each until stored.
pub const MAX_SERIALS: usize = 20_000;

/// Shipment fields that every row of one shipment must repeat alike.
const HEADER_FIELDS: [&str; 6] = [
    "donor",
    "programme",
    "reference",
    "destination_facility",
    "expected_on",
    "shipment_note",
];

#[derive(Debug, Serialize)]
pub struct Imported {
    /// Ids of the shipments created, in file order.
    pub created: Vec<String>,
    pub lines: usize,
    /// For live dashboards, not for the response.
    #[serde(skip)]
    pub changed: Vec<Changed>,
}

struct Row {
    line: u64,
    fields: BTreeMap<&'static str, String>,
}

impl Row {
    fn get(&self, column: &str) -> &str {
        self.fields.get(column).map(String::as_str).unwrap_or("")
    }
}

fn problem(line: u64, column: Option<&str>, reason: impl Into<String>) -> RowProblem {
    RowProblem {
        line,
        column: column.map(str::to_owned),
        reason: reason.into(),
    }
}

/// Reads the file into rows keyed by known column names. Structural
/// problems (not UTF-8, no header, unknown or missing columns) stop here.
fn read_rows(bytes: &[u8]) -> Result<Vec<Row>, AppError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        AppError::BadRequest(format!(
            "the file is not UTF-8 text (byte {}); save it as \"CSV UTF-8\"",
            e.valid_up_to()
        ))
    })?;
    // Spreadsheet programs put a byte-order mark in front of UTF-8 CSV.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| AppError::BadRequest(format!("line 1: {e}")))?
        .clone();
    let mut columns = Vec::with_capacity(headers.len());
    let mut problems = Vec::new();
    for name in &headers {
        let key = name.trim().to_lowercase();
        match COLUMNS.iter().find(|c| **c == key) {
            Some(c) if columns.contains(&Some(*c)) => {
                problems.push(problem(1, Some(c), "this column appears twice"));
            }
            Some(c) => columns.push(Some(*c)),
            None => {
                problems.push(problem(
                    1,
                    Some(name),
                    format!("unknown column; the columns are {}", COLUMNS.join(", ")),
                ));
                columns.push(None);
            }
        }
    }
    for required in REQUIRED {
        if !columns.contains(&Some(required)) {
            problems.push(problem(1, Some(required), "required column is missing"));
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            invalid(vec![problem(line, None, e.to_string())])
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue; // blank lines at the end of a spreadsheet export
        }
        if rows.len() + problems.len() >= MAX_ROWS {
            return Err(AppError::PayloadTooLarge(format!(
                "more than {MAX_ROWS} rows in one manifest; split it into several files"
            )));
        }
        if record.len() > columns.len() {
            problems.push(problem(
                line,
                None,
                format!("{} values for {} columns", record.len(), columns.len()),
            ));
            continue;
        }
        let fields = columns
            .iter()
            .zip(record.iter())
            .filter_map(|(c, v)| c.map(|c| (c, v.to_owned())))
            .collect();
        rows.push(Row { line, fields });
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    if rows.is_empty() {
        return Err(AppError::BadRequest(
            "the file has a header but no rows".to_owned(),
        ));
    }
    let serials: usize = rows.iter().map(|r| serials_of(r).count()).sum();
    if serials > MAX_SERIALS {
        return Err(AppError::PayloadTooLarge(format!(
            "more than {MAX_SERIALS} expected serial numbers in one manifest; \
             split it into several files"
        )));
    }
    Ok(rows)
}

/// A row's expected serial numbers: separated by `;`, `,` or line breaks.
fn serials_of(row: &Row) -> impl Iterator<Item = &str> {
    list_of(row, "serials_expected", &[';', ',', '\n'])
}

/// The items of a list column, separated by any of `separators`.
fn list_of<'a>(
    row: &'a Row,
    column: &str,
    separators: &'a [char],
) -> impl Iterator<Item = &'a str> {
    row.get(column)
        .split(separators)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn invalid(mut rows: Vec<RowProblem>) -> AppError {
    rows.sort_by(|a, b| (a.line, &a.column).cmp(&(b.line, &b.column)));
    AppError::InvalidRows {
        // The web page says "nothing was imported" itself.
        message: format!("{} problem(s) in the manifest", rows.len()),
        rows,
    }
}

/// One shipment's rows turned into a [`NewShipment`], or every problem in them.
fn shipment_of(rows: &[&Row], problems: &mut Vec<RowProblem>) -> Option<NewShipment> {
    let first = rows[0];
    let before = problems.len();
    for row in &rows[1..] {
        for field in HEADER_FIELDS {
            if row.get(field) != first.get(field) {
                problems.push(problem(
                    row.line,
                    Some(field),
                    format!(
                        "differs from line {} of the same shipment ({:?})",
                        first.line,
                        first.get(field)
                    ),
                ));
            }
        }
    }
    let id = ShipmentId::parse(first.get("shipment_id"))
        .map_err(|e| problems.push(problem(first.line, Some("shipment_id"), e.to_string())))
        .ok();
    let facility = FacilityId::parse(first.get("destination_facility"))
        .map_err(|e| {
            problems.push(problem(
                first.line,
                Some("destination_facility"),
                e.to_string(),
            ))
        })
        .ok();
    let mut lines = Vec::new();
    for row in rows {
        let line_id = LineId::parse(row.get("line_id"))
            .map_err(|e| problems.push(problem(row.line, Some("line_id"), e.to_string())))
            .ok();
        let quantity = row
            .get("quantity_expected")
            .parse::<u64>()
            .map_err(|_| {
                problems.push(problem(
                    row.line,
                    Some("quantity_expected"),
                    format!("{:?} is not a whole number", row.get("quantity_expected")),
                ))
            })
            .ok();
        let serials: Vec<String> = serials_of(row).map(str::to_owned).collect();
        if let (Some(id), Some(quantity)) = (line_id, quantity) {
            lines.push(Line {
                id,
                item: row.get("item").to_owned(),
                category: row.get("category").to_owned(),
                unit: row.get("unit").to_owned(),
                quantity_expected: quantity,
                serials_expected: serials,
                accessories: list_of(row, "accessories", &[';', '\n'])
                    .map(str::to_owned)
                    .collect(),
                unit_value: Some(row.get("unit_value").trim().to_owned()).filter(|v| !v.is_empty()),
            });
        }
    }
    let expected_on = Some(first.get("expected_on").to_owned()).filter(|d| !d.is_empty());
    match (id, facility) {
        (Some(id), Some(destination_facility)) if problems.len() == before => Some(NewShipment {
            id,
            donor: first.get("donor").to_owned(),
            programme: first.get("programme").to_owned(),
            reference: first.get("reference").to_owned(),
            destination_facility,
            expected_on,
            note: first.get("shipment_note").to_owned(),
            lines,
        }),
        _ => None,
    }
}

/// The row and column a model error points at (`lines/<id>/<field>: …`
/// names the row of that line), else the shipment's first row.
fn place_of(rows: &[&Row], reason: &str) -> (u64, Option<String>) {
    // `shipment/<field>: …`: the shipment's first row, that field's column.
    if let Some(rest) = reason.strip_prefix("shipment/") {
        let field = rest.split([':', ' ', '/']).next().unwrap_or("");
        let column = match field {
            "note" => Some("shipment_note".to_owned()),
            f => COLUMNS.contains(&f).then(|| f.to_owned()),
        };
        return (rows[0].line, column);
    }
    for row in rows {
        let prefix = format!("lines/{}/", row.get("line_id"));
        if let Some(rest) = reason.split_once(&prefix).map(|(_, rest)| rest) {
            let field = rest.split([':', ' ', '/']).next().unwrap_or("");
            let column = COLUMNS.contains(&field).then(|| field.to_owned());
            return (row.line, column);
        }
    }
    (rows[0].line, None)
}

/// A model error about a shipment's rows, at the row and column it names.
fn placed(rows: &[&Row], reason: String) -> RowProblem {
    let (line, column) = place_of(rows, &reason);
    RowProblem {
        line,
        column,
        reason,
    }
}

/// Rows by `shipment_id`, in the order each id first appears. Indexed, so
/// a file of many one-line shipments costs no more than one of few.
fn group_rows(rows: &[Row]) -> Vec<(String, Vec<&Row>)> {
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows {
        let id = row.get("shipment_id");
        match index.get(id) {
            Some(&i) => groups[i].1.push(row),
            None => {
                index.insert(id, groups.len());
                groups.push((id.to_owned(), vec![row]));
            }
        }
    }
    groups
}

/// The part of an import that needs no database: the file read, its rows
/// grouped into shipments and each checked as [`import`] checks it, every
/// problem named. What it returns still has to pass the model, the facility
/// table and the caller's region. The fuzz harness drives this directly.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<NewShipment>, AppError> {
    let rows = read_rows(bytes)?;
    let mut problems = Vec::new();
    let shipments = group_rows(&rows)
        .iter()
        .filter_map(|(_, members)| shipment_of(members, &mut problems))
        .collect();
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(shipments)
}

/// Imports a manifest on behalf of a coordinator.
pub async fn import(
    db: &Db,
    caller: &Caller,
    bytes: &[u8],
    now_ms: i64,
) -> Result<Imported, AppError> {
    caller.require(Action::ManageShipments)?;
    let rows = read_rows(bytes)?;
    let groups = group_rows(&rows);

    let mut problems = Vec::new();
    let mut prepared: Vec<Prepared> = Vec::new();
    let mut existing = db.begin_read().await?;
    for (_, members) in &groups {
        let Some(new) = shipment_of(members, &mut problems) else {
            continue;
        };
        // Every field problem of every row at once, before the first one
        // the whole-shipment check below would stop at.
        let field_problems = new.problems();
        if !field_problems.is_empty() {
            problems.extend(
                field_problems
                    .iter()
                    .map(|e| placed(members, e.to_string())),
            );
            continue;
        }
        if existing.document_exists(new.id.as_str()).await? {
            problems.push(problem(
                members[0].line,
                Some("shipment_id"),
                format!("shipment {} already exists", new.id),
            ));
            continue;
        }
        match shipments::prepare(db, caller, &new, now_ms).await {
            Ok(p) => prepared.push(p),
            Err(unfit) => problems.push(match unfit.field {
                Some(field) => RowProblem {
                    line: members[0].line,
                    column: Some(field),
                    reason: unfit.error.to_string(),
                },
                None => placed(members, unfit.error.to_string()),
            }),
        }
    }
    existing.commit().await?;
    if !problems.is_empty() {
        return Err(invalid(problems));
    }

    let mut tx = db.begin_write().await?;
    for (p, (_, members)) in prepared.iter_mut().zip(&groups) {
        if let Err(e) = shipments::insert(&mut tx, caller, p, now_ms).await {
            // Dropping the transaction rolls back every shipment before it.
            return Err(match e {
                AppError::Conflict(reason) => {
                    invalid(vec![problem(members[0].line, Some("shipment_id"), reason)])
                }
                other => other,
            });
        }
    }
    tx.commit().await?;
    Ok(Imported {
        created: groups.into_iter().map(|(id, _)| id).collect(),
        lines: rows.len(),
        changed: prepared
            .iter()
            .map(|p| Changed {
                shipment: p.shipment.header.id.to_string(),
                facility: p.shipment.header.destination_facility.to_string(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const HEADER: &str =
        "shipment_id,donor,destination_facility,line_id,item,category,unit,quantity_expected\n";

    #[test]
    fn rows_group_into_shipments_in_the_order_they_first_appear() {
        let csv = format!(
            "{HEADER}b,JICA,izium-central,l1,Bed,furniture,unit,2\n\
             a,JICA,izium-central,l1,Bed,furniture,unit,1\n\
             b,JICA,izium-central,l2,Mask,consumables,box,5\n"
        );
        let shipments = parse_manifest(csv.as_bytes()).unwrap();
        let ids: Vec<&str> = shipments.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(shipments[0].lines.len(), 2);
    }

    #[test]
    fn a_manifest_of_too_many_rows_is_refused_while_it_is_read() {
        let row = |i: usize| format!("s{i},JICA,izium-central,l1,Bed,furniture,unit,1\n");
        let at_limit: String = std::iter::once(HEADER.to_owned())
            .chain((0..MAX_ROWS).map(row))
            .collect();
        assert_eq!(parse_manifest(at_limit.as_bytes()).unwrap().len(), MAX_ROWS);
        let over = format!("{at_limit}{}", row(MAX_ROWS));
        let err = parse_manifest(over.as_bytes()).unwrap_err();
        assert_eq!(
            err.status(),
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "{err}"
        );

        let serials: Vec<String> = (0..1_000).map(|i| format!("S-{i}")).collect();
        let serials = serials.join(";");
        let many: String =
            std::iter::once(HEADER.replace('\n', ",serials_expected\n"))
                .chain((0..=MAX_SERIALS / 1_000).map(|i| {
                    format!("s{i},JICA,izium-central,l1,Bed,furniture,unit,1000,{serials}\n")
                }))
                .collect();
        let err = parse_manifest(many.as_bytes()).unwrap_err();
        assert_eq!(
            err.status(),
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "{err}"
        );
        assert!(err.to_string().contains("serial numbers"), "{err}");
    }

    /// Found while building the fuzz harness: grouping looked up each row's
    /// shipment with a linear search, so many one-line shipments cost time
    /// quadratic in the rows (100,000: 38 s in a debug build).
    #[test]
    fn many_one_line_shipments_group_in_linear_time() {
        let rows: Vec<Row> = (0..100_000)
            .map(|i| Row {
                line: i + 2,
                fields: BTreeMap::from([("shipment_id", format!("s{i}"))]),
            })
            .collect();
        let started = std::time::Instant::now();
        assert_eq!(group_rows(&rows).len(), 100_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
