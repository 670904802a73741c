//! `aidsync-fuzz`: structure-aware fuzzing of everything a client sends the
//! server, through the server's own code, in this process, on stable Rust.
//!
//! ```sh
//! cargo run -p aidsync-tests --bin aidsync-fuzz -- --cases 20000 --seed 1
//! cargo run --release -p aidsync-tests --bin aidsync-fuzz -- --cases 10000000
//! cargo run -p aidsync-tests --bin aidsync-fuzz -- --replay target/aidsync-fuzz/FILE.hex
//! ```
//!
//! Targets (`--target`, default `all`, which splits `--cases` among them by
//! weight): `sync` (mutated CBOR envelopes), `chunks` (mutated change
//! chunks in valid envelopes), `csv` (manifests), `query` (report query
//! strings), `http` (whole requests through the router over a demo
//! database). See `aidsync_tests::fuzz`.
//!
//! Each case runs under `catch_unwind` with a panic hook that counts every
//! panic, contained by the server or not, and with a memory cap: before the
//! case the global allocator's limit is set to what is allocated plus
//! `--memory-cap-mb`, so an allocation past it fails and aborts the
//! process. The cases run in a child process; the parent reports such an
//! abort with the case that caused it (the child writes each case's input
//! to a file before running it).
//!
//! Progress goes to stderr; one JSON line of counts per target to stdout.
//! Exit status 1 if any case panicked, answered 5xx or died; inputs of such
//! cases are saved as hex under `--out` for `--replay`.

use std::alloc::System;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cap::Cap;
use clap::Parser;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};
use serde_json::{Value, json};

use aidsync_tests::fuzz::http::HttpWorld;
use aidsync_tests::fuzz::{
    Outcome, Target, case_rng, corpus, is_accepted, manifest, query, read_saved, sync, to_hex,
};

/// Every allocation of this process goes through a limit (`cap`) and a
/// peak counter (`peakmem-alloc`). Registering a global allocator is not
/// `unsafe` code of ours (the workspace forbids that); the crates hold it.
#[global_allocator]
static ALLOCATOR: Cap<&PeakMemAlloc<System>> = Cap::new(&INSTRUMENTED_SYSTEM, usize::MAX);

/// Set in the child process that runs the cases: where it writes the case
/// it is about to run.
const STATE_ENV: &str = "AIDSYNC_FUZZ_STATE";
/// Set by the parent under `--max-seconds`: when to stop (ms since epoch).
const DEADLINE_ENV: &str = "AIDSYNC_FUZZ_DEADLINE_MS";

#[derive(Debug, Parser)]
#[command(about = "Fuzz the server's handling of client input, in process")]
struct Args {
    /// Seed of every case; the same seed gives the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Inputs to run in all (split among the targets by weight under `all`).
    #[arg(long, default_value_t = 10_000)]
    cases: u64,
    /// sync, chunks, csv, query, http, or all.
    #[arg(long, default_value = "all")]
    target: String,
    /// Memory one case may allocate beyond what was allocated before it.
    #[arg(long, default_value_t = 256)]
    memory_cap_mb: u64,
    /// Run only this case index of `--target` (which must name one target).
    #[arg(long)]
    case: Option<u64>,
    /// Run the input saved in this file (as written under `--out`).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Where inputs of failed cases are saved.
    #[arg(long, default_value = "target/aidsync-fuzz")]
    out: PathBuf,
    /// Panic sites (`crate-version/src/file.rs:LINE`, one a line) that are
    /// known and contained by the server: counted as `known_panics`, they
    /// do not fail the run. Any other panic does.
    #[arg(long)]
    known_panics: Option<PathBuf>,
    /// Run the cases in this process (an abort then loses the report).
    #[arg(long)]
    in_process: bool,
    /// Start at this case (`TARGET:CASE`): how the parent carries on after
    /// a case killed the process running the cases.
    #[arg(long, hide = true)]
    resume: Option<String>,
    /// Stop starting cases after this many seconds, and report what ran.
    #[arg(long)]
    max_seconds: Option<u64>,
}

static IN_CASE: AtomicBool = AtomicBool::new(false);
static CURRENT_CASE: AtomicU64 = AtomicU64::new(0);
static CURRENT_TARGET: Mutex<Option<Target>> = Mutex::new(None);
/// Where the running case panicked (locations, in order).
static CASE_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Where panics happened: the first backtrace of each, and how often.
#[derive(Debug)]
struct Site {
    target: Option<Target>,
    case: u64,
    count: u64,
    message: String,
    /// Resolved only when printed: resolving reads the binary's debug
    /// information, megabytes that must not count against a case.
    backtrace: std::backtrace::Backtrace,
}

static SITES: Mutex<BTreeMap<String, Site>> = Mutex::new(BTreeMap::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts every panic inside a case, on any thread (the server decodes
/// and merges on the blocking pool), and keeps the first backtrace of
/// each place. Outside a case, a panic is the harness's own: reported as
/// usual.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_CASE.load(Ordering::SeqCst) {
            default(info);
            return;
        }
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "unknown".to_owned());
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        lock(&CASE_PANICS).push(location.clone());
        let mut sites = lock(&SITES);
        if let Some(site) = sites.get_mut(&location) {
            site.count += 1;
            return;
        }
        sites.insert(
            location,
            Site {
                target: *lock(&CURRENT_TARGET),
                case: CURRENT_CASE.load(Ordering::SeqCst),
                count: 1,
                message: message.chars().take(500).collect(),
                backtrace: std::backtrace::Backtrace::force_capture(),
            },
        );
    }));
}

/// Counts of one target.
#[derive(Debug)]
struct Stats {
    cases: u64,
    accepted: u64,
    refused: BTreeMap<String, u64>,
    panics: u64,
    /// Of `panics`, those at sites in `--known-panics`.
    known_panics: u64,
    server_errors: u64,
    peak_bytes: usize,
    peak_case: u64,
    slowest: Duration,
    slowest_case: u64,
    seconds: f64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            cases: 0,
            accepted: 0,
            refused: BTreeMap::new(),
            panics: 0,
            known_panics: 0,
            server_errors: 0,
            peak_bytes: 0,
            peak_case: 0,
            slowest: Duration::ZERO,
            slowest_case: 0,
            seconds: 0.0,
        }
    }

    fn json(&self) -> Value {
        json!({
            "cases": self.cases,
            "accepted": self.accepted,
            "refused": self.refused,
            "panics": self.panics,
            "known_panics": self.known_panics,
            "server_errors": self.server_errors,
            "peak_bytes": self.peak_bytes,
            "peak_case": self.peak_case,
            "slowest_ms": (self.slowest.as_secs_f64() * 1e6).round() / 1e3,
            "slowest_case": self.slowest_case,
            "seconds": (self.seconds * 100.0).round() / 100.0,
        })
    }
}

/// The file the running case is written to before it runs, so an abort
/// (an allocation over the cap) still names it.
struct StateFile(Option<File>);

impl StateFile {
    fn record(&self, target: Target, seed: u64, case: u64, input: &[u8]) {
        let Some(file) = &self.0 else { return };
        let header = format!("{} {seed} {case}\n", target.as_str());
        let written = file
            .write_all_at(header.as_bytes(), 0)
            .and_then(|()| file.write_all_at(input, header.len() as u64))
            .and_then(|()| file.set_len((header.len() + input.len()) as u64));
        if let Err(e) = written {
            eprintln!("aidsync-fuzz: cannot record the running case: {e}");
        }
    }
}

/// A case that panicked or answered 5xx.
#[derive(Debug)]
struct Failure {
    target: Target,
    case: u64,
    what: String,
    saved: Option<PathBuf>,
}

struct Runner {
    args: Args,
    /// Entries of `--known-panics`, each followed by `:`.
    known_panics: Vec<String>,
    /// Known sites whose first input was saved.
    known_saved: std::collections::BTreeSet<String>,
    cap_bytes: usize,
    state: StateFile,
    /// Where the report so far is written now and then, for the parent.
    checkpoint: Option<PathBuf>,
    stats: BTreeMap<Target, Stats>,
    /// Stop starting cases after this long (`--max-seconds`).
    deadline: Option<Instant>,
    failures: Vec<Failure>,
    saved: usize,
    started: Instant,
    last_tick: Instant,
}

/// At most this many inputs are saved per run.
const MAX_SAVED: usize = 50;

fn save_input(
    out: &Path,
    kind: &str,
    target: Target,
    seed: u64,
    case: u64,
    what: &str,
    input: &[u8],
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let path = out.join(format!(
        "{kind}-{}-seed{seed}-case{case}.hex",
        target.as_str()
    ));
    let mut text = format!(
        "# aidsync-fuzz target={} seed={seed} case={case}\n# {}\n",
        target.as_str(),
        what.replace('\n', " ")
    );
    for line in to_hex(input).as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap_or(""));
        text.push('\n');
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

impl Runner {
    fn new(args: Args, state: StateFile, checkpoint: Option<PathBuf>) -> anyhow::Result<Runner> {
        let known_panics = match &args.known_panics {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
                .filter(|l| !l.is_empty())
                .map(|l| format!("{l}:"))
                .collect(),
            None => Vec::new(),
        };
        // Under a parent, the deadline is the parent's, whichever process
        // this is of those it ran.
        let inherited = std::env::var(DEADLINE_ENV)
            .ok()
            .and_then(|ms| ms.parse::<i64>().ok())
            .map(|ms| {
                let left = ms.saturating_sub(aidsync_tests::now_ms()).max(0);
                Instant::now() + Duration::from_millis(left.unsigned_abs())
            });
        let deadline = inherited.or_else(|| {
            args.max_seconds
                .map(|s| Instant::now() + Duration::from_secs(s))
        });
        Ok(Runner {
            deadline,
            known_panics,
            known_saved: Default::default(),
            cap_bytes: usize::try_from(args.memory_cap_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            args,
            state,
            checkpoint,
            stats: BTreeMap::new(),
            failures: Vec::new(),
            saved: 0,
            started: Instant::now(),
            last_tick: Instant::now(),
        })
    }

    /// Whether a panic location (`…/automerge-0.12.0/src/x.rs:12:5`) is
    /// at a site of `--known-panics`.
    fn is_known(&self, location: &str) -> bool {
        self.known_panics
            .iter()
            .any(|k| location.contains(k.as_str()))
    }

    /// Runs one case under the memory cap and `catch_unwind`.
    fn run_case(
        &mut self,
        stats: &mut Stats,
        target: Target,
        case: u64,
        input: &[u8],
        exec: impl FnOnce(&[u8]) -> Outcome,
    ) {
        self.state.record(target, self.args.seed, case, input);
        CURRENT_CASE.store(case, Ordering::SeqCst);
        lock(&CASE_PANICS).clear();
        INSTRUMENTED_SYSTEM.reset_peak_memory();
        let _ = ALLOCATOR.set_limit(ALLOCATOR.allocated().saturating_add(self.cap_bytes));
        IN_CASE.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| exec(input)));
        let elapsed = started.elapsed();
        IN_CASE.store(false, Ordering::SeqCst);
        let _ = ALLOCATOR.set_limit(usize::MAX);
        let peak = INSTRUMENTED_SYSTEM.get_peak_memory();
        let sites = std::mem::take(&mut *lock(&CASE_PANICS));
        // The first input to reach each known site, for whoever guards it.
        let first_known: Vec<String> = sites
            .iter()
            .filter(|l| self.is_known(l) && !self.known_saved.contains(*l))
            .cloned()
            .collect();
        for site in first_known {
            if self.known_saved.insert(site.clone()) {
                let what = format!("first panic at known site {site}");
                if let Err(e) = save_input(
                    &self.args.out,
                    "known",
                    target,
                    self.args.seed,
                    case,
                    &what,
                    input,
                ) {
                    eprintln!("aidsync-fuzz: saving the input: {e}");
                }
            }
        }
        let (known, unknown): (Vec<String>, Vec<String>) =
            sites.into_iter().partition(|l| self.is_known(l));

        stats.cases += 1;
        stats.seconds += elapsed.as_secs_f64();
        if peak > stats.peak_bytes {
            stats.peak_bytes = peak;
            stats.peak_case = case;
        }
        if elapsed > stats.slowest {
            stats.slowest = elapsed;
            stats.slowest_case = case;
        }
        let outcome = result.unwrap_or_else(|_| Outcome::one("panic"));
        if outcome.accepted() {
            stats.accepted += 1;
        }
        for label in outcome.results.iter().filter(|l| !is_accepted(l)) {
            *stats.refused.entry(label.clone()).or_default() += 1;
        }
        let mut problems = Vec::new();
        stats.panics += (known.len() + unknown.len()) as u64;
        stats.known_panics += known.len() as u64;
        if let Some(first) = unknown.first() {
            problems.push(("panic", format!("{} panic(s), at {first}", unknown.len())));
        }
        if let Some(e) = &outcome.server_error {
            stats.server_errors += 1;
            problems.push(("5xx", e.clone()));
        }
        for (kind, what) in problems {
            let saved = if self.saved < MAX_SAVED {
                self.saved += 1;
                save_input(
                    &self.args.out,
                    kind,
                    target,
                    self.args.seed,
                    case,
                    &what,
                    input,
                )
                .map_err(|e| eprintln!("aidsync-fuzz: saving the input: {e}"))
                .ok()
            } else {
                None
            };
            eprintln!(
                "aidsync-fuzz: {} case {case} (seed {}): {kind}: {what}{}",
                target.as_str(),
                self.args.seed,
                saved
                    .as_ref()
                    .map(|p| format!("; input saved to {}", p.display()))
                    .unwrap_or_default()
            );
            self.failures.push(Failure {
                target,
                case,
                what,
                saved,
            });
        }
        self.tick(target, stats, false);
    }

    /// Progress on stderr and the report so far for the parent, every few
    /// seconds (and when `force`d).
    fn tick(&mut self, target: Target, stats: &Stats, force: bool) {
        if !force
            && (!stats.cases.is_multiple_of(64)
                || self.last_tick.elapsed() < Duration::from_secs(2))
        {
            return;
        }
        self.last_tick = Instant::now();
        let mut all: Vec<(Target, &Stats)> = self
            .stats
            .iter()
            .filter(|(t, _)| **t != target)
            .map(|(t, s)| (*t, s))
            .collect();
        all.push((target, stats));
        all.sort_by_key(|(t, _)| *t);
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let line: Vec<String> = all
            .iter()
            .map(|(t, s)| {
                format!(
                    "{} {} ({} panics, {} known; {} 5xx; peak {:.1} MiB)",
                    t.as_str(),
                    s.cases,
                    s.panics,
                    s.known_panics,
                    s.server_errors,
                    s.peak_bytes as f64 / (1 << 20) as f64
                )
            })
            .collect();
        let cases: u64 = all.iter().map(|(_, s)| s.cases).sum();
        eprintln!(
            "aidsync-fuzz: {cases} cases, {:.0}/s: {}",
            cases as f64 / secs,
            line.join(", ")
        );
        if let Some(path) = &self.checkpoint {
            let figures = self.report(&all);
            let tmp = path.with_extension("tmp");
            let written = std::fs::write(&tmp, figures.to_string())
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                eprintln!("aidsync-fuzz: writing {}: {e}", path.display());
            }
        }
    }

    /// Runs `cases` of `target`, building what it runs against first if
    /// this is the target's first batch. `false` once `--max-seconds` is up.
    fn run_batch(
        &mut self,
        worlds: &mut Worlds,
        target: Target,
        cases: std::ops::Range<u64>,
    ) -> anyhow::Result<bool> {
        *lock(&CURRENT_TARGET) = Some(target);
        let mut stats = self.stats.remove(&target).unwrap_or_else(Stats::new);
        let seed = self.args.seed;
        let mut result = Ok(true);
        for case in cases {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                result = Ok(false);
                break;
            }
            let mut rng = case_rng(seed, target, case);
            match target {
                Target::Sync | Target::Chunks => {
                    let world = worlds.sync()?;
                    let input = if target == Target::Sync {
                        sync::generate_sync(&mut rng, world)
                    } else {
                        sync::generate_chunks(&mut rng, world)
                    };
                    self.run_case(&mut stats, target, case, &input, |i| sync::run(world, i));
                }
                Target::Csv => {
                    let input = manifest::generate(&mut rng, &format!("imp-{case}"));
                    self.run_case(&mut stats, target, case, &input, manifest::run);
                }
                Target::Query => {
                    let input = query::generate(&mut rng).into_bytes();
                    self.run_case(&mut stats, target, case, &input, query::run);
                }
                Target::Http => {
                    let (rt, world) = match worlds.http() {
                        Ok(w) => w,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    };
                    let input = world.generate(&mut rng, case);
                    self.run_case(&mut stats, target, case, &input, |i| {
                        rt.block_on(world.run(i))
                    });
                }
            }
        }
        self.stats.insert(target, stats);
        result
    }

    fn report(&self, stats: &[(Target, &Stats)]) -> Value {
        let sites: Vec<Value> = lock(&SITES)
            .iter()
            .map(|(location, s)| {
                json!({
                    "location": location,
                    "known": self.is_known(location),
                    "message": s.message,
                    "count": s.count,
                    "target": s.target.map(Target::as_str),
                    "first_case": s.case,
                })
            })
            .collect();
        let failures: Vec<Value> = self
            .failures
            .iter()
            .take(MAX_SAVED)
            .map(|f| {
                json!({
                    "target": f.target.as_str(),
                    "case": f.case,
                    "what": f.what.chars().take(300).collect::<String>(),
                    "input": f.saved.as_ref().map(|p| p.display().to_string()),
                })
            })
            .collect();
        json!({
            "seed": self.args.seed,
            "seconds": self.started.elapsed().as_secs_f64(),
            "memory_cap_mb": self.args.memory_cap_mb,
            "targets": stats
                .iter()
                .map(|(t, s)| (t.as_str().to_owned(), s.json()))
                .collect::<serde_json::Map<_, _>>(),
            "panic_sites": sites,
            "failures": failures,
            "died": [],
        })
    }
}

/// What the cases run against, built when first needed.
#[derive(Default)]
struct Worlds {
    sync: Option<corpus::SyncWorld>,
    http: Option<(tokio::runtime::Runtime, HttpWorld)>,
    /// Cases run against the current demo database.
    http_cases: u64,
}

/// `http` cases per demo database. Accepted imports and syncs grow it, and
/// a sync from cursor 0 answers with every document the caller may see, so
/// a long run starts over with a fresh one now and then.
const HTTP_CASES_PER_WORLD: u64 = 2_000;

impl Worlds {
    fn sync(&mut self) -> anyhow::Result<&corpus::SyncWorld> {
        if self.sync.is_none() {
            self.sync = Some(corpus::world()?);
        }
        self.sync.as_ref().context("sync world")
    }

    fn http(&mut self) -> anyhow::Result<(&tokio::runtime::Runtime, &HttpWorld)> {
        self.http_cases += 1;
        if self.http_cases > HTTP_CASES_PER_WORLD {
            if let Some((rt, world)) = self.http.take() {
                // Its database pool closes on the runtime it was opened on.
                let guard = rt.enter();
                drop(world);
                drop(guard);
                drop(rt);
            }
            self.http_cases = 1;
        }
        if self.http.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let world = rt.block_on(HttpWorld::new()).context("the demo server")?;
            self.http = Some((rt, world));
        }
        let (rt, world) = self.http.as_ref().context("http world")?;
        Ok((rt, world))
    }
}

/// Cases of each target per round: targets take turns, so a run cut short
/// by `--max-seconds` (or by a case that kills the process) has covered
/// every target in proportion.
fn quota(target: Target) -> u64 {
    target.weight() * 10
}

/// How many cases each target gets in all.
fn plan(args: &Args) -> anyhow::Result<Vec<(Target, std::ops::Range<u64>)>> {
    if args.target == "all" {
        if args.case.is_some() {
            bail!("--case needs --target naming one target");
        }
        let mut plan: Vec<_> = Target::ALL
            .iter()
            .map(|t| (*t, 0..args.cases * t.weight() / 100))
            .collect();
        let given: u64 = plan.iter().map(|(_, r)| r.end).sum();
        if let Some((_, r)) = plan.iter_mut().find(|(t, _)| *t == Target::Chunks) {
            r.end += args.cases - given;
        }
        return Ok(plan);
    }
    let target = Target::parse(&args.target).with_context(|| {
        format!(
            "no target {:?} (sync, chunks, csv, query, http, all)",
            args.target
        )
    })?;
    Ok(vec![(
        target,
        match args.case {
            Some(c) => c..c + 1,
            None => 0..args.cases,
        },
    )])
}

/// Where each target starts, and the first round, when carrying on after
/// case `case` of `target` (`--resume TARGET:CASE`, the case that killed
/// the last process): the rounds before are done, and in that round the
/// targets before it too.
fn resume_point(plan: &mut [(Target, std::ops::Range<u64>)], resume: &str) -> anyhow::Result<u64> {
    let (dead, case) = resume
        .split_once(':')
        .and_then(|(t, c)| Some((Target::parse(t)?, c.parse::<u64>().ok()?)))
        .context("--resume takes TARGET:CASE")?;
    let order = plan
        .iter()
        .position(|(t, _)| *t == dead)
        .context("--resume names a target not in the plan")?;
    let round = case.saturating_sub(plan[order].1.start) / quota(dead);
    for (i, (t, range)) in plan.iter_mut().enumerate() {
        let start = if *t == dead {
            case + 1
        } else if i < order {
            range.start + (round + 1) * quota(*t)
        } else {
            range.start + round * quota(*t)
        };
        range.start = start.min(range.end);
    }
    Ok(round)
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    install_panic_hook();
    let supervised = std::env::var_os(STATE_ENV).map(PathBuf::from);
    let state = match &supervised {
        Some(path) => StateFile(Some(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => StateFile(None),
    };
    let mut plan = plan(&args)?;
    if let Some(resume) = &args.resume {
        resume_point(&mut plan, resume)?;
    }
    let mut runner = Runner::new(args, state, supervised.map(|p| p.with_extension("json")))?;
    let mut worlds = Worlds::default();
    let mut finished = true;
    'rounds: loop {
        let mut any = false;
        for (target, range) in plan.iter_mut() {
            if range.is_empty() {
                continue;
            }
            any = true;
            // The rest of this target's round (all of it, but after a resume).
            let next_round = (range.start / quota(*target) + 1) * quota(*target);
            let batch = range.start..next_round.min(range.end);
            range.start = batch.end;
            if !runner.run_batch(&mut worlds, *target, batch)? {
                finished = false;
                break 'rounds;
            }
        }
        if !any {
            break;
        }
    }
    let all: Vec<(Target, &Stats)> = runner.stats.iter().map(|(t, s)| (*t, s)).collect();
    let mut figures = finalize(runner.report(&all));
    figures["stopped_at_max_seconds"] = json!(!finished);
    if let Some((target, stats)) = runner.stats.pop_last() {
        runner.tick(target, &stats, true);
    }
    print_backtraces();
    match &runner.checkpoint {
        // The parent reports, for every process it ran.
        Some(path) => std::fs::write(path, figures.to_string())?,
        None => println!("{figures}"),
    }
    Ok(if figures["ok"] == Value::Bool(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_backtraces() {
    for (location, site) in lock(&SITES).iter() {
        eprintln!(
            "\naidsync-fuzz: panic at {location} ({} times; first: {} case {}): {}\n{}",
            site.count,
            site.target.map(Target::as_str).unwrap_or("?"),
            site.case,
            site.message,
            site.backtrace
        );
    }
}

/// Whether a report (one process's, or the merge) found nothing wrong.
fn finalize(mut figures: Value) -> Value {
    let targets = figures["targets"].as_object().cloned().unwrap_or_default();
    let sum = |field: &str| -> u64 {
        targets
            .values()
            .map(|t| t[field].as_u64().unwrap_or(0))
            .sum()
    };
    let (cases, panics, server_errors) = (sum("cases"), sum("panics"), sum("server_errors"));
    let known = sum("known_panics");
    let died = figures["died"].as_array().map_or(0, Vec::len) as u64;
    figures["cases"] = json!(cases);
    figures["panics"] = json!(panics);
    figures["known_panics"] = json!(known);
    figures["server_errors"] = json!(server_errors);
    figures["over_memory_cap"] = json!(died);
    figures["ok"] = json!(panics == known && server_errors == 0 && died == 0);
    figures["seconds"] =
        json!((figures["seconds"].as_f64().unwrap_or(0.0) * 100.0).round() / 100.0);
    figures
}

/// Runs one saved input and says what became of it.
fn replay(args: Args, file: &Path) -> anyhow::Result<ExitCode> {
    install_panic_hook();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (target, input) = read_saved(&text).map_err(anyhow::Error::msg)?;
    let mut runner = Runner::new(args, StateFile(None), None)?;
    runner.saved = MAX_SAVED;
    *lock(&CURRENT_TARGET) = Some(target);
    let mut stats = Stats::new();
    let outcome = std::cell::RefCell::new(None);
    let record = |o: Outcome| {
        *outcome.borrow_mut() = Some(o.clone());
        o
    };
    if matches!(target, Target::Sync | Target::Chunks) {
        eprintln!("{}", sync::explain(&input));
    }
    match target {
        Target::Sync | Target::Chunks => {
            let world = corpus::world()?;
            runner.run_case(&mut stats, target, 0, &input, |i| {
                record(sync::run(&world, i))
            });
        }
        Target::Csv => runner.run_case(&mut stats, target, 0, &input, |i| record(manifest::run(i))),
        Target::Query => runner.run_case(&mut stats, target, 0, &input, |i| record(query::run(i))),
        Target::Http => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let world = rt.block_on(HttpWorld::new())?;
            runner.run_case(&mut stats, target, 0, &input, |i| {
                record(rt.block_on(world.run(i)))
            });
        }
    }
    print_backtraces();
    let figures = json!({
        "target": target.as_str(),
        "input_bytes": input.len(),
        "outcome": outcome.into_inner().map(|o| {
            let mut results: BTreeMap<String, u64> = BTreeMap::new();
            for r in o.results {
                *results.entry(r).or_default() += 1;
            }
            json!({"results": results, "server_error": o.server_error})
        }),
        "panics": stats.panics,
        "server_errors": stats.server_errors,
        "peak_bytes": stats.peak_bytes,
        "ms": stats.slowest.as_secs_f64() * 1e3,
    });
    println!("{figures}");
    Ok(if stats.panics == 0 && stats.server_errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Adds one process's report into the run's.
fn merge(into: &mut Value, part: Value) {
    if into.is_null() {
        *into = part;
        return;
    }
    into["seconds"] =
        json!(into["seconds"].as_f64().unwrap_or(0.0) + part["seconds"].as_f64().unwrap_or(0.0));
    if let Some(targets) = part["targets"].as_object() {
        for (name, t) in targets {
            let Some(mine) = into["targets"].get_mut(name) else {
                into["targets"][name] = t.clone();
                continue;
            };
            for field in [
                "cases",
                "accepted",
                "panics",
                "known_panics",
                "server_errors",
            ] {
                mine[field] =
                    json!(mine[field].as_u64().unwrap_or(0) + t[field].as_u64().unwrap_or(0));
            }
            mine["seconds"] = json!(
                mine["seconds"].as_f64().unwrap_or(0.0) + t["seconds"].as_f64().unwrap_or(0.0)
            );
            if let Some(refused) = t["refused"].as_object() {
                for (label, n) in refused {
                    let have = mine["refused"][label].as_u64().unwrap_or(0);
                    mine["refused"][label] = json!(have + n.as_u64().unwrap_or(0));
                }
            }
            for (value, case) in [("peak_bytes", "peak_case"), ("slowest_ms", "slowest_case")] {
                if t[value].as_f64().unwrap_or(0.0) > mine[value].as_f64().unwrap_or(0.0) {
                    mine[value] = t[value].clone();
                    mine[case] = t[case].clone();
                }
            }
        }
    }
    for list in ["failures", "died"] {
        if let (Some(mine), Some(theirs)) = (into[list].as_array_mut(), part[list].as_array()) {
            mine.extend(theirs.iter().cloned());
        }
    }
    if let (Some(mine), Some(theirs)) = (
        into["panic_sites"].as_array_mut(),
        part["panic_sites"].as_array(),
    ) {
        for site in theirs {
            match mine.iter_mut().find(|m| m["location"] == site["location"]) {
                Some(m) => {
                    m["count"] = json!(
                        m["count"].as_u64().unwrap_or(0) + site["count"].as_u64().unwrap_or(0)
                    );
                }
                None => mine.push(site.clone()),
            }
        }
    }
}

/// Runs the cases in a child process. A case that kills it (an allocation
/// over the memory cap aborts; so would a stack overflow) is saved and
/// reported, and a new child carries on from the next case.
fn supervise(args: &Args) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::ExitStatusExt;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let state = args
        .out
        .join(format!("running-{}.case", std::process::id()));
    let checkpoint = state.with_extension("json");
    let mut figures = Value::Null;
    let mut resume: Option<String> = args.resume.clone();
    let deadline = args.max_seconds.map(|s| {
        aidsync_tests::now_ms().saturating_add(i64::try_from(s).unwrap_or(i64::MAX / 2000) * 1000)
    });
    let code = loop {
        let _ = std::fs::remove_file(&checkpoint);
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.args(std::env::args_os().skip(1));
        if let Some(r) = &resume {
            command.args(["--resume", r]);
        }
        if let Some(ms) = deadline {
            command.env(DEADLINE_ENV, ms.to_string());
        }
        let status = command
            .env(STATE_ENV, &state)
            .status()
            .context("starting the fuzzing process")?;
        let part = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(code) = status.code() {
            if let Some(part) = part {
                merge(&mut figures, part);
            }
            break code;
        }
        let signal = status.signal().unwrap_or(0);
        let recorded = std::fs::read(&state).unwrap_or_default();
        let Some(newline) = recorded.iter().position(|&b| b == b'\n') else {
            eprintln!("aidsync-fuzz: the fuzzing process died (signal {signal}) outside any case");
            break 2;
        };
        let header = String::from_utf8_lossy(&recorded[..newline]).into_owned();
        let input = &recorded[newline + 1..];
        let mut words = header.split_whitespace();
        let (Some(target), Some(seed), Some(case)) = (
            words.next().and_then(Target::parse),
            words.next().and_then(|w| w.parse::<u64>().ok()),
            words.next().and_then(|w| w.parse::<u64>().ok()),
        ) else {
            bail!("the fuzzing process died (signal {signal}); its case record is unreadable");
        };
        let what = format!(
            "the process died (signal {signal}) in this case: an allocation over the {} MiB cap \
             aborts it (\"memory allocation of N bytes failed\" above), as does a stack overflow",
            args.memory_cap_mb
        );
        let saved = save_input(&args.out, "abort", target, seed, case, &what, input)?;
        eprintln!(
            "aidsync-fuzz: {} case {case} (seed {seed}): {what}\n  input ({} bytes) saved to {}; \
             replay: cargo run -p aidsync-tests --bin aidsync-fuzz -- --replay {}",
            target.as_str(),
            input.len(),
            saved.display(),
            saved.display()
        );
        // The last report of the dead process, its count of cases made
        // exact by where it died (labels after the report are lost).
        let mut part = part.unwrap_or_else(|| json!({"targets": {}, "failures": [], "panic_sites": [], "died": [], "seconds": 0.0}));
        let start = resume
            .as_deref()
            .and_then(|r| r.split_once(':'))
            .filter(|(t, _)| *t == target.as_str())
            .and_then(|(_, c)| c.parse::<u64>().ok())
            .unwrap_or(0);
        let reached = case.saturating_sub(start) + 1;
        let t = &mut part["targets"][target.as_str()];
        if t.as_u64().is_none() && !t.is_object() {
            *t = json!({"cases": 0, "accepted": 0, "refused": {}, "panics": 0, "server_errors": 0,
                        "peak_bytes": 0, "peak_case": 0, "slowest_ms": 0.0, "slowest_case": 0, "seconds": 0.0});
        }
        t["cases"] = json!(reached);
        part["died"] = json!([{
            "signal": signal,
            "target": target.as_str(),
            "case": case,
            "input": saved.display().to_string(),
        }]);
        merge(&mut figures, part);
        if figures["died"].as_array().map_or(0, Vec::len) >= 100 {
            eprintln!("aidsync-fuzz: 100 cases killed the process; stopping");
            break 1;
        }
        resume = Some(format!("{}:{}", target.as_str(), case + 1));
    };
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_file(&checkpoint);
    if figures.is_null() {
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)));
    }
    let mut figures = finalize(figures);
    figures["seed"] = json!(args.seed);
    figures["memory_cap_mb"] = json!(args.memory_cap_mb);
    println!("{figures}");
    Ok(match code {
        0 | 1 if figures["ok"] == Value::Bool(true) => ExitCode::SUCCESS,
        0 | 1 => ExitCode::from(1),
        other => ExitCode::from(u8::try_from(other).unwrap_or(2)),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The server's own log (why a request got a 500), for a replay.
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let result = if let Some(file) = args.replay.clone() {
        replay(args, &file)
    } else if args.in_process || std::env::var_os(STATE_ENV).is_some() {
        run(args)
    } else {
        supervise(&args)
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aidsync-fuzz: {e:#}");
            let _ = std::io::stderr().flush();
            ExitCode::from(2)
        }
    }
}
