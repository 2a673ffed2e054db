//! [`ProviderStateRepo`] for [`SqlStore`]: provider-wide flags (R-SUP-3 termination) and
//! the means a termination still has to revoke. Flag changes are audited writes.

use async_trait::async_trait;
use sqlx::Row;

use super::rows::{self, means_columns};
use super::sql::SqlStore;
use super::{IncidentRecord, IncidentRepo, Notice, NoticeRepo, ProviderStateRepo, StoreError};
use crate::audit::AuditEvent;
use crate::domain::means::EidMeans;

const SELECT_STATE: &str = "SELECT value FROM provider_state WHERE name = $1";
const UPSERT_STATE: &str = "INSERT INTO provider_state (name, value, updated_at) VALUES ($1, $2, $3) \
                            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
const SELECT_TO_TERMINATE: &str = concat!(
    "SELECT ",
    means_columns!(),
    " FROM means WHERE status IN ('issued', 'active', 'suspended', 'applied') LIMIT $1"
);

#[async_trait]
impl ProviderStateRepo for SqlStore {
    async fn provider_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(SELECT_STATE).bind(name).fetch_optional(&self.pool).await?;
        row.map(|r| r.try_get::<String, _>("value").map_err(StoreError::from))
            .transpose()
    }

    async fn set_provider_state(&self, name: &str, value: &str, audit: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(UPSERT_STATE)
            .bind(name)
            .bind(value)
            .bind(tx.now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn means_not_final(&self, limit: i64) -> Result<Vec<EidMeans>, StoreError> {
        let found = sqlx::query(SELECT_TO_TERMINATE)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::means).collect()
    }
}

const INSERT_NOTICE: &str = "INSERT INTO notices (id, person_id, means_id, kind, reason, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)";
const MARK_SENT: &str = "UPDATE notices SET sent_at = $2 WHERE id = $1 AND sent_at IS NULL";
const SELECT_PENDING: &str = "SELECT id, person_id, means_id, kind, reason, created_at, sent_at FROM notices \
                              WHERE sent_at IS NULL AND created_at <= $1 ORDER BY created_at LIMIT $2";

fn notice(row: &sqlx::any::AnyRow) -> Result<Notice, StoreError> {
    let parse = |v: String| v.parse().map_err(|_| StoreError::Corrupt("notice id".into()));
    Ok(Notice {
        id: row.try_get("id")?,
        person: parse(row.try_get("person_id")?)?,
        means: row
            .try_get::<String, _>("means_id")?
            .parse()
            .map_err(|_| StoreError::Corrupt("notice means".into()))?,
        kind: row.try_get("kind")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
    })
}

#[async_trait]
impl NoticeRepo for SqlStore {
    async fn insert_notice(&self, n: &Notice, audit: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_NOTICE)
            .bind(n.id.as_str())
            .bind(n.person.to_string())
            .bind(n.means.to_string())
            .bind(n.kind.as_str())
            .bind(n.reason.as_str())
            .bind(n.created_at)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn mark_notice_sent(&self, id: &str, at: i64, audit: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        let done = sqlx::query(MARK_SENT).bind(id).bind(at).execute(&mut *tx.tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn pending_notices(&self, before: i64, limit: i64) -> Result<Vec<Notice>, StoreError> {
        let rows = sqlx::query(SELECT_PENDING)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(notice).collect()
    }
}

const INSERT_INCIDENT: &str =
    "INSERT INTO incidents (id, service, started_at, ended_at, record) VALUES ($1, $2, $3, $4, $5)";
const SELECT_INCIDENTS: &str =
    "SELECT id, service, started_at, ended_at, record FROM incidents ORDER BY started_at DESC LIMIT $1";

#[async_trait]
impl IncidentRepo for SqlStore {
    async fn insert_incident(&self, i: &IncidentRecord, audit: AuditEvent) -> Result<(), StoreError> {
        let record = serde_json::to_string(&i.record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.begin_audited().await?;
        sqlx::query(INSERT_INCIDENT)
            .bind(i.id.as_str())
            .bind(i.service.as_str())
            .bind(i.started_at)
            .bind(i.ended_at)
            .bind(record)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn incidents(&self, limit: i64) -> Result<Vec<IncidentRecord>, StoreError> {
        let rows = sqlx::query(SELECT_INCIDENTS).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let record: String = r.try_get("record")?;
                Ok(IncidentRecord {
                    id: r.try_get("id")?,
                    service: r.try_get("service")?,
                    started_at: r.try_get("started_at")?,
                    ended_at: r.try_get("ended_at")?,
                    record: serde_json::from_str(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }
}
