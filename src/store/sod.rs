//! [`SodRepo`] for [`SqlStore`]: separation of duties (R-SEC-3, R-SEC-4). Two-person
//! actions waiting for a security officer, and operators' password history (argon2 PHC
//! strings only). Every write that decides something carries its audit record in the
//! same transaction.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::rows::{parse_optional_uuid, parse_uuid};
use super::sql::SqlStore;
use super::StoreError;
use crate::audit::AuditEvent;
use crate::domain::ids::{MeansId, PersonId};
use crate::domain::UnixTime;

/// A two-person action: requested by one operator, carried out only when a second
/// operator with role `security` approves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Id (UUID).
    pub id: String,
    /// The means concerned.
    pub means: MeansId,
    /// `reactivate` or `revoke`.
    pub command: String,
    /// The requester's reason.
    pub reason: String,
    /// How the requester verified the caller (`in_person`, `law_enforcement_order`, ...).
    pub method: String,
    /// What the audit keeps of the evidence (a fingerprint or the order's reference).
    pub evidence_ref: String,
    /// The requesting operator.
    pub requested_by: PersonId,
    /// When (UTC seconds).
    pub requested_at: UnixTime,
    /// `open`, `approved` or `rejected`.
    pub state: String,
    /// The deciding security officer.
    pub decided_by: Option<PersonId>,
    /// When decided.
    pub decided_at: Option<UnixTime>,
}

/// Separation-of-duties records.
#[async_trait]
pub trait SodRepo: Send + Sync {
    /// Records an open approval request with its audit record.
    async fn insert_approval(&self, approval: &Approval, audit: AuditEvent) -> Result<(), StoreError>;
    /// An approval by id.
    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Open approvals, oldest first, at most `limit`.
    async fn open_approvals(&self, limit: i64) -> Result<Vec<Approval>, StoreError>;
    /// Closes an open approval as `state` (`Conflict` if it is no longer open).
    async fn decide_approval(
        &self,
        id: &str,
        state: &str,
        by: PersonId,
        at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
    /// The PHC strings of a means' earlier passwords with when each was set, newest first.
    async fn password_history(&self, means: MeansId, limit: i64) -> Result<Vec<(String, UnixTime)>, StoreError>;
    /// Records that `means` got the password `phc` at `at`.
    async fn record_password(&self, means: MeansId, phc: &str, at: UnixTime) -> Result<(), StoreError>;
}

const APPROVAL_COLUMNS: &str = "id, means_id, command, reason, method, evidence_ref, requested_by, requested_at, \
     state, decided_by, decided_at";

fn approval(row: &AnyRow) -> Result<Approval, StoreError> {
    Ok(Approval {
        id: row.try_get("id")?,
        means: MeansId(parse_uuid(row, "means_id")?),
        command: row.try_get("command")?,
        reason: row.try_get("reason")?,
        method: row.try_get("method")?,
        evidence_ref: row.try_get("evidence_ref")?,
        requested_by: PersonId(parse_uuid(row, "requested_by")?),
        requested_at: row.try_get("requested_at")?,
        state: row.try_get("state")?,
        decided_by: parse_optional_uuid(row, "decided_by")?.map(PersonId),
        decided_at: row.try_get("decided_at")?,
    })
}

#[async_trait]
impl SodRepo for SqlStore {
    async fn insert_approval(&self, a: &Approval, audit: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(&format!(
            "INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(a.id.as_str())
        .bind(a.means.to_string())
        .bind(a.command.as_str())
        .bind(a.reason.as_str())
        .bind(a.method.as_str())
        .bind(a.evidence_ref.as_str())
        .bind(a.requested_by.to_string())
        .bind(a.requested_at)
        .bind(a.state.as_str())
        .bind(a.decided_by.map(|p| p.to_string()))
        .bind(a.decided_at)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(approval).transpose()
    }

    async fn open_approvals(&self, limit: i64) -> Result<Vec<Approval>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE state = 'open' ORDER BY requested_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(approval).collect()
    }

    async fn decide_approval(
        &self,
        id: &str,
        state: &str,
        by: PersonId,
        at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        let done = sqlx::query(
            "UPDATE approvals SET state = $2, decided_by = $3, decided_at = $4 WHERE id = $1 AND state = 'open'",
        )
        .bind(id)
        .bind(state)
        .bind(by.to_string())
        .bind(at)
        .execute(&mut *tx.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn password_history(&self, means: MeansId, limit: i64) -> Result<Vec<(String, UnixTime)>, StoreError> {
        let rows = sqlx::query(
            "SELECT password_phc, set_at FROM operator_passwords WHERE means_id = $1 ORDER BY set_at DESC LIMIT $2",
        )
        .bind(means.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("password_phc")?, r.try_get("set_at")?)))
            .collect()
    }

    async fn record_password(&self, means: MeansId, phc: &str, at: UnixTime) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO operator_passwords (means_id, password_phc, set_at) VALUES ($1, $2, $3)")
            .bind(means.to_string())
            .bind(phc)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
