//! `hearsay test-all`: a matrix of workloads x nemeses x targets, `--test-count` seeds
//! each, one run folder per run, within an optional time budget. Prints a line per run
//! as it finishes; writes `matrix.json`, `matrix.md` and an aggregated `junit.xml`
//! (every run's suite) under `<results>/matrix/<start>-seed<N>/`, rewritten after each
//! run so an interrupted matrix still leaves its table. Exit code: the worst verdict
//! (0 valid, 1 invalid, 2 unknown or harness error); runs the budget left out do not
//! count, but a matrix that ran nothing exits 2.

use crate::junit::{self, Suite};
use crate::runner::{self, RunError, RunOpts};
use crate::schedule::NemesisKind;
use crate::summary::{self, Summary};
use crate::target::TargetChoice;
use hearsay_checkers::Valid;
use hearsay_workloads::any::Workload;
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Options of `hearsay test-all`.
#[derive(Clone, Debug, clap::Args)]
#[command(mut_arg("target", |a| a.hide(true)))]
#[command(mut_arg("workload", |a| a.hide(true)))]
#[command(mut_arg("nemesis", |a| a.hide(true)))]
pub struct MatrixOpts {
    /// Workloads, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "set,register")]
    pub workloads: Vec<String>,
    /// Nemeses, comma-separated; join kinds with `+` to combine them in one run
    /// (e.g. `partition+kill,pause`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "partition,kill,pause,clock"
    )]
    pub nemeses: Vec<String>,
    /// Targets, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "hearsay,redis")]
    pub targets: Vec<TargetChoice>,
    /// Seconds for the whole matrix: a run starts only if it can finish its workload
    /// (--time-limit) within the budget; the rest are listed as not run.
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// The run options, as for `hearsay run` (`--target`, `--workload`, `--nemesis` are
    /// replaced by the lists above; `--test-count` seeds per cell: seed, seed+1, ...).
    #[command(flatten)]
    pub run: RunOpts,
}

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

/// The runs, breadth first: every workload x nemesis x target for the first seed, then
/// for the next, so a time budget cuts seeds rather than whole workloads.
pub fn expand(
    workloads: &[String],
    nemeses: &[String],
    targets: &[TargetChoice],
    test_count: u32,
    base_seed: u64,
) -> Vec<Cell> {
    let mut out = Vec::new();
    for i in 0..test_count.max(1) {
        for w in workloads {
            for n in nemeses {
                for t in targets {
                    out.push(Cell {
                        workload: w.trim().to_string(),
                        nemesis: n.trim().replace('+', ","),
                        target: *t,
                        seed: base_seed.wrapping_add(u64::from(i)),
                    });
                }
            }
        }
    }
    out
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

/// Whether a run of `time_limit` seconds may start `elapsed` seconds into the matrix.
pub fn fits_budget(budget: Option<f64>, elapsed: f64, time_limit: f64) -> bool {
    budget.is_none_or(|b| elapsed + time_limit <= b)
}

fn validate(opts: &MatrixOpts) -> Result<(), String> {
    if opts.workloads.is_empty() || opts.nemeses.is_empty() || opts.targets.is_empty() {
        return Err("--workloads, --nemeses and --targets must not be empty".into());
    }
    for w in &opts.workloads {
        if Workload::parse(w.trim()).is_none() {
            return Err(format!("unknown workload {w}: one of {}", Workload::NAMES));
        }
    }
    for n in &opts.nemeses {
        NemesisKind::parse_list(&n.trim().replace('+', ","))?;
    }
    if opts.time_budget.is_some_and(|b| b.is_nan() || b <= 0.0) {
        return Err("--time-budget must be > 0 seconds".into());
    }
    Ok(())
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

fn line(i: usize, e: &Entry) -> String {
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

fn header() -> String {
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

fn write_files(dir: &Path, entries: &[Entry], outcomes: &[Outcome], done: bool) {
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

/// `hearsay test-all`: runs the matrix; returns the exit code.
pub async fn main(opts: &MatrixOpts) -> i32 {
    if let Err(e) = validate(opts) {
        eprintln!("hearsay test-all: {e}");
        return 254;
    }
    let base = opts
        .run
        .seed
        .unwrap_or_else(hearsay_workloads::rng::os_seed);
    let cells = expand(
        &opts.workloads,
        &opts.nemeses,
        &opts.targets,
        opts.run.test_count,
        base,
    );
    let dir = opts.run.results_dir.join("matrix").join(format!(
        "{}-seed{base}",
        runner::utc_stamp(SystemTime::now())
    ));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("hearsay test-all: create {}: {e}", dir.display());
        return 2;
    }
    eprintln!(
        "[hearsay test-all] {} runs (seed {base}), folder {}",
        cells.len(),
        dir.display()
    );
    println!("{}", header());
    let t0 = Instant::now();
    let mut entries: Vec<Entry> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for cell in cells {
        let elapsed = t0.elapsed().as_secs_f64();
        let t_run = Instant::now();
        let (outcome, run_dir, summary) =
            if !fits_budget(opts.time_budget, elapsed, opts.run.time_limit) {
                let reason = format!(
                    "time budget: {elapsed:.0} s of {:.0} s spent",
                    opts.time_budget.unwrap_or(0.0)
                );
                (Outcome::NotRun { reason }, None, None)
            } else {
                let mut o = opts.run.clone();
                o.workload = cell.workload.clone();
                o.nemesis = cell.nemesis.clone();
                o.target = cell.target;
                o.seed = Some(cell.seed);
                o.test_count = 1;
                o.dry_run = false;
                match runner::run_one(&o).await {
                    Ok(s) => {
                        let sum = summary::summarize(&s.run_dir).ok();
                        (Outcome::Verdict { valid: s.valid }, Some(s.run_dir), sum)
                    }
                    Err(RunError::BadOption(e)) => {
                        eprintln!("hearsay test-all: {e}");
                        return 254;
                    }
                    Err(e) => (
                        Outcome::Error {
                            error: e.to_string(),
                        },
                        None,
                        None,
                    ),
                }
            };
        let e = Entry {
            cell,
            outcome: outcome.clone(),
            run_dir,
            seconds: t_run.elapsed().as_secs_f64(),
            summary,
        };
        println!("{}", line(entries.len(), &e));
        outcomes.push(outcome);
        entries.push(e);
        write_files(&dir, &entries, &outcomes, false);
    }
    write_files(&dir, &entries, &outcomes, true);
    let code = exit_code(&outcomes);
    println!(
        "matrix folder: {}  ({} runs, exit code {code})",
        dir.display(),
        entries.len()
    );
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn expansion_is_breadth_first_over_seeds() {
        let cells = expand(
            &v(&["set", "register"]),
            &v(&["partition+kill", "pause"]),
            &[TargetChoice::Hearsay, TargetChoice::Redis],
            2,
            7,
        );
        assert_eq!(cells.len(), 16);
        assert!(cells[..8].iter().all(|c| c.seed == 7));
        assert!(cells[8..].iter().all(|c| c.seed == 8));
        assert_eq!(
            cells[0],
            Cell {
                workload: "set".into(),
                nemesis: "partition,kill".into(),
                target: TargetChoice::Hearsay,
                seed: 7
            }
        );
        assert_eq!(cells[1].target, TargetChoice::Redis);
        assert_eq!(cells[2].nemesis, "pause");
        assert_eq!(cells[4].workload, "register");
        assert_eq!(cells[0].test(), "set-hearsay");
        // test_count 0 still runs the matrix once.
        assert_eq!(
            expand(&v(&["set"]), &v(&["none"]), &[TargetChoice::Redis], 0, 1).len(),
            1
        );
    }

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
    fn budget_admits_only_runs_that_can_finish() {
        assert!(fits_budget(None, 1e9, 60.0));
        assert!(fits_budget(Some(100.0), 40.0, 60.0));
        assert!(!fits_budget(Some(100.0), 41.0, 60.0));
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
        crate::junit::tests::well_formed(&x).unwrap();
        assert!(x.contains("name=\"set-redis.kill.seed1\""));
        assert!(x.contains("&lt;boom&gt;"));
        assert!(x.contains("errors=\"1\" skipped=\"1\""));
        assert!(line(0, &entries[0]).contains("error"));
    }

    #[test]
    fn bad_lists_are_refused() {
        let mut o = MatrixOpts {
            workloads: v(&["set"]),
            nemeses: v(&["partition+kill"]),
            targets: vec![TargetChoice::Redis],
            time_budget: None,
            run: serde_json::from_value(serde_json::json!({
                "target": "redis", "nodes": 6, "replicas": 1, "workload": "set", "nemesis": "none",
                "nemesis_interval": 10.0, "time_limit": 10.0, "rate": 100.0, "concurrency": 5,
                "node_timeout": 2000, "seed": null, "results_dir": "results", "test_count": 1,
                "redis_server": "redis-server", "hearsay_node": null, "keys": 16, "read_fraction": 0.1,
                "op_timeout": 1000, "snapshot_interval": 1000, "recovery_timeout": 60.0,
                "loglevel": "debug", "schedule_from": null, "linearizable": false, "dry_run": false
            }))
            .unwrap(),
        };
        assert!(validate(&o).is_ok());
        o.nemeses = v(&["partition+flood"]);
        assert!(validate(&o).is_err());
        o.nemeses = v(&["pause"]);
        o.workloads = v(&["bank"]);
        assert!(validate(&o).is_err());
    }
}
