//! [`LifecycleRepo`] through the cache: forwarded; a transition drops the cached means.

use async_trait::async_trait;

use super::lock;
use super::CachedStore;
use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::EidMeans;
use crate::domain::operator::Operator;
use crate::domain::person::ProofingRecord;
use crate::domain::UnixTime;
use crate::store::{
    Acceptance, Credential, IdempotentResponse, LifecycleRepo, MeansRecord, StoreError, TransitionWrite,
};

/// Everything goes to the database: lifecycle data (codes, counters, secrets, operators)
/// is read where a decision is made and must be current, so none of it is cached.
#[async_trait]
impl LifecycleRepo for CachedStore {
    async fn means_record(&self, id: MeansId) -> Result<Option<MeansRecord>, StoreError> {
        self.inner.means_record(id).await
    }

    async fn insert_application(
        &self,
        means: &EidMeans,
        officer: PersonId,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.insert_application(means, officer, audit).await
    }

    async fn insert_imported_means(
        &self,
        means: &EidMeans,
        credential: &Credential,
        revocation_secret: Option<&str>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner
            .insert_imported_means(means, credential, revocation_secret, audit)
            .await
    }

    async fn insert_renewal(
        &self,
        means: &EidMeans,
        officer: PersonId,
        renews: MeansId,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.insert_renewal(means, officer, renews, audit).await
    }

    async fn commit_transition(&self, write: &TransitionWrite, audit: AuditEvent) -> Result<EidMeans, StoreError> {
        // As in `set_status`: dropped before and after, so no reader can re-insert the
        // old state in between and have it survive the write.
        let forget = |write: &TransitionWrite| {
            let mut means = lock(&self.means);
            means.remove(&write.id);
            if let Some(old) = &write.retire {
                means.remove(&old.id);
            }
        };
        forget(write);
        let r = self.inner.commit_transition(write, audit).await;
        forget(write);
        r
    }

    async fn count_activation_failure(&self, id: MeansId, audit: AuditEvent) -> Result<i64, StoreError> {
        self.inner.count_activation_failure(id, audit).await
    }

    async fn count_revocation_failure(&self, id: MeansId, audit: AuditEvent) -> Result<i64, StoreError> {
        self.inner.count_revocation_failure(id, audit).await
    }

    async fn idempotent_response(
        &self,
        operator: PersonId,
        key: &str,
    ) -> Result<Option<IdempotentResponse>, StoreError> {
        self.inner.idempotent_response(operator, key).await
    }

    async fn store_idempotent_response(&self, response: &IdempotentResponse) -> Result<(), StoreError> {
        self.inner.store_idempotent_response(response).await
    }

    async fn operator(&self, person: PersonId) -> Result<Option<Operator>, StoreError> {
        self.inner.operator(person).await
    }

    async fn set_operator(&self, operator: &Operator, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.set_operator(operator, audit).await
    }

    async fn insert_proofing(
        &self,
        person: PersonId,
        record: &ProofingRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.insert_proofing(person, record, audit).await
    }

    async fn proofing_records(&self, person: PersonId) -> Result<Vec<ProofingRecord>, StoreError> {
        self.inner.proofing_records(person).await
    }

    async fn acceptances(&self, person: PersonId) -> Result<Vec<Acceptance>, StoreError> {
        self.inner.acceptances(person).await
    }

    async fn audit_by_subject(&self, subject: &str, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_by_subject(subject, limit).await
    }

    async fn due_for_expiry(&self, now: UnixTime, limit: i64) -> Result<Vec<EidMeans>, StoreError> {
        self.inner.due_for_expiry(now, limit).await
    }
}
