//! `eidgate compliance report`: requirement → tests, code and, given the results that
//! `scripts/test.sh` kept of a run, whether those tests passed (R-SUP-1).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::supervision::{compliance, evidence};

/// The compliance commands.
#[derive(Subcommand)]
pub enum ComplianceCommand {
    /// Requirement → tests (with their results in this run), code and configuration. Exits
    /// non-zero unless every requirement is evidenced by a test that passed in every pass.
    Report {
        /// The repository root (holding docs/REQUIREMENTS.md, README.md, src/ and tests/).
        #[arg(long, default_value = ".")]
        source: PathBuf,
        /// The test results of a run (`target/test-results`, kept by `scripts/test.sh`).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Print only the one-line summary.
        #[arg(long)]
        summary: bool,
    },
}

/// Runs a compliance command.
pub fn run(cmd: ComplianceCommand) -> anyhow::Result<ExitCode> {
    let ComplianceCommand::Report {
        source,
        results,
        json,
        summary,
    } = cmd;
    let passes = match &results {
        Some(dir) => evidence::load(dir)?,
        None => Vec::new(),
    };
    let report = compliance::report(&source, &passes)
        .with_context(|| format!("reading the source tree at {}", source.display()))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else if summary {
        println!("{}", report.summary());
    } else {
        print_text(&report);
    }
    Ok(if report.all_evidenced() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_text(report: &compliance::Report) {
    if report.passes.is_empty() {
        println!("results missing: no test run given (--results target/test-results); nothing is evidenced");
    } else {
        let passes: Vec<String> = report
            .passes
            .iter()
            .map(|p| format!("{} at {}", p.name, p.commit))
            .collect();
        println!("passes: {}", passes.join(", "));
    }
    for e in &report.requirements {
        let best = e
            .tests
            .first()
            .map(|t| {
                let results: Vec<String> = t.results.iter().map(|(p, o)| format!("{p}={o:?}")).collect();
                let who = if t.reviewer { "reviewer" } else { "first" };
                format!("{who}: {} {}", t.test, results.join(" "))
            })
            .unwrap_or_default();
        println!("{:<11} {:<15} {:>3} test(s)  {best}", e.id, e.status, e.tests.len());
    }
    if !report.claimed_untested.is_empty() {
        println!("claimed but untested: {}", report.claimed_untested.join(", "));
    }
    if !report.reviewer_unknown.is_empty() {
        println!(
            "README names a test that does not carry the ID: {}",
            report.reviewer_unknown.join(", ")
        );
    }
    println!("{}", report.summary());
}
