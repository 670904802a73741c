//! `aidsync-query-bench`: the coordinator dashboard's queries over a large
//! data set.
//!
//! Seeds a throwaway database with realistic shipments (several donors and
//! item categories, receipts by several receivers per facility, damaged,
//! incomplete and wrong items, counting errors, deliveries counted twice,
//! corrections and voids, coordinators' reviews, a few concurrent edits),
//! each built as a real automerge document with `ShipmentDoc` and stored
//! with its projection exactly as the server stores it, so every row comes
//! from the real derivation. Then times each dashboard query, with a
//! regional coordinator's scope and with every facility in scope, and
//! prints one JSON line per query and a summary line on stdout. Progress
//! goes to stderr.
//!
//! It only ever seeds an empty database (a fresh SQLite file by default);
//! `--reuse` measures a database it seeded before, without writing to it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{Context, bail};
use automerge::ActorId;
use clap::Parser;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use aidsync_server::service::projections;
use aidsync_server::storage::{
    Backend, ChangeAuthor, Db, FacilityRow, ReportFilter, Scope, normalize_url,
};
use aidsync_shared::derive::{Status, Summary, summarize};
use aidsync_shared::ids::{
    DeviceId, FacilityId, LineId, ReceiptId, ReviewId, ShipmentId, UserId, id_from_random,
};
use aidsync_shared::model::{
    Condition, Line, NewReceipt, NewReview, NewShipment, Recorder, Shipment, ShipmentDoc, Verdict,
};
use aidsync_shared::projection::project;
use aidsync_tests::harness::TestDb;

#[derive(Debug, Parser)]
#[command(about = "Time the coordinator dashboard queries over many shipments")]
struct Args {
    /// Database to seed and query: a SQLite path or URL, or a PostgreSQL
    /// URL of a throwaway database. Default: a fresh SQLite file in a
    /// temporary directory, removed at the end. Seeding refuses a database
    /// that already has tables.
    #[arg(long)]
    database_url: Option<String>,
    /// Shipments to seed.
    #[arg(long, default_value_t = 10_000)]
    shipments: usize,
    /// Receipts per shipment, on average (voids and corrections included;
    /// shipments still awaiting delivery have none).
    #[arg(long, default_value_t = 10)]
    receipts_per_shipment: usize,
    /// Manifest lines per shipment.
    #[arg(long, default_value_t = 3)]
    lines_per_shipment: usize,
    /// Timed repetitions of each query (after one untimed warm-up).
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Seed for the data set; random when not given. Printed in the
    /// summary to rebuild the same data.
    #[arg(long)]
    seed: Option<u64>,
    /// Shipments stored per transaction while seeding.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Query the shipments already in `--database-url` (seeded by an earlier
    /// run) instead of seeding.
    #[arg(long)]
    reuse: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args).await {
        eprintln!("aidsync-query-bench: {e:#}");
        std::process::exit(2);
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    if args.runs == 0 || args.batch == 0 {
        bail!("--runs and --batch must be at least 1");
    }
    if !(1..=50).contains(&args.lines_per_shipment) {
        bail!("--lines-per-shipment must be between 1 and 50");
    }
    if args.reuse && args.database_url.is_none() {
        bail!("--reuse needs --database-url (the default database is new every run)");
    }
    // `temp` is kept until the end: dropping it removes the SQLite file.
    let (temp, url) = match &args.database_url {
        Some(url) => (None, url.clone()),
        None => {
            let temp = TestDb::sqlite()?;
            let url = temp.url().to_owned();
            (Some(temp), url)
        }
    };

    // Look before connecting: connecting runs the migrations, which would
    // already change a database that is not ours.
    let tables = count_tables(&url).await?;
    if !args.reuse && tables > 0 {
        bail!(
            "the database already has {tables} tables; this benchmark seeds only an empty \
             database (pass a throwaway one, or --reuse to query one it seeded before)"
        );
    }

    let db = Db::connect(&url).await.context("connecting")?;
    let seed = args.seed.unwrap_or_else(|| rand::rng().next_u64());
    let seeded = if args.reuse {
        None
    } else {
        Some(seed_database(&db, args, seed).await?)
    };

    let all = db
        .list_shipments(&Scope::All, &ReportFilter::default())
        .await?;
    if all.is_empty() {
        bail!("the database holds no shipments to query");
    }
    let receipts: i64 = all.iter().map(|s| s.receipts + s.voided_receipts).sum();
    let targets = Targets::choose(&db, &all).await?;
    eprintln!(
        "aidsync-query-bench: {} shipments, {receipts} receipts; region {:?}, facility {:?}, \
         donor {:?}, category {:?}, shipment {:?}; {} runs per query",
        all.len(),
        targets.region,
        targets.facility,
        targets.donor,
        targets.category,
        targets.shipment,
        args.runs
    );
    drop(all);

    let cases = targets.cases();
    let scopes = [
        ("region", Scope::Region(targets.region.clone())),
        ("all", Scope::All),
    ];
    let mut slowest: Option<(f64, String)> = None;
    for (scope_name, scope) in &scopes {
        for case in &cases {
            let result = time_case(&db, scope, case, args.runs).await?;
            eprintln!(
                "  {:<28} {:<6} {:>7} rows  p50 {:>8.3} ms  p95 {:>8.3} ms  max {:>8.3} ms",
                case.name, scope_name, result.rows, result.p50, result.p95, result.max
            );
            if slowest.as_ref().is_none_or(|(p95, _)| result.p95 > *p95) {
                slowest = Some((result.p95, format!("{} ({scope_name})", case.name)));
            }
            let mut line = json!({
                "query": case.name,
                "scope": scope_name,
                "filter": case.label,
                "rows": result.rows,
                "p50_ms": round3(result.p50),
                "p95_ms": round3(result.p95),
                "max_ms": round3(result.max),
            });
            if let Some(open) = result.open {
                line["open_rows"] = json!(open);
            }
            println!("{line}");
        }
    }

    let (lines, facilities) = (
        db.list_lines(&Scope::All, &ReportFilter::default())
            .await?
            .len(),
        db.list_facilities().await?.len(),
    );
    let summary = json!({
        "summary": true,
        "backend": match db.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        "shipments": targets.shipments,
        "receipts": receipts,
        "lines": lines,
        "facilities": facilities,
        "region": targets.region,
        "seed_seconds": seeded.map(round3),
        "seed": if args.reuse { Value::Null } else { json!(seed) },
        "runs": args.runs,
        "slowest_p95": slowest.map(|(p95, name)| json!({"query": name, "p95_ms": round3(p95)})),
    });
    println!("{summary}");
    db.close().await;
    drop(temp);
    Ok(())
}

/// Tables in the database at `url` (0 for a new one), read without running
/// any migration.
async fn count_tables(url: &str) -> anyhow::Result<i64> {
    sqlx::any::install_default_drivers();
    let (url, backend) = normalize_url(url)?;
    let mut conn = sqlx::AnyConnection::connect(&url)
        .await
        .context("connecting")?;
    let sql = match backend {
        Backend::Sqlite => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        }
    };
    let n: i64 = sqlx::query(sql).fetch_one(&mut conn).await?.try_get("n")?;
    conn.close().await?;
    Ok(n)
}

// ---------------------------------------------------------------------------
// Queries

/// What the filtered queries filter on, picked from the data so that a
/// reused database is measured the same way as a fresh one.
struct Targets {
    shipments: usize,
    /// The region of the busiest facility: its coordinator's scope.
    region: String,
    /// The busiest facility (its receipts list is the largest).
    facility: String,
    /// The donor with the most shipments.
    donor: String,
    /// The item category on the most shipments.
    category: String,
    /// The region's shipment with the most receipts (the heaviest detail page).
    shipment: String,
}

impl Targets {
    async fn choose(
        db: &Db,
        all: &[aidsync_shared::projection::ShipmentRow],
    ) -> anyhow::Result<Targets> {
        let mut per_facility: BTreeMap<&str, usize> = BTreeMap::new();
        let mut per_donor: BTreeMap<&str, usize> = BTreeMap::new();
        for s in all {
            *per_facility.entry(&s.facility_id).or_default() += 1;
            *per_donor.entry(&s.donor).or_default() += 1;
        }
        let busiest = |m: &BTreeMap<&str, usize>| {
            m.iter()
                .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))
                .map(|(k, _)| (*k).to_owned())
        };
        let facility = busiest(&per_facility).context("no shipments")?;
        let donor = busiest(&per_donor).context("no shipments")?;
        let region = db
            .facility(&facility)
            .await?
            .map(|f| f.region)
            .with_context(|| format!("facility {facility} is not in the facilities table"))?;
        let category = db
            .totals_by_category(&Scope::All, &ReportFilter::default())
            .await?
            .into_iter()
            .max_by_key(|t| (t.shipments, std::cmp::Reverse(t.key.clone())))
            .map(|t| t.key)
            .context("no manifest lines")?;
        let in_region: BTreeSet<String> = db
            .list_facilities()
            .await?
            .into_iter()
            .filter(|f| f.region == region)
            .map(|f| f.id)
            .collect();
        let shipment = all
            .iter()
            .filter(|s| in_region.contains(&s.facility_id))
            .max_by_key(|s| {
                (
                    s.receipts + s.voided_receipts,
                    std::cmp::Reverse(s.id.clone()),
                )
            })
            .map(|s| s.id.clone())
            .context("no shipment in the region")?;
        Ok(Targets {
            shipments: all.len(),
            region,
            facility,
            donor,
            category,
            shipment,
        })
    }

    fn cases(&self) -> Vec<Case> {
        let none = ReportFilter::default();
        let with = |set: fn(&mut ReportFilter, String), value: &str| {
            let mut f = ReportFilter::default();
            set(&mut f, value.to_owned());
            f
        };
        vec![
            Case::new("list_shipments", Query::Shipments, none.clone()),
            Case::new(
                "list_shipments_by_status",
                Query::Shipments,
                with(|f, v| f.status = Some(v), Status::Discrepancy.as_str()),
            ),
            Case::new(
                "list_shipments_by_donor",
                Query::Shipments,
                with(|f, v| f.donor = Some(v), &self.donor),
            ),
            Case::new(
                "list_shipments_by_category",
                Query::Shipments,
                with(|f, v| f.category = Some(v), &self.category),
            ),
            Case::new("totals_by_facility", Query::TotalsByFacility, none.clone()),
            Case::new("totals_by_category", Query::TotalsByCategory, none.clone()),
            Case::new("list_discrepancies", Query::Discrepancies, none.clone()),
            Case::new("list_duplicates", Query::Duplicates, none),
            Case::new(
                "list_receipts_by_facility",
                Query::Receipts,
                with(|f, v| f.facility = Some(v), &self.facility),
            ),
            Case::new(
                "list_receipts_by_shipment",
                Query::Receipts,
                with(|f, v| f.shipment = Some(v), &self.shipment),
            ),
        ]
    }
}

#[derive(Debug, Clone, Copy)]
enum Query {
    Shipments,
    TotalsByFacility,
    TotalsByCategory,
    Discrepancies,
    Duplicates,
    Receipts,
}

struct Case {
    name: &'static str,
    query: Query,
    filter: ReportFilter,
    /// The filter as `key=value`, for the output.
    label: String,
}

impl Case {
    fn new(name: &'static str, query: Query, filter: ReportFilter) -> Case {
        let f = &filter;
        let label = [
            ("facility", &f.facility),
            ("donor", &f.donor),
            ("category", &f.category),
            ("status", &f.status),
            ("shipment", &f.shipment),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ");
        Case {
            name,
            query,
            filter,
            label,
        }
    }
}

struct Timing {
    rows: usize,
    /// Discrepancies no review has settled (the dashboard shows these
    /// first); only for the discrepancies query.
    open: Option<usize>,
    p50: f64,
    p95: f64,
    max: f64,
}

/// Runs one query once: rows returned, and open ones for discrepancies.
async fn run_once(db: &Db, scope: &Scope, case: &Case) -> anyhow::Result<(usize, Option<usize>)> {
    let f = &case.filter;
    Ok(match case.query {
        Query::Shipments => (db.list_shipments(scope, f).await?.len(), None),
        Query::TotalsByFacility => (db.totals_by_facility(scope, f).await?.len(), None),
        Query::TotalsByCategory => (db.totals_by_category(scope, f).await?.len(), None),
        Query::Discrepancies => {
            let rows = db.list_discrepancies(scope, f).await?;
            let open = rows.iter().filter(|d| !d.resolved).count();
            (rows.len(), Some(open))
        }
        Query::Duplicates => (db.list_duplicates(scope, f).await?.len(), None),
        Query::Receipts => (db.list_receipts(scope, f).await?.len(), None),
    })
}

/// One warm-up call (fills the page cache and the prepared-statement
/// cache, as on a server that has been up for a while), then `runs` timed
/// calls; each time covers the query, fetching and decoding every row.
async fn time_case(db: &Db, scope: &Scope, case: &Case, runs: usize) -> anyhow::Result<Timing> {
    let (rows, open) = run_once(db, scope, case).await.with_context(|| case.name)?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let (n, _) = run_once(db, scope, case).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if n != rows {
            bail!(
                "{}: {rows} rows, then {n} (is something writing?)",
                case.name
            );
        }
    }
    samples.sort_by(f64::total_cmp);
    Ok(Timing {
        rows,
        open,
        p50: percentile(&samples, 0.50),
        p95: percentile(&samples, 0.95),
        max: samples.last().copied().unwrap_or(0.0),
    })
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------
// The data set

const REGIONS: [(&str, [(&str, &str); 5]); 4] = [
    (
        "Kharkiv",
        [
            ("kharkiv-regional", "Kharkiv Regional Clinical Hospital"),
            ("kharkiv-emergency", "Kharkiv City Emergency Hospital"),
            ("izium-central", "Izium Central City Hospital"),
            ("chuhuiv-central", "Chuhuiv Central District Hospital"),
            ("kupiansk-central", "Kupiansk Central District Hospital"),
        ],
    ),
    (
        "Dnipro",
        [
            ("dnipro-mechnikov", "Dnipro Mechnikov Regional Hospital"),
            ("dnipro-children", "Dnipro Regional Children's Hospital"),
            ("kryvyi-rih-city", "Kryvyi Rih City Hospital No. 2"),
            ("kamianske-city", "Kamianske City Hospital"),
            ("nikopol-central", "Nikopol Central District Hospital"),
        ],
    ),
    (
        "Zaporizhzhia",
        [
            (
                "zaporizhzhia-regional",
                "Zaporizhzhia Regional Clinical Hospital",
            ),
            (
                "zaporizhzhia-emergency",
                "Zaporizhzhia City Emergency Hospital",
            ),
            (
                "zaporizhzhia-children",
                "Zaporizhzhia Regional Children's Hospital",
            ),
            ("vilniansk-central", "Vilniansk Central District Hospital"),
            ("orikhiv-central", "Orikhiv Central District Hospital"),
        ],
    ),
    (
        "Mykolaiv",
        [
            ("mykolaiv-regional", "Mykolaiv Regional Clinical Hospital"),
            ("mykolaiv-children", "Mykolaiv Regional Children's Hospital"),
            ("voznesensk-central", "Voznesensk Central District Hospital"),
            ("pervomaisk-central", "Pervomaisk Central District Hospital"),
            ("bashtanka-central", "Bashtanka Central District Hospital"),
        ],
    ),
];

/// How much of a region's traffic each of its five facilities gets: the
/// regional hospital most, district hospitals least.
const FACILITY_WEIGHTS: [u32; 5] = [5, 3, 2, 2, 1];

/// (donor, id prefix, programme, weight)
const DONORS: [(&str, &str, &str, u32); 10] = [
    ("JICA", "JICA", "Emergency Grant Aid", 20),
    ("USAID", "USAID", "Health Resilience Activity", 18),
    ("ECHO", "ECHO", "Humanitarian Implementation Plan", 14),
    ("WHO", "WHO", "Trauma and Emergency Care", 12),
    ("UNICEF", "UNICEF", "Maternal and Child Health", 10),
    ("UNDP", "UNDP", "Recovery and Energy", 6),
    ("GIZ", "GIZ", "Hospital Partnerships", 6),
    ("KOICA", "KOICA", "Medical Equipment Support", 5),
    ("Direct Relief", "DR", "Emergency Medical Aid", 5),
    ("MSF", "MSF", "Surgical Support", 4),
];

struct Item {
    item: &'static str,
    category: &'static str,
    unit: &'static str,
    /// Serial numbers are listed on the manifest for equipment, not for
    /// consumables.
    serial_prefix: Option<&'static str>,
    quantity: (u64, u64),
}

const fn item(
    item: &'static str,
    category: &'static str,
    unit: &'static str,
    serial_prefix: Option<&'static str>,
    quantity: (u64, u64),
) -> Item {
    Item {
        item,
        category,
        unit,
        serial_prefix,
        quantity,
    }
}

const CATALOGUE: [Item; 20] = [
    item("MRI system 1.5T", "imaging", "system", Some("MRI"), (1, 1)),
    item(
        "CT scanner 64-slice",
        "imaging",
        "system",
        Some("CT"),
        (1, 2),
    ),
    item("Digital X-ray unit", "imaging", "unit", Some("DXR"), (1, 4)),
    item("Mobile C-arm", "imaging", "unit", Some("CARM"), (1, 3)),
    item(
        "Portable ultrasound machine",
        "ultrasound",
        "unit",
        Some("PUS"),
        (2, 12),
    ),
    item(
        "Ultrasound probe, convex",
        "ultrasound",
        "unit",
        Some("UPC"),
        (4, 20),
    ),
    item(
        "Endoscopic imaging system",
        "endoscopy",
        "system",
        Some("END"),
        (1, 3),
    ),
    item(
        "Flexible video gastroscope",
        "endoscopy",
        "unit",
        Some("GIF"),
        (2, 10),
    ),
    item(
        "Neurosurgical microscope",
        "neurosurgery",
        "unit",
        Some("NSM"),
        (1, 2),
    ),
    item(
        "Cranial drill set",
        "neurosurgery",
        "set",
        Some("CDS"),
        (2, 8),
    ),
    item(
        "Ambulance vehicle (type B)",
        "vehicle",
        "vehicle",
        Some("VIN"),
        (1, 5),
    ),
    item(
        "Mobile clinic vehicle",
        "vehicle",
        "vehicle",
        Some("VIN"),
        (1, 2),
    ),
    item("Patient monitor", "monitoring", "unit", Some("PM"), (5, 40)),
    item("Infusion pump", "monitoring", "unit", Some("INF"), (10, 60)),
    item(
        "Oxygen concentrator",
        "respiratory",
        "unit",
        Some("OXC"),
        (5, 30),
    ),
    item(
        "ICU ventilator",
        "respiratory",
        "unit",
        Some("VEN"),
        (2, 10),
    ),
    item(
        "Diesel generator 100 kVA",
        "power",
        "unit",
        Some("GEN"),
        (1, 3),
    ),
    item(
        "Haematology analyser",
        "laboratory",
        "unit",
        Some("HEM"),
        (1, 4),
    ),
    item(
        "Surgical gloves (box of 100)",
        "consumables",
        "box",
        None,
        (50, 500),
    ),
    item(
        "Trauma dressing kit",
        "consumables",
        "kit",
        None,
        (100, 1000),
    ),
];

/// Notes receivers write on receipts that are not in good order.
const DAMAGE_NOTES: [&str; 4] = [
    "Crate crushed in transit, casing cracked",
    "Water damage on the packaging and the unit",
    "Screen broken on arrival",
    "Forklift damage at the warehouse",
];
const MISSING_PARTS_NOTES: [&str; 3] = [
    "Power cables missing",
    "No user manual or calibration certificate",
    "Accessory kit not in the box",
];
const WRONG_ITEM_NOTES: [&str; 3] = [
    "Different model from the manifest",
    "Spare parts instead of complete units",
    "Consumables for another device",
];

/// 2024-01-01T00:00:00Z: shipments are spread over the two years after it.
const START_MS: i64 = 1_704_067_200_000;
const MINUTE_MS: i64 = 60 * 1000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const SPAN_MS: i64 = 730 * DAY_MS;

/// A person with a phone or two, or a coordinator with a laptop.
struct Person {
    user: UserId,
    devices: Vec<(DeviceId, ActorId)>,
}

struct Facility {
    id: FacilityId,
    region: usize,
    weight: u32,
    receivers: Vec<Person>,
}

/// Facilities, their receivers, and two coordinators per region.
struct World {
    facilities: Vec<Facility>,
    coordinators: Vec<[Person; 2]>,
}

impl World {
    fn new() -> anyhow::Result<World> {
        let mut actors = 0u64;
        // Deterministic actor ids, so a seed always gives the same documents.
        let mut actor = || {
            actors += 1;
            let mut bytes = b"aidbench".to_vec();
            bytes.extend_from_slice(&actors.to_be_bytes());
            ActorId::from(bytes)
        };
        let mut facilities = Vec::new();
        let mut coordinators = Vec::new();
        for (region, (name, list)) in REGIONS.iter().enumerate() {
            let mut coordinator = |n: usize| -> anyhow::Result<Person> {
                let user = format!("coord-{}-{n}", name.to_lowercase());
                Ok(Person {
                    devices: vec![(DeviceId::parse(format!("{user}-laptop"))?, actor())],
                    user: UserId::parse(user)?,
                })
            };
            coordinators.push([coordinator(1)?, coordinator(2)?]);
            for ((id, _), weight) in list.iter().zip(FACILITY_WEIGHTS) {
                let mut receivers = Vec::new();
                for r in 1..=3 {
                    let user = format!("{id}-r{r}");
                    // Some receivers use two phones (a spare, a shared one).
                    let phones = if r == 1 { 2 } else { 1 };
                    let mut devices = Vec::new();
                    for d in 1..=phones {
                        devices.push((DeviceId::parse(format!("{user}-phone{d}"))?, actor()));
                    }
                    receivers.push(Person {
                        user: UserId::parse(user)?,
                        devices,
                    });
                }
                facilities.push(Facility {
                    id: FacilityId::parse(*id)?,
                    region,
                    weight,
                    receivers,
                });
            }
        }
        Ok(World {
            facilities,
            coordinators,
        })
    }
}

/// Picks an index with probability proportional to its weight.
fn weighted(rng: &mut StdRng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut x = rng.random_range(0..total.max(1));
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    0
}

fn random_id(rng: &mut StdRng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    id_from_random(bytes)
}

/// `YYYY-MM-DD` of a time in ms since the epoch (UTC).
fn date_of(ms: i64) -> String {
    let mut text = aidsync_server::clock::format_utc(ms);
    text.truncate(10);
    text
}

/// Receipts per shipment: `per_shipment` each, except that the newest
/// shipments have mostly not arrived yet (and a few older ones never did);
/// their receipts go to other shipments, so the total stays exact.
fn receipt_counts(rng: &mut StdRng, shipments: usize, per_shipment: usize) -> Vec<usize> {
    let mut counts = vec![per_shipment; shipments];
    if per_shipment == 0 || shipments < 2 {
        return counts;
    }
    let recent = shipments - shipments / 14;
    let awaiting: Vec<bool> = (0..shipments)
        .map(|i| rng.random_bool(if i >= recent { 0.85 } else { 0.01 }))
        .collect();
    let arrived: Vec<usize> = (0..shipments).filter(|&i| !awaiting[i]).collect();
    if arrived.is_empty() {
        return counts;
    }
    for i in (0..shipments).filter(|&i| awaiting[i]) {
        for _ in 0..counts[i] {
            counts[arrived[rng.random_range(0..arrived.len())]] += 1;
        }
        counts[i] = 0;
    }
    counts
}

/// Splits `total` units into `parts` positive amounts (`parts <= total`).
fn split(rng: &mut StdRng, total: u64, parts: usize) -> Vec<u64> {
    if parts == 0 {
        return Vec::new();
    }
    let mut cuts = BTreeSet::new();
    while cuts.len() < parts - 1 {
        cuts.insert(rng.random_range(1..total));
    }
    let mut out = Vec::with_capacity(parts);
    let mut last = 0;
    for cut in cuts.into_iter().chain([total]) {
        out.push(cut - last);
        last = cut;
    }
    out
}

/// What happens to a shipment after it is created, in time order.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A receiver counts part of a line's delivery.
    Record { line: usize, quantity: u64 },
    /// A second receiver, unaware, counts an earlier delivery again.
    CountedTwice,
    /// Someone voids an earlier receipt, or replaces it with a correction.
    Void,
}

/// A receipt as recorded, for later events to refer to.
struct Recorded {
    id: ReceiptId,
    line: usize,
    quantity: u64,
    condition: Condition,
    serials: Vec<String>,
    receiver: usize,
    at: i64,
    /// It voids another receipt (a correction or a pure void).
    is_void: bool,
    /// It counts an earlier delivery a second time.
    twice: bool,
    voided: bool,
}

/// One shipment ready to store.
struct Built {
    id: ShipmentId,
    facility: FacilityId,
    doc: ShipmentDoc,
    shipment: Shipment,
    summary: Summary,
    /// When its changes reached the server (phones sync after being offline).
    received_at: i64,
}

fn build_shipment(
    rng: &mut StdRng,
    world: &World,
    n: usize,
    total: usize,
    receipts: usize,
    lines: usize,
) -> anyhow::Result<Built> {
    // Who, for whom, when.
    let region = rng.random_range(0..REGIONS.len());
    let local: Vec<&Facility> = world
        .facilities
        .iter()
        .filter(|f| f.region == region)
        .collect();
    let facility = local[weighted(rng, local.iter().map(|f| f.weight))];
    let coordinators = &world.coordinators[region];
    let (donor, prefix, programme, _) = DONORS[weighted(rng, DONORS.iter().map(|d| d.3))];
    let created_at = START_MS
        + (SPAN_MS as f64 * n as f64 / total.max(1) as f64) as i64
        + rng.random_range(0..8 * HOUR_MS);
    let expected_ms = created_at + rng.random_range(10..60) * DAY_MS;
    let year = &date_of(created_at)[..4];
    let id = ShipmentId::parse(format!("{prefix}-{year}-{n:06}"))?;

    // The manifest: distinct items, serials listed for equipment, and
    // enough units in all for every receipt to count some (a shipment of
    // one MRI does not get ten receipts): the line that usually comes in
    // the largest numbers takes up the difference.
    let mut picks: Vec<usize> = (0..CATALOGUE.len()).collect();
    picks.shuffle(rng);
    let items: Vec<&Item> = (0..lines)
        .map(|l| &CATALOGUE[picks[l % picks.len()]])
        .collect();
    let mut quantities: Vec<u64> = items
        .iter()
        .map(|it| rng.random_range(it.quantity.0..=it.quantity.1))
        .collect();
    let short = (receipts as u64).saturating_sub(quantities.iter().sum());
    if let Some(l) = (0..lines).max_by_key(|&l| items[l].quantity.1) {
        quantities[l] += short;
    }
    let manifest: Vec<Line> = (0..lines)
        .map(|l| {
            let (it, quantity) = (items[l], quantities[l]);
            let serials_expected = match it.serial_prefix {
                Some(p) => (1..=quantity)
                    .map(|k| format!("{p}-{n:06}-{l}-{k:04}"))
                    .collect(),
                None => Vec::new(),
            };
            Ok(Line {
                id: LineId::parse(format!("l{}", l + 1))?,
                item: it.item.to_owned(),
                category: it.category.to_owned(),
                unit: it.unit.to_owned(),
                quantity_expected: quantity,
                serials_expected,
                accessories: Vec::new(),
                unit_value: None,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let new = NewShipment {
        id: id.clone(),
        donor: donor.to_owned(),
        programme: format!("{donor} {programme} {year}"),
        reference: format!("{prefix}/{year}/{}", rng.random_range(1000..99_999)),
        destination_facility: facility.id.clone(),
        expected_on: Some(date_of(expected_ms)),
        note: String::new(),
        lines: manifest.clone(),
    };
    let coordinator = &coordinators[rng.random_range(0..2)];
    let mut doc = ShipmentDoc::create(
        &new,
        &coordinator.user,
        coordinator.devices[0].1.clone(),
        created_at,
    )?;

    // A few shipments get two coordinators' notes at once: a conflict.
    if rng.random_bool(0.005) {
        let mut other = ShipmentDoc::from_automerge(doc.automerge_mut().fork());
        other.set_actor(coordinators[1].devices[0].1.clone());
        doc.set_actor(coordinators[0].devices[0].1.clone());
        doc.set_note(
            "Customs cleared at Yahodyn, truck due Tuesday",
            created_at + DAY_MS,
        )?;
        other.set_note(
            "Held at the border: import permit missing",
            created_at + DAY_MS + 5 * MINUTE_MS,
        )?;
        doc.automerge_mut().merge(other.automerge_mut())?;
    }

    // What arrives: everything, or (a fifth of shipments) only part so far.
    let partial = rng.random_bool(0.2);
    let mut deliver: Vec<u64> = manifest
        .iter()
        .map(|l| match (partial, l.quantity_expected) {
            (false, q) => q,
            (true, 1) => rng.random_range(0..=1),
            (true, q) => rng.random_range(1..q),
        })
        .collect();
    if deliver.iter().all(|&d| d == 0) {
        deliver[0] = 1;
    }
    // A few receipts void or correct an earlier one, a few count a
    // delivery a second time; the first receipt is always a plain one.
    let (mut voids, mut twice) = (0, 0);
    for _ in 1..receipts {
        match rng.random_range(0..1000) {
            0..40 => voids += 1,
            40..50 => twice += 1,
            _ => {}
        }
    }
    let cap = receipts.saturating_sub(1) / 2;
    voids = voids.min(cap);
    twice = twice.min(cap - voids);
    // Each line that arrives gets a receipt, the rest spread at random.
    let mut parts = vec![0usize; lines];
    let mut left = receipts - voids - twice;
    let mut order: Vec<usize> = (0..lines).collect();
    order.shuffle(rng);
    for &l in &order {
        if left > 0 && deliver[l] > 0 {
            parts[l] += 1;
            left -= 1;
        }
    }
    while left > 0 {
        let open: Vec<usize> = (0..lines)
            .filter(|&l| (parts[l] as u64) < deliver[l])
            .collect();
        let l = if let Some(&l) = open.get(rng.random_range(0..open.len().max(1))) {
            l
        } else if let Some(l) = (0..lines).find(|&l| deliver[l] < quantities[l]) {
            // Every unit that arrived so far has its receipt: more arrived.
            deliver[l] += 1;
            l
        } else {
            // Cannot happen (the manifest has a unit per receipt), but the
            // total must stay exact: count something twice.
            twice += left;
            break;
        };
        parts[l] += 1;
        left -= 1;
    }
    let mut events: Vec<Event> = Vec::with_capacity(receipts);
    for (line, (&units, &n_parts)) in deliver.iter().zip(&parts).enumerate() {
        for quantity in split(rng, units, n_parts) {
            events.push(Event::Record { line, quantity });
        }
    }
    events.shuffle(rng);
    // Second counts and voids always follow at least one receipt.
    for extra in std::iter::repeat_n(Event::CountedTwice, twice)
        .chain(std::iter::repeat_n(Event::Void, voids))
    {
        if events.is_empty() {
            break;
        }
        let at = rng.random_range(1..=events.len());
        events.insert(at, extra);
    }

    // Record them, as phones would, each signed by its device.
    let mut serial_cursor = vec![0usize; lines];
    let mut recorded: Vec<Recorded> = Vec::with_capacity(events.len());
    let mut at = expected_ms + rng.random_range(-3 * DAY_MS..10 * DAY_MS);
    let main_receiver = rng.random_range(0..facility.receivers.len());
    for event in events {
        // Several boxes of one truck, or the next truck days later.
        at += if rng.random_bool(0.4) {
            rng.random_range(5 * MINUTE_MS..2 * HOUR_MS)
        } else {
            rng.random_range(DAY_MS..5 * DAY_MS)
        };
        // Whoever is on shift records most of a shipment.
        let receiver = if rng.random_bool(0.85) {
            main_receiver
        } else {
            rng.random_range(0..facility.receivers.len())
        };
        // When the phone records it; a second count comes soon after the first.
        let mut when = at;
        let new = match event {
            Event::Record { line, quantity } => {
                // Most deliveries arrive in good order; about one shipment
                // in six has a receipt that is not.
                let condition = match rng.random_range(0..1000) {
                    0..10 => Condition::Damaged,
                    10..15 => Condition::MissingParts,
                    15..18 => Condition::WrongItem,
                    _ => Condition::Good,
                };
                let expected = &manifest[line].serials_expected;
                let (mut quantity, mut serials) = (quantity, Vec::new());
                if condition != Condition::WrongItem && !expected.is_empty() {
                    let from = serial_cursor[line].min(expected.len());
                    let to = (from + quantity as usize).min(expected.len());
                    serials = expected[from..to].to_vec();
                    serial_cursor[line] = to;
                    // A mistyped serial: one unexpected, one never seen.
                    if !serials.is_empty() && rng.random_bool(0.004) {
                        serials[0].push_str("-B");
                    }
                } else if expected.is_empty() && rng.random_bool(0.005) {
                    // A counting error on a bulk line: a few too many.
                    quantity += rng.random_range(1..=3);
                }
                let note = match condition {
                    Condition::Good => "",
                    Condition::Damaged => DAMAGE_NOTES[rng.random_range(0..DAMAGE_NOTES.len())],
                    Condition::MissingParts => {
                        MISSING_PARTS_NOTES[rng.random_range(0..MISSING_PARTS_NOTES.len())]
                    }
                    Condition::WrongItem => {
                        WRONG_ITEM_NOTES[rng.random_range(0..WRONG_ITEM_NOTES.len())]
                    }
                };
                Planned::new(rng, line, quantity, condition, serials, note, receiver)?
            }
            Event::CountedTwice => {
                let candidates: Vec<usize> = (0..recorded.len())
                    .filter(|&i| !recorded[i].is_void && !recorded[i].voided)
                    .collect();
                match candidates.get(rng.random_range(0..candidates.len().max(1))) {
                    Some(&i) => {
                        let first = &recorded[i];
                        // Someone else at the same hospital, soon after.
                        let others = facility.receivers.len();
                        let receiver =
                            (first.receiver + rng.random_range(1..others.max(2))) % others.max(1);
                        when = first.at + rng.random_range(20 * MINUTE_MS..8 * HOUR_MS);
                        let mut planned = Planned::new(
                            rng,
                            first.line,
                            first.quantity,
                            first.condition,
                            first.serials.clone(),
                            "",
                            receiver,
                        )?;
                        planned.twice = true;
                        planned
                    }
                    // Everything was voided: an extra unit turns up instead.
                    None => Planned::new(rng, 0, 1, Condition::Good, Vec::new(), "", receiver)?,
                }
            }
            Event::Void => {
                let active = |i: &usize| !recorded[*i].is_void && !recorded[*i].voided;
                // A delivery counted twice is cancelled; anything else is
                // replaced by a correction.
                let twice: Vec<usize> = (0..recorded.len())
                    .filter(active)
                    .filter(|&i| recorded[i].twice)
                    .collect();
                let candidates: Vec<usize> = if twice.is_empty() {
                    (0..recorded.len()).filter(active).collect()
                } else {
                    twice
                };
                match candidates.get(rng.random_range(0..candidates.len().max(1))) {
                    Some(&i) => {
                        recorded[i].voided = true;
                        let first = &recorded[i];
                        let mut planned = if first.twice {
                            Planned::new(
                                rng,
                                first.line,
                                0,
                                Condition::Good,
                                Vec::new(),
                                "Counted twice, cancelling",
                                first.receiver,
                            )?
                        } else {
                            Planned::new(
                                rng,
                                first.line,
                                first.quantity,
                                Condition::Good,
                                first.serials.clone(),
                                "Correction: re-checked, in good order",
                                first.receiver,
                            )?
                        };
                        planned.receipt.voids = Some(first.id.clone());
                        planned
                    }
                    None => Planned::new(rng, 0, 1, Condition::Good, Vec::new(), "", receiver)?,
                }
            }
        };
        let person = &facility.receivers[new.receiver];
        let (device, actor) = &person.devices[rng.random_range(0..person.devices.len())];
        doc.set_actor(actor.clone());
        let receipt = aidsync_tests::record_as_asked(
            &mut doc,
            new.receipt.clone(),
            &Recorder {
                user: person.user.clone(),
                device: device.clone(),
            },
            when,
        )?;
        recorded.push(Recorded {
            id: receipt.id,
            line: new.line,
            quantity: receipt.quantity,
            condition: receipt.condition,
            serials: receipt.serials,
            receiver: new.receiver,
            at: when,
            is_void: receipt.voids.is_some(),
            twice: new.twice,
            voided: false,
        });
    }

    // Coordinators review about half the shipments with discrepancies
    // (naming the receipts, or signing off the shipment as a whole) and
    // sign off some complete ones.
    let shipment = doc.read()?;
    let summary = summarize(&shipment);
    let rows = project(&shipment, &summary, |_| None);
    let review = if !rows.discrepancies.is_empty() && rng.random_bool(0.5) {
        let named: BTreeSet<&String> = rows
            .discrepancies
            .iter()
            .flat_map(|d| &d.receipts)
            .collect();
        let resolves = if rng.random_bool(0.5) {
            Vec::new()
        } else {
            named
                .into_iter()
                .map(|r| ReceiptId::parse(r.as_str()))
                .collect::<Result<_, _>>()?
        };
        let verdict = match rng.random_range(0..10) {
            0..6 => Verdict::HasIssues,
            6..9 => Verdict::Approved,
            _ => Verdict::Rejected,
        };
        Some((
            verdict,
            resolves,
            "Reported to the donor; claim filed with the carrier",
        ))
    } else if summary.status == Status::Complete && rng.random_bool(0.3) {
        Some((
            Verdict::Approved,
            Vec::new(),
            "Checked against the manifest",
        ))
    } else {
        None
    };
    if let Some((verdict, resolves, note)) = review {
        let reviewer = &coordinators[rng.random_range(0..2)];
        doc.set_actor(reviewer.devices[0].1.clone());
        at += rng.random_range(DAY_MS..4 * DAY_MS);
        doc.add_review(
            NewReview {
                id: ReviewId::parse(random_id(rng))?,
                note: note.to_owned(),
                verdict: Some(verdict),
                resolves,
            },
            &reviewer.user,
            at,
        )?;
    }
    let shipment = doc.read()?;
    let summary = summarize(&shipment);
    // Phones sync when they are back online, minutes to days later.
    let received_at = if recorded.is_empty() {
        created_at
    } else {
        at + rng.random_range(5 * MINUTE_MS..2 * DAY_MS)
    };
    Ok(Built {
        id,
        facility: facility.id.clone(),
        doc,
        shipment,
        summary,
        received_at,
    })
}

/// A receipt about to be recorded, with what the bookkeeping needs.
struct Planned {
    receipt: NewReceipt,
    line: usize,
    receiver: usize,
    twice: bool,
}

impl Planned {
    fn new(
        rng: &mut StdRng,
        line: usize,
        quantity: u64,
        condition: Condition,
        serials: Vec<String>,
        note: &str,
        receiver: usize,
    ) -> anyhow::Result<Planned> {
        Ok(Planned {
            receipt: NewReceipt {
                id: ReceiptId::parse(random_id(rng))?,
                line_id: LineId::parse(format!("l{}", line + 1))?,
                quantity,
                condition,
                serials,
                note: note.to_owned(),
                voids: None,
                stage: None,
                reason: None,
                delivery_id: None,
            },
            line,
            receiver,
            twice: false,
        })
    }
}

/// Seeds `db` (which must be empty) and returns the seconds it took.
async fn seed_database(db: &Db, args: &Args, seed: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let world = World::new()?;
    for f in &world.facilities {
        let (region, list) = &REGIONS[f.region];
        let name = list
            .iter()
            .find(|(id, _)| *id == f.id.as_str())
            .map_or(f.id.as_str(), |(_, name)| name);
        db.insert_facility(&FacilityRow {
            id: f.id.to_string(),
            name: name.to_owned(),
            region: (*region).to_owned(),
            created_at: START_MS,
        })
        .await?;
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let counts = receipt_counts(&mut rng, args.shipments, args.receipts_per_shipment);
    let author = ChangeAuthor {
        device_id: None,
        user_id: "bench",
        signers: None,
    };
    eprintln!(
        "aidsync-query-bench: seeding {} shipments, {} receipts, seed {seed}",
        args.shipments,
        counts.iter().sum::<usize>()
    );
    let (mut done, mut receipts) = (0usize, 0usize);
    for batch in counts.chunks(args.batch) {
        let before = done;
        let mut tx = db.begin_write().await?;
        // One commit, one version, as for any transaction of the server.
        let version = tx.next_version().await?;
        for &count in batch {
            let mut built = build_shipment(
                &mut rng,
                &world,
                done,
                args.shipments,
                count,
                args.lines_per_shipment,
            )
            .with_context(|| format!("building shipment {done}"))?;
            tx.insert_document(
                built.id.as_str(),
                built.facility.as_str(),
                built.doc.automerge_mut(),
                version,
                &author,
                built.received_at,
            )
            .await?;
            projections::refresh(
                &mut tx,
                &built.doc,
                &built.shipment,
                &built.summary,
                built.received_at,
            )
            .await?;
            done += 1;
            receipts += built.shipment.receipts.len();
        }
        tx.commit().await?;
        if done / 1000 > before / 1000 || done == args.shipments {
            eprintln!(
                "  seeded {done}/{} shipments, {receipts} receipts, {:.1} s",
                args.shipments,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("aidsync-query-bench: seeding took {seconds:.1} s");
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date_of(START_MS), "2024-01-01");
        assert_eq!(date_of(START_MS + 59 * DAY_MS), "2024-02-29");
        assert_eq!(date_of(START_MS + 366 * DAY_MS), "2025-01-01");
    }

    #[test]
    fn receipt_totals_are_exact() {
        let mut rng = StdRng::seed_from_u64(7);
        let counts = receipt_counts(&mut rng, 1000, 10);
        assert_eq!(counts.iter().sum::<usize>(), 10_000);
        assert!(counts.contains(&0));
        for (total, parts) in [(1, 1), (5, 5), (1000, 3), (7, 2)] {
            let s = split(&mut rng, total, parts);
            assert_eq!((s.len(), s.iter().sum::<u64>()), (parts, total));
            assert!(s.iter().all(|&q| q > 0));
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=30).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), 15.0);
        assert_eq!(percentile(&samples, 0.95), 29.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
    }
}
