//! The compliance report (R-SUP-*, issue "Supervision"): for every requirement ID of
//! `docs/REQUIREMENTS.md`, the tests that prove it (found from test names such as
//! `r_life_2_unverified_caller_cannot_suspend`), the source files that claim to implement
//! it (`R-LIFE-2` mentioned in `src/`), the reviewer's pick (the one test the README's
//! "Requirement evidence" table names as the best proof), and, given the results that
//! `scripts/test.sh` kept of this run (`--results target/test-results`), whether those tests
//! passed: a requirement is `evidenced` only when at least one of its tests passed in every
//! pass of the run that set out to run it, `failing` when one of its tests failed, `not
//! evidenced` when its tests did not pass (ignored, not run), `not covered` when no test
//! carries its ID. Without results the status says so (`results missing`), never "covered".
//! The suite fails on any requirement without a test (`tests/it/supervision.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::evidence::{Outcome, Pass};

/// One test of a requirement with its result in each pass of the run.
#[derive(Debug, Serialize)]
pub struct TestEvidence {
    /// `file::function`.
    pub test: String,
    /// Whether the README names it as the requirement's best proof.
    pub reviewer: bool,
    /// Pass name → outcome (empty without results).
    pub results: BTreeMap<String, Outcome>,
}

/// One requirement's line in the report.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// `R-AREA-N`.
    pub id: String,
    /// The requirement's first line (without the ID).
    pub summary: String,
    /// The test the README names as the best proof, if any.
    pub reviewer_test: Option<String>,
    /// Tests whose name carries the ID, the reviewer's pick first.
    pub tests: Vec<TestEvidence>,
    /// Source files that mention the ID.
    pub implemented_in: Vec<String>,
    /// Configuration keys that set how the requirement is met.
    pub configuration: Vec<&'static str>,
    /// `evidenced`, `failing`, `not evidenced`, `not covered`, or `results missing`.
    pub status: &'static str,
}

/// A pass of the suite the report read.
#[derive(Debug, Serialize)]
pub struct PassInfo {
    /// `sqlite`, `postgres`.
    pub name: String,
    /// The commit it ran on.
    pub commit: String,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One entry per requirement, in document order.
    pub requirements: Vec<Entry>,
    /// Requirements mentioned in code but proven by no test.
    pub claimed_untested: Vec<String>,
    /// Requirements no test carries.
    pub not_covered: Vec<String>,
    /// Reviewer's picks (README) that name no test of that requirement.
    pub reviewer_unknown: Vec<String>,
    /// The passes whose results were read (empty: results missing).
    pub passes: Vec<PassInfo>,
    /// `evidenced / total` counts.
    pub evidenced: usize,
    /// Number of requirements.
    pub total: usize,
}

impl Report {
    /// The one-line summary CI prints, e.g. `51 / 51 evidenced`.
    pub fn summary(&self) -> String {
        if self.passes.is_empty() {
            format!(
                "results missing: {} / {} requirements have tests, none evidenced by a run (give --results)",
                self.total - self.not_covered.len(),
                self.total
            )
        } else {
            format!("{} / {} evidenced", self.evidenced, self.total)
        }
    }

    /// Whether every requirement is evidenced by this run.
    pub fn all_evidenced(&self) -> bool {
        !self.passes.is_empty() && self.evidenced == self.total && self.reviewer_unknown.is_empty()
    }
}

/// Configuration keys per requirement (a unit test checks that each key's field exists in
/// the configuration sources, `config::SOURCE`).
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

/// The reviewer's column: `| R-AREA-N | `test_name` | … |` rows of the README.
pub fn reviewer_picks(readme: &str) -> BTreeMap<String, String> {
    let mut picks = BTreeMap::new();
    for line in readme.lines() {
        let Some(row) = line.trim().strip_prefix('|') else {
            continue;
        };
        let mut cells = row.split('|').map(str::trim);
        let Some(id) = cells.next().filter(|c| c.starts_with("R-")) else {
            continue;
        };
        let pick = cells.find_map(|c| {
            let name = c.strip_prefix('`')?.strip_suffix('`')?;
            let name = name.rsplit("::").next().unwrap_or(name);
            name.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
                .then(|| name.to_owned())
        });
        if let Some(name) = pick {
            picks.insert(id.to_owned(), name);
        }
    }
    picks
}

fn status(tests: &[TestEvidence], passes: &[Pass]) -> &'static str {
    if tests.is_empty() {
        return "not covered";
    }
    if passes.is_empty() {
        return "results missing";
    }
    let failed = tests.iter().any(|t| t.results.values().any(|o| *o == Outcome::Failed));
    if failed {
        return "failing";
    }
    let passed_everywhere = tests.iter().any(|t| {
        let ran: Vec<&Outcome> = t.results.values().filter(|o| **o != Outcome::OutOfScope).collect();
        !ran.is_empty() && ran.iter().all(|o| **o == Outcome::Passed)
    });
    if passed_everywhere {
        "evidenced"
    } else {
        "not evidenced"
    }
}

/// Builds the report for the repository at `root`, with the results of a run when given.
pub fn report(root: &Path, passes: &[Pass]) -> std::io::Result<Report> {
    let text = std::fs::read_to_string(root.join("docs/REQUIREMENTS.md"))?;
    let reqs = requirements(&text);
    let known: BTreeSet<&str> = reqs.iter().map(|(id, _)| id.as_str()).collect();
    let picks = reviewer_picks(&std::fs::read_to_string(root.join("README.md")).unwrap_or_default());

    // id → (file, function)
    let mut tests: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
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
                tests.entry(id).or_default().insert((rel.clone(), name.clone()));
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
    let mut not_covered = Vec::new();
    let mut reviewer_unknown = Vec::new();
    for (id, summary) in reqs {
        let pick = picks.get(&id).cloned();
        let mut evidence: Vec<TestEvidence> = tests
            .get(&id)
            .map(|s| {
                s.iter()
                    .map(|(file, name)| TestEvidence {
                        test: format!("{file}::{name}"),
                        reviewer: pick.as_deref() == Some(name.as_str()),
                        results: passes.iter().map(|p| (p.name.clone(), p.outcome(file, name))).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        evidence.sort_by_key(|t| !t.reviewer);
        if pick.is_some() && !evidence.iter().any(|t| t.reviewer) {
            reviewer_unknown.push(id.clone());
        }
        let c: Vec<String> = claims.get(&id).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        if evidence.is_empty() {
            if c.is_empty() {
                not_covered.push(id.clone());
            } else {
                claimed_untested.push(id.clone());
                not_covered.push(id.clone());
            }
        }
        let configuration = CONFIGURATION
            .iter()
            .find(|(r, _)| *r == id)
            .map(|(_, keys)| keys.to_vec())
            .unwrap_or_default();
        let status = status(&evidence, passes);
        entries.push(Entry {
            id,
            summary,
            reviewer_test: pick,
            tests: evidence,
            implemented_in: c,
            configuration,
            status,
        });
    }
    let evidenced = entries.iter().filter(|e| e.status == "evidenced").count();
    Ok(Report {
        total: entries.len(),
        evidenced,
        requirements: entries,
        claimed_untested,
        not_covered,
        reviewer_unknown,
        passes: passes
            .iter()
            .map(|p| PassInfo {
                name: p.name.clone(),
                commit: p.commit.clone(),
            })
            .collect(),
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
        let source = crate::config::SOURCE;
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
