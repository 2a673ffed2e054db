//! The language of the pages (issue 24): message catalogues in Fluent (`locales/{en,lt,lv}/
//! pages.ftl`, compiled in), the choice of language for a request, and the rendering of a
//! page template.
//!
//! A template is HTML with `{{message-id}}` placeholders (the message, HTML-escaped) and
//! three of its own: `{{@lang}}` (the language code, for `<html lang>`), `{{@switcher}}`
//! (the links to the other languages) and `{{@messages}}` (a JSON map of the messages the
//! page's scripts show, read by `static/i18n.js`). Every message is formatted with the
//! page's arguments (`$service`, `$country`, …); a message for a script keeps its
//! arguments as `{name}` for the script to fill in.
//!
//! The language: `?lang=` (the switcher; remembered in a cookie), then `ui_locales` (the
//! relying party's wish, carried from `/authorize` to the login page), then the
//! remembered choice, then `Accept-Language`, then `[ui] default_language`.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

use crate::domain::html::escape;

/// The cookie that remembers the visitor's choice of language.
pub const LANG_COOKIE: &str = "eidgate_lang";

/// A language the pages speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Lithuanian.
    Lt,
    /// Latvian.
    Lv,
}

impl Lang {
    /// Every language, in the switcher's order.
    pub const ALL: [Lang; 3] = [Lang::Lt, Lang::En, Lang::Lv];

    /// The BCP 47 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Lt => "lt",
            Lang::Lv => "lv",
        }
    }

    /// The language of a tag (`lt`, `lt-LT`, `EN-gb`), by its primary subtag.
    pub fn of_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    fn index(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::Lt => 1,
            Lang::Lv => 2,
        }
    }
}

/// The catalogue sources, per language (en, lt, lv).
pub const SOURCES: [&str; 3] = [
    include_str!("../../locales/en/pages.ftl"),
    include_str!("../../locales/lt/pages.ftl"),
    include_str!("../../locales/lv/pages.ftl"),
];

type Bundle = FluentBundle<FluentResource>;

/// A catalogue that fails to parse keeps the messages that parsed (a unit test makes
/// sure none fails).
static BUNDLES: LazyLock<Vec<Bundle>> = LazyLock::new(|| {
    [Lang::En, Lang::Lt, Lang::Lv]
        .into_iter()
        .map(|lang| {
            let resource = FluentResource::try_new(SOURCES[lang.index()].to_owned()).unwrap_or_else(|(r, _)| r);
            let id: unic_langid::LanguageIdentifier = lang.code().parse().unwrap_or_default();
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            bundle.set_use_isolating(false);
            // Duplicate ids keep the first; the unit test refuses them.
            let _ = bundle.add_resource(resource);
            bundle
        })
        .collect()
});

/// The message `id` in `lang` with `args`; English when the catalogue lacks it (a unit
/// test makes sure none does), else the id itself.
pub fn message(lang: Lang, id: &str, args: &FluentArgs) -> String {
    for bundle in [&BUNDLES[lang.index()], &BUNDLES[0]] {
        if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            return bundle.format_pattern(pattern, Some(args), &mut errors).into_owned();
        }
    }
    id.to_owned()
}

/// Every message id of a catalogue source, in order.
pub fn ids(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim()))
        .collect()
}

/// The names of the arguments scripts fill in themselves (`{seconds}` in the message).
const SCRIPT_ARGS: [&str; 13] = [
    "seconds", "from", "to", "message", "client", "version", "count", "name", "code", "region", "roles", "error",
    "state",
];

/// The language for a request: see the module documentation. `Some(lang)` in the second
/// place when `?lang=` chose it (the answer then remembers it in [`LANG_COOKIE`]).
pub fn choose(query: Option<&str>, headers: &HeaderMap, secure: bool, default: &str) -> (Lang, Option<Lang>) {
    let mut asked = None;
    let mut ui_locales = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "lang" if asked.is_none() => asked = Lang::of_tag(&v),
            "ui_locales" if ui_locales.is_none() => ui_locales = v.split(' ').find_map(Lang::of_tag),
            _ => {}
        }
    }
    if let Some(lang) = asked {
        return (lang, Some(lang));
    }
    let remembered = super::middleware::cookie(headers, LANG_COOKIE, secure).and_then(Lang::of_tag);
    let chosen = ui_locales
        .or(remembered)
        .or_else(|| accept_language(headers))
        .or_else(|| Lang::of_tag(default))
        .unwrap_or(Lang::En);
    (chosen, None)
}

/// The best language of `Accept-Language` the pages speak (highest `q`, first listed).
pub fn accept_language(headers: &HeaderMap) -> Option<Lang> {
    let value = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut best: Option<(u32, Lang)> = None;
    for item in value.split(',').take(32) {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::of_tag) else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        // Thousandths, so that the comparison is exact.
        let q = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        if q > 0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// What a page is rendered with.
pub struct PageContext<'a> {
    /// The chosen language.
    pub lang: Lang,
    /// The page's arguments (`service`, `country`, …) for every message.
    pub args: Vec<(&'static str, String)>,
    /// The prefixes of the message ids the page's scripts use (`{{@messages}}`).
    pub script_prefixes: &'a [&'a str],
    /// The request's query without `lang`, kept by the switcher's links.
    pub query: Option<&'a str>,
}

impl PageContext<'_> {
    fn fluent_args(&self, for_script: bool) -> FluentArgs<'_> {
        let mut args = FluentArgs::new();
        for (k, v) in &self.args {
            args.set(*k, v.as_str());
        }
        if for_script {
            for name in SCRIPT_ARGS {
                args.set(name, format!("{{{name}}}"));
            }
        }
        args
    }

    /// The message `id`, formatted with the page's arguments.
    pub fn text(&self, id: &str) -> String {
        message(self.lang, id, &self.fluent_args(false))
    }

    /// The JSON map (id → text) of the messages whose id starts with one of the script
    /// prefixes, safe inside `<script type="application/json">`.
    pub fn script_messages(&self) -> String {
        let args = self.fluent_args(true);
        let map: serde_json::Map<String, serde_json::Value> = ids(SOURCES[0])
            .into_iter()
            .filter(|id| self.script_prefixes.iter().any(|p| id.starts_with(p)))
            .map(|id| (id.to_owned(), serde_json::Value::String(message(self.lang, id, &args))))
            .collect();
        serde_json::Value::Object(map)
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }

    /// The links to the page in every other language, keeping the query.
    pub fn switcher(&self) -> String {
        let kept: Vec<(String, String)> = url::form_urlencoded::parse(self.query.unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .take(16)
            .collect();
        let mut out = format!(
            "<nav class=\"languages\" aria-label=\"{}\"><ul>",
            escape(&self.text("language-switcher"))
        );
        for lang in Lang::ALL {
            let name = escape(&message(lang, "language-name", &FluentArgs::new()));
            if lang == self.lang {
                out.push_str(&format!(
                    "<li><span lang=\"{c}\" aria-current=\"true\">{name}</span></li>",
                    c = lang.code()
                ));
                continue;
            }
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &kept {
                query.append_pair(k, v);
            }
            query.append_pair("lang", lang.code());
            out.push_str(&format!(
                "<li><a href=\"?{q}\" lang=\"{c}\" hreflang=\"{c}\">{name}</a></li>",
                q = escape(&query.finish()),
                c = lang.code()
            ));
        }
        out.push_str("</ul></nav>");
        out
    }

    /// `template` with every placeholder replaced.
    pub fn render(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 1024);
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = after[..end].trim();
            match name {
                "@lang" => out.push_str(self.lang.code()),
                "@switcher" => out.push_str(&self.switcher()),
                "@messages" => out.push_str(&self.script_messages()),
                id => out.push_str(&escape(&self.text(id))),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// The `Set-Cookie` that remembers a language chosen with `?lang=` (a year).
pub fn remember(lang: Lang, secure: bool) -> Option<HeaderValue> {
    super::middleware::set_cookie(LANG_COOKIE, lang.code(), 365 * 24 * 3600, secure)
}

#[cfg(test)]
#[path = "i18n_tests.rs"]
mod tests;
