//! Key generation inside the token (sensitive, never extractable) and the records that
//! schedule a new key's activation and retire the keys it replaces.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::Session;
use cryptoki::types::Date;
use time::OffsetDateTime;

use super::objects::{record_template, ACTIVATION_APPLICATION, RETIREMENT_APPLICATION};
use crate::hsm::keys::{KeyKind, KeyMaterial};
use crate::hsm::pool::OpError;

/// Replaces the retirement record of `label` with `at` (when its successor becomes
/// active; the key leaves the JWKS `hsm.retired_key_publish` later).
pub(super) fn record_retirement(session: &Session, label: &str, at: OffsetDateTime) -> Result<(), OpError> {
    record(session, RETIREMENT_APPLICATION, label, &[at])
}

/// Replaces the activation record of `label`: published at `published`, signing from
/// `active`. Written before the key is generated, so a key of a rotation never exists
/// without its schedule (a key without a record would be active at once).
pub(super) fn record_activation(
    session: &Session,
    label: &str,
    published: OffsetDateTime,
    active: OffsetDateTime,
) -> Result<(), OpError> {
    record(session, ACTIVATION_APPLICATION, label, &[published, active])
}

/// Replaces the record of `application` for `label`. Private objects, so only a
/// logged-in user can change when a key signs or leaves the JWKS.
fn record(session: &Session, application: &[u8], label: &str, times: &[OffsetDateTime]) -> Result<(), OpError> {
    for old in session.find_objects(&record_template(application, Some(label)))? {
        session.destroy_object(old)?;
    }
    let value = times
        .iter()
        .map(|at| at.unix_timestamp().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let mut template = record_template(application, Some(label));
    template.extend([Attribute::Private(true), Attribute::Value(value.into_bytes())]);
    session.create_object(&template)?;
    Ok(())
}

/// Sets `CKA_END_DATE` on the objects of a rotated-out key, for operators' tools. Best
/// effort: the retirement record is what eidgate reads.
pub(super) fn mark_end_date(session: &Session, label: &str, at: OffsetDateTime) {
    let objects = session.find_objects(&[Attribute::Token(true), Attribute::Label(label.as_bytes().to_vec())]);
    for handle in objects.unwrap_or_default() {
        if let Err(e) = session.update_attributes(handle, &[Attribute::EndDate(ck_date(at))]) {
            tracing::debug!(key = label, error = %e, "CKA_END_DATE not set");
        }
    }
}

fn ck_date(at: OffsetDateTime) -> Date {
    let digits = |value: u32, width: usize| format!("{value:0width$}").into_bytes();
    let year = digits(u32::try_from(at.year()).unwrap_or(0), 4);
    let month = digits(u32::from(u8::from(at.month())), 2);
    let day = digits(u32::from(at.day()), 2);
    match (
        <[u8; 4]>::try_from(year),
        <[u8; 2]>::try_from(month),
        <[u8; 2]>::try_from(day),
    ) {
        (Ok(y), Ok(m), Ok(d)) => Date::new(y, m, d),
        _ => Date::new_empty(),
    }
}

/// Generates generation `generation` of `kind` inside the token: private or secret parts
/// sensitive, never extractable, private to the logged-in user.
pub(super) fn generate(session: &Session, kind: KeyKind, generation: u32) -> Result<(), OpError> {
    let label = kind.label(generation).into_bytes();
    let id = crate::random::bytes::<16>().to_vec();
    let start = Attribute::StartDate(ck_date(OffsetDateTime::now_utc()));
    let secret_attributes = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.clone()),
        Attribute::Id(id.clone()),
        start.clone(),
    ];
    let public_attributes = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label),
        Attribute::Id(id),
        start,
    ];
    match kind.material() {
        KeyMaterial::Aes256 => {
            let mut template = secret_attributes.to_vec();
            template.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32u64.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Sign(false),
                Attribute::Derive(false),
            ]);
            session.generate_key(&Mechanism::AesKeyGen, &template)?;
        }
        KeyMaterial::Ec(curve) => {
            let mut public = public_attributes.to_vec();
            public.push(Attribute::EcParams(curve.ec_params().to_vec()));
            let mut private = secret_attributes.to_vec();
            private.extend([Attribute::Sign(true), Attribute::Derive(false)]);
            session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)?;
        }
        KeyMaterial::Rsa3072 => {
            let mut public = public_attributes.to_vec();
            public.extend([
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
                Attribute::ModulusBits(3072u64.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]);
            let mut private = secret_attributes.to_vec();
            private.extend([
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
            ]);
            session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)?;
        }
    }
    Ok(())
}
