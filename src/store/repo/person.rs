//! [`PersonRepo`]: natural persons.

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::ids::{PersonId, PersonIdentifier};
use crate::domain::person::NaturalPerson;
use crate::store::StoreError;

/// Persons.
#[async_trait]
pub trait PersonRepo: Send + Sync {
    /// A person by id.
    async fn person(&self, id: PersonId) -> Result<Option<NaturalPerson>, StoreError>;
    /// A person by national identifier.
    async fn person_by_identifier(&self, identifier: &PersonIdentifier) -> Result<Option<NaturalPerson>, StoreError>;
    /// Inserts a person (`Conflict` if the identifier exists); audited.
    async fn insert_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError>;
    /// Changes a person's names, birthdate, proofing LoA and attributes (`import --update`).
    async fn update_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError>;
}
