//! [`FidoRepo`] for [`SqlStore`]: the WebAuthn credential of each `fido` means
//! (migration 0009). Writes carry their audit record in the same transaction.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::rows::parse_uuid;
use super::sql::SqlStore;
use super::{FidoCredentialRecord, FidoRepo, StoreError};
use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;

const COLUMNS: &str =
    "means_id, credential_id, user_handle, static_state, dynamic_state, attestation, created_at, last_used_at";

/// One credential per means: a repeated activation of the same (still issued) means
/// replaces the row it left.
const UPSERT: &str = "INSERT INTO fido_credentials (means_id, credential_id, user_handle, static_state, \
     dynamic_state, attestation, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (means_id) DO UPDATE SET credential_id = excluded.credential_id, \
     user_handle = excluded.user_handle, static_state = excluded.static_state, \
     dynamic_state = excluded.dynamic_state, attestation = excluded.attestation, created_at = excluded.created_at";

/// The counter moves only from the state the login read (two concurrent logins with the
/// same counter: the second loses).
const UPDATE_DYNAMIC: &str = "UPDATE fido_credentials SET dynamic_state = $1, last_used_at = $2 \
     WHERE means_id = $3 AND dynamic_state = $4";

fn record(row: &AnyRow) -> Result<FidoCredentialRecord, StoreError> {
    Ok(FidoCredentialRecord {
        means: MeansId(parse_uuid(row, "means_id")?),
        credential_id: row.try_get("credential_id")?,
        user_handle: row.try_get("user_handle")?,
        static_state: row.try_get("static_state")?,
        dynamic_state: row.try_get("dynamic_state")?,
        attestation: row.try_get("attestation")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

#[async_trait]
impl FidoRepo for SqlStore {
    async fn fido_by_credential_id(&self, credential_id: &str) -> Result<Option<FidoCredentialRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM fido_credentials WHERE credential_id = $1");
        let row = sqlx::query(&sql).bind(credential_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(record).transpose()
    }

    async fn fido_of_means(&self, means: MeansId) -> Result<Option<FidoCredentialRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM fido_credentials WHERE means_id = $1");
        let row = sqlx::query(&sql)
            .bind(means.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn save_fido_credential(&self, rec: &FidoCredentialRecord, audit: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(UPSERT)
            .bind(rec.means.to_string())
            .bind(rec.credential_id.as_str())
            .bind(rec.user_handle.as_str())
            .bind(rec.static_state.as_str())
            .bind(rec.dynamic_state.as_str())
            .bind(rec.attestation.as_str())
            .bind(rec.created_at)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit(&audit).await?;
        Ok(())
    }

    async fn update_fido_state(
        &self,
        means: MeansId,
        previous: &str,
        next: &str,
        used_at: crate::domain::UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(UPDATE_DYNAMIC)
            .bind(next)
            .bind(used_at)
            .bind(means.to_string())
            .bind(previous)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
