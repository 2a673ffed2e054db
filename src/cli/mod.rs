//! The `eidgate` command line (DESIGN "Admin API and CLI", CONTRACT): every subcommand
//! accepts `--config FILE` (or `EIDGATE_CONFIG`), prints JSON with `--json`, and exits
//! non-zero on failure.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "eidgate",
    version,
    about = "OpenID Connect provider for eID means, keys in a PKCS#11 HSM"
)]
struct Cli {
    /// Configuration file (TOML); without one the embedded defaults run.
    #[arg(long, global = true, env = "EIDGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Create or upgrade the database schema.
    Migrate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load clients, persons and means from a JSON file (test environments, migrations).
    Import {
        /// The JSON file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Change clients, persons and operators that are present but different
        /// (without it such an item is an error and nothing is written).
        #[arg(long)]
        update: bool,
    },
    /// Reports for the supervisor.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Incident handling.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// The compliance report: requirement → tests, code, or "not covered".
    #[command(subcommand)]
    Compliance(crate::cli::compliance::ComplianceCommand),
    /// Termination of the provider (R-SUP-3).
    #[command(subcommand)]
    Termination(TerminationCommand),
    /// Keys in the HSM.
    #[command(subcommand)]
    Hsm(crate::cli::hsm::HsmCommand),
    /// The tamper-evident audit log (R-LOG-2, R-LOG-4).
    #[command(subcommand)]
    Audit(crate::cli::audit::AuditCommand),
    /// Write an encrypted backup of the database (HSM `data-wrap` key) while it is in use (R-SEC-7).
    Backup {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into an empty database, or `--check` it without restoring (R-SEC-7).
    Restore {
        /// The backup file.
        #[arg(long = "in")]
        input: PathBuf,
        /// Only open and authenticate the backup.
        #[arg(long)]
        check: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The card stand-in: a PKCS#11 token playing the holder's smartcard.
    #[command(subcommand)]
    Card(crate::cli::card::CardCommand),
}

pub mod audit;
pub mod backup;
pub mod card;
pub mod compliance;
pub mod hsm;

#[derive(Subcommand)]
enum TerminationCommand {
    /// Stops new issuance at once (applications and approvals answer 503).
    Start {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revokes every means issued in the provider's name (resumable).
    RevokeAll {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Users of valid means on 31 December and means issued during the year (R-SUP-1).
    Annual {
        /// The year.
        #[arg(long)]
        year: i32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum IncidentCommand {
    /// Classifies an incident against the significant-incident thresholds (R-OPS-2).
    Classify {
        /// Share of users affected, percent.
        #[arg(long)]
        affected_percent: f64,
        /// Duration in minutes.
        #[arg(long)]
        duration_minutes: u32,
        /// The affected service.
        #[arg(long)]
        service: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EIDGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if let Command::Card(cmd) = cli.command {
        return crate::cli::card::run(cmd, &config).map(|()| ExitCode::SUCCESS);
    }
    if let Command::Compliance(cmd) = cli.command {
        return crate::cli::compliance::run(cmd);
    }
    if let Command::Audit(cmd) = cli.command {
        return crate::cli::audit::run(cmd, config, &runtime);
    }
    if let Command::Backup { out, json } = &cli.command {
        return crate::cli::backup::backup(config, out, *json, &runtime);
    }
    if let Command::Restore { input, check, json } = &cli.command {
        return crate::cli::backup::restore(config, input, *check, *json, &runtime);
    }
    let done = match cli.command {
        Command::Serve => runtime.block_on(serve(config, cli.config.clone())),
        Command::Migrate { json } => runtime.block_on(async {
            crate::app::open_store(&config).await?;
            if json {
                println!("{}", serde_json::json!({"migrated": true}));
            } else {
                println!("database schema is up to date");
            }
            Ok(())
        }),
        Command::Import { file, json, update } => runtime.block_on(async {
            use crate::admin::import::{import_with, needs_sealer, ImportOptions};
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let store = crate::app::open_store(&config).await?;
            let options = ImportOptions { update };
            let report = if needs_sealer(&text) {
                // TOTP seeds are sealed in the HSM before they are stored.
                let (config, hsm) = crate::app::open_hsm(config).await?;
                import_with(store.as_ref(), Some(hsm.as_ref()), &text, &config, options).await?
            } else {
                import_with(store.as_ref(), None, &text, &config, options).await?
            };
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                for (what, c) in [
                    ("created", report.created),
                    ("unchanged", report.unchanged),
                    ("updated", report.updated),
                ] {
                    println!(
                        "{what}: {} clients, {} persons, {} legal persons, {} mandates, {} operators, {} means",
                        c.clients, c.persons, c.legal_persons, c.mandates, c.operators, c.means
                    );
                }
                for (id, secret) in &report.generated_client_secrets {
                    println!("client {id}: generated secret {secret} (shown once)");
                }
            }
            Ok(())
        }),
        Command::Hsm(cmd) => crate::cli::hsm::run(cmd, &config, &runtime),
        Command::Termination(cmd) => runtime.block_on(async {
            use crate::supervision::termination;
            let store = crate::app::open_store(&config).await?;
            match cmd {
                TerminationCommand::Start { json } => {
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    termination::start(store.as_ref(), "cli:termination", now).await?;
                    if json {
                        println!("{}", serde_json::json!({"termination": "started"}));
                    } else {
                        println!("termination started: new issuance is refused");
                    }
                }
                TerminationCommand::RevokeAll { json } => {
                    if !termination::started(store.as_ref()).await? {
                        anyhow::bail!("run `eidgate termination start` first");
                    }
                    // The same path as the servers' own changes: each revocation is
                    // committed, marked and published, so running servers refuse it at once.
                    let ephemeral = crate::app::open_ephemeral(&config).await?;
                    let clock = crate::clock::SystemClock::default();
                    let changes = crate::lifecycle::change::Changes::new(
                        store.as_ref(),
                        ephemeral.as_ref(),
                        &clock,
                        config.tokens.access_ttl,
                    );
                    let n = termination::revoke_all(changes, "cli:termination").await?;
                    if json {
                        println!("{}", serde_json::json!({"revoked": n}));
                    } else {
                        println!("revoked {n} means");
                    }
                }
            }
            Ok(())
        }),
        Command::Report(ReportCommand::Annual { year, json }) => runtime.block_on(async {
            let store = crate::app::open_store(&config).await?;
            let report = crate::supervision::report::annual(store.as_ref(), year).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("Annual report {year}");
                println!(
                    "users of valid means on 31 December: {}",
                    report.valid_on_31_december.total
                );
                for (kind, n) in &report.valid_on_31_december.by_kind {
                    println!("  {kind}: {n}");
                }
                println!("means issued during the year: {}", report.issued_during_year.total);
                for (kind, n) in &report.issued_during_year.by_kind {
                    println!("  {kind}: {n}");
                }
            }
            Ok(())
        }),
        Command::Incident(IncidentCommand::Classify {
            affected_percent,
            duration_minutes,
            service,
            json,
        }) => {
            let report = crate::supervision::incident::IncidentReport {
                affected_percent,
                duration_minutes,
                service,
                started_at: None,
                description: None,
            };
            let answer = crate::supervision::incident::assess(&report, &config.issuer)?;
            if json {
                println!("{}", serde_json::to_string(&answer)?);
            } else {
                println!("significant: {}", answer.classification.significant);
                if let Some(text) = &answer.notification_text {
                    println!("\n{text}");
                }
            }
            Ok(())
        }
        Command::Audit(_)
        | Command::Compliance(_)
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Card(_) => Ok(()),
    };
    done.map(|()| ExitCode::SUCCESS)
}

async fn serve(config: Config, path: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = crate::app::build(config).await.context("starting eidgate")?;
    spawn_reload_on_hangup(&app, path);
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    tracing::info!(issuer = %app.config.issuer, %listen, "eidgate is serving");
    crate::web::serve::serve(app, listener, shutdown_signal()).await?;
    Ok(())
}

/// SIGHUP re-reads the configuration file and applies what may change without a restart:
/// the `[loa] caps` (R-SUP-2). A file that does not load leaves everything as it was.
fn spawn_reload_on_hangup(app: &std::sync::Arc<crate::app::App>, path: Option<std::path::PathBuf>) {
    #[cfg(unix)]
    {
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::warn!("SIGHUP handler not installed; configuration reload unavailable");
                return;
            };
            while hangups.recv().await.is_some() {
                match Config::load(path.as_deref()) {
                    Ok(fresh) => match app.reload_loa_caps(fresh.loa.caps).await {
                        Ok(()) => tracing::info!("configuration reloaded: LoA caps applied"),
                        Err(e) => tracing::error!(error = %e, "LoA caps not applied: audit write failed"),
                    },
                    Err(e) => tracing::error!(error = %e, "configuration reload refused; keeping the running one"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (app, path);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
