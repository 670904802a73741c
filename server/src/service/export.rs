//! Reports out: a report's rows as CSV or XLSX, column for column what the
//! JSON API returns, with times as UTC dates and lists joined by "; ".

use rust_xlsxwriter::{Format, Workbook};
use serde_json::Value;

use super::reports::Report;
use crate::clock::format_utc;
use crate::error::AppError;

/// A file format a report can be downloaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Xlsx,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// Splits `lines.csv` into `("lines", Some(Csv))`; `lines` has no format.
    pub fn split(name: &str) -> Result<(&str, Option<FileFormat>), AppError> {
        let Some((stem, extension)) = name.rsplit_once('.') else {
            return Ok((name, None));
        };
        let format = match extension {
            "csv" => FileFormat::Csv,
            "xlsx" => FileFormat::Xlsx,
            other => {
                return Err(AppError::NotFound(format!(
                    "no format .{other}; reports come as JSON, .csv or .xlsx"
                )));
            }
        };
        Ok((stem, Some(format)))
    }
}

/// One spreadsheet cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
}

/// A report as a table: column names (the JSON field names) and rows.
pub fn table(report: &Report) -> Result<(Vec<String>, Vec<Vec<Cell>>), AppError> {
    if report.is_empty() {
        // No rows still means a header, so the file says what it would hold.
        let (columns, _) = table(&report.blank())?;
        return Ok((columns, Vec::new()));
    }
    rows_table(report)
}

/// Any list of flat rows as a table: the first row's JSON field names are
/// the columns (empty for no rows).
pub fn rows_table(rows: &impl serde::Serialize) -> Result<(Vec<String>, Vec<Vec<Cell>>), AppError> {
    let Value::Array(rows) = serde_json::to_value(rows)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rows to JSON: {e}")))?
    else {
        return Err(AppError::Internal(anyhow::anyhow!("rows are not a list")));
    };
    let mut columns: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Value::Object(fields) = row else {
            return Err(AppError::Internal(anyhow::anyhow!(
                "a row is not an object"
            )));
        };
        if columns.is_empty() {
            columns = fields.keys().cloned().collect();
        }
        out.push(
            columns
                .iter()
                .map(|c| cell(c, fields.get(c).unwrap_or(&Value::Null)))
                .collect(),
        );
    }
    Ok((columns, out))
}

fn cell(column: &str, value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Empty,
        // Times are milliseconds since the epoch; people read dates.
        Value::Number(n) if column.ends_with("_at") => n
            .as_i64()
            .map_or(Cell::Empty, |ms| Cell::Text(format_utc(ms))),
        Value::Number(n) => n.as_f64().map_or(Cell::Empty, Cell::Number),
        Value::Bool(b) => Cell::Text(if *b { "yes" } else { "no" }.to_owned()),
        Value::String(s) => Cell::Text(s.clone()),
        Value::Array(items) => Cell::Text(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Value::Object(_) => Cell::Text(value.to_string()),
    }
}

/// Text a spreadsheet program would take for a formula ("=HYPERLINK(…)" in
/// a receipt's note) gets a leading apostrophe, so opening a report never
/// runs what someone typed on a phone.
fn defuse(text: &str) -> std::borrow::Cow<'_, str> {
    let risky = match text.as_bytes().first() {
        Some(b'=' | b'+' | b'@' | b'\t' | b'\r') => true,
        Some(b'-') => text.parse::<f64>().is_err(),
        _ => false,
    };
    if risky {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// CSV in UTF-8 with a byte-order mark (without one, Excel reads Cyrillic
/// as mojibake) and CRLF line ends.
pub fn csv(report: &Report) -> Result<Vec<u8>, AppError> {
    let (columns, rows) = table(report)?;
    csv_table(&columns, rows)
}

/// [`csv`] of any table.
pub fn csv_table(columns: &[String], rows: Vec<Vec<Cell>>) -> Result<Vec<u8>, AppError> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        let failed = |e: csv::Error| AppError::Internal(anyhow::anyhow!("writing CSV: {e}"));
        writer.write_record(columns).map_err(failed)?;
        for row in rows {
            let fields: Vec<std::borrow::Cow<'_, str>> = row
                .iter()
                .map(|c| match c {
                    Cell::Empty => "".into(),
                    Cell::Text(t) => defuse(t).into_owned().into(),
                    Cell::Number(n) => n.to_string().into(),
                })
                .collect();
            writer
                .write_record(fields.iter().map(|f| f.as_ref()))
                .map_err(failed)?;
        }
        writer
            .flush()
            .map_err(|e| AppError::Internal(anyhow::anyhow!("writing CSV: {e}")))?;
    }
    Ok(out)
}

/// An XLSX workbook with one sheet named after the report: a bold, frozen
/// header row, text cells written as text (never formulas).
pub fn xlsx(report: &Report, sheet: &str) -> Result<Vec<u8>, AppError> {
    let (columns, rows) = table(report)?;
    xlsx_table(&columns, &rows, sheet)
}

/// [`xlsx`] of any table.
pub fn xlsx_table(
    columns: &[String],
    rows: &[Vec<Cell>],
    sheet: &str,
) -> Result<Vec<u8>, AppError> {
    let failed =
        |e: rust_xlsxwriter::XlsxError| AppError::Internal(anyhow::anyhow!("writing XLSX: {e}"));
    let mut workbook = Workbook::new();
    let worksheet = workbook.add_worksheet();
    worksheet.set_name(sheet).map_err(failed)?;
    let bold = Format::new().set_bold();
    for (c, name) in columns.iter().enumerate() {
        let col = u16::try_from(c)
            .map_err(|_| AppError::Internal(anyhow::anyhow!("too many columns")))?;
        worksheet
            .write_string_with_format(0, col, name, &bold)
            .map_err(failed)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let at = u32::try_from(r + 1)
            .map_err(|_| AppError::Internal(anyhow::anyhow!("too many rows for XLSX")))?;
        for (c, value) in row.iter().enumerate() {
            let col = u16::try_from(c)
                .map_err(|_| AppError::Internal(anyhow::anyhow!("too many columns")))?;
            match value {
                Cell::Empty => {}
                Cell::Text(t) => {
                    worksheet.write_string(at, col, t).map_err(failed)?;
                }
                Cell::Number(n) => {
                    worksheet.write_number(at, col, *n).map_err(failed)?;
                }
            }
        }
    }
    worksheet.set_freeze_panes(1, 0).map_err(failed)?;
    worksheet.autofit();
    workbook.save_to_buffer().map_err(failed)
}
