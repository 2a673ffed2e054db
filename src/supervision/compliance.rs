//! The compliance report (R-SUP-*, issue "Supervision"): for every requirement ID of
//! `docs/REQUIREMENTS.md`, the tests that prove it (found from test names such as
//! `r_life_2_unverified_caller_cannot_suspend`), the source files that claim to implement
//! it (`R-LIFE-2` mentioned in `src/`), and "not covered" where nothing does.
//! Requirements the code claims but no test proves are listed as such; the test suite
//! fails on them (`tests/it/compliance.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

/// One requirement's line in the report.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// `R-AREA-N`.
    pub id: String,
    /// The requirement's first line (without the ID).
    pub summary: String,
    /// Tests whose name carries the ID.
    pub tests: Vec<String>,
    /// Source files that mention the ID.
    pub implemented_in: Vec<String>,
    /// Configuration keys that set how the requirement is met.
    pub configuration: Vec<&'static str>,
    /// `covered` (tests), `claimed-untested` (code, no test), `not covered`.
    pub status: &'static str,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One entry per requirement, in document order.
    pub requirements: Vec<Entry>,
    /// Requirements mentioned in code but proven by no test.
    pub claimed_untested: Vec<String>,
}

/// Configuration keys per requirement (a unit test checks that each key's field exists in
/// `config.rs`).
pub const CONFIGURATION: &[(&str, &[&str])] = &[
    (
        "R-AUTH-4",
        &[
            "login.account_failures",
            "login.ip_attempts",
            "login.global_attempts",
            "login.window",
            "login.totp_lock_after",
            "login.password_lock_after",
        ],
    ),
    (
        "R-AUTH-6",
        &[
            "hsm.module",
            "hsm.token_label",
            "hsm.pin_file",
            "hsm.sessions",
            "hsm.max_in_flight",
        ],
    ),
    ("R-AUTH-7", &["tls.mode", "tls.cert", "tls.key"]),
    ("R-DATA-3", &["country"]),
    (
        "R-ISS-3",
        &["means.activation_code_ttl", "means.activation_max_attempts"],
    ),
    ("R-LOG-2", &["audit.checkpoint_every", "audit.checkpoint_interval"]),
    ("R-LOG-4", &["audit.sink_path", "audit.webhook_url", "audit.syslog_udp"]),
    ("R-LOG-6", &["audit.retention"]),
    ("R-REG-1", &["terms.terms_version", "terms.security_advice_version"]),
    ("R-SEC-1", &["tls.mode"]),
    (
        "R-SEC-5",
        &[
            "limits.body_bytes",
            "limits.param_chars",
            "limits.request_timeout",
            "limits.concurrency",
            "limits.rate_per_ip",
            "limits.trusted_proxies",
        ],
    ),
    ("R-SUP-2", &["loa.caps"]),
];

/// Requirement IDs with their summaries, in document order.
pub fn requirements(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("- **R-") else {
            continue;
        };
        let Some((id, summary)) = rest.split_once("**") else {
            continue;
        };
        out.push((format!("R-{id}"), summary.trim().chars().take(160).collect()));
    }
    out
}

/// Requirement IDs named in a test function name: `r_iss_3_r_life_1_...` → R-ISS-3, R-LIFE-1.
pub fn ids_in_test_name(name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split('_').collect();
    let mut ids = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        if parts[i] == "r" {
            if let (Some(area), Some(num)) = (parts.get(i + 1), parts.get(i + 2)) {
                let area_ok = !area.is_empty() && area.chars().all(|c| c.is_ascii_lowercase());
                let num_ok = !num.is_empty() && num.chars().all(|c| c.is_ascii_digit());
                if area_ok && num_ok {
                    ids.push(format!("R-{}-{}", area.to_ascii_uppercase(), num));
                    i += 3;
                    continue;
                }
            }
        }
        i += 1;
    }
    ids
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Test function names in a Rust file (functions directly after a test attribute).
fn test_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#[test]") || t.starts_with("#[tokio::test") {
            pending = true;
            continue;
        }
        if pending {
            if let Some(rest) = t.strip_prefix("async fn ").or_else(|| t.strip_prefix("fn ")) {
                names.push(rest.split('(').next().unwrap_or("").to_owned());
                pending = false;
            } else if !t.starts_with("#[") {
                pending = false;
            }
        }
    }
    names
}

/// Builds the report for the repository at `root`.
pub fn report(root: &Path) -> std::io::Result<Report> {
    let text = std::fs::read_to_string(root.join("docs/REQUIREMENTS.md"))?;
    let reqs = requirements(&text);
    let known: BTreeSet<&str> = reqs.iter().map(|(id, _)| id.as_str()).collect();

    let mut tests: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut claims: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        for name in test_names(&text) {
            for id in ids_in_test_name(&name) {
                tests.entry(id).or_default().insert(format!("{rel}::{name}"));
            }
        }
        if rel.starts_with("src/") && !rel.starts_with("src/supervision/compliance.rs") {
            for id in &known {
                let needle = (*id).to_owned();
                let found = text
                    .match_indices(&needle)
                    .any(|(i, _)| !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()));
                if found {
                    claims.entry((*id).to_owned()).or_default().insert(rel.clone());
                }
            }
        }
    }
    let mut entries = Vec::new();
    let mut claimed_untested = Vec::new();
    for (id, summary) in reqs {
        let t: Vec<String> = tests.get(&id).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        let c: Vec<String> = claims.get(&id).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        let status = match (t.is_empty(), c.is_empty()) {
            (false, _) => "covered",
            (true, false) => "claimed-untested",
            (true, true) => "not covered",
        };
        if status == "claimed-untested" {
            claimed_untested.push(id.clone());
        }
        let configuration = CONFIGURATION
            .iter()
            .find(|(r, _)| *r == id)
            .map(|(_, keys)| keys.to_vec())
            .unwrap_or_default();
        entries.push(Entry {
            id,
            summary,
            tests: t,
            implemented_in: c,
            configuration,
            status,
        });
    }
    Ok(Report {
        requirements: entries,
        claimed_untested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_test_names_map_to_requirement_ids() {
        assert_eq!(
            ids_in_test_name("r_life_2_unverified_caller_cannot_suspend"),
            vec!["R-LIFE-2"]
        );
        assert_eq!(
            ids_in_test_name("r_iss_3_r_life_1_whole_path"),
            vec!["R-ISS-3".to_owned(), "R-LIFE-1".to_owned()]
        );
        assert!(ids_in_test_name("layering_sql_only_in_store").is_empty());
        assert_eq!(ids_in_test_name("r_data_3"), vec!["R-DATA-3"]);
    }

    #[test]
    fn compliance_configuration_keys_exist_in_the_config() {
        let source = include_str!("../config.rs");
        for (_, keys) in CONFIGURATION {
            for key in *keys {
                let field = key.rsplit('.').next().unwrap_or(key);
                assert!(source.contains(&format!("pub {field}:")), "{key} is not a config field");
            }
        }
    }

    #[test]
    fn requirements_are_read_from_the_document() {
        let text =
            "## 1\n- **R-AUTH-1** (all) Before any identity data is released\n- **R-AUTH-2** (all) Identity data\n";
        let r = requirements(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, "R-AUTH-1");
    }
}
