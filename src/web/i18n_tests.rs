//! The catalogues are complete and the pages carry no text of their own (issue 24).

use std::collections::BTreeSet;

use axum::http::{header, HeaderMap, HeaderValue};

use super::*;
use crate::web::pages::{SCRIPTS, TEMPLATES};

fn catalogue(lang: Lang) -> BTreeSet<&'static str> {
    ids(SOURCES[lang.index()]).into_iter().collect()
}

#[test]
fn every_catalogue_parses_without_duplicates() {
    for lang in Lang::ALL {
        let source = SOURCES[lang.index()];
        if let Err((_, errors)) = FluentResource::try_new(source.to_owned()) {
            panic!("{}: {errors:?}", lang.code());
        }
        let list = ids(source);
        assert_eq!(list.len(), catalogue(lang).len(), "{}: a duplicate id", lang.code());
    }
}

#[test]
fn pages_every_message_id_exists_in_every_catalogue() {
    let en = catalogue(Lang::En);
    for lang in Lang::ALL {
        let other = catalogue(lang);
        let missing: Vec<_> = en.difference(&other).collect();
        let extra: Vec<_> = other.difference(&en).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, extra {extra:?}",
            lang.code()
        );
    }
    // Every placeholder of the templates and every literal id of the scripts.
    let mut used: Vec<String> = Vec::new();
    for (name, template) in TEMPLATES {
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            let end = rest[start..]
                .find("}}")
                .unwrap_or_else(|| panic!("{name}: unclosed placeholder"));
            let id = rest[start + 2..start + end].trim();
            if !id.starts_with('@') {
                used.push(id.to_owned());
            }
            rest = &rest[start + end + 2..];
        }
    }
    for (_, script) in SCRIPTS {
        // `t("id"` where `t` is a name of its own (not `get("…"`); `t("prefix-" + x)`
        // is checked below with the values.
        for (at, _) in script.match_indices("t(\"") {
            let before = script[..at].chars().next_back().unwrap_or(' ');
            let piece = &script[at + 3..];
            let id = &piece[..piece.find('"').unwrap_or(0)];
            if !(before.is_alphanumeric() || before == '_' || before == '.' || id.ends_with('-')) {
                used.push(id.to_owned());
            }
        }
    }
    // Ids built by the scripts from a value.
    for prefix_values in [
        ("js-level-", &["low", "substantial", "high"][..]),
        ("js-loa-", &["low", "substantial", "high"][..]),
        ("js-kind-", &["password", "totp", "fido", "smartcard"][..]),
        (
            "js-state-",
            &[
                "applied",
                "approved",
                "issued",
                "active",
                "suspended",
                "revoked",
                "expired",
                "rejected",
            ][..],
        ),
    ] {
        for value in prefix_values.1 {
            used.push(format!("{}{value}", prefix_values.0));
        }
    }
    for claim in crate::domain::claims::EIDAS_NATURAL
        .iter()
        .chain(crate::domain::legal::LEGAL_CLAIMS.iter())
        .filter(|c| **c != "sub")
    {
        used.push(format!("js-claim-{}", claim.replace('_', "-")));
    }
    for lang in Lang::ALL {
        let have = catalogue(lang);
        let missing: Vec<_> = used.iter().filter(|id| !have.contains(id.as_str())).collect();
        assert!(missing.is_empty(), "{}: used but missing {missing:?}", lang.code());
    }
}

/// The text of `html` outside tags, scripts and placeholders.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tag = &rest[lt..];
        let skip_to = if tag.starts_with("<script") {
            tag.find("</script>").map(|e| e + "</script>".len())
        } else {
            tag.find('>').map(|e| e + 1)
        };
        // Attributes a visitor reads must be placeholders too.
        let end = skip_to.unwrap_or(tag.len());
        for attribute in ["alt=\"", "placeholder=\"", "title=\"", "aria-label=\"", "value=\""] {
            // An option's value is what the form sends, never shown.
            if attribute == "value=\"" && tag.starts_with("<option") {
                continue;
            }
            if let Some(at) = tag[..end.min(tag.len())].find(attribute) {
                let value = &tag[at + attribute.len()..];
                let value = &value[..value.find('"').unwrap_or(0)];
                out.push(' ');
                out.push_str(value);
            }
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    // Placeholders and entities are not text of the page.
    let mut text = String::new();
    let mut rest = out.as_str();
    while let Some(start) = rest.find("{{") {
        text.push_str(&rest[..start]);
        rest = rest[start..].find("}}").map_or("", |e| &rest[start + e + 2..]);
    }
    text.push_str(rest);
    text.replace("@detail", "")
}

#[test]
fn pages_the_templates_carry_no_text_of_their_own() {
    for (name, template) in TEMPLATES {
        let text = visible_text(template);
        let words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .collect();
        assert!(words.is_empty(), "{name}: text outside the catalogue: {words:?}");
    }
}

#[test]
fn pages_the_scripts_carry_no_sentences_of_their_own() {
    // Words a visitor could read: a string literal with two words of letters.
    let allowed = [
        "use strict",
        "holder self-service",
        "main > section",
        "openid offline_access",
        "nav.languages a",
    ];
    for (name, script) in SCRIPTS {
        for (n, line) in script.lines().enumerate() {
            let code = line.split(" // ").next().unwrap_or("");
            if code.trim_start().starts_with("//") {
                continue;
            }
            for (i, literal) in code.split('"').enumerate() {
                if i % 2 == 0 || allowed.contains(&literal) {
                    continue;
                }
                let words = literal
                    .split(|c: char| !c.is_alphabetic())
                    .filter(|w| w.chars().count() > 1)
                    .count();
                assert!(
                    words < 2 || !literal.contains(' '),
                    "{name}:{}: text outside the catalogue: {literal:?}",
                    n + 1
                );
            }
        }
    }
}

fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(k.clone(), HeaderValue::from_static(v));
    }
    h
}

#[test]
fn pages_language_by_lang_then_ui_locales_then_choice_then_accept_language() {
    let accept = headers(&[(header::ACCEPT_LANGUAGE, "de-DE, lv;q=0.8, en;q=0.5")]);
    assert_eq!(choose(None, &accept, false, "en"), (Lang::Lv, None));
    assert_eq!(choose(None, &HeaderMap::new(), false, "lt"), (Lang::Lt, None));
    let remembered = headers(&[(header::ACCEPT_LANGUAGE, "lv"), (header::COOKIE, "eidgate_lang=en")]);
    assert_eq!(choose(None, &remembered, false, "lt"), (Lang::En, None));
    assert_eq!(
        choose(Some("flow=x&ui_locales=de%20lt-LT"), &remembered, false, "en"),
        (Lang::Lt, None)
    );
    assert_eq!(
        choose(Some("flow=x&ui_locales=lt&lang=lv"), &remembered, false, "en"),
        (Lang::Lv, Some(Lang::Lv))
    );
    // Nothing the pages speak, a zero weight and garbage fall through.
    let none = headers(&[(header::ACCEPT_LANGUAGE, "lt;q=0, fr, ;;;")]);
    assert_eq!(choose(Some("lang=xx"), &none, false, "en"), (Lang::En, None));
}

#[test]
fn pages_a_page_renders_in_its_language_with_the_scripts_messages() {
    let context = PageContext {
        lang: Lang::Lt,
        args: vec![("service", "Valstybės <eID>".into()), ("country", "LT".into())],
        script_prefixes: &["js-login-"],
        query: Some("flow=abc&lang=lt"),
    };
    let page = context.render(TEMPLATES[0].1);
    assert!(page.contains("<html lang=\"lt\">"), "{page}");
    assert!(page.contains("Valstybės &lt;eID&gt;"), "escaped service name");
    assert!(!page.contains("{{"), "{page}");
    assert!(
        page.contains("href=\"?flow=abc&amp;lang=en\""),
        "the switcher keeps the flow: {page}"
    );
    let start = page.find("id=\"i18n\">").map(|i| i + "id=\"i18n\">".len()).unwrap_or(0);
    let json = &page[start..start + page[start..].find("</script>").unwrap_or(0)];
    let messages: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    assert_eq!(
        messages["js-login-too-many"].as_str().map(|s| s.contains("{seconds}")),
        Some(true),
        "{json}"
    );
    assert!(
        messages.get("js-account-revoke").is_none(),
        "only the page's own messages"
    );
}
