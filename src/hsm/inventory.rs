//! The key inventory and key rollover (R-AUTH-6, issue 24): which key of a kind signs at a
//! given moment, which keys are published, and the pre-serialised JWKS.
//!
//! A rotation writes, in the token, when the new key was published and when it becomes
//! active (`hsm.publish_ahead` later, or at once with `hsm rotate --now`), and records that
//! moment as the retirement of the keys it replaces. Every instance and every process
//! reads the same records and decides from them and its own clock: the active key of a
//! kind is the highest generation whose activation time has come (a key without a record,
//! such as the first one, is active from the start). The inventory is read from the token
//! every `hsm.key_refresh`, but the choice is made again at each signature from the times
//! already in memory, so a key becomes active at its time even between refreshes, without
//! a PKCS#11 call.
//!
//! A key that is not yet active is published at once; a key replaced by another stays
//! published for `hsm.retired_key_publish` after its successor became active (so every
//! token it signed has expired), then is retired: kept in the token, never used to sign.

use std::time::Duration;

use time::OffsetDateTime;

use super::keys::{jwk_set_json, KeyKind, PublicKey};
use super::Kid;

/// Where a key is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published ahead of its activation time: in the JWKS, not yet used to sign.
    Pending,
    /// The key new signatures of its kind use.
    Active,
    /// Replaced but still in the JWKS so tokens it signed keep verifying.
    Published,
    /// Replaced and no longer published (kept in the token, never used to sign).
    Retired,
}

impl KeyState {
    /// Lower-case name for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Published => "published",
            KeyState::Retired => "retired",
        }
    }
}

/// A key as listed by `eidgate hsm list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// Token object label (`oidc-sign-2`).
    pub label: String,
    /// Kind.
    pub kind: KeyKind,
    /// Generation number from the label.
    pub generation: u32,
    /// JWK thumbprint; `None` for secret (AES) keys.
    pub kid: Option<Kid>,
    /// Algorithms the key serves.
    pub algorithm: &'static str,
    /// Pending, active, published or retired, as of the moment of the listing.
    pub state: KeyState,
    /// When `hsm rotate` made (and published) it; `None` for keys made by `open` or by
    /// other tools.
    pub published_at: Option<OffsetDateTime>,
    /// When it starts (or started) signing; `None` means from the start.
    pub active_at: Option<OffsetDateTime>,
    /// When a successor takes (or took) over; `None` while no successor is scheduled (and
    /// for keys rotated by other tools, which stay published since the time is unknown).
    pub retired_at: Option<OffsetDateTime>,
    /// When it leaves the JWKS (`retired_at` + `hsm.retired_key_publish`); JWKS kinds only.
    pub unpublished_at: Option<OffsetDateTime>,
}

/// A key as found in the token, with the records `rotate` wrote about it.
#[derive(Clone, Debug)]
pub(crate) struct RawKey {
    pub label: String,
    pub kind: KeyKind,
    pub generation: u32,
    /// `CKA_ID` shared by the private and public objects of a pair.
    pub id: Vec<u8>,
    /// `None` for secret keys (and for a pair whose public object is missing).
    pub public: Option<PublicKey>,
    /// From the activation record: when it was published.
    pub published_at: Option<OffsetDateTime>,
    /// From the activation record: when it starts signing.
    pub active_at: Option<OffsetDateTime>,
    /// From the retirement record.
    pub retired_at: Option<OffsetDateTime>,
}

/// A key of the inventory: what is listed plus what the signer needs to find it.
#[derive(Clone, Debug)]
pub(crate) struct KeyEntry {
    pub label: String,
    pub kind: KeyKind,
    pub generation: u32,
    pub kid: Option<Kid>,
    pub id: Vec<u8>,
    pub public: Option<PublicKey>,
    published_at: Option<OffsetDateTime>,
    active_at: Option<OffsetDateTime>,
    /// `active_at` in Unix seconds, compared at each signature (`i64::MIN` = always).
    active_from: i64,
    retired_at: Option<OffsetDateTime>,
}

/// The keys of one token as last read, with their schedules.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inventory {
    /// Sorted by kind, then generation descending.
    entries: Vec<KeyEntry>,
    /// `hsm.retired_key_publish`.
    publish: time::Duration,
    /// The JWKS as of the build.
    jwks: Vec<u8>,
}

impl Inventory {
    /// Sorts the keys and serialises the JWKS as of `now` (Unix seconds): pending, active
    /// and published keys of the JWKS kinds. Keys that become active later are already in
    /// it; keys whose publication ends later leave it at a later build.
    pub fn build(mut raw: Vec<RawKey>, now: i64, publish: Duration) -> Inventory {
        raw.sort_by(|a, b| a.kind.cmp(&b.kind).then(b.generation.cmp(&a.generation)));
        let entries = raw
            .into_iter()
            .map(|key| KeyEntry {
                kid: key.public.as_ref().map(PublicKey::thumbprint),
                active_from: key.active_at.map_or(i64::MIN, OffsetDateTime::unix_timestamp),
                label: key.label,
                kind: key.kind,
                generation: key.generation,
                id: key.id,
                public: key.public,
                published_at: key.published_at,
                active_at: key.active_at,
                retired_at: key.retired_at,
            })
            .collect();
        let mut inventory = Inventory {
            entries,
            publish: time::Duration::try_from(publish).unwrap_or(time::Duration::MAX),
            jwks: Vec::new(),
        };
        inventory.jwks = inventory.serialise_jwks(now);
        inventory
    }

    /// The key of `kind` that signs at `now` (Unix seconds): the highest generation whose
    /// activation time has come. A scan of a few entries, no allocation.
    pub fn active(&self, kind: KeyKind, now: i64) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.kind == kind && e.active_from <= now)
    }

    /// The key labelled `label`, whatever its state (retired `data-wrap` keys still open
    /// what they sealed).
    pub fn find(&self, label: &str) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.label == label)
    }

    /// `(kid, public key)` of every key of `kind` that has a public key, highest
    /// generation first.
    pub fn public_keys(&self, kind: KeyKind) -> Vec<(Kid, PublicKey)> {
        self.entries
            .iter()
            .filter(|e| e.kind == kind)
            .filter_map(|e| Some((e.kid.clone()?, e.public.clone()?)))
            .collect()
    }

    /// Every key with its state at `now` (Unix seconds), for listings.
    pub fn infos(&self, now: i64) -> Vec<KeyInfo> {
        self.entries.iter().map(|e| self.info(e, now)).collect()
    }

    /// The JWKS serialised at the build.
    pub fn jwks_json(&self) -> &[u8] {
        &self.jwks
    }

    fn state(&self, entry: &KeyEntry, now: i64) -> KeyState {
        let Some(active) = self.active(entry.kind, now) else {
            return KeyState::Pending;
        };
        match entry.generation.cmp(&active.generation) {
            std::cmp::Ordering::Greater => KeyState::Pending,
            std::cmp::Ordering::Equal => KeyState::Active,
            std::cmp::Ordering::Less => {
                let still_published = self
                    .unpublished_at(entry)
                    .is_none_or(|until| now < until.unix_timestamp());
                if entry.kind.in_jwks() && entry.public.is_some() && still_published {
                    KeyState::Published
                } else {
                    KeyState::Retired
                }
            }
        }
    }

    /// `None` while no successor is scheduled (or when the window does not end).
    fn unpublished_at(&self, entry: &KeyEntry) -> Option<OffsetDateTime> {
        entry.retired_at?.checked_add(self.publish)
    }

    fn info(&self, entry: &KeyEntry, now: i64) -> KeyInfo {
        KeyInfo {
            label: entry.label.clone(),
            kind: entry.kind,
            generation: entry.generation,
            kid: entry.kid.clone(),
            algorithm: entry.kind.algorithm(),
            state: self.state(entry, now),
            published_at: entry.published_at,
            active_at: entry.active_at,
            retired_at: entry.retired_at,
            unpublished_at: entry.kind.in_jwks().then(|| self.unpublished_at(entry)).flatten(),
        }
    }

    /// EC keys carry `alg: ES256`; RSA keys carry no `alg` since they serve RS256 and PS256.
    fn serialise_jwks(&self, now: i64) -> Vec<u8> {
        let published = self.entries.iter().filter(|e| {
            e.kind.in_jwks()
                && matches!(
                    self.state(e, now),
                    KeyState::Pending | KeyState::Active | KeyState::Published
                )
        });
        jwk_set_json(published.filter_map(|e| {
            let alg = match e.kind {
                KeyKind::OidcEc => Some("ES256"),
                _ => None,
            };
            Some((e.kid.as_ref()?, e.public.as_ref()?, alg))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::keys::KeyMaterial;

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;

    fn at(secs: i64) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(secs).ok()
    }

    fn raw(kind: KeyKind, generation: u32, active_at: Option<i64>, retired_at: Option<i64>) -> RawKey {
        let public = match kind.material() {
            KeyMaterial::Ec(curve) => Some(PublicKey::Ec {
                curve,
                x: vec![generation as u8; curve.coordinate_len()],
                y: vec![1; curve.coordinate_len()],
            }),
            KeyMaterial::Rsa3072 => Some(PublicKey::Rsa {
                modulus: vec![generation as u8 | 0x80; 384],
                exponent: vec![1, 0, 1],
            }),
            KeyMaterial::Aes256 => None,
        };
        RawKey {
            label: kind.label(generation),
            kind,
            generation,
            id: vec![generation as u8],
            public,
            published_at: active_at.and_then(|t| at(t - HOUR)),
            active_at: active_at.and_then(at),
            retired_at: retired_at.and_then(at),
        }
    }

    fn states(inventory: &Inventory, now: i64) -> Vec<(String, KeyState)> {
        inventory.infos(now).into_iter().map(|i| (i.label, i.state)).collect()
    }

    fn jwks_kids(inventory: &Inventory) -> Vec<String> {
        let jwks: serde_json::Value = serde_json::from_slice(inventory.jwks_json()).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    fn kid(inventory: &Inventory, label: &str) -> String {
        inventory.find(label).unwrap().kid.clone().unwrap().0
    }

    #[test]
    fn r_auth_6_highest_generation_is_active_and_retired_keys_drop_out_after_the_window() {
        let inventory = Inventory::build(
            vec![
                raw(KeyKind::OidcEc, 1, None, Some(NOW - 3 * HOUR)),
                raw(KeyKind::OidcEc, 3, None, None),
                raw(KeyKind::OidcEc, 2, None, Some(NOW - 600)),
                raw(KeyKind::OidcRsa, 1, None, None),
                raw(KeyKind::DataWrap, 1, None, Some(NOW - 600)),
                raw(KeyKind::DataWrap, 2, None, None),
            ],
            NOW,
            Duration::from_secs(3600),
        );
        assert_eq!(
            states(&inventory, NOW),
            vec![
                ("data-wrap-2".into(), KeyState::Active),
                ("data-wrap-1".into(), KeyState::Retired),
                ("oidc-sign-3".into(), KeyState::Active),
                ("oidc-sign-2".into(), KeyState::Published),
                ("oidc-sign-1".into(), KeyState::Retired),
                ("oidc-sign-rsa-1".into(), KeyState::Active),
            ]
        );
        assert_eq!(inventory.active(KeyKind::OidcEc, NOW).unwrap().label, "oidc-sign-3");
        let jwks: serde_json::Value = serde_json::from_slice(inventory.jwks_json()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[0]["alg"], "ES256");
        assert_eq!(keys[0]["crv"], "P-256");
        assert_eq!(keys[2]["kty"], "RSA");
        assert!(keys[2].get("alg").is_none());
        assert_eq!(keys[2]["e"], "AQAB");
        assert!(keys.iter().all(|k| k["use"] == "sig" && k["kid"].is_string()));
    }

    #[test]
    fn r_auth_6_issue_24_a_key_is_published_before_it_signs_and_active_from_its_time() {
        // Rotated at NOW with a publish_ahead of one hour: key 2 active at NOW + 1 h, key 1
        // retired at the same moment.
        let activation = NOW + HOUR;
        let inventory = Inventory::build(
            vec![
                raw(KeyKind::OidcEc, 1, None, Some(activation)),
                raw(KeyKind::OidcEc, 2, Some(activation), None),
            ],
            NOW,
            Duration::from_secs(24 * 3600),
        );
        // Published at once, both keys.
        assert_eq!(
            jwks_kids(&inventory),
            vec![kid(&inventory, "oidc-sign-2"), kid(&inventory, "oidc-sign-1")]
        );
        // The old key signs until the activation time, to the second, then the new one:
        // decided from the times in memory, without a new build.
        for now in [NOW, activation - 1] {
            assert_eq!(inventory.active(KeyKind::OidcEc, now).unwrap().label, "oidc-sign-1");
            assert_eq!(
                states(&inventory, now),
                vec![
                    ("oidc-sign-2".into(), KeyState::Pending),
                    ("oidc-sign-1".into(), KeyState::Active)
                ]
            );
        }
        for now in [activation, activation + 23 * HOUR] {
            assert_eq!(inventory.active(KeyKind::OidcEc, now).unwrap().label, "oidc-sign-2");
            assert_eq!(
                states(&inventory, now),
                vec![
                    ("oidc-sign-2".into(), KeyState::Active),
                    ("oidc-sign-1".into(), KeyState::Published)
                ]
            );
        }
        // Retirement counts from the activation of the successor, not from the rotation.
        let old = inventory
            .infos(NOW)
            .into_iter()
            .find(|i| i.label == "oidc-sign-1")
            .unwrap();
        assert_eq!(old.retired_at, at(activation));
        assert_eq!(old.unpublished_at, at(activation + 24 * HOUR));
        assert_eq!(
            states(&inventory, activation + 24 * HOUR)[1],
            ("oidc-sign-1".into(), KeyState::Retired)
        );
        let later = Inventory::build(
            vec![
                raw(KeyKind::OidcEc, 1, None, Some(activation)),
                raw(KeyKind::OidcEc, 2, Some(activation), None),
            ],
            activation + 24 * HOUR,
            Duration::from_secs(24 * 3600),
        );
        assert_eq!(jwks_kids(&later), vec![kid(&later, "oidc-sign-2")]);
    }

    #[test]
    fn r_auth_6_issue_24_an_active_key_is_never_unpublished_while_its_successor_waits() {
        // Key 1's retirement record says NOW - 2 h (a rotation whose successor never came,
        // or came later); with a zero publication window it still signs and is published
        // as long as it is the active one.
        let inventory = Inventory::build(
            vec![
                raw(KeyKind::OidcEc, 1, None, Some(NOW - 2 * HOUR)),
                raw(KeyKind::OidcEc, 2, Some(NOW + HOUR), None),
            ],
            NOW,
            Duration::ZERO,
        );
        assert_eq!(inventory.active(KeyKind::OidcEc, NOW).unwrap().label, "oidc-sign-1");
        assert_eq!(jwks_kids(&inventory).len(), 2);
    }

    #[test]
    fn r_auth_6_issue_24_the_highest_due_generation_wins_and_later_ones_wait() {
        // Key 2 scheduled at NOW + 1 h, then `rotate --now` made key 3 active at NOW; a key 4
        // scheduled at NOW + 2 h waits.
        let inventory = Inventory::build(
            vec![
                raw(KeyKind::OidcEc, 1, None, Some(NOW)),
                raw(KeyKind::OidcEc, 2, Some(NOW + HOUR), Some(NOW)),
                raw(KeyKind::OidcEc, 3, Some(NOW), Some(NOW + 2 * HOUR)),
                raw(KeyKind::OidcEc, 4, Some(NOW + 2 * HOUR), None),
            ],
            NOW,
            Duration::from_secs(3600),
        );
        assert!(inventory
            .active(KeyKind::OidcEc, NOW - 1)
            .is_some_and(|e| e.label == "oidc-sign-1"));
        assert!(inventory
            .active(KeyKind::OidcEc, NOW)
            .is_some_and(|e| e.label == "oidc-sign-3"));
        assert!(inventory
            .active(KeyKind::OidcEc, NOW + HOUR)
            .is_some_and(|e| e.label == "oidc-sign-3"));
        assert!(inventory
            .active(KeyKind::OidcEc, NOW + 2 * HOUR)
            .is_some_and(|e| e.label == "oidc-sign-4"));
        assert_eq!(
            states(&inventory, NOW)
                .into_iter()
                .map(|(_, state)| state)
                .collect::<Vec<_>>(),
            vec![
                KeyState::Pending,
                KeyState::Active,
                KeyState::Published,
                KeyState::Published
            ]
        );
        // A kind whose every key waits has no active key: signing fails closed.
        let waiting = Inventory::build(vec![raw(KeyKind::OidcRsa, 1, Some(NOW + 1), None)], NOW, Duration::ZERO);
        assert!(waiting.active(KeyKind::OidcRsa, NOW).is_none());
        assert_eq!(
            states(&waiting, NOW),
            vec![("oidc-sign-rsa-1".into(), KeyState::Pending)]
        );
    }
}
