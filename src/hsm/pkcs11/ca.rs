//! [`CaKey`]: the smartcard issuing CA's key (ECDSA P-384) and its certificate, kept in
//! the token.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use sha2::Digest;

use super::objects::attribute_bytes;
use super::token::token_lock;
use super::Pkcs11Hsm;
use crate::hsm::keys::{KeyKind, PublicKey};
use crate::hsm::{CaKey, HsmError};

impl CaKey for Pkcs11Hsm {
    fn ca_public_key(&self) -> Result<(String, Vec<u8>), HsmError> {
        let inventory = self.inventory();
        let entry = inventory
            .active(KeyKind::Ca, self.now())
            .ok_or_else(|| HsmError::KeyNotFound(KeyKind::Ca.prefix().to_owned()))?;
        match &entry.public {
            Some(PublicKey::Ec { x, y, .. }) => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Ok((entry.label.clone(), point))
            }
            _ => Err(HsmError::KeyNotFound(entry.label.clone())),
        }
    }

    fn sign_ca_blocking(&self, label: &str, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let id = self
            .inventory()
            .find(label)
            .filter(|entry| entry.kind == KeyKind::Ca)
            .map(|entry| entry.id.clone())
            .ok_or_else(|| HsmError::KeyNotFound(label.to_owned()))?;
        // CKM_ECDSA signs the digest we compute: SHA-384 for a P-384 CA (RFC 5758 §3.2).
        let digest = sha2::Sha384::digest(message).to_vec();
        let signature = self.inner.pool.run_blocking(|pooled| {
            let key = pooled.key(ObjectClass::PRIVATE_KEY, label, &id)?;
            Ok(pooled.session().sign(&Mechanism::Ecdsa, key, &digest)?)
        })?;
        if signature.len() != 96 {
            return Err(HsmError::Pkcs11(format!(
                "ECDSA P-384 signature of {} bytes, expected r||s of 96",
                signature.len()
            )));
        }
        Ok(signature)
    }

    fn ca_certificate_blocking(&self, label: &str) -> Result<Option<Vec<u8>>, HsmError> {
        let label = label.to_owned();
        self.inner.pool.run_blocking(|pooled| {
            let session = pooled.session();
            let found = session.find_objects(&[
                Attribute::Token(true),
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Label(label.as_bytes().to_vec()),
            ])?;
            let Some(handle) = found.first() else {
                return Ok(None);
            };
            let attributes = session.get_attributes(*handle, &[AttributeType::Value])?;
            Ok(attribute_bytes(&attributes, AttributeType::Value))
        })
    }

    fn store_ca_certificate_blocking(&self, label: &str, subject: &[u8], der: &[u8]) -> Result<(), HsmError> {
        let lock = token_lock(&self.inner.module, &self.inner.token_label);
        let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = self
            .inventory()
            .find(label)
            .map(|entry| entry.id.clone())
            .ok_or_else(|| HsmError::KeyNotFound(label.to_owned()))?;
        self.inner.pool.run_blocking(|pooled| {
            let session = pooled.session();
            let existing = session.find_objects(&[
                Attribute::Token(true),
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Label(label.as_bytes().to_vec()),
            ])?;
            if !existing.is_empty() {
                // Another process stored it first; the first one stays.
                return Ok(());
            }
            session.create_object(&[
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
                Attribute::Subject(subject.to_vec()),
                Attribute::Value(der.to_vec()),
            ])?;
            Ok(())
        })
    }
}
