//! The texts of the terms of use and the security advice, per language and version
//! (`terms/{lang}/{document}-{version}.txt`, compiled in). `[terms]` names the versions in
//! force; the activation page shows those texts and links to their own address.

use super::i18n::Lang;

/// Every text: (language, file name, text).
pub const TEXTS: [(Lang, &str, &str); 6] = [
    (
        Lang::En,
        "terms-2026-11.txt",
        include_str!("../../terms/en/terms-2026-11.txt"),
    ),
    (
        Lang::En,
        "security-advice-2026-11.txt",
        include_str!("../../terms/en/security-advice-2026-11.txt"),
    ),
    (
        Lang::Lt,
        "terms-2026-11.txt",
        include_str!("../../terms/lt/terms-2026-11.txt"),
    ),
    (
        Lang::Lt,
        "security-advice-2026-11.txt",
        include_str!("../../terms/lt/security-advice-2026-11.txt"),
    ),
    (
        Lang::Lv,
        "terms-2026-11.txt",
        include_str!("../../terms/lv/terms-2026-11.txt"),
    ),
    (
        Lang::Lv,
        "security-advice-2026-11.txt",
        include_str!("../../terms/lv/security-advice-2026-11.txt"),
    ),
];

/// The text `file` (`terms-2026-11.txt`) in `lang`.
pub fn text(lang: Lang, file: &str) -> Option<&'static str> {
    TEXTS
        .iter()
        .find(|(l, name, _)| *l == lang && *name == file)
        .map(|(_, _, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The versions in force by default have a text in every language.
    #[test]
    fn r_reg_1_default_terms_are_readable_in_every_language() {
        let terms = crate::config::TermsConfig::default();
        for lang in Lang::ALL {
            for file in [
                format!("terms-{}.txt", terms.terms_version),
                format!("security-advice-{}.txt", terms.security_advice_version),
            ] {
                let text = text(lang, &file).unwrap_or_else(|| panic!("{} {file}", lang.code()));
                assert!(text.len() > 400, "{} {file}", lang.code());
            }
        }
    }
}
