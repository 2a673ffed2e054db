//! [`ConfigError`]: why the configuration was refused (the server does not start).

use std::path::PathBuf;

/// Configuration errors: the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// File could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// TOML does not parse or has unknown keys.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("invalid config value {key}: {why}")]
    Invalid {
        /// Key.
        key: &'static str,
        /// Why.
        why: String,
    },
}
