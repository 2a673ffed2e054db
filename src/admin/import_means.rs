//! The `means` section of `eidgate import`: active means with their credentials.
//!
//! The same item (issue 24): a `smartcard` means by its certificate; a `password` or `totp`
//! means by its holder and kind (the holder's active or suspended one). An item present and
//! equal (level, credential, revocation secret when given) is `unchanged`, so importing the
//! same file again gives no holder a second means and leaves the supervisory report as it
//! was. One present but different is refused, also with `--update`: a means changes only
//! through its lifecycle (revoke it at the helpdesk and import again).

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::AuditEvent;
use crate::authn::password;
use crate::authn::totp::TotpSeed;
use crate::domain::ids::{MeansId, PersonIdentifier};
use crate::domain::loa::Loa;
use crate::domain::means::{EidMeans, MeansKind, MeansStatus};
use crate::domain::secret::Password;
use crate::domain::UnixTime;
use crate::hsm::Sealer;
use crate::smartcard::issuance::imported_certificate;
use crate::store::{CardCertificate, Credential, Store};

use super::import_legal::{differs, field, invalid, once, Fate, ImportError, ImportReport, Persons};

/// `{"holder", "kind", "loa", "password"?, "totp_secret"?, "certificate_pem"?, "revocation_secret"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MeansEntry {
    holder: String,
    pub(super) kind: MeansKind,
    loa: Loa,
    password: Option<Password>,
    totp_secret: Option<Password>,
    certificate_pem: Option<String>,
    revocation_secret: Option<Password>,
}

/// The key naming a means item: `<holder> <kind>`.
pub(super) fn key(value: &Value) -> String {
    format!("{} {}", field(value, "holder"), field(value, "kind"))
}

/// One means to write (or leave).
pub(super) struct Planned {
    fate: Fate,
    means: EidMeans,
    credential: Credential,
    revocation: Option<String>,
    certificate: Option<CardCertificate>,
}

/// Checks one entry's own fields.
fn check(item: &str, m: &MeansEntry, sealer: bool) -> Result<(), ImportError> {
    // The holder's secret for telling the helpdesk to suspend or revoke (R-LIFE-2):
    // compared as typed on the phone, so it must keep enough of itself normalised.
    if m.revocation_secret.as_ref().is_some_and(|s| {
        let n = crate::lifecycle::codes::normalise(s.expose());
        n.chars().count() < 8 || n.len() > 256
    }) {
        return Err(invalid(
            item,
            "revocation_secret must have 8 to 256 characters besides spaces and dashes",
        ));
    }
    if m.loa > m.kind.ceiling() {
        return Err(invalid(item, format!("a {} means cannot be {}", m.kind, m.loa)));
    }
    if m.kind == MeansKind::Smartcard {
        // A card with its certificate (`certificate_pem`): no password, no seed.
        if m.password.is_some() || m.totp_secret.is_some() {
            return Err(invalid(
                item,
                "a smartcard means takes only certificate_pem (and revocation_secret)",
            ));
        }
        if m.certificate_pem.is_none() {
            return Err(invalid(item, "a smartcard means needs certificate_pem"));
        }
        return Ok(());
    }
    let totp = m.kind == MeansKind::Totp;
    if !(m.kind == MeansKind::Password || (totp && sealer)) {
        return Err(invalid(
            item,
            format!("import of {} means is not supported here", m.kind),
        ));
    }
    if m.totp_secret.is_some() != totp || m.certificate_pem.is_some() {
        return Err(invalid(item, "credential fields do not match the kind"));
    }
    match &m.password {
        Some(p) if p.expose().chars().count() >= 8 => Ok(()),
        _ => Err(invalid(item, "a password of at least 8 characters is required")),
    }
}

/// Checks the section against the document's persons and the store; writes nothing.
pub(super) async fn plan(
    store: &dyn Store,
    sealer: Option<&dyn Sealer>,
    entries: Vec<(String, MeansEntry)>,
    persons: &Persons,
    now: UnixTime,
    validity: i64,
) -> Result<Vec<Planned>, ImportError> {
    let mut planned = Vec::new();
    let mut seen = HashSet::new();
    for (item, m) in entries {
        check(&item, &m, sealer.is_some())?;
        let seed = m
            .totp_secret
            .as_ref()
            .map(|s| TotpSeed::from_base32(s.expose()))
            .transpose()
            .map_err(|_| invalid(&item, "totp_secret must be base32 of at least 128 bits"))?;
        let identifier: PersonIdentifier = m
            .holder
            .parse()
            .map_err(|_| invalid(&item, "malformed holder identifier"))?;
        let (holder, stored) = persons
            .resolve(store, &identifier)
            .await?
            .ok_or_else(|| invalid(&item, "unknown holder"))?;
        if m.loa > holder.proofing_loa {
            return Err(invalid(&item, "the means' LoA exceeds the holder's proofing LoA"));
        }
        let id = MeansId::new();
        let certificate = match m.certificate_pem.as_deref() {
            Some(pem) => Some(imported_certificate(pem, id).map_err(|why| invalid(&item, why))?),
            None => None,
        };
        // The same item: a card by its certificate, other kinds by holder and kind.
        let same_key = match &certificate {
            Some(c) => format!("certificate {}", c.certificate_sha256),
            None => item.clone(),
        };
        once(&mut seen, &same_key).map_err(|_| invalid(&item, "appears twice in the document"))?;
        let present = match &certificate {
            Some(c) => match store.card_certificate(&c.certificate_sha256).await? {
                Some(known) => match store.means(known.means).await? {
                    Some(means) if means.holder == holder.id => Some(means),
                    _ => return Err(invalid(&item, "the certificate belongs to another means")),
                },
                None => None,
            },
            None if stored => store
                .means_of_holder(holder.id)
                .await?
                .into_iter()
                .find(|x| x.kind == m.kind && matches!(x.status, MeansStatus::Active | MeansStatus::Suspended)),
            None => None,
        };
        if let Some(means) = present {
            let what = differences(store, sealer, &m, seed.as_ref(), &means).await?;
            if !what.is_empty() {
                differs(&item, &what.join(", "), false, false)?;
            }
            planned.push(Planned {
                fate: Fate::Unchanged,
                means,
                credential: Credential::None,
                revocation: None,
                certificate: None,
            });
            continue;
        }
        // Stored as argon2id of the normalised secret, as for issued means.
        let revocation = m
            .revocation_secret
            .as_ref()
            .map(|s| password::hash(&Password::new(crate::lifecycle::codes::normalise(s.expose()))))
            .transpose()
            .map_err(|e| invalid(&item, e.to_string()))?;
        let credential = match (&m.password, seed, sealer) {
            (None, _, _) => Credential::None,
            (Some(p), None, _) => {
                Credential::PasswordHash(password::hash(p).map_err(|e| invalid(&item, e.to_string()))?)
            }
            (Some(p), Some(seed), Some(sealer)) => Credential::PasswordTotp {
                password_phc: password::hash(p).map_err(|e| invalid(&item, e.to_string()))?,
                sealed_seed: sealer
                    .seal(seed.expose(), id.to_string().as_bytes())
                    .await
                    .map_err(|e| invalid(&item, format!("cannot seal the TOTP seed: {e}")))?,
            },
            (Some(_), Some(_), None) => return Err(invalid(&item, "import of totp means is not supported here")),
        };
        let means = EidMeans {
            id,
            holder: holder.id,
            kind: m.kind,
            loa: m.loa,
            status: MeansStatus::Active,
            valid_from: now,
            valid_until: now + validity,
            version: 1,
        };
        planned.push(Planned {
            fate: Fate::Create,
            means,
            credential,
            revocation,
            certificate,
        });
    }
    Ok(planned)
}

/// What differs between an entry and the means present for it (empty: the same).
async fn differences(
    store: &dyn Store,
    sealer: Option<&dyn Sealer>,
    m: &MeansEntry,
    seed: Option<&TotpSeed>,
    means: &EidMeans,
) -> Result<Vec<&'static str>, ImportError> {
    let mut what = Vec::new();
    if means.status != MeansStatus::Active {
        what.push("status (it is not active)");
    }
    if means.loa != m.loa {
        what.push("loa");
    }
    let (phc, sealed) = match store.credential(means.id).await? {
        Credential::PasswordHash(phc) => (Some(phc), None),
        Credential::PasswordTotp {
            password_phc,
            sealed_seed,
        } => (Some(password_phc), Some(sealed_seed)),
        Credential::None => (None, None),
    };
    if let Some(p) = &m.password {
        if !phc.is_some_and(|phc| password::verify_blocking(&phc, p)) {
            what.push("password");
        }
    }
    if let Some(seed) = seed {
        let same = match (sealed, sealer) {
            (Some(sealed), Some(sealer)) => sealer
                .open(&sealed, means.id.to_string().as_bytes())
                .await
                .is_ok_and(|open| crate::domain::secret::ct_eq(&open, seed.expose())),
            _ => false,
        };
        if !same {
            what.push("totp_secret");
        }
    }
    if let Some(secret) = &m.revocation_secret {
        let normalised = Password::new(crate::lifecycle::codes::normalise(secret.expose()));
        let stored = store.means_record(means.id).await?.and_then(|r| r.revocation_secret);
        if !stored.is_some_and(|phc| password::verify_blocking(&phc, &normalised)) {
            what.push("revocation_secret");
        }
    }
    Ok(what)
}

/// Writes the planned means, each audited as imported (a card also its certificate).
pub(super) async fn write(
    store: &dyn Store,
    planned: Vec<Planned>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    for p in planned {
        report.tally(p.fate, |c| &mut c.means);
        report.means_ids.push(p.means.id.to_string());
        if p.fate != Fate::Create {
            continue;
        }
        let means = p.means;
        let event = AuditEvent::new(
            crate::audit::catalogue::MEANS_IMPORTED,
            "system:import",
            format!("means:{}", means.id),
            json!({"holder": means.holder, "kind": means.kind, "loa": means.loa, "status": "active",
                   "revocation_secret": p.revocation.is_some()}),
        );
        store
            .insert_imported_means(&means, &p.credential, p.revocation.as_deref(), event)
            .await?;
        if let Some(certificate) = p.certificate {
            let event = AuditEvent::new(
                crate::audit::catalogue::CERTIFICATE_IMPORTED,
                "system:import",
                format!("means:{}", means.id),
                json!({"serial": certificate.serial, "issuer_sha256": certificate.issuer_sha256,
                       "certificate_sha256": certificate.certificate_sha256}),
            );
            store.insert_card_certificate(&certificate, event).await?;
        }
    }
    Ok(())
}
