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
    /// Only a run that breaks this rule counts as a hit (e.g.
    /// one-vote-per-epoch, claims:unexplained); prints the first seed that does.
    #[arg(long)]
    pub want: Option<String>,
    /// Keep every run folder (default: only failing and unknown ones, or the
    /// folder of a single seed).
    #[arg(long)]
    pub keep_all: bool,
    /// Send every bus message through the node's wire codec and back.
    #[arg(long)]
    pub codec: bool,
    /// Benchmark: simulated seconds per wall second at --nodes (the judge is
    /// skipped), one seed at a time and then --jobs (at least 2) at once,
    /// and the cost per simulated node-second for each of --bench-nodes
    /// (comma list, e.g. 6,30,100,300,1000).
    #[arg(long)]
    pub bench: bool,
    #[arg(long, value_delimiter = ',')]
    pub bench_nodes: Vec<usize>,
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
    if a.bench {
        return bench(&opts, &seeds, a, &simo);
    }
    let single = seeds.len() == 1;
    let plan = search::Plan {
        jobs: a.jobs,
        keep_all: a.keep_all || single,
        stop_at_first: a.stop_at_first,
        want: a.want.clone(),
    };
    let r = search::search(&opts, &seeds, &plan, &simo, planned);
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
        match (r.first_hit, &a.want) {
            (Some(s), Some(w)) => println!("first hit of {w}: seed {s}"),
            (Some(s), None) => println!("first failing seed: {s}"),
            (None, Some(w)) => println!("no seed broke {w}"),
            (None, None) => {}
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

/// `--bench`: the simulator alone (no judge), one thread; then, at --nodes,
/// the same seeds again on --jobs threads (at least 2): a search's throughput.
fn bench(opts: &RunOpts, seeds: &[u64], a: &SimArgs, simo: &SimOpts) -> i32 {
    let simo = SimOpts {
        no_check: true,
        ..simo.clone()
    };
    let mut sizes = vec![opts.nodes];
    sizes.extend(a.bench_nodes.iter().copied().filter(|n| *n != opts.nodes));
    for n in sizes {
        let mut o = opts.clone();
        o.nodes = n;
        let (mut sim_s, mut wall_s, mut cpu_s, mut events) = (0.0, 0.0, 0.0, 0u64);
        let (mut form_sim, mut form_cpu) = (0.0, 0.0);
        let mut mem = 0u64;
        for &seed in seeds {
            let before = crate::rss_kb();
            match sim::run_seed(&o, seed, None, &simo) {
                Ok(r) => {
                    sim_s += r.sim_secs;
                    wall_s += r.wall_secs;
                    cpu_s += r.cpu_secs;
                    form_sim += r.form_sim_secs;
                    form_cpu += r.form_cpu_secs;
                    events += r.stats.events;
                    mem = mem.max(r.peak_kb.saturating_sub(before));
                    let _ = std::fs::remove_dir_all(&r.dir);
                }
                Err(e) => {
                    eprintln!("hearsay sim --bench: {n} nodes seed {seed}: {e}");
                    return 2;
                }
            }
        }
        println!(
            "nodes {n:5}  {:.0} simulated s in {:.2} s wall ({:.2} s CPU): {:.0}x wall, {:.0}x CPU  {:.1} us CPU per simulated node-second  {} events  ~{} KB per node",
            sim_s,
            wall_s,
            cpu_s,
            sim_s / wall_s.max(1e-9),
            sim_s / cpu_s.max(1e-9),
            cpu_s * 1e6 / (sim_s * n as f64).max(1e-9),
            events,
            mem / n as u64
        );
        // The run after formation alone: what a node-second costs once formed.
        let run_cpu = (cpu_s - form_cpu).max(0.0);
        println!(
            "      {n:5}  formation {:.1} simulated s in {:.2} s CPU; after it {:.1} us CPU per simulated node-second",
            form_sim,
            form_cpu,
            run_cpu * 1e6 / (sim_s * n as f64).max(1e-9)
        );
        // What a search gets from the machine: the same seeds, several at once.
        if n == opts.nodes && seeds.len() > 1 {
            let jobs = a.jobs.max(2);
            let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
            match bench_parallel(&o, seeds, jobs, &simo) {
                Ok((sim_p, wall_p, cpu_p)) => println!(
                    "      {n:5}  search throughput, --jobs {jobs} ({jobs} seeds at once, {cores} cores): {:.0} simulated s in {:.2} s wall ({:.2} s CPU): {:.0}x wall",
                    sim_p,
                    wall_p,
                    cpu_p,
                    sim_p / wall_p.max(1e-9)
                ),
                Err(e) => {
                    eprintln!("hearsay sim --bench: {n} nodes, --jobs {jobs}: {e}");
                    return 2;
                }
            }
        }
    }
    0
}

/// `seeds` on `jobs` threads, as a search runs them: (simulated s, wall s
/// for all of them, CPU s summed over the runs).
fn bench_parallel(
    o: &RunOpts,
    seeds: &[u64],
    jobs: usize,
    simo: &SimOpts,
) -> Result<(f64, f64, f64), String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t0 = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    let per_thread: Vec<Result<(f64, f64), String>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let (mut sim_s, mut cpu_s) = (0.0, 0.0);
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&seed) = seeds.get(k) else {
                            return Ok((sim_s, cpu_s));
                        };
                        let r = sim::run_seed(o, seed, None, simo)
                            .map_err(|e| format!("seed {seed}: {e}"))?;
                        sim_s += r.sim_secs;
                        cpu_s += r.cpu_secs;
                        let _ = std::fs::remove_dir_all(&r.dir);
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let (mut sim_s, mut cpu_s) = (0.0, 0.0);
    for r in per_thread {
        let (a, b) = r?;
        sim_s += a;
        cpu_s += b;
    }
    Ok((sim_s, wall, cpu_s))
}
