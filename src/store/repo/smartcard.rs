//! [`SmartcardRepo`]: smartcard certificates and CRL numbers (issue 4).

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::means::MeansStatus;
use crate::domain::UnixTime;
use crate::store::StoreError;

/// A smartcard authentication certificate bound to a `smartcard` means (issue 4,
/// R-MEANS-3): issued by our CA from the card's CSR, or imported from a trusted external CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardCertificate {
    /// Hex SHA-256 of the certificate DER (the lookup key at login).
    pub certificate_sha256: String,
    /// The means it belongs to.
    pub means: MeansId,
    /// Hex SHA-256 of the issuer Name DER (our CA or an external one).
    pub issuer_sha256: String,
    /// Serial number, lower-case hex of the DER integer content.
    pub serial: String,
    /// The certificate DER.
    pub der: Vec<u8>,
    /// Validity start, UTC seconds.
    pub not_before: UnixTime,
    /// Validity end, UTC seconds.
    pub not_after: UnixTime,
}

/// A certificate of one issuer whose means is no longer usable: what a CRL lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawnCertificate {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The state of its means (`suspended`, `revoked`, `expired`).
    pub status: MeansStatus,
    /// When the means last changed state, UTC seconds.
    pub since: UnixTime,
    /// Validity end of the certificate.
    pub not_after: UnixTime,
}

/// Smartcard certificates and CRL numbers (issue 4).
#[async_trait]
pub trait SmartcardRepo: Send + Sync {
    /// Records a certificate; audited. `Conflict` when its serial (per issuer) or the
    /// certificate itself is recorded already.
    async fn insert_card_certificate(&self, cert: &CardCertificate, audit: AuditEvent) -> Result<(), StoreError>;
    /// A certificate by the hex SHA-256 of its DER.
    async fn card_certificate(&self, certificate_sha256: &str) -> Result<Option<CardCertificate>, StoreError>;
    /// The certificates of a means, newest first.
    async fn card_certificates_of(&self, means: MeansId) -> Result<Vec<CardCertificate>, StoreError>;
    /// Unexpired (at `now`) certificates of `issuer_sha256` whose means is suspended,
    /// revoked or expired.
    async fn withdrawn_card_certificates(
        &self,
        issuer_sha256: &str,
        now: UnixTime,
    ) -> Result<Vec<WithdrawnCertificate>, StoreError>;
    /// The next CRL number of an issuer (1, 2, ...), durable.
    async fn next_crl_number(&self, issuer_sha256: &str) -> Result<i64, StoreError>;
}
