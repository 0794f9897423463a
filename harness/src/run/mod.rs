//! One test run, start to verdict:
//! network → nodes → formation → workload + nemesis → heal → recovery → final reads →
//! stop → teardown → judge. Every resource is registered before it is created, and a
//! guard tears everything down on every exit path (return, error, panic, Ctrl-C drop).
//!
//! Imports: `targets/`, `faults/`, `env/` below; never `output/` or `cli/` (the CLI
//! writes the views of a run's folder after it returns).

pub mod folder;
pub mod judge;
pub mod phases;
pub mod workload;

use crate::env::registry::{self, Registry};
use crate::faults::schedule::{self, NemesisKind, Planned};
use crate::opts::{RunOpts, TargetChoice};
use crate::targets::{self, TargetError};
use hearsay_checkers::Valid;
use hearsay_workloads::any::Workload;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

pub use judge::{check_dir, Checked};

/// Run errors (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("bad option: {0}")]
    BadOption(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Schedule(#[from] schedule::LoadError),
    #[error(transparent)]
    History(#[from] hearsay_checkers::history::HistoryError),
    /// A harness error after the run folder existed: the folder has the evidence
    /// gathered so far and a run-info.json naming the error.
    #[error("{source}")]
    InRun {
        run_dir: PathBuf,
        #[source]
        source: Box<RunError>,
    },
    #[error("{0}")]
    Other(String),
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub seed: u64,
    pub valid: Valid,
    /// Nemesis steps whose effect could not be verified.
    pub unverified: usize,
    /// A dry run: the folder holds only test.json and schedule.json.
    pub dry_run: bool,
}

/// Deletes everything the run created when dropped (normal end, `?`, panic unwinding,
/// or the run future being dropped on Ctrl-C).
struct Guard(Arc<Registry>);

impl Drop for Guard {
    fn drop(&mut self) {
        let r = self.0.teardown();
        if !r.errors.is_empty() {
            eprintln!(
                "teardown of {} left errors: {:?} (run `hearsay clean`)",
                r.prefix, r.errors
            );
        }
    }
}

/// Removes what crashed runs left behind (their owner process is gone), and says
/// what: a new run on top of a dead run's namespaces, rules and processes would be
/// judged on a machine that is not what it thinks.
fn clean_leftovers() {
    for r in registry::clean(&registry::registry_dir(), false, false) {
        eprintln!(
            "[hearsay] removed leftovers of crashed run {}: processes {:?}, netns {:?}, links {:?}, nft {:?}{}",
            r.prefix,
            r.killed,
            r.netns_removed,
            r.links_removed,
            r.nft_removed,
            if r.errors.is_empty() {
                String::new()
            } else {
                format!(" (errors: {:?}; run `hearsay clean`)", r.errors)
            }
        );
    }
}

/// The seeds of `opts.test_count` tests: seed, seed+1, ...
pub fn seeds(opts: &RunOpts) -> Vec<u64> {
    let base = opts.seed.unwrap_or_else(hearsay_workloads::rng::os_seed);
    (0..opts.test_count.max(1))
        .map(|i| base.wrapping_add(i as u64))
        .collect()
}

/// The planned schedule for these options (pure; used by runs, dry runs and tests).
pub fn plan(opts: &RunOpts, seed: u64) -> Result<Vec<Planned>, RunError> {
    if let Some(dir) = &opts.schedule_from {
        let planned = schedule::load_realised(dir)?;
        schedule::timeline(&planned)
            .map_err(|e| RunError::BadOption(format!("{}: {e}", dir.display())))?;
        let spare = usize::from(planned.iter().any(|p| p.fault.kind().is_reshape()));
        check_schedule_nodes(&planned, opts.nodes + spare, dir)?;
        return Ok(planned);
    }
    let kinds = nemesis_kinds(opts)?;
    Ok(crate::faults::generate::generate_with(
        seed,
        &kinds,
        (opts.nemesis_interval * 1000.0) as u64,
        (opts.time_limit * 1000.0) as u64,
        crate::faults::packages::Timing {
            node_timeout_ms: opts.node_timeout,
            election_delay_ms: opts.node_election_delay_ms,
        },
        &partition_shapes(opts)?,
    ))
}

/// The `--nemesis` kinds for this target: `reshard` and `member` change a Redis
/// Cluster's shape, so other targets (and the simulator, which does not model
/// them) refuse them by name and leave them out of `all`.
fn nemesis_kinds(opts: &RunOpts) -> Result<Vec<NemesisKind>, RunError> {
    let mut kinds = NemesisKind::parse_list(&opts.nemesis).map_err(RunError::BadOption)?;
    if !opts.target.reshapes() {
        let named: Vec<&str> = opts.nemesis.split(',').map(str::trim).collect();
        if let Some(k) = NemesisKind::RESHAPE
            .iter()
            .find(|k| named.contains(&k.name()))
        {
            return Err(RunError::BadOption(format!(
                "--nemesis {}: only Redis Cluster targets on real processes (hearsay, redis, mixed) reshard or change members",
                k.name()
            )));
        }
        kinds.retain(|k| !k.is_reshape());
    }
    Ok(kinds)
}

/// The options with a fixed-shape target's node count in `nodes` (test.json then
/// records what ran; `--nodes` and `--replicas` describe Redis Cluster layouts).
pub fn fixed_shape(opts: &RunOpts) -> RunOpts {
    let mut o = opts.clone();
    if let Some(n) = o.target.fixed_nodes() {
        o.nodes = n;
        o.replicas = if o.target == TargetChoice::Sentinel {
            2
        } else {
            0
        };
    }
    o
}

/// The partition shapes of the draw: `--partitions` alone, else the target's extras.
fn partition_shapes(opts: &RunOpts) -> Result<schedule::Shapes, RunError> {
    match &opts.partitions {
        Some(list) => {
            let only = schedule::PartitionSpec::parse_list(list).map_err(RunError::BadOption)?;
            if only.is_empty() {
                return Err(RunError::BadOption("--partitions names no shape".into()));
            }
            Ok(schedule::Shapes::Only(only))
        }
        None => Ok(schedule::Shapes::Add(targets::extra_partitions(
            opts.target,
        ))),
    }
}

/// Refuses options that cannot work.
pub fn validate(opts: &RunOpts) -> Result<(), RunError> {
    let opts = &fixed_shape(opts);
    let bad = |s: &str| Err(RunError::BadOption(s.to_string()));
    if Workload::parse(&opts.workload).is_none() {
        return Err(RunError::BadOption(format!(
            "unknown --workload {}: one of {}",
            opts.workload,
            Workload::NAMES
        )));
    }
    if opts.target == TargetChoice::Twemproxy
        && !matches!(
            Workload::parse(&opts.workload),
            Some(Workload::Set | Workload::Counter)
        )
    {
        return Err(RunError::BadOption(format!(
            "--target twemproxy runs the set and counter workloads: twemproxy does not proxy \
             WATCH/MULTI/EXEC, which {} needs",
            opts.workload
        )));
    }
    // The simulator has no namespaces or ports to run out of.
    let max_nodes = if opts.target == TargetChoice::Sim {
        5000
    } else {
        200
    };
    if !(1..=max_nodes).contains(&opts.nodes) {
        return Err(RunError::BadOption(format!(
            "--nodes must be 1..={max_nodes}"
        )));
    }
    if opts.nodes < opts.replicas + 1 {
        return bad("--nodes must be at least --replicas + 1");
    }
    if !(opts.time_limit > 0.0 && opts.time_limit <= 86400.0) {
        return bad("--time-limit must be in (0, 86400] seconds");
    }
    if !(opts.rate > 0.0 && opts.rate <= 100_000.0)
        || opts.concurrency == 0
        || opts.concurrency > 1000
    {
        return bad("--rate must be in (0, 100000] and --concurrency in 1..=1000");
    }
    if opts.nemesis_interval.is_nan() || opts.nemesis_interval < 0.1 {
        return bad("--nemesis-interval must be at least 0.1 s");
    }
    // Values a server or the schedule cannot work with: refused before anything starts.
    if !(100..=3_600_000).contains(&opts.node_timeout) {
        return bad("--node-timeout must be 100..=3600000 ms (redis needs a timeout > 0; below 100 ms the 100 ms cron cannot keep it)");
    }
    if !(1..=600_000).contains(&opts.op_timeout) {
        return bad("--op-timeout must be 1..=600000 ms");
    }
    if !(100..=60_000).contains(&opts.snapshot_interval) {
        return bad("--snapshot-interval must be 100..=60000 ms");
    }
    if !(opts.recovery_timeout > 0.0 && opts.recovery_timeout <= 3600.0) {
        return bad("--recovery-timeout must be in (0, 3600] seconds");
    }
    if !(1..=100_000).contains(&opts.keys) {
        return bad("--keys must be 1..=100000");
    }
    if !(0.0..=1.0).contains(&opts.read_fraction) {
        return bad("--read-fraction must be in [0, 1]");
    }
    if !["debug", "verbose", "notice", "warning"].contains(&opts.loglevel.as_str()) {
        return bad("--loglevel must be debug, verbose, notice or warning");
    }
    if opts.convergence_bound_ms == Some(0) {
        return bad("--convergence-bound-ms must be > 0");
    }
    if opts.test_count == 0 {
        return bad("--test-count must be >= 1");
    }
    nemesis_kinds(opts)?;
    partition_shapes(opts)?;
    Ok(())
}

/// A replayed schedule must name nodes this run has: a fault on node 9 of a six-node
/// run would run on no node and look verified.
fn check_schedule_nodes(
    planned: &[Planned],
    nodes: usize,
    from: &std::path::Path,
) -> Result<(), RunError> {
    for (i, p) in planned.iter().enumerate() {
        if let Some(bad) = schedule::node_indices(&p.fault)
            .into_iter()
            .find(|n| *n >= nodes)
        {
            return Err(RunError::BadOption(format!(
                "{}: fault {i} ({}) names node index {bad}, but this run has {nodes} nodes (indices 0..{})",
                from.display(),
                p.fault.kind().name(),
                nodes.saturating_sub(1)
            )));
        }
    }
    if planned.is_empty() {
        return Err(RunError::BadOption(format!(
            "{}: the run realised no fault, so there is no schedule to replay",
            from.display()
        )));
    }
    Ok(())
}

/// One test (`opts.seed` must be set; see [`seeds`]): plans it, writes the folder's
/// test.json and schedule.json, runs its phases on the target, judges the folder.
pub async fn run_one(opts: &RunOpts) -> Result<RunSummary, RunError> {
    let opts = &fixed_shape(opts);
    validate(opts)?;
    let seed = opts.seed.unwrap_or_else(hearsay_workloads::rng::os_seed);
    eprintln!("[hearsay] seed {seed}");
    let planned = plan(opts, seed)?;
    let mut target = targets::build(opts);
    let test = format!("{}-{}", opts.workload, target.name());
    let started = SystemTime::now();
    let run_dir = folder::create(&opts.results_dir, &test, seed, started)?;
    let prefix = registry::new_prefix();
    let test_json = folder::TestJson {
        test: &test,
        seed,
        started,
        prefix: &prefix,
        opts,
        versions: target.versions(),
        binaries: target.binaries(),
    };
    folder::write_json(&run_dir.join("test.json"), &test_json.to_json())?;
    folder::write_json(&run_dir.join("schedule.json"), &json!(planned))?;
    folder::link_latest(&opts.results_dir, &test, &run_dir);
    eprintln!("[hearsay] run folder {}", run_dir.display());
    if opts.dry_run {
        for p in &planned {
            println!("{}", serde_json::to_string(p).unwrap_or_default());
        }
        return Ok(RunSummary {
            run_dir,
            seed,
            valid: Valid::Unknown,
            unverified: 0,
            dry_run: true,
        });
    }
    clean_leftovers();
    let reg = Registry::create(&prefix)?;
    let guard = Guard(reg.clone());
    reg.set_run_dir(&run_dir)?;
    let result = phases::execute(target.as_mut(), opts, seed, &planned, &run_dir, reg).await;
    drop(guard);
    if let Err(e) = result {
        let _ = folder::write_json(
            &run_dir.join("run-info.json"),
            &json!({"error": e.to_string()}),
        );
        return Err(RunError::InRun {
            run_dir,
            source: Box::new(e),
        });
    }
    let checked = check_dir(&run_dir)?;
    let unverified = checked.results["nemesis"]["unverified"]
        .as_array()
        .map_or(0, |a| a.len());
    Ok(RunSummary {
        run_dir,
        seed,
        valid: checked.valid,
        unverified,
        dry_run: false,
    })
}
