//! `eidgate hsm list` and `eidgate hsm rotate --kind ...`: the operator's view of the keys
//! in the PKCS#11 token (R-AUTH-6, R-AUTH-7, R-SEC-2; DESIGN "Admin API and CLI").
//!
//! Only public facts are printed (label, kind, algorithm, state, kid, retirement time);
//! keys never leave the token and PINs are never shown. A rotation made here reaches
//! running servers at their next key refresh (`hsm.key_refresh`).

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::config::Config;
use crate::hsm::{KeyInfo, KeyKind, Pkcs11Hsm};

/// `eidgate hsm ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum HsmCommand {
    /// List the keys in the token: label, kind, algorithm, state and kid.
    List {
        /// Print JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Generate the next key of a kind inside the token. It becomes active at once; the
    /// previous key stays in the JWKS for `hsm.retired_key_publish`.
    Rotate {
        /// Which key to rotate.
        #[arg(long, value_enum)]
        kind: RotatableKind,
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
        HsmCommand::Rotate { kind, json } => {
            let key = hsm
                .rotate(kind.into())
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
                               "kid": key.kid.as_ref().map(|kid| kid.0.as_str())}),
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
                    "{} is active here; running servers switch within hsm.key_refresh ({}s).",
                    key.label,
                    config.hsm.key_refresh.as_secs()
                );
            }
        }
    }
    Ok(())
}

fn key_json(key: &KeyInfo) -> Value {
    json!({
        "label": key.label,
        "kind": key.kind.to_string(),
        "generation": key.generation,
        "algorithm": key.algorithm,
        "state": key.state.as_str(),
        "kid": key.kid.as_ref().map(|kid| kid.0.as_str()),
        "retired_at": key.retired_at.and_then(|at| at.format(&Rfc3339).ok()),
    })
}

fn print_table(keys: &[KeyInfo]) {
    println!(
        "{:<20} {:<14} {:<12} {:<10} {:<44} RETIRED_AT",
        "LABEL", "KIND", "ALGORITHM", "STATE", "KID"
    );
    for key in keys {
        let retired_at = key
            .retired_at
            .and_then(|at| at.format(&Rfc3339).ok())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:<14} {:<12} {:<10} {:<44} {}",
            key.label,
            key.kind.to_string(),
            key.algorithm,
            key.state.as_str(),
            key.kid.as_ref().map_or("-", |kid| kid.0.as_str()),
            retired_at
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
            HsmCommand::Rotate { kind, json } => {
                assert_eq!(KeyKind::from(kind), KeyKind::OidcRsa);
                assert!(json);
            }
            HsmCommand::List { .. } => panic!("parsed as list"),
        }
        assert!(Cli::try_parse_from(["hsm", "rotate", "--kind", "private-key"]).is_err());
        assert!(Cli::try_parse_from(["hsm", "list"]).is_ok());
    }
}
