//! `eidgate audit verify|checkpoint|prune|report` (R-LOG-2, R-LOG-4, R-LOG-6, R-SEC-6; DESIGN "More
//! contracts" → "Audit verify").
//!
//! `verify` exits 0 when the log is intact; otherwise exits 1 and its first line is
//! `FAIL seq=<n>: <reason>`. It opens the HSM only to read the `audit-sign` public keys.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::audit::report::Period;
use crate::config::Config;
use crate::hsm::AuditSigner;

/// Audit subcommands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain and every checkpoint signature.
    Verify {
        /// Print JSON after the first line.
        #[arg(long)]
        json: bool,
    },
    /// Sign a checkpoint at the current head now (also done by the server).
    Checkpoint {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Destroy records older than `audit.retention` behind a signed anchor (R-LOG-6).
    Prune {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a signed, self-verifiable bundle of the records of a period (UTC dates,
    /// both inclusive) for the supervisor.
    Export {
        /// First day, `YYYY-MM-DD`.
        #[arg(long)]
        from: String,
        /// Last day, `YYYY-MM-DD`.
        #[arg(long)]
        to: String,
        /// Output file.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Check an exported bundle with the keys inside it (no database, no HSM).
    VerifyBundle {
        /// The bundle.
        file: std::path::PathBuf,
    },
    /// The daily analysis or the weekly summary of the last complete period.
    Report {
        /// Yesterday (UTC).
        #[arg(long, conflicts_with = "weekly", required_unless_present = "weekly")]
        daily: bool,
        /// The seven UTC days before today.
        #[arg(long)]
        weekly: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an audit subcommand.
pub fn run(cmd: AuditCommand, config: Config, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    if let AuditCommand::VerifyBundle { file } = &cmd {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let bundle: crate::audit::export::Bundle = serde_json::from_str(&text).context("not an audit bundle")?;
        return Ok(match crate::audit::export::verify_bundle(&bundle) {
            Ok(()) => {
                println!(
                    "OK records={} checkpoints={}",
                    bundle.records.len(),
                    bundle.checkpoints.len()
                );
                ExitCode::SUCCESS
            }
            Err(why) => {
                println!("FAIL {why}");
                ExitCode::FAILURE
            }
        });
    }
    runtime.block_on(async move {
        let store = crate::app::open_store(&config).await?;
        match cmd {
            AuditCommand::Verify { json } => {
                let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
                let keys = hsm.audit_keys();
                let verdict = crate::audit::verify::verify(store.as_ref(), &keys)
                    .await
                    .context("reading the audit log")?;
                println!("{}", verdict.line());
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"intact": matches!(verdict, crate::audit::verify::Verdict::Intact { .. })})
                    );
                }
                Ok(match verdict {
                    crate::audit::verify::Verdict::Intact { .. } => ExitCode::SUCCESS,
                    crate::audit::verify::Verdict::Fail { .. } => ExitCode::FAILURE,
                })
            }
            AuditCommand::Checkpoint { json } => {
                let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let signed = crate::audit::checkpoint::checkpoint_if_due(store.as_ref(), hsm.as_ref(), 1, now)
                    .await
                    .context("signing a checkpoint")?;
                let seq = signed.as_ref().map(|c| c.seq);
                if json {
                    println!("{}", serde_json::json!({"signed": seq.is_some(), "seq": seq}));
                } else {
                    match seq {
                        Some(seq) => println!("checkpoint signed at seq {seq}"),
                        None => println!("nothing new to sign"),
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Prune { json } => {
                let retention = i64::try_from(config.audit.retention.as_secs()).unwrap_or(i64::MAX);
                let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let up_to = crate::audit::retention::prune_expired(store.as_ref(), hsm.as_ref(), now, retention)
                    .await
                    .context("pruning")?;
                if json {
                    println!("{}", serde_json::json!({"pruned_up_to": up_to}));
                } else {
                    match up_to {
                        Some(seq) => println!("records up to seq {seq} destroyed"),
                        None => println!("nothing past retention"),
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Export { from, to, out } => {
                let from = day_start(&from)?;
                let to = day_start(&to)? + crate::audit::report::DAY;
                let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
                let bundle = crate::audit::export::export(store.as_ref(), hsm.as_ref(), from, to)
                    .await
                    .context("exporting")?;
                std::fs::write(&out, serde_json::to_vec_pretty(&bundle)?)
                    .with_context(|| format!("writing {}", out.display()))?;
                println!("{} records written to {}", bundle.records.len(), out.display());
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::VerifyBundle { .. } => Ok(ExitCode::FAILURE),
            AuditCommand::Report { daily, weekly: _, json } => {
                let period = if daily { Period::Daily } else { Period::Weekly };
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let (from, to) = period.last_complete(now);
                let report = crate::audit::report::build(store.as_ref(), from, to).await?;
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// UTC midnight of `YYYY-MM-DD`, as seconds.
fn day_start(text: &str) -> anyhow::Result<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).with_context(|| format!("{text:?} is not YYYY-MM-DD"))?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}
