//! `[ephemeral]`: the short-lived store (in memory or Redis).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::database::redact_url;
use super::durations::duration;

/// Short-lived store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EphemeralConfig {
    /// `memory` or `redis://...` (also `redis+unix://`).
    pub url: String,
    /// Prefix of every Redis key and of the event channel (several deployments may
    /// share one Redis).
    pub prefix: String,
    /// Deadline of one Redis command; past it the request fails closed (503).
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Start even though Redis' `maxmemory-policy` is not `noeviction` (or cannot be read).
    /// Off by default: under memory pressure Redis would evict security state.
    pub allow_eviction: bool,
    /// Login flows the in-memory store holds at once (all addresses together); beyond it
    /// `/authorize` answers 429. Nothing else is ever evicted to make room.
    pub memory_flows: usize,
    /// Entries of every kind (codes, flows, tokens, counters) the in-memory store holds at
    /// once; beyond it a new entry is refused and the request fails closed (503, logged).
    /// Status-change markers are stored even then.
    pub memory_entries: usize,
}

impl Default for EphemeralConfig {
    fn default() -> Self {
        Self {
            url: "memory".into(),
            prefix: "eidgate:".into(),
            timeout: Duration::from_millis(500),
            allow_eviction: false,
            memory_flows: crate::ephemeral::memory::DEFAULT_BOUNDED_CAP,
            memory_entries: crate::ephemeral::memory::DEFAULT_MAX_ENTRIES,
        }
    }
}

impl fmt::Debug for EphemeralConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = if self.url == "memory" {
            self.url.clone()
        } else {
            redact_url(&self.url)
        };
        f.debug_struct("EphemeralConfig")
            .field("url", &url)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("allow_eviction", &self.allow_eviction)
            .field("memory_flows", &self.memory_flows)
            .field("memory_entries", &self.memory_entries)
            .finish()
    }
}
