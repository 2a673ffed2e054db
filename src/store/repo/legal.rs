//! [`LegalRepo`]: consents, legal persons and mandates (R-DATA-4, R-REG-5, R-BIND-1).

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::ids::{ClientId, LegalPersonId, MandateId, PersonId, PersonIdentifier};
use crate::domain::UnixTime;
use crate::store::StoreError;

/// A holder's consent to release a set of claims to one client (R-DATA-4).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Consent {
    /// The holder.
    pub person: PersonId,
    /// The client.
    pub client_id: ClientId,
    /// The claim names consented to, sorted.
    pub claims: Vec<String>,
    /// When.
    pub granted_at: UnixTime,
}

/// Consents, legal persons and mandates (R-DATA-4, R-REG-5, R-BIND-1).
#[async_trait]
pub trait LegalRepo: Send + Sync {
    /// The holder's consent for a client.
    async fn consent(&self, person: PersonId, client: &ClientId) -> Result<Option<Consent>, StoreError>;
    /// Every consent of a holder.
    async fn consents_of(&self, person: PersonId) -> Result<Vec<Consent>, StoreError>;
    /// Records (or replaces) a consent, audited.
    async fn grant_consent(&self, consent: &Consent, audit: AuditEvent) -> Result<(), StoreError>;
    /// Withdraws a consent, audited; false when there was none. Every live refresh token
    /// of the holder at that client is revoked in the same transaction (R-DATA-4: the
    /// withdrawn claims stop flowing at once).
    async fn revoke_consent(&self, person: PersonId, client: &ClientId, audit: AuditEvent) -> Result<bool, StoreError>;
    /// Records a legal person (`Conflict` when the identifier exists).
    async fn insert_legal_person(
        &self,
        legal: &crate::domain::legal::LegalPerson,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// A legal person by id.
    async fn legal_person(&self, id: LegalPersonId) -> Result<Option<crate::domain::legal::LegalPerson>, StoreError>;
    /// A legal person by its unique identifier.
    async fn legal_person_by_identifier(
        &self,
        identifier: &PersonIdentifier,
    ) -> Result<Option<crate::domain::legal::LegalPerson>, StoreError>;
    /// Records a mandate.
    async fn insert_mandate(
        &self,
        mandate: &crate::domain::legal::Mandate,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// A mandate by id.
    async fn mandate(&self, id: MandateId) -> Result<Option<crate::domain::legal::Mandate>, StoreError>;
    /// The mandates of a representative.
    async fn mandates_of_person(&self, person: PersonId) -> Result<Vec<crate::domain::legal::Mandate>, StoreError>;
    /// The mandates for a legal person.
    async fn mandates_of_legal_person(
        &self,
        legal: LegalPersonId,
    ) -> Result<Vec<crate::domain::legal::Mandate>, StoreError>;
    /// Changes a mandate's state if it still has `version` (`Conflict` otherwise).
    async fn set_mandate_status(
        &self,
        id: MandateId,
        version: i64,
        status: crate::domain::legal::MandateStatus,
        audit: AuditEvent,
    ) -> Result<crate::domain::legal::Mandate, StoreError>;
}
