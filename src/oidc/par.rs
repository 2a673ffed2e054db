//! Pushed authorization requests (RFC 9126): the validated parameters are kept in the
//! ephemeral store under a one-time `request_uri`; `/authorize` takes them back once.

use super::authorize::PAR_URN_PREFIX;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::state::Oidc;
use crate::domain::secret::fingerprint_hex;

fn key(request_uri: &str) -> String {
    format!("par:{}", fingerprint_hex(request_uri))
}

/// A pushed request as stored: its parameters, and whether they came as a signed request
/// object (RFC 9101), which a client with `require_signed_request_object` needs.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pushed {
    pairs: Vec<(String, String)>,
    signed: bool,
}

/// Stores validated pushed parameters (with the authenticated `client_id`); the new
/// `request_uri`, valid for `tokens.par_ttl`.
pub async fn push(app: &Oidc, params: &Params, signed: bool) -> Result<String, OAuthError> {
    let request_uri = format!("{PAR_URN_PREFIX}{}", crate::random::token());
    let pairs: Vec<(String, String)> = params.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    crate::ephemeral::put_json(
        app.ephemeral.as_ref(),
        &key(&request_uri),
        &Pushed { pairs, signed },
        app.config.tokens.par_ttl,
    )
    .await?;
    Ok(request_uri)
}

/// Takes the pushed parameters of `request_uri` (single use). RFC 9126 §4: only the
/// pushed parameters count, and the `client_id` of the front-channel request must match.
/// Also says whether they came as a signed request object.
pub async fn take(app: &Oidc, request_uri: &str, client_id: Option<&str>) -> Result<(Params, bool), OAuthError> {
    let stored = app.ephemeral.take(&key(request_uri)).await?;
    let stored: Pushed = crate::ephemeral::decode(stored)
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequestUri, "request_uri is unknown, used or expired"))?;
    let signed = stored.signed;
    let pushed = Params::from_pairs(stored.pairs);
    if pushed.get("client_id") != client_id {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequestUri,
            "client_id does not match the pushed request",
        ));
    }
    Ok((pushed, signed))
}
