//! Master -> replica replication: hearsay's own protocol between hearsay
//! nodes over the client port ([`protocol`]), the full-sync snapshot
//! ([`snapshot`]), and the replication state of one node ([`Replication`]).
//!
//! This module is sans-IO like the cluster core: [`Replication`] is fed what
//! happened (a write was applied, a replica acked, the link to our master
//! reached a stage) with the time passed in, and answers with the bytes to
//! send and what changed. The shell (`server::replication`) owns the sockets
//! and tasks.
//!
//! Roles follow the cluster core: the shell reads
//! `Cluster::replication_master()` after every input and hands it to
//! [`Replication::set_master`]. A master counts `master_repl_offset` by the
//! stream's bytes; a replica counts the bytes it has applied (redis
//! `master->reploff`), and continues from there when promoted.

pub mod protocol;
pub mod snapshot;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::cluster::Millis;
use crate::resp::Frame;
use crate::wire::NodeName;

/// Identifies one replica connection on the master.
pub type ReplicaId = u64;

/// A replica connection's stage, as INFO's `slaveN:state=` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    /// The snapshot is on its way (redis `send_bulk`).
    SendBulk,
    /// The replica acked the snapshot and follows the stream.
    Online,
}

impl ReplicaState {
    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// One replica, as its master sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaEntry {
    /// Its cluster node ID.
    pub node: String,
    /// The address it connected from, and the client port it listens on.
    pub ip: String,
    pub port: u16,
    pub state: ReplicaState,
    /// The offset its snapshot stands for.
    pub sync_offset: u64,
    /// The highest offset it acknowledged (redis `repl_ack_off`).
    pub ack_offset: u64,
    /// When its last ACK arrived (redis `repl_ack_time`).
    pub ack_time: Millis,
}

/// The replica's link to its master (redis `repl_state`, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; the next attempt is due.
    Connect,
    /// TCP connect and sync request under way.
    Connecting,
    /// Receiving the snapshot.
    Transfer,
    /// Snapshot applied; following the stream.
    Connected,
}

impl LinkState {
    /// The name ROLE prints.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// What a replica knows about its master and the link to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub master: NodeName,
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    /// Tells the current link attempt apart from older ones still winding down.
    pub generation: u64,
    /// The offset applied so far (redis `master->reploff`, or the cached
    /// master's); `None` while none exists: never synced, or a snapshot load
    /// is under way.
    pub processed: Option<u64>,
    /// Last data or ping from the master (redis `master->lastinteraction`).
    pub last_io: Millis,
    /// When the link last went down (`None` if it never was up).
    pub down_since: Option<Millis>,
}

/// What [`Replication::set_master`] changed, for the shell to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// Nothing.
    None,
    /// We were a master and now replicate `master`: drop our own replicas and
    /// start a link with `generation`.
    BecameReplica { generation: u64 },
    /// We replicated `old` and now replicate someone else (or the same node
    /// at a new address): restart the link with `generation`. `was_up` says
    /// whether the old link was up (so the core must hear it went down).
    ChangedMaster {
        old: NodeName,
        was_up: bool,
        generation: u64,
    },
    /// We replicated `old` and are a master now, continuing from our offset.
    BecameMaster { old: NodeName, was_up: bool },
}

/// The replication state of one node.
#[derive(Debug)]
pub struct Replication {
    /// Our replication ID (a replica takes its master's after a full sync).
    replid: String,
    /// The ID we had before the last promotion (redis `replid2`).
    replid2: String,
    /// Where `replid2`'s history ends (redis `second_replid_offset`).
    second_offset: Option<u64>,
    /// master_repl_offset. A replica keeps it equal to its processed offset,
    /// so that a promotion continues the same history.
    offset: u64,
    replicas: BTreeMap<ReplicaId, ReplicaEntry>,
    next_replica: ReplicaId,
    upstream: Option<Upstream>,
    next_generation: u64,
}

impl Replication {
    /// A master with no replicas, at offset 0. `replid` is 40 hex characters
    /// drawn by the shell (this module owns no RNG).
    pub fn new(replid: String) -> Replication {
        Replication {
            replid,
            replid2: "0".repeat(40),
            second_offset: None,
            offset: 0,
            replicas: BTreeMap::new(),
            next_replica: 1,
            upstream: None,
            next_generation: 1,
        }
    }

    pub fn replid(&self) -> &str {
        &self.replid
    }

    /// The ID of the history before our last promotion (40 zeros if none).
    pub fn replid2(&self) -> &str {
        &self.replid2
    }

    /// master_repl_offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn is_replica(&self) -> bool {
        self.upstream.is_some()
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_ref()
    }

    pub fn replicas(&self) -> impl Iterator<Item = (ReplicaId, &ReplicaEntry)> {
        self.replicas.iter().map(|(&id, r)| (id, r))
    }

    pub fn replica(&self, id: ReplicaId) -> Option<&ReplicaEntry> {
        self.replicas.get(&id)
    }

    /// The offset the cluster core should announce (`Cluster::set_repl_offset`):
    /// a master's master_repl_offset; a replica's processed offset, 0 while it
    /// has none (redis `replicationGetSlaveOffset`).
    pub fn core_offset(&self) -> u64 {
        match &self.upstream {
            Some(u) => u.processed.unwrap_or(0),
            None => self.offset,
        }
    }

    // ---- roles ----

    /// Points replication at `target` (the core's `replication_master()`).
    /// `new_replid` is used only when we become a master (redis
    /// `shiftReplicationId`: a fresh ID, the old one kept as `replid2`).
    pub fn set_master(
        &mut self,
        target: Option<(NodeName, String, u16)>,
        new_replid: impl FnOnce() -> String,
        now: Millis,
    ) -> RoleChange {
        let current = self
            .upstream
            .as_ref()
            .map(|u| (u.master, u.host.clone(), u.port));
        if current == target {
            return RoleChange::None;
        }
        match (self.upstream.take(), target) {
            (None, None) => RoleChange::None,
            (None, Some((master, host, port))) => {
                // redis `replicationCacheMasterUsingMyself`: what we hold as a
                // master is our starting point as a replica.
                let generation = self.new_upstream(master, host, port, Some(self.offset), now);
                self.replicas.clear();
                RoleChange::BecameReplica { generation }
            }
            (Some(old), Some((master, host, port))) => {
                let was_up = old.state == LinkState::Connected;
                let generation = self.new_upstream(master, host, port, old.processed, now);
                RoleChange::ChangedMaster {
                    old: old.master,
                    was_up,
                    generation,
                }
            }
            (Some(old), None) => {
                if let Some(p) = old.processed {
                    self.offset = p;
                }
                self.replid2 = std::mem::replace(&mut self.replid, new_replid());
                self.second_offset = Some(self.offset + 1);
                RoleChange::BecameMaster {
                    old: old.master,
                    was_up: old.state == LinkState::Connected,
                }
            }
        }
    }

    fn new_upstream(
        &mut self,
        master: NodeName,
        host: String,
        port: u16,
        processed: Option<u64>,
        now: Millis,
    ) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.upstream = Some(Upstream {
            master,
            host,
            port,
            state: LinkState::Connect,
            generation,
            processed,
            last_io: now,
            down_since: None,
        });
        generation
    }

    // ---- replica side: the link's stages ----

    /// The upstream, if `generation` is still the current link.
    fn current(&mut self, generation: u64) -> Option<&mut Upstream> {
        self.upstream
            .as_mut()
            .filter(|u| u.generation == generation)
    }

    /// Is `generation` still the link we want?
    pub fn is_current(&self, generation: u64) -> bool {
        self.upstream
            .as_ref()
            .is_some_and(|u| u.generation == generation)
    }

    /// A connect attempt starts. Returns false if the link is stale.
    pub fn link_connecting(&mut self, generation: u64) -> bool {
        match self.current(generation) {
            Some(u) => {
                u.state = LinkState::Connecting;
                true
            }
            None => false,
        }
    }

    /// The master accepted and sends a snapshot: whatever we held is about to
    /// be replaced, so there is no processed offset until it is loaded.
    pub fn link_transfer(&mut self, generation: u64, now: Millis) -> bool {
        match self.current(generation) {
            Some(u) => {
                u.state = LinkState::Transfer;
                u.processed = None;
                u.last_io = now;
                true
            }
            None => false,
        }
    }

    /// The snapshot is loaded: we stand at the master's `offset` and take its
    /// replication ID (redis does the same after a full sync).
    pub fn full_sync_done(
        &mut self,
        generation: u64,
        master_replid: &str,
        offset: u64,
        now: Millis,
    ) -> bool {
        let Some(u) = self.current(generation) else {
            return false;
        };
        u.state = LinkState::Connected;
        u.processed = Some(offset);
        u.last_io = now;
        u.down_since = None;
        self.offset = offset;
        self.replid = master_replid.to_string();
        self.replid2 = "0".repeat(40);
        self.second_offset = None;
        true
    }

    /// `len` stream bytes from the master were applied.
    pub fn applied(&mut self, generation: u64, len: usize) -> bool {
        let Some(u) = self.current(generation) else {
            return false;
        };
        let p = u.processed.unwrap_or(0) + len as u64;
        u.processed = Some(p);
        self.offset = p;
        true
    }

    /// Data or a ping arrived from the master.
    pub fn activity(&mut self, generation: u64, now: Millis) -> bool {
        match self.current(generation) {
            Some(u) => {
                u.last_io = now;
                true
            }
            None => false,
        }
    }

    /// The link broke (or the attempt failed). `Some(was_up)` if it is the
    /// current link; `None` if it is stale.
    pub fn link_lost(&mut self, generation: u64, now: Millis) -> Option<bool> {
        let u = self.current(generation)?;
        let was_up = u.state == LinkState::Connected;
        if was_up {
            u.down_since = Some(now);
        }
        if u.state == LinkState::Transfer {
            // A half-received snapshot was never applied: the data we hold is
            // what we had before the attempt, but we no longer know its offset.
            u.processed = None;
        }
        u.state = LinkState::Connect;
        Some(was_up)
    }

    // ---- master side ----

    /// Appends an applied write to the stream. Returns its bytes for the
    /// replicas, or `None` when there are none (or we are a replica, whose
    /// applied writes come from its master's stream and go nowhere).
    pub fn feed(&mut self, args: &[Bytes]) -> Option<Bytes> {
        if self.upstream.is_some() {
            return None;
        }
        if self.replicas.is_empty() {
            self.offset += protocol::encoded_len(args) as u64;
            return None;
        }
        let mut out = Vec::with_capacity(protocol::encoded_len(args));
        protocol::encode_command(args, &mut out);
        self.offset += out.len() as u64;
        Some(Bytes::from(out))
    }

    /// The periodic keep-alive, only while replicas are connected (redis
    /// `replicationCron`).
    pub fn feed_ping(&mut self) -> Option<Bytes> {
        if self.upstream.is_some() || self.replicas.is_empty() {
            return None;
        }
        self.offset += protocol::PING.len() as u64;
        Some(Bytes::from_static(protocol::PING))
    }

    /// A replica asked for a sync: it gets a snapshot at the current offset.
    pub fn add_replica(&mut self, node: String, ip: String, port: u16, now: Millis) -> ReplicaId {
        let id = self.next_replica;
        self.next_replica += 1;
        self.replicas.insert(
            id,
            ReplicaEntry {
                node,
                ip,
                port,
                state: ReplicaState::SendBulk,
                sync_offset: self.offset,
                ack_offset: 0,
                ack_time: now,
            },
        );
        id
    }

    pub fn remove_replica(&mut self, id: ReplicaId) -> Option<ReplicaEntry> {
        self.replicas.remove(&id)
    }

    /// `REPLCONF ACK <offset>` from a replica. Returns the offset if this ack
    /// completed its sync (it now has the snapshot and follows the stream).
    pub fn handle_ack(&mut self, id: ReplicaId, offset: u64, now: Millis) -> Option<u64> {
        let r = self.replicas.get_mut(&id)?;
        r.ack_offset = r.ack_offset.max(offset);
        r.ack_time = now;
        if r.state == ReplicaState::SendBulk && offset >= r.sync_offset {
            r.state = ReplicaState::Online;
            return Some(offset);
        }
        None
    }

    /// Replicas that acknowledged `offset` (redis `replicationCountAcksByOffset`).
    pub fn count_acks(&self, offset: u64) -> usize {
        self.replicas
            .values()
            .filter(|r| r.state == ReplicaState::Online && r.ack_offset >= offset)
            .count()
    }

    // ---- INFO and ROLE ----

    /// The body of INFO's `# Replication` section, redis 7.0's fields in its order.
    pub fn info_text(&self, now: Millis) -> String {
        let secs = |since: Millis| (now.saturating_sub(since) / 1000) as i64;
        let mut s = String::new();
        let role = if self.upstream.is_some() {
            "slave"
        } else {
            "master"
        };
        s.push_str(&format!("role:{role}\r\n"));
        if let Some(u) = &self.upstream {
            let up = u.state == LinkState::Connected;
            let processed = u.processed.unwrap_or(0);
            s.push_str(&format!(
                "master_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{processed}\r\nslave_repl_offset:{processed}\r\n",
                u.host,
                u.port,
                if up { "up" } else { "down" },
                if up { secs(u.last_io) } else { -1 },
                u8::from(u.state == LinkState::Transfer),
            ));
            if !up {
                s.push_str(&format!(
                    "master_link_down_since_seconds:{}\r\n",
                    u.down_since.map_or(-1, secs)
                ));
            }
            s.push_str("slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n");
        }
        s.push_str(&format!("connected_slaves:{}\r\n", self.replicas.len()));
        for (i, r) in self.replicas.values().enumerate() {
            s.push_str(&format!(
                "slave{i}:ip={},port={},state={},offset={},lag={}\r\n",
                r.ip,
                r.port,
                r.state.name(),
                r.ack_offset,
                secs(r.ack_time)
            ));
        }
        s.push_str(&format!(
            "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\n",
            self.replid,
            self.replid2,
            self.offset,
            self.second_offset.map_or(-1, |o| o as i64),
        ));
        // There is no backlog (every resync is a full one): say so honestly.
        s.push_str("repl_backlog_active:0\r\nrepl_backlog_size:0\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n");
        s
    }

    /// The ROLE reply (redis `roleCommand`).
    pub fn role_frame(&self) -> Frame {
        match &self.upstream {
            None => Frame::Array(vec![
                Frame::bulk_str("master"),
                Frame::Integer(self.offset as i64),
                Frame::Array(
                    self.replicas
                        .values()
                        .filter(|r| r.state == ReplicaState::Online)
                        .map(|r| {
                            Frame::Array(vec![
                                Frame::bulk_str(&r.ip),
                                Frame::bulk_str(&r.port.to_string()),
                                Frame::bulk_str(&r.ack_offset.to_string()),
                            ])
                        })
                        .collect(),
                ),
            ]),
            Some(u) => Frame::Array(vec![
                Frame::bulk_str("slave"),
                Frame::bulk_str(&u.host),
                Frame::Integer(i64::from(u.port)),
                Frame::bulk_str(u.state.role_name()),
                Frame::Integer(match (u.state, u.processed) {
                    (LinkState::Connected, Some(p)) => p as i64,
                    _ => -1,
                }),
            ]),
        }
    }
}
