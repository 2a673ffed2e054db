//! `sub` per client: public (the eIDAS person identifier as that client sees it) or
//! pairwise per sector (OIDC Core §8.1), stable across logins and different across
//! sectors.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::domain::client::{Client, SubjectType};
use crate::domain::person::NaturalPerson;

/// The subject identifier of `person` for `client`; `own_country` is the provider's.
pub fn subject(client: &Client, person: &NaturalPerson, own_country: &str) -> String {
    match client.subject_type() {
        SubjectType::Public => person
            .identifier
            .eidas_form(client.country.as_deref().unwrap_or(own_country)),
        SubjectType::Pairwise => {
            let sector = sector(client);
            // Person ids are random UUIDs that never leave the provider, so the hash
            // cannot be inverted or linked across sectors without them.
            let digest = Sha256::new()
                .chain_update(b"eidgate-pairwise-v1\0")
                .chain_update(sector.as_bytes())
                .chain_update(b"\0")
                .chain_update(person.id.0.as_bytes())
                .finalize();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        }
    }
}

/// The sector: the configured sector identifier, else the host of the first redirect URI.
pub fn sector(client: &Client) -> String {
    if let Some(s) = &client.sector_identifier {
        return s.clone();
    }
    client
        .redirect_uris
        .first()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| client.client_id.to_string())
}
