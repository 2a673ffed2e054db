//! The rules, as pure functions over a map `relative path → source text`: each returns one
//! line per violation (empty when the rule holds), so the self-test can feed planted files.

use std::collections::{BTreeMap, BTreeSet};

use super::scan::{code_of, cycles, imports, mentions_word, rooted_paths, Import, Sources};
use super::{layer_of, Layer, DOMAIN_CRATES, DOMAIN_STD_DENIED};

/// Imports grouped by (from, to), with their lines: `a.rs:3,9 -> b.rs`.
fn listed<'a>(imports: impl Iterator<Item = &'a Import>) -> Vec<String> {
    let mut by_pair: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for i in imports {
        by_pair.entry((&i.from, &i.to)).or_default().push(i.line.to_string());
    }
    by_pair
        .into_iter()
        .map(|((from, to), lines)| format!("{from}:{} -> {to}", lines.join(",")))
        .collect()
}

/// Rule 1: every strongly connected component of more than one file, with the imports
/// that hold it together.
pub(crate) fn import_cycles(src: &Sources) -> Vec<String> {
    let imports = imports(src);
    cycles(src, &imports)
        .into_iter()
        .map(|component| {
            let members: BTreeSet<&str> = component.iter().map(String::as_str).collect();
            let inside = imports
                .iter()
                .filter(|i| members.contains(i.from.as_str()) && members.contains(i.to.as_str()));
            format!(
                "cycle of {} files: {}\n      {}",
                component.len(),
                component.join(", "),
                listed(inside).join("\n      ")
            )
        })
        .collect()
}

/// Rule 2: `crate::app` is named only by transport files (`app.rs`, `cli/`, `web/`,
/// `*/http.rs`, `main.rs`, `lib.rs`): by a `crate::app` path or an import group reaching it.
pub(crate) fn app_outside_root(src: &Sources) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (rel, text) in src.iter().filter(|(rel, _)| layer_of(rel) != Layer::Transport) {
        for (n, line) in code_of(text).lines().enumerate() {
            if line
                .match_indices("crate::app")
                .any(|(at, m)| !line[at + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
            {
                out.insert(format!("{rel}:{} names crate::app", n + 1));
            }
        }
    }
    for i in imports(src)
        .iter()
        .filter(|i| i.to == "app.rs" && layer_of(&i.from) != Layer::Transport)
    {
        out.insert(format!("{}:{} names crate::app", i.from, i.line));
    }
    out.into_iter().collect()
}

/// Rule 3: a file imports only its own layer or lower ones.
pub(crate) fn direction(src: &Sources) -> Vec<String> {
    imports(src)
        .iter()
        .filter(|i| layer_of(&i.to) > layer_of(&i.from))
        .map(|i| {
            format!(
                "{}:{} ({:?}) imports {} ({:?})",
                i.from,
                i.line,
                layer_of(&i.from),
                i.to,
                layer_of(&i.to)
            )
        })
        .collect()
}

fn feature_http(rel: &str) -> Option<&str> {
    rel.strip_suffix("/http.rs").filter(|_| !rel.starts_with("web/"))
}

/// Rule 4: no `*/http.rs` imports another feature's `http.rs` (`web/` is the router and
/// may import them all).
pub(crate) fn http_imports_http(src: &Sources) -> Vec<String> {
    let crossing = imports(src);
    let crossing = crossing.iter().filter(|i| {
        let (Some(from), Some(to)) = (feature_http(&i.from), i.to.strip_suffix("/http.rs")) else {
            return false;
        };
        from != to
    });
    listed(crossing)
}

/// Words a service file never uses: an HTTP answer is built by transport.
const HTTP_WORDS: [&str; 4] = ["StatusCode", "axum", "Problem", "IntoResponse"];

/// Text only a problem+json answer carries: its media type and our problem type URIs.
const PROBLEM_TEXT: [&str; 2] = ["problem+json", "urn:eidgate:problem"];

/// Rule 5: service files do not mention `StatusCode`, `axum`, `Problem`, `IntoResponse`,
/// `problem+json` or a problem type URI (`urn:eidgate:problem:…`). A client reading the
/// status of a response it received (`reqwest::StatusCode`) builds no answer.
pub(crate) fn services_build_http(src: &Sources) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in src.iter().filter(|(rel, _)| layer_of(rel) == Layer::Services) {
        for (n, line) in code_of(text).lines().enumerate() {
            let line = line.replace("reqwest::StatusCode", "");
            let mut words: Vec<&str> = HTTP_WORDS.into_iter().filter(|w| mentions_word(&line, w)).collect();
            words.extend(PROBLEM_TEXT.into_iter().filter(|t| line.contains(t)));
            if !words.is_empty() {
                out.push(format!("{rel}:{}: {}", n + 1, words.join(", ")));
            }
        }
    }
    out
}

/// Rule 6: domain files use only the allowlisted crates (`externals`: every crate the
/// package can name), no I/O part of `std`, and do not read the clock.
pub(crate) fn domain_crates(src: &Sources, externals: &BTreeSet<String>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (rel, text) in src.iter().filter(|(rel, _)| layer_of(rel) == Layer::Domain) {
        let code = code_of(text);
        for (line, path) in rooted_paths(&code) {
            let Some(root) = path.first() else { continue };
            if externals.contains(root) && !DOMAIN_CRATES.contains(&root.as_str()) {
                out.insert(format!("{rel}:{line} uses crate `{root}`"));
            }
            if matches!(root.as_str(), "std" | "core" | "alloc") {
                let inner = path.get(1).map(String::as_str).unwrap_or("");
                let item = path.get(2).map(String::as_str).unwrap_or("");
                if DOMAIN_STD_DENIED.contains(&inner) || (inner == "time" && matches!(item, "SystemTime" | "Instant")) {
                    out.insert(format!("{rel}:{line} uses `{}`", path.join("::")));
                }
            }
        }
        for (n, l) in code.lines().enumerate() {
            if ["now_utc", "now_local"].iter().any(|w| mentions_word(l, w))
                || l.contains("SystemTime::now")
                || l.contains("Instant::now")
            {
                out.insert(format!("{rel}:{} reads the clock (take `now` as an argument)", n + 1));
            }
        }
    }
    out.into_iter().collect()
}

/// Rule 7: the `# Layout` table of `lib.rs` lists every `pub mod` of `lib.rs`, and only those.
pub(crate) fn layout_map(lib: &str) -> Vec<String> {
    let code = code_of(lib);
    let declared: BTreeSet<&str> = code
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|r| r.split(|c: char| !(c.is_alphanumeric() || c == '_')).next())
        .filter(|name| !name.is_empty())
        .collect();
    let docs = lib
        .lines()
        .map(str::trim)
        .take_while(|l| l.starts_with("//!") || l.is_empty());
    let section: Vec<&str> = docs
        .map(|l| l.trim_start_matches("//!").trim())
        .skip_while(|l| *l != "# Layout")
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .collect();
    if section.is_empty() {
        return vec!["lib.rs has no `# Layout` section".to_string()];
    }
    let listed: BTreeSet<&str> = section
        .iter()
        .filter_map(|l| l.strip_prefix("| [`"))
        .filter_map(|r| r.split_once("`]").map(|(name, _)| name))
        .collect();
    let missing = declared
        .difference(&listed)
        .map(|m| format!("`{m}` is a `pub mod` of lib.rs missing from the # Layout table"));
    let extra = listed
        .difference(&declared)
        .map(|m| format!("`{m}` is in the # Layout table but no `pub mod` of lib.rs"));
    missing.chain(extra).collect()
}

/// Files of more than `limit` lines, longest first.
pub(crate) fn too_long(files: &Sources, limit: usize) -> Vec<String> {
    let mut long: Vec<(usize, &String)> = files
        .iter()
        .map(|(rel, text)| (text.lines().count(), rel))
        .filter(|(n, _)| *n > limit)
        .collect();
    long.sort_by(|a, b| b.cmp(a));
    long.into_iter().map(|(n, rel)| format!("{rel} ({n} lines)")).collect()
}

/// Crate placement: files outside `allowed` that name `krate` (`krate::` or `use krate`) on
/// a line that is not a comment; test modules count too.
pub(crate) fn crate_outside(src: &Sources, krate: &str, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let (path, import) = (format!("{krate}::"), format!("use {krate}"));
    src.iter()
        .filter(|(rel, _)| !allowed(rel))
        .filter(|(_, text)| {
            text.lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .any(|l| l.contains(&path) || l.contains(&import))
        })
        .map(|(rel, _)| rel.clone())
        .collect()
}
