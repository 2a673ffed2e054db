//! `[terms]`: the versions of the terms of use and the security advice in force (R-REG-1).

use serde::Deserialize;

/// The versions of the terms of use and the security advice in force; a holder accepts
/// exactly these at activation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TermsConfig {
    /// Terms of use version.
    pub terms_version: String,
    /// Security advice version.
    pub security_advice_version: String,
}

impl Default for TermsConfig {
    fn default() -> Self {
        Self {
            terms_version: "2026-11".into(),
            security_advice_version: "2026-11".into(),
        }
    }
}
