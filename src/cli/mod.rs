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
    },
    /// Keys in the HSM.
    #[command(subcommand)]
    Hsm(crate::cli::hsm::HsmCommand),
    /// The tamper-evident audit log (R-LOG-2, R-LOG-4).
    #[command(subcommand)]
    Audit(crate::cli::audit::AuditCommand),
}

pub mod audit;
pub mod hsm;

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
    if let Command::Audit(cmd) = cli.command {
        return crate::cli::audit::run(cmd, config, &runtime);
    }
    let done = match cli.command {
        Command::Serve => runtime.block_on(serve(config)),
        Command::Migrate { json } => runtime.block_on(async {
            crate::app::open_store(&config).await?;
            if json {
                println!("{}", serde_json::json!({"migrated": true}));
            } else {
                println!("database schema is up to date");
            }
            Ok(())
        }),
        Command::Import { file, json } => runtime.block_on(async {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let store = crate::app::open_store(&config).await?;
            let report = crate::admin::import::import(store.as_ref(), &text, &config).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "imported {} clients, {} persons, {} means",
                    report.clients, report.persons, report.means
                );
                for (id, secret) in &report.generated_client_secrets {
                    println!("client {id}: generated secret {secret} (shown once)");
                }
            }
            Ok(())
        }),
        Command::Hsm(cmd) => crate::cli::hsm::run(cmd, &config, &runtime),
        Command::Audit(_) => Ok(()),
    };
    done.map(|()| ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = crate::app::build(config).await.context("starting eidgate")?;
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    tracing::info!(issuer = %app.config.issuer, %listen, "eidgate is serving");
    crate::app::serve(app, listener, shutdown_signal()).await?;
    Ok(())
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
