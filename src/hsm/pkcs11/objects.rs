//! Reading eidgate's keys back from the token: objects with one of our labels, their
//! public halves, and the retirement records of rotated-out keys.

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use time::OffsetDateTime;

use crate::hsm::keys::{KeyKind, KeyMaterial, PublicKey, RawKey};
use crate::hsm::pool::OpError;
use crate::hsm::HsmError;

/// `CKA_APPLICATION` of the data objects that record when a key was rotated out.
const RETIREMENT_APPLICATION: &[u8] = b"eidgate-key-retirement";

pub(super) fn attribute_bytes(attributes: &[Attribute], wanted: AttributeType) -> Option<Vec<u8>> {
    attributes.iter().find_map(|attribute| match (attribute, wanted) {
        (Attribute::Label(v), AttributeType::Label)
        | (Attribute::Id(v), AttributeType::Id)
        | (Attribute::Value(v), AttributeType::Value)
        | (Attribute::EcPoint(v), AttributeType::EcPoint)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent) => Some(v.clone()),
        _ => None,
    })
}

/// A token object whose label is one of ours.
struct LabelledObject {
    kind: KeyKind,
    generation: u32,
    label: String,
    id: Vec<u8>,
}

/// Label and `CKA_ID` of every token object of `class` whose label is one of ours.
fn labelled_objects(session: &Session, class: ObjectClass) -> Result<Vec<LabelledObject>, OpError> {
    let mut found = Vec::new();
    for handle in session.find_objects(&[Attribute::Token(true), Attribute::Class(class)])? {
        let attributes = session.get_attributes(handle, &[AttributeType::Label, AttributeType::Id])?;
        let Some(label) = attribute_bytes(&attributes, AttributeType::Label).and_then(|l| String::from_utf8(l).ok())
        else {
            continue;
        };
        let Some((kind, generation)) = KeyKind::parse_label(&label) else {
            continue;
        };
        let id = attribute_bytes(&attributes, AttributeType::Id).unwrap_or_default();
        found.push(LabelledObject {
            kind,
            generation,
            label,
            id,
        });
    }
    Ok(found)
}

/// Every key of ours in the token: private or secret objects, with the matching public
/// object (same label and `CKA_ID`) and the retirement record.
pub(super) fn read_keys(session: &Session) -> Result<Vec<RawKey>, OpError> {
    let retirements = read_retirements(session)?;
    let mut keys = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
        for LabelledObject {
            kind,
            generation,
            label,
            id,
        } in labelled_objects(session, class)?
        {
            let public = match (kind.material(), class == ObjectClass::SECRET_KEY) {
                (KeyMaterial::Aes256, true) => None,
                (KeyMaterial::Ec(_) | KeyMaterial::Rsa3072, false) => read_public(session, kind, &label, &id)?,
                _ => continue, // a label of ours on the wrong kind of object
            };
            let retired_at = retirements.iter().find(|(l, _)| *l == label).map(|(_, at)| *at);
            keys.push(RawKey {
                label,
                kind,
                generation,
                id,
                public,
                retired_at,
            });
        }
    }
    Ok(keys)
}

fn read_public(session: &Session, kind: KeyKind, label: &str, id: &[u8]) -> Result<Option<PublicKey>, OpError> {
    let found = session.find_objects(&[
        Attribute::Token(true),
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ])?;
    let Some(handle) = found.first() else {
        tracing::warn!(key = label, "HSM key has no public key object; not published");
        return Ok(None);
    };
    let parsed = match kind.material() {
        KeyMaterial::Ec(curve) => {
            let attributes = session.get_attributes(*handle, &[AttributeType::EcPoint])?;
            attribute_bytes(&attributes, AttributeType::EcPoint)
                .ok_or_else(|| HsmError::Pkcs11("no CKA_EC_POINT".into()))
                .and_then(|point| PublicKey::from_ec_point(curve, &point))
        }
        KeyMaterial::Rsa3072 => {
            let attributes =
                session.get_attributes(*handle, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
            match (
                attribute_bytes(&attributes, AttributeType::Modulus),
                attribute_bytes(&attributes, AttributeType::PublicExponent),
            ) {
                (Some(n), Some(e)) => PublicKey::from_rsa(&n, &e),
                _ => Err(HsmError::Pkcs11("no CKA_MODULUS or CKA_PUBLIC_EXPONENT".into())),
            }
        }
        KeyMaterial::Aes256 => return Ok(None),
    };
    match parsed {
        Ok(public) => Ok(Some(public)),
        Err(e) => {
            tracing::warn!(key = label, error = %e, "unreadable public key; not published");
            Ok(None)
        }
    }
}

/// The highest generation of `kind` on any object (so a new label never collides, even
/// with a half-generated pair).
pub(super) fn max_generation(session: &Session, kind: KeyKind) -> Result<u32, OpError> {
    let mut max = 0;
    for class in [
        ObjectClass::PRIVATE_KEY,
        ObjectClass::PUBLIC_KEY,
        ObjectClass::SECRET_KEY,
    ] {
        for object in labelled_objects(session, class)? {
            if object.kind == kind {
                max = max.max(object.generation);
            }
        }
    }
    Ok(max)
}

/// Retirement records: `CKO_DATA` objects of our application, label = key label,
/// value = Unix seconds in ASCII decimal.
fn read_retirements(session: &Session) -> Result<Vec<(String, OffsetDateTime)>, OpError> {
    let mut records = Vec::new();
    for handle in session.find_objects(&retirement_template(None))? {
        let attributes = session.get_attributes(handle, &[AttributeType::Label, AttributeType::Value])?;
        let label = attribute_bytes(&attributes, AttributeType::Label).and_then(|l| String::from_utf8(l).ok());
        let at = attribute_bytes(&attributes, AttributeType::Value)
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok());
        if let (Some(label), Some(at)) = (label, at) {
            records.push((label, at));
        }
    }
    Ok(records)
}

pub(super) fn retirement_template(label: Option<&str>) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Token(true),
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(RETIREMENT_APPLICATION.to_vec()),
    ];
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    template
}
