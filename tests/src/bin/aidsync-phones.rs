//! `aidsync-phones`: many simulated phones against a running server.
//!
//! Each phone logs in as the demo receiver of a facility that has
//! shipments (a new device per phone; several phones share each account),
//! syncs once, goes offline and records receipts on its facility's
//! shipments (several phones share each shipment). Then power comes back:
//! every phone syncs at once through a network that loses requests and
//! responses at `--drop-rate`, retrying until its outbox is acknowledged.
//! Finally every phone and a coordinator's fresh replica must hold identical
//! documents, and the server must count every receipt exactly once.
//!
//! With `--shipments N` it first seeds N more shipments, so receipts spread
//! as in the field (tens per shipment) instead of piling onto the demo's
//! eight; `--facilities N` puts them (and the phones) in N new hospitals, so
//! that each phone holds its own hospital's tens of shipments rather than a
//! quarter of all of them; with `--servers A,B,…` phones sync through
//! several servers that share one database.
//!
//! Prints one JSON line of figures on stdout (throughput until every
//! receipt was acknowledged and until every phone converged, latency of
//! one sync request); progress goes to stderr. Exits non-zero unless
//! everything converged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};

use aidsync_server::demo;
use aidsync_shared::ids::{LineId, ReceiptId, ShipmentId, id_from_random};
use aidsync_shared::model::{Condition, NewReceipt};
use aidsync_tests::phone::{Api, Fault, Phone, SyncError, Traffic};

#[derive(Debug, Parser)]
#[command(about = "Simulate phones recording offline and syncing at once")]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "AIDSYNC_SERVER")]
    server: String,
    /// Several servers on one database (comma-separated base URLs): phone
    /// n syncs through server n modulo their number. Replaces `--server`.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Seed this many more shipments first (through the coordinator API,
    /// spread over the demo facilities, three lines each), so that each
    /// shipment gets tens of receipts, as in the field, instead of the
    /// demo's eight taking every receipt.
    #[arg(long, default_value_t = 0)]
    shipments: usize,
    /// Create this many more facilities first (through the admin API, one
    /// receiver account each) and put the seeded shipments and every phone
    /// there instead of at the demo's four hospitals. A phone holds every
    /// shipment of its facility, so 1,000 phones over 500 shipments at four
    /// facilities would each hold 125 documents: more than one machine
    /// simulating all of them can keep in memory, and not what a hospital
    /// has in the field.
    #[arg(long, default_value_t = 0)]
    facilities: usize,
    /// Number of phones.
    #[arg(long, default_value_t = 20)]
    phones: usize,
    /// Receipts each phone records while offline.
    #[arg(long, default_value_t = 10)]
    receipts: usize,
    /// Probability that a sync attempt loses its request or its response.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Seed for every random choice (which shipment, which losses);
    /// random when not given. Printed with the figures to replay a run.
    #[arg(long)]
    seed: Option<u64>,
    /// Give up on a phone after this many failed attempts in a row.
    #[arg(long, default_value_t = 200)]
    max_attempts: u32,
}

/// What one phone did after power came back.
struct Outcome {
    phone: Phone,
    /// Milliseconds each sync request that reached the server took.
    latencies_ms: Vec<f64>,
    attempts: u64,
    lost: u64,
    /// Attempts the server refused with 429 (rate limits).
    throttled: u64,
}

/// Evaluates a fallible network call again while it fails to reach the
/// server (for up to 10 s): a crash drill may restart the server at any
/// moment of the run, and a phone just tries again later.
macro_rules! patiently {
    ($call:expr) => {{
        let mut tries = 0;
        loop {
            match ($call).map_err(anyhow::Error::from) {
                Ok(v) => break Ok::<_, anyhow::Error>(v),
                Err(e) if tries < 50 && unreachable_server(&e) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

/// Whether `e` is "could not talk to the server", not a wrong answer.
fn unreachable_server(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect() || r.is_request() || r.is_body())
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(&args).await {
        Ok(figures) => {
            println!("{figures}");
            if figures["converged"] != Value::Bool(true) {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("aidsync-phones: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<Value> {
    if !(0.0..1.0).contains(&args.drop_rate) {
        bail!("--drop-rate must be at least 0 and below 1");
    }
    let servers: Vec<String> = if args.servers.is_empty() {
        vec![args.server.clone()]
    } else {
        args.servers.clone()
    };
    let apis: Vec<Api> = servers.iter().map(|s| Api::new(s)).collect();
    let api = apis[0].clone();
    let seed = args.seed.unwrap_or_else(|| rand::rng().next_u64());
    let mut rng = StdRng::seed_from_u64(seed);
    // Runs against one server must not collide, even with the same seed:
    // receipt ids carry a tag fresh to this run.
    let run_tag = format!("{:06x}", rand::rng().next_u32() & 0xff_ffff);

    // What is there to receive, per facility.
    let coordinator = login(&api, demo::COORDINATOR)
        .await
        .with_context(|| format!("logging in at {} (is it a `--demo` server?)", args.server))?;
    let sites = if args.facilities == 0 {
        demo_sites()
    } else {
        create_sites(&api, args.facilities, &run_tag).await?
    };
    seed_shipments(&api, coordinator.token(), args.shipments, &sites, &run_tag).await?;
    let mut shipments = shipments_by_facility(&api, coordinator.token()).await?;
    // Only facilities with a receiver to log in as.
    shipments.retain(|facility, _| sites.contains_key(facility));
    if shipments.is_empty() {
        bail!("the server has no demo shipments: start it with `aidsync serve --demo`");
    }
    let before = total_receipts(&api, coordinator.token()).await?;
    let facilities: Vec<&String> = shipments.keys().collect();

    // Register and fetch documents while online.
    eprintln!(
        "aidsync-phones: {} phones x {} receipts over {} facilities ({} shipments), {} server(s), drop rate {}",
        args.phones,
        args.receipts,
        facilities.len(),
        shipments.values().map(BTreeSet::len).sum::<usize>(),
        apis.len(),
        args.drop_rate
    );
    let mut phones = Vec::with_capacity(args.phones);
    for n in 0..args.phones {
        let site = &sites[facilities[n % facilities.len()]];
        let mut phone =
            patiently!(Phone::login(&apis[n % apis.len()], &site.user, &site.password).await)?;
        phone.sync_settled().await?;
        phone.traffic = Traffic::default();
        phones.push(phone);
    }

    // Offline: record.
    for phone in &mut phones {
        let ids: Vec<ShipmentId> = phone.engine.shipment_ids().cloned().collect();
        for _ in 0..args.receipts {
            let id = &ids[rng.random_range(0..ids.len())];
            let lines: Vec<LineId> = phone.engine.shipment(id)?.lines.into_keys().collect();
            let line = lines[rng.random_range(0..lines.len())].clone();
            phone
                .record(id, random_receipt(&mut rng, &run_tag, line)?)
                .await?;
        }
    }
    let recorded = args.phones * args.receipts;

    // Power is back: everyone at once. (A crash drill kills and restarts the
    // server between these two lines on stderr.)
    eprintln!("aidsync-phones: storm started");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(phones.len());
    for (n, phone) in phones.into_iter().enumerate() {
        let seed = seed.wrapping_mul(1_000_003).wrapping_add(n as u64);
        let (drop_rate, max_attempts) = (args.drop_rate, args.max_attempts);
        tasks.push(tokio::spawn(reconnect(
            phone,
            drop_rate,
            max_attempts,
            seed,
        )));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await??);
    }
    // Every receipt is acknowledged, so committed on the server.
    let durable_seconds = started.elapsed().as_secs_f64();
    // Said now too: checking a thousand replicas takes longer than the storm.
    eprintln!(
        "aidsync-phones: every receipt durable after {durable_seconds:.3} s ({:.0} receipts/s)",
        recorded as f64 / durable_seconds.max(1e-9)
    );
    // Phones that finished early missed later uploads: one more quiet round.
    for outcome in &mut outcomes {
        patiently!(outcome.phone.sync_settled().await)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "aidsync-phones: storm over: every phone up to date after {seconds:.3} s; checking every replica"
    );

    // Compare every replica with a fresh copy of the server's documents.
    let mut reference = patiently!(login(&api, demo::COORDINATOR).await)?;
    patiently!(reference.sync_settled().await)?;
    // The server's side read once per shipment, not once per phone.
    let mut server_side = std::collections::HashMap::new();
    for id in reference.engine.shipment_ids() {
        let heads = reference.engine.document(id).map(|d| d.clone().get_heads());
        server_side.insert(id.clone(), (heads, reference.engine.shipment(id).ok()));
    }
    let mut differing = Vec::new();
    for outcome in &outcomes {
        let phone = &outcome.phone;
        for id in phone.engine.shipment_ids() {
            let mine = phone.engine.document(id).map(|d| d.clone().get_heads());
            let (server_heads, server_reading) = server_side.get(id).cloned().unwrap_or_default();
            let same_heads = mine.is_some() && mine == server_heads;
            let same_reading = phone.engine.shipment(id).ok() == server_reading;
            if !(same_heads && same_reading) {
                differing.push(format!("{}:{id}", phone.user()));
            }
        }
        if phone.engine.shipment_ids().count() != shipments[phone_facility(phone)?].len() {
            differing.push(format!("{}: missing shipments", phone.user()));
        }
    }
    let pending: usize = outcomes.iter_mut().map(|o| o.phone.engine.pending()).sum();
    let after = patiently!(total_receipts(&api, coordinator.token()).await)?;
    let counted = after - before;
    for d in differing.iter().take(10) {
        eprintln!("aidsync-phones: replica differs: {d}");
    }
    if counted != recorded as u64 {
        eprintln!("aidsync-phones: recorded {recorded} receipts, the server counts {counted}");
    }
    let converged = differing.is_empty() && pending == 0 && counted == recorded as u64;

    let mut traffic = Traffic::default();
    let (mut attempts, mut lost, mut throttled) = (0, 0, 0);
    let mut latencies: Vec<f64> = outcomes
        .iter()
        .flat_map(|o| o.latencies_ms.iter().copied())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        let at = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(at).copied().map(round3)
    };
    for o in &outcomes {
        traffic += o.phone.traffic;
        attempts += o.attempts;
        lost += o.lost;
        throttled += o.throttled;
    }
    Ok(json!({
        "phones": args.phones,
        "receipts": recorded,
        "seconds": round3(seconds),
        "receipts_per_s": round3(recorded as f64 / seconds.max(1e-9)),
        "durable_seconds": round3(durable_seconds),
        "durable_receipts_per_s": round3(recorded as f64 / durable_seconds.max(1e-9)),
        "sync_ms_p50": percentile(0.5),
        "sync_ms_p95": percentile(0.95),
        "sync_ms_max": percentile(1.0),
        "servers": apis.len(),
        "shipments": shipments.values().map(BTreeSet::len).sum::<usize>(),
        "bytes_up": traffic.bytes_up,
        "bytes_down": traffic.bytes_down,
        "http_requests": traffic.requests,
        "round_trips_per_sync": round3(attempts as f64 / args.phones.max(1) as f64),
        "lost": lost,
        "throttled": throttled,
        "drop_rate": args.drop_rate,
        "seed": seed,
        // The simulator shares the machine with the server: what it cost
        // itself says how much of the machine the server had.
        "simulator_cpu_seconds": own_cpu_seconds().map(round3),
        "simulator_peak_rss_mb": own_peak_rss_mb(),
        "converged": converged,
    }))
}

/// Syncs until the phone's outbox is acknowledged, through a lossy network.
async fn reconnect(
    mut phone: Phone,
    drop_rate: f64,
    max_attempts: u32,
    seed: u64,
) -> anyhow::Result<Outcome> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut attempts, mut lost, mut failures, mut throttled) = (0u64, 0u64, 0u32, 0u64);
    let mut latencies_ms = Vec::new();
    loop {
        let fault = if rng.random_bool(drop_rate) {
            if rng.random_bool(0.5) {
                Fault::LoseRequest
            } else {
                Fault::LoseResponse
            }
        } else {
            Fault::None
        };
        attempts += 1;
        let sent = Instant::now();
        let result = phone.sync(fault).await;
        if fault == Fault::None && result.is_ok() {
            latencies_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        match result {
            Ok(report) => {
                if !report.refused.is_empty() {
                    bail!("{}: refused {:?}", phone.user(), report.refused);
                }
                failures = 0;
                if !report.again && phone.engine.pending() == 0 {
                    return Ok(Outcome {
                        phone,
                        latencies_ms,
                        attempts,
                        lost,
                        throttled,
                    });
                }
            }
            Err(SyncError::Lost(_)) => {
                lost += 1;
                failures += 1;
                // A phone waits before retrying; jitter keeps retries apart.
                let wait = 5 * u64::from(failures.min(8)) + rng.random_range(0..10);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Err(SyncError::Transport(_)) => {
                // The server is down or restarting (a crash drill kills it):
                // a phone retries later, as the app does, waiting longer.
                failures += 1;
                tokio::time::sleep(Duration::from_millis(
                    100 * u64::from(failures.min(10)) + rng.random_range(0..100),
                ))
                .await;
            }
            Err(SyncError::Status { status, .. })
                if status == reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                // Over the server's rate limit (a big run from one address):
                // a phone backs off and tries again, as the app does.
                failures += 1;
                throttled += 1;
                tokio::time::sleep(Duration::from_millis(500 + rng.random_range(0..500))).await;
            }
            Err(e) => return Err(e).context(phone.user().to_string()),
        }
        if failures >= max_attempts {
            bail!("{}: gave up after {failures} lost attempts", phone.user());
        }
    }
}

fn random_receipt(rng: &mut StdRng, run_tag: &str, line: LineId) -> anyhow::Result<NewReceipt> {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let condition = match rng.random_range(0..10) {
        0 => Condition::Damaged,
        1 => Condition::MissingParts,
        _ => Condition::Good,
    };
    Ok(NewReceipt {
        id: ReceiptId::parse(format!("{run_tag}-{}", id_from_random(id)))?,
        line_id: line,
        quantity: rng.random_range(1..=3),
        condition,
        serials: Vec::new(),
        note: String::new(),
        voids: None,
        stage: None,
        reason: None,
        delivery_id: None,
    })
}

fn phone_facility(phone: &Phone) -> anyhow::Result<&str> {
    phone
        .session
        .user
        .facility
        .as_deref()
        .context("simulated phones are receivers")
}

/// A facility phones record at, and the receiver they log in as.
struct Site {
    user: String,
    password: String,
}

/// The demo's receivers, by facility.
fn demo_sites() -> BTreeMap<String, Site> {
    demo::RECEIVERS
        .iter()
        .map(|(user, _, facility)| {
            let site = Site {
                user: (*user).to_owned(),
                password: demo::password(user),
            };
            ((*facility).to_owned(), site)
        })
        .collect()
}

/// Creates `count` facilities in the demo region, each with a receiver,
/// as the demo admin.
async fn create_sites(
    api: &Api,
    count: usize,
    run_tag: &str,
) -> anyhow::Result<BTreeMap<String, Site>> {
    let admin = api.login(demo::ADMIN, &demo::password(demo::ADMIN)).await?;
    let password = format!("simulated-{run_tag}-password");
    let mut sites = BTreeMap::new();
    for n in 0..count {
        let facility = format!("sim-{run_tag}-hospital-{n:04}");
        let (status, body) = api
            .post(
                Some(&admin.token),
                "/api/v1/facilities",
                &json!({ "id": facility, "name": format!("Simulated hospital {n}"), "region": demo::REGION }),
            )
            .await?;
        if status.as_u16() != 201 {
            bail!("creating facility {facility}: {status} {body}");
        }
        let user = format!("sim-{run_tag}-receiver-{n:04}");
        let (status, body) = api
            .post(
                Some(&admin.token),
                "/api/v1/users",
                &json!({
                    "id": user, "name": format!("Simulated receiver {n}"), "role": "receiver",
                    "facility": facility, "password": password,
                }),
            )
            .await?;
        if status.as_u16() != 201 {
            bail!("creating receiver {user}: {status} {body}");
        }
        let site = Site {
            user,
            password: password.clone(),
        };
        sites.insert(facility, site);
    }
    eprintln!("aidsync-phones: created {count} facilities");
    Ok(sites)
}

/// Creates `count` shipments of three lines each, spread over `sites`.
async fn seed_shipments(
    api: &Api,
    token: &str,
    count: usize,
    sites: &BTreeMap<String, Site>,
    run_tag: &str,
) -> anyhow::Result<()> {
    let facilities: Vec<&String> = sites.keys().collect();
    for n in 0..count {
        let id = format!("sim-{run_tag}-{n:05}");
        let lines: Vec<Value> = [("ultrasound", 6), ("endoscope", 4), ("vehicle", 2)]
            .iter()
            .enumerate()
            .map(|(i, (category, quantity))| {
                json!({
                    "id": format!("line-{}", i + 1), "item": format!("Simulated {category}"),
                    "category": category, "unit": "unit", "quantity_expected": quantity,
                    "serials_expected": [],
                })
            })
            .collect();
        let shipment = json!({
            "id": id, "donor": "JICA", "programme": "Simulated delivery",
            "reference": format!("SIM-{n}"),
            "destination_facility": facilities[n % facilities.len()],
            "expected_on": "2026-12-01", "lines": lines,
        });
        let (status, body) = api
            .post(Some(token), "/api/v1/shipments", &shipment)
            .await?;
        if status.as_u16() != 201 {
            bail!("creating shipment {id}: {status} {body}");
        }
        if (n + 1) % 100 == 0 {
            eprintln!("aidsync-phones: seeded {} shipments", n + 1);
        }
    }
    Ok(())
}

/// A new phone logged in as a demo account.
async fn login(api: &Api, user: &str) -> anyhow::Result<Phone> {
    Phone::login(api, user, &demo::password(user)).await
}

async fn shipments_by_facility(
    api: &Api,
    token: &str,
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in list(api, token).await? {
        let facility = row["facility_id"].as_str().context("facility_id")?;
        let id = row["id"].as_str().context("id")?;
        out.entry(facility.to_owned())
            .or_default()
            .insert(id.to_owned());
    }
    Ok(out)
}

async fn total_receipts(api: &Api, token: &str) -> anyhow::Result<u64> {
    list(api, token)
        .await?
        .iter()
        .map(|row| row["receipts"].as_u64().context("receipts"))
        .sum()
}

async fn list(api: &Api, token: &str) -> anyhow::Result<Vec<Value>> {
    let (status, body) = api.get(Some(token), "/api/v1/shipments").await?;
    if !status.is_success() {
        bail!("listing shipments: {status} {body}");
    }
    match body {
        Value::Array(rows) => Ok(rows),
        other => bail!("listing shipments: unexpected {other}"),
    }
}

/// This process's user + system CPU time, from `/proc` (Linux only).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

/// This process's peak resident memory in MB, from `/proc` (Linux only).
fn own_peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
