//! The authoritative person register (R-RENEW-2): a renewal at high that rests on a
//! valid means checks the holder's identity data again against it, and a mismatch stops
//! the renewal. The port is [`IdentityRegistry`]; the adapter is [`HttpRegistry`], a JSON
//! client of `GET {url}/persons/{country}/{code}` answering
//! `{"given_name", "family_name", "birthdate"}` (404 when the register has no such person).
//!
//! Fails closed: an unreachable or garbled register stops the renewal with 503, never
//! lets it through unchecked.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::config::RegistryConfig;
use crate::domain::ids::PersonIdentifier;
use crate::domain::person::NaturalPerson;

/// What the register holds about a person (the fields compared).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RegistryRecord {
    /// Current given name(s).
    pub given_name: String,
    /// Current family name.
    pub family_name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birthdate: String,
}

/// Why the register could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No `[registry] url` is configured.
    #[error("no identity register is configured")]
    NotConfigured,
    /// Unreachable, timed out, or an answer that does not parse.
    #[error("identity register unavailable: {0}")]
    Unavailable(String),
}

/// The port: looks a person up by national identifier.
#[async_trait]
pub trait IdentityRegistry: Send + Sync {
    /// The register's record, `None` when it has none.
    async fn lookup(&self, identifier: &PersonIdentifier) -> Result<Option<RegistryRecord>, RegistryError>;
}

/// The HTTP JSON adapter.
pub struct HttpRegistry {
    client: reqwest::Client,
    base: url::Url,
}

impl HttpRegistry {
    /// From `[registry]`; `NotConfigured` without a URL.
    pub fn from_config(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let url = config.url.as_deref().ok_or(RegistryError::NotConfigured)?;
        let base = url::Url::parse(url).map_err(|e| RegistryError::Unavailable(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout.max(Duration::from_millis(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
        Ok(Self { client, base })
    }
}

#[async_trait]
impl IdentityRegistry for HttpRegistry {
    async fn lookup(&self, identifier: &PersonIdentifier) -> Result<Option<RegistryRecord>, RegistryError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| RegistryError::Unavailable("the registry url cannot take a path".into()))?
            .pop_if_empty()
            .extend(["persons", identifier.country(), identifier.code()]);
        let unavailable = |e: reqwest::Error| RegistryError::Unavailable(e.without_url().to_string());
        let response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unavailable)?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 => {
                let body = response.bytes().await.map_err(unavailable)?;
                serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| RegistryError::Unavailable(format!("unexpected answer: {e}")))
            }
            other => Err(RegistryError::Unavailable(format!("status {other}"))),
        }
    }
}

/// The fields in which `person` differs from the register (empty: they agree). Names are
/// compared without surrounding spaces and case; a person the register does not know
/// differs in everything.
pub async fn differences(
    registry: &dyn IdentityRegistry,
    person: &NaturalPerson,
) -> Result<Vec<&'static str>, RegistryError> {
    let Some(record) = registry.lookup(&person.identifier).await? else {
        return Ok(vec!["identifier"]);
    };
    let same = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
    let mut differ = Vec::new();
    if !same(&record.given_name, &person.given_name) {
        differ.push("given_name");
    }
    if !same(&record.family_name, &person.family_name) {
        differ.push("family_name");
    }
    if record.birthdate.trim() != person.birthdate {
        differ.push("birthdate");
    }
    Ok(differ)
}
