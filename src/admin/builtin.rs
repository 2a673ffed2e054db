//! The built-in first-party clients, registered (or brought up to date) at start: the
//! account page's client behind `/account/login`, and the helpdesk console's client behind
//! `/helpdesk` (issue 24: the operator logs in through this provider from the page).

use crate::domain::client::Client;
use crate::domain::ids::ClientId;
use crate::domain::loa::Loa;
use crate::store::Store;

/// The built-in first-party client behind `/account/login`.
pub const ACCOUNT_CLIENT: &str = "eidgate-account";

/// The built-in operators' console client behind `/helpdesk`.
pub const HELPDESK_CLIENT: &str = "eidgate-helpdesk";

/// Registers (or updates) the built-in account client: redirect back to `/account`, no
/// consent, a secret nobody knows (its codes are never redeemed).
pub async fn ensure_account_client(store: &dyn Store, issuer: &str) -> Result<(), String> {
    let account = format!("{issuer}/account");
    let client = parse(serde_json::json!({
        "client_id": ACCOUNT_CLIENT,
        "client_name": "Your eID account",
        "redirect_uris": [account],
        "post_logout_redirect_uris": [account],
        "allowed_claims": [],
        "token_endpoint_auth_method": "client_secret_basic",
        "consent": "never"
    }))?;
    ensure(store, client).await
}

/// The helpdesk console's redirect URI: the page itself.
pub fn helpdesk_redirect_uri(issuer: &str) -> String {
    format!("{issuer}/helpdesk")
}

/// Registers (or updates) the built-in helpdesk console client: an operators' console
/// (`operator_console`), PKCE required, `minimum_acr` at the operator assurance level so
/// that the login itself reaches what the operator APIs demand, no claims (a pairwise
/// `sub`), no consent. Confidential with a secret nobody knows: only this server redeems
/// its codes, for the page that holds the PKCE verifier (the helpdesk console module).
pub async fn ensure_helpdesk_client(store: &dyn Store, issuer: &str, minimum_acr: Loa) -> Result<(), String> {
    let page = helpdesk_redirect_uri(issuer);
    let client = parse(serde_json::json!({
        "client_id": HELPDESK_CLIENT,
        "client_name": "Helpdesk console",
        "redirect_uris": [page],
        "post_logout_redirect_uris": [page],
        "allowed_claims": [],
        "token_endpoint_auth_method": "client_secret_basic",
        "require_pkce": true,
        "minimum_acr": minimum_acr,
        "operator_console": true,
        "consent": "never"
    }))?;
    ensure(store, client).await
}

fn parse(mut registration: serde_json::Value) -> Result<Client, String> {
    registration["secret_sha256"] = crate::domain::secret::fingerprint_hex(&crate::random::token()).into();
    serde_json::from_value(registration).map_err(|e| e.to_string())
}

/// Stores `client` unless the stored registration already equals it (the secret aside:
/// each start draws a new one nobody learns, so it never counts as a difference).
async fn ensure(store: &dyn Store, client: Client) -> Result<(), String> {
    let id: ClientId = client.client_id.clone();
    if let Some(existing) = store.client(&id).await.map_err(|e| e.to_string())? {
        let comparable = |c: &Client| {
            let mut value = serde_json::to_value(c).unwrap_or_default();
            if let Some(fields) = value.as_object_mut() {
                fields.remove("secret_sha256");
            }
            value
        };
        if comparable(&existing) == comparable(&client) {
            return Ok(());
        }
    }
    let audit = crate::audit::AuditEvent::new(
        crate::audit::catalogue::CLIENT_BUILTIN_REGISTERED,
        "system",
        format!("client:{id}"),
        serde_json::json!({"redirect_uri": client.redirect_uris, "operator_console": client.operator_console}),
    );
    store.upsert_client(&client, audit).await.map_err(|e| e.to_string())?;
    Ok(())
}
