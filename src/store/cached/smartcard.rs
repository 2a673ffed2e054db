//! [`SmartcardRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::UnixTime;
use crate::store::{CardCertificate, SmartcardRepo, StoreError, WithdrawnCertificate};

#[async_trait]
impl SmartcardRepo for CachedStore {
    async fn insert_card_certificate(&self, cert: &CardCertificate, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_card_certificate(cert, audit).await
    }

    async fn card_certificate(&self, certificate_sha256: &str) -> Result<Option<CardCertificate>, StoreError> {
        self.inner.card_certificate(certificate_sha256).await
    }

    async fn card_certificates_of(&self, means: MeansId) -> Result<Vec<CardCertificate>, StoreError> {
        self.inner.card_certificates_of(means).await
    }

    async fn withdrawn_card_certificates(
        &self,
        issuer_sha256: &str,
        now: UnixTime,
    ) -> Result<Vec<WithdrawnCertificate>, StoreError> {
        self.inner.withdrawn_card_certificates(issuer_sha256, now).await
    }

    async fn next_crl_number(&self, issuer_sha256: &str) -> Result<i64, StoreError> {
        self.inner.next_crl_number(issuer_sha256).await
    }
}
