//! Test results as compliance evidence (R-SUP-1): the output that `scripts/test.sh` keeps of
//! every pass of the suite under `target/test-results/`, read back so that the compliance
//! report marks a requirement `evidenced` only when one of its tests passed in this run.
//!
//! One file per pass. It starts with `# key: value` header lines written by the script:
//! `pass` (e.g. `sqlite`, `postgres`), `commit`, `scope` (`all`, or the test binaries the
//! pass ran, e.g. `it`) and `skip` (test path prefixes the pass left out, e.g. `scale::`).
//! The rest is what `cargo test` printed: `Running unittests src/lib.rs (…)` /
//! `Running tests/it/main.rs (…)` name the binary, libtest's `test PATH ... ok|FAILED|ignored`
//! lines give the results.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// The result of one test in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `ok`.
    Passed,
    /// `FAILED`.
    Failed,
    /// `ignored`.
    Ignored,
    /// In the pass's scope but absent from its output (it did not run, or the run stopped).
    NotRun,
    /// Outside the pass's declared scope (another binary, or a skipped prefix).
    OutOfScope,
}

/// Which test binary a test lives in, from its source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Binary {
    /// Unit tests of the library (`src/`).
    Lib,
    /// The integration binary (`tests/it/`).
    It,
}

impl Binary {
    /// The binary a test defined in `file` (relative to the repository root) runs in.
    pub fn of_file(file: &str) -> Option<Self> {
        if file.starts_with("src/") {
            Some(Self::Lib)
        } else if file.starts_with("tests/it/") {
            Some(Self::It)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Lib => "lib",
            Self::It => "it",
        }
    }
}

/// One pass of the suite, as kept by `scripts/test.sh`.
#[derive(Debug, Clone)]
pub struct Pass {
    /// The pass's name (`sqlite`, `postgres`).
    pub name: String,
    /// The commit the pass ran on.
    pub commit: String,
    /// Binaries the pass ran (`None`: all of them).
    scope: Option<Vec<String>>,
    /// Test path prefixes the pass skipped.
    skip: Vec<String>,
    /// (binary, test path) → outcome.
    results: BTreeMap<(Binary, String), Outcome>,
}

/// Why a results directory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The directory or a file in it could not be read.
    #[error("reading test results at {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no pass.
    #[error("no test results in {0} (run scripts/test.sh first)")]
    Empty(String),
    /// A file lacks its header.
    #[error("{0} is not a test-results file of scripts/test.sh (no `# pass:` header)")]
    NoHeader(String),
}

impl Pass {
    /// Parses one results file.
    pub fn parse(text: &str) -> Option<Self> {
        let mut name = None;
        let mut commit = String::new();
        let mut scope = None;
        let mut skip = Vec::new();
        let mut results = BTreeMap::new();
        let mut binary = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(header) = t.strip_prefix("# ") {
                if let Some((key, value)) = header.split_once(':') {
                    let value = value.trim();
                    match key.trim() {
                        "pass" => name = Some(value.to_owned()),
                        "commit" => commit = value.to_owned(),
                        "scope" if value != "all" => {
                            scope = Some(value.split_whitespace().map(str::to_owned).collect())
                        }
                        "skip" => skip = value.split_whitespace().map(str::to_owned).collect(),
                        _ => {}
                    }
                }
                continue;
            }
            if let Some(running) = t.strip_prefix("Running ") {
                binary = if running.starts_with("unittests src/lib.rs") {
                    Some(Binary::Lib)
                } else if running.starts_with("tests/it/") {
                    Some(Binary::It)
                } else {
                    None
                };
                continue;
            }
            if t.starts_with("Doc-tests") {
                binary = None;
                continue;
            }
            let Some(bin) = binary else { continue };
            let Some(rest) = t.strip_prefix("test ") else { continue };
            let Some((path, result)) = rest.rsplit_once(" ... ") else {
                continue;
            };
            let outcome = match result.trim() {
                "ok" => Outcome::Passed,
                "FAILED" => Outcome::Failed,
                r if r.starts_with("ignored") => Outcome::Ignored,
                _ => continue,
            };
            // A test that fails in one line and passes in another (a retried run) failed.
            let entry = results.entry((bin, path.trim().to_owned())).or_insert(outcome);
            if outcome == Outcome::Failed {
                *entry = Outcome::Failed;
            }
        }
        Some(Self {
            name: name?,
            commit,
            scope,
            skip,
            results,
        })
    }

    /// Whether the pass set out to run tests of `binary` at `path` (a module path such as
    /// `scale::cluster::x`).
    fn covers(&self, binary: Binary, path: &str) -> bool {
        if let Some(scope) = &self.scope {
            if !scope.iter().any(|s| s == binary.name()) {
                return false;
            }
        }
        !self.skip.iter().any(|s| path.starts_with(s.as_str()))
    }

    /// The outcome of the test function `name` defined in `file` (relative to the
    /// repository root).
    pub fn outcome(&self, file: &str, name: &str) -> Outcome {
        let Some(binary) = Binary::of_file(file) else {
            return Outcome::OutOfScope;
        };
        let module = module_path(file);
        let mut found = None;
        for ((bin, path), outcome) in &self.results {
            let same = *bin == binary
                && path.rsplit("::").next() == Some(name)
                && (module.is_empty() || path.starts_with(&format!("{module}::")));
            if !same {
                continue;
            }
            found = match found {
                Some(Outcome::Failed) => Some(Outcome::Failed),
                _ => Some(*outcome),
            };
        }
        let full = if module.is_empty() {
            name.to_owned()
        } else {
            format!("{module}::{name}")
        };
        match found {
            Some(outcome) => outcome,
            None if self.covers(binary, &full) => Outcome::NotRun,
            None => Outcome::OutOfScope,
        }
    }
}

/// The module path of a test file inside its binary: `tests/it/scale/cluster.rs` →
/// `scale::cluster`, `src/audit/mod.rs` → `audit`, `tests/it/main.rs` → ``.
pub fn module_path(file: &str) -> String {
    let inner = file
        .strip_prefix("tests/it/")
        .or_else(|| file.strip_prefix("src/"))
        .unwrap_or(file);
    let inner = inner.strip_suffix(".rs").unwrap_or(inner);
    let parts: Vec<&str> = inner
        .split('/')
        .filter(|p| !matches!(*p, "mod" | "main" | "lib"))
        .collect();
    parts.join("::")
}

/// Every pass found in `dir` (`*.txt`), by name.
pub fn load(dir: &Path) -> Result<Vec<Pass>, ResultsError> {
    let io = |path: &Path, source| ResultsError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut passes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        let pass = Pass::parse(&text).ok_or_else(|| ResultsError::NoHeader(file.display().to_string()))?;
        passes.push(pass);
    }
    if passes.is_empty() {
        return Err(ResultsError::Empty(dir.display().to_string()));
    }
    Ok(passes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQLITE: &str = "# pass: sqlite\n# commit: abc\n# scope: all\n\
     Running unittests src/lib.rs (target/debug/deps/eidgate-1)\n\
test supervision::compliance::tests::r_sup_1_unit ... ok\n\
     Running tests/it/main.rs (target/debug/deps/it-2)\n\
test audit::r_log_2_chain_breaks ... ok\n\
test scale::cluster::r_life_1_other_instance ... ok\n\
test lifecycle::r_life_2_refused ... FAILED\n\
test lifecycle::r_life_3_slow ... ignored, needs a card\n\
   Doc-tests eidgate\n\
test src/lib.rs - x (line 3) ... ok\n";

    const POSTGRES: &str = "# pass: postgres\n# commit: abc\n# scope: it\n# skip: scale::\n\
     Running tests/it/main.rs (target/debug/deps/it-2)\n\
test audit::r_log_2_chain_breaks ... ok\n";

    #[test]
    fn r_sup_1_results_are_read_per_pass_and_scope() {
        let sqlite = Pass::parse(SQLITE).unwrap();
        let pg = Pass::parse(POSTGRES).unwrap();
        assert_eq!(sqlite.name, "sqlite");
        assert_eq!(
            sqlite.outcome("tests/it/audit.rs", "r_log_2_chain_breaks"),
            Outcome::Passed
        );
        assert_eq!(pg.outcome("tests/it/audit.rs", "r_log_2_chain_breaks"), Outcome::Passed);
        assert_eq!(
            sqlite.outcome("tests/it/lifecycle.rs", "r_life_2_refused"),
            Outcome::Failed
        );
        assert_eq!(
            sqlite.outcome("tests/it/lifecycle.rs", "r_life_3_slow"),
            Outcome::Ignored
        );
        // Skipped by the PostgreSQL pass's declaration: out of its scope, not "not run".
        assert_eq!(
            pg.outcome("tests/it/scale/cluster.rs", "r_life_1_other_instance"),
            Outcome::OutOfScope
        );
        // A unit test is outside a pass that ran only the integration binary.
        assert_eq!(
            pg.outcome("src/supervision/compliance.rs", "r_sup_1_unit"),
            Outcome::OutOfScope
        );
        assert_eq!(
            sqlite.outcome("src/supervision/compliance.rs", "r_sup_1_unit"),
            Outcome::Passed
        );
        // In scope but absent: it did not run.
        assert_eq!(pg.outcome("tests/it/lifecycle.rs", "r_life_2_refused"), Outcome::NotRun);
        // A function of the same name in another module is not this test.
        assert_eq!(
            sqlite.outcome("tests/it/ops.rs", "r_log_2_chain_breaks"),
            Outcome::NotRun
        );
    }

    #[test]
    fn results_without_header_are_not_a_pass() {
        assert!(Pass::parse("test a ... ok\n").is_none());
    }

    #[test]
    fn module_paths_follow_the_file_layout() {
        assert_eq!(module_path("tests/it/scale/cluster.rs"), "scale::cluster");
        assert_eq!(module_path("tests/it/scale.rs"), "scale");
        assert_eq!(module_path("src/audit/mod.rs"), "audit");
        assert_eq!(module_path("src/lib.rs"), "");
    }
}
