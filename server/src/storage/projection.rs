//! The coordinator projections: one shipment's rows written beside its
//! changes, and filtered reads over all of them.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use aidsync_shared::projection::{
    AttachmentRow, ConflictRow, DiscrepancyRow, DuplicateRow, LineRow, Projection, ReceiptRow,
    ShipmentRow,
};

use super::{Db, Scope, StorageError, Tx};

/// The derivation rules the stored rows follow. Bump it whenever
/// `aidsync_shared::projection` or `derive` changes what a row says: the
/// server then rebuilds every row at start. The rebuild also upgrades every
/// document to the current schema, so a new schema bumps it too (4: schema
/// 3, deliveries, stages and reasons; 5: schema 4, units after receipt).
pub const PROJECTION_VERSION: i64 = 5;

/// A possible duplicate as the duplicates report shows it: the pair, and
/// who recorded each receipt and when, so a person need not look up ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DuplicateReport {
    #[serde(flatten)]
    pub row: DuplicateRow,
    pub first_recorded_by: Option<String>,
    pub first_recorded_at: Option<i64>,
    pub second_recorded_by: Option<String>,
    pub second_recorded_at: Option<i64>,
}

/// When a change reached the server, and the name its device was given
/// at login (`None` for the server's own changes, or a device since gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub at: i64,
    pub device_name: Option<String>,
}

/// Which shipments a coordinator query covers. `None` matches everything;
/// dates are `YYYY-MM-DD`, inclusive, on the expected arrival date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub facility: Option<String>,
    pub region: Option<String>,
    pub donor: Option<String>,
    /// Shipments with a line of this category; line and receipt lists keep
    /// only lines of it.
    pub category: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// One shipment (its detail page).
    pub shipment: Option<String>,
    /// Shipments whose id, reference, donor, a line's item or an expected
    /// or received serial number contains this (case-insensitive for
    /// ASCII letters on SQLite, for all letters on PostgreSQL).
    pub search: Option<String>,
    /// A page of the rows, in the report's order: at most `limit` rows
    /// after skipping `offset`.
    pub page: Option<Page>,
}

/// A page of a report's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// The rows of `old` that are not in `new` exactly (to delete, by key),
/// and the rows of `new` that are not in `old` exactly (to insert).
fn differing<'a, T: PartialEq, K: Eq + std::hash::Hash>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&T) -> K,
) -> (Vec<&'a T>, Vec<&'a T>) {
    let old_by_key: HashMap<K, &T> = old.iter().map(|r| (key(r), r)).collect();
    let new_by_key: HashMap<K, &T> = new.iter().map(|r| (key(r), r)).collect();
    let gone = old
        .iter()
        .filter(|r| new_by_key.get(&key(r)) != Some(r))
        .collect();
    let fresh = new
        .iter()
        .filter(|r| old_by_key.get(&key(r)) != Some(r))
        .collect();
    (gone, fresh)
}

/// How a query's own rows narrow to an item category, beyond keeping the
/// shipments that have a line of it.
#[derive(Clone, Copy)]
enum CategoryOn {
    /// The shipment is the row (or every line of it counts).
    Shipment,
    /// The row is a line: this column holds its category.
    Column(&'static str),
    /// The row names a line of a shipment: this table alias has
    /// `shipment_id` and `line_id`.
    LineOf(&'static str),
}

/// The `WHERE` condition on shipments `s` for a filter, a scope and a
/// category rule, with its values in placeholder order. Only conditions
/// that are set appear: `($1 IS NULL OR col = $1)` would keep SQLite from
/// using its indexes, so every query would read whole tables.
fn where_clause(
    filter: &ReportFilter,
    scope: &Scope,
    category: CategoryOn,
) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut add = |template: &str, value: &str| {
        values.push(value.to_owned());
        conditions.push(template.replace('?', &format!("${}", values.len())));
    };
    let in_region = "s.facility_id IN (SELECT id FROM facilities WHERE region = ?)";
    match scope {
        Scope::Facility(f) => add("s.facility_id = ?", f),
        Scope::Region(r) => add(in_region, r),
        Scope::All | Scope::Nothing => {}
    }
    if let Some(v) = &filter.shipment {
        add("s.id = ?", v);
    }
    if let Some(v) = &filter.facility {
        add("s.facility_id = ?", v);
    }
    if let Some(v) = &filter.region {
        add(in_region, v);
    }
    if let Some(v) = &filter.donor {
        add("s.donor = ?", v);
    }
    if let Some(v) = &filter.status {
        add("s.status = ?", v);
    }
    if let Some(v) = &filter.from {
        add("s.expected_on >= ?", v);
    }
    if let Some(v) = &filter.to {
        add("s.expected_on <= ?", v);
    }
    if let Some(v) = &filter.search {
        // `!` escapes LIKE's wildcards in what the person typed.
        let escaped: String = v
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '!' => vec!['!', c],
                c => vec![c],
            })
            .collect();
        // `add` puts the one value in place of every `?`.
        let like = |column: &str| format!("LOWER({column}) LIKE ? ESCAPE '!'");
        let template = format!(
            "({} OR {} OR {} \
             OR EXISTS (SELECT 1 FROM shipment_lines q WHERE q.shipment_id = s.id AND ({} OR {})) \
             OR EXISTS (SELECT 1 FROM shipment_receipts q WHERE q.shipment_id = s.id AND {}))",
            like("s.id"),
            like("s.reference"),
            like("s.donor"),
            like("q.item"),
            like("q.serials_expected"),
            like("q.serials"),
        );
        add(&template, &format!("%{escaped}%"));
    }
    if let Some(v) = &filter.category {
        add(
            "EXISTS (SELECT 1 FROM shipment_lines c WHERE c.shipment_id = s.id AND c.category = ?)",
            v,
        );
        let same = format!("${}", values.len());
        match category {
            CategoryOn::Shipment => {}
            CategoryOn::Column(column) => conditions.push(format!("{column} = {same}")),
            CategoryOn::LineOf(alias) => conditions.push(format!(
                "EXISTS (SELECT 1 FROM shipment_lines c WHERE c.shipment_id = {alias}.shipment_id \
                 AND c.line_id = {alias}.line_id AND c.category = {same})"
            )),
        }
    }
    if conditions.is_empty() {
        conditions.push("1 = 1".to_owned());
    }
    (conditions.join(" AND "), values)
}

fn to_json(list: &[String]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn from_json(row: &AnyRow, column: &str) -> Result<Vec<String>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: e.into(),
    })
}

fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

const SHIPMENT_COLUMNS: &str = "s.id, s.facility_id, s.donor, s.programme, s.reference,
    s.expected_on, s.created_by, s.created_at, s.status, s.expected, s.received, s.damaged,
    s.outstanding, s.receipts, s.voided_receipts, s.duplicates, s.conflicts,
    s.open_discrepancies, s.last_receipt_at";

fn shipment_row(r: &AnyRow) -> Result<ShipmentRow, sqlx::Error> {
    Ok(ShipmentRow {
        id: r.try_get("id")?,
        facility_id: r.try_get("facility_id")?,
        donor: r.try_get("donor")?,
        programme: r.try_get("programme")?,
        reference: r.try_get("reference")?,
        expected_on: r.try_get("expected_on")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        status: r.try_get("status")?,
        expected: r.try_get("expected")?,
        received: r.try_get("received")?,
        damaged: r.try_get("damaged")?,
        outstanding: r.try_get("outstanding")?,
        receipts: r.try_get("receipts")?,
        voided_receipts: r.try_get("voided_receipts")?,
        duplicates: r.try_get("duplicates")?,
        conflicts: r.try_get("conflicts")?,
        open_discrepancies: r.try_get("open_discrepancies")?,
        last_receipt_at: r.try_get("last_receipt_at")?,
    })
}

fn line_row(r: &AnyRow) -> Result<LineRow, sqlx::Error> {
    Ok(LineRow {
        shipment_id: r.try_get("shipment_id")?,
        line_id: r.try_get("line_id")?,
        item: r.try_get("item")?,
        category: r.try_get("category")?,
        unit: r.try_get("unit")?,
        expected: r.try_get("expected")?,
        received: r.try_get("received")?,
        good: r.try_get("good")?,
        damaged: r.try_get("damaged")?,
        missing_parts: r.try_get("missing_parts")?,
        wrong_item: r.try_get("wrong_item")?,
        outstanding: r.try_get("outstanding")?,
        over_received: r.try_get("over_received")?,
        serials_expected: from_json(r, "serials_expected")?,
        serials_missing: from_json(r, "serials_missing")?,
        serials_unexpected: from_json(r, "serials_unexpected")?,
    })
}

fn receipt_row(r: &AnyRow) -> Result<ReceiptRow, sqlx::Error> {
    Ok(ReceiptRow {
        shipment_id: r.try_get("shipment_id")?,
        receipt_id: r.try_get("receipt_id")?,
        line_id: r.try_get("line_id")?,
        quantity: r.try_get("quantity")?,
        condition: r.try_get("condition")?,
        serials: from_json(r, "serials")?,
        note: r.try_get("note")?,
        recorded_by: r.try_get("recorded_by")?,
        device_id: r.try_get("device_id")?,
        recorded_at: r.try_get("recorded_at")?,
        received_at: r.try_get("received_at")?,
        voided: flag(r, "voided")?,
        voids: r.try_get("voids")?,
    })
}

fn discrepancy_row(r: &AnyRow) -> Result<DiscrepancyRow, sqlx::Error> {
    Ok(DiscrepancyRow {
        shipment_id: r.try_get("shipment_id")?,
        line_id: r.try_get("line_id")?,
        kind: r.try_get("kind")?,
        quantity: r.try_get("quantity")?,
        serials: from_json(r, "serials")?,
        receipts: from_json(r, "receipts")?,
        resolved: flag(r, "resolved")?,
    })
}

fn duplicate_row(r: &AnyRow) -> Result<DuplicateRow, sqlx::Error> {
    Ok(DuplicateRow {
        shipment_id: r.try_get("shipment_id")?,
        line_id: r.try_get("line_id")?,
        first: r.try_get("first_receipt")?,
        second: r.try_get("second_receipt")?,
        reason: r.try_get("reason")?,
        serials: from_json(r, "serials")?,
    })
}

fn attachment_row(r: &AnyRow) -> Result<AttachmentRow, sqlx::Error> {
    Ok(AttachmentRow {
        shipment_id: r.try_get("shipment_id")?,
        attachment_id: r.try_get("attachment_id")?,
        kind: r.try_get("kind")?,
        receipt_id: r.try_get("receipt_id")?,
        sha256: r.try_get("sha256")?,
        media_type: r.try_get("media_type")?,
        size: r.try_get("size")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        signer_name: r.try_get("signer_name")?,
        signer_role: r.try_get("signer_role")?,
        removes: r.try_get("removes")?,
        removed: flag(r, "removed")?,
        note: r.try_get("note")?,
        recorded_by: r.try_get("recorded_by")?,
        device_id: r.try_get("device_id")?,
        recorded_at: r.try_get("recorded_at")?,
    })
}

fn conflict_row(r: &AnyRow) -> Result<ConflictRow, sqlx::Error> {
    Ok(ConflictRow {
        shipment_id: r.try_get("shipment_id")?,
        path: r.try_get("path")?,
        values: from_json(r, "candidates")?,
    })
}

/// Totals over shipments grouped by one key (a facility or an item category).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TotalsRow {
    pub key: String,
    pub shipments: i64,
    pub expected: i64,
    /// Each line's units counted up to its expected quantity, so
    /// `received + outstanding == expected`.
    pub received: i64,
    pub damaged: i64,
    pub outstanding: i64,
    /// Units beyond a line's expected quantity.
    pub surplus: i64,
    /// Units that arrived but were not the expected item.
    pub wrong_item: i64,
}

fn totals_row(r: &AnyRow) -> Result<TotalsRow, sqlx::Error> {
    Ok(TotalsRow {
        key: r.try_get("key")?,
        shipments: r.try_get("shipments")?,
        expected: r.try_get("expected")?,
        received: r.try_get("received")?,
        damaged: r.try_get("damaged")?,
        outstanding: r.try_get("outstanding")?,
        surplus: r.try_get("surplus")?,
        wrong_item: r.try_get("wrong_item")?,
    })
}

/// The child tables, each keyed by `shipment_id`.
const CHILD_TABLES: [&str; 6] = [
    "shipment_lines",
    "shipment_receipts",
    "shipment_discrepancies",
    "shipment_duplicates",
    "shipment_conflicts",
    "shipment_attachments",
];

impl Tx {
    /// When each change of a document reached the server and from which
    /// device, by hex hash, as this transaction sees it (including changes
    /// it just appended).
    pub async fn arrivals(
        &mut self,
        document_id: &str,
    ) -> Result<HashMap<String, Arrival>, StorageError> {
        let rows = sqlx::query(
            "SELECT c.hash, c.received_at, d.name AS device_name
             FROM changes c LEFT JOIN devices d ON d.id = c.device_id
             WHERE c.document_id = $1",
        )
        .bind(document_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                let arrival = Arrival {
                    at: r.try_get("received_at")?,
                    device_name: r.try_get("device_name")?,
                };
                Ok((r.try_get("hash")?, arrival))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// When each of these changes of a document reached the server, by hex
    /// hash (a change not stored is left out).
    pub async fn arrival_times(
        &mut self,
        document_id: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, i64>, StorageError> {
        let mut out = HashMap::with_capacity(hashes.len());
        for hash in hashes {
            let row =
                sqlx::query("SELECT received_at FROM changes WHERE document_id = $1 AND hash = $2")
                    .bind(document_id)
                    .bind(hash)
                    .fetch_optional(self.conn())
                    .await?;
            if let Some(row) = row {
                out.insert(hash.clone(), row.try_get("received_at")?);
            }
        }
        Ok(out)
    }

    /// Removes every projected row of a shipment except the shipment row.
    pub async fn clear_projection(&mut self, shipment_id: &str) -> Result<(), StorageError> {
        for table in CHILD_TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE shipment_id = $1"))
                .bind(shipment_id)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    /// Replaces a shipment's projected rows with `p`. Receipts are the one
    /// table that grows with every sync, so only new or changed receipt
    /// rows are written; the small tables are rewritten whole.
    pub async fn write_projection(
        &mut self,
        p: &Projection,
        updated_at: i64,
    ) -> Result<(), StorageError> {
        self.upsert_shipment(&p.shipment, updated_at).await?;
        let id = p.shipment.id.as_str();
        for table in [
            "shipment_lines",
            "shipment_discrepancies",
            "shipment_duplicates",
            "shipment_conflicts",
            "shipment_attachments",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE shipment_id = $1"))
                .bind(id)
                .execute(self.conn())
                .await?;
        }
        for l in &p.lines {
            self.insert_line(l).await?;
        }
        self.write_receipts(id, &p.receipts).await?;
        for d in &p.discrepancies {
            self.insert_discrepancy(d).await?;
        }
        for d in &p.duplicates {
            self.insert_duplicate(d).await?;
        }
        for c in &p.conflicts {
            self.insert_conflict(c).await?;
        }
        for a in &p.attachments {
            self.insert_attachment(a).await?;
        }
        Ok(())
    }

    /// Brings a shipment's rows from `old` (what is stored, exactly) to
    /// `new`, writing only the rows that differ: a sync that adds a receipt
    /// writes that receipt, its line, the line's discrepancies and the
    /// shipment row, however many receipts the shipment holds.
    pub async fn write_projection_changes(
        &mut self,
        old: &Projection,
        new: &Projection,
        updated_at: i64,
    ) -> Result<(), StorageError> {
        let id = new.shipment.id.as_str();
        if old.shipment != new.shipment {
            self.upsert_shipment(&new.shipment, updated_at).await?;
        }
        let (gone, fresh) = differing(&old.lines, &new.lines, |l| l.line_id.clone());
        for l in gone {
            self.delete_row("shipment_lines", id, &[("line_id", &l.line_id)])
                .await?;
        }
        for l in fresh {
            self.insert_line(l).await?;
        }
        let (gone, fresh) = differing(&old.receipts, &new.receipts, |r| r.receipt_id.clone());
        for r in gone {
            self.delete_row("shipment_receipts", id, &[("receipt_id", &r.receipt_id)])
                .await?;
        }
        for r in fresh {
            self.insert_receipt(r).await?;
        }
        let (gone, fresh) = differing(&old.discrepancies, &new.discrepancies, |d| {
            (d.line_id.clone(), d.kind.clone())
        });
        for d in gone {
            let key = [("line_id", d.line_id.as_str()), ("kind", d.kind.as_str())];
            self.delete_row("shipment_discrepancies", id, &key).await?;
        }
        for d in fresh {
            self.insert_discrepancy(d).await?;
        }
        let (gone, fresh) = differing(&old.duplicates, &new.duplicates, |d| {
            (d.first.clone(), d.second.clone())
        });
        for d in gone {
            let key = [
                ("first_receipt", d.first.as_str()),
                ("second_receipt", d.second.as_str()),
            ];
            self.delete_row("shipment_duplicates", id, &key).await?;
        }
        for d in fresh {
            self.insert_duplicate(d).await?;
        }
        let (gone, fresh) = differing(&old.conflicts, &new.conflicts, |c| c.path.clone());
        for c in gone {
            self.delete_row("shipment_conflicts", id, &[("path", &c.path)])
                .await?;
        }
        for c in fresh {
            self.insert_conflict(c).await?;
        }
        let (gone, fresh) = differing(&old.attachments, &new.attachments, |a| {
            a.attachment_id.clone()
        });
        for a in gone {
            let key = [("attachment_id", a.attachment_id.as_str())];
            self.delete_row("shipment_attachments", id, &key).await?;
        }
        for a in fresh {
            self.insert_attachment(a).await?;
        }
        Ok(())
    }

    async fn insert_attachment(&mut self, a: &AttachmentRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO shipment_attachments (shipment_id, attachment_id, kind, receipt_id,
                 sha256, media_type, size, width, height, signer_name, signer_role, removes,
                 removed, note, recorded_by, device_id, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&a.shipment_id)
        .bind(&a.attachment_id)
        .bind(&a.kind)
        .bind(a.receipt_id.as_deref())
        .bind(a.sha256.as_deref())
        .bind(a.media_type.as_deref())
        .bind(a.size)
        .bind(a.width)
        .bind(a.height)
        .bind(a.signer_name.as_deref())
        .bind(a.signer_role.as_deref())
        .bind(a.removes.as_deref())
        .bind(i64::from(a.removed))
        .bind(&a.note)
        .bind(&a.recorded_by)
        .bind(&a.device_id)
        .bind(a.recorded_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Deletes one row of a shipment's child table by its key columns.
    async fn delete_row(
        &mut self,
        table: &str,
        shipment_id: &str,
        key: &[(&str, &str)],
    ) -> Result<(), StorageError> {
        let mut sql = format!("DELETE FROM {table} WHERE shipment_id = $1");
        for (i, (column, _)) in key.iter().enumerate() {
            sql.push_str(&format!(" AND {column} = ${}", i + 2));
        }
        let mut query = sqlx::query(&sql).bind(shipment_id);
        for (_, value) in key {
            query = query.bind(*value);
        }
        query.execute(self.conn()).await?;
        Ok(())
    }

    async fn insert_line(&mut self, l: &LineRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO shipment_lines (shipment_id, line_id, item, category, unit, expected,
                 received, good, damaged, missing_parts, wrong_item, outstanding, over_received,
                 serials_expected, serials_missing, serials_unexpected)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&l.shipment_id)
        .bind(&l.line_id)
        .bind(&l.item)
        .bind(&l.category)
        .bind(&l.unit)
        .bind(l.expected)
        .bind(l.received)
        .bind(l.good)
        .bind(l.damaged)
        .bind(l.missing_parts)
        .bind(l.wrong_item)
        .bind(l.outstanding)
        .bind(l.over_received)
        .bind(to_json(&l.serials_expected))
        .bind(to_json(&l.serials_missing))
        .bind(to_json(&l.serials_unexpected))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn insert_discrepancy(&mut self, d: &DiscrepancyRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO shipment_discrepancies (shipment_id, line_id, kind, quantity, serials,
                 receipts, resolved)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.shipment_id)
        .bind(&d.line_id)
        .bind(&d.kind)
        .bind(d.quantity)
        .bind(to_json(&d.serials))
        .bind(to_json(&d.receipts))
        .bind(i64::from(d.resolved))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn insert_duplicate(&mut self, d: &DuplicateRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO shipment_duplicates (shipment_id, line_id, first_receipt,
                 second_receipt, reason, serials)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&d.shipment_id)
        .bind(&d.line_id)
        .bind(&d.first)
        .bind(&d.second)
        .bind(&d.reason)
        .bind(to_json(&d.serials))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn insert_conflict(&mut self, c: &ConflictRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO shipment_conflicts (shipment_id, path, candidates) VALUES ($1, $2, $3)",
        )
        .bind(&c.shipment_id)
        .bind(&c.path)
        .bind(to_json(&c.values))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn insert_receipt(&mut self, r: &ReceiptRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO shipment_receipts (shipment_id, receipt_id, line_id, quantity,
                 condition, serials, note, recorded_by, device_id, recorded_at,
                 received_at, voided, voids)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&r.shipment_id)
        .bind(&r.receipt_id)
        .bind(&r.line_id)
        .bind(r.quantity)
        .bind(&r.condition)
        .bind(to_json(&r.serials))
        .bind(&r.note)
        .bind(&r.recorded_by)
        .bind(&r.device_id)
        .bind(r.recorded_at)
        .bind(r.received_at)
        .bind(i64::from(r.voided))
        .bind(r.voids.as_deref())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    async fn write_receipts(&mut self, id: &str, rows: &[ReceiptRow]) -> Result<(), StorageError> {
        let stored: HashMap<String, (bool, Option<i64>)> = sqlx::query(
            "SELECT receipt_id, voided, received_at FROM shipment_receipts
             WHERE shipment_id = $1",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("receipt_id")?,
                (flag(r, "voided")?, r.try_get("received_at")?),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
        for r in rows {
            match stored.get(&r.receipt_id) {
                // The rest of a receipt never changes once recorded.
                Some(&(voided, reached)) if voided == r.voided && reached == r.received_at => {}
                Some(_) => {
                    sqlx::query(
                        "UPDATE shipment_receipts SET voided = $3, received_at = $4
                         WHERE shipment_id = $1 AND receipt_id = $2",
                    )
                    .bind(id)
                    .bind(&r.receipt_id)
                    .bind(i64::from(r.voided))
                    .bind(r.received_at)
                    .execute(self.conn())
                    .await?;
                }
                None => self.insert_receipt(r).await?,
            }
        }
        // Receipts are never removed from a document; a row without one can
        // only be left from older rules.
        let keep: std::collections::HashSet<&str> =
            rows.iter().map(|r| r.receipt_id.as_str()).collect();
        for gone in stored.keys().filter(|k| !keep.contains(k.as_str())) {
            sqlx::query("DELETE FROM shipment_receipts WHERE shipment_id = $1 AND receipt_id = $2")
                .bind(id)
                .bind(gone)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    async fn upsert_shipment(
        &mut self,
        row: &ShipmentRow,
        updated_at: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO shipments (id, facility_id, donor, programme, reference, expected_on,
                 created_by, created_at, status, expected, received, damaged, outstanding, receipts,
                 voided_receipts, duplicates, conflicts, open_discrepancies, last_receipt_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                     $18, $19, $20)
             ON CONFLICT (id) DO UPDATE SET
                 facility_id = excluded.facility_id, donor = excluded.donor,
                 programme = excluded.programme, reference = excluded.reference,
                 expected_on = excluded.expected_on, created_by = excluded.created_by,
                 created_at = excluded.created_at, status = excluded.status,
                 expected = excluded.expected, received = excluded.received,
                 damaged = excluded.damaged, outstanding = excluded.outstanding,
                 receipts = excluded.receipts, voided_receipts = excluded.voided_receipts,
                 duplicates = excluded.duplicates, conflicts = excluded.conflicts,
                 open_discrepancies = excluded.open_discrepancies,
                 last_receipt_at = excluded.last_receipt_at, updated_at = excluded.updated_at",
        )
        .bind(&row.id)
        .bind(&row.facility_id)
        .bind(&row.donor)
        .bind(&row.programme)
        .bind(&row.reference)
        .bind(row.expected_on.as_deref())
        .bind(&row.created_by)
        .bind(row.created_at)
        .bind(&row.status)
        .bind(row.expected)
        .bind(row.received)
        .bind(row.damaged)
        .bind(row.outstanding)
        .bind(row.receipts)
        .bind(row.voided_receipts)
        .bind(row.duplicates)
        .bind(row.conflicts)
        .bind(row.open_discrepancies)
        .bind(row.last_receipt_at)
        .bind(updated_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records that every row now follows `version` of the rules.
    pub async fn set_projection_version(&mut self, version: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE projection_meta SET version = $1 WHERE id = 1")
            .bind(version)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

impl Db {
    /// Which rules the stored rows follow (0: never built).
    pub async fn projection_version(&self) -> Result<i64, StorageError> {
        Ok(
            sqlx::query("SELECT version FROM projection_meta WHERE id = 1")
                .fetch_one(&self.pool)
                .await?
                .try_get("version")?,
        )
    }

    /// Every document id, in order.
    pub async fn document_ids(&self) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query("SELECT id FROM documents ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Runs `sql`, whose `{where}` becomes the filter's condition.
    async fn fetch<T>(
        &self,
        sql: &str,
        filter: &ReportFilter,
        scope: &Scope,
        category: CategoryOn,
        decode: fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, StorageError> {
        if *scope == Scope::Nothing {
            return Ok(Vec::new());
        }
        let (condition, values) = where_clause(filter, scope, category);
        let mut sql = sql.replace("{where}", &condition);
        if let Some(page) = filter.page {
            // Numbers the server checked, not text from the client.
            sql.push_str(&format!(" LIMIT {} OFFSET {}", page.limit, page.offset));
        }
        self.fetch_rows(&sql, &values, decode).await
    }

    /// Runs `sql` with `values` bound in order and decodes every row.
    async fn fetch_rows<T>(
        &self,
        sql: &str,
        values: &[String],
        decode: fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, StorageError> {
        let mut query = sqlx::query(sql);
        for value in values {
            query = query.bind(value.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(decode)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Shipments, newest first.
    pub async fn list_shipments(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<ShipmentRow>, StorageError> {
        let sql = format!(
            "SELECT {SHIPMENT_COLUMNS} FROM shipments s WHERE {{where}}
             ORDER BY s.created_at DESC, s.id"
        );
        self.fetch(&sql, filter, scope, CategoryOn::Shipment, shipment_row)
            .await
    }

    /// Manifest lines with their totals.
    pub async fn list_lines(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<LineRow>, StorageError> {
        let sql = "SELECT l.* FROM shipment_lines l JOIN shipments s ON s.id = l.shipment_id
             WHERE {where}
             ORDER BY l.shipment_id, l.line_id";
        self.fetch(
            sql,
            filter,
            scope,
            CategoryOn::Column("l.category"),
            line_row,
        )
        .await
    }

    /// Receipts, voided ones included, oldest first.
    pub async fn list_receipts(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<ReceiptRow>, StorageError> {
        let sql = "SELECT r.* FROM shipment_receipts r JOIN shipments s ON s.id = r.shipment_id
             WHERE {where}
             ORDER BY r.shipment_id, r.recorded_at, r.receipt_id";
        self.fetch(sql, filter, scope, CategoryOn::LineOf("r"), receipt_row)
            .await
    }

    /// Discrepancies, settled ones included.
    pub async fn list_discrepancies(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<DiscrepancyRow>, StorageError> {
        let sql =
            "SELECT d.* FROM shipment_discrepancies d JOIN shipments s ON s.id = d.shipment_id
             WHERE {where}
             ORDER BY d.shipment_id, d.line_id, d.kind";
        self.fetch(sql, filter, scope, CategoryOn::LineOf("d"), discrepancy_row)
            .await
    }

    /// Pairs of receipts that may be one delivery counted twice, each with
    /// who recorded it and when.
    pub async fn list_duplicates(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<DuplicateReport>, StorageError> {
        let sql = "SELECT d.*,
                    a.recorded_by AS first_recorded_by, a.recorded_at AS first_recorded_at,
                    b.recorded_by AS second_recorded_by, b.recorded_at AS second_recorded_at
             FROM shipment_duplicates d JOIN shipments s ON s.id = d.shipment_id
             LEFT JOIN shipment_receipts a
                 ON a.shipment_id = d.shipment_id AND a.receipt_id = d.first_receipt
             LEFT JOIN shipment_receipts b
                 ON b.shipment_id = d.shipment_id AND b.receipt_id = d.second_receipt
             WHERE {where}
             ORDER BY d.shipment_id, d.line_id, d.first_receipt, d.second_receipt";
        self.fetch(sql, filter, scope, CategoryOn::Shipment, |r| {
            Ok(DuplicateReport {
                row: duplicate_row(r)?,
                first_recorded_by: r.try_get("first_recorded_by")?,
                first_recorded_at: r.try_get("first_recorded_at")?,
                second_recorded_by: r.try_get("second_recorded_by")?,
                second_recorded_at: r.try_get("second_recorded_at")?,
            })
        })
        .await
    }

    /// Fields with conflicting concurrent edits.
    pub async fn list_conflicts(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<ConflictRow>, StorageError> {
        let sql = "SELECT d.* FROM shipment_conflicts d JOIN shipments s ON s.id = d.shipment_id
             WHERE {where}
             ORDER BY d.shipment_id, d.path";
        self.fetch(sql, filter, scope, CategoryOn::Shipment, conflict_row)
            .await
    }

    /// Attachment events, by shipment and id.
    pub async fn list_attachments(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<AttachmentRow>, StorageError> {
        let sql = "SELECT d.* FROM shipment_attachments d JOIN shipments s ON s.id = d.shipment_id
             WHERE {where}
             ORDER BY d.shipment_id, d.attachment_id";
        self.fetch(sql, filter, scope, CategoryOn::Shipment, attachment_row)
            .await
    }

    /// The attached files with this content that `scope` may see: who
    /// may upload or download a blob. Empty for a hash no shipment in
    /// scope references (or none at all), which callers answer with 404.
    pub async fn attachments_of_blob(
        &self,
        scope: &Scope,
        sha256: &str,
    ) -> Result<Vec<AttachmentRow>, StorageError> {
        if *scope == Scope::Nothing {
            return Ok(Vec::new());
        }
        let (condition, mut values) =
            where_clause(&ReportFilter::default(), scope, CategoryOn::Shipment);
        let sql = format!(
            "SELECT d.* FROM shipment_attachments d JOIN shipments s ON s.id = d.shipment_id
             WHERE {condition} AND d.sha256 = ${}
             ORDER BY d.shipment_id, d.attachment_id",
            values.len() + 1
        );
        values.push(sha256.to_owned());
        self.fetch_rows(&sql, &values, attachment_row).await
    }

    /// Totals per destination facility.
    pub async fn totals_by_facility(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<TotalsRow>, StorageError> {
        // Over the lines, so a line's surplus never fills another's gap
        // (received = expected - outstanding, each line capped). CAST:
        // PostgreSQL sums BIGINT into NUMERIC; COALESCE: a shipment
        // without lines sums to NULL.
        let sql = "SELECT s.facility_id AS key, CAST(COUNT(DISTINCT s.id) AS BIGINT) AS shipments,
                    CAST(COALESCE(SUM(l.expected), 0) AS BIGINT) AS expected,
                    CAST(COALESCE(SUM(l.expected - l.outstanding), 0) AS BIGINT) AS received,
                    CAST(COALESCE(SUM(l.damaged + l.missing_parts), 0) AS BIGINT) AS damaged,
                    CAST(COALESCE(SUM(l.outstanding), 0) AS BIGINT) AS outstanding,
                    CAST(COALESCE(SUM(l.over_received), 0) AS BIGINT) AS surplus,
                    CAST(COALESCE(SUM(l.wrong_item), 0) AS BIGINT) AS wrong_item
             FROM shipments s LEFT JOIN shipment_lines l ON l.shipment_id = s.id
             WHERE {where}
             GROUP BY s.facility_id ORDER BY s.facility_id";
        self.fetch(sql, filter, scope, CategoryOn::Shipment, totals_row)
            .await
    }

    /// Totals per item category (over the lines of that category).
    pub async fn totals_by_category(
        &self,
        scope: &Scope,
        filter: &ReportFilter,
    ) -> Result<Vec<TotalsRow>, StorageError> {
        let sql =
            "SELECT l.category AS key, CAST(COUNT(DISTINCT l.shipment_id) AS BIGINT) AS shipments,
                    CAST(SUM(l.expected) AS BIGINT) AS expected,
                    CAST(SUM(l.expected - l.outstanding) AS BIGINT) AS received,
                    CAST(SUM(l.damaged + l.missing_parts) AS BIGINT) AS damaged,
                    CAST(SUM(l.outstanding) AS BIGINT) AS outstanding,
                    CAST(SUM(l.over_received) AS BIGINT) AS surplus,
                    CAST(SUM(l.wrong_item) AS BIGINT) AS wrong_item
             FROM shipment_lines l JOIN shipments s ON s.id = l.shipment_id
             WHERE {where}
             GROUP BY l.category ORDER BY l.category";
        self.fetch(
            sql,
            filter,
            scope,
            CategoryOn::Column("l.category"),
            totals_row,
        )
        .await
    }
}
