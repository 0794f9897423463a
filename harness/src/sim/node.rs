//! One simulated hearsay-node process: the node's own cluster core
//! (`hearsay_node::cluster::Cluster`), its own keyspace (`store::Db`) and
//! command layer (`commands::execute`, through a [`Host`] that lends them
//! the core), and its replication core (`replication::Replication`). The world
//! (`world.rs`) carries its messages; nothing here reads a clock.

use bytes::Bytes;
use hearsay_node::cluster::{Cluster, ClusterConfig, SlotRoute};
use hearsay_node::commands::{self, ClientState, Host};
use hearsay_node::replication::{ReplConfig, ReplicaId, Replication};
use hearsay_node::resp::Frame;
use hearsay_node::store::Db;
use std::collections::BTreeMap;

/// Virtual wall clock of every node at simulated time 0 (a plausible Unix ms).
pub const T0_MS: u64 = 1_700_000_000_000;

/// The replication options of a simulated node: redis 7.0's defaults (1 MB
/// backlog, repl-timeout 60 s, diskless syncs after 5 s) and the core's
/// ping period.
pub fn repl_config(cfg: &ClusterConfig) -> ReplConfig {
    ReplConfig {
        ping_period_s: cfg.repl_ping_replica_period.max(1),
        ..ReplConfig::default()
    }
}

/// One simulated process and what survives it (`conf`, and `db` with AOF).
pub struct SimNode {
    pub index: usize,
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub cfg: ClusterConfig,
    pub core: Cluster,
    pub db: Db,
    pub alive: bool,
    pub paused: bool,
    /// Process starts so far (0 = the first start); stale events carry an older one.
    pub inc: u64,
    /// Clock offset (ms) the clock nemesis sets.
    pub clock_ms: i64,
    /// Last nodes.conf the core asked to save.
    pub conf: Option<String>,
    /// Event lines of the current and earlier starts (the node's events.jsonl).
    pub events: Vec<u8>,
    pub seq: u64,
    /// The node's own replication core, driven as `server/replication.rs`
    /// drives it (`world/repl.rs`).
    pub repl: Replication,
    /// The current link to our master (an index into the world's
    /// replication connections), while one is open.
    pub link: Option<usize>,
    /// Our replicas' connections, by the core's replica ID.
    pub replica_conns: BTreeMap<ReplicaId, usize>,
    /// When the once-a-second part of the replication cron last ran (node ms).
    pub repl_cron_ms: u64,
    /// Client requests that arrived while paused: (cconn, proc, io, args).
    pub held: Vec<(u64, usize, u64, Vec<Vec<u8>>)>,
    /// Pipes whose head item waits for this node to resume.
    pub held_pipes: Vec<usize>,
    pub cron_phase_us: u64,
}

impl SimNode {
    /// This node's wall clock (ms) at simulated time `now_us`.
    pub fn clock(&self, now_us: u64) -> u64 {
        (T0_MS as i64 + (now_us / 1000) as i64 + self.clock_ms).max(0) as u64
    }

    /// Runs one client request as the shell does: the node's command layer,
    /// with this node's core routing it. Returns the reply and the writes to
    /// feed to replicas.
    pub fn execute(
        &mut self,
        now_us: u64,
        client: &mut ClientState,
        args: Vec<Bytes>,
    ) -> commands::Outcome {
        let now = self.clock(now_us);
        let mut host = SimHost {
            core: &mut self.core,
            now,
        };
        commands::execute(&mut host, &mut self.db, client, args)
    }

    /// Applies a command of the replication stream (redis's master client).
    pub fn apply_replicated(&mut self, now_us: u64, args: Vec<Bytes>) {
        let now = self.clock(now_us);
        let mut host = SimHost {
            core: &mut self.core,
            now,
        };
        let _ = commands::apply_replicated(&mut host, &mut self.db, args);
    }
}

/// The command layer's view of a simulated node: routing from the core, the
/// virtual clock, CLUSTER served by the core.
struct SimHost<'a> {
    core: &'a mut Cluster,
    now: u64,
}

impl Host for SimHost<'_> {
    fn cluster_enabled(&self) -> bool {
        true
    }
    fn route(&self, slot: u16) -> SlotRoute {
        self.core.route(slot)
    }
    fn slot_is_local(&self, slot: u16) -> bool {
        self.core.slot_is_local(slot)
    }
    fn cluster_state_ok(&self) -> bool {
        self.core.state_ok()
    }
    fn allow_reads_when_down(&self) -> bool {
        self.core.config().allow_reads_when_down
    }
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn is_replica(&self) -> bool {
        self.core.is_replica()
    }
    fn bug(&self, name: &str) -> bool {
        self.core.config().bug(name)
    }
    fn server_command(
        &mut self,
        name: &str,
        args: &[Bytes],
        db: &mut Db,
        client: &ClientState,
    ) -> Option<Frame> {
        match name {
            "cluster" => Some(self.core.command(self.now, args, &*db, client.resp3)),
            _ => None,
        }
    }
}
