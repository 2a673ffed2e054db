//! Reading eidgate's keys back from the token: objects with one of our labels, their
//! public halves, and the records `rotate` writes about them: when a key was published and
//! becomes active (activation records) and when it was replaced (retirement records).

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use time::OffsetDateTime;

use crate::hsm::inventory::RawKey;
use crate::hsm::keys::{KeyKind, KeyMaterial, PublicKey};
use crate::hsm::pool::OpError;
use crate::hsm::HsmError;

/// `CKA_APPLICATION` of the data objects that record when a key was rotated out.
pub(super) const RETIREMENT_APPLICATION: &[u8] = b"eidgate-key-retirement";

/// `CKA_APPLICATION` of the data objects that record when a key was published and when it
/// becomes active: value `"<published> <active>"`, Unix seconds in ASCII decimal.
pub(super) const ACTIVATION_APPLICATION: &[u8] = b"eidgate-key-activation";

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
/// object (same label and `CKA_ID`) and the activation and retirement records.
pub(super) fn read_keys(session: &Session) -> Result<Vec<RawKey>, OpError> {
    let retirements = read_records(session, RETIREMENT_APPLICATION)?;
    let activations = read_records(session, ACTIVATION_APPLICATION)?;
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
            let record = |records: &[(String, Vec<OffsetDateTime>)]| {
                records
                    .iter()
                    .find(|(l, _)| *l == label)
                    .map(|(_, times)| times.clone())
                    .unwrap_or_default()
            };
            let retired_at = record(&retirements).first().copied();
            let (published_at, active_at) = match record(&activations)[..] {
                [published, active] => (Some(published), Some(active)),
                _ => (None, None),
            };
            keys.push(RawKey {
                label,
                kind,
                generation,
                id,
                public,
                published_at,
                active_at,
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

/// Records of `application`: `CKO_DATA` objects, label = key label, value = Unix seconds
/// in ASCII decimal, separated by spaces. A record that does not parse is ignored (with a
/// warning), as if it were not there.
fn read_records(session: &Session, application: &[u8]) -> Result<Vec<(String, Vec<OffsetDateTime>)>, OpError> {
    let mut records = Vec::new();
    for handle in session.find_objects(&record_template(application, None))? {
        let attributes = session.get_attributes(handle, &[AttributeType::Label, AttributeType::Value])?;
        let label = attribute_bytes(&attributes, AttributeType::Label).and_then(|l| String::from_utf8(l).ok());
        let times = attribute_bytes(&attributes, AttributeType::Value)
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| {
                v.split(' ')
                    .map(|secs| {
                        secs.parse::<i64>()
                            .ok()
                            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                    })
                    .collect::<Option<Vec<_>>>()
            });
        match (label, times) {
            (Some(label), Some(times)) => records.push((label, times)),
            (label, _) => tracing::warn!(key = ?label, "unreadable HSM key record ignored"),
        }
    }
    Ok(records)
}

pub(super) fn record_template(application: &[u8], label: Option<&str>) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Token(true),
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(application.to_vec()),
    ];
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    template
}
