//! The `aidsync` command.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use std::time::Duration;

use aidsync_server::app::{Application, Config, redact};
use aidsync_server::connections::{self, ConnectionLimits};
use aidsync_server::service::facilities::{self, NewFacility};
use aidsync_server::service::users::{self, NewUser};
use aidsync_server::service::{DAY_MS, Limits, audit, devices, now_ms};
use aidsync_server::storage::Db;
use aidsync_shared::ids::{FacilityId, UserId};
use aidsync_shared::roles::Role;
use anyhow::Context;

#[derive(Parser)]
#[command(
    name = "aidsync",
    version,
    about = "Offline-first sync server for humanitarian equipment receipts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as `text` or as `json` objects, one per line (on stderr).
    #[arg(
        long,
        global = true,
        env = "AIDSYNC_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage the database directly (the server may be running).
    Admin(AdminArgs),
}

#[derive(clap::Args)]
struct AdminArgs {
    /// Same as `serve --database-url`.
    #[arg(
        long,
        env = "AIDSYNC_DATABASE_URL",
        default_value = "sqlite:./aidsync.db"
    )]
    database_url: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Facilities: the hospitals shipments are destined to.
    #[command(subcommand)]
    Facility(FacilityCommand),
    /// People: receivers, coordinators and admins.
    #[command(subcommand)]
    User(UserCommand),
    /// Devices: one per login; revoke a lost phone here.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Recomputes the coordinator tables (shipments, lines, receipts,
    /// discrepancies…) from the stored documents. Safe while serving.
    RebuildProjections,
    /// Writes a consistent copy of the live SQLite database to PATH while the
    /// server keeps serving (PostgreSQL: use pg_dump, see the README).
    Backup {
        /// Where to write the copy; must not exist yet.
        path: std::path::PathBuf,
    },
    /// After restoring a database from a backup by any other means (e.g.
    /// pg_restore): start a new commit timeline, so every phone re-sends
    /// what the database lost on its next sync.
    MarkRestored,
    /// Stores a phone's hand-carried file (written on the phone with "Save
    /// records to a file" when there is no network) exactly as a sync from
    /// that phone; a file changed on the way is refused whole, and one
    /// imported twice changes nothing the second time.
    ImportChanges {
        /// The `.aidsync` file.
        file: std::path::PathBuf,
    },
    /// The audit trail: changes a user or a device sent, newest first.
    Changes {
        /// Only this user's changes.
        #[arg(long)]
        user: Option<String>,
        /// Only this device's changes.
        #[arg(long)]
        device: Option<String>,
        /// Most rows to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// List devices (newest first), optionally one user's.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a device: its token stops working at its next request. What
    /// it already synced stays, attributed to it.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. Without --password-stdin a strong password is generated
    /// and printed once.
    Add {
        /// Login name (letters, digits, `-`, `_`), e.g. `olena`.
        id: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// receiver, coordinator or admin.
        #[arg(long)]
        role: String,
        /// A receiver's facility id.
        #[arg(long)]
        facility: Option<String>,
        /// A coordinator's region; omit for every region.
        #[arg(long)]
        region: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every user (never their passwords).
    List,
    /// Set a new password (generated and printed unless --password-stdin).
    ResetPassword {
        id: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum FacilityCommand {
    /// Add a facility.
    Add {
        /// Short id, e.g. `kharkiv-regional` (letters, digits, `-`, `_`).
        id: String,
        /// Full name, e.g. "Kharkiv Regional Clinical Hospital".
        #[arg(long)]
        name: String,
        /// Region, e.g. "Kharkiv"; coordinators can be scoped to one.
        #[arg(long)]
        region: String,
    },
    /// List every facility.
    List,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AIDSYNC_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// SQLite path (`sqlite:./aidsync.db`, or a bare path) or `postgres://…` URL.
    #[arg(
        long,
        env = "AIDSYNC_DATABASE_URL",
        default_value = "sqlite:./aidsync.db"
    )]
    database_url: String,
    /// Directory of the phone web app, served at `/` (build it with
    /// `scripts/build-web`).
    #[arg(long, env = "AIDSYNC_WEB_ROOT", default_value = "web")]
    web_root: std::path::PathBuf,
    /// Serve HTTPS with this PEM certificate chain (with `--tls-key`):
    /// phones keep the app for offline use only over https.
    #[arg(long, env = "AIDSYNC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "AIDSYNC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Seed demo facilities, accounts and shipments (skipped if already seeded).
    #[arg(long)]
    demo: bool,
    /// Days a login's token works before the phone must log in again.
    #[arg(long, env = "AIDSYNC_TOKEN_TTL_DAYS", default_value_t = Limits::default().token_ttl_ms / DAY_MS)]
    token_ttl_days: i64,
    /// Largest request body after decompression, in bytes.
    #[arg(long, env = "AIDSYNC_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Seconds a request's body may take to arrive in full after its head (408 past it).
    #[arg(long, env = "AIDSYNC_BODY_READ_TIMEOUT_SECS", default_value_t = Limits::default().body_read_timeout.as_secs())]
    body_read_timeout_secs: u64,
    /// Seconds a connection may take to send a complete request head, counted
    /// from when it opens or from its previous response (so also how long an
    /// idle keep-alive connection stays open).
    #[arg(long, env = "AIDSYNC_REQUEST_HEAD_TIMEOUT_SECS", default_value_t = ConnectionLimits::default().request_head_timeout.as_secs())]
    request_head_timeout_secs: u64,
    /// Open connections at most; more wait in the listen backlog.
    #[arg(long, env = "AIDSYNC_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Most documents in one sync request.
    #[arg(long, env = "AIDSYNC_MAX_DOCS_PER_SYNC", default_value_t = Limits::default().max_docs_per_sync)]
    max_docs_per_sync: usize,
    /// Most changes for one document in one sync request.
    #[arg(long, env = "AIDSYNC_MAX_CHANGES_PER_DOC", default_value_t = Limits::default().max_changes_per_doc)]
    max_changes_per_doc: usize,
    /// Most operations the changes of one sync request may declare in all.
    #[arg(long, env = "AIDSYNC_MAX_OPS_PER_SYNC", default_value_t = Limits::default().max_ops_per_sync)]
    max_ops_per_sync: u64,
    /// Largest stored size of one shipment document, in bytes.
    #[arg(long, env = "AIDSYNC_MAX_DOCUMENT_BYTES", default_value_t = Limits::default().max_document_bytes)]
    max_document_bytes: usize,
    /// Memory for shipments kept loaded between requests, in bytes (an
    /// estimate; least recently used ones are dropped first; 0: none kept).
    #[arg(long, env = "AIDSYNC_DOCUMENT_CACHE_BYTES", default_value_t = aidsync_server::storage::DEFAULT_CACHE_BYTES)]
    document_cache_bytes: usize,
    /// Most syncs stored in one transaction (group commit): syncs arriving
    /// while the writer is busy share the next commit; 1 commits each alone.
    #[arg(long, env = "AIDSYNC_SYNCS_PER_COMMIT", default_value_t = aidsync_server::storage::DEFAULT_SYNCS_PER_COMMIT)]
    syncs_per_commit: usize,
    /// How long, in milliseconds, one write transaction keeps taking in
    /// syncs that arrived meanwhile before it commits (raise it on a disk
    /// whose fsync is slow).
    #[arg(long, env = "AIDSYNC_COMMIT_WINDOW_MS", default_value_t = aidsync_server::storage::DEFAULT_COMMIT_WINDOW.as_millis() as u64)]
    commit_window_ms: u64,
    /// Requests per minute one token may make (0: unlimited).
    #[arg(long, env = "AIDSYNC_REQUESTS_PER_MINUTE_PER_TOKEN", default_value_t = Limits::default().requests_per_minute_per_token)]
    requests_per_minute_per_token: u32,
    /// Requests per minute one IP address may make (0: unlimited).
    #[arg(long, env = "AIDSYNC_REQUESTS_PER_MINUTE_PER_IP", default_value_t = Limits::default().requests_per_minute_per_ip)]
    requests_per_minute_per_ip: u32,
    /// Failed logins per minute per IP address and per user name (0: unlimited).
    #[arg(long, env = "AIDSYNC_LOGIN_FAILURES_PER_MINUTE", default_value_t = Limits::default().login_failures_per_minute)]
    login_failures_per_minute: u32,
    /// Largest attachment (photo, scan, signature) a phone may upload, in bytes (413 past it).
    #[arg(long, env = "AIDSYNC_MAX_ATTACHMENT_BYTES", default_value_t = Limits::default().max_attachment_bytes)]
    max_attachment_bytes: u64,
    /// Attachment bytes one user may upload per day, UTC (429 past it; 0: unlimited).
    #[arg(long, env = "AIDSYNC_ATTACHMENT_BYTES_PER_USER_PER_DAY", default_value_t = Limits::default().attachment_bytes_per_user_per_day)]
    attachment_bytes_per_user_per_day: u64,
    /// Serve `/metrics` only on this address (e.g. `127.0.0.1:9100`), not on `--bind`.
    #[arg(long, env = "AIDSYNC_METRICS_BIND")]
    metrics_bind: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs go to stderr: stdout is for what a command prints (tables,
    // generated passwords, the demo accounts), which scripts may read.
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        );
    match cli.log_format {
        LogFormat::Text => logs.init(),
        // With the fields of every enclosing span (a request's id).
        LogFormat::Json => logs.json().init(),
    }
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Admin(args) => admin(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.body_read_timeout_secs == 0 || args.request_head_timeout_secs == 0 {
        anyhow::bail!(
            "--body-read-timeout-secs and --request-head-timeout-secs must be at least 1"
        );
    }
    let open_files =
        connections::raise_open_files_limit().context("raising the open-files limit")?;
    let config = Config {
        connections: ConnectionLimits {
            request_head_timeout: Duration::from_secs(args.request_head_timeout_secs),
            max_connections: args.max_connections,
        },
        web_root: Some(args.web_root),
        metrics_bind: args.metrics_bind,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(aidsync_server::tls::TlsFiles { cert, key }),
            _ => None,
        },
        bind: args.bind,
        database_url: args.database_url,
        document_cache_bytes: args.document_cache_bytes,
        syncs_per_commit: args.syncs_per_commit,
        commit_window: std::time::Duration::from_millis(args.commit_window_ms),
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
            max_docs_per_sync: args.max_docs_per_sync,
            max_changes_per_doc: args.max_changes_per_doc,
            max_ops_per_sync: args.max_ops_per_sync,
            max_document_bytes: args.max_document_bytes,
            token_ttl_ms: args.token_ttl_days.saturating_mul(DAY_MS),
            requests_per_minute_per_token: args.requests_per_minute_per_token,
            requests_per_minute_per_ip: args.requests_per_minute_per_ip,
            login_failures_per_minute: args.login_failures_per_minute,
            max_attachment_bytes: args.max_attachment_bytes,
            attachment_bytes_per_user_per_day: args.attachment_bytes_per_user_per_day,
        },
    };
    if args.token_ttl_days < 1 {
        anyhow::bail!("--token-ttl-days must be at least 1");
    }
    let app = Application::build(config.clone()).await?;
    let addr = app.local_addr()?;
    if args.demo {
        let demo = aidsync_server::demo::seed(app.db(), config.limits.token_ttl_ms).await?;
        println!(
            "{}",
            demo.instructions(&format!("{}://{addr}", app.scheme()))
        );
    }
    tracing::info!(%addr, database = %redact(&config.database_url), open_files, "aidsync listening");
    if (open_files as usize) < config.connections.max_connections + 64 {
        tracing::warn!(
            open_files,
            max_connections = config.connections.max_connections,
            "the open-files limit is below --max-connections: raise the hard limit (ulimit -Hn) or lower --max-connections"
        );
    }
    // On stdout, so a script that starts the server on port 0 learns where.
    let scheme = app.scheme();
    println!("aidsync: serving {scheme}://{addr}");
    if let Some(web_root) = config
        .web_root
        .as_ref()
        .filter(|r| r.join("index.html").is_file())
    {
        // 0.0.0.0 is where it listens, not an address to open.
        let (host, elsewhere) = if addr.ip().is_unspecified() {
            (
                format!("localhost:{}", addr.port()),
                " (from another device: this machine's network address)",
            )
        } else {
            (addr.to_string(), "")
        };
        println!("aidsync: phone app: {scheme}://{host}/{elsewhere}");
        println!("aidsync: coordinators' dashboard: {scheme}://{host}/coordinator/{elsewhere}");
        if !web_root.join("pkg").is_dir() {
            println!("aidsync: the phone app's engine is not built yet: run scripts/build-web");
        }
    }
    if let Some(metrics) = app.metrics_addr() {
        tracing::info!(%metrics, "metrics served on their own address");
        println!("aidsync: metrics on http://{metrics}/metrics");
    }
    app.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn admin(args: AdminArgs) -> anyhow::Result<()> {
    let db = Db::connect(&args.database_url)
        .await
        .with_context(|| format!("opening database {}", redact(&args.database_url)))?;
    let result = match args.command {
        AdminCommand::Facility(FacilityCommand::Add { id, name, region }) => {
            let new = NewFacility {
                id: FacilityId::parse(&id)
                    .map_err(|e| anyhow::anyhow!("facility id {id:?}: {e}"))?,
                name,
                region,
            };
            facilities::add(&db, new, now_ms())
                .await
                .map(|row| println!("added facility {} ({}, {})", row.id, row.name, row.region))
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
        AdminCommand::User(UserCommand::Add {
            id,
            name,
            role,
            facility,
            region,
            password_stdin,
        }) => {
            let new = NewUser {
                id: UserId::parse(&id).map_err(|e| anyhow::anyhow!("user id {id:?}: {e}"))?,
                name,
                role: Role::parse(&role).with_context(|| {
                    format!("role {role:?}: expected receiver, coordinator or admin")
                })?,
                facility: facility
                    .map(|f| {
                        FacilityId::parse(&f).map_err(|e| anyhow::anyhow!("facility {f:?}: {e}"))
                    })
                    .transpose()?,
                region,
            };
            let (password, generated) = password_from(password_stdin)?;
            let row = users::add(&db, new, &password, now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("added {} {} ({})", row.role, row.id, row.name);
            if generated {
                println!(
                    "password: {password}\n(shown once; give it to {} in person)",
                    row.name
                );
            }
            Ok(())
        }
        AdminCommand::User(UserCommand::List) => {
            let rows = db.list_users().await?;
            println!(
                "{:<20} {:<12} {:<24} {:<10} NAME",
                "ID", "ROLE", "FACILITY", "REGION"
            );
            for u in rows {
                let scope = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                let status = if u.disabled_at.is_some() {
                    " (disabled)"
                } else {
                    ""
                };
                println!(
                    "{:<20} {:<12} {:<24} {:<10} {}{status}",
                    u.id,
                    u.role,
                    scope(u.facility_id),
                    scope(u.region),
                    u.name
                );
            }
            Ok(())
        }
        AdminCommand::User(UserCommand::ResetPassword { id, password_stdin }) => {
            let id = UserId::parse(&id).map_err(|e| anyhow::anyhow!("user id {id:?}: {e}"))?;
            let (password, generated) = password_from(password_stdin)?;
            users::reset_password(&db, &id, &password, now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password of {id} replaced; their devices are logged out");
            if generated {
                println!("password: {password}\n(shown once)");
            }
            Ok(())
        }
        AdminCommand::Device(DeviceCommand::List { user }) => {
            let rows = db.list_devices(user.as_deref()).await?;
            println!(
                "{:<34} {:<16} {:<17} {:<24} NAME",
                "ID", "USER", "CREATED", "STATUS"
            );
            let now = now_ms();
            for d in rows {
                let status = match d.revoked_at {
                    Some(at) => format!("revoked {}", date(at)),
                    None if d.expires_at <= now => format!("expired {}", date(d.expires_at)),
                    None => format!("until {}", date(d.expires_at)),
                };
                println!(
                    "{:<34} {:<16} {:<17} {:<24} {}",
                    d.id,
                    d.user_id,
                    date(d.created_at),
                    status,
                    d.name
                );
            }
            Ok(())
        }
        AdminCommand::Device(DeviceCommand::Revoke { id }) => {
            let now = now_ms();
            devices::revoke(&db, &id, now)
                .await
                .map(|d| {
                    let already = match d.revoked_at {
                        Some(at) if at != now => format!(" (already, since {})", date(at)),
                        _ => String::new(),
                    };
                    println!(
                        "revoked device {} of {} ({}){already}; its synced records stay",
                        d.id, d.user_id, d.name
                    )
                })
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
        AdminCommand::Changes {
            user,
            device,
            limit,
        } => {
            let rows = audit::changes(&db, user, device, Some(limit))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{:<17} {:<16} {:<34} {:<20} CHANGE",
                "RECEIVED", "USER", "DEVICE", "SHIPMENT"
            );
            for c in rows {
                println!(
                    "{:<17} {:<16} {:<34} {:<20} {}",
                    date(c.received_at),
                    c.user_id,
                    c.device_id.as_deref().unwrap_or("-"),
                    c.document_id,
                    &c.hash[..c.hash.len().min(16)]
                );
            }
            Ok(())
        }
        AdminCommand::RebuildProjections => {
            let started = std::time::Instant::now();
            let rebuilt = aidsync_server::service::projections::rebuild(
                &db,
                aidsync_server::service::now_ms(),
                |done, total| {
                    if done % 100 == 0 || done == total {
                        eprintln!("rebuilt {done}/{total} shipments");
                    }
                },
            )
            .await?;
            println!(
                "rebuilt the projections of {rebuilt} shipments in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        AdminCommand::Backup { path } => backup(&db, &path).await,
        AdminCommand::ImportChanges { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let limits = aidsync_server::service::Limits::default();
            let now = aidsync_server::service::now_ms();
            let (report, _) =
                aidsync_server::service::carried::import(&db, None, &bytes, &limits, now)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}: written by {} on device {} at {}, {} record(s) waiting then",
                file.display(),
                report.user,
                report.device,
                date(report.created_at),
                report.pending
            );
            for d in &report.documents {
                println!("  {:<24} {}", d.id, serde_json::to_string(&d.upload)?);
            }
            println!(
                "{} shipment(s) accepted ({} new change(s)), {} refused",
                report.accepted, report.new_changes, report.refused
            );
            if report.refused > 0 {
                anyhow::bail!("{} shipment(s) refused; see above", report.refused);
            }
            Ok(())
        }
        AdminCommand::MarkRestored => {
            let epoch = aidsync_server::service::sync::new_epoch(rand::random());
            db.set_epoch(epoch).await?;
            println!(
                "marked as restored (epoch {epoch}): every phone starts over on its next sync and re-sends what this database lacks"
            );
            Ok(())
        }
        AdminCommand::Facility(FacilityCommand::List) => {
            let rows = db.list_facilities().await?;
            println!("{:<24} {:<16} NAME", "ID", "REGION");
            for f in rows {
                println!("{:<24} {:<16} {}", f.id, f.region, f.name);
            }
            Ok(())
        }
    };
    db.close().await;
    result
}

/// `admin backup PATH`: a copy of the live SQLite database, marked with a
/// new epoch so that restoring it needs no further step.
async fn backup(db: &Db, path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{} exists; a backup never overwrites a file",
            path.display()
        );
    }
    let target = path
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
    let epoch = aidsync_server::service::sync::new_epoch(rand::random());
    let started = std::time::Instant::now();
    match db.backup_sqlite(target, epoch).await? {
        Some(()) => {
            let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            println!(
                "backed up to {} ({:.1} MB in {:.1} s); to restore, stop the server and put this file in the database's place",
                path.display(),
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        None => anyhow::bail!(
            "this is a PostgreSQL database: back it up with pg_dump (see the README, \"Backups\"), and run `aidsync admin mark-restored` after restoring one"
        ),
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of a time in ms since the epoch, for tables.
fn date(ms: i64) -> String {
    // To the minute: the listing's column width.
    let mut text = aidsync_server::clock::format_utc(ms);
    text.truncate(16);
    text
}

/// The password to set, and whether it was generated (so must be shown).
fn password_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if !stdin {
        return Ok((users::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
}

/// Ctrl-C or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
