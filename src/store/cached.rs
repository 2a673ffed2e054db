//! A read-through cache in front of the SQL store for the two lookups on every token
//! request: the client registration and the status of a means.
//!
//! R-AUTH-1 / R-LIFE-4 say a means that stops being valid stops working at once, so the
//! cache is never the authority on a *change*: every write through this store
//! ([`MeansRepo::set_status`], [`LifecycleRepo::commit_transition`],
//! [`ClientRepo::upsert_client`]) drops the entry before it returns, and changes made by other instances arrive as [`StatusEvent`]s (published by
//! the service that made them after its commit) which drop the entry here. Entries also
//! expire after a short time, so a change made behind the server's back (a SQL console)
//! is seen within that bound. If the database cannot be read, nothing is served from a
//! stale entry beyond its lifetime: the read fails closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::ids::{LegalPersonId, MandateId};
use crate::domain::legal::{LegalPerson, Mandate, MandateStatus};
use tokio::time::Instant;

use super::{
    Acceptance, AuditRepo, AuthFactor, Backend, ClientRepo, Credential, GrantRepo, IdempotentResponse, LifecycleRepo,
    MeansRecord, MeansRepo, PersonRepo, RefreshOutcome, RefreshRecord, Store, StoreError, TransitionWrite,
};
use crate::audit::{AuditEvent, AuditRecord, Checkpoint, CheckpointKind};
use crate::domain::client::Client;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::domain::operator::Operator;
use crate::domain::person::{NaturalPerson, ProofingRecord};
use crate::domain::UnixTime;
use crate::ephemeral::StatusEvent;

/// Upper bound on entries per map; beyond it the map is cleared (simple and bounded).
const MAX_ENTRIES: usize = 100_000;

struct Entry<T> {
    value: T,
    fetched: Instant,
}

/// The change markers of a store shared between instances (Redis): the service that
/// commits a status change writes the means' marker before it answers, so an instance
/// that compares the marker with the one it saw when it cached the means never serves a
/// state older than a change that was already answered, even before the pub/sub event
/// arrives (R-LIFE-4 across instances).
struct Markers {
    ephemeral: Arc<dyn crate::ephemeral::Ephemeral>,
    key: fn(MeansId) -> String,
}

/// A cached means and the change marker seen before it was read.
type MarkedMeans = (EidMeans, Option<Vec<u8>>);

/// The caching wrapper.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    ttl: Duration,
    clients: Mutex<HashMap<ClientId, Entry<Option<Client>>>>,
    means: Mutex<HashMap<MeansId, Entry<MarkedMeans>>>,
    markers: Option<Markers>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CachedStore {
    /// Wraps `inner`; entries live at most `ttl`.
    pub fn new(inner: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            clients: Mutex::new(HashMap::new()),
            means: Mutex::new(HashMap::new()),
            markers: None,
        }
    }

    /// Checks every cached means against its change marker in `ephemeral` (`key` names
    /// it) before serving it: for stores shared between instances. When the marker
    /// cannot be read, the means is read from SQL and not cached (SQL is the record, so
    /// the helpdesk keeps working while Redis is down).
    pub fn with_change_markers(
        mut self,
        ephemeral: Arc<dyn crate::ephemeral::Ephemeral>,
        key: fn(MeansId) -> String,
    ) -> Self {
        self.markers = Some(Markers { ephemeral, key });
        self
    }

    /// Applies a status event from any instance.
    pub fn apply(&self, event: &StatusEvent) {
        match event {
            StatusEvent::MeansChanged { means } => {
                lock(&self.means).remove(means);
            }
            StatusEvent::ClientChanged { client } => {
                lock(&self.clients).remove(client);
            }
            StatusEvent::GrantRevoked { .. } => {}
            StatusEvent::Resync => self.clear(),
        }
    }

    /// Drops everything (e.g. when the event channel was interrupted).
    pub fn clear(&self) {
        lock(&self.means).clear();
        lock(&self.clients).clear();
    }

    /// Listens to status events until the channel closes; a lagging receiver (missed
    /// events) clears the whole cache rather than guess.
    pub fn spawn_listener(self: &Arc<Self>, mut events: tokio::sync::broadcast::Receiver<StatusEvent>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let received = events.recv().await;
                let Some(cache) = weak.upgrade() else { return };
                match received {
                    Ok(event) => cache.apply(&event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.clear(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        cache.clear();
                        return;
                    }
                }
            }
        });
    }

    fn fresh<K: std::hash::Hash + Eq, T: Clone>(&self, map: &Mutex<HashMap<K, Entry<T>>>, key: &K) -> Option<T> {
        let map = lock(map);
        map.get(key)
            .filter(|e| e.fetched.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    fn remember<K: std::hash::Hash + Eq, T>(map: &Mutex<HashMap<K, Entry<T>>>, key: K, value: T, fetched: Instant) {
        let mut map = lock(map);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, Entry { value, fetched });
    }
}

#[async_trait]
impl ClientRepo for CachedStore {
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        if let Some(c) = self.fresh(&self.clients, id) {
            return Ok(c);
        }
        let started = Instant::now();
        let c = self.inner.client(id).await?;
        Self::remember(&self.clients, id.clone(), c.clone(), started);
        Ok(c)
    }

    async fn upsert_client(&self, client: &Client, audit: AuditEvent) -> Result<(), StoreError> {
        let r = self.inner.upsert_client(client, audit).await;
        lock(&self.clients).remove(&client.client_id);
        r
    }
}

#[async_trait]
impl MeansRepo for CachedStore {
    async fn means(&self, id: MeansId) -> Result<Option<EidMeans>, StoreError> {
        // Read before the database, so a change committed after this read shows as a
        // different marker next time.
        let marker = match &self.markers {
            None => None,
            Some(m) => match m.ephemeral.get(&(m.key)(id)).await {
                Ok(marker) => marker,
                Err(_) => return self.inner.means(id).await,
            },
        };
        if let Some((m, seen)) = self.fresh(&self.means, &id) {
            if seen == marker {
                return Ok(Some(m));
            }
        }
        // The time is taken before the read, so an entry never outlives `ttl` from the
        // moment the database was asked.
        let started = Instant::now();
        let m = self.inner.means(id).await?;
        if let Some(found) = &m {
            Self::remember(&self.means, id, (found.clone(), marker), started);
        }
        Ok(m)
    }

    async fn means_of_holder(&self, holder: PersonId) -> Result<Vec<EidMeans>, StoreError> {
        self.inner.means_of_holder(holder).await
    }

    async fn credential(&self, id: MeansId) -> Result<Credential, StoreError> {
        self.inner.credential(id).await
    }

    async fn insert_means(
        &self,
        means: &EidMeans,
        credential: &Credential,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.insert_means(means, credential, audit).await
    }

    async fn use_totp_step(&self, id: MeansId, step: i64) -> Result<bool, StoreError> {
        self.inner.use_totp_step(id, step).await
    }

    async fn count_auth_failure(&self, id: MeansId, factor: AuthFactor) -> Result<i64, StoreError> {
        self.inner.count_auth_failure(id, factor).await
    }

    async fn clear_auth_failures(&self, id: MeansId, factor: AuthFactor) -> Result<(), StoreError> {
        self.inner.clear_auth_failures(id, factor).await
    }

    async fn set_status(
        &self,
        id: MeansId,
        expected_version: i64,
        status: MeansStatus,
        audit: AuditEvent,
    ) -> Result<EidMeans, StoreError> {
        // Dropped before and after: no reader can re-insert the old state in between and
        // have it survive the write.
        lock(&self.means).remove(&id);
        let r = self.inner.set_status(id, expected_version, status, audit).await;
        lock(&self.means).remove(&id);
        r
    }
}

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
}

#[async_trait]
impl GrantRepo for CachedStore {
    async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError> {
        self.inner.insert_refresh(record).await
    }

    async fn rotate_refresh(
        &self,
        token_sha256: &str,
        client: &ClientId,
        now: UnixTime,
        replacement: &RefreshRecord,
    ) -> Result<RefreshOutcome, StoreError> {
        self.inner.rotate_refresh(token_sha256, client, now, replacement).await
    }

    async fn refresh(&self, token_sha256: &str, now: UnixTime) -> Result<Option<RefreshRecord>, StoreError> {
        self.inner.refresh(token_sha256, now).await
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<u64, StoreError> {
        self.inner.revoke_grant(grant).await
    }
}

#[async_trait]
impl AuditRepo for CachedStore {
    async fn append(&self, event: AuditEvent) -> Result<i64, StoreError> {
        self.inner.append(event).await
    }

    async fn audit_records(&self, from: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_records(from, limit).await
    }

    async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_after(after, limit).await
    }

    async fn audit_head(&self) -> Result<(i64, [u8; 32]), StoreError> {
        self.inner.audit_head().await
    }

    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.inner.insert_checkpoint(checkpoint).await
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints().await
    }

    async fn last_checkpoint(&self, kind: CheckpointKind) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.last_checkpoint(kind).await
    }

    async fn chain_tip(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.chain_tip().await
    }

    async fn checkpoint_covering(&self, seq: i64) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.checkpoint_covering(seq).await
    }

    async fn checkpoints_in(&self, after: i64, up_to: i64) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints_in(after, up_to).await
    }

    async fn audit_cursor(&self, name: &str) -> Result<i64, StoreError> {
        self.inner.audit_cursor(name).await
    }

    async fn set_audit_cursor(&self, name: &str, value: i64) -> Result<(), StoreError> {
        self.inner.set_audit_cursor(name, value).await
    }

    async fn prune_audit(&self, up_to: i64) -> Result<u64, StoreError> {
        self.inner.prune_audit(up_to).await
    }
}

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

#[async_trait]
impl super::ProviderStateRepo for CachedStore {
    async fn provider_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.inner.provider_state(name).await
    }

    async fn set_provider_state(&self, name: &str, value: &str, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.set_provider_state(name, value, audit).await
    }

    async fn means_not_final(&self, limit: i64) -> Result<Vec<EidMeans>, StoreError> {
        self.inner.means_not_final(limit).await
    }
}

#[async_trait]
impl super::NoticeRepo for CachedStore {
    async fn insert_notice(&self, notice: &super::Notice, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_notice(notice, audit).await
    }

    async fn mark_notice_sent(&self, id: &str, at: UnixTime, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.mark_notice_sent(id, at, audit).await
    }

    async fn pending_notices(&self, before: UnixTime, limit: i64) -> Result<Vec<super::Notice>, StoreError> {
        self.inner.pending_notices(before, limit).await
    }
}

#[async_trait]
impl super::IncidentRepo for CachedStore {
    async fn insert_incident(&self, incident: &super::IncidentRecord, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_incident(incident, audit).await
    }

    async fn incidents(&self, limit: i64) -> Result<Vec<super::IncidentRecord>, StoreError> {
        self.inner.incidents(limit).await
    }
}

#[async_trait]
impl super::LegalRepo for CachedStore {
    async fn consent(
        &self,
        person: PersonId,
        client: &crate::domain::ids::ClientId,
    ) -> Result<Option<super::Consent>, StoreError> {
        self.inner.consent(person, client).await
    }

    async fn consents_of(&self, person: PersonId) -> Result<Vec<super::Consent>, StoreError> {
        self.inner.consents_of(person).await
    }

    async fn grant_consent(&self, consent: &super::Consent, audit: AuditEvent) -> Result<(), StoreError> {
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

#[async_trait]
impl super::SmartcardRepo for CachedStore {
    async fn insert_card_certificate(
        &self,
        cert: &super::CardCertificate,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.insert_card_certificate(cert, audit).await
    }

    async fn card_certificate(&self, certificate_sha256: &str) -> Result<Option<super::CardCertificate>, StoreError> {
        self.inner.card_certificate(certificate_sha256).await
    }

    async fn card_certificates_of(&self, means: MeansId) -> Result<Vec<super::CardCertificate>, StoreError> {
        self.inner.card_certificates_of(means).await
    }

    async fn withdrawn_card_certificates(
        &self,
        issuer_sha256: &str,
        now: UnixTime,
    ) -> Result<Vec<super::WithdrawnCertificate>, StoreError> {
        self.inner.withdrawn_card_certificates(issuer_sha256, now).await
    }

    async fn next_crl_number(&self, issuer_sha256: &str) -> Result<i64, StoreError> {
        self.inner.next_crl_number(issuer_sha256).await
    }
}

#[async_trait]
impl super::OperatorTokenRepo for CachedStore {
    async fn insert_operator_token(
        &self,
        token_sha256: &str,
        grant: GrantId,
        grant_data: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.inner
            .insert_operator_token(token_sha256, grant, grant_data, expires_at)
            .await
    }

    async fn operator_token(&self, token_sha256: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        self.inner.operator_token(token_sha256, now).await
    }

    async fn revoke_operator_tokens(&self, grant: GrantId) -> Result<u64, StoreError> {
        self.inner.revoke_operator_tokens(grant).await
    }
}

#[async_trait]
impl super::FidoRepo for CachedStore {
    async fn fido_by_credential_id(
        &self,
        credential_id: &str,
    ) -> Result<Option<super::FidoCredentialRecord>, StoreError> {
        self.inner.fido_by_credential_id(credential_id).await
    }

    async fn fido_of_means(&self, means: MeansId) -> Result<Option<super::FidoCredentialRecord>, StoreError> {
        self.inner.fido_of_means(means).await
    }

    async fn save_fido_credential(
        &self,
        record: &super::FidoCredentialRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.save_fido_credential(record, audit).await
    }

    async fn update_fido_state(
        &self,
        means: MeansId,
        previous: &str,
        next: &str,
        used_at: crate::domain::UnixTime,
    ) -> Result<bool, StoreError> {
        self.inner.update_fido_state(means, previous, next, used_at).await
    }
}

#[async_trait]
impl super::SodRepo for CachedStore {
    async fn insert_approval(&self, approval: &super::Approval, audit: AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_approval(approval, audit).await
    }

    async fn approval(&self, id: &str) -> Result<Option<super::Approval>, StoreError> {
        self.inner.approval(id).await
    }

    async fn open_approvals(&self, limit: i64) -> Result<Vec<super::Approval>, StoreError> {
        self.inner.open_approvals(limit).await
    }

    async fn decide_approval(
        &self,
        id: &str,
        state: &str,
        by: PersonId,
        at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.decide_approval(id, state, by, at, audit).await
    }

    async fn password_history(&self, means: MeansId, limit: i64) -> Result<Vec<(String, UnixTime)>, StoreError> {
        self.inner.password_history(means, limit).await
    }

    async fn record_password(&self, means: MeansId, phc: &str, at: UnixTime) -> Result<(), StoreError> {
        self.inner.record_password(means, phc, at).await
    }
}

#[async_trait]
impl Store for CachedStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
