//! `eidgate hsm list` and `eidgate hsm rotate --kind ...`: the operator's view of the keys
//! in the PKCS#11 token (R-AUTH-6, R-AUTH-7, R-SEC-2; DESIGN "Admin API and CLI").
//!
//! Only public facts are printed (label, kind, algorithm, state, kid, when each key was
//! published, becomes active, is retired and leaves the JWKS); keys never leave the token
//! and PINs are never shown. A rotation made here is published by running servers at their
//! next key refresh (`hsm.key_refresh`) and signs from `hsm.publish_ahead` after it (at
//! once with `--now`), in every instance alike (issue 24).

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::Config;
use crate::hsm::{KeyInfo, KeyKind, Pkcs11Hsm, Switch};

/// `eidgate hsm ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum HsmCommand {
    /// List the keys in the token: label, kind, algorithm, state, kid and the published,
    /// active, retired and unpublished times.
    List {
        /// Print JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Generate the next key of a kind inside the token. It is published at once and signs
    /// from `hsm.publish_ahead` later; the previous key signs until then and stays in the
    /// JWKS for `hsm.retired_key_publish` after it.
    Rotate {
        /// Which key to rotate.
        #[arg(long, value_enum)]
        kind: RotatableKind,
        /// Sign with the new key at once (the active key is compromised): relying parties
        /// with a cached JWKS fail until they fetch it again.
        #[arg(long)]
        now: bool,
        /// Print the new key as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// The kinds an operator may rotate from the CLI (the label prefix without its dash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RotatableKind {
    /// EC P-256 ID-token key `oidc-sign-<n>` (ES256).
    #[value(name = "oidc-sign")]
    OidcSign,
    /// RSA-3072 ID-token key `oidc-sign-rsa-<n>` (RS256, PS256).
    #[value(name = "oidc-sign-rsa")]
    OidcSignRsa,
}

impl From<RotatableKind> for KeyKind {
    fn from(kind: RotatableKind) -> Self {
        match kind {
            RotatableKind::OidcSign => KeyKind::OidcEc,
            RotatableKind::OidcSignRsa => KeyKind::OidcRsa,
        }
    }
}

/// Runs an `eidgate hsm` subcommand against the configured token (blocking).
pub fn run(cmd: HsmCommand, config: &Config, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let hsm = Pkcs11Hsm::open(&config.hsm, &config.data_dir)
        .with_context(|| format!("cannot open HSM token {:?}", config.hsm.token_label))?;
    match cmd {
        HsmCommand::List { json } => {
            let keys = hsm.list_keys();
            if json {
                let keys: Vec<Value> = keys.iter().map(key_json).collect();
                println!("{}", json!({ "token": hsm.token_label(), "keys": keys }));
            } else {
                print_table(&keys);
            }
        }
        HsmCommand::Rotate { kind, now, json } => {
            let switch = if now { Switch::Now } else { Switch::AfterPublishAhead };
            if !now && config.hsm.publish_ahead <= config.hsm.key_refresh {
                eprintln!(
                    "warning: hsm.publish_ahead ({}s) is not longer than hsm.key_refresh ({}s): running servers may \
                     sign with the new key before relying parties can have fetched it",
                    config.hsm.publish_ahead.as_secs(),
                    config.hsm.key_refresh.as_secs()
                );
            }
            let key = hsm
                .rotate(kind.into(), switch)
                .with_context(|| format!("cannot rotate {}", KeyKind::from(kind)))?;
            // Key management is audited (R-LOG-1); a rotation that cannot be recorded is
            // reported as a failure.
            runtime
                .block_on(async {
                    let store = crate::app::open_store(config).await?;
                    let event = crate::audit::AuditEvent::new(
                        crate::audit::catalogue::KEY_ROTATED,
                        "operator:cli",
                        format!("key:{}", key.label),
                        json!({"kind": key.kind.to_string(), "generation": key.generation,
                               "kid": key.kid.as_ref().map(|kid| kid.0.as_str()),
                               "active_at": rfc3339(key.active_at), "now": now}),
                    );
                    crate::store::AuditRepo::append(store.as_ref(), event).await?;
                    anyhow::Ok(())
                })
                .context("the rotation happened but could not be recorded in the audit log")?;
            if json {
                println!("{}", key_json(&key));
            } else {
                print_table(std::slice::from_ref(&key));
                println!(
                    "{} is published; running servers publish it within hsm.key_refresh ({}s) and sign with it from {}.",
                    key.label,
                    config.hsm.key_refresh.as_secs(),
                    rfc3339(key.active_at).unwrap_or_else(|| "now".into())
                );
            }
        }
    }
    Ok(())
}

fn rfc3339(at: Option<OffsetDateTime>) -> Option<String> {
    at.and_then(|at| at.format(&Rfc3339).ok())
}

fn key_json(key: &KeyInfo) -> Value {
    json!({
        "label": key.label,
        "kind": key.kind.to_string(),
        "generation": key.generation,
        "algorithm": key.algorithm,
        "state": key.state.as_str(),
        "kid": key.kid.as_ref().map(|kid| kid.0.as_str()),
        "published_at": rfc3339(key.published_at),
        "active_at": rfc3339(key.active_at),
        "retired_at": rfc3339(key.retired_at),
        "unpublished_at": rfc3339(key.unpublished_at),
    })
}

fn print_table(keys: &[KeyInfo]) {
    println!(
        "{:<18} {:<13} {:<11} {:<9} {:<43} {:<20} {:<20} {:<20} UNPUBLISHED",
        "LABEL", "KIND", "ALGORITHM", "STATE", "KID", "PUBLISHED", "ACTIVE", "RETIRED"
    );
    let cell = |at: Option<OffsetDateTime>| rfc3339(at).unwrap_or_else(|| "-".into());
    for key in keys {
        println!(
            "{:<18} {:<13} {:<11} {:<9} {:<43} {:<20} {:<20} {:<20} {}",
            key.label,
            key.kind.to_string(),
            key.algorithm,
            key.state.as_str(),
            key.kid.as_ref().map_or("-", |kid| kid.0.as_str()),
            cell(key.published_at),
            cell(key.active_at),
            cell(key.retired_at),
            cell(key.unpublished_at),
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        hsm: HsmCommand,
    }

    #[test]
    fn r_auth_6_rotate_takes_the_kind_by_its_label_prefix() {
        let cli = Cli::try_parse_from(["hsm", "rotate", "--kind", "oidc-sign-rsa", "--json"]).unwrap();
        match cli.hsm {
            HsmCommand::Rotate { kind, now, json } => {
                assert_eq!(KeyKind::from(kind), KeyKind::OidcRsa);
                assert!(json);
                assert!(!now, "publish ahead unless asked");
            }
            HsmCommand::List { .. } => panic!("parsed as list"),
        }
        assert!(Cli::try_parse_from(["hsm", "rotate", "--kind", "private-key"]).is_err());
        let cli = Cli::try_parse_from(["hsm", "rotate", "--kind", "oidc-sign", "--now"]).unwrap();
        assert!(matches!(cli.hsm, HsmCommand::Rotate { now: true, .. }));
        assert!(Cli::try_parse_from(["hsm", "list"]).is_ok());
    }
}
