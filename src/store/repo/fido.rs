//! [`FidoRepo`]: WebAuthn credentials of `fido` means (issue 5).

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::domain::ids::MeansId;
use crate::domain::UnixTime;
use crate::store::StoreError;

/// The WebAuthn credential of a `fido` means as stored (public data only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FidoCredentialRecord {
    /// The means it is bound to.
    pub means: MeansId,
    /// base64url credential id.
    pub credential_id: String,
    /// base64url user handle.
    pub user_handle: String,
    /// base64url of the static state (public key).
    pub static_state: String,
    /// base64url of the dynamic state (UV, backup, counter).
    pub dynamic_state: String,
    /// JSON attestation result (format, AAGUID, trust path, trusted LoA).
    pub attestation: String,
    /// Registered at.
    pub created_at: UnixTime,
    /// Last successful login.
    pub last_used_at: Option<UnixTime>,
}

/// FIDO2 credentials (issue 5).
#[async_trait]
pub trait FidoRepo: Send + Sync {
    /// The credential with this (base64url) id.
    async fn fido_by_credential_id(&self, credential_id: &str) -> Result<Option<FidoCredentialRecord>, StoreError>;
    /// The credential of a means.
    async fn fido_of_means(&self, means: MeansId) -> Result<Option<FidoCredentialRecord>, StoreError>;
    /// Stores (or replaces) the credential of a means; audited.
    async fn save_fido_credential(&self, record: &FidoCredentialRecord, audit: AuditEvent) -> Result<(), StoreError>;
    /// Moves the dynamic state (counter) from `previous` to `next`; `false` when another
    /// login moved it first.
    async fn update_fido_state(
        &self,
        means: MeansId,
        previous: &str,
        next: &str,
        used_at: UnixTime,
    ) -> Result<bool, StoreError>;
}
