//! The sans-IO cluster state machine: membership, gossip, failure detection,
//! epochs and slot ownership, as redis 7.0's `cluster.c` does them.
//!
//! Inputs are `handle_*` calls and `tick` (the 10 Hz `clusterCron`), each with
//! the current wall-clock time in ms (redis uses `mstime()` everywhere in the
//! cluster code, so clock skew affects this node exactly as it does redis).
//! Outputs are drained with `poll_action` after every input. No sockets,
//! clocks, threads or unseeded randomness live here.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::resp::Frame;
use crate::wire::{Message, NodeName};

/// Wall-clock milliseconds since the Unix epoch.
pub type Millis = u64;

/// Identifies one TCP connection of the cluster bus. Allocated by the core,
/// for outbound links (`Action::Connect`) and inbound ones (`handle_accept`).
pub type LinkId = u64;

/// Log levels, as redis: `.` debug, `-` verbose, `*` notice, `#` warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

/// What the core asks its shell to do.
#[derive(Debug)]
pub enum Action {
    /// Open an outbound TCP connection to `ip:port` (the peer's bus port) and
    /// report back with `handle_connected` or `handle_connect_failed`.
    Connect { link: LinkId, ip: String, port: u16 },
    /// Encode and write a message on a link (the shell owns the codec, so the
    /// core and its in-memory tests deal in `Message` values only).
    Send { link: LinkId, msg: Message },
    /// Close a link (no `handle_link_closed` follows).
    Close { link: LinkId },
    /// Write nodes.conf with this content (and fsync it if asked).
    SaveConfig { contents: String, fsync: bool },
    /// Delete every key in these slots (dirty slots after losing them).
    DeleteKeysInSlots { slots: Vec<u16> },
    /// Delete every key (CLUSTER RESET of a replica).
    FlushAll,
    /// A protocol decision for the event log.
    Event(crate::events::Event),
    /// A line for the human log, in redis's wording.
    Log { level: LogLevel, text: String },
}

/// Cluster options, named after redis's.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// cluster-node-timeout, ms.
    pub node_timeout: u64,
    /// Announced client port (cluster-announce-port, else port).
    pub announce_port: u16,
    /// Announced bus port (cluster-announce-bus-port, else the bus listen port).
    pub announce_bus_port: u16,
    /// cluster-announce-ip; `None` when unset or empty.
    pub announce_ip: Option<String>,
    /// cluster-announce-hostname; `None` when unset or empty.
    pub announce_hostname: Option<String>,
    pub require_full_coverage: bool,
    pub allow_reads_when_down: bool,
    pub replica_validity_factor: u32,
    pub migration_barrier: u32,
    pub allow_replica_migration: bool,
    pub replica_no_failover: bool,
    /// Planted defects (`--bug NAME`), for proving checkers. Empty in normal runs.
    pub bugs: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_timeout: 15000,
            announce_port: 6379,
            announce_bus_port: 16379,
            announce_ip: None,
            announce_hostname: None,
            require_full_coverage: true,
            allow_reads_when_down: false,
            replica_validity_factor: 10,
            migration_barrier: 1,
            allow_replica_migration: true,
            replica_no_failover: false,
            bugs: Vec::new(),
        }
    }
}

/// Errors loading nodes.conf.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("corrupted cluster config file: line {line}: {reason}")]
    Corrupt { line: usize, reason: String },
}

/// What the client port needs to know about one slot to route a command
/// (redis `getNodeByQuery`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRoute {
    /// The slot's owner, if bound: its ID and client endpoint (`ip`, port).
    pub owner: Option<(NodeName, String, u16)>,
    /// The owner is this node.
    pub owner_is_me: bool,
    /// The owner is this node's master (for READONLY reads on replicas).
    pub owner_is_my_master: bool,
    /// This node marked the slot MIGRATING: the target's endpoint.
    pub migrating_to: Option<(String, u16)>,
    /// This node marked the slot IMPORTING.
    pub importing: bool,
}

/// Read access to the keyspace, for CLUSTER subcommands that look at keys.
pub trait Keyspace {
    fn count_keys_in_slot(&self, slot: u16) -> usize;
    fn keys_in_slot(&self, slot: u16, count: usize) -> Vec<Bytes>;
    /// Number of keys in the whole keyspace.
    fn key_count(&self) -> usize;
}

/// The cluster state of one node.
pub struct Cluster {
    _private: (),
}

impl Cluster {
    /// Creates the state of a node. `nodes_conf` is the content of its nodes.conf
    /// if the file existed and was not empty; otherwise a new random ID is drawn
    /// from `seed` and a `SaveConfig` action is queued at once.
    pub fn new(
        cfg: ClusterConfig,
        now: Millis,
        seed: u64,
        nodes_conf: Option<&str>,
    ) -> Result<Cluster, LoadError> {
        let _ = (cfg, now, seed, nodes_conf);
        todo!()
    }

    // ---- inputs from the shell ----

    /// A peer connected to our bus port. Returns the link's ID.
    pub fn handle_accept(&mut self, now: Millis, peer: SocketAddr, local: SocketAddr) -> LinkId {
        let _ = (now, peer, local);
        todo!()
    }

    /// An outbound connection asked for by `Action::Connect` is established.
    pub fn handle_connected(&mut self, now: Millis, link: LinkId, local: SocketAddr) {
        let _ = (now, link, local);
        todo!()
    }

    /// An outbound connection failed to establish.
    pub fn handle_connect_failed(&mut self, now: Millis, link: LinkId, error: &str) {
        let _ = (now, link, error);
        todo!()
    }

    /// A link was closed by the peer or by an I/O error (or a bad frame).
    pub fn handle_link_closed(&mut self, now: Millis, link: LinkId) {
        let _ = (now, link);
        todo!()
    }

    /// A complete frame arrived on a link and decoded cleanly. Frames that fail
    /// the signature/min-length check close the link in the shell; frames whose
    /// length does not match their type are logged and dropped by the shell.
    pub fn handle_packet(&mut self, now: Millis, link: LinkId, msg: Message) {
        let _ = (now, link, msg);
        todo!()
    }

    /// The 100 ms `clusterCron`.
    pub fn tick(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// Deferred work of `clusterBeforeSleep`: state update, config save. The
    /// shell calls it after each batch of inputs, before draining actions.
    pub fn before_sleep(&mut self, now: Millis) {
        let _ = now;
        todo!()
    }

    /// Next output, in the order produced.
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!()
    }

    // ---- client port ----

    /// `CLUSTER <subcommand> ...`; `args` excludes the word CLUSTER. Replies
    /// exactly as redis 7.0 does (texts in the reference, section 6).
    pub fn command(&mut self, now: Millis, args: &[Bytes], keys: &dyn Keyspace, resp3: bool) -> Frame {
        let _ = (now, args, keys, resp3);
        todo!()
    }

    /// Routing facts for one slot.
    pub fn route(&self, slot: u16) -> SlotRoute {
        let _ = slot;
        todo!()
    }

    /// `cluster_state:ok`?
    pub fn state_ok(&self) -> bool {
        todo!()
    }

    pub fn myself(&self) -> NodeName {
        todo!()
    }

    /// Our node is a replica (for INFO's role and routing).
    pub fn is_replica(&self) -> bool {
        todo!()
    }

    /// The `cluster_*` lines of CLUSTER INFO (also used by INFO cluster's callers).
    pub fn info_text(&self) -> String {
        todo!()
    }

    /// Applies runtime config changes (CONFIG SET of cluster options).
    pub fn set_config(&mut self, cfg: ClusterConfig) {
        let _ = cfg;
        todo!()
    }

    pub fn config(&self) -> &ClusterConfig {
        todo!()
    }
}
