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
    // Buffers sized for an ID token, so that they are allocated once (issue 22).
    let mut json = Vec::with_capacity(768);
    serde_json::to_writer(&mut json, claims).map_err(|e| HsmError::Pkcs11(e.to_string()))?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut kid = signer.active_kid(alg)?;
    for _ in 0..2 {
        let header = Header {
            alg: alg.as_str(),
            kid: &kid.0,
            typ,
        };
        let header = serde_json::to_vec(&header).map_err(|e| HsmError::Pkcs11(e.to_string()))?;
        // header and payload in base64url (4/3 of their bytes), two dots, and a signature
        // of up to 512 bytes (RSA-4096) in base64url.
        let mut input = String::with_capacity(payload.len() + header.len() * 4 / 3 + 700);
        URL_SAFE_NO_PAD.encode_string(header, &mut input);
        input.push('.');
        input.push_str(&payload);
        let (used, signature) = signer.sign(alg, input.as_bytes()).await?;
        if used == kid {
            input.push('.');
            URL_SAFE_NO_PAD.encode_string(signature, &mut input);
            return Ok(input);
        }
        kid = used;
    }
    Err(HsmError::KeyNotFound("active key changed twice while signing".into()))
}
