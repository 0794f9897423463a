//! The options of one test, as `hearsay run` takes them and test.json stores them.
//!
//! A leaf: every folder may read these types, and this file imports nothing of the
//! harness, so options never pull a layer in with them.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `--target` choice: which system a test runs. Each name is one file under
/// `targets/`, which says how it is started, formed, observed, faulted and judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetChoice {
    Redis,
    Hearsay,
    Mixed,
    /// Redis Sentinel: one redis-server master, two replicas, three redis-sentinel.
    Sentinel,
    /// twemproxy (nutcracker) in front of three redis-server shards.
    Twemproxy,
    /// hearsay-node's cluster core in deterministic simulated time (`hearsay sim`).
    Sim,
}

/// The `--server` choice: what runs the data nodes of a target made of plain
/// (non-cluster) servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DataServer {
    #[default]
    Redis,
    /// hearsay-node in standalone mode (REPLICAOF, redis 7.0 replication).
    Hearsay,
}

impl TargetChoice {
    pub fn name(self) -> &'static str {
        match self {
            TargetChoice::Redis => "redis",
            TargetChoice::Hearsay => "hearsay",
            TargetChoice::Mixed => "mixed",
            TargetChoice::Sentinel => "sentinel",
            TargetChoice::Twemproxy => "twemproxy",
            TargetChoice::Sim => "sim",
        }
    }

    /// Targets whose shape the `reshard` and `member` nemeses can change: the Redis
    /// Cluster targets on real processes (the simulator does not model them yet).
    pub fn reshapes(self) -> bool {
        matches!(
            self,
            TargetChoice::Redis | TargetChoice::Hearsay | TargetChoice::Mixed
        )
    }

    /// Targets of a fixed shape: their node count (`--nodes` is set to it).
    pub fn fixed_nodes(self) -> Option<usize> {
        match self {
            TargetChoice::Sentinel => Some(6),
            TargetChoice::Twemproxy => Some(4),
            _ => None,
        }
    }

    /// Whether the target is a Redis Cluster (slot map, cluster bus, its checkers).
    pub fn is_cluster(self) -> bool {
        self.fixed_nodes().is_none()
    }
}

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
    /// What the data verdict is judged against: `redis-cluster` (the losses Redis
    /// Cluster documents are explained, only unexplained anomalies are invalid) or
    /// `linearizable` (Jepsen's judgement: every anomaly is invalid).
    #[arg(long, default_value = "redis-cluster", value_parser = ["redis-cluster", "linearizable"])]
    #[serde(default = "redis_cluster")]
    pub claims: String,
    /// The same as `--claims linearizable` (kept for older commands and test.json files).
    #[arg(long, hide = true)]
    pub linearizable: bool,
    /// Draw partitions of these shapes only, comma-separated (`isolate-one`,
    /// `random-halves`, `majority-minority`, `majorities-ring`, `bridge`,
    /// `primaries-alone`, `one-way`, `primary-with-minority`).
    #[arg(long)]
    #[serde(default)]
    pub partitions: Option<String>,
    /// Sentinel target: `min-replicas-to-write` on the data nodes (0: off, redis's
    /// default; N: a master refuses writes with fewer than N replicas acknowledging
    /// within 10 s).
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub min_replicas_to_write: u32,
    /// Sentinel target: the data nodes' server (the sentinels are always Debian's
    /// redis-sentinel).
    #[arg(long, value_enum, default_value_t = DataServer::Redis)]
    #[serde(default)]
    pub server: DataServer,
    /// twemproxy target: `auto_eject_hosts` (a failing shard leaves the hash ring
    /// and its keys move to the others).
    #[arg(long, default_value = "no", value_parser = ["yes", "no"])]
    #[serde(default = "no")]
    pub auto_eject: String,
    /// nutcracker binary (twemproxy target).
    #[arg(long, default_value = "nutcracker")]
    #[serde(default = "nutcracker")]
    pub nutcracker: PathBuf,
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
    /// time faults around elections; `shards-at-once` then widens its window to it
    /// (hidden: proves `double-vote` is caught).
    #[arg(long, hide = true)]
    #[serde(default)]
    pub node_election_delay_ms: Option<u64>,
}

fn redis_cluster() -> String {
    "redis-cluster".into()
}

fn no() -> String {
    "no".into()
}

fn nutcracker() -> PathBuf {
    "nutcracker".into()
}

fn yes() -> String {
    "yes".into()
}
