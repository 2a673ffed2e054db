//! The delivery port (R-ISS-1, R-ISS-2; DESIGN "Contracts added in the second round"): an
//! approved means' activation code and revocation secret go to the holder, never to the
//! approving officer, as two messages on two channels where the person has two contact
//! points (registered `email`, `phone`, postal `address`).
//!
//! Adapters, chosen in `[delivery]`:
//! - `outbox` (embedded default): `{data_dir}/outbox/`, one JSON file per message, mode
//!   0600, fields `means`, `kind`, `secret`, `channel`, `to`, `created`; a mail room or a
//!   separate process hands them on.
//! - `gateways` (production): `email` by SMTP ([`smtp`], the `lettre` crate over rustls),
//!   `sms` and `post` by an HTTP webhook of an SMS or registered-mail gateway ([`webhook`]).
//!
//! Messages carry a secret: they never print (`Debug` redacts), and the audit records only
//! the kind and channel of each message.

pub mod smtp;
pub mod webhook;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub use crate::config::delivery::{DeliveryAdapter, DeliveryConfig};

use crate::domain::ids::MeansId;
use crate::domain::person::NaturalPerson;
use crate::domain::secret::Password;
use crate::domain::UnixTime;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// The one-time code that starts the holder's activation (R-ISS-2).
    ActivationCode,
    /// The secret the holder quotes to the helpdesk to suspend or revoke (R-LIFE-2).
    RevocationSecret,
}

impl SecretKind {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::ActivationCode => "activation_code",
            SecretKind::RevocationSecret => "revocation_secret",
        }
    }
}

/// A contact channel of a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The registered e-mail address.
    Email,
    /// The registered phone number (SMS).
    Sms,
    /// The registered postal address (registered mail).
    Post,
}

impl Channel {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Post => "post",
        }
    }
}

/// One message to the holder.
#[derive(Clone)]
pub struct Message {
    /// The means it belongs to.
    pub means: MeansId,
    /// What it carries.
    pub kind: SecretKind,
    /// The secret itself.
    pub secret: Password,
    /// How it travels.
    pub channel: Channel,
    /// The contact point (address, number, postal address).
    pub to: String,
    /// When it was made (UTC seconds).
    pub created: UnixTime,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("means", &self.means)
            .field("kind", &self.kind)
            .field("secret", &self.secret)
            .field("channel", &self.channel)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl Message {
    /// The JSON form (outbox file, webhook body). Contains the secret.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "means": self.means,
            "kind": self.kind.as_str(),
            "secret": self.secret.expose(),
            "channel": self.channel.as_str(),
            "to": self.to,
            "created": self.created,
        })
    }
}

/// The kind and channel of a delivered message: what the approve answer and the audit
/// show (never the secret nor the contact point).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// `activation_code` or `revocation_secret`.
    pub kind: SecretKind,
    /// `email`, `sms` or `post`.
    pub channel: Channel,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The person has no contact point to deliver to.
    #[error("the holder has no registered contact point (email, phone or address)")]
    NoContact,
    /// The channel has no adapter configured.
    #[error("no delivery adapter is configured for the {0} channel")]
    NoAdapter(&'static str),
    /// The adapter failed (nothing is known to have reached the holder).
    #[error("delivery failed: {0}")]
    Failed(String),
}

/// The contact points of `person`, in the order activation codes prefer them (fast
/// channels first; the revocation secret takes the last one).
pub fn contacts(person: &NaturalPerson) -> Vec<(Channel, String)> {
    let a = &person.attributes;
    let mut out = Vec::new();
    if let Some(email) = a.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        out.push((Channel::Email, email.to_owned()));
    }
    if let Some(phone) = a.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        out.push((Channel::Sms, phone.to_owned()));
    }
    if let Some(address) = a.address.as_ref().and_then(postal) {
        out.push((Channel::Post, address));
    }
    out
}

/// A postal address as one line: the OIDC `formatted` member, else the other members.
fn postal(address: &Value) -> Option<String> {
    let text = match address {
        Value::String(s) => s.trim().to_owned(),
        Value::Object(m) => match m.get("formatted").and_then(Value::as_str) {
            Some(f) => f.trim().to_owned(),
            None => ["street_address", "postal_code", "locality", "region", "country"]
                .iter()
                .filter_map(|k| m.get(*k).and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
        },
        _ => String::new(),
    };
    (!text.is_empty()).then_some(text)
}

/// The two messages of an approval: the activation code on the first contact point, the
/// revocation secret on the last (two channels when the person has two contact points).
pub fn plan(
    person: &NaturalPerson,
    means: MeansId,
    activation_code: &str,
    revocation_secret: &str,
    now: UnixTime,
) -> Result<[Message; 2], DeliveryError> {
    let points = contacts(person);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Err(DeliveryError::NoContact);
    };
    let message = |kind, secret: &str, (channel, to): &(Channel, String)| Message {
        means,
        kind,
        secret: Password::new(secret.to_owned()),
        channel: *channel,
        to: to.clone(),
        created: now,
    };
    Ok([
        message(SecretKind::ActivationCode, activation_code, first),
        message(SecretKind::RevocationSecret, revocation_secret, last),
    ])
}

/// Sends `message` through the adapter `config` chooses for its channel.
pub async fn send(config: &DeliveryConfig, data_dir: &Path, message: &Message) -> Result<(), DeliveryError> {
    match (config.adapter, message.channel) {
        (DeliveryAdapter::Outbox, _) => write_outbox(&outbox_dir(config, data_dir), message).await,
        (DeliveryAdapter::Gateways, Channel::Email) => match &config.smtp {
            Some(smtp) => smtp::send(smtp, message).await,
            None => match &config.webhook {
                Some(hook) => webhook::send(hook, message).await,
                None => Err(DeliveryError::NoAdapter("email")),
            },
        },
        (DeliveryAdapter::Gateways, channel) => match &config.webhook {
            Some(hook) => webhook::send(hook, message).await,
            None => Err(DeliveryError::NoAdapter(channel.as_str())),
        },
    }
}

/// The outbox directory: `[delivery] outbox`, else `{data_dir}/outbox`.
pub fn outbox_dir(config: &DeliveryConfig, data_dir: &Path) -> PathBuf {
    config.outbox.clone().unwrap_or_else(|| data_dir.join("outbox"))
}

/// Writes one message as `{created}-{means}-{kind}-{random}.json`, mode 0600, in a
/// directory of mode 0700; the file is new (never overwrites) and complete when renamed
/// into place.
async fn write_outbox(dir: &Path, message: &Message) -> Result<(), DeliveryError> {
    let dir = dir.to_owned();
    let text = zeroize::Zeroizing::new(message.to_json().to_string());
    let name = format!(
        "{}-{}-{}-{}.json",
        message.created,
        message.means,
        message.kind.as_str(),
        &crate::random::token()[..8]
    );
    tokio::task::spawn_blocking(move || write_private(&dir, &name, text.as_bytes()))
        .await
        .map_err(|e| DeliveryError::Failed(format!("outbox writer: {e}")))?
        .map_err(|e| DeliveryError::Failed(format!("outbox: {e}")))
}

fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::ids::PersonId;
    use crate::domain::loa::Loa;
    use crate::domain::person::OptionalAttributes;

    fn person(attributes: OptionalAttributes) -> NaturalPerson {
        NaturalPerson {
            id: PersonId::new(),
            identifier: "LT/LT/39001010099".parse().unwrap(),
            given_name: "Ona".into(),
            family_name: "Onaitė".into(),
            birthdate: "1990-01-01".into(),
            proofing_loa: Loa::High,
            attributes,
        }
    }

    #[test]
    fn r_iss_1_two_contact_points_give_two_channels_and_none_refuses() {
        let two = person(OptionalAttributes {
            email: Some("ona@example.org".into()),
            address: Some(serde_json::json!({"street_address": "Gedimino pr. 1", "locality": "Vilnius"})),
            ..Default::default()
        });
        let [code, secret] = plan(&two, MeansId::new(), "AAAA-BBBB", "CCCC-DDDD", 5).unwrap();
        assert_eq!((code.channel, code.kind), (Channel::Email, SecretKind::ActivationCode));
        assert_eq!(
            (secret.channel, secret.kind),
            (Channel::Post, SecretKind::RevocationSecret)
        );
        assert_eq!(secret.to, "Gedimino pr. 1, Vilnius");
        assert!(!format!("{code:?}").contains("AAAA"));
        assert!(matches!(
            plan(&person(OptionalAttributes::default()), MeansId::new(), "a", "b", 5),
            Err(DeliveryError::NoContact)
        ));
    }
}
