//! Reading Rust source as text, the way `/work/shared/tools/architecture.py` measures the
//! house: `crate::a::b` paths anywhere in code (`use` and inline), `super::` paths resolved
//! from the file (`x/mod.rs` is module `x`, `x/y.rs` is module `x::y`), each resolved to the
//! longest existing module file; `//` comments dropped; the first `#[cfg(test)] mod x {` and
//! everything after it left out.
//!
//! Two points where this is stricter than the Python tool, both real imports it misses:
//! `{…}` groups are expanded (`use super::{code, token}` names `code` and `token`, and
//! `use crate::{app::App}` names `app`), and `super::super::x` climbs two levels.

use std::collections::{BTreeMap, BTreeSet};

/// Relative path under `src/` (`store/sql.rs`) → source text.
pub(crate) type Sources = BTreeMap<String, String>;

/// One import: `from` names `to` on `line` (1-based), both relative paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Import {
    pub from: String,
    pub line: usize,
    pub to: String,
}

/// The module path of a file: `store/sql.rs` → `[store, sql]`, `store/mod.rs` → `[store]`.
/// The crate roots get a name no path reaches.
pub(crate) fn module_of(rel: &str) -> Vec<String> {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = stem.split('/').map(String::from).collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts = vec![format!("<{}>", parts[0])];
    }
    parts
}

/// The code of a file as the rules see it: from the first `#[cfg(test)] mod x {` on left
/// out, then every `//` comment (doc comments too) blanked. Line numbers are kept.
pub(crate) fn code_of(text: &str) -> String {
    let cut = test_module_start(text).unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Start of the first `#[cfg(test)]` followed by `mod NAME {` (whitespace allowed between).
fn test_module_start(text: &str) -> Option<usize> {
    text.match_indices("#[cfg(test)]").map(|(i, _)| i).find(|&i| {
        let rest = text[i + "#[cfg(test)]".len()..].trim_start();
        let Some(rest) = rest.strip_prefix("mod") else {
            return false;
        };
        if !rest.starts_with(char::is_whitespace) {
            return false;
        }
        let rest = rest.trim_start();
        let name = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        name > 0 && rest[name..].trim_start().starts_with('{')
    })
}

/// 1-based line of byte offset `at`.
pub(crate) fn line_at(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// An identifier at `pos` (`[A-Za-z_]\w*`), advancing `pos` past it; empty if none.
fn ident(s: &str, pos: &mut usize) -> String {
    let rest = &s[*pos..];
    if !rest.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        return String::new();
    }
    let len = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
    *pos += len;
    rest[..len].to_string()
}

fn skip_ws(s: &str, pos: &mut usize) {
    let rest = &s[*pos..];
    *pos += rest.len() - rest.trim_start().len();
}

/// The paths of the use tree or inline path at the start of `s`, with `{…}` groups
/// expanded: `a::b` → `[a, b]`; `a::{b, c::d, self}` → `[a, b]`, `[a, c, d]`, `[a]`.
/// A path stops at the first character that cannot continue it (`*`, `(`, `;`, …).
pub(crate) fn use_tree(s: &str) -> Vec<Vec<String>> {
    let mut pos = 0;
    tree_at(s, &mut pos)
}

fn tree_at(s: &str, pos: &mut usize) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        if s[*pos..].starts_with('{') {
            *pos += 1;
            return group(s, pos)
                .into_iter()
                .map(|tail| prefix.iter().cloned().chain(tail).collect())
                .collect();
        }
        let id = ident(s, pos);
        if id.is_empty() {
            break;
        }
        if id != "self" {
            prefix.push(id);
        }
        if s[*pos..].starts_with("::") {
            *pos += 2;
        } else {
            break;
        }
    }
    vec![prefix]
}

/// The items of a `{…}` group, `pos` just after the `{`; leaves `pos` after the `}`.
fn group(s: &str, pos: &mut usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    loop {
        skip_ws(s, pos);
        if *pos >= s.len() {
            return out;
        }
        if s[*pos..].starts_with('}') {
            *pos += 1;
            return out;
        }
        out.extend(tree_at(s, pos));
        skip_ws(s, pos);
        if s[*pos..].starts_with("as") && s[*pos + 2..].starts_with(char::is_whitespace) {
            *pos += 2;
            skip_ws(s, pos);
            ident(s, pos);
            skip_ws(s, pos);
        }
        if s[*pos..].starts_with(',') {
            *pos += 1;
        } else if !s[*pos..].starts_with('}') {
            return out;
        }
    }
}

/// Every `crate::…` and `super::…` path in the code of file `rel`, as a path from the crate
/// root, with its line. `super::` is relative to the module of `rel` (its parent module).
pub(crate) fn paths(rel: &str, code: &str) -> Vec<(usize, Vec<String>)> {
    let module = module_of(rel);
    let parent = if module[0].starts_with('<') {
        Vec::new()
    } else {
        module[..module.len() - 1].to_vec()
    };
    let mut out = Vec::new();
    for (keyword, root) in [("crate::", Vec::new()), ("super::", parent)] {
        for (at, _) in code.match_indices(keyword) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| is_word(c) || (keyword == "super::" && c == ':')) {
                continue;
            }
            let mut base = root.clone();
            let mut rest = &code[at + keyword.len()..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            for tail in use_tree(rest) {
                let path = base.iter().cloned().chain(tail).collect();
                out.push((line_at(code, at), path));
            }
        }
    }
    out
}

/// The module file a path names: its longest prefix that is a module of `sources`.
fn resolve<'a>(path: &[String], modules: &'a BTreeMap<Vec<String>, String>) -> Option<&'a String> {
    (1..=path.len()).rev().find_map(|i| modules.get(&path[..i]))
}

/// Every import between files of `sources` (a file naming itself is no import).
pub(crate) fn imports(sources: &Sources) -> Vec<Import> {
    let modules: BTreeMap<Vec<String>, String> = sources.keys().map(|rel| (module_of(rel), rel.clone())).collect();
    let mut out = BTreeSet::new();
    for (rel, text) in sources {
        for (line, path) in paths(rel, &code_of(text)) {
            if let Some(to) = resolve(&path, &modules).filter(|to| *to != rel) {
                out.insert(Import {
                    from: rel.clone(),
                    line,
                    to: to.clone(),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// Strongly connected components of more than one file (Tarjan), each sorted.
pub(crate) fn cycles(sources: &Sources, imports: &[Import]) -> Vec<Vec<String>> {
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in imports {
        edges.entry(i.from.as_str()).or_default().insert(i.to.as_str());
    }
    let mut t = Tarjan {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in sources.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let mut out: Vec<Vec<String>> = t.out.into_iter().filter(|c| c.len() > 1).collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    out
}

struct Tarjan<'a> {
    edges: &'a BTreeMap<&'a str, BTreeSet<&'a str>>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on: BTreeSet<&'a str>,
    out: Vec<Vec<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, v: &'a str) {
        let n = self.index.len();
        self.index.insert(v, n);
        self.low.insert(v, n);
        self.stack.push(v);
        self.on.insert(v);
        let next: Vec<&'a str> = self
            .edges
            .get(v)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for w in next {
            if !self.index.contains_key(w) {
                self.visit(w);
                let low = self.low[v].min(self.low[w]);
                self.low.insert(v, low);
            } else if self.on.contains(w) {
                let low = self.low[v].min(self.index[w]);
                self.low.insert(v, low);
            }
        }
        if self.low[v] == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            component.sort();
            self.out.push(component);
        }
    }
}

/// Whether `word` occurs in `text` as a whole identifier.
pub(crate) fn mentions_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Roots of the paths in `code` that may name an external crate, with their line: the
/// first segment of `x::…` (not after `::`, `.`, `$` or a word character), of `use x` and
/// of `extern crate x`, each with the full paths of its use tree.
pub(crate) fn rooted_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < code.len() {
        let c = code[pos..].chars().next().unwrap_or(' ');
        let before = code[..pos].chars().next_back();
        let starts = (c.is_alphabetic() || c == '_')
            && !before.is_some_and(|b| is_word(b) || matches!(b, ':' | '.' | '$' | '\''));
        if !starts {
            pos += c.len_utf8();
            continue;
        }
        let at = pos;
        let id = ident(code, &mut pos);
        let rest = &code[pos..];
        if rest.starts_with("::") {
            out.extend(use_tree(&code[at..]).into_iter().map(|p| (line_at(code, at), p)));
        } else if id == "use" || (id == "crate" && code[..at].trim_end().ends_with("extern")) {
            let name_at = at + id.len() + (rest.len() - rest.trim_start().trim_start_matches("::").len());
            if let Some(tree) = use_tree(&code[name_at..]).into_iter().next() {
                out.push((line_at(code, at), tree));
            }
        }
    }
    out
}
