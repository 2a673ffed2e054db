//! [`Sealer`]: AES-GCM inside the token under the `data-wrap-<n>` key (R-AUTH-3); a sealed
//! value names the key generation that sealed it.

use async_trait::async_trait;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;

use super::Pkcs11Hsm;
use crate::hsm::keys::KeyKind;
use crate::hsm::pool::PooledSession;
use crate::hsm::{HsmError, Sealer};

/// Format byte of a sealed value.
const SEALED_V1: u8 = 1;
/// AES-GCM IV length (96 bits).
const GCM_IV: usize = 12;
/// Header: format byte, key generation, IV.
const SEALED_HEADER: usize = 1 + 4 + GCM_IV;

impl Pkcs11Hsm {
    /// Label and `CKA_ID` of the `data-wrap` key of `generation` (`None`: the active one).
    fn wrap_key(&self, generation: Option<u32>) -> Result<(u32, String, Vec<u8>), HsmError> {
        let inventory = self.inventory();
        let entry = match generation {
            None => inventory.active(KeyKind::DataWrap, self.now()),
            Some(g) => inventory.find(&KeyKind::DataWrap.label(g)),
        }
        .ok_or_else(|| HsmError::KeyNotFound(KeyKind::DataWrap.prefix().to_owned()))?;
        let (_, generation) =
            KeyKind::parse_label(&entry.label).ok_or_else(|| HsmError::KeyNotFound(entry.label.clone()))?;
        Ok((generation, entry.label.clone(), entry.id.clone()))
    }
}

#[async_trait]
impl Sealer for Pkcs11Hsm {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, HsmError> {
        let (generation, label, id) = self.wrap_key(None)?;
        let iv = crate::random::bytes::<GCM_IV>();
        let data = zeroize::Zeroizing::new(plaintext.to_vec());
        let aad = aad.to_vec();
        let ciphertext = self
            .inner
            .pool
            .run(move |pooled: &mut PooledSession| {
                let key = pooled.key(ObjectClass::SECRET_KEY, &label, &id)?;
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, &aad, 128u64.into())?;
                Ok(pooled.session().encrypt(&Mechanism::AesGcm(params), key, &data)?)
            })
            .await?;
        let mut sealed = Vec::with_capacity(SEALED_HEADER + ciphertext.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&generation.to_be_bytes());
        sealed.extend_from_slice(&iv);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    async fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, HsmError> {
        if sealed.len() < SEALED_HEADER + 16 || sealed[0] != SEALED_V1 {
            return Err(HsmError::Pkcs11("sealed value is malformed".into()));
        }
        let mut generation = [0u8; 4];
        generation.copy_from_slice(&sealed[1..5]);
        let (_, label, id) = self.wrap_key(Some(u32::from_be_bytes(generation)))?;
        let mut iv = [0u8; GCM_IV];
        iv.copy_from_slice(&sealed[5..SEALED_HEADER]);
        let ciphertext = sealed[SEALED_HEADER..].to_vec();
        let aad = aad.to_vec();
        self.inner
            .pool
            .run(move |pooled: &mut PooledSession| {
                let key = pooled.key(ObjectClass::SECRET_KEY, &label, &id)?;
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, &aad, 128u64.into())?;
                Ok(zeroize::Zeroizing::new(pooled.session().decrypt(
                    &Mechanism::AesGcm(params),
                    key,
                    &ciphertext,
                )?))
            })
            .await
    }
}
