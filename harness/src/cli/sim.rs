//! `hearsay sim`: one seed or a search over many, in the simulator.

use super::render;
use crate::opts::RunOpts;
use crate::sim::{self, search, SimOpts};
use hearsay_checkers::Valid;

/// `hearsay sim` options: a run's options plus the simulator's own.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    #[command(flatten)]
    pub run: RunOpts,
    /// Seeds to run: N or A..B (inclusive); default: --seed, else 1.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Threads (each seed runs alone on one; the result never depends on it).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Stop handing out seeds after the first failing one.
    #[arg(long)]
    pub stop_at_first: bool,
    /// Keep every run folder (default: only failing and unknown ones, or the
    /// folder of a single seed).
    #[arg(long)]
    pub keep_all: bool,
    /// Send every bus message through the node's wire codec and back.
    #[arg(long)]
    pub codec: bool,
    /// Shrink the first failing seed's schedule (fewer faults, shorter
    /// windows, fewer nodes) while it still fails; writes the minimal one.
    #[arg(long)]
    pub shrink: bool,
}

pub fn main(a: &SimArgs) -> i32 {
    let mut opts = a.run.clone();
    opts.target = crate::opts::TargetChoice::Sim;
    let seeds = match &a.seeds {
        Some(s) => match search::parse_seeds(s) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("hearsay sim: {e}");
                return 254;
            }
        },
        None => vec![opts.seed.unwrap_or(1)],
    };
    if let Err(e) = crate::run::validate(&opts) {
        eprintln!("hearsay sim: {e}");
        return 254;
    }
    let planned = match &opts.schedule_from {
        Some(_) => match crate::run::plan(&opts, seeds.first().copied().unwrap_or(1)) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("hearsay sim: {e}");
                return 254;
            }
        },
        None => None,
    };
    let simo = SimOpts {
        codec: a.codec,
        no_check: false,
    };
    let single = seeds.len() == 1;
    let r = search::search(
        &opts,
        &seeds,
        a.jobs,
        &simo,
        planned,
        a.keep_all || single,
        a.stop_at_first,
    );
    for run in r.runs.iter().filter(|r| single || r.valid != Valid::True) {
        render::run_files(&run.dir);
        crate::output::report::after_run(&run.dir, &opts.results_dir);
    }
    let sim_s: f64 = r.runs.iter().map(|x| x.sim_secs).sum();
    for run in r.runs.iter().filter(|_| single) {
        println!(
            "{}  seed {}  valid: {}  digest {}  ({:.1} simulated s in {:.2} s: {:.0}x; ops ok {} fail {} info {})",
            run.dir.display(),
            run.seed,
            super::verdict_text(run.valid),
            run.digest,
            run.sim_secs,
            run.wall_secs,
            run.sim_secs / run.wall_secs.max(1e-9),
            run.ops.0,
            run.ops.1,
            run.ops.2
        );
    }
    if !single {
        println!(
            "{} seeds in {:.1} s ({:.1} seeds/s, {:.0}x simulated/real): {} failing, {} unknown, {} errors",
            r.runs.len() + r.errors.len(),
            r.wall_secs,
            r.runs.len() as f64 / r.wall_secs.max(1e-9),
            sim_s / r.wall_secs.max(1e-9),
            r.failing.len(),
            r.runs.iter().filter(|x| x.valid == Valid::Unknown).count(),
            r.errors.len()
        );
        for f in &r.failing {
            println!(
                "FAILED seed {}: {}  {}",
                f.seed,
                f.broken.join(", "),
                f.dir.display()
            );
        }
    }
    if a.shrink {
        if let Some(f) = r.failing.first() {
            match sim::shrink::shrink(&opts, f, &simo) {
                Ok(s) => println!(
                    "shrunk seed {}: {} faults, {} nodes -> {}",
                    f.seed,
                    s.faults,
                    s.nodes,
                    s.path.display()
                ),
                Err(e) => eprintln!("hearsay sim: shrink: {e}"),
            }
        }
    }
    if !r.errors.is_empty() {
        return 2;
    }
    let mut worst = Valid::True;
    for run in &r.runs {
        worst = worst.and(run.valid);
    }
    worst.exit_code()
}
