//! `[terms]`: the versions of the terms of use and the security advice in force (R-REG-1),
//! and their texts per language (`terms/{lang}/{document}-{version}.txt`, compiled in):
//! the activation page shows them and links to their own address.

use serde::Deserialize;

use super::ConfigError;

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

/// Every text: (language, file name, text).
const TEXTS: [(&str, &str, &str); 6] = [
    (
        "en",
        "terms-2026-11.txt",
        include_str!("../../terms/en/terms-2026-11.txt"),
    ),
    (
        "en",
        "security-advice-2026-11.txt",
        include_str!("../../terms/en/security-advice-2026-11.txt"),
    ),
    (
        "lt",
        "terms-2026-11.txt",
        include_str!("../../terms/lt/terms-2026-11.txt"),
    ),
    (
        "lt",
        "security-advice-2026-11.txt",
        include_str!("../../terms/lt/security-advice-2026-11.txt"),
    ),
    (
        "lv",
        "terms-2026-11.txt",
        include_str!("../../terms/lv/terms-2026-11.txt"),
    ),
    (
        "lv",
        "security-advice-2026-11.txt",
        include_str!("../../terms/lv/security-advice-2026-11.txt"),
    ),
];

/// The text `file` (`terms-2026-11.txt`) in the language `lang` (`en`, `lt`, `lv`).
pub fn text(lang: &str, file: &str) -> Option<&'static str> {
    TEXTS
        .iter()
        .find(|(l, name, _)| *l == lang && *name == file)
        .map(|(_, _, text)| *text)
}

impl TermsConfig {
    /// Holders accept only what they can read: both versions need their text in every
    /// language the pages speak.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, file) in [
            ("terms.terms_version", format!("terms-{}.txt", self.terms_version)),
            (
                "terms.security_advice_version",
                format!("security-advice-{}.txt", self.security_advice_version),
            ),
        ] {
            if super::ui::LANGUAGES.iter().any(|lang| text(lang, &file).is_none()) {
                return Err(ConfigError::Invalid {
                    key,
                    why: format!("no text {file} in terms/{{en,lt,lv}}/ (the texts are compiled in)"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The versions in force by default have a text in every language; others are refused.
    #[test]
    fn r_reg_1_default_terms_are_readable_in_every_language() {
        let terms = TermsConfig::default();
        assert!(terms.validate().is_ok());
        for lang in super::super::ui::LANGUAGES {
            assert!(text(lang, "terms-2026-11.txt").is_some_and(|t| t.len() > 400), "{lang}");
        }
        let unknown = TermsConfig {
            terms_version: "1999-01".into(),
            ..TermsConfig::default()
        };
        assert!(unknown.validate().is_err());
    }
}
