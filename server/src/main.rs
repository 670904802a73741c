//! The `aidsync` command.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use aidsync_server::app::{Application, Config, redact};
use aidsync_server::service::facilities::{self, NewFacility};
use aidsync_server::service::users::{self, NewUser};
use aidsync_server::service::{Limits, now_ms};
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
    /// Seed demo facilities, devices and shipments (skipped if already seeded).
    #[arg(long)]
    demo: bool,
    /// Largest request body after decompression, in bytes.
    #[arg(long, env = "AIDSYNC_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most documents in one sync request.
    #[arg(long, env = "AIDSYNC_MAX_DOCS_PER_SYNC", default_value_t = Limits::default().max_docs_per_sync)]
    max_docs_per_sync: usize,
    /// Most changes for one document in one sync request.
    #[arg(long, env = "AIDSYNC_MAX_CHANGES_PER_DOC", default_value_t = Limits::default().max_changes_per_doc)]
    max_changes_per_doc: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Admin(args) => admin(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        bind: args.bind,
        database_url: args.database_url,
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_docs_per_sync: args.max_docs_per_sync,
            max_changes_per_doc: args.max_changes_per_doc,
        },
    };
    let app = Application::build(config.clone()).await?;
    let addr = app.local_addr()?;
    if args.demo {
        let demo = aidsync_server::demo::seed(app.db()).await?;
        println!("{}", demo.instructions(&format!("http://{addr}")));
    }
    tracing::info!(%addr, database = %redact(&config.database_url), "aidsync listening");
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
            users::reset_password(&db, &id, &password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password of {id} replaced");
            if generated {
                println!("password: {password}\n(shown once)");
            }
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
