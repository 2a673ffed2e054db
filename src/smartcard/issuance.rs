//! Personalisation of a card (issue 4, R-ISS-2, R-MEANS-3): an issuing officer sends the
//! CSR made on the holder's card for an approved (`issued`) smartcard means; our CA
//! issues the authentication certificate, which is recorded with the means (serial,
//! validity) and audited in the same transaction. Activation then proves that the card
//! holds the certified key.

use serde::Serialize;
use serde_json::json;

use super::ca::{CardSubject, IssueError};
use super::state::Cards;
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::means::{MeansKind, MeansStatus};
use crate::domain::operator::Role;
use crate::lifecycle::actor::Actor;
use crate::lifecycle::LifecycleError;
use crate::store::{CardCertificate, StoreError};

/// Largest CSR accepted, in bytes.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// The answer of a personalisation.
#[derive(Debug, Serialize)]
pub struct Personalised {
    /// The means.
    pub means: MeansId,
    /// Serial, hex.
    pub serial: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Validity start (UTC seconds).
    pub not_before: i64,
    /// Validity end (UTC seconds).
    pub not_after: i64,
}

impl From<IssueError> for LifecycleError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Failed(why) => {
                tracing::error!(error = %why, "certificate issuance failed");
                LifecycleError::Unavailable
            }
            other => LifecycleError::Unprocessable(other.to_string()),
        }
    }
}

/// Issues the certificate of smartcard means `id` from `csr` (role `issuance`, not on
/// one's own means; the means is `issued` and has no certificate yet).
pub async fn personalise(app: &Cards, actor: &Actor, id: MeansId, csr: &[u8]) -> Result<Personalised, LifecycleError> {
    let officer = actor.operator_with(Role::Issuance)?;
    if csr.len() > MAX_CSR_BYTES {
        return Err(LifecycleError::BadRequest("CSR too large".into()));
    }
    if crate::supervision::termination::started(app.store.as_ref()).await? {
        return Err(LifecycleError::IssuanceStopped);
    }
    let rec = app.store.means_record(id).await?.ok_or(LifecycleError::NotFound)?;
    let means = rec.means;
    if means.holder == officer.person {
        return Err(LifecycleError::Forbidden("operators cannot act on their own means"));
    }
    // R-ISS-3, R-SEC-3: the officer who approved the means (and so decided that it exists)
    // does not also put a key into it.
    if rec.approved_by == Some(officer.person) {
        return Err(LifecycleError::Forbidden(
            "separation of duties: the approving officer cannot personalise the means",
        ));
    }
    if rec.registered_by == Some(officer.person) {
        return Err(LifecycleError::Forbidden(
            "separation of duties: the registering officer cannot personalise the means",
        ));
    }
    if means.kind != MeansKind::Smartcard {
        return Err(LifecycleError::Unprocessable(
            "only smartcard means take a certificate".into(),
        ));
    }
    if means.status != MeansStatus::Issued {
        return Err(LifecycleError::Conflict(
            "the card is personalised after approval and before activation".into(),
        ));
    }
    if !app.store.card_certificates_of(id).await?.is_empty() {
        return Err(LifecycleError::Conflict("this means has a certificate already".into()));
    }
    let person = app.store.person(means.holder).await?.ok_or(LifecycleError::NotFound)?;
    let subject = CardSubject {
        country: person.identifier.country().to_owned(),
        code: person.identifier.code().to_owned(),
        given_name: person.given_name.clone(),
        family_name: person.family_name.clone(),
    };
    let validity = app.config.smartcard.certificate_validity;
    let now = app.now();
    // A serial collision (2^-126) is a unique-constraint conflict: issue once more.
    for _ in 0..2 {
        let smartcard = app.smartcard.clone();
        let csr = csr.to_vec();
        let subject = subject.clone();
        let issued = tokio::task::spawn_blocking(move || smartcard.ca.issue(&csr, &subject, now, validity))
            .await
            .map_err(|_| LifecycleError::Unavailable)??;
        let record = CardCertificate {
            certificate_sha256: issued.certificate_sha256.clone(),
            means: id,
            issuer_sha256: app.smartcard.ca.subject_sha256().to_owned(),
            serial: issued.serial.clone(),
            der: issued.der.clone(),
            not_before: issued.not_before,
            not_after: issued.not_after,
        };
        let audit = AuditEvent::new(
            crate::audit::catalogue::CERTIFICATE_ISSUED,
            actor.audit_name(),
            format!("means:{id}"),
            json!({"serial": issued.serial, "ca_key": app.smartcard.ca.label(), "not_before": issued.not_before,
                   "not_after": issued.not_after, "certificate_sha256": issued.certificate_sha256}),
        );
        match app.store.insert_card_certificate(&record, audit).await {
            Ok(()) => {
                return Ok(Personalised {
                    means: id,
                    serial: issued.serial,
                    certificate_pem: super::certificate_pem(&issued.der),
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                })
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LifecycleError::Unavailable)
}

/// The record of an imported card certificate (`certificate_pem` in `eidgate import`):
/// one parseable end-entity certificate with key usage digitalSignature and EKU
/// clientAuth. Whether its issuer is trusted is decided at every login.
pub fn imported_certificate(pem: &str, means: MeansId) -> Result<CardCertificate, String> {
    let mut ders = super::pem_certificates(pem);
    if ders.len() != 1 {
        return Err("certificate_pem must hold exactly one PEM certificate".into());
    }
    let der = ders.remove(0);
    let cert = super::x509::parse(&der).map_err(|_| "certificate_pem does not parse".to_owned())?;
    let validity = cert.validity();
    super::x509::check_leaf(&cert, validity.not_before.timestamp())
        .map_err(|why| format!("certificate_pem is not a card authentication certificate: {why}"))?;
    Ok(CardCertificate {
        certificate_sha256: super::x509::sha256_hex(&der),
        means,
        issuer_sha256: super::x509::sha256_hex(cert.issuer().as_raw()),
        serial: super::x509::serial_hex(cert.raw_serial()),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        der: der.clone(),
    })
}
