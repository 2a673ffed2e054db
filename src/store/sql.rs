//! [`SqlStore`]: every store trait over `sqlx::AnyPool`, one SQL text for SQLite and
//! PostgreSQL (R-AUTH-3, R-LOG-1, R-LOG-2, R-LIFE-4).
//!
//! Owns: the store handle, the audited transaction (`AuditedTx`, which appends to the
//! audit chain) and the SQL of clients, persons, means and refresh grants (`const`s
//! below). Connecting, the durability checks, migrations and driver-error mapping are in
//! `connect.rs`; the lifecycle repository (transitions, counters, operators, idempotency)
//! in `lifecycle.rs`; the audit repository (reading the chain, checkpoints) in `audit.rs`.
//!
//! **Audited writes.** Each one is a single transaction whose *first* statement locks the
//! audit chain head (`UPDATE audit_head SET seq = seq ... RETURNING`). On SQLite that
//! statement takes the database write lock at once, so a transaction never has to upgrade
//! a read lock (which fails with `SQLITE_BUSY` instead of waiting); on PostgreSQL it takes
//! the head's row lock. Writers therefore queue on the head, and the change, its audit
//! record (`seq + 1`, `hash = chain_hash(prev, …)`) and the new head commit together or
//! not at all: the chain is gap-free under concurrency and no change goes unrecorded.
//!
//! Must not: hold tokens or secrets in clear (tokens are SHA-256 fingerprints, passwords
//! argon2 PHC strings made by the caller), or put a database password in an error.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

use super::connect;
use super::rows::{self, means_columns, person_columns, refresh_columns};
use super::{
    AuthFactor, Backend, ClientRepo, Credential, GrantRepo, LifecycleRepo, MeansRepo, PersonRepo, RefreshOutcome,
    RefreshRecord, Store, StoreError, TransitionWrite,
};
use crate::audit::{chain_hash, AuditEvent};
use crate::domain::client::Client;
use crate::domain::ids::{ClientId, GrantId, MeansId, PersonId, PersonIdentifier};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::domain::person::NaturalPerson;
use crate::domain::UnixTime;

// ---------------------------------------------------------------------------------------
// Shared SQL: `$n` placeholders work on both engines (SQLite binds `$n` by number).

/// Locks the chain head and reads it: the first statement of every audited transaction.
const LOCK_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash";
/// Appends one audit record.
const INSERT_AUDIT: &str = "INSERT INTO audit_log (seq, time, event_type, actor, subject, data, prev_hash, hash) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// Moves the head to the record just appended.
const ADVANCE_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1";

const SELECT_CLIENT: &str = "SELECT config FROM clients WHERE client_id = $1";
const UPSERT_CLIENT: &str = "INSERT INTO clients (client_id, config, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                             ON CONFLICT (client_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at";

const SELECT_PERSON: &str = concat!("SELECT ", person_columns!(), " FROM persons WHERE id = $1");
const SELECT_PERSON_BY_IDENTIFIER: &str = concat!(
    "SELECT ",
    person_columns!(),
    " FROM persons WHERE identifier_country = $1 AND identifier_code = $2"
);
const INSERT_PERSON: &str = "INSERT INTO persons (id, identifier_country, identifier_code, given_name, family_name, \
                             birthdate, proofing_loa, attributes, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const UPDATE_PERSON: &str = "UPDATE persons SET given_name = $2, family_name = $3, birthdate = $4, \
                             proofing_loa = $5, attributes = $6 WHERE id = $1";

const SELECT_MEANS: &str = concat!("SELECT ", means_columns!(), " FROM means WHERE id = $1");
/// Newest first; `created_at` has one-second resolution, so ties fall back to validity.
const SELECT_MEANS_OF_HOLDER: &str = concat!(
    "SELECT ",
    means_columns!(),
    " FROM means WHERE holder_id = $1 ORDER BY created_at DESC, valid_from DESC, id"
);
const SELECT_CREDENTIAL: &str = "SELECT credential FROM means WHERE id = $1";
/// A TOTP step is used once: only a later step than the last one moves the mark.
const USE_TOTP_STEP: &str = "UPDATE means SET totp_last_step = $1 \
                             WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)";
const COUNT_PASSWORD_FAILURE: &str =
    "UPDATE means SET password_failures = password_failures + 1 WHERE id = $1 RETURNING password_failures";
const COUNT_OTP_FAILURE: &str = "UPDATE means SET otp_failures = otp_failures + 1 WHERE id = $1 RETURNING otp_failures";
const CLEAR_PASSWORD_FAILURES: &str = "UPDATE means SET password_failures = 0 WHERE id = $1";
const CLEAR_OTP_FAILURES: &str = "UPDATE means SET otp_failures = 0 WHERE id = $1";
const INSERT_MEANS: &str = "INSERT INTO means (id, holder_id, kind, loa, status, valid_from, valid_until, version, \
                            credential, created_at, updated_at) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)";
const SET_REVOCATION_SECRET: &str = "UPDATE means SET revocation_secret = $1 WHERE id = $2";
const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (token_sha256, grant_id, client_id, person_id, means_id, \
                              grant_data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// Single-use consumption: only one caller can flip `used_at` from NULL.
const CONSUME_REFRESH: &str = concat!(
    "UPDATE refresh_tokens SET used_at = $1 \
     WHERE token_sha256 = $2 AND client_id = $3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
     RETURNING ",
    refresh_columns!()
);
/// After a failed consumption: was it this client's token, and already used?
const SELECT_REFRESH_USE: &str =
    "SELECT grant_id, used_at FROM refresh_tokens WHERE token_sha256 = $1 AND client_id = $2";
const SELECT_LIVE_REFRESH: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_tokens WHERE token_sha256 = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2"
);
/// Revokes the tokens of a grant that are neither used nor revoked yet.
const REVOKE_GRANT: &str = "UPDATE refresh_tokens SET revoked_at = $1 \
                            WHERE grant_id = $2 AND revoked_at IS NULL AND used_at IS NULL";

const PING: &str = "SELECT 1";

// ---------------------------------------------------------------------------------------

/// The durable store over SQLite or PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    backend: Backend,
}

/// Shows only the engine: the pool's options could carry the URL.
impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens a pool on `url` (`sqlite://path`, `sqlite::memory:` or `postgres://…`), applies
    /// and checks the durability settings, and runs the pending migrations.
    ///
    /// SQLite: the file and its parent directory are created if missing, the journal is
    /// switched to WAL once, and every connection runs `synchronous=FULL`,
    /// `foreign_keys=ON`, `busy_timeout=5000`. PostgreSQL: every connection runs
    /// `synchronous_commit=on`. Errors never contain the URL's password.
    pub async fn connect(url: &str, max_connections: u32) -> Result<SqlStore, StoreError> {
        let (pool, backend) = connect::connect(url, max_connections).await?;
        Ok(SqlStore { pool, backend })
    }

    /// Closes the pool: waits for checked-out connections to return, then closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins an audited transaction: locks the chain head first (see the module doc).
    pub(super) async fn begin_audited(&self) -> Result<AuditedTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query(LOCK_AUDIT_HEAD)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
        let seq: i64 = head.try_get("seq")?;
        let prev_hash = rows::hash32(head.try_get("hash")?)?;
        // Taken after the lock, so record times never go backwards along the chain.
        Ok(AuditedTx {
            tx,
            seq,
            prev_hash,
            now: now(),
        })
    }
}

/// An open transaction holding the audit chain head.
pub(super) struct AuditedTx {
    pub(super) tx: Transaction<'static, Any>,
    /// `seq` of the head when locked.
    seq: i64,
    /// `hash` of the head when locked.
    prev_hash: [u8; 32],
    /// The time of this change and of its audit record.
    pub(super) now: UnixTime,
}

impl AuditedTx {
    /// Appends `event` as the next record, advances the head and commits. Dropping an
    /// `AuditedTx` without calling this rolls everything back.
    pub(super) async fn commit(mut self, event: &AuditEvent) -> Result<i64, StoreError> {
        let seq = self.append(event).await?;
        self.tx.commit().await?;
        Ok(seq)
    }

    /// Appends `event` as the next record and advances the head, without committing: for
    /// a change that writes more than one record (each still one link of the chain).
    pub(super) async fn append(&mut self, event: &AuditEvent) -> Result<i64, StoreError> {
        let seq = self.seq + 1;
        let hash = chain_hash(&self.prev_hash, seq, self.now, event);
        sqlx::query(INSERT_AUDIT)
            .bind(seq)
            .bind(self.now)
            .bind(event.event_type.as_str())
            .bind(event.actor.as_str())
            .bind(event.subject.as_str())
            .bind(rows::json_text(&event.data)?)
            .bind(self.prev_hash.to_vec())
            .bind(hash.to_vec())
            .execute(&mut *self.tx)
            .await?;
        let advanced = sqlx::query(ADVANCE_AUDIT_HEAD)
            .bind(seq)
            .bind(hash.to_vec())
            .execute(&mut *self.tx)
            .await?;
        if advanced.rows_affected() != 1 {
            return Err(StoreError::Corrupt("audit_head row is missing".into()));
        }
        self.seq = seq;
        self.prev_hash = hash;
        Ok(seq)
    }
}

pub(super) fn now() -> UnixTime {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl SqlStore {
    /// A means row with its credential and, when given, the argon2id of its revocation
    /// secret, in one audited transaction.
    pub(super) async fn insert_means_row(
        &self,
        means: &EidMeans,
        credential: &Credential,
        revocation_secret: Option<&str>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_MEANS)
            .bind(means.id.to_string())
            .bind(means.holder.to_string())
            .bind(means.kind.as_str())
            .bind(means.loa.short())
            .bind(means.status.as_str())
            .bind(means.valid_from)
            .bind(means.valid_until)
            .bind(means.version)
            .bind(rows::credential_text(credential))
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        if let Some(phc) = revocation_secret {
            sqlx::query(SET_REVOCATION_SECRET)
                .bind(phc)
                .bind(means.id.to_string())
                .execute(&mut *tx.tx)
                .await?;
        }
        tx.commit(&audit).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Repositories

#[async_trait]
impl ClientRepo for SqlStore {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let row = sqlx::query(SELECT_CLIENT)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(rows::client).transpose()?.map(Arc::new))
    }

    async fn upsert_client(&self, client: &Client, audit: AuditEvent) -> Result<(), StoreError> {
        let config = rows::json_text(client)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(UPSERT_CLIENT)
            .bind(client.client_id.as_str())
            .bind(config)
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }
}

#[async_trait]
impl PersonRepo for SqlStore {
    async fn person(&self, id: PersonId) -> Result<Option<NaturalPerson>, StoreError> {
        let row = sqlx::query(SELECT_PERSON)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::person).transpose()
    }

    async fn person_by_identifier(&self, identifier: &PersonIdentifier) -> Result<Option<NaturalPerson>, StoreError> {
        let row = sqlx::query(SELECT_PERSON_BY_IDENTIFIER)
            .bind(identifier.country())
            .bind(identifier.code())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::person).transpose()
    }

    async fn insert_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError> {
        let attributes = rows::json_text(&person.attributes)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_PERSON)
            .bind(person.id.to_string())
            .bind(person.identifier.country())
            .bind(person.identifier.code())
            .bind(person.given_name.as_str())
            .bind(person.family_name.as_str())
            .bind(person.birthdate.as_str())
            .bind(person.proofing_loa.short())
            .bind(attributes)
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn update_person(&self, person: &NaturalPerson, audit: AuditEvent) -> Result<(), StoreError> {
        let attributes = rows::json_text(&person.attributes)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(UPDATE_PERSON)
            .bind(person.id.to_string())
            .bind(person.given_name.as_str())
            .bind(person.family_name.as_str())
            .bind(person.birthdate.as_str())
            .bind(person.proofing_loa.short())
            .bind(attributes)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }
}

#[async_trait]
impl MeansRepo for SqlStore {
    async fn means(&self, id: MeansId) -> Result<Option<EidMeans>, StoreError> {
        let row = sqlx::query(SELECT_MEANS)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::means).transpose()
    }

    async fn means_of_holder(&self, holder: PersonId) -> Result<Vec<EidMeans>, StoreError> {
        let found = sqlx::query(SELECT_MEANS_OF_HOLDER)
            .bind(holder.to_string())
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::means).collect()
    }

    async fn credential(&self, id: MeansId) -> Result<Credential, StoreError> {
        let row = sqlx::query(SELECT_CREDENTIAL)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        rows::credential(&row)
    }

    async fn insert_means(
        &self,
        means: &EidMeans,
        credential: &Credential,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.insert_means_row(means, credential, None, audit).await
    }

    async fn set_status(
        &self,
        id: MeansId,
        expected_version: i64,
        status: MeansStatus,
        audit: AuditEvent,
    ) -> Result<EidMeans, StoreError> {
        self.commit_transition(&TransitionWrite::status(id, expected_version, status), audit)
            .await
    }

    async fn use_totp_step(&self, id: MeansId, step: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(USE_TOTP_STEP)
            .bind(step)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_auth_failure(&self, id: MeansId, factor: AuthFactor) -> Result<i64, StoreError> {
        let sql = match factor {
            AuthFactor::Password => COUNT_PASSWORD_FAILURE,
            AuthFactor::Otp => COUNT_OTP_FAILURE,
        };
        let row = sqlx::query(sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get(0)?)
    }

    async fn clear_auth_failures(&self, id: MeansId, factor: AuthFactor) -> Result<(), StoreError> {
        let sql = match factor {
            AuthFactor::Password => CLEAR_PASSWORD_FAILURES,
            AuthFactor::Otp => CLEAR_OTP_FAILURES,
        };
        sqlx::query(sql).bind(id.to_string()).execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl GrantRepo for SqlStore {
    async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError> {
        insert_refresh(&mut *self.pool.acquire().await?, record).await
    }

    /// The replacement is bound to the consumed token's grant, client, person and means
    /// whatever the caller put in those fields, so rotation can never move a token to
    /// another grant. It keeps its own fingerprint, times and `grant_data` (a JSON `null`
    /// there means "inherit the consumed token's"). `Rotated` carries the consumed record.
    async fn rotate_refresh(
        &self,
        token_sha256: &str,
        client: &ClientId,
        now: UnixTime,
        replacement: &RefreshRecord,
    ) -> Result<RefreshOutcome, StoreError> {
        // The first statement writes, so SQLite takes its write lock here (no upgrade).
        let mut tx = self.pool.begin().await?;
        let consumed = sqlx::query(CONSUME_REFRESH)
            .bind(now)
            .bind(token_sha256)
            .bind(client.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = consumed {
            let old = rows::refresh(&row)?;
            let new = RefreshRecord {
                token_sha256: replacement.token_sha256.clone(),
                grant_id: old.grant_id,
                client_id: old.client_id.clone(),
                person_id: old.person_id,
                means_id: old.means_id,
                grant_data: if replacement.grant_data.is_null() {
                    old.grant_data.clone()
                } else {
                    replacement.grant_data.clone()
                },
                created_at: replacement.created_at,
                expires_at: replacement.expires_at,
            };
            insert_refresh(&mut tx, &new).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Rotated(old));
        }

        let known = sqlx::query(SELECT_REFRESH_USE)
            .bind(token_sha256)
            .bind(client.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(known) = known else {
            return Ok(RefreshOutcome::Invalid);
        };
        let used_at: Option<i64> = known.try_get("used_at")?;
        if used_at.is_none() {
            // Expired or revoked, never used: nothing to do.
            return Ok(RefreshOutcome::Invalid);
        }
        // Reuse of a consumed token: someone holds a copy. Revoke the whole grant.
        let grant_text: String = known.try_get("grant_id")?;
        let grant = grant_text
            .parse::<GrantId>()
            .map_err(|e| StoreError::Corrupt(format!("refresh_tokens.grant_id: {e}")))?;
        sqlx::query(REVOKE_GRANT)
            .bind(now)
            .bind(grant_text)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Reused(grant))
    }

    async fn refresh(&self, token_sha256: &str, now: UnixTime) -> Result<Option<RefreshRecord>, StoreError> {
        let row = sqlx::query(SELECT_LIVE_REFRESH)
            .bind(token_sha256)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::refresh).transpose()
    }

    /// Counts as live (and marks revoked) the tokens that are neither used nor revoked.
    /// Expiry is not looked at: this method has no caller clock, and an expired token
    /// is refused by every read anyway.
    async fn revoke_grant(&self, grant: GrantId) -> Result<u64, StoreError> {
        let revoked = sqlx::query(REVOKE_GRANT)
            .bind(now())
            .bind(grant.to_string())
            .execute(&self.pool)
            .await?;
        Ok(revoked.rows_affected())
    }
}

async fn insert_refresh(conn: &mut AnyConnection, record: &RefreshRecord) -> Result<(), StoreError> {
    sqlx::query(INSERT_REFRESH)
        .bind(record.token_sha256.as_str())
        .bind(record.grant_id.to_string())
        .bind(record.client_id.as_str())
        .bind(record.person_id.to_string())
        .bind(record.means_id.to_string())
        .bind(rows::json_text(&record.grant_data)?)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(PING).execute(&self.pool).await?;
        Ok(())
    }
}
