//! `eidgate audit verify|checkpoint|prune|report` (R-LOG-2, R-LOG-4, R-LOG-6, R-SEC-6; DESIGN "More
//! contracts" → "Audit verify").
//!
//! `verify` exits 0 when the log is intact; otherwise exits 1 and its first line is
//! `FAIL seq=<n>: <reason>`. It opens the HSM only to read the `audit-sign` public keys,
//! and reads the external sink (`audit.sink_path`, `--sink FILE`; `--no-sink` skips it
//! with a warning) for the checkpoints it witnessed.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::audit::report::Period;
use crate::config::Config;
use crate::hsm::AuditSigner;
use crate::store::AuditRepo as _;

/// Audit subcommands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain, the signed chain of checkpoints, their schedule, and the
    /// checkpoints witnessed in the external sink.
    Verify {
        /// Print JSON after the first line.
        #[arg(long)]
        json: bool,
        /// Read the witnessed checkpoints from this file instead of `audit.sink_path`
        /// (repeat it for the sinks of several instances).
        #[arg(long, conflicts_with = "no_sink")]
        sink: Vec<std::path::PathBuf>,
        /// Skip the external sink (a warning says what is then not checked).
        #[arg(long)]
        no_sink: bool,
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
    /// Check an exported bundle against the trusted audit keys (no database, no HSM).
    VerifyBundle {
        /// The bundle.
        file: std::path::PathBuf,
        /// The audit keys to trust: the JWKS published at `/audit/keys`, or PEM public keys.
        #[arg(long)]
        trust: std::path::PathBuf,
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
    if let AuditCommand::VerifyBundle { file, trust } = &cmd {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let bundle: crate::audit::export::Bundle = serde_json::from_str(&text).context("not an audit bundle")?;
        let keys = std::fs::read_to_string(trust).with_context(|| format!("reading {}", trust.display()))?;
        let trusted = crate::audit::trust::parse(&keys).map_err(|why| anyhow::anyhow!("{}: {why}", trust.display()))?;
        return Ok(match crate::audit::export::verify_bundle(&bundle, &trusted) {
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
            AuditCommand::Verify { json, sink, no_sink } => {
                let witness = if no_sink {
                    eprintln!(
                        "warning: --no-sink: the checkpoints witnessed in the external sink are not checked; \
                         a cut tail or a rewritten and re-chained log after the newest checkpoint left in \
                         the database may go unnoticed"
                    );
                    None
                } else {
                    let paths = if sink.is_empty() {
                        vec![config.audit.sink_file(&config.data_dir)]
                    } else {
                        sink
                    };
                    let mut read = Vec::new();
                    for path in &paths {
                        read.extend(
                            crate::audit::witness::read(path).map_err(|why| anyhow::anyhow!("audit sink {why}"))?,
                        );
                    }
                    if read.is_empty() && store.chain_tip().await?.is_some() {
                        let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                        anyhow::bail!(
                            "the sink {} witnesses no checkpoint, yet the database holds signed ones: \
                             name the sink with --sink FILE (or skip it with --no-sink)",
                            named.join(", ")
                        );
                    }
                    Some(read)
                };
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let a = &config.audit;
                let coverage = crate::audit::verify::Coverage::from_config(
                    a.checkpoint_every,
                    a.checkpoint_interval.as_secs(),
                    a.sink_interval.as_secs(),
                    now,
                );
                let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
                let keys = hsm.audit_keys();
                let options = crate::audit::verify::Options {
                    witness: witness.as_deref(),
                    coverage: Some(coverage),
                };
                let verdict = crate::audit::verify::verify_with(store.as_ref(), &keys, options)
                    .await
                    .context("reading the audit log")?;
                println!("{}", verdict.line());
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"intact": matches!(verdict, crate::audit::verify::Verdict::Intact { .. }),
                                           "witnessed": witness.as_ref().map(Vec::len)})
                    );
                }
                Ok(match verdict {
                    crate::audit::verify::Verdict::Intact { .. } => ExitCode::SUCCESS,
                    crate::audit::verify::Verdict::Fail { .. } => ExitCode::FAILURE,
                })
            }
            AuditCommand::Checkpoint { json } => {
                let witness = crate::app::shipper(&config)?;
                let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let signed = crate::audit::checkpoint::checkpoint_if_due(store.as_ref(), hsm.as_ref(), &witness, 1, now)
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
                use crate::audit::retention::Pruned;
                let retention = i64::try_from(config.audit.retention.as_secs()).unwrap_or(i64::MAX);
                let witness = crate::app::shipper(&config)?;
                let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let pruned =
                    crate::audit::retention::prune_expired(store.as_ref(), hsm.as_ref(), &witness, now, retention)
                        .await
                        .context("pruning")?;
                let (up_to, tampering) = match pruned {
                    Pruned::Nothing => (None, None),
                    Pruned::UpTo(seq) => (Some(seq), None),
                    Pruned::Tampering { seq, reason } => (None, Some((seq, reason.as_str()))),
                };
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"pruned_up_to": up_to,
                                           "tampering": tampering.map(|(seq, reason)| serde_json::json!({"seq": seq, "reason": reason}))})
                    );
                } else {
                    match (up_to, tampering) {
                        (_, Some((seq, reason))) => {
                            println!("FAIL seq={seq}: {reason}; nothing signed, nothing destroyed, alert raised")
                        }
                        (Some(seq), _) => println!("records up to seq {seq} destroyed"),
                        (None, None) => println!("nothing past retention"),
                    }
                }
                Ok(if tampering.is_some() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                })
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
