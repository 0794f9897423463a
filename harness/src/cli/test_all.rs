//! `hearsay test-all`: a matrix of workloads x nemeses x targets, `--test-count` seeds
//! each, one run folder per run, within an optional time budget. Prints a line per run
//! as it finishes; the tables (`output/matrix.rs`) are rewritten after each run so an
//! interrupted matrix still leaves its table.

use crate::env::stamp::utc_stamp;
use crate::faults::schedule::NemesisKind;
use crate::opts::{RunOpts, TargetChoice};
use crate::output::matrix::{exit_code, header, line, write_files, Cell, Entry, Outcome};
use crate::output::summary;
use crate::run::RunError;
use hearsay_workloads::any::Workload;
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
    let dir = opts
        .run
        .results_dir
        .join("matrix")
        .join(format!("{}-seed{base}", utc_stamp(SystemTime::now())));
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
                match super::render::run_one(&o).await {
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
    fn budget_admits_only_runs_that_can_finish() {
        assert!(fits_budget(None, 1e9, 60.0));
        assert!(fits_budget(Some(100.0), 40.0, 60.0));
        assert!(!fits_budget(Some(100.0), 41.0, 60.0));
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
