//! `hearsay scale`: gossip at scale. For each target and cluster size: start the
//! cluster (each node in its namespace, as runs do), form it the way
//! `redis-cli --cluster create` does (every node meets the first; gossip spreads the
//! rest) and time it, then measure per node over an idle window: bus messages and
//! bytes on the wire, CPU and RSS; then stop one master (SIGSTOP) and time the
//! failure chain; then cut another master off and time the cluster's agreement after
//! the heal. Writes scale.json, scale.md and scale.html (`output/scale.rs`).
//!
//! A target is a [`Measure`]: anything that turns a [`Point`] into a
//! [`ScaleRow`]. Real servers are [`ClusterMeasure`]; the simulator adds its own.

use crate::env::net::{grudge, Network};
use crate::env::process::Node;
use crate::env::registry::{self, Registry};
use crate::output::scale::{self as view, Chain, ScaleReport, ScaleRow};
use crate::targets::cluster::{parse_bus_counters, wait_nodes_up};
use crate::targets::form::{self, Admin, FormSpec, Meets};
use crate::targets::server::{self, Kind, NodeSettings};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `hearsay scale` options.
#[derive(clap::Args, Clone, Debug)]
pub struct ScaleOpts {
    /// Targets, comma-separated: hearsay, redis, sim (the simulator, up to 5000 nodes).
    #[arg(long, value_delimiter = ',', default_value = "hearsay,redis")]
    pub targets: Vec<String>,
    /// Cluster sizes, comma-separated (real clusters at most 253: one /24).
    #[arg(long, value_delimiter = ',', default_value = "6,30,100,200")]
    pub nodes: Vec<usize>,
    /// Replicas per master (0: masters only).
    #[arg(long, default_value_t = 0)]
    pub replicas: usize,
    /// Node timeouts in ms, comma-separated: each is one experiment over all sizes.
    #[arg(long, value_delimiter = ',', default_value = "15000")]
    pub node_timeout: Vec<u64>,
    /// Seconds of idle traffic measured per cluster.
    #[arg(long, default_value_t = 20)]
    pub window: u64,
    /// Seconds a formed cluster settles before the window (default: one node
    /// timeout, so the window sees the steady ping schedule, not formation's).
    #[arg(long)]
    pub settle: Option<u64>,
    /// Clusters per target and size, the targets alternating; tables show medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Only the failure chain: no traffic window, no partition.
    #[arg(long)]
    pub failover_only: bool,
    /// Only formation: no traffic window, no failure, no partition.
    #[arg(long, conflicts_with = "failover_only")]
    pub form_only: bool,
    /// No partition (the heal-to-agreement time is not measured).
    #[arg(long)]
    pub skip_partition: bool,
    /// Where the outputs go (a folder per invocation under it).
    #[arg(long, default_value = "results/scale")]
    pub results_dir: PathBuf,
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    #[arg(long)]
    pub hearsay_node: Option<PathBuf>,
    /// Seconds for the whole command; sizes not started by then are skipped.
    #[arg(long, default_value_t = 3600)]
    pub time_budget: u64,
    /// Keep each cluster's node folders (logs, event logs, nodes.conf).
    #[arg(long)]
    pub keep: bool,
    /// Record formation's progress: every node's CLUSTER INFO at each poll
    /// (known nodes, slots assigned, state, messages sent), for the first 20 s
    /// every node's CLUSTER NODES (who lacks whom) and throughout the first
    /// node's (whose slots it lacks, with their ping and pong times); written
    /// next to the cluster's folder as `<cluster>-form.json`, the phases in the
    /// row's notes. A diagnosis: the CLUSTER NODES polls load the nodes and
    /// slow the polls, so its formation times are not comparable with plain runs.
    #[arg(long)]
    pub form_trace: bool,
    /// Milliseconds over which the nodes are started, evenly spaced (0: as fast
    /// as they come up). Formation depends on where each node's once-a-second
    /// ping falls (its cron phase, set by its start time): hearsay-node starts
    /// in a few ms, so 100 of them started back to back begin within ~0.7 s and
    /// their phases bunch in part of the second, where redis-server's slower
    /// start spreads its nodes over ~2 s. Pacing gives both targets the same
    /// spread of phases, as nodes started independently have.
    #[arg(long, default_value_t = 2000)]
    pub start_spread_ms: u64,
    /// Gossip experiment (hearsay-node only): gossip entries per ping are
    /// max(3, N / D), for each D given (redis: 10). Every combination with
    /// --ping-age-divisor other than redis's (10, 2) is its own target line,
    /// `hearsay-g<D>-p<P>`.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub gossip_divisor: Vec<u64>,
    /// Gossip experiment (hearsay-node only): a peer is pinged once its last
    /// pong is older than node_timeout / P, for each P given (redis: 2).
    #[arg(long, value_delimiter = ',', default_value = "2")]
    pub ping_age_divisor: Vec<u64>,
}

/// Redis's gossip section divisor and ping age divisor.
const REDIS_GOSSIP: (u64, u64) = (10, 2);

/// One measurement to make.
#[derive(Clone, Debug)]
pub struct Point {
    pub nodes: usize,
    pub replicas: usize,
    pub node_timeout_ms: u64,
    pub run: usize,
}

impl Point {
    pub fn masters(&self) -> usize {
        (self.nodes / (self.replicas + 1)).max(1)
    }
}

/// What a measurement may use.
pub struct Ctx<'a> {
    pub opts: &'a ScaleOpts,
    /// This invocation's output folder.
    pub out_dir: &'a Path,
}

/// A target of `hearsay scale`: turns a point into a row.
#[async_trait::async_trait]
pub trait Measure: Send + Sync {
    fn name(&self) -> &str;
    /// The largest cluster it can measure: a real one takes one /24.
    fn max_nodes(&self) -> usize {
        253
    }
    async fn measure(&self, p: &Point, ctx: &Ctx<'_>) -> Result<ScaleRow, String>;
}

/// A Redis Cluster of one server kind, measured on the wire.
pub struct ClusterMeasure {
    kind: Kind,
    /// The target's line: the kind's name, or a gossip variant's.
    label: String,
    settings: NodeSettings,
}

impl ClusterMeasure {
    pub fn new(kind: Kind, opts: &ScaleOpts) -> ClusterMeasure {
        ClusterMeasure {
            kind,
            label: kind.name().to_string(),
            settings: NodeSettings {
                redis_server: crate::env::sys::which(&opts.redis_server.to_string_lossy())
                    .unwrap_or(opts.redis_server.clone()),
                hearsay_node: server::find_hearsay_node(opts.hearsay_node.as_deref()),
                node_timeout_ms: 15000,
                loglevel: "notice".into(),
                appendonly: false,
                faketime_shim: None,
                base_port: 7000,
                bugs: vec![],
                election_delay_ms: None,
                experiment: vec![],
            },
        }
    }
}

/// The targets the options name; an unknown name is an error.
pub fn measures(opts: &ScaleOpts) -> Result<Vec<Box<dyn Measure>>, String> {
    let divisors = opts.gossip_divisor.iter().chain(&opts.ping_age_divisor);
    if let Some(bad) = divisors.into_iter().find(|d| !(1..=1000).contains(*d)) {
        return Err(format!(
            "--gossip-divisor and --ping-age-divisor take 1..=1000, not {bad}"
        ));
    }
    opts.targets
        .iter()
        .map(|t| -> Result<Box<dyn Measure>, String> {
            match t.as_str() {
                "hearsay" => Ok(Box::new(ClusterMeasure::new(Kind::Hearsay, opts))),
                "redis" => Ok(Box::new(ClusterMeasure::new(Kind::Redis, opts))),
                "sim" => Ok(Box::new(SimMeasure {
                    label: "sim".into(),
                    gossip: REDIS_GOSSIP,
                })),
                other => Err(format!(
                    "unknown scale target {other} (hearsay, redis, sim)"
                )),
            }
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|mut all| {
            if opts.targets.iter().any(|t| t == "hearsay") {
                all.extend(gossip_variants(opts));
            }
            if opts.targets.iter().any(|t| t == "sim") {
                all.extend(sim_gossip_variants(opts));
            }
            all
        })
}

/// The gossip experiment's simulated lines, `sim-g<D>-p<P>`.
fn sim_gossip_variants(opts: &ScaleOpts) -> Vec<Box<dyn Measure>> {
    let mut out: Vec<Box<dyn Measure>> = Vec::new();
    for &g in &opts.gossip_divisor {
        for &p in &opts.ping_age_divisor {
            if (g, p) != REDIS_GOSSIP {
                out.push(Box::new(SimMeasure {
                    label: format!("sim-g{g}-p{p}"),
                    gossip: (g, p),
                }));
            }
        }
    }
    out
}

/// hearsay-node's cores in the simulator (`sim/scale.rs`): the same steps in
/// simulated time, bytes modelled from each message's encoded length.
pub struct SimMeasure {
    label: String,
    gossip: (u64, u64),
}

#[async_trait::async_trait]
impl Measure for SimMeasure {
    fn name(&self) -> &str {
        &self.label
    }

    fn max_nodes(&self) -> usize {
        5000
    }

    async fn measure(&self, p: &Point, ctx: &Ctx<'_>) -> Result<ScaleRow, String> {
        let t0 = Instant::now();
        let point = crate::sim::scale::ScalePoint {
            nodes: p.nodes,
            replicas: p.replicas,
            node_timeout_ms: p.node_timeout_ms,
            seed: 1 + p.run as u64,
            gossip_divisor: self.gossip.0,
            ping_age_divisor: self.gossip.1,
            settle_s: ctx.opts.settle.unwrap_or(p.node_timeout_ms.div_ceil(1000)),
            window_s: ctx.opts.window,
            form_only: ctx.opts.form_only,
            failover_only: ctx.opts.failover_only,
            skip_partition: ctx.opts.skip_partition,
        };
        let f = tokio::task::spawn_blocking(move || crate::sim::scale::measure(&point))
            .await
            .map_err(|e| format!("sim task: {e}"))??;
        let mut watch = Watch::default();
        for (i, ev) in &f.chain_events {
            watch.feed(*i, &f.victim, ev);
        }
        let mut row = ScaleRow {
            target: self.label.clone(),
            nodes: p.nodes,
            masters: p.masters(),
            replicas: p.replicas,
            node_timeout_ms: p.node_timeout_ms,
            source: "simulated".into(),
            form_ms: f.form_ms,
            window_s: ctx.opts.window as f64,
            msgs_per_node_s: f.msgs_per_node_s,
            bytes_per_node_s: f.bytes_per_node_s,
            bytes_per_cluster_s: f.bytes_per_node_s.map(|b| b * p.nodes as f64),
            packets_per_node_s: f.packets_per_node_s,
            msgs_by_type_per_node_s: f.msgs_by_type_per_node_s.clone(),
            rss_mb_per_node: f.kb_per_node.map(|kb| kb / 1024.0),
            heal_agree_ms: f.heal_agree_ms,
            notes: f.notes.clone(),
            ..Default::default()
        };
        if !ctx.opts.form_only {
            row.failover = watch.chain(f.stop_wall_ms, f.live);
        }
        row.notes.push(format!(
            "simulated: {:.0} s in {:.1} CPU s; memory is the simulator's growth per node, not a process's RSS",
            f.sim_secs, f.cpu_secs
        ));
        progress(
            t0,
            &format!(
                "{} N={}: formed in {} s, {:.1} msgs/s, {:.0} B/s per node, FAIL all {} s ({:.1} CPU s)",
                self.label,
                p.nodes,
                secs(row.form_ms),
                row.msgs_per_node_s.unwrap_or(0.0),
                row.bytes_per_node_s.unwrap_or(0.0),
                secs(row.failover.fail_all_ms),
                f.cpu_secs
            ),
        );
        Ok(row)
    }
}

/// The gossip experiment's hearsay-node lines: every (divisor, ping age
/// divisor) combination but redis's own, which is the plain `hearsay` line.
fn gossip_variants(opts: &ScaleOpts) -> Vec<Box<dyn Measure>> {
    let mut out: Vec<Box<dyn Measure>> = Vec::new();
    for &g in &opts.gossip_divisor {
        for &p in &opts.ping_age_divisor {
            if (g, p) == REDIS_GOSSIP {
                continue;
            }
            let mut m = ClusterMeasure::new(Kind::Hearsay, opts);
            m.label = format!("hearsay-g{g}-p{p}");
            m.settings.experiment = vec![
                ("experiment-gossip-divisor".into(), g.to_string()),
                ("experiment-ping-age-divisor".into(), p.to_string()),
            ];
            out.push(Box::new(m));
        }
    }
    out
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn progress(t0: Instant, what: &str) {
    eprintln!("[scale {:>7.1}s] {what}", t0.elapsed().as_secs_f64());
}

/// Tears the cluster's resources down whatever happens.
struct Guard(Arc<Registry>);

impl Drop for Guard {
    fn drop(&mut self) {
        let r = self.0.teardown();
        if !r.errors.is_empty() {
            eprintln!("[scale] teardown of {}: {:?}", r.prefix, r.errors);
        }
    }
}

/// Counters of one node at one time.
#[derive(Clone, Debug, Default)]
struct Sample {
    at_ms: f64,
    /// Bytes and packets the node sent (its veth's host side received them).
    tx_bytes: u64,
    tx_packets: u64,
    /// utime + stime, clock ticks.
    cpu_ticks: u64,
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is field 3,
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn sample(veth: &str, pid: Option<u32>) -> Sample {
    let base = format!("/sys/class/net/{veth}/statistics");
    Sample {
        at_ms: wall_ms(),
        // The host side receives what the node sends.
        tx_bytes: read_u64(&format!("{base}/rx_bytes")).unwrap_or(0),
        tx_packets: read_u64(&format!("{base}/rx_packets")).unwrap_or(0),
        cpu_ticks: pid.and_then(cpu_ticks).unwrap_or(0),
    }
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Bus counters of one node: its messages sent, and per type (`ping_sent`, ...).
type Counters = (f64, u64, BTreeMap<String, u64>);

/// (time, messages sent, per type) per node from CLUSTER INFO.
async fn msgs_sent(admin: &mut Admin, addrs: &[SocketAddr]) -> Vec<Option<Counters>> {
    let mut out = Vec::new();
    for a in addrs {
        let at = wall_ms();
        let v = admin.request(*a, &[b"CLUSTER", b"INFO"]).await;
        let c = v
            .ok()
            .and_then(|v| v.as_text())
            .map(|t| parse_bus_counters(&t));
        let sent = c.as_ref().and_then(|c| c["sent"].as_u64());
        let by_type: BTreeMap<String, u64> = c
            .as_ref()
            .and_then(|c| c["by_type"].as_object())
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        out.push(sent.map(|s| (at, s, by_type)));
    }
    out
}

fn mean(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// Reads what a node's log has grown by since the last call: hearsay-node's event
/// lines, or redis-server's log lines through the checkers' adapter.
struct LogTail {
    path: PathBuf,
    offset: u64,
    redis: bool,
}

impl LogTail {
    fn new(node: &Node, kind: Kind) -> LogTail {
        let path = match kind {
            Kind::Redis => node.log_path(),
            Kind::Hearsay => node.events_path(),
        };
        let offset = std::fs::metadata(&path).map_or(0, |m| m.len());
        LogTail {
            path,
            offset,
            redis: kind == Kind::Redis,
        }
    }

    /// New complete lines as events (`event`, `wall_ms`, and the node fields).
    fn read(&mut self) -> Vec<Value> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return vec![];
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return vec![];
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return vec![];
        }
        // Only whole lines: the rest is read next time.
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return vec![];
        };
        let whole = &buf[..=end];
        self.offset += whole.len() as u64;
        if self.redis {
            hearsay_checkers::redis_log::events(whole)
        } else {
            whole
                .split(|b| *b == b'\n')
                .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
                .collect()
        }
    }
}

/// What the logs said about one stopped or cut-off node.
#[derive(Default)]
struct Watch {
    pfail: Option<f64>,
    fail: Option<f64>,
    /// Per observer: when it knew the FAIL.
    known: BTreeMap<usize, f64>,
    election: Option<f64>,
    won: Option<f64>,
    promoted: Option<f64>,
}

impl Watch {
    fn feed(&mut self, observer: usize, about: &str, ev: &Value) {
        let Some(t) = ev["wall_ms"].as_f64() else {
            return;
        };
        let subject = ev["about"].as_str().or_else(|| ev["node"].as_str());
        let min = |slot: &mut Option<f64>| *slot = Some(slot.map_or(t, |s: f64| s.min(t)));
        match ev["event"].as_str().unwrap_or("") {
            "pfail_set" if subject == Some(about) => min(&mut self.pfail),
            "fail_marked" if subject == Some(about) => {
                min(&mut self.fail);
                self.known.entry(observer).or_insert(t);
            }
            "fail_received" if subject == Some(about) => {
                self.known.entry(observer).or_insert(t);
            }
            "election_started" | "failover_started" => min(&mut self.election),
            "election_won" | "failover_won" => min(&mut self.won),
            // hearsay: its own role changed to master; redis: the configEpoch a
            // won election sets as the replica takes its master's slots.
            "role_changed"
                if ev["role"] == "master"
                    && ev["previous"] == "replica"
                    && ev["node"] == ev["me"] =>
            {
                min(&mut self.promoted)
            }
            "config_epoch_set"
                if ev["how"]
                    .as_str()
                    .is_some_and(|h| h.contains("successful failover")) =>
            {
                min(&mut self.promoted)
            }
            _ => {}
        }
    }

    fn chain(&self, t0: f64, live: usize) -> Chain {
        let rel = |v: Option<f64>| v.map(|t| (t - t0).max(0.0));
        Chain {
            pfail_ms: rel(self.pfail),
            fail_ms: rel(self.fail),
            fail_all_ms: if self.known.len() >= live {
                rel(self.known.values().copied().reduce(f64::max))
            } else {
                None
            },
            election_ms: rel(self.election),
            won_ms: rel(self.won),
            promoted_ms: rel(self.promoted),
        }
    }
}

/// Follows every log but `skip`'s until `done` says so or `limit` passes.
async fn watch_logs(
    tails: &mut [LogTail],
    skip: usize,
    about: &str,
    limit: Duration,
    done: impl Fn(&Watch) -> bool,
) -> Watch {
    let t0 = Instant::now();
    let mut w = Watch::default();
    loop {
        for (i, t) in tails.iter_mut().enumerate() {
            let evs = t.read();
            if i == skip {
                continue;
            }
            for ev in evs {
                w.feed(i, about, &ev);
            }
        }
        if done(&w) || t0.elapsed() > limit {
            return w;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn set_loglevel(admin: &mut Admin, addrs: &[SocketAddr], level: &str) {
    for a in addrs {
        let _ = admin
            .request(*a, &[b"CONFIG", b"SET", b"loglevel", level.as_bytes()])
            .await;
    }
}

#[async_trait::async_trait]
impl Measure for ClusterMeasure {
    fn name(&self) -> &str {
        &self.label
    }

    async fn measure(&self, p: &Point, ctx: &Ctx<'_>) -> Result<ScaleRow, String> {
        let t0 = Instant::now();
        let name = self.label.as_str();
        let mut row = ScaleRow {
            target: name.into(),
            nodes: p.nodes,
            masters: p.masters(),
            replicas: p.replicas,
            node_timeout_ms: p.node_timeout_ms,
            source: "measured".into(),
            ..Default::default()
        };
        let reg_dir = registry::registry_dir();
        let prefix = registry::new_scale_prefix(&reg_dir)
            .ok_or("all 16 hsscale? prefixes are in use (hearsay clean?)")?;
        let reg = Registry::create(&prefix).map_err(|e| e.to_string())?;
        let _guard = Guard(reg.clone());
        let dir = ctx.out_dir.join("clusters").join(format!(
            "{name}-n{}-t{}-r{}-{}",
            p.nodes, p.node_timeout_ms, p.replicas, p.run
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let dir = dir.canonicalize().map_err(|e| e.to_string())?;
        let _ = reg.set_run_dir(&dir);
        let net = Network::create_static(&reg, p.nodes).map_err(|e| e.to_string())?;
        let mut settings = self.settings.clone();
        settings.node_timeout_ms = p.node_timeout_ms;
        let mut nodes = Vec::new();
        for (i, nn) in net.nodes.iter().enumerate() {
            nodes.push(
                server::cluster_node(i, self.kind, &nn.ns, nn.ip, &dir, &settings, reg.clone())
                    .map_err(|e| e.to_string())?,
            );
        }
        let t_start = Instant::now();
        let count = nodes.len().max(1) as u64;
        for (i, n) in nodes.iter_mut().enumerate() {
            let at = Duration::from_millis(ctx.opts.start_spread_ms * i as u64 / count);
            if let Some(wait) = at.checked_sub(t_start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            n.start().map_err(|e| e.to_string())?;
        }
        let up_limit = Duration::from_secs(30) + Duration::from_millis(100 * p.nodes as u64);
        wait_nodes_up(&mut nodes, up_limit)
            .await
            .map_err(|e| e.to_string())?;
        progress(
            t0,
            &format!("{name} N={}: {} nodes up ({prefix})", p.nodes, nodes.len()),
        );
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr()).collect();
        let nt = p.node_timeout_ms;
        let spec = FormSpec {
            replicas: p.replicas,
            set_epochs: true,
            meets: Meets::First,
            poll: Duration::from_millis(200),
            limit: Duration::from_secs(60) + Duration::from_millis(500 * p.nodes as u64),
            trace: ctx.opts.form_trace,
        };
        let cpu_now = |nodes: &[Node]| -> u64 {
            nodes
                .iter()
                .filter_map(|n| n.pid().and_then(cpu_ticks))
                .sum()
        };
        let cpu0 = cpu_now(&nodes);
        let formed = form::form_with(&addrs, &spec)
            .await
            .map_err(|e| format!("formation: {e}"))?;
        row.form_ms = Some(formed.meet_ms as f64);
        if let Some(tr) = &formed.trace {
            let file = dir.with_file_name(format!(
                "{}-form.json",
                dir.file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or("cluster")
            ));
            if let Ok(text) = serde_json::to_string(tr) {
                let _ = std::fs::write(&file, text);
            }
            row.notes.push(form_trace_note(tr));
        }
        row.form_cpu_s_per_node = Some(
            cpu_now(&nodes).saturating_sub(cpu0) as f64
                / clock_ticks_per_s()
                / nodes.len().max(1) as f64,
        );
        progress(
            t0,
            &format!(
                "{name} N={}: formed and agreed in {:.2} s",
                p.nodes,
                formed.meet_ms as f64 / 1000.0
            ),
        );
        let mut admin = Admin::default();
        if ctx.opts.form_only {
            return Ok(row);
        }

        if !ctx.opts.failover_only {
            let settle = ctx.opts.settle.unwrap_or(nt.div_ceil(1000));
            tokio::time::sleep(Duration::from_secs(settle)).await;
            // The counters are read outside the window; inside it nothing but the
            // cluster bus talks (the admin connections stay idle).
            let m0 = msgs_sent(&mut admin, &addrs).await;
            let s0: Vec<Sample> = net
                .nodes
                .iter()
                .zip(&nodes)
                .map(|(nn, n)| sample(&nn.veth, n.pid()))
                .collect();
            progress(
                t0,
                &format!("{name} N={}: {} s traffic window", p.nodes, ctx.opts.window),
            );
            tokio::time::sleep(Duration::from_secs(ctx.opts.window)).await;
            let s1: Vec<Sample> = net
                .nodes
                .iter()
                .zip(&nodes)
                .map(|(nn, n)| sample(&nn.veth, n.pid()))
                .collect();
            let m1 = msgs_sent(&mut admin, &addrs).await;
            let ticks = clock_ticks_per_s();
            let (mut bytes, mut pkts, mut cpu, mut msgs, mut rss) =
                (vec![], vec![], vec![], vec![], vec![]);
            let mut by_type: BTreeMap<String, f64> = BTreeMap::new();
            for (i, (a, b)) in s0.iter().zip(&s1).enumerate() {
                let secs = (b.at_ms - a.at_ms) / 1000.0;
                if secs <= 0.0 {
                    continue;
                }
                bytes.push(b.tx_bytes.saturating_sub(a.tx_bytes) as f64 / secs);
                pkts.push(b.tx_packets.saturating_sub(a.tx_packets) as f64 / secs);
                cpu.push(b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / ticks / secs * 100.0);
                if let (Some(Some((ta, ma, ka))), Some(Some((tb, mb, kb)))) = (m0.get(i), m1.get(i))
                {
                    if tb > ta {
                        let secs = (tb - ta) / 1000.0;
                        msgs.push(mb.saturating_sub(*ma) as f64 / secs);
                        for (k, b) in kb {
                            let d = b.saturating_sub(ka.get(k).copied().unwrap_or(0)) as f64;
                            *by_type.entry(k.clone()).or_insert(0.0) += d / secs / p.nodes as f64;
                        }
                    }
                }
                if let Some(kb) = nodes.get(i).and_then(|n| n.pid()).and_then(rss_kb) {
                    rss.push(kb as f64 / 1024.0);
                }
            }
            row.window_s = ctx.opts.window as f64;
            row.bytes_per_node_s = mean(&bytes);
            row.bytes_per_cluster_s = (!bytes.is_empty()).then(|| bytes.iter().sum());
            row.packets_per_node_s = mean(&pkts);
            row.cpu_pct_per_node = mean(&cpu);
            row.msgs_per_node_s = mean(&msgs);
            row.rss_mb_per_node = mean(&rss);
            by_type.retain(|_, v| *v > 0.0);
            row.msgs_by_type_per_node_s = by_type;
            progress(
                t0,
                &format!(
                    "{name} N={}: {:.1} msgs/s, {:.0} B/s, {:.2}% CPU, {:.1} MB per node",
                    p.nodes,
                    row.msgs_per_node_s.unwrap_or(0.0),
                    row.bytes_per_node_s.unwrap_or(0.0),
                    row.cpu_pct_per_node.unwrap_or(0.0),
                    row.rss_mb_per_node.unwrap_or(0.0)
                ),
            );
        }

        // The failure chain: the last master stops. Both servers log at debug for
        // it (redis logs its PFAIL decisions at debug only).
        let masters = p.masters();
        let victim = masters - 1;
        let has_replica = p.replicas > 0 && p.nodes > masters;
        let ids = formed.ids.clone();
        let about = ids.get(victim).cloned().unwrap_or_default();
        set_loglevel(&mut admin, &addrs, "debug").await;
        let kinds = vec![self.kind; nodes.len()];
        let mut tails: Vec<LogTail> = nodes
            .iter()
            .zip(&kinds)
            .map(|(n, k)| LogTail::new(n, *k))
            .collect();
        let live = p.nodes - 1;
        let limit = Duration::from_millis(nt * 6 + 10_000);
        let stop_at = wall_ms();
        nodes
            .get(victim)
            .ok_or("no victim node")?
            .pause()
            .map_err(|e| e.to_string())?;
        progress(
            t0,
            &format!("{name} N={}: SIGSTOP n{}", p.nodes, victim + 1),
        );
        let w = watch_logs(&mut tails, victim, &about, limit, |w| {
            w.known.len() >= live && (!has_replica || w.promoted.is_some())
        })
        .await;
        row.failover = w.chain(stop_at, live);
        if row.failover.fail_all_ms.is_none() {
            row.notes.push(format!(
                "FAIL known by {} of {live} nodes within {} s",
                w.known.len(),
                limit.as_secs()
            ));
        }
        set_loglevel(&mut admin, &addrs, "notice").await;
        progress(
            t0,
            &format!(
                "{name} N={}: PFAIL {} FAIL {} all {} promoted {} (s)",
                p.nodes,
                secs(row.failover.pfail_ms),
                secs(row.failover.fail_ms),
                secs(row.failover.fail_all_ms),
                secs(row.failover.promoted_ms)
            ),
        );
        if let Some(n) = nodes.get(victim) {
            let _ = n.resume();
        }

        if !ctx.opts.failover_only && !ctx.opts.skip_partition && masters >= 2 {
            // Agreement first (a returning master with slots keeps its FAIL for
            // 2 x node_timeout), then cut another master off until everyone else
            // knows it FAIL, heal, and time the agreement.
            let agree_limit = Duration::from_millis(nt * 4 + 30_000);
            if let Err(e) = form::wait_agreed_every(
                &mut admin,
                &addrs,
                Some(p.nodes),
                agree_limit,
                Duration::from_millis(200),
            )
            .await
            {
                row.notes.push(format!(
                    "no agreement after the stopped master resumed: {e}"
                ));
            } else {
                let cut = masters - 2;
                let about = ids.get(cut).cloned().unwrap_or_default();
                let others: Vec<usize> = (0..p.nodes).filter(|i| *i != cut).collect();
                let g = grudge::complete(&[vec![cut], others]);
                for t in tails.iter_mut() {
                    let _ = t.read();
                }
                net.apply_grudge(&g).await.map_err(|e| e.to_string())?;
                progress(t0, &format!("{name} N={}: n{} cut off", p.nodes, cut + 1));
                let w = watch_logs(&mut tails, cut, &about, limit, |w| {
                    w.known.len() >= live && (!has_replica || w.promoted.is_some())
                })
                .await;
                net.heal_partitions().await.map_err(|e| e.to_string())?;
                if w.known.len() < live {
                    row.notes.push(format!(
                        "partition: FAIL known by {} of {live} nodes before the heal",
                        w.known.len()
                    ));
                }
                let t_heal = Instant::now();
                match form::wait_agreed_every(
                    &mut admin,
                    &addrs,
                    Some(p.nodes),
                    agree_limit,
                    Duration::from_millis(200),
                )
                .await
                {
                    Ok(_) => row.heal_agree_ms = Some(t_heal.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => row.notes.push(format!("no agreement after the heal: {e}")),
                }
                progress(
                    t0,
                    &format!(
                        "{name} N={}: heal to agreement {} s",
                        p.nodes,
                        secs(row.heal_agree_ms)
                    ),
                );
            }
        }
        drop(admin);
        for n in nodes.iter_mut() {
            let _ = n.kill().await;
        }
        if !ctx.opts.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(row)
    }
}

/// Formation's phases from a trace: when the last node knew every node, had
/// every slot assigned, said ok; and the median node's times.
fn form_trace_note(tr: &form::FormTrace) -> String {
    let phase = |v: &[Option<u64>]| -> String {
        let mut t: Vec<u64> = v.iter().flatten().copied().collect();
        t.sort_unstable();
        if t.len() < v.len() || t.is_empty() {
            return format!("{}/{} nodes", t.len(), v.len());
        }
        let med = t[t.len() / 2];
        let last = t[t.len() - 1];
        format!(
            "median {:.1} s, last {:.1} s",
            med as f64 / 1000.0,
            last as f64 / 1000.0
        )
    };
    format!(
        "form trace: knows all nodes {}; all slots assigned {}; state ok {}",
        phase(&tr.knows_all_ms),
        phase(&tr.all_slots_ms),
        phase(&tr.ok_ms)
    )
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |m| format!("{:.2}", m / 1000.0))
}

/// Median of each measured field over repeated rows of one target and size.
fn median_row(rows: &[ScaleRow]) -> Option<ScaleRow> {
    let first = rows.first()?.clone();
    if rows.len() == 1 {
        return Some(first);
    }
    let med = |get: &dyn Fn(&ScaleRow) -> Option<f64>| -> Option<f64> {
        let mut v: Vec<f64> = rows.iter().filter_map(get).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        })
    };
    let mut r = first;
    r.msgs_per_node_s = med(&|r| r.msgs_per_node_s);
    r.bytes_per_node_s = med(&|r| r.bytes_per_node_s);
    r.packets_per_node_s = med(&|r| r.packets_per_node_s);
    r.bytes_per_cluster_s = med(&|r| r.bytes_per_cluster_s);
    r.cpu_pct_per_node = med(&|r| r.cpu_pct_per_node);
    r.rss_mb_per_node = med(&|r| r.rss_mb_per_node);
    r.form_ms = med(&|r| r.form_ms);
    r.form_runs_ms = rows.iter().filter_map(|r| r.form_ms).collect();
    r.form_cpu_s_per_node = med(&|r| r.form_cpu_s_per_node);
    r.heal_agree_ms = med(&|r| r.heal_agree_ms);
    r.failover = Chain {
        pfail_ms: med(&|r| r.failover.pfail_ms),
        fail_ms: med(&|r| r.failover.fail_ms),
        fail_all_ms: med(&|r| r.failover.fail_all_ms),
        election_ms: med(&|r| r.failover.election_ms),
        won_ms: med(&|r| r.failover.won_ms),
        promoted_ms: med(&|r| r.failover.promoted_ms),
    };
    r.notes = rows.iter().flat_map(|r| r.notes.clone()).collect();
    r.notes.push(format!("median of {} runs", rows.len()));
    Some(r)
}

/// Runs `hearsay scale`; the exit code (0 all measured, 2 some point failed, 254
/// bad options).
pub async fn main(opts: &ScaleOpts) -> i32 {
    let t0 = Instant::now();
    let ms = match measures(opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("hearsay scale: {e}");
            return 254;
        }
    };
    let most = ms.iter().map(|m| m.max_nodes()).max().unwrap_or(253);
    if let Some(bad) = opts.nodes.iter().find(|n| **n < 3 || **n > most) {
        eprintln!(
            "hearsay scale: {bad} nodes: between 3 and {most} (a real cluster takes one /24: 253; the simulator 5000)"
        );
        return 254;
    }
    let started = SystemTime::now();
    let stamp = crate::env::stamp::utc_stamp(started);
    let out_dir = opts.results_dir.join(&stamp);
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("hearsay scale: {}: {e}", out_dir.display());
        return 2;
    }
    let mut report = ScaleReport {
        started: stamp,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_string(),
        rows: vec![],
    };
    let ctx = Ctx {
        opts,
        out_dir: &out_dir,
    };
    let mut code = 0;
    let mut all_runs: Vec<ScaleRow> = Vec::new();
    let budget = Duration::from_secs(opts.time_budget);
    'outer: for &nt in &opts.node_timeout {
        for &n in &opts.nodes {
            for run in 0..opts.runs.max(1) {
                // Alternate which target goes first, so that neither always runs on
                // a machine just warmed (or loaded) by the other.
                let order: Vec<&Box<dyn Measure>> = if run % 2 == 0 {
                    ms.iter().collect()
                } else {
                    ms.iter().rev().collect()
                };
                for m in order {
                    if n > m.max_nodes() {
                        progress(
                            t0,
                            &format!(
                                "{} N={n}: beyond its {} nodes, skipped",
                                m.name(),
                                m.max_nodes()
                            ),
                        );
                        continue;
                    }
                    if t0.elapsed() > budget {
                        eprintln!(
                            "[scale] time budget of {} s spent: stopping",
                            budget.as_secs()
                        );
                        code = 2;
                        break 'outer;
                    }
                    let p = Point {
                        nodes: n,
                        replicas: opts.replicas,
                        node_timeout_ms: nt,
                        run,
                    };
                    progress(
                        t0,
                        &format!("{} N={n} node-timeout {nt} run {}", m.name(), run + 1),
                    );
                    match m.measure(&p, &ctx).await {
                        Ok(row) => all_runs.push(row),
                        Err(e) => {
                            eprintln!("[scale] {} N={n}: {e}", m.name());
                            code = 2;
                            all_runs.push(ScaleRow {
                                target: m.name().into(),
                                nodes: n,
                                masters: p.masters(),
                                replicas: opts.replicas,
                                node_timeout_ms: nt,
                                source: "measured".into(),
                                notes: vec![e],
                                ..Default::default()
                            });
                        }
                    }
                    report.rows = summarise(&all_runs);
                    if let Err(e) = view::write_all(&out_dir, &report) {
                        eprintln!("[scale] writing outputs: {e}");
                        code = 2;
                    }
                    let _ = std::fs::write(
                        out_dir.join("runs.json"),
                        serde_json::to_string_pretty(&all_runs).unwrap_or_default(),
                    );
                }
            }
        }
    }
    print!("{}", report.markdown());
    println!("\noutputs: {}", out_dir.display());
    code
}

/// One row per target, size, node timeout and replicas: the median of its runs.
fn summarise(runs: &[ScaleRow]) -> Vec<ScaleRow> {
    let mut keys: Vec<(String, usize, u64, usize)> = Vec::new();
    for r in runs {
        let k = (r.target.clone(), r.nodes, r.node_timeout_ms, r.replicas);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.iter()
        .filter_map(|k| {
            let rows: Vec<ScaleRow> = runs
                .iter()
                .filter(|r| (r.target.clone(), r.nodes, r.node_timeout_ms, r.replicas) == *k)
                .cloned()
                .collect();
            median_row(&rows)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn watch_builds_the_chain_from_both_logs() {
        let mut w = Watch::default();
        let about = "victim";
        // hearsay event lines.
        w.feed(
            0,
            about,
            &json!({"event": "pfail_set", "node": "victim", "wall_ms": 1500}),
        );
        w.feed(
            0,
            about,
            &json!({"event": "fail_marked", "about": "victim", "wall_ms": 2500}),
        );
        w.feed(
            1,
            about,
            &json!({"event": "fail_received", "about": "victim", "wall_ms": 2600}),
        );
        w.feed(
            1,
            about,
            &json!({"event": "pfail_set", "node": "other", "wall_ms": 100}),
        );
        // redis adapter events.
        w.feed(
            2,
            about,
            &json!({"event": "fail_received", "about": "victim", "wall_ms": 2700}),
        );
        w.feed(
            2,
            about,
            &json!({"event": "failover_started", "wall_ms": 3000}),
        );
        w.feed(2, about, &json!({"event": "failover_won", "wall_ms": 3100}));
        w.feed(2, about, &json!({"event": "config_epoch_set", "how": "after successful failover", "wall_ms": 3101}));
        let c = w.chain(1000.0, 3);
        assert_eq!(c.pfail_ms, Some(500.0));
        assert_eq!(c.fail_ms, Some(1500.0));
        assert_eq!(c.fail_all_ms, Some(1700.0));
        assert_eq!(c.election_ms, Some(2000.0));
        assert_eq!(c.won_ms, Some(2100.0));
        assert_eq!(c.promoted_ms, Some(2101.0));
        assert_eq!(w.chain(1000.0, 4).fail_all_ms, None);
    }

    #[test]
    fn hearsay_promotion_is_its_own_role_change() {
        let mut w = Watch::default();
        w.feed(3, "v", &json!({"event": "role_changed", "me": "r", "node": "r", "previous": "replica", "role": "master", "wall_ms": 10}));
        w.feed(3, "v", &json!({"event": "role_changed", "me": "x", "node": "r", "previous": "replica", "role": "master", "wall_ms": 5}));
        assert_eq!(w.promoted, Some(10.0));
    }

    #[test]
    fn medians_of_runs() {
        let r = |f: f64| ScaleRow {
            target: "hearsay".into(),
            nodes: 6,
            form_ms: Some(f),
            ..Default::default()
        };
        let s = summarise(&[r(3.0), r(1.0), r(2.0)]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].form_ms, Some(2.0));
    }

    #[test]
    fn proc_stat_fields() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }
}
