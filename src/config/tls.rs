//! `[tls]`: how the listener does TLS (dev certificate, files, or off behind a proxy).

use std::path::PathBuf;

use serde::Deserialize;

/// TLS mode.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `dev`, `files` or `off`.
    pub mode: TlsMode,
    /// PEM certificate chain (mode `files`).
    pub cert: Option<PathBuf>,
    /// PEM private key (mode `files`).
    pub key: Option<PathBuf>,
}

/// How the listener does TLS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// A certificate generated on first start under the data dir.
    #[default]
    Dev,
    /// Certificate and key files.
    Files,
    /// Plain HTTP behind a TLS-terminating proxy (logs a warning).
    Off,
}
