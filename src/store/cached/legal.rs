//! [`LegalRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::ids::{LegalPersonId, MandateId, PersonId};
use crate::domain::legal::{LegalPerson, Mandate, MandateStatus};
use crate::store::{Consent, LegalRepo, StoreError};

#[async_trait]
impl LegalRepo for CachedStore {
    async fn consent(
        &self,
        person: PersonId,
        client: &crate::domain::ids::ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        self.inner.consent(person, client).await
    }

    async fn consents_of(&self, person: PersonId) -> Result<Vec<Consent>, StoreError> {
        self.inner.consents_of(person).await
    }

    async fn grant_consent(&self, consent: &Consent, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.grant_consent(consent, audit).await
    }

    async fn revoke_consent(
        &self,
        person: PersonId,
        client: &crate::domain::ids::ClientId,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        self.inner.revoke_consent(person, client, audit).await
    }

    async fn insert_legal_person(&self, legal: &LegalPerson, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_legal_person(legal, audit).await
    }

    async fn legal_person(&self, id: LegalPersonId) -> Result<Option<LegalPerson>, StoreError> {
        self.inner.legal_person(id).await
    }

    async fn legal_person_by_identifier(
        &self,
        identifier: &crate::domain::ids::PersonIdentifier,
    ) -> Result<Option<LegalPerson>, StoreError> {
        self.inner.legal_person_by_identifier(identifier).await
    }

    async fn insert_mandate(&self, mandate: &Mandate, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_mandate(mandate, audit).await
    }

    async fn mandate(&self, id: MandateId) -> Result<Option<Mandate>, StoreError> {
        self.inner.mandate(id).await
    }

    async fn mandates_of_person(&self, person: PersonId) -> Result<Vec<Mandate>, StoreError> {
        self.inner.mandates_of_person(person).await
    }

    async fn mandates_of_legal_person(&self, legal: LegalPersonId) -> Result<Vec<Mandate>, StoreError> {
        self.inner.mandates_of_legal_person(legal).await
    }

    async fn set_mandate_status(
        &self,
        id: MandateId,
        version: i64,
        status: MandateStatus,
        audit: AuditEvent,
    ) -> Result<Mandate, StoreError> {
        self.inner.set_mandate_status(id, version, status, audit).await
    }
}
