//! Many seeds: `--seeds A..B --jobs N`, each seed its own world on one of N
//! threads (a world shares nothing, so `--jobs` cannot change a run), a
//! progress line, every failing seed printed with the rules it broke and its
//! folder; passing folders are deleted unless asked to keep them.

use super::{run_seed, SimOpts, SimRun};
use crate::faults::schedule::Planned;
use crate::opts::RunOpts;
use hearsay_checkers::Valid;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// Parses `A..B` (inclusive) or a single seed.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("--seeds {s:?}: want N or A..B");
    match s.split_once("..") {
        Some((a, b)) => {
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let b: u64 = b
                .trim()
                .trim_start_matches('=')
                .parse()
                .map_err(|_| bad())?;
            if b < a || b - a > 10_000_000 {
                return Err(bad());
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![s.trim().parse().map_err(|_| bad())?]),
    }
}

/// How a search ended.
pub struct Searched {
    pub runs: Vec<SimRun>,
    pub failing: Vec<SimRun>,
    /// The lowest seed that hit (`Plan::want`, or any failure).
    pub first_hit: Option<u64>,
    pub errors: Vec<(u64, String)>,
    pub wall_secs: f64,
}

/// How to search.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub jobs: usize,
    /// Keep every folder (else only failing and unknown ones).
    pub keep_all: bool,
    /// Stop handing out seeds after the first failure (runs in flight finish).
    pub stop_at_first: bool,
    /// Only a run that breaks this rule counts as a hit (for --stop-at-first
    /// and the first-hit line); e.g. `protocol:one-vote-per-epoch`.
    pub want: Option<String>,
}

impl Plan {
    fn hit(&self, run: &SimRun) -> bool {
        run.valid == Valid::False
            && self.want.as_ref().is_none_or(|w| {
                run.broken
                    .iter()
                    .any(|b| b == w || b.ends_with(&format!(":{w}")))
            })
    }
}

/// Runs `seeds` on `plan.jobs` threads.
pub fn search(
    opts: &RunOpts,
    seeds: &[u64],
    plan: &Plan,
    sim: &SimOpts,
    planned: Option<Vec<Planned>>,
) -> Searched {
    let (jobs, keep_all, stop_at_first) = (plan.jobs, plan.keep_all, plan.stop_at_first);
    let t0 = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(u64, Result<SimRun, String>)>();
    let mut out = Searched {
        runs: Vec::new(),
        failing: Vec::new(),
        first_hit: None,
        errors: Vec::new(),
        wall_secs: 0.0,
    };
    let tty = std::io::stderr().is_terminal();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let (next, stop, planned) = (&next, &stop, planned.clone());
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(k) else { return };
                let r = run_seed(opts, seed, planned.clone(), sim).map_err(|e| e.to_string());
                if let Ok(run) = &r {
                    if plan.hit(run) && stop_at_first {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if run.valid == Valid::True && !keep_all {
                        let _ = std::fs::remove_dir_all(&run.dir);
                    }
                }
                if tx.send((seed, r)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let total = seeds.len();
        let mut done = 0usize;
        let mut last_print = 0usize;
        for (seed, r) in rx {
            done += 1;
            match r {
                Ok(run) => {
                    if run.valid == Valid::False {
                        eprintln!(
                            "{}seed {seed} FAILED: {}  {}",
                            if tty { "\r\x1b[2K" } else { "" },
                            if run.broken.is_empty() {
                                "(see results.json)".to_string()
                            } else {
                                run.broken.join(", ")
                            },
                            run.dir.display()
                        );
                        out.failing.push(run.clone());
                    } else if run.valid == Valid::Unknown {
                        eprintln!(
                            "{}seed {seed} unknown: {}  {}",
                            if tty { "\r\x1b[2K" } else { "" },
                            run.unknown.join("; "),
                            run.dir.display()
                        );
                    }
                    out.runs.push(run);
                }
                Err(e) => {
                    eprintln!("seed {seed}: harness error: {e}");
                    out.errors.push((seed, e));
                }
            }
            let step = (total / 20).max(1);
            if tty || done - last_print >= step || done == total {
                last_print = done;
                let el = t0.elapsed().as_secs_f64();
                let bar_w = 30;
                let filled = done * bar_w / total.max(1);
                eprint!(
                    "{}[{}{}] {done}/{total} seeds, {} failing, {:.1} seeds/s{}",
                    if tty { "\r\x1b[2K" } else { "" },
                    "#".repeat(filled),
                    ".".repeat(bar_w - filled),
                    out.failing.len(),
                    done as f64 / el.max(1e-9),
                    if tty { "" } else { "\n" }
                );
            }
        }
        if tty {
            eprintln!();
        }
    });
    out.runs.sort_by_key(|r| r.seed);
    out.failing.sort_by_key(|r| r.seed);
    out.first_hit = out.failing.iter().find(|r| plan.hit(r)).map(|r| r.seed);
    out.wall_secs = t0.elapsed().as_secs_f64();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse() {
        assert_eq!(parse_seeds("3").unwrap(), vec![3]);
        assert_eq!(parse_seeds("1..4").unwrap(), vec![1, 2, 3, 4]);
        assert!(parse_seeds("4..1").is_err());
        assert!(parse_seeds("x").is_err());
    }
}
