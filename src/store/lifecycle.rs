//! [`LifecycleRepo`] for [`SqlStore`]: lifecycle transitions of a means, attempt counters,
//! operators, proofing records, acceptances, idempotent answers and a subject's audit
//! history (R-ISS-2, R-ISS-3, R-LIFE-1..4, R-REG-1, R-REG-3, R-REG-4, R-SEC-3, R-LOG-1,
//! R-LOG-2).
//!
//! Every write here is an audited transaction (`SqlStore::begin_audited`, see `sql.rs`):
//! the chain head is locked first, then the change, its audit record and the new head
//! commit together or not at all. A transition is one optimistic
//! `UPDATE … WHERE id = $id AND version = $expected`; everything that goes with it (the
//! approving officer, the activation code, the credential, the acceptance, the
//! idempotent answer, the revocation of refresh tokens) is written in the same
//! transaction, so a crash or a conflict leaves either all of it or none.
//!
//! Must not: see a secret in clear (activation codes and revocation secrets arrive as
//! argon2id PHC strings), or decide whether a transition is allowed: that is
//! `domain::means::state`'s job; this file only makes the decided change durable.

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::rows::{self, acceptance_columns, audit_columns, idempotent_columns, means_columns, means_record_columns};
use super::sql::SqlStore;
use super::{Acceptance, IdempotentResponse, LifecycleRepo, MeansRecord, StoreError, TransitionWrite};
use crate::audit::{AuditEvent, AuditRecord};
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::means::{EidMeans, MeansStatus};
use crate::domain::operator::Operator;
use crate::domain::person::ProofingRecord;
use crate::domain::UnixTime;

// ---------------------------------------------------------------------------------------
// SQL (`$n` placeholders work on both engines)

const SELECT_MEANS_RECORD: &str = concat!("SELECT ", means_record_columns!(), " FROM means WHERE id = $1");
const SELECT_MEANS_EXISTS: &str = "SELECT id FROM means WHERE id = $1";
const INSERT_APPLICATION: &str = "INSERT INTO means (id, holder_id, kind, loa, status, valid_from, valid_until, \
                                  version, credential, registered_by, created_at, updated_at, renews) \
                                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $10, $11)";

/// The optimistic transition: 0 rows means a stale version (or no such means). A new
/// validity period, when given, is part of it because it is part of [`EidMeans`].
const UPDATE_TRANSITION: &str = concat!(
    "UPDATE means SET status = $1, version = version + 1, updated_at = $2, \
     valid_from = COALESCE($3, valid_from), valid_until = COALESCE($4, valid_until) \
     WHERE id = $5 AND version = $6 RETURNING ",
    means_columns!()
);
/// Failure counters of the login factors (R-AUTH-4), reset when a means becomes active.
const CLEAR_AUTH_FAILURES: &str = "UPDATE means SET password_failures = 0, otp_failures = 0 WHERE id = $1";
const SET_APPROVED_BY: &str = "UPDATE means SET approved_by = $1 WHERE id = $2";
/// A new code starts with a fresh attempt budget (R-ISS-3: limited attempts per code).
const SET_ACTIVATION_CODE: &str = "UPDATE means SET activation_code = $1, activation_expires_at = $2, \
                                   activation_attempts = 0 WHERE id = $3";
/// A new secret starts with a fresh failure budget: the failures counted were guesses
/// at the old one.
const SET_REVOCATION_SECRET: &str = "UPDATE means SET revocation_secret = $1, revocation_failures = 0 WHERE id = $2";
/// The activation code is spent once the credential is set up.
const SET_CREDENTIAL: &str = "UPDATE means SET credential = $1, activation_code = NULL, activation_expires_at = NULL \
                              WHERE id = $2";
/// R-LIFE-4: a means that is no longer active loses its live refresh tokens. Expiry is
/// not checked: an expired token cannot be used anyway, and revoking it too keeps the
/// rule simple ("nothing of this means refreshes again").
const REVOKE_MEANS_REFRESH: &str = "UPDATE refresh_tokens SET revoked_at = $1 \
                                    WHERE means_id = $2 AND revoked_at IS NULL AND used_at IS NULL";

/// Counters: one statement reads and increments, so concurrent failures never lose a count.
const COUNT_ACTIVATION_FAILURE: &str =
    "UPDATE means SET activation_attempts = activation_attempts + 1 WHERE id = $1 RETURNING activation_attempts";
const COUNT_REVOCATION_FAILURE: &str =
    "UPDATE means SET revocation_failures = revocation_failures + 1 WHERE id = $1 RETURNING revocation_failures";

const INSERT_ACCEPTANCE: &str = "INSERT INTO acceptances (person_id, means_id, terms_version, \
                                 security_advice_version, accepted_at) VALUES ($1, $2, $3, $4, $5)";
const SELECT_ACCEPTANCES: &str = concat!(
    "SELECT ",
    acceptance_columns!(),
    " FROM acceptances WHERE person_id = $1 ORDER BY id"
);

const INSERT_IDEMPOTENT: &str = "INSERT INTO idempotency (operator_id, idem_key, request_sha256, status, body, \
                                 created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const SELECT_IDEMPOTENT: &str = concat!(
    "SELECT ",
    idempotent_columns!(),
    " FROM idempotency WHERE operator_id = $1 AND idem_key = $2"
);

const SELECT_OPERATOR: &str = "SELECT person_id, roles FROM operators WHERE person_id = $1";
const UPSERT_OPERATOR: &str =
    "INSERT INTO operators (person_id, roles, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                               ON CONFLICT (person_id) DO UPDATE SET roles = excluded.roles, \
                               updated_at = excluded.updated_at";
const DELETE_OPERATOR: &str = "DELETE FROM operators WHERE person_id = $1";

const INSERT_PROOFING: &str = "INSERT INTO proofing_records (person_id, record, created_at) VALUES ($1, $2, $3)";
const SELECT_PROOFING: &str = "SELECT record FROM proofing_records WHERE person_id = $1 ORDER BY id";

/// Served by the index `audit_log_subject_seq`.
const SELECT_AUDIT_BY_SUBJECT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE subject = $1 ORDER BY seq LIMIT $2"
);

/// The expiry sweep; each arm is served by its partial index (`means_issued_activation_expiry`,
/// `means_active_validity_expiry`, `means_suspended_validity_expiry`): a suspended means
/// expires too when its validity ends, it does not outlive it by being suspended. No order: the sweep moves every row it gets out of
/// the set, so it simply calls again until nothing is left.
const SELECT_DUE_FOR_EXPIRY: &str = concat!(
    "SELECT ",
    means_columns!(),
    " FROM means WHERE (status = 'issued' AND activation_expires_at <= $1) \
     OR (status = 'active' AND valid_until <= $1) OR (status = 'suspended' AND valid_until <= $1) LIMIT $2"
);

// ---------------------------------------------------------------------------------------

#[async_trait]
impl LifecycleRepo for SqlStore {
    async fn means_record(&self, id: MeansId) -> Result<Option<MeansRecord>, StoreError> {
        let row = sqlx::query(SELECT_MEANS_RECORD)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::means_record).transpose()
    }

    /// The row is written in status `applied` with no credential, whatever `means.status`
    /// says; an unknown holder or officer is `Conflict`.
    async fn insert_application(
        &self,
        means: &EidMeans,
        officer: PersonId,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.insert_applied(means, officer, None, audit).await
    }

    async fn insert_imported_means(
        &self,
        means: &EidMeans,
        credential: &super::Credential,
        revocation_secret: Option<&str>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.insert_means_row(means, credential, revocation_secret, audit).await
    }

    async fn insert_renewal(
        &self,
        means: &EidMeans,
        officer: PersonId,
        renews: MeansId,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        self.insert_applied(means, officer, Some(renews), audit).await
    }

    /// The status and validity are set by the versioned `UPDATE`; the other `Some` fields
    /// follow in the same transaction, the credential after the activation code (so a
    /// credential always clears the code). Any failure (a stale version, a duplicate
    /// idempotency key, a foreign key) drops the transaction: nothing is written and no
    /// audit record appended.
    async fn commit_transition(&self, write: &TransitionWrite, audit: AuditEvent) -> Result<EidMeans, StoreError> {
        let id = write.id.to_string();
        let (valid_from, valid_until) = write.validity.unzip();
        let mut tx = self.begin_audited().await?;
        let updated = sqlx::query(UPDATE_TRANSITION)
            .bind(write.to.as_str())
            .bind(tx.now)
            .bind(valid_from)
            .bind(valid_until)
            .bind(id.as_str())
            .bind(write.expected_version)
            .fetch_optional(&mut *tx.tx)
            .await?;
        let Some(updated) = updated else {
            // Nothing changed; dropping `tx` rolls back (no audit record).
            let exists = sqlx::query(SELECT_MEANS_EXISTS)
                .bind(id.as_str())
                .fetch_optional(&mut *tx.tx)
                .await?;
            return Err(if exists.is_some() {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            });
        };
        let means = rows::means(&updated)?;

        if let Some(approver) = write.approved_by {
            sqlx::query(SET_APPROVED_BY)
                .bind(approver.to_string())
                .bind(id.as_str())
                .execute(&mut *tx.tx)
                .await?;
        }
        if let Some((code, expires_at)) = &write.activation_code {
            sqlx::query(SET_ACTIVATION_CODE)
                .bind(code.as_str())
                .bind(*expires_at)
                .bind(id.as_str())
                .execute(&mut *tx.tx)
                .await?;
        }
        if let Some(secret) = &write.revocation_secret {
            sqlx::query(SET_REVOCATION_SECRET)
                .bind(secret.as_str())
                .bind(id.as_str())
                .execute(&mut *tx.tx)
                .await?;
        }
        if let Some(credential) = &write.credential {
            sqlx::query(SET_CREDENTIAL)
                .bind(rows::credential_text(credential))
                .bind(id.as_str())
                .execute(&mut *tx.tx)
                .await?;
        }
        if let Some(acceptance) = &write.acceptance {
            insert_acceptance(&mut tx.tx, acceptance).await?;
        }
        if let Some(answer) = &write.idempotent {
            insert_idempotent(&mut tx.tx, answer).await?;
        }
        if write.to == MeansStatus::Active {
            // Activation or reactivation (after identity re-verification, R-LIFE-2) lifts a
            // brute-force lock: the counters start again.
            sqlx::query(CLEAR_AUTH_FAILURES)
                .bind(id.as_str())
                .execute(&mut *tx.tx)
                .await?;
        }
        if write.to != MeansStatus::Active {
            sqlx::query(REVOKE_MEANS_REFRESH)
                .bind(tx.now)
                .bind(id.as_str())
                .execute(&mut *tx.tx)
                .await?;
        }
        if let Some(old) = &write.retire {
            // Renewal: the old means goes in the same transaction, or nothing does.
            let retired = sqlx::query(UPDATE_TRANSITION)
                .bind(old.to.as_str())
                .bind(tx.now)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(old.id.to_string())
                .bind(old.expected_version)
                .fetch_optional(&mut *tx.tx)
                .await?;
            if retired.is_none() {
                return Err(StoreError::Conflict);
            }
            sqlx::query(REVOKE_MEANS_REFRESH)
                .bind(tx.now)
                .bind(old.id.to_string())
                .execute(&mut *tx.tx)
                .await?;
            tx.append(&old.audit).await?;
        }
        tx.commit(&audit).await?;
        Ok(means)
    }

    /// Does not bump the version: a counted failure is not a transition, and must not
    /// make a concurrent suspension or revocation conflict.
    async fn count_activation_failure(&self, id: MeansId, audit: AuditEvent) -> Result<i64, StoreError> {
        self.count(COUNT_ACTIVATION_FAILURE, "activation_attempts", id, audit)
            .await
    }

    /// As [`LifecycleRepo::count_activation_failure`], for wrong revocation secrets.
    async fn count_revocation_failure(&self, id: MeansId, audit: AuditEvent) -> Result<i64, StoreError> {
        self.count(COUNT_REVOCATION_FAILURE, "revocation_failures", id, audit)
            .await
    }

    async fn idempotent_response(
        &self,
        operator: PersonId,
        key: &str,
    ) -> Result<Option<IdempotentResponse>, StoreError> {
        let row = sqlx::query(SELECT_IDEMPOTENT)
            .bind(operator.to_string())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::idempotent_response).transpose()
    }

    async fn store_idempotent_response(&self, response: &IdempotentResponse) -> Result<(), StoreError> {
        insert_idempotent(&mut *self.pool.acquire().await?, response).await
    }

    async fn operator(&self, person: PersonId) -> Result<Option<Operator>, StoreError> {
        let row = sqlx::query(SELECT_OPERATOR)
            .bind(person.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::operator).transpose()
    }

    /// Roles are stored sorted and without duplicates (`Operator::roles_text` of the
    /// normalised list). Removing (empty roles) an operator that does not exist is
    /// `NotFound` and records nothing; an unknown person is `Conflict`.
    async fn set_operator(&self, operator: &Operator, audit: AuditEvent) -> Result<(), StoreError> {
        let mut roles = operator.roles.clone();
        roles.sort();
        roles.dedup();
        let mut tx = self.begin_audited().await?;
        if roles.is_empty() {
            let deleted = sqlx::query(DELETE_OPERATOR)
                .bind(operator.person.to_string())
                .execute(&mut *tx.tx)
                .await?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        } else {
            let normalised = Operator {
                person: operator.person,
                roles,
            };
            sqlx::query(UPSERT_OPERATOR)
                .bind(operator.person.to_string())
                .bind(normalised.roles_text())
                .bind(tx.now)
                .execute(&mut *tx.tx)
                .await?;
        }
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn insert_proofing(
        &self,
        person: PersonId,
        record: &ProofingRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let text = rows::json_text(record)?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_PROOFING)
            .bind(person.to_string())
            .bind(text)
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn proofing_records(&self, person: PersonId) -> Result<Vec<ProofingRecord>, StoreError> {
        let found = sqlx::query(SELECT_PROOFING)
            .bind(person.to_string())
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::proofing_record).collect()
    }

    async fn acceptances(&self, person: PersonId) -> Result<Vec<Acceptance>, StoreError> {
        let found = sqlx::query(SELECT_ACCEPTANCES)
            .bind(person.to_string())
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::acceptance).collect()
    }

    async fn audit_by_subject(&self, subject: &str, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let found = sqlx::query(SELECT_AUDIT_BY_SUBJECT)
            .bind(subject)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::audit_record).collect()
    }

    /// In no particular order (see `SELECT_DUE_FOR_EXPIRY`).
    async fn due_for_expiry(&self, now: UnixTime, limit: i64) -> Result<Vec<EidMeans>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let found = sqlx::query(SELECT_DUE_FOR_EXPIRY)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::means).collect()
    }
}

impl SqlStore {
    /// Runs one counter statement (`… RETURNING <column>`) in an audited transaction.
    async fn count(&self, statement: &str, column: &str, id: MeansId, audit: AuditEvent) -> Result<i64, StoreError> {
        let mut tx = self.begin_audited().await?;
        let row = sqlx::query(statement)
            .bind(id.to_string())
            .fetch_optional(&mut *tx.tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let count: i64 = row.try_get(column)?;
        tx.commit(&audit).await?;
        Ok(count)
    }
}

async fn insert_acceptance(conn: &mut AnyConnection, acceptance: &Acceptance) -> Result<(), StoreError> {
    sqlx::query(INSERT_ACCEPTANCE)
        .bind(acceptance.person.to_string())
        .bind(acceptance.means.to_string())
        .bind(acceptance.terms_version.as_str())
        .bind(acceptance.security_advice_version.as_str())
        .bind(acceptance.accepted_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// A duplicate (operator, key) is a primary-key violation, so `Conflict`.
async fn insert_idempotent(conn: &mut AnyConnection, answer: &IdempotentResponse) -> Result<(), StoreError> {
    sqlx::query(INSERT_IDEMPOTENT)
        .bind(answer.operator.to_string())
        .bind(answer.key.as_str())
        .bind(answer.request_sha256.as_str())
        .bind(i64::from(answer.status))
        .bind(answer.body.as_str())
        .bind(answer.created_at)
        .execute(conn)
        .await?;
    Ok(())
}

impl SqlStore {
    /// The row is written in status `applied` with no credential, whatever `means.status`
    /// says; an unknown holder or officer is `Conflict`.
    async fn insert_applied(
        &self,
        means: &EidMeans,
        officer: PersonId,
        renews: Option<MeansId>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_APPLICATION)
            .bind(means.id.to_string())
            .bind(means.holder.to_string())
            .bind(means.kind.as_str())
            .bind(means.loa.short())
            .bind(MeansStatus::Applied.as_str())
            .bind(means.valid_from)
            .bind(means.valid_until)
            .bind(means.version)
            .bind(officer.to_string())
            .bind(tx.now)
            .bind(renews.map(|r| r.to_string()))
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }
}
