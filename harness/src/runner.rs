//! One test run, start to verdict:
//! network → nodes → formation → workload + nemesis → heal → recovery → final reads →
//! stop → teardown → check. Every resource is registered before it is created, and a
//! guard tears everything down on every exit path (return, error, panic, Ctrl-C drop).

use crate::form;
use crate::nemesis::Nemesis;
use crate::net::Network;
use crate::recorder::{JsonLines, Recorder};
use crate::registry::{self, Registry};
use crate::schedule::{self, Fault, NemesisKind, Planned, Step};
use crate::target::{Kind, Node, NodeSettings, TargetChoice};
use hearsay_checkers::history::History;
use hearsay_checkers::set::{self as set_checker, SetOptions};
use hearsay_checkers::{OpType, Process, Valid};
use hearsay_workloads::any::{self, AnyGen, AnyOp, Workload};
use hearsay_workloads::cluster::{ClientConfig, ClusterClient};
use hearsay_workloads::rng::{stream, unit};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every option of a run; stored in test.json so `replay` can run it again.
#[derive(Clone, Debug, Serialize, Deserialize, clap::Args)]
pub struct RunOpts {
    /// Which servers to run.
    #[arg(long, value_enum, default_value = "redis")]
    pub target: TargetChoice,
    /// Number of nodes.
    #[arg(long, default_value_t = 6)]
    pub nodes: usize,
    /// Replicas per master.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Workload: set, register, counter, list-append.
    #[arg(long, default_value = "set")]
    pub workload: String,
    /// Comma list of partition, pause, kill, clock, loss, delay; or none, all.
    #[arg(long, default_value = "none")]
    pub nemesis: String,
    /// Mean seconds between faults (and mean fault duration).
    #[arg(long, default_value_t = 10.0)]
    pub nemesis_interval: f64,
    /// Seconds of workload.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Target client ops per second, all processes together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Number of client workers.
    #[arg(long, default_value_t = 5)]
    pub concurrency: usize,
    /// cluster-node-timeout in ms.
    #[arg(long, default_value_t = 2000)]
    pub node_timeout: u64,
    /// Root seed (random if absent; always printed and stored).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run folders go.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Run this many tests (seed, seed+1, ...); the exit code is the worst verdict.
    #[arg(long, default_value_t = 1)]
    pub test_count: u32,
    /// redis-server binary.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// hearsay-node binary (default: next to this binary, then target/{release,debug}).
    #[arg(long)]
    pub hearsay_node: Option<PathBuf>,
    /// Number of set keys (spread over all slot ranges).
    #[arg(long, default_value_t = 16)]
    pub keys: usize,
    /// Fraction of client ops that are reads during the run.
    #[arg(long, default_value_t = 0.1)]
    pub read_fraction: f64,
    /// Client op timeout in ms (longer → fewer info outcomes).
    #[arg(long, default_value_t = 1000)]
    pub op_timeout: u64,
    /// CLUSTER NODES snapshot period in ms.
    #[arg(long, default_value_t = 1000)]
    pub snapshot_interval: u64,
    /// Seconds to wait for the cluster to recover after the final heal.
    #[arg(long, default_value_t = 60.0)]
    pub recovery_timeout: f64,
    /// AOF persistence (appendfsync everysec) for every node.
    #[arg(long, default_value = "yes", value_parser = ["yes", "no"])]
    #[serde(default = "yes")]
    pub appendonly: String,
    /// Server log level (debug: redis logs PFAIL decisions, which events.jsonl needs).
    #[arg(long, default_value = "debug")]
    pub loglevel: String,
    /// Drive the realised fault schedule of another run instead of drawing one.
    #[arg(long)]
    pub schedule_from: Option<PathBuf>,
    /// Count stale reads as invalid.
    #[arg(long)]
    pub linearizable: bool,
    /// Write test.json and schedule.json, print the schedule, start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Plant a bug in every hearsay-node (passed as `--bug NAME`; repeatable).
    #[arg(long = "node-bug", hide = true)]
    #[serde(default)]
    pub node_bug: Vec<String>,
    /// Fail the convergence checker when the cluster agrees later than this many ms
    /// after the final heal (default: 15 x node_timeout, at least 15 s).
    #[arg(long)]
    #[serde(default)]
    pub convergence_bound_ms: Option<u64>,
    /// Form the cluster without CLUSTER SET-CONFIG-EPOCH, so every master starts at
    /// configEpoch 0 and the nodes must resolve the collisions themselves (hidden:
    /// it exists to prove the convergence checker catches `ignore-epoch-collision`).
    #[arg(long, hide = true)]
    #[serde(default)]
    pub skip_config_epochs: bool,
    /// Pin every hearsay-node election to start this many ms after its master is
    /// seen failing (instead of 500 ms + random 0..500 ms), so a fixed schedule can
    /// time faults around elections (hidden: proves `double-vote` is caught).
    #[arg(long, hide = true)]
    #[serde(default)]
    pub node_election_delay_ms: Option<u64>,
}

fn yes() -> String {
    "yes".into()
}

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
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    #[error(transparent)]
    Form(#[from] form::FormError),
    #[error(transparent)]
    Faketime(#[from] crate::faketime::FaketimeError),
    #[error(transparent)]
    History(#[from] hearsay_checkers::history::HistoryError),
    #[error("{0}")]
    Other(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub seed: u64,
    pub valid: Valid,
    /// Nemesis steps whose effect could not be verified.
    pub unverified: usize,
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

/// UTC timestamp `YYYYMMDDTHHMMSSZ` (no date crate needed for one format).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (H. Hinnant).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Finds hearsay-node: explicit option, next to our own binary, then the workspace's
/// target/release and target/debug.
pub fn find_hearsay_node(opt: Option<&Path>) -> PathBuf {
    if let Some(p) = opt {
        return p.to_path_buf();
    }
    let mut candidates = Vec::new();
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            candidates.push(dir.join("hearsay-node"));
            if let Some(up) = dir.parent() {
                candidates.push(up.join("hearsay-node"));
            }
        }
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(ws.join("target/release/hearsay-node"));
    candidates.push(ws.join("target/debug/hearsay-node"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("hearsay-node"))
}

/// Loads the realised fault schedule of a stored run: each started fault's concrete
/// form (explicit nodes / grudge) at its planned times.
pub fn load_schedule(run_dir: &Path) -> Result<Vec<Planned>, RunError> {
    let h = History::read(&run_dir.join("history.jsonl"))?;
    let mut out = Vec::new();
    for op in &h.ops {
        if op.process != Process::Nemesis || !op.f.starts_with("start-") {
            continue;
        }
        let value = op.value.json();
        let (Some(planned), Some(resolved)) = (value.get("planned"), value.get("resolved")) else {
            continue;
        };
        let mut p: Planned = serde_json::from_value(planned.clone()).map_err(|e| {
            RunError::Other(format!("{}: bad planned fault: {e}", run_dir.display()))
        })?;
        p.fault = serde_json::from_value(resolved.clone()).map_err(|e| {
            RunError::Other(format!("{}: bad resolved fault: {e}", run_dir.display()))
        })?;
        out.push(p);
    }
    Ok(out)
}

fn link_latest(results: &Path, test: &str, run_name: &str) {
    // Relative links, so the results folder can be moved or archived.
    let set = |link: PathBuf, to: PathBuf| {
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(to, link);
    };
    set(results.join(test).join("latest"), PathBuf::from(run_name));
    set(results.join("latest"), Path::new(test).join(run_name));
}

/// Shared counters for the progress line.
#[derive(Default)]
struct Progress {
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
    faults: AtomicU64,
    phase: Mutex<String>,
}

impl Progress {
    fn phase(&self, p: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p.to_string();
        if std::io::stderr().is_terminal() {
            // Overwrite the live progress line instead of appending to it.
            eprintln!("\r\x1b[2K[hearsay] {p}");
        } else {
            eprintln!("[hearsay] {p}");
        }
    }
}

/// Runs `opts.test_count` tests; returns their summaries.
pub async fn run_all(opts: &RunOpts) -> Result<Vec<RunSummary>, RunError> {
    let base = opts.seed.unwrap_or_else(hearsay_workloads::rng::os_seed);
    let mut out = Vec::new();
    for i in 0..opts.test_count.max(1) {
        let mut o = opts.clone();
        o.seed = Some(base.wrapping_add(i as u64));
        out.push(run_one(&o).await?);
    }
    Ok(out)
}

/// The planned schedule for these options (pure; used by runs, dry runs and tests).
pub fn plan(opts: &RunOpts, seed: u64) -> Result<Vec<Planned>, RunError> {
    if let Some(dir) = &opts.schedule_from {
        let planned = load_schedule(dir)?;
        schedule::timeline(&planned)
            .map_err(|e| RunError::BadOption(format!("{}: {e}", dir.display())))?;
        return Ok(planned);
    }
    let kinds = NemesisKind::parse_list(&opts.nemesis).map_err(RunError::BadOption)?;
    Ok(schedule::generate(
        seed,
        &kinds,
        (opts.nemesis_interval * 1000.0) as u64,
        (opts.time_limit * 1000.0) as u64,
    ))
}

fn validate(opts: &RunOpts) -> Result<(), RunError> {
    let bad = |s: &str| Err(RunError::BadOption(s.to_string()));
    if Workload::parse(&opts.workload).is_none() {
        return Err(RunError::BadOption(format!(
            "unknown --workload {}: one of {}",
            opts.workload,
            Workload::NAMES
        )));
    }
    if !(1..=200).contains(&opts.nodes) {
        return bad("--nodes must be 1..=200");
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
    if opts.nemesis_interval.is_nan() || opts.nemesis_interval <= 0.0 {
        return bad("--nemesis-interval must be > 0");
    }
    NemesisKind::parse_list(&opts.nemesis).map_err(RunError::BadOption)?;
    Ok(())
}

/// One test.
pub async fn run_one(opts: &RunOpts) -> Result<RunSummary, RunError> {
    validate(opts)?;
    let seed = opts.seed.unwrap_or_else(hearsay_workloads::rng::os_seed);
    eprintln!("[hearsay] seed {seed}");
    let planned = plan(opts, seed)?;
    let test = format!("{}-{}", opts.workload, opts.target.name());
    let started = SystemTime::now();
    let run_name = format!("{}-seed{seed}", utc_stamp(started));
    let mut run_dir = opts.results_dir.join(&test).join(&run_name);
    let mut k = 1;
    while run_dir.exists() {
        run_dir = opts.results_dir.join(&test).join(format!("{run_name}.{k}"));
        k += 1;
    }
    let run_name = run_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or(run_name);
    std::fs::create_dir_all(run_dir.join("nodes")).map_err(io("create run dir"))?;
    // Nodes run with their own working directory; every path handed to them must be absolute.
    let run_dir = std::fs::canonicalize(&run_dir).map_err(io("resolve run dir"))?;
    let prefix = registry::new_prefix();
    let settings = NodeSettings {
        redis_server: crate::sys::which(&opts.redis_server.to_string_lossy())
            .unwrap_or(opts.redis_server.clone()),
        hearsay_node: find_hearsay_node(opts.hearsay_node.as_deref()),
        node_timeout_ms: opts.node_timeout,
        loglevel: opts.loglevel.clone(),
        appendonly: opts.appendonly == "yes",
        faketime_shim: None,
        base_port: 7000,
        bugs: opts.node_bug.clone(),
        election_delay_ms: opts.node_election_delay_ms,
    };
    let mut versions = serde_json::Map::new();
    versions.insert("harness".into(), json!(env!("CARGO_PKG_VERSION")));
    for kind in [Kind::Redis, Kind::Hearsay] {
        if (0..opts.nodes).any(|i| opts.target.kind_of(i) == kind) {
            versions.insert(
                format!("{kind:?}").to_lowercase(),
                json!(Node::binary_version(kind, &settings)),
            );
        }
    }
    let mut stored = opts.clone();
    stored.seed = Some(seed);
    stored.test_count = 1;
    stored.dry_run = false;
    let test_json = json!({
        "name": test,
        "seed": seed,
        "start": utc_stamp(started),
        "prefix": prefix,
        "options": stored,
        "versions": versions,
        "binaries": {"redis-server": settings.redis_server, "hearsay-node": settings.hearsay_node},
        "schedule-from": opts.schedule_from,
    });
    write_json(&run_dir.join("test.json"), &test_json)?;
    write_json(&run_dir.join("schedule.json"), &json!(planned))?;
    link_latest(&opts.results_dir, &test, &run_name);
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
        });
    }
    let reg = Registry::create(&prefix)?;
    let guard = Guard(reg.clone());
    reg.set_run_dir(&run_dir)?;
    let result = run_body(opts, seed, &planned, &run_dir, reg.clone(), settings).await;
    drop(guard);
    if let Err(e) = result {
        let _ = write_json(
            &run_dir.join("run-info.json"),
            &json!({"error": e.to_string()}),
        );
        let _ = crate::summary::write_error_files(&run_dir, &e.to_string());
        return Err(e);
    }
    let checked = check_dir(&run_dir)?;
    crate::report::after_run(&run_dir, &opts.results_dir);
    let unverified = checked.results["nemesis"]["unverified"]
        .as_array()
        .map_or(0, |a| a.len());
    Ok(RunSummary {
        run_dir,
        seed,
        valid: checked.valid,
        unverified,
    })
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| RunError::Other(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(io(format!("write {}", path.display())))
}

async fn run_body(
    opts: &RunOpts,
    seed: u64,
    planned: &[Planned],
    run_dir: &Path,
    reg: Arc<Registry>,
    mut settings: NodeSettings,
) -> Result<serde_json::Value, RunError> {
    let progress = Arc::new(Progress::default());
    let t_run = Instant::now();
    progress.phase("building network");
    let net = Network::create(&reg, opts.nodes)?;
    eprintln!(
        "[hearsay] network {} ({} namespaces) built in {} ms",
        net.bridge,
        net.nodes.len(),
        net.build_ms
    );
    let uses_clock = planned.iter().any(|p| p.fault.kind() == NemesisKind::Clock);
    if uses_clock {
        settings.faketime_shim = Some(crate::faketime::build_shim(&run_dir.join("faketime"))?);
    }
    let mut nodes = Vec::new();
    for (i, nn) in net.nodes.iter().enumerate() {
        let node = Node::new(
            i,
            opts.target.kind_of(i),
            &nn.ns,
            nn.ip,
            run_dir,
            &settings,
            reg.clone(),
        );
        node.write_config()?;
        nodes.push(node);
    }
    progress.phase("starting nodes");
    let t_nodes = Instant::now();
    for n in nodes.iter_mut() {
        n.start()?;
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr()).collect();
    let names: HashMap<SocketAddr, String> =
        nodes.iter().map(|n| (n.addr(), n.name.clone())).collect();
    wait_nodes_up(&mut nodes, Duration::from_secs(15)).await?;
    let start_ms = t_nodes.elapsed().as_millis() as u64;
    progress.phase("forming cluster");
    let formed = form::form(
        &addrs,
        opts.replicas,
        !opts.skip_config_epochs,
        Duration::from_secs(30),
    )
    .await?;
    eprintln!(
        "[hearsay] {} nodes started in {start_ms} ms; cluster formed and agreed in {} ms ({} ms from network build)",
        addrs.len(),
        formed.form_ms,
        t_run.elapsed().as_millis()
    );
    // Test hook: proves that a panic mid-run still tears everything down.
    if std::env::var("HEARSAY_TEST_PANIC").as_deref() == Ok("after-form") {
        panic!("HEARSAY_TEST_PANIC=after-form");
    }
    let t0 = Instant::now();
    // The history's time 0 on CLOCK_MONOTONIC (what Instant uses on Linux, and what
    // hearsay-node stamps as mono_ms) and on the wall clock (what redis logs show),
    // so the protocol checkers can put node events on the history's timeline.
    let mono_now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| ts.tv_sec() * 1000 + ts.tv_nsec() / 1_000_000)
        .unwrap_or(0);
    let wall_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since = t0.elapsed().as_millis() as i64;
    write_json(
        &run_dir.join("timebase.json"),
        &json!({"mono_ms": mono_now - since, "wall_ms": wall_now - since}),
    )?;
    let rec = Arc::new(
        Recorder::create(&run_dir.join("history.jsonl"), t0)
            .and_then(|r| r.with_nemesis_file(&run_dir.join("nemesis.jsonl")))
            .map_err(io("create history"))?,
    );
    let snaps =
        JsonLines::create(&run_dir.join("snapshots.jsonl")).map_err(io("create snapshots"))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let snap_task = tokio::spawn(snapshotter(
        nodes.iter().map(|n| (n.name.clone(), n.addr())).collect(),
        snaps,
        rec.clone(),
        Duration::from_millis(opts.snapshot_interval.max(100)),
        stop_rx.clone(),
    ));
    let tty = std::io::stderr().is_terminal();
    let progress_task = tty.then(|| {
        tokio::spawn(progress_line(
            progress.clone(),
            rec.clone(),
            stop_rx.clone(),
        ))
    });

    // Workload and nemesis.
    progress.phase("workload");
    let wl = Workload::parse(&opts.workload).unwrap_or(Workload::Set);
    let keys = any::keys(wl, opts.keys);
    let cfg = ClientConfig {
        op_timeout: Duration::from_millis(opts.op_timeout),
        ..ClientConfig::default()
    };
    let (wstop_tx, wstop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    let max_process = Arc::new(AtomicU64::new(0));
    for w in 0..opts.concurrency {
        workers.push(tokio::spawn(worker(
            wl,
            w as u64,
            opts.concurrency as u64,
            seed,
            keys.clone(),
            addrs.clone(),
            names.clone(),
            cfg,
            opts.read_fraction,
            opts.concurrency as f64 / opts.rate,
            rec.clone(),
            progress.clone(),
            max_process.clone(),
            wstop_rx.clone(),
        )));
    }
    let exe = std::env::current_exe().map_err(io("locate own binary for the delayer"))?;
    let delays = crate::delay::Delays::new(reg.clone(), exe);
    let mut nemesis = Nemesis::new(net, nodes, rec.clone(), delays);
    let workload_start = tokio::time::Instant::now();
    let deadline = workload_start + Duration::from_secs_f64(opts.time_limit);
    if schedule::overlaps(planned) {
        // A composed (hand-written) schedule: steps in time order, faults coexisting.
        let steps = schedule::timeline(planned).map_err(RunError::BadOption)?;
        let mut started: Vec<Option<Fault>> = vec![None; planned.len()];
        for step in steps {
            let at = workload_start + Duration::from_millis(step.at_ms());
            if at >= deadline {
                break;
            }
            tokio::time::sleep_until(at).await;
            match step {
                Step::Start { index, .. } => {
                    if let Some(p) = planned.get(index) {
                        let (f, _verified) = nemesis.start(p).await;
                        progress.faults.fetch_add(1, Ordering::Relaxed);
                        started[index] = Some(f);
                    }
                }
                Step::Stop { index, .. } => {
                    if let Some(f) = started.get_mut(index).and_then(Option::take) {
                        nemesis.stop(&f).await;
                    }
                }
            }
        }
    } else {
        for p in planned {
            let at = workload_start + Duration::from_millis(p.start_ms);
            if at >= deadline {
                break;
            }
            tokio::time::sleep_until(at).await;
            let (f, _verified) = nemesis.start(p).await;
            progress.faults.fetch_add(1, Ordering::Relaxed);
            let until = (workload_start + Duration::from_millis(p.stop_ms)).min(deadline);
            nemesis.hold(&f, until, &stop_rx).await;
            nemesis.stop(&f).await;
        }
    }
    tokio::time::sleep_until(deadline).await;
    let _ = wstop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    progress.phase("healing");
    let healed = nemesis.heal_all().await;
    progress.phase("waiting for recovery");
    let live: Vec<SocketAddr> = nemesis
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.addr())
        .collect();
    let recovery = form::wait_agreed(
        &live,
        Some(opts.nodes),
        Duration::from_secs_f64(opts.recovery_timeout),
    )
    .await;
    let recover_ms = recovery.as_ref().ok().map(|d| d.as_millis() as u64);
    rec.record(
        Process::Nemesis,
        OpType::Info,
        "recovered",
        json!({"converged": recovery.is_ok(), "ms": recover_ms}),
        None,
        recovery.as_ref().err().map(|e| e.to_string()),
    );
    progress.phase("final reads");
    let final_process = max_process.load(Ordering::Relaxed) + 1;
    final_reads(wl, &keys, &addrs, &names, cfg, &rec, final_process).await;
    let _ = stop_tx.send(true);
    let _ = snap_task.await;
    if let Some(t) = progress_task {
        let _ = t.await;
    }
    // Cluster-bus message counters of every node, for `hearsay compare` (secondary:
    // a failed write does not fail the run).
    let bus_nodes: Vec<_> = nemesis
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.addr(), n.is_running()))
        .collect();
    let _ = write_json(
        &run_dir.join("bus-stats.json"),
        &crate::compare::bus_stats(&bus_nodes).await,
    );
    progress.phase("stopping nodes");
    for n in nemesis.nodes.iter_mut() {
        let _ = n.stop(Duration::from_secs(3)).await;
    }
    // redis-server has no event log: derive one from its log lines.
    for n in nemesis.nodes.iter().filter(|n| n.kind == Kind::Redis) {
        let log = std::fs::read_to_string(n.log_path()).unwrap_or_default();
        let mut text = String::new();
        for ev in hearsay_checkers::redis_log::events(&log) {
            text.push_str(&ev.to_string());
            text.push('\n');
        }
        std::fs::write(n.events_path(), text)
            .map_err(io(format!("write {}", n.events_path().display())))?;
    }
    if let Some(e) = rec.write_error() {
        return Err(RunError::Other(format!("history write failed: {e}")));
    }
    let info = json!({
        "network-build-ms": nemesis.net.build_ms,
        "nodes-start-ms": start_ms,
        "form-ms": formed.form_ms,
        "healed": healed,
        "recovery-ms": recover_ms,
        "recovery-error": recovery.err().map(|e| e.to_string()),
        "ops": {
            "ok": progress.ok.load(Ordering::Relaxed),
            "fail": progress.fail.load(Ordering::Relaxed),
            "info": progress.info.load(Ordering::Relaxed),
        },
        "faults": progress.faults.load(Ordering::Relaxed),
        "restarts": nemesis.nodes.iter().map(|n| (n.name.clone(), n.restarts)).collect::<HashMap<_,_>>(),
    });
    write_json(&run_dir.join("run-info.json"), &info)?;
    Ok(info)
}

/// Waits until every node answers PING; fails at once, with the log tail, if a node
/// process exits (e.g. a binary that does not accept the redis-style config).
async fn wait_nodes_up(nodes: &mut [Node], limit: Duration) -> Result<(), RunError> {
    let t0 = Instant::now();
    for n in nodes.iter_mut() {
        loop {
            if let Some(status) = n.exited() {
                return Err(RunError::Other(format!(
                    "node {} ({:?}) exited during startup with {status}; log tail:\n{}",
                    n.name,
                    n.kind,
                    n.log_tail(15)
                )));
            }
            if form::wait_ping(&[n.addr()], Duration::ZERO).await.is_ok() {
                break;
            }
            if t0.elapsed() > limit {
                return Err(RunError::Other(format!(
                    "node {} did not answer PING within {limit:?}; log tail:\n{}",
                    n.name,
                    n.log_tail(15)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

async fn snapshotter(
    nodes: Vec<(String, SocketAddr)>,
    out: JsonLines,
    rec: Arc<Recorder>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // On stop, one last round: the convergence checker judges the final state.
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        for (name, addr) in &nodes {
            let time = rec.now_ns();
            let r = hearsay_workloads::conn::oneshot(
                *addr,
                &[b"CLUSTER", b"NODES"],
                Duration::from_millis(300),
            )
            .await;
            let line = match r {
                Ok(v) => match v.as_text() {
                    Some(t) => json!({"time": time, "node": name, "nodes": t}),
                    None => json!({"time": time, "node": name, "error": format!("{v:?}")}),
                },
                Err(e) => json!({"time": time, "node": name, "error": e.tag()}),
            };
            let _ = out.write(&line);
        }
        if last {
            return;
        }
    }
}

async fn progress_line(
    p: Arc<Progress>,
    rec: Arc<Recorder>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => { eprintln!(); return }
        }
        let phase = p.phase.lock().map(|s| s.clone()).unwrap_or_default();
        eprint!(
            "\r[{phase}] t={:.0}s ok={} fail={} info={} faults={}   ",
            rec.now_ns() as f64 / 1e9,
            p.ok.load(Ordering::Relaxed),
            p.fail.load(Ordering::Relaxed),
            p.info.load(Ordering::Relaxed),
            p.faults.load(Ordering::Relaxed)
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    wl: Workload,
    w: u64,
    concurrency: u64,
    seed: u64,
    keys: Vec<String>,
    addrs: Vec<SocketAddr>,
    names: HashMap<SocketAddr, String>,
    cfg: ClientConfig,
    read_fraction: f64,
    mean_gap_s: f64,
    rec: Arc<Recorder>,
    progress: Arc<Progress>,
    max_process: Arc<AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut process = w;
    max_process.fetch_max(process, Ordering::Relaxed);
    let mut gen = AnyGen::new(wl, seed, process, read_fraction);
    let mut client = ClusterClient::new(addrs.clone(), cfg);
    // Pacing has its own stream so that timing never shifts the op sequence.
    let mut pace = stream(seed, &format!("stagger-worker-{w}"));
    while !*stop.borrow() {
        let op = gen.next_op(&keys);
        if run_op(&op, process, &mut client, cfg, &names, &rec, &progress).await {
            // Unknown outcome: the op may still happen later, so this process never
            // invokes again; a fresh process id takes its place.
            process += concurrency;
            max_process.fetch_max(process, Ordering::Relaxed);
            gen = AnyGen::new(wl, seed, process, read_fraction);
            client.disconnect();
        }
        let gap = Duration::from_secs_f64(mean_gap_s * 2.0 * unit(&mut pace));
        tokio::select! {
            _ = tokio::time::sleep(gap) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
}

/// Runs one op, records invoke and completion. Returns true if it ended `info`.
async fn run_op(
    op: &AnyOp,
    process: u64,
    client: &mut ClusterClient,
    cfg: ClientConfig,
    names: &HashMap<SocketAddr, String>,
    rec: &Recorder,
    progress: &Progress,
) -> bool {
    rec.record(
        Process::Client(process),
        OpType::Invoke,
        op.f(),
        op.value(),
        None,
        None,
    );
    let (kind, value, error, node) = op.execute(client, cfg).await;
    let node = node.map(|a| names.get(&a).cloned().unwrap_or_else(|| a.to_string()));
    rec.record(Process::Client(process), kind, op.f(), value, node, error);
    match kind {
        OpType::Ok => progress.ok.fetch_add(1, Ordering::Relaxed),
        OpType::Fail => progress.fail.fetch_add(1, Ordering::Relaxed),
        _ => progress.info.fetch_add(1, Ordering::Relaxed),
    };
    kind == OpType::Info
}

async fn final_reads(
    wl: Workload,
    keys: &[String],
    addrs: &[SocketAddr],
    names: &HashMap<SocketAddr, String>,
    cfg: ClientConfig,
    rec: &Recorder,
    process: u64,
) {
    let progress = Progress::default();
    let mut client = ClusterClient::new(addrs.to_vec(), cfg);
    for key in keys {
        let op = AnyOp::final_read(wl, key);
        // Bounded: 20 tries over ~10 s per key; reads are idempotent, so retrying is safe.
        for _ in 0..20 {
            rec.record(
                Process::Client(process),
                OpType::Invoke,
                op.f(),
                op.value(),
                None,
                None,
            );
            let (kind, value, error, node) = op.execute(&mut client, cfg).await;
            let node = node.map(|a| names.get(&a).cloned().unwrap_or_else(|| a.to_string()));
            rec.record(Process::Client(process), kind, op.f(), value, node, error);
            if kind == OpType::Ok {
                break;
            }
            client.refresh().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            progress.fail.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The offline judgement of a run folder: reads test.json and history.jsonl, writes
/// results.json. Used by `run` and by `hearsay check`, so both agree.
pub struct Checked {
    pub valid: Valid,
    pub results: serde_json::Value,
}

/// Lines that mean a server crashed: a Rust panic, or redis's crash report.
const CRASH_PATTERNS: [&str; 3] = [
    "panicked at",
    "=== REDIS BUG REPORT START",
    "Guru Meditation",
];

/// Every crash line in `nodes/*/{log,stdout.log}`: (node, file, line).
pub fn scan_node_logs(run_dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(run_dir.join("nodes")) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs {
        let node = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for f in ["log", "stdout.log"] {
            let text = std::fs::read_to_string(d.join(f)).unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| CRASH_PATTERNS.iter().any(|p| l.contains(p)))
            {
                out.push(json!({"node": node, "file": f, "line": line}));
            }
        }
    }
    out
}

/// The data checker of a workload: (results key, (verdict, result)). A history the
/// checker cannot read (a malformed op) gets `unknown` with the error naming the op.
fn check_workload(
    workload: &str,
    history: &History,
    linearizable: bool,
) -> (&'static str, (Valid, serde_json::Value)) {
    use hearsay_checkers::{counter, linear, list_append};
    fn judged<T: Serialize, E: std::fmt::Display>(
        r: Result<T, E>,
        valid: impl Fn(&T) -> Valid,
    ) -> (Valid, serde_json::Value) {
        match r {
            Ok(r) => (valid(&r), json!(r)),
            Err(e) => (
                Valid::Unknown,
                json!({"valid": Valid::Unknown, "error": e.to_string()}),
            ),
        }
    }
    match Workload::parse(workload) {
        Some(Workload::Set) => {
            let r = set_checker::check(history, SetOptions { linearizable });
            // Per-element analysis (first seen, stable, lost, stale) rides along.
            let full = hearsay_checkers::set_full::check(history);
            let mut j = json!(r);
            j["full"] = json!(full);
            ("set", (r.valid.and(full.valid), j))
        }
        Some(Workload::Register) => (
            "linearizable",
            judged(
                linear::check(history, linear::LinearOptions::default()),
                |r| r.valid,
            ),
        ),
        Some(Workload::Counter) => ("counter", judged(counter::check(history), |r| r.valid)),
        Some(Workload::ListAppend) => (
            "list-append",
            judged(list_append::check(history), |r| r.valid),
        ),
        None => (
            "error",
            (
                Valid::Unknown,
                json!(format!("no checker for workload {workload}")),
            ),
        ),
    }
}

pub fn check_dir(run_dir: &Path) -> Result<Checked, RunError> {
    let test: serde_json::Value = std::fs::read_to_string(run_dir.join("test.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let workload = test["options"]["workload"]
        .as_str()
        .unwrap_or("set")
        .to_string();
    let linearizable = test["options"]["linearizable"].as_bool().unwrap_or(false);
    let history = History::read(&run_dir.join("history.jsonl"))?;
    let mut valid = Valid::True;
    let mut results = serde_json::Map::new();
    let (name, data) = check_workload(&workload, &history, linearizable);
    valid = valid.and(data.0);
    results.insert(name.into(), data.1);
    let perf = hearsay_checkers::perf::check(&history, 1.0);
    results.insert("perf".into(), json!(perf));
    results.insert(
        "stats".into(),
        json!(hearsay_checkers::stats::stats(&history)),
    );
    // Nemesis summary: every start/stop with whether its effect was verified.
    let mut faults = Vec::new();
    let mut unverified = Vec::new();
    for op in history.ops.iter().filter(|o| o.process == Process::Nemesis) {
        let value = op.value.json();
        if value.get("verified").is_none() {
            continue;
        }
        let verified = value["verified"].as_bool().unwrap_or(false);
        let entry = json!({"index": op.index, "time": op.time, "f": op.f, "verified": verified, "targets": value.get("targets"), "error": op.error});
        if !verified {
            unverified.push(entry.clone());
        }
        faults.push(entry);
    }
    let recovered = history
        .ops
        .iter()
        .rev()
        .find(|o| o.f == "recovered")
        .map(|o| o.value.json());
    if recovered.as_ref().and_then(|r| r["converged"].as_bool()) == Some(false) {
        results.insert(
            "convergence".into(),
            json!({"valid": false, "detail": recovered}),
        );
        valid = valid.and(Valid::False);
    }
    // Server crashes: a panic or bug report in a node's output makes the run invalid,
    // whatever the data says (Jepsen's log-file-pattern checker).
    let crashes = scan_node_logs(run_dir);
    if !crashes.is_empty() {
        valid = valid.and(Valid::False);
    }
    results.insert("crashes".into(), json!(crashes));
    // Protocol checkers: they read the node event logs and snapshots. A folder
    // without snapshots (a stored history alone) has no protocol evidence at all:
    // say so, without turning the data verdict into unknown.
    match hearsay_checkers::protocol::RunData::load(run_dir) {
        Ok(_) if !run_dir.join("snapshots.jsonl").is_file() => {
            results.insert(
                "protocol".into(),
                json!({"valid": "unknown", "skipped": "no snapshots.jsonl in the run folder"}),
            );
        }
        Ok(d) => {
            let bound = test["options"]["convergence_bound_ms"].as_i64();
            let (pv, pr) = hearsay_checkers::protocol::check_run(&d, bound);
            valid = valid.and(pv);
            results.insert("protocol".into(), pr);
        }
        Err(e) => {
            valid = valid.and(Valid::Unknown);
            results.insert(
                "protocol".into(),
                json!({"valid": "unknown", "error": e.to_string()}),
            );
        }
    }
    let complete = recovered.is_some();
    if !complete {
        // A run that died mid-way: the data verdict can still be false, never true.
        valid = valid.and(Valid::Unknown);
    }
    results.insert(
        "nemesis".into(),
        json!({"steps": faults, "unverified": unverified}),
    );
    results.insert("complete-run".into(), json!(complete));
    results.insert(
        "history-truncated-tail".into(),
        json!(history.truncated_tail),
    );
    if let Some(info) = std::fs::read_to_string(run_dir.join("run-info.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        results.insert("run-info".into(), info);
    }
    results.insert("valid".into(), json!(valid));
    let results = serde_json::Value::Object(results);
    write_json(&run_dir.join("results.json"), &results)?;
    // CI files are a view of results.json: failing to write them never changes a verdict.
    if let Err(e) = crate::summary::write_run_files(run_dir) {
        eprintln!("[hearsay] summary.json / junit.xml not written: {e}");
    }
    Ok(Checked { valid, results })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir_with(history_fixture: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests/fixtures");
        std::fs::copy(
            fixtures.join(history_fixture),
            d.path().join("history.jsonl"),
        )
        .unwrap();
        std::fs::write(
            d.path().join("test.json"),
            r#"{"options":{"workload":"set"}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("nodes/n2")).unwrap();
        std::fs::write(
            d.path().join("nodes/n2/log"),
            "1:M 22 Nov 2026 18:58:09.131 * Ready\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn check_dir_judges_a_stored_run_offline() {
        let d = run_dir_with("set-redis-partition-clock-valid.jsonl");
        let c = check_dir(d.path()).unwrap();
        assert_eq!(c.valid, Valid::True, "{}", c.results);
        assert!(d.path().join("results.json").is_file());
        let d = run_dir_with("set-redis-loss-lost-writes.jsonl");
        assert_eq!(check_dir(d.path()).unwrap().valid, Valid::False);
        let d = run_dir_with("set-redis-killed-mid-run.jsonl");
        let c = check_dir(d.path()).unwrap();
        assert_eq!(c.valid, Valid::Unknown);
        assert_eq!(c.results["complete-run"], false);
    }

    #[test]
    fn a_node_panic_makes_the_run_invalid() {
        let d = run_dir_with("set-redis-partition-clock-valid.jsonl");
        std::fs::write(
            d.path().join("nodes/n2/stdout.log"),
            "thread 'main' panicked at node/src/server/mod.rs:10:5:\nboom\n",
        )
        .unwrap();
        let c = check_dir(d.path()).unwrap();
        assert_eq!(c.valid, Valid::False);
        assert_eq!(c.results["crashes"][0]["node"], "n2");
    }

    #[test]
    fn utc_stamp_formats() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_376_096)),
            "20261122T193456Z"
        );
    }
}
