//! `[ui]`: what the citizen-facing pages show (issue 24): the service's name and the
//! language of a visitor whose browser asks for none the pages speak.

use serde::Deserialize;

use super::ConfigError;

/// The languages the pages and their message catalogues are written in.
pub const LANGUAGES: [&str; 3] = ["en", "lt", "lv"];

/// Settings of the login, activation, account and error pages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// The provider's name as the pages show it (titles, "Log in to … with …").
    pub service_name: String,
    /// The language when neither `ui_locales`, the visitor's choice nor
    /// `Accept-Language` names one of [`LANGUAGES`].
    pub default_language: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            service_name: "eidgate".into(),
            default_language: "en".into(),
        }
    }
}

impl UiConfig {
    /// A service name of 1 to 80 characters; a language the pages speak.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = self.service_name.trim();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(ConfigError::Invalid {
                key: "ui.service_name",
                why: "1 to 80 characters".into(),
            });
        }
        if !LANGUAGES.contains(&self.default_language.as_str()) {
            return Err(ConfigError::Invalid {
                key: "ui.default_language",
                why: "one of en, lt, lv".into(),
            });
        }
        Ok(())
    }
}
