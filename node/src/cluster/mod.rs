//! The sans-IO cluster state machine: membership, gossip, failure detection,
//! epochs and slot ownership, as redis 7.0's `cluster.c` does them.
//!
//! Inputs are `handle_*` calls and `tick` (the 10 Hz `clusterCron`), each with
//! the current wall-clock time in ms (redis uses `mstime()` everywhere in the
//! cluster code, so clock skew affects this node exactly as it does redis).
//! Outputs are drained with `poll_action` after every input. No sockets,
//! clocks, threads or unseeded randomness live here.

use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::events::{Event, EventKind};
use crate::resp::Frame;
use crate::slots::{SlotSet, CLUSTER_SLOTS};
use crate::wire::{node_flags, Message, NodeName};

mod command;
mod cron;
mod dict;
mod epoch;
mod failover;
mod failure;
mod gossip;
mod links;
mod node;
mod nodes_conf;
mod packet;
mod slots;
mod table;

#[cfg(test)]
mod tests;

use failover::FailoverState;
use links::Link;
use node::{Ms, Node, NodeRef};
use slots::SlotChangeGroup;

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
    /// A PUBLISH (`shard`: PUBLISHSHARD) arrived from a known node: deliver
    /// it to local subscribers.
    Publish {
        channel: Bytes,
        message: Bytes,
        shard: bool,
    },
    /// This node stopped serving these slots (its shard lost them): drop the
    /// shard channels in them, telling their subscribers (redis 7.0
    /// `removeChannelsInSlot`).
    DropShardChannels { slots: SlotSet },
}

/// The order in which the shell carries out one batch of actions (those
/// queued when it drains the core). Within a phase the core's order is kept;
/// the phases go in this order, so that an event line is on file before any
/// other process can see an effect of its decision (a vote's ACK, a FAIL, a
/// reply after a role change) and a SIGKILL never loses it, while nodes.conf
/// goes first: redis too saves the config in `clusterBeforeSleep`, before the
/// event loop writes the messages queued in the same turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// nodes.conf: what a restart reads back. Written before the event lines,
    /// so a line never claims a vote or an epoch a restart would forget.
    Persist,
    /// Event and log lines, written and flushed to their files.
    Record,
    /// Everything another process can observe: connects, messages, closes,
    /// key deletions (they reach replicas).
    Effect,
}

impl Action {
    /// Where this action goes in its batch (see [`Phase`]).
    pub fn phase(&self) -> Phase {
        match self {
            Action::SaveConfig { .. } => Phase::Persist,
            Action::Event(_) | Action::Log { .. } => Phase::Record,
            Action::Connect { .. }
            | Action::Send { .. }
            | Action::Close { .. }
            | Action::DeleteKeysInSlots { .. }
            | Action::FlushAll
            | Action::Publish { .. }
            | Action::DropShardChannels { .. } => Phase::Effect,
        }
    }
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
    /// repl-ping-replica-period, seconds (part of the data-age limit).
    pub repl_ping_replica_period: u64,
    /// Planted defects (`--bug NAME`), for proving checkers. Empty in normal
    /// runs. Each is one minimal deviation from a redis 7.0 rule, marked
    /// "Planted bug" where it acts; events still report the true state:
    /// - `fail-without-quorum`: PFAIL -> FAIL without a majority of reports;
    /// - `count-replica-reports`: failure reports from replicas are counted;
    /// - `stale-reports`: failure reports never expire;
    /// - `double-vote`: a master may vote twice in one epoch;
    /// - `no-update`: claims taking slots from another owner, and UPDATE
    ///   messages, are ignored (the slot map stays stale);
    /// - `ignore-epoch-collision`: equal configEpochs are left as they are;
    /// - `early-pfail`: PFAIL once node_delay > node_timeout / 2;
    /// - `vote-master-up`: a vote although the candidate's master is not FAIL;
    /// - `early-fail-clear`: FAIL of a reachable master with slots cleared at
    ///   once, not after 2 x node_timeout;
    /// - `premature-win`: an election won with one vote fewer than needed
    ///   (when needed >= 2);
    /// - `slow-failover`: an automatic election starts 10 x node_timeout late;
    /// - `minority-writes`: a master cut off from the majority of masters
    ///   stays `cluster_state:ok` (keeps taking writes).
    ///
    /// Outside the cluster core (the same `--bug` list, read by the command
    /// layer through `Host::bug`):
    /// - `migrate-delete-before-ack`: MIGRATE deletes its keys (and
    ///   replicates the DEL) before the target acknowledged them.
    pub bugs: Vec<String>,
    /// Tests only: a fixed election delay replacing 500 ms + random 0..500 ms.
    pub test_election_delay_ms: Option<u64>,
    /// Gossip experiment (hidden `experiment-gossip-divisor`): a ping carries
    /// max(3, N / this) gossip entries. Redis: 10.
    pub gossip_divisor: u64,
    /// Gossip experiment (hidden `experiment-ping-age-divisor`): a peer whose
    /// last pong is older than node_timeout / this is pinged. Redis: 2.
    pub ping_age_divisor: u64,
    /// `cluster-preferred-endpoint-type`: what CLUSTER SLOTS/SHARDS and
    /// MOVED/ASK give clients as a node's address.
    pub preferred_endpoint: EndpointType,
    /// Simulators only: `SaveConfig` carries no text. Rendering nodes.conf costs
    /// a line per node and a forming cluster saves about twice per node it
    /// learns, so n^3 lines in all; a shell that never reads the file back
    /// asks [`Cluster::config_text`] when it wants one.
    pub skip_config_text: bool,
}

/// `cluster-preferred-endpoint-type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointType {
    #[default]
    Ip,
    Hostname,
    UnknownEndpoint,
}

impl EndpointType {
    pub fn parse(text: &str) -> EndpointType {
        match text {
            "hostname" => EndpointType::Hostname,
            "unknown-endpoint" => EndpointType::UnknownEndpoint,
            _ => EndpointType::Ip,
        }
    }
}

impl ClusterConfig {
    /// Whether the planted defect `name` is on (`--bug NAME`; test use only).
    pub fn bug(&self, name: &str) -> bool {
        self.bugs.iter().any(|b| b == name)
    }
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
            repl_ping_replica_period: 10,
            bugs: Vec::new(),
            test_election_delay_ms: None,
            gossip_divisor: 10,
            ping_age_divisor: 2,
            preferred_endpoint: EndpointType::Ip,
            skip_config_text: false,
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

/// Validates a `cluster-announce-hostname` value as redis's CONFIG SET does;
/// the error is the reply text without the `ERR ` prefix.
pub fn validate_hostname(hostname: &str) -> Result<(), &'static str> {
    if hostname.len() >= 256 {
        return Err("Hostnames must be less than 256 characters");
    }
    if !hostname
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots");
    }
    Ok(())
}

/// The cluster state of one node (redis `clusterState` plus the node table).
///
/// Invariants: `myself` is always in `nodes`; every `NodeRef` stored anywhere
/// (slot owners, replicas, reports, open slots) names a live entry, because
/// `del_node` scrubs them all, as `clusterDelNode` does.
pub struct Cluster {
    cfg: ClusterConfig,
    rng: ChaCha8Rng,
    /// Lowest level for which `Action::Log` is produced.
    log_level: LogLevel,
    /// `DEBUG DROP-CLUSTER-PACKET-FILTER`: drop received packets of this type.
    drop_packet_filter: Option<u16>,

    myself: NodeRef,
    /// Node table; BTreeMap so iteration (CLUSTER NODES, gossip draws) is
    /// deterministic for a given seed.
    nodes: BTreeMap<NodeRef, Node>,
    /// Name -> ref. A lookup table only (never iterated for a decision), so a
    /// fixed fast hash: SipHash of the 40-byte name was 3% of a simulation.
    by_name: FxHashMap<NodeName, NodeRef>,
    /// The seed of the modelled bucket of each node in redis's nodes dict
    /// (`random_node_ref`), per process as siphash's key is in redis.
    dict_seed: u64,
    /// The last bucket layout, reused while the table holds the same names.
    dict_cache: dict::DictCache,
    next_node_ref: NodeRef,
    links: BTreeMap<LinkId, Link>,
    next_link_id: LinkId,

    /// `server.cluster->slots`: owner of each slot.
    slot_owner: Vec<Option<NodeRef>>,
    /// Entries of `slot_owner` that are None (the coverage check of every
    /// state update asks only this while no node is failed).
    unowned_slots: usize,
    migrating_to: Vec<Option<NodeRef>>,
    importing_from: Vec<Option<NodeRef>>,
    /// Set when any slot is marked migrating or importing, never cleared: until
    /// then no line needs the walk of both tables for open slots (CLUSTER
    /// NODES and nodes.conf render our line again and again).
    slots_ever_opened: bool,
    /// Slots whose owner stopped claiming them (7.0.13+): treated as
    /// unclaimed but still bound, to avoid CLUSTERDOWN.
    owner_not_claiming: SlotSet,

    current_epoch: u64,
    last_vote_epoch: u64,
    state_ok: bool,
    /// Masters with at least one slot, as of the last state update (starts at 1).
    size: usize,
    /// `CLUSTER_TODO_*` bits for `before_sleep`.
    todo: u8,
    /// FORGET blacklist: ID -> expiry in unix seconds.
    blacklist: BTreeMap<NodeName, i64>,

    stats_sent: [u64; crate::wire::msg_type::COUNT as usize],
    stats_received: [u64; crate::wire::msg_type::COUNT as usize],
    /// PFAIL nodes counted by the last cron (bounds the PFAIL gossip tail).
    stats_pfail_nodes: usize,
    links_buffer_limit_exceeded: u64,

    /// Cron calls so far (every 10th pings a random node).
    iteration: u64,
    among_minority_time: Ms,
    first_state_call: Option<Ms>,
    /// Our replication offset, told by the shell (master_repl_offset or the
    /// replica's processed offset).
    my_repl_offset: u64,
    failover: FailoverState,

    actions: VecDeque<Action>,
    /// Slot ownership changes not yet turned into events.
    slot_changes: Vec<SlotChangeGroup>,
    /// Slots deleted from our shard since the last input (shard channels to drop).
    shard_slots_dropped: Vec<u16>,
}

const NODE_TIMEOUT_MULT_REPORT_VALIDITY: i64 = 2;
const FAIL_UNDO_TIME_MULT: i64 = 2;
const BLACKLIST_TTL_SECS: i64 = 60;
const WRITABLE_DELAY: Ms = 2000;
const MIN_REJOIN_DELAY: Ms = 500;
const MAX_REJOIN_DELAY: Ms = 5000;
const PORT_INCR: u32 = 10000;

/// Converts the shell's clock to the core's signed ms.
fn ms(now: Millis) -> Ms {
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// A core time as an event field (before the Unix epoch, impossible but for
/// a wildly wrong clock, reads as 0).
fn wall(t: Ms) -> u64 {
    u64::try_from(t).unwrap_or(0)
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
        let now = ms(now);
        let mut c = Cluster {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed),
            log_level: LogLevel::Debug,
            drop_packet_filter: None,
            myself: 0,
            nodes: BTreeMap::new(),
            by_name: FxHashMap::default(),
            dict_seed: seed ^ 0x9e37_79b9_7f4a_7c15,
            dict_cache: dict::DictCache::default(),
            next_node_ref: 1,
            links: BTreeMap::new(),
            next_link_id: 1,
            slot_owner: vec![None; CLUSTER_SLOTS],
            unowned_slots: CLUSTER_SLOTS,
            migrating_to: vec![None; CLUSTER_SLOTS],
            importing_from: vec![None; CLUSTER_SLOTS],
            slots_ever_opened: false,
            owner_not_claiming: SlotSet::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            state_ok: false,
            size: 1,
            todo: 0,
            blacklist: BTreeMap::new(),
            stats_sent: [0; crate::wire::msg_type::COUNT as usize],
            stats_received: [0; crate::wire::msg_type::COUNT as usize],
            stats_pfail_nodes: 0,
            links_buffer_limit_exceeded: 0,
            iteration: 0,
            among_minority_time: 0,
            first_state_call: None,
            my_repl_offset: 0,
            failover: FailoverState::default(),
            actions: VecDeque::new(),
            slot_changes: Vec::new(),
            shard_slots_dropped: Vec::new(),
        };
        match nodes_conf {
            Some(text) if !text.is_empty() => {
                c.load_config(text, now)?;
                let name = c.me().name;
                c.log(
                    LogLevel::Notice,
                    format!("Node configuration loaded, I'm {name}"),
                );
            }
            _ => {
                let name = c.random_name();
                let me = c.add_node(Node::new(
                    name,
                    node_flags::MYSELF | node_flags::MASTER,
                    now,
                ));
                c.myself = me;
                c.log(
                    LogLevel::Notice,
                    format!("No cluster configuration found, I'm {name}"),
                );
                c.save_config_now(true);
            }
        }
        c.apply_myself_config(None);
        // Slot changes made while loading are not decisions: no events.
        c.slot_changes.clear();
        c.shard_slots_dropped.clear();
        Ok(c)
    }

    // ---- inputs from the shell ----

    /// A peer connected to our bus port. Returns the link's ID.
    pub fn handle_accept(&mut self, now: Millis, peer: SocketAddr, local: SocketAddr) -> LinkId {
        self.accept_link(ms(now), peer, local)
    }

    /// An outbound connection asked for by `Action::Connect` is established.
    /// Messages queued while it was connecting are sent first, then the
    /// MEET/PING that `clusterLinkConnectHandler` sends. An unknown link (the
    /// core dropped it meanwhile) gets an `Action::Close`.
    pub fn handle_connected(&mut self, now: Millis, link: LinkId, local: SocketAddr) {
        self.link_connected(ms(now), link, local);
        self.flush_slot_events();
    }

    /// An outbound connection failed to establish.
    pub fn handle_connect_failed(&mut self, now: Millis, link: LinkId, error: &str) {
        self.link_connect_failed(ms(now), link, error);
    }

    /// A link was closed by the peer or by an I/O error (or a bad frame).
    pub fn handle_link_closed(&mut self, now: Millis, link: LinkId) {
        let _ = now;
        self.link_closed_by_peer(link);
    }

    /// A complete frame arrived on a link and decoded cleanly. Frames that fail
    /// the signature/min-length check close the link in the shell; frames whose
    /// length does not match their type are logged and dropped by the shell.
    /// Packets on unknown links (closed by the core meanwhile) are ignored.
    pub fn handle_packet(&mut self, now: Millis, link: LinkId, msg: Message) {
        self.process_packet(ms(now), link, msg);
        self.flush_slot_events();
    }

    /// A packet of type `t` arrived but could not be decoded: redis counts
    /// every packet it reads before its sanity checks
    /// (`cluster_stats_messages_received`).
    pub fn count_undecodable(&mut self, t: u16) {
        if let Some(c) = self.stats_received.get_mut(usize::from(t)) {
            *c += 1;
        }
    }

    /// The shell found an outbound link's send queue over
    /// `cluster-link-sendbuf-limit`: free it and count it (redis
    /// `clusterNodeCronFreeLinkOnBufferLimitReached`; inbound links are left
    /// alone). Returns whether the link was freed.
    pub fn free_link_over_limit(&mut self, link: LinkId) -> bool {
        let outbound = self
            .links
            .get(&link)
            .is_some_and(|l| !l.inbound && l.node.is_some());
        if !outbound {
            return false;
        }
        self.log(
            LogLevel::Verbose,
            "Freeing cluster link's memory due to link send buffer limit reached".to_string(),
        );
        self.free_link(link, "send buffer limit");
        self.links_buffer_limit_exceeded += 1;
        true
    }

    /// The 100 ms `clusterCron`.
    pub fn tick(&mut self, now: Millis) {
        self.cron(ms(now));
        self.flush_slot_events();
    }

    /// Deferred work of `clusterBeforeSleep`: state update, config save. The
    /// shell calls it after each batch of inputs, before draining actions.
    pub fn before_sleep(&mut self, now: Millis) {
        self.do_before_sleep(ms(now));
        self.flush_slot_events();
    }

    /// Is there deferred work for [`Cluster::before_sleep`] (redis
    /// `clusterDoBeforeSleep` flags)? A shell that batches inputs calls it
    /// once the batch is in.
    pub fn before_sleep_due(&self) -> bool {
        self.todo != 0
    }

    /// Next output, in the order produced.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ---- client port ----

    /// `CLUSTER <subcommand> ...`; `args` excludes the word CLUSTER. Replies
    /// exactly as redis 7.0 does (texts in the reference, section 6), including
    /// the command-table arity errors.
    pub fn command(
        &mut self,
        now: Millis,
        args: &[Bytes],
        keys: &dyn Keyspace,
        resp3: bool,
    ) -> Frame {
        let _ = resp3; // Frame shapes are RESP3-aware; the codec downgrades.
        let reply = self.cluster_command(ms(now), args, keys);
        self.flush_slot_events();
        reply
    }

    /// PUBLISH / SPUBLISH by a local client: `clusterPropagatePublish`.
    /// PUBLISH goes to every node; SPUBLISH to the other nodes of our shard
    /// (our master, or us, and its replicas).
    pub fn publish(&mut self, now: Millis, channel: &[u8], message: &[u8], shard: bool) {
        let _ = now;
        let t = if shard {
            crate::wire::msg_type::PUBLISHSHARD
        } else {
            crate::wire::msg_type::PUBLISH
        };
        let msg = Message {
            header: self.build_header(t),
            body: crate::wire::Body::Publish {
                channel: channel.to_vec(),
                message: message.to_vec(),
            },
        };
        if !shard {
            self.broadcast(&msg);
            return;
        }
        let Some(primary) = self.shard_primary(self.myself) else {
            return;
        };
        let mut shard_nodes = vec![primary];
        shard_nodes.extend(
            self.node(primary)
                .map(|n| n.replicas.clone())
                .unwrap_or_default(),
        );
        let links: Vec<LinkId> = shard_nodes
            .into_iter()
            .filter_map(|r| self.node(r))
            .filter(|n| !n.has(node_flags::MYSELF | node_flags::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send(l, msg.clone());
        }
    }

    /// The master of `node`'s shard: itself if a master, else its master.
    fn shard_primary(&self, node: NodeRef) -> Option<NodeRef> {
        let n = self.node(node)?;
        if n.is_master() {
            Some(node)
        } else {
            n.replica_of
        }
    }

    /// Number of nodes in the table, myself included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// We own `slot` and it is neither migrating nor importing (the fast
    /// path of routing: no node lookup, no copies).
    pub fn slot_is_local(&self, slot: u16) -> bool {
        // Asked once per keyed command: our own 2 KB bitmap stays in cache
        // where the 256 KB owner table missed on most requests (issue 18),
        // and the open-slot tables only matter once a slot was ever opened.
        let i = usize::from(slot);
        let local = self.me().slots.contains(slot)
            && (!self.slots_ever_opened
                || (self.migrating_to.get(i).copied().flatten().is_none()
                    && self.importing_from.get(i).copied().flatten().is_none()));
        debug_assert_eq!(
            local,
            self.slot_owner.get(i).copied().flatten() == Some(self.myself)
                && self.migrating_to.get(i).copied().flatten().is_none()
                && self.importing_from.get(i).copied().flatten().is_none(),
            "slot {slot}: the bitmap and the owner table disagree"
        );
        local
    }

    /// Routing facts for one slot.
    pub fn route(&self, slot: u16) -> SlotRoute {
        let owner_ref = self.owner(slot);
        let owner = owner_ref
            .and_then(|r| self.node(r))
            .map(|n| (n.name, self.preferred_endpoint(n), n.port));
        let my_master = self.me().replica_of;
        let migrating_to = self
            .migrating_to
            .get(usize::from(slot))
            .copied()
            .flatten()
            .and_then(|r| self.node(r))
            .map(|n| (self.preferred_endpoint(n), n.port));
        SlotRoute {
            owner,
            owner_is_me: owner_ref == Some(self.myself),
            owner_is_my_master: owner_ref.is_some()
                && owner_ref == my_master
                && self.me().is_replica(),
            migrating_to,
            importing: self
                .importing_from
                .get(usize::from(slot))
                .copied()
                .flatten()
                .is_some(),
        }
    }

    /// `cluster_state:ok`?
    pub fn state_ok(&self) -> bool {
        self.state_ok
    }

    pub fn myself(&self) -> NodeName {
        self.me().name
    }

    /// Our node is a replica (for INFO's role and routing).
    pub fn is_replica(&self) -> bool {
        self.me().is_replica()
    }

    /// The `cluster_*` lines of CLUSTER INFO (also used by INFO cluster's callers).
    pub fn info_text(&self) -> String {
        self.cluster_info_text()
    }

    /// Applies runtime config changes (CONFIG SET of cluster options).
    pub fn set_config(&mut self, cfg: ClusterConfig) {
        let old = std::mem::replace(&mut self.cfg, cfg);
        self.apply_myself_config(Some(&old));
    }

    /// nodes.conf as it would be saved now.
    pub fn config_text(&self) -> String {
        self.config_file_contents()
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    // ---- additions to the shell API ----

    /// Lowest log level for which `Action::Log` is produced (default: Debug,
    /// i.e. everything; the shell may filter further). Lets the shell skip the
    /// per-packet DEBUG lines when `loglevel` is higher.
    pub fn set_log_level(&mut self, level: LogLevel) {
        self.log_level = level;
    }

    /// Our replication offset (master: master_repl_offset; replica: processed
    /// offset, 0 while loading). Carried in every header and used by SLOTS/SHARDS.
    pub fn set_repl_offset(&mut self, offset: u64) {
        self.my_repl_offset = offset;
    }

    /// While `Some(t)` and `now < t` the shell holds write commands (reads
    /// proceed): set by a master that accepted MFSTART, cleared when the
    /// manual failover ends or times out.
    pub fn client_pause_until(&self) -> Option<Millis> {
        self.failover.pause_until
    }

    /// The replica's replication link to its master is up (full sync done).
    pub fn handle_master_link_up(&mut self, now: Millis) {
        self.master_link_up(ms(now));
        self.flush_slot_events();
    }

    /// The replica's replication link to its master broke.
    pub fn handle_master_link_down(&mut self, now: Millis) {
        self.master_link_down(ms(now));
        self.flush_slot_events();
    }

    /// Data or a ping arrived from the master on the replication link (the
    /// "last interaction" for the data-age rule).
    pub fn handle_master_activity(&mut self, now: Millis) {
        self.master_activity(ms(now));
    }

    /// `DEBUG DROP-CLUSTER-PACKET-FILTER <type|-1>`: `None` drops nothing.
    pub fn set_drop_packet_filter(&mut self, msg_type: Option<u16>) {
        self.drop_packet_filter = msg_type;
    }

    /// `DEBUG CLUSTERLINK KILL to|from|all <node-id>`: frees the chosen links
    /// with that node (the core reconnects as after any broken link). The
    /// error is redis's reply text, without `ERR `.
    pub fn debug_kill_link(&mut self, direction: &[u8], node: &[u8]) -> Result<(), String> {
        let Some(r) = self.lookup_arg(node) else {
            return Err(format!("Unknown node {}", String::from_utf8_lossy(node)));
        };
        let Some(n) = self.node(r) else {
            return Err(format!("Unknown node {}", String::from_utf8_lossy(node)));
        };
        let (to, from) = (n.link, n.inbound_link);
        let kill: Vec<LinkId> = match &direction.to_ascii_lowercase()[..] {
            b"to" => to.into_iter().collect(),
            b"from" => from.into_iter().collect(),
            b"all" => to.into_iter().chain(from).collect(),
            _ => return Err("Unknown direction".into()),
        };
        for id in kill {
            self.free_link(id, "debug clusterlink kill");
        }
        Ok(())
    }

    /// Whom we replicate from, if we are a replica with a known master that
    /// has an address: its ID, IP and client port. The shell re-checks it after
    /// each batch of inputs and (re)points replication when it changes (redis
    /// calls `replicationSetMaster` at these points).
    pub fn replication_master(&self) -> Option<(NodeName, String, u16)> {
        let me = self.me();
        if !me.is_replica() {
            return None;
        }
        let m = self.node(me.replica_of?)?;
        if m.has(node_flags::NOADDR) {
            return None;
        }
        Some((m.name, m.ip.clone(), m.port))
    }

    /// The node at this IP and client port, if known (to name a replica that
    /// connected for replication by its node ID).
    pub fn node_by_addr(&self, ip: &str, port: u16) -> Option<NodeName> {
        self.nodes
            .values()
            .find(|n| n.ip == ip && n.port == port)
            .map(|n| n.name)
    }

    /// Our currentEpoch.
    pub fn current_epoch(&self) -> u64 {
        self.current_epoch
    }

    /// Our configEpoch (our master's if we are a replica with a known master,
    /// as CLUSTER INFO's `cluster_my_epoch`).
    pub fn my_epoch(&self) -> u64 {
        let me = self.me();
        match me.replica_of.and_then(|m| self.node(m)) {
            Some(m) if me.is_replica() => m.config_epoch,
            _ => me.config_epoch,
        }
    }

    /// `verifyClusterConfigWithData`, for the shell to call once the dataset
    /// is loaded at startup: keys in a slot we neither own nor import make us
    /// take the slot if it is unassigned, else mark it importing (both logged).
    /// Replicas skip the check: their data follows their master. Returns
    /// whether the config changed (it is then saved at once).
    pub fn verify_config_with_data(&mut self, keys: &dyn Keyspace) -> bool {
        if self.me().is_replica() {
            return false;
        }
        let mut changed = false;
        for j in slots::all_slots() {
            if keys.count_keys_in_slot(j) == 0 {
                continue;
            }
            let importing = self
                .importing_from
                .get(usize::from(j))
                .copied()
                .flatten()
                .is_some();
            if self.owner(j) == Some(self.myself) || importing {
                continue;
            }
            changed = true;
            match self.owner(j) {
                None => {
                    self.log(
                        LogLevel::Warning,
                        format!(
                            "I have keys for unassigned slot {j}. Taking responsibility for it."
                        ),
                    );
                    self.add_slot(self.myself, j, crate::events::SlotChangeReason::AddSlots);
                }
                Some(owner) => {
                    self.log(
                        LogLevel::Warning,
                        format!("I have keys for slot {j}, but the slot is assigned to another node. Setting it to importing state."),
                    );
                    if let Some(e) = self.importing_from.get_mut(usize::from(j)) {
                        *e = Some(owner);
                        self.slots_ever_opened = true;
                    }
                }
            }
        }
        if changed {
            self.save_config_now(true);
        }
        self.flush_slot_events();
        changed
    }

    /// The CLUSTER NODES text (for snapshots and tests).
    pub fn nodes_text(&self) -> String {
        self.nodes_description(0)
    }

    // ---- internal helpers shared by the submodules ----

    fn me(&self) -> &Node {
        // `myself` is never removed from the table (del_node refuses it).
        self.nodes
            .get(&self.myself)
            .expect("myself is always in the node table")
    }

    fn me_mut(&mut self) -> &mut Node {
        self.nodes
            .get_mut(&self.myself)
            .expect("myself is always in the node table")
    }

    fn node(&self, r: NodeRef) -> Option<&Node> {
        self.nodes.get(&r)
    }

    fn node_mut(&mut self, r: NodeRef) -> Option<&mut Node> {
        self.nodes.get_mut(&r)
    }

    /// redis `clusterLookupNode`: only well-formed IDs are ever found.
    fn lookup(&self, name: &NodeName) -> Option<NodeRef> {
        if !name.is_valid() {
            return None;
        }
        self.by_name.get(name).copied()
    }

    /// Lookup from a user argument (any length).
    fn lookup_arg(&self, arg: &[u8]) -> Option<NodeRef> {
        let name = NodeName(arg.try_into().ok()?);
        self.lookup(&name)
    }

    fn name_of(&self, r: NodeRef) -> NodeName {
        self.node(r).map(|n| n.name).unwrap_or(NodeName::NULL)
    }

    fn id_of(&self, r: NodeRef) -> String {
        self.name_of(r).to_string()
    }

    fn is_master_ref(&self, r: NodeRef) -> bool {
        self.node(r).is_some_and(|n| n.is_master())
    }

    /// Owner of a slot (None for out-of-range slots too).
    fn owner(&self, slot: u16) -> Option<NodeRef> {
        self.slot_owner.get(usize::from(slot)).copied().flatten()
    }

    /// redis `isSlotUnclaimed`.
    fn slot_unclaimed(&self, slot: u16) -> bool {
        self.owner(slot).is_none() || self.owner_not_claiming.contains(slot)
    }

    fn add_node(&mut self, node: Node) -> NodeRef {
        let r = self.next_node_ref;
        self.next_node_ref += 1;
        self.by_name.insert(node.name, r);
        self.nodes.insert(r, node);
        self.dict_cache.forget();
        r
    }

    /// 40 random lowercase hex characters (redis `getRandomHexChars`).
    fn random_name(&mut self) -> NodeName {
        use rand::RngExt;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut n = [0u8; crate::wire::NAMELEN];
        for b in n.iter_mut() {
            *b = HEX[self.rng.random_range(0..16usize)];
        }
        NodeName(n)
    }

    fn log_enabled(&self, level: LogLevel) -> bool {
        level >= self.log_level
    }

    fn log(&mut self, level: LogLevel, text: String) {
        if self.log_enabled(level) {
            self.actions.push_back(Action::Log { level, text });
        }
    }

    fn event(&mut self, kind: EventKind) {
        self.actions.push_back(Action::Event(Event::from(kind)));
    }

    fn todo(&mut self, flags: u8) {
        self.todo |= flags;
    }

    fn node_timeout(&self) -> Ms {
        i64::try_from(self.cfg.node_timeout).unwrap_or(i64::MAX / 4)
    }

    /// Applies the parts of the config that live on `myself` (announced ports,
    /// announce-ip, hostname, NOFAILOVER), as `clusterUpdateMyself*` do.
    fn apply_myself_config(&mut self, old: Option<&ClusterConfig>) {
        let port = self.cfg.announce_port;
        let cport = self.cfg.announce_bus_port;
        let hostname = self
            .cfg
            .announce_hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_default();
        let new_ip = self.cfg.announce_ip.clone().filter(|ip| !ip.is_empty());
        let old_ip = old
            .and_then(|o| o.announce_ip.clone())
            .filter(|ip| !ip.is_empty());
        let nofailover = if self.cfg.replica_no_failover {
            node_flags::NOFAILOVER
        } else {
            0
        };
        let me = self.me_mut();
        me.port = port;
        me.cport = cport;
        me.pport = 0;
        me.hostname = hostname;
        // Like redis's static prev_ip: at startup (old = None) an unset
        // announce-ip keeps the IP loaded from nodes.conf.
        if new_ip != old_ip {
            match &new_ip {
                Some(ip) => me.ip = ip.chars().take(crate::wire::IPLEN - 1).collect(),
                None => me.ip.clear(), // force autodetection
            }
        }
        let old_flags = me.flags;
        me.flags = (me.flags & !node_flags::NOFAILOVER) | nofailover;
        if me.flags != old_flags {
            self.todo(cron::TODO_SAVE_CONFIG | cron::TODO_UPDATE_STATE);
        }
    }
}
