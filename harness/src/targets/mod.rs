//! Targets: the systems a test runs, each behind the [`Target`] interface that the
//! runner (`run/`) drives phase by phase: start, form, observe, fault, heal, recover,
//! stop. One file per target; adding a target is one file here plus its line in
//! [`build`].
//!
//! - `redis`, `hearsay`, `mixed`: Redis Cluster nodes (redis-server, hearsay-node, or
//!   both by node index), sharing the machinery in `cluster.rs`.
//! - `sentinel`: Redis Sentinel (a master, two replicas, three sentinels); clients ask
//!   the sentinels for the master.
//! - `twemproxy`: nutcracker in front of three redis-server shards; clients talk to
//!   the proxy. Both share `standalone.rs` (plain redis-server nodes, fault plumbing).
//!
//! Imports: `faults/` and `env/` below; never `run/`, `output/` or `cli/`.

pub mod cluster;
pub mod form;
pub mod hearsay;
pub mod mixed;
pub mod redis;
pub mod reshape;
pub mod sentinel;
pub mod server;
pub mod standalone;
pub mod twemproxy;

use crate::env::net::NetError;
use crate::env::process::ProcessError;
use crate::env::recorder::{JsonLines, Recorder};
use crate::env::registry::Registry;
use crate::faults::clock::FaketimeError;
use crate::faults::schedule::{Fault, PartitionSpec, Planned};
use crate::opts::{RunOpts, TargetChoice};
use hearsay_workloads::cluster::Routing;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Target errors (a harness error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Form(#[from] form::FormError),
    #[error(transparent)]
    Faketime(#[from] FaketimeError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// What a target needs to start.
pub struct StartCtx<'a> {
    /// The run folder (absolute: processes run in their own directories).
    pub run_dir: &'a Path,
    pub reg: Arc<Registry>,
    /// The schedule skews clocks: processes must run under libfaketime.
    pub with_clock: bool,
    /// This binary (the packet delayer runs as `hearsay delayer`).
    pub exe: PathBuf,
    /// The schedule changes the cluster's shape (`reshard`, `member`): a Redis
    /// Cluster target starts a spare node outside the cluster and repairs open slots
    /// and membership at the final heal.
    pub reshape: bool,
}

/// Figures of the start phase, for run-info.json and the log.
#[derive(Clone, Debug, Default)]
pub struct Started {
    pub network: String,
    pub namespaces: usize,
    pub network_build_ms: u64,
    pub nodes_start_ms: u64,
}

/// What stopping leaves for run-info.json.
#[derive(Clone, Debug, Default)]
pub struct Stopped {
    /// Restarts per node name.
    pub restarts: BTreeMap<String, u32>,
}

/// One system under test.
#[async_trait::async_trait]
pub trait Target: Send {
    /// The `--target` name.
    fn name(&self) -> &'static str;
    /// test.json's `versions` (harness excluded) and `binaries`.
    fn versions(&self) -> serde_json::Map<String, Value>;
    fn binaries(&self) -> Value;
    /// Builds the network and starts every process; returns once all answer.
    async fn start(&mut self, ctx: StartCtx<'_>) -> Result<Started, TargetError>;
    /// Forms the system and waits until it agrees; returns the ms it took.
    async fn form(&mut self) -> Result<u64, TargetError>;
    /// Every address a client may reach, with the node name the history gives it.
    fn endpoints(&self) -> Vec<(String, SocketAddr)>;
    /// Where clients start: the cluster nodes (default), the sentinels, the proxy.
    fn client_seeds(&self) -> Vec<SocketAddr> {
        self.endpoints().into_iter().map(|(_, a)| a).collect()
    }
    /// How clients find a key's node.
    fn routing(&self) -> Routing {
        Routing::Cluster
    }
    /// Records fault steps in `rec` from now on (the history starts after formation).
    fn record_faults(&mut self, rec: Arc<Recorder>);
    /// Spawns the observer: one snapshot round into `out` every `every` until `stop`,
    /// then a last round (the convergence checker judges the final state).
    fn spawn_observer(
        &self,
        out: JsonLines,
        rec: Arc<Recorder>,
        every: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()>;
    /// Resolves and starts a planned fault, recording it with its evidence; returns the
    /// concrete fault and whether its effect was verified.
    async fn start_fault(&mut self, p: &Planned) -> (Fault, bool);
    /// Runs between a fault's start and stop (clock strobes flip here).
    async fn hold_fault(
        &mut self,
        f: &Fault,
        until: tokio::time::Instant,
        stop: &tokio::sync::watch::Receiver<bool>,
    );
    /// Heals one fault; returns whether the heal was verified.
    async fn stop_fault(&mut self, f: &Fault) -> bool;
    /// Undoes whatever may be in effect; returns whether every heal was verified.
    async fn heal_all(&mut self) -> bool;
    /// Waits until the live processes agree again; the time it took, or why not.
    async fn wait_recovered(&self, limit: Duration) -> Result<Duration, String>;
    /// Stops every process and leaves the evidence in the run folder (event logs
    /// derived from server logs, bus counters).
    async fn stop(&mut self, run_dir: &Path) -> Result<Stopped, TargetError>;
}

/// The target a test's options name.
pub fn build(opts: &RunOpts) -> Box<dyn Target> {
    match opts.target {
        TargetChoice::Redis => Box::new(redis::target(opts)),
        TargetChoice::Hearsay => Box::new(hearsay::target(opts)),
        TargetChoice::Mixed => Box::new(mixed::target(opts)),
        TargetChoice::Sentinel => Box::new(sentinel::target(opts)),
        TargetChoice::Twemproxy => Box::new(twemproxy::target(opts)),
        // `--target sim` runs in the simulator (cli dispatches it there); a
        // caller that builds it anyway gets the real hearsay-node cluster.
        TargetChoice::Sim => Box::new(hearsay::target(opts)),
    }
}

/// Partition shapes a target adds to the drawn schedule. Sentinel adds Jepsen's
/// (the master with a minority of the sentinels), weighted so that about one
/// partition in three is that one.
pub fn extra_partitions(target: TargetChoice) -> Vec<PartitionSpec> {
    match target {
        TargetChoice::Sentinel => vec![PartitionSpec::PrimaryWithMinority; 3],
        _ => vec![],
    }
}
