//! The tables of `hearsay test-all` (`cli/test_all.rs` runs the matrix): a line per
//! run, `matrix.json`, `matrix.md` and an aggregated `junit.xml` (every run's suite)
//! under `<results>/matrix/<start>-seed<N>/`. Exit code: the worst verdict (0 valid,
//! 1 invalid, 2 unknown or harness error); runs the budget left out do not count, but
//! a matrix that ran nothing exits 2.

use crate::opts::TargetChoice;
use crate::output::junit::{self, Suite};
use crate::output::summary::{self, Summary};
use hearsay_checkers::Valid;
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One run of the matrix.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    pub workload: String,
    /// A `--nemesis` value (kinds joined by `,`).
    pub nemesis: String,
    pub target: TargetChoice,
    pub seed: u64,
}

impl Cell {
    pub fn test(&self) -> String {
        format!("{}-{}", self.workload, self.target.name())
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Verdict { valid: Valid },
    Error { error: String },
    NotRun { reason: String },
}

/// The matrix's exit code: invalid beats unknown and errors, which beat valid; runs
/// that never started do not count, but a matrix with no finished run is unknown.
pub fn exit_code(outcomes: &[Outcome]) -> i32 {
    let mut worst: Option<Valid> = None;
    for o in outcomes {
        let v = match o {
            Outcome::Verdict { valid } => *valid,
            Outcome::Error { .. } => Valid::Unknown,
            Outcome::NotRun { .. } => continue,
        };
        worst = Some(worst.map_or(v, |w| w.and(v)));
    }
    worst.unwrap_or(Valid::Unknown).exit_code()
}

/// One finished (or skipped) run, as matrix.json lists it.
#[derive(Debug, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub cell: Cell,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub run_dir: Option<PathBuf>,
    pub seconds: f64,
    pub summary: Option<Summary>,
}

fn verdict_word(o: &Outcome) -> String {
    match o {
        Outcome::Verdict { valid: Valid::True } => "valid".into(),
        Outcome::Verdict {
            valid: Valid::False,
        } => "INVALID".into(),
        Outcome::Verdict {
            valid: Valid::Unknown,
        } => "unknown".into(),
        Outcome::Error { .. } => "error".into(),
        Outcome::NotRun { .. } => "not run".into(),
    }
}

pub fn line(i: usize, e: &Entry) -> String {
    let detail = match &e.outcome {
        Outcome::Error { error } => error.lines().next().unwrap_or("").to_string(),
        Outcome::NotRun { reason } => reason.clone(),
        Outcome::Verdict { .. } => e
            .run_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    };
    format!(
        "{:>3}  {:<12} {:<24} {:<8} {:>6}  {:<8} {:>6.0}s  {}",
        i + 1,
        e.cell.workload,
        e.cell.nemesis,
        e.cell.target.name(),
        e.cell.seed,
        verdict_word(&e.outcome),
        e.seconds,
        detail
    )
}

pub fn header() -> String {
    format!(
        "{:>3}  {:<12} {:<24} {:<8} {:>6}  {:<8} {:>7}  {}",
        "#", "workload", "nemesis", "target", "seed", "verdict", "time", "run folder / reason"
    )
}

fn suite_of(e: &Entry) -> Suite {
    let class = junit::classname(&e.cell.test(), &e.cell.nemesis, Some(e.cell.seed));
    match (&e.outcome, &e.summary, &e.run_dir) {
        (Outcome::Verdict { .. }, Some(s), Some(dir)) => {
            let results = std::fs::read_to_string(dir.join("results.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
            junit::run_suite(s, &summary::checkers(&results))
        }
        (Outcome::NotRun { reason }, _, _) => junit::unrun_suite(&class, "run", reason, true),
        (Outcome::Error { error }, _, _) => junit::unrun_suite(&class, "run", error, false),
        _ => junit::unrun_suite(&class, "run", "run folder has no summary", false),
    }
}

pub fn write_files(dir: &Path, entries: &[Entry], outcomes: &[Outcome], done: bool) {
    let json = serde_json::json!({
        "complete": done,
        "exit_code": exit_code(outcomes),
        "runs": entries,
    });
    let mut md = format!("```\n{}\n", header());
    for (i, e) in entries.iter().enumerate() {
        let _ = writeln!(md, "{}", line(i, e));
    }
    md.push_str("```\n");
    let suites: Vec<Suite> = entries.iter().map(suite_of).collect();
    for (name, text) in [
        (
            "matrix.json",
            serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
        ),
        ("matrix.md", md),
        ("junit.xml", junit::render(&suites)),
    ] {
        if let Err(e) = std::fs::write(dir.join(name), text) {
            eprintln!(
                "[hearsay test-all] cannot write {}: {e}",
                dir.join(name).display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_verdict_wins() {
        use Outcome::*;
        let ok = Verdict { valid: Valid::True };
        let bad = Verdict {
            valid: Valid::False,
        };
        let unk = Verdict {
            valid: Valid::Unknown,
        };
        let err = Error { error: "x".into() };
        let skip = NotRun {
            reason: "budget".into(),
        };
        assert_eq!(exit_code(&[ok.clone(), ok.clone()]), 0);
        assert_eq!(exit_code(&[ok.clone(), skip.clone()]), 0);
        assert_eq!(exit_code(&[ok.clone(), unk.clone()]), 2);
        assert_eq!(exit_code(&[ok.clone(), err.clone()]), 2);
        assert_eq!(exit_code(&[err, bad.clone(), unk]), 1);
        assert_eq!(exit_code(&[bad, ok]), 1);
        assert_eq!(exit_code(&[skip]), 2, "nothing ran: no verdict");
        assert_eq!(exit_code(&[]), 2);
    }

    #[test]
    fn junit_of_a_matrix_lists_errors_and_skips() {
        let cell = |seed| Cell {
            workload: "set".into(),
            nemesis: "kill".into(),
            target: TargetChoice::Redis,
            seed,
        };
        let entries = [
            Entry {
                cell: cell(1),
                outcome: Outcome::Error {
                    error: "node n1 exited <boom>".into(),
                },
                run_dir: None,
                seconds: 1.0,
                summary: None,
            },
            Entry {
                cell: cell(2),
                outcome: Outcome::NotRun {
                    reason: "time budget".into(),
                },
                run_dir: None,
                seconds: 0.0,
                summary: None,
            },
        ];
        let suites: Vec<Suite> = entries.iter().map(suite_of).collect();
        let x = junit::render(&suites);
        crate::output::junit::tests::well_formed(&x).unwrap();
        assert!(x.contains("name=\"set-redis.kill.seed1\""));
        assert!(x.contains("&lt;boom&gt;"));
        assert!(x.contains("errors=\"1\" skipped=\"1\""));
        assert!(line(0, &entries[0]).contains("error"));
    }
}
