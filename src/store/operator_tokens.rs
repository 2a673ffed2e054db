//! [`OperatorTokenRepo`] for [`SqlStore`]: the durable copy of the operators' console
//! access tokens (R-LIFE-1, R-OPS-1), read only when the ephemeral store is down so that
//! suspension and revocation stay available. Holds fingerprints, never tokens.

use async_trait::async_trait;
use sqlx::Row;

use super::sql::SqlStore;
use super::{OperatorTokenRepo, StoreError};
use crate::domain::ids::GrantId;
use crate::domain::UnixTime;

const INSERT: &str = "INSERT INTO operator_tokens (token_sha256, grant_id, grant_data, expires_at) \
                      VALUES ($1, $2, $3, $4)";
const SELECT: &str = "SELECT grant_data FROM operator_tokens WHERE token_sha256 = $1 AND expires_at > $2";
const DELETE_EXPIRED: &str = "DELETE FROM operator_tokens WHERE expires_at <= $1";
const DELETE_GRANT: &str = "DELETE FROM operator_tokens WHERE grant_id = $1";

#[async_trait]
impl OperatorTokenRepo for SqlStore {
    async fn insert_operator_token(
        &self,
        token_sha256: &str,
        grant: GrantId,
        grant_data: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(INSERT)
            .bind(token_sha256)
            .bind(grant.to_string())
            .bind(grant_data)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn operator_token(&self, token_sha256: &str, now: UnixTime) -> Result<Option<String>, StoreError> {
        sqlx::query(DELETE_EXPIRED).bind(now).execute(&self.pool).await?;
        let row = sqlx::query(SELECT)
            .bind(token_sha256)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<String, _>("grant_data").map_err(StoreError::from))
            .transpose()
    }

    async fn revoke_operator_tokens(&self, grant: GrantId) -> Result<u64, StoreError> {
        let done = sqlx::query(DELETE_GRANT)
            .bind(grant.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
