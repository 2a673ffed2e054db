//! [`PersonRepo`] through the cache: forwarded, nothing cached.

use async_trait::async_trait;

use super::CachedStore;
use crate::audit::AuditEvent;
use crate::domain::ids::{PersonId, PersonIdentifier};
use crate::domain::person::NaturalPerson;
use crate::store::{PersonRepo, StoreError};

#[async_trait]
impl PersonRepo for CachedStore {
    async fn person(&self, id: PersonId) -> Result<Option<NaturalPerson>, StoreError> {
        self.inner.person(id).await
    }

    async fn person_by_identifier(&self, identifier: &PersonIdentifier) -> Result<Option<NaturalPerson>, StoreError> {
        self.inner.person_by_identifier(identifier).await
    }

    async fn insert_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_person(person, audit).await
    }

    async fn update_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.update_person(person, audit).await
    }
}
