//! The card stand-in (`eidgate card ...`, issue 4): a PKCS#11 token playing the holder's
//! smartcard, with its own user PIN. The authentication key `card-auth` is generated on
//! the token (sensitive, never extractable) and used only after a login with the PIN, as
//! a real eID card does; its certificate is kept on the token beside it.
//!
//! This is a holder-side tool and test fixture: it never touches eidgate's own token,
//! and it must run in its own process with its own `SOFTHSM2_CONF` (SoftHSM only sees
//! tokens that existed when the module was loaded).

use std::path::Path;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use super::keys::der_octet_string_content;
use super::pkcs11::{context, find_token_slot};
use super::HsmError;

/// Wraps a PIN typed by the holder in the token layer's secret type (zeroised on drop,
/// never printed).
pub fn pin(text: &str) -> AuthPin {
    AuthPin::new(text.to_owned())
}

/// Label of the card's authentication key pair and certificate.
pub const CARD_KEY_LABEL: &str = "card-auth";

/// The curves a card key can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
}

impl CardCurve {
    fn ec_params(self) -> Vec<u8> {
        match self {
            CardCurve::P256 => vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            CardCurve::P384 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            CardCurve::P521 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        }
    }

    fn from_ec_params(params: &[u8]) -> Option<CardCurve> {
        [CardCurve::P256, CardCurve::P384, CardCurve::P521]
            .into_iter()
            .find(|c| c.ec_params() == params)
    }
}

fn pkcs11(what: &str) -> impl Fn(cryptoki::error::Error) -> HsmError + '_ {
    move |e| HsmError::Pkcs11(format!("{what}: {e}"))
}

/// Creates the card token `label` on a free slot with `so_pin` and `pin`, and generates
/// the `card-auth` key pair of `curve` on it.
pub fn init(module: &Path, label: &str, so_pin: &AuthPin, pin: &AuthPin, curve: CardCurve) -> Result<(), HsmError> {
    if label.is_empty() || label.len() > 32 {
        return Err(HsmError::Init("the card token label must be 1 to 32 bytes".into()));
    }
    let context = context(module)?;
    if find_token_slot(&context, label)?.is_some() {
        return Err(HsmError::Init(format!("a token labelled {label} exists already")));
    }
    let free = super::init::free_slot(&context)?;
    context.init_token(free, so_pin, label).map_err(pkcs11("C_InitToken"))?;
    let slot = find_token_slot(&context, label)?
        .ok_or_else(|| HsmError::Init(format!("token {label} not found after C_InitToken")))?;
    let session = context.open_rw_session(slot).map_err(pkcs11("C_OpenSession"))?;
    session.login(UserType::So, Some(so_pin)).map_err(pkcs11("SO login"))?;
    session.init_pin(pin).map_err(pkcs11("C_InitPIN"))?;
    session.logout().map_err(pkcs11("C_Logout"))?;
    session.login(UserType::User, Some(pin)).map_err(pkcs11("user login"))?;
    let id = crate::random::bytes::<16>().to_vec();
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(CARD_KEY_LABEL.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
        Attribute::EcParams(curve.ec_params()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Derive(false),
        Attribute::Label(CARD_KEY_LABEL.as_bytes().to_vec()),
        Attribute::Id(id),
    ];
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .map_err(pkcs11("C_GenerateKeyPair"))?;
    Ok(())
}

/// An open card: a session logged in with the holder's PIN.
pub struct Card {
    session: Session,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Card")
    }
}

impl Card {
    /// Opens the card token `label` and logs in with `pin` (a wrong PIN fails here, as
    /// on a real card).
    pub fn open(module: &Path, label: &str, pin: &AuthPin) -> Result<Card, HsmError> {
        let context = context(module)?;
        let slot = find_token_slot(&context, label)?
            .ok_or_else(|| HsmError::Unavailable(format!("no card token labelled {label}")))?;
        let session = context.open_rw_session(slot).map_err(pkcs11("C_OpenSession"))?;
        session.login(UserType::User, Some(pin)).map_err(pkcs11("PIN"))?;
        Ok(Card { session })
    }

    fn object(&self, class: ObjectClass) -> Result<Option<cryptoki::object::ObjectHandle>, HsmError> {
        let found = self
            .session
            .find_objects(&[
                Attribute::Token(true),
                Attribute::Class(class),
                Attribute::Label(CARD_KEY_LABEL.as_bytes().to_vec()),
            ])
            .map_err(pkcs11("C_FindObjects"))?;
        Ok(found.first().copied())
    }

    /// The curve and SEC1 uncompressed point of the card key.
    pub fn public_key(&self) -> Result<(CardCurve, Vec<u8>), HsmError> {
        let handle = self
            .object(ObjectClass::PUBLIC_KEY)?
            .ok_or_else(|| HsmError::KeyNotFound(CARD_KEY_LABEL.into()))?;
        let attributes = self
            .session
            .get_attributes(handle, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(pkcs11("C_GetAttributeValue"))?;
        let mut params = None;
        let mut point = None;
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let curve = params
            .as_deref()
            .and_then(CardCurve::from_ec_params)
            .ok_or_else(|| HsmError::Pkcs11("card key has unknown EC parameters".into()))?;
        let point = point.ok_or_else(|| HsmError::Pkcs11("card key has no CKA_EC_POINT".into()))?;
        let point = der_octet_string_content(&point).map(<[u8]>::to_vec).unwrap_or(point);
        Ok((curve, point))
    }

    /// Signs `digest` with CKM_ECDSA: `r || s`.
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, HsmError> {
        let key = self
            .object(ObjectClass::PRIVATE_KEY)?
            .ok_or_else(|| HsmError::KeyNotFound(CARD_KEY_LABEL.into()))?;
        self.session
            .sign(&Mechanism::Ecdsa, key, digest)
            .map_err(pkcs11("C_Sign"))
    }

    /// Stores the authentication certificate (replacing a previous one).
    pub fn store_certificate(&self, subject: &[u8], der: &[u8]) -> Result<(), HsmError> {
        if let Some(old) = self.object(ObjectClass::CERTIFICATE)? {
            self.session.destroy_object(old).map_err(pkcs11("C_DestroyObject"))?;
        }
        self.session
            .create_object(&[
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Label(CARD_KEY_LABEL.as_bytes().to_vec()),
                Attribute::Subject(subject.to_vec()),
                Attribute::Value(der.to_vec()),
            ])
            .map_err(pkcs11("C_CreateObject"))?;
        Ok(())
    }

    /// The authentication certificate on the card, if one was stored.
    pub fn certificate(&self) -> Result<Option<Vec<u8>>, HsmError> {
        let Some(handle) = self.object(ObjectClass::CERTIFICATE)? else {
            return Ok(None);
        };
        let attributes = self
            .session
            .get_attributes(handle, &[AttributeType::Value])
            .map_err(pkcs11("C_GetAttributeValue"))?;
        Ok(attributes.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        }))
    }
}
