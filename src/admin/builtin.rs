//! The built-in first-party client behind `/account/login`, registered at start.

use crate::store::Store;

/// The built-in first-party client behind `/account/login`.
pub const ACCOUNT_CLIENT: &str = "eidgate-account";

/// Registers (or updates) the built-in account client: redirect back to `/account`, no
/// consent, a secret nobody knows (its codes are never redeemed).
pub async fn ensure_account_client(store: &dyn Store, issuer: &str) -> Result<(), String> {
    let account = format!("{issuer}/account");
    let id: crate::domain::ids::ClientId = ACCOUNT_CLIENT.parse().map_err(|_| "account client id".to_owned())?;
    if let Some(existing) = store.client(&id).await.map_err(|e| e.to_string())? {
        if existing.redirect_uris == [account.clone()] {
            return Ok(());
        }
    }
    let client: crate::domain::client::Client = serde_json::from_value(serde_json::json!({
        "client_id": ACCOUNT_CLIENT,
        "client_name": "Your eID account",
        "secret_sha256": crate::domain::secret::fingerprint_hex(&crate::random::token()),
        "redirect_uris": [account],
        "post_logout_redirect_uris": [account],
        "allowed_claims": [],
        "token_endpoint_auth_method": "client_secret_basic",
        "consent": "never"
    }))
    .map_err(|e| e.to_string())?;
    let audit = crate::audit::AuditEvent::new(
        crate::audit::catalogue::CLIENT_BUILTIN_REGISTERED,
        "system",
        format!("client:{ACCOUNT_CLIENT}"),
        serde_json::json!({"redirect_uri": client.redirect_uris}),
    );
    store.upsert_client(&client, audit).await.map_err(|e| e.to_string())?;
    Ok(())
}
