//! JWS compact serialisation signed in the HSM (RFC 7515). The header names the key
//! (`kid`) before signing; if a key rotation races between reading the active kid and
//! signing, the token is signed again with the new header.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::client::SigningAlg;
use crate::hsm::{HsmError, Signer};

/// A JWS protected header.
#[derive(serde::Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// Signs `claims` as a JWT with `alg` and `typ`.
pub async fn sign(
    signer: &dyn Signer,
    alg: SigningAlg,
    typ: &str,
    claims: &(impl serde::Serialize + ?Sized),
) -> Result<String, HsmError> {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|e| HsmError::Pkcs11(e.to_string()))?);
    let mut kid = signer.active_kid(alg)?;
    for _ in 0..2 {
        let header = Header {
            alg: alg.as_str(),
            kid: &kid.0,
            typ,
        };
        let header = serde_json::to_vec(&header).map_err(|e| HsmError::Pkcs11(e.to_string()))?;
        let mut input = String::with_capacity(payload.len() + 2 * header.len() + 100);
        URL_SAFE_NO_PAD.encode_string(header, &mut input);
        input.push('.');
        input.push_str(&payload);
        let (used, signature) = signer.sign(alg, input.as_bytes()).await?;
        if used == kid {
            input.push('.');
            input.push_str(&URL_SAFE_NO_PAD.encode(signature));
            return Ok(input);
        }
        kid = used;
    }
    Err(HsmError::KeyNotFound("active key changed twice while signing".into()))
}
