//! [`ProviderStateRepo`] for [`SqlStore`]: provider-wide flags (R-SUP-3 termination) and
//! the means a termination still has to revoke. Flag changes are audited writes.

use async_trait::async_trait;
use sqlx::Row;

use super::rows::{self, means_columns};
use super::sql::SqlStore;
use super::{ProviderStateRepo, StoreError};
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
