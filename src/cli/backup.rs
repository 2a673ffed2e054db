//! `eidgate backup --out FILE` and `eidgate restore --in FILE [--check]` (R-SEC-7): see
//! [`crate::backup`]. Backup runs beside a serving instance (one consistent snapshot);
//! restore goes only into an empty database and is followed by `eidgate audit verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;

/// Writes an encrypted backup to `out` (via `out.partial`, mode 0600, then renamed).
pub fn backup(config: Config, out: &Path, json: bool, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    runtime.block_on(async move {
        let store = crate::app::open_store(&config).await?;
        let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
        let partial = partial_path(out);
        let file = create_private(&partial)
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        let mut writer = tokio::io::BufWriter::new(file);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let summary = match crate::backup::write(store.as_ref(), hsm.as_ref(), &mut writer, now).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(e).context("writing the backup");
            }
        };
        use tokio::io::AsyncWriteExt as _;
        writer.flush().await?;
        writer.into_inner().sync_all().await?;
        tokio::fs::rename(&partial, out)
            .await
            .with_context(|| format!("renaming to {}", out.display()))?;
        if json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            println!(
                "backup {} written to {}: {} rows in {} tables",
                summary.backup_id,
                out.display(),
                summary.total_rows,
                summary.rows.len()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Restores `input` into the configured (empty) database, or with `check` only opens and
/// authenticates every frame.
pub fn restore(
    config: Config,
    input: &Path,
    check: bool,
    json: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    runtime.block_on(async move {
        let file = tokio::fs::File::open(input)
            .await
            .with_context(|| format!("opening {}", input.display()))?;
        let reader = tokio::io::BufReader::new(file);
        if check {
            let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
            let (manifest, summary) = crate::backup::check(hsm.as_ref(), reader).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"intact": true, "manifest": manifest, "rows": summary.rows})
                );
            } else {
                println!(
                    "OK backup {} of {} ({} rows), taken at {}",
                    summary.backup_id, manifest.snapshot.backend, summary.total_rows, manifest.created_at
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let store = crate::app::open_store(&config).await?;
        let (_, hsm) = crate::app::open_hsm(config).await.context("opening the HSM")?;
        let summary = crate::backup::restore(store.as_ref(), hsm.as_ref(), reader)
            .await
            .context("restoring")?;
        if json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            println!(
                "backup {} restored: {} rows in {} tables; run `eidgate audit verify` next",
                summary.backup_id,
                summary.total_rows,
                summary.rows.len()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

async fn create_private(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}
