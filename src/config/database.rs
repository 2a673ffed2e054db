//! `[database]`: the durable store (SQLite or PostgreSQL), and URL redaction for display.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::durations::duration;

/// Durable store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://{data_dir}/eidgate.db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long a cached client registration or means status may be served without
    /// asking the database again (changes made through eidgate invalidate at once).
    #[serde(deserialize_with = "duration")]
    pub cache_ttl: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            cache_ttl: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

/// Removes the password of a URL for display.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable url)".into(),
    }
}
