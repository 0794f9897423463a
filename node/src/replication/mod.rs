//! Master -> replica replication, redis 7.0's protocol: PSYNC with
//! replication IDs and a backlog, full syncs as an RDB payload followed by
//! the command stream, `REPLCONF ACK` for offsets, WAIT and lag
//! ([`protocol`] has the wire format, [`backlog`] the history kept).
//!
//! This module is sans-IO like the cluster core: [`Replication`] is fed what
//! happened (a write was applied, a replica asked to sync or acked, the link
//! to our master reached a stage, a second passed) with the time passed in,
//! and answers with the bytes to send and what it decided. The shell
//! (`server::replication`) owns the sockets, tasks and snapshots, and a
//! simulator can drive this type in virtual time.
//!
//! Roles follow the cluster core: the shell reads
//! `Cluster::replication_master()` after every input and hands it to
//! [`Replication::set_master`]. Offsets count stream bytes as redis's do: a
//! master's `master_repl_offset` moves only while it has a backlog (from
//! its first replica on), a replica's follows what it applied, and carries
//! on when it is promoted; `replid2` then lets its former siblings continue.

pub mod backlog;
pub mod protocol;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::cluster::Millis;
use crate::rdb::file::ReplInfo;
use crate::resp::Frame;
use crate::wire::NodeName;
use backlog::Backlog;

/// Identifies one replica connection on the master.
pub type ReplicaId = u64;

/// The replication ID of "no history" (redis `clearReplicationId2`).
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// The options that shape replication (redis's names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplConfig {
    pub backlog_size: u64,
    /// Seconds without replicas before a master frees its backlog (0 never).
    pub backlog_ttl_s: u64,
    pub ping_period_s: u64,
    pub timeout_s: u64,
    pub min_replicas_to_write: u64,
    pub min_replicas_max_lag_s: u64,
    /// `repl-diskless-sync`: full syncs wait `diskless_sync_delay_s` for more
    /// replicas to share one snapshot (unless `diskless_sync_max_replicas`
    /// are already waiting).
    pub diskless_sync: bool,
    pub diskless_sync_delay_s: u64,
    pub diskless_sync_max_replicas: u64,
}

impl Default for ReplConfig {
    fn default() -> Self {
        ReplConfig {
            backlog_size: 1024 * 1024,
            backlog_ttl_s: 3600,
            ping_period_s: 10,
            timeout_s: 60,
            min_replicas_to_write: 0,
            min_replicas_max_lag_s: 10,
            diskless_sync: true,
            diskless_sync_delay_s: 5,
            diskless_sync_max_replicas: 0,
        }
    }
}

/// A replica connection's stage, as INFO's `slaveN:state=` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    /// Waiting for the snapshot to be taken (redis `wait_bgsave`).
    WaitBgsave,
    /// The snapshot is on its way (redis `send_bulk`).
    SendBulk,
    /// The snapshot was sent (or it continued partially): it follows the
    /// stream.
    Online,
}

impl ReplicaState {
    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// One replica, as its master sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaEntry {
    /// The address it announced (`REPLCONF ip-address`) or connected from,
    /// and the client port it listens on (`REPLCONF listening-port`).
    pub ip: String,
    pub port: u16,
    pub state: ReplicaState,
    /// Asked with the old SYNC (no `+FULLRESYNC` line, no ACKs).
    pub pre_psync: bool,
    /// When it registered (for the diskless-sync delay).
    pub since: Millis,
    /// The offset its snapshot stands for (redis `psync_initial_offset`).
    pub sync_offset: u64,
    /// The highest offset it acknowledged (redis `repl_ack_off`).
    pub ack_offset: u64,
    /// When its last ACK arrived (redis `repl_ack_time`).
    pub ack_time: Millis,
    /// The connection as CLIENT KILL sees it (set by the shell).
    pub conn: ReplicaConn,
}

/// A replica's connection on its master, as a client: redis keeps it in
/// its client list (flag S, type replica).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaConn {
    pub client_id: u64,
    /// Peer and local `ip:port` of the socket.
    pub addr: String,
    pub laddr: String,
}

/// The replica's link to its master (redis `repl_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; the next attempt is due.
    Connect,
    /// TCP connect under way.
    Connecting,
    /// PING, AUTH, REPLCONF, PSYNC and their replies.
    Handshake,
    /// Receiving the snapshot.
    Transfer,
    /// Following the stream.
    Connected,
}

impl LinkState {
    /// The name ROLE prints.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
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
    /// master's); `None` while there is none to continue from: a full sync
    /// was announced, so the data we hold belongs to no offset.
    pub processed: Option<u64>,
    /// Stream bytes received (`slave_read_repl_offset`).
    pub read_offset: u64,
    /// Last data or ping from the master (redis `master->lastinteraction`).
    pub last_io: Millis,
    /// When the link last went down (`None` if it never was up).
    pub down_since: Option<Millis>,
    /// A full sync's `+FULLRESYNC` header, until its snapshot is loaded.
    pub pending_full: Option<(String, u64)>,
    /// Snapshot bytes expected (`None`: end-marked) and received so far.
    pub transfer: (Option<u64>, u64),
    /// The snapshot is in and being parsed (redis `server.loading` during a
    /// disk-based full sync: INFO `loading:1`, `-LOADING` replies).
    pub loading: bool,
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

/// A replica's request (`PSYNC replid offset` or `SYNC`) and what it
/// announced with `REPLCONF` before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// `None` for the old SYNC.
    pub psync: Option<(String, i64)>,
    pub ip: String,
    pub port: u16,
    pub capa_eof: bool,
    pub capa_psync2: bool,
}

/// The answer to a [`SyncRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncDecision {
    /// Refused with this error reply (the connection stays a client).
    Refuse(String),
    /// `+CONTINUE`: `head` is the reply line, `backlog` what follows it; the
    /// replica is online.
    Continue {
        id: ReplicaId,
        head: Vec<u8>,
        backlog: Vec<Bytes>,
    },
    /// A full sync: the replica waits for a snapshot
    /// ([`Replication::due_full_syncs`], [`Replication::snapshot_taken`]).
    Full { id: ReplicaId },
}

/// What the periodic cron decided (redis `replicationCron`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CronOut {
    /// Stream bytes for the replicas (a PING), already in the backlog.
    pub stream: Option<Bytes>,
    /// Replicas to disconnect: no ACK for `repl-timeout`.
    pub timed_out: Vec<ReplicaId>,
    /// Replicas waiting for a snapshot, to send a keep-alive newline.
    pub presync: Vec<ReplicaId>,
    /// The backlog was freed after `repl-backlog-ttl` without replicas.
    pub backlog_freed: bool,
    /// The link to our master saw nothing for `repl-timeout`.
    pub master_timed_out: bool,
    /// Log lines, in order.
    pub log: Vec<String>,
}

/// The replication state of one node.
#[derive(Debug)]
pub struct Replication {
    config: ReplConfig,
    /// Our replication ID (a replica takes its master's).
    replid: String,
    /// The ID of the history before the last change (redis `replid2`).
    replid2: String,
    /// Where `replid2`'s history ends, exclusive (redis `second_replid_offset`).
    second_offset: Option<u64>,
    /// master_repl_offset.
    offset: u64,
    backlog: Option<Backlog>,
    /// The db the stream last SELECTed (redis `slaveseldb`; `None` = -1):
    /// after a full sync the next write is preceded by `SELECT 0`.
    seldb_selected: bool,
    replicas: BTreeMap<ReplicaId, ReplicaEntry>,
    next_replica: ReplicaId,
    /// Since when a master has had no replicas (backlog TTL).
    no_replicas_since: Millis,
    last_ping: Millis,
    /// Online replicas within `min-replicas-max-lag` (redis `repl_good_slaves_count`).
    good_replicas: u64,
    upstream: Option<Upstream>,
    next_generation: u64,
    /// CLIENT KILL matched the link to our master: the shell drops it after
    /// the command (redis frees the master client; replicationCron reconnects).
    master_link_kill: bool,
    /// CLIENT KILL matched these replicas' links.
    replica_kills: Vec<ReplicaId>,
    /// A standalone node's master (REPLICAOF, or the `replicaof` directive);
    /// in cluster mode the cluster core names the master instead.
    standalone_master: Option<(String, u16)>,
}

impl Replication {
    /// A master with no replicas and no backlog, at offset 0. `replid` is
    /// 40 hex characters drawn by the shell (this module owns no RNG).
    pub fn new(replid: String, config: ReplConfig, now: Millis) -> Replication {
        Replication {
            config,
            replid,
            replid2: NO_REPLID.to_string(),
            second_offset: None,
            offset: 0,
            backlog: None,
            seldb_selected: false,
            replicas: BTreeMap::new(),
            next_replica: 1,
            no_replicas_since: now,
            last_ping: now,
            good_replicas: 0,
            upstream: None,
            next_generation: 1,
            master_link_kill: false,
            replica_kills: Vec::new(),
            standalone_master: None,
        }
    }

    pub fn config(&self) -> &ReplConfig {
        &self.config
    }

    /// New options (CONFIG SET): the backlog follows `repl-backlog-size`.
    pub fn set_config(&mut self, config: ReplConfig) {
        if let Some(b) = self.backlog.as_mut() {
            b.resize(config.backlog_size);
        }
        self.config = config;
    }

    pub fn replid(&self) -> &str {
        &self.replid
    }

    /// The ID of the history before the last change (40 zeros if none).
    pub fn replid2(&self) -> &str {
        &self.replid2
    }

    /// master_repl_offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn backlog(&self) -> Option<&Backlog> {
        self.backlog.as_ref()
    }

    pub fn is_replica(&self) -> bool {
        self.upstream.is_some()
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_ref()
    }

    /// The address of the link to our master as CLIENT KILL sees it (redis's
    /// master client, flag M, addr = the master's): only while connected.
    pub fn master_client_addr(&self) -> Option<String> {
        let u = self.upstream.as_ref()?;
        (u.state == LinkState::Connected).then(|| format!("{}:{}", u.host, u.port))
    }

    /// Asks the shell to drop the link to our master (CLIENT KILL).
    pub fn request_master_link_kill(&mut self) {
        self.master_link_kill = true;
    }

    /// Whether a CLIENT KILL asked to drop the master link (and forget it).
    pub fn take_master_link_kill(&mut self) -> bool {
        std::mem::take(&mut self.master_link_kill)
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

    /// redis `changeReplicationId` + `clearReplicationId2`.
    fn new_history(&mut self, replid: String) {
        self.replid = replid;
        self.replid2 = NO_REPLID.to_string();
        self.second_offset = None;
    }

    /// redis `shiftReplicationId`: the current history becomes `replid2`,
    /// valid up to the current offset.
    fn shift_replid(&mut self, replid: String) {
        self.replid2 = std::mem::replace(&mut self.replid, replid);
        self.second_offset = Some(self.offset + 1);
    }

    fn create_backlog(&mut self) {
        self.backlog = Some(Backlog::new(self.config.backlog_size, self.offset));
    }

    // ---- persistence ----

    /// What an RDB saved now should record (redis `rdbPopulateSaveInfo`):
    /// a master with a backlog, or a replica that has (or had) a master link
    /// with a known offset.
    pub fn save_info(&self) -> Option<ReplInfo> {
        let offset = match &self.upstream {
            None if self.backlog.is_some() => self.offset,
            None => return None,
            Some(u) => u.processed?,
        };
        Some(ReplInfo {
            stream_db: 0,
            replid: self.replid.clone(),
            offset,
        })
    }

    /// Startup, after loading an RDB that carried `info` (redis
    /// `loadDataFromDisk`): a node that is a replica continues from that
    /// history (the cached master is built from it when it turns replica);
    /// a master keeps it as `replid2` so its former replicas can continue.
    pub fn restore(&mut self, info: &ReplInfo, is_replica: bool) {
        if is_replica {
            self.replid = info.replid.clone();
            self.offset = info.offset;
        } else {
            self.replid2 = info.replid.clone();
            self.second_offset = Some(info.offset + 1);
            self.offset += info.offset;
            self.create_backlog();
        }
    }

    // ---- roles ----

    /// Points replication at `target` (the core's `replication_master()`).
    /// `new_replid` is used only when we become a master (a fresh ID, the
    /// old one kept as `replid2`).
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
                // redis `replicationCacheMasterUsingMyself`: what we hold as
                // a master is where we continue from as a replica. The
                // backlog stays (it is our history).
                let generation = self.new_upstream(master, host, port, Some(self.offset), now);
                self.replicas.clear();
                self.good_replicas = 0;
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
                self.shift_replid(new_replid());
                if self.backlog.is_none() {
                    self.create_backlog();
                }
                // The new history starts with a SELECT (redis sets
                // slaveseldb to -1 on promotion).
                self.seldb_selected = false;
                self.no_replicas_since = now;
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
            read_offset: processed.unwrap_or(0),
            last_io: now,
            down_since: None,
            pending_full: None,
            transfer: (None, 0),
            loading: false,
        });
        generation
    }

    // ---- replica side: the link's stages ----

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

    /// A link attempt moves to `state` (Connecting, Handshake). False if stale.
    pub fn link_stage(&mut self, generation: u64, state: LinkState, now: Millis) -> bool {
        match self.current(generation) {
            Some(u) => {
                u.state = state;
                u.last_io = now;
                true
            }
            None => false,
        }
    }

    /// The PSYNC to send (redis `slaveTryPartialResynchronization`): our
    /// history and the next offset we need, or `? -1` when we hold nothing
    /// we could continue from.
    pub fn psync_args(&self, generation: u64) -> Option<(String, i64)> {
        let u = self
            .upstream
            .as_ref()
            .filter(|u| u.generation == generation)?;
        Some(match u.processed {
            Some(p) => (self.replid.clone(), p as i64 + 1),
            None => ("?".to_string(), -1),
        })
    }

    /// `+FULLRESYNC replid offset`: whatever we held is about to be replaced,
    /// so there is no processed offset until the snapshot is loaded.
    pub fn full_resync_announced(
        &mut self,
        generation: u64,
        replid: String,
        offset: u64,
        now: Millis,
    ) -> bool {
        let Some(u) = self.current(generation) else {
            return false;
        };
        u.state = LinkState::Transfer;
        u.processed = None;
        u.pending_full = Some((replid, offset));
        u.transfer = (None, 0);
        u.loading = false;
        u.last_io = now;
        true
    }

    /// The whole snapshot arrived and parsing starts.
    pub fn loading_started(&mut self, generation: u64) -> bool {
        let Some(u) = self.current(generation) else {
            return false;
        };
        u.loading = u.state == LinkState::Transfer;
        u.loading
    }

    /// A full sync's snapshot is being parsed now.
    pub fn is_loading(&self) -> bool {
        self.upstream
            .as_ref()
            .is_some_and(|u| u.state == LinkState::Transfer && u.loading)
    }

    /// Snapshot bytes arrived (INFO's sync progress).
    pub fn transfer_progress(
        &mut self,
        generation: u64,
        total: Option<u64>,
        read: u64,
        now: Millis,
    ) {
        if let Some(u) = self.current(generation) {
            u.transfer = (total, read);
            u.last_io = now;
        }
    }

    /// The snapshot is loaded: we stand at the master's offset under its
    /// replication ID, with a fresh backlog (redis `readSyncBulkPayload`).
    /// Returns the offset, or `None` if the link is stale.
    pub fn full_sync_done(&mut self, generation: u64, now: Millis) -> Option<u64> {
        let u = self.current(generation)?;
        let (replid, offset) = u.pending_full.take()?;
        u.state = LinkState::Connected;
        u.loading = false;
        u.processed = Some(offset);
        u.read_offset = offset;
        u.last_io = now;
        u.down_since = None;
        self.offset = offset;
        self.new_history(replid);
        self.create_backlog();
        Some(offset)
    }

    /// `+CONTINUE [replid]`: the master continues our history. A new ID
    /// (the master was promoted, or is another one) becomes ours and the
    /// old one our `replid2` (redis "Master replication ID changed").
    /// Returns true if the ID changed.
    pub fn continued(
        &mut self,
        generation: u64,
        master_replid: Option<String>,
        now: Millis,
    ) -> Option<bool> {
        let u = self.current(generation)?;
        u.state = LinkState::Connected;
        u.last_io = now;
        u.down_since = None;
        let processed = u.processed.unwrap_or(0);
        u.read_offset = processed;
        self.offset = processed;
        let changed = match master_replid {
            Some(id) if id != self.replid => {
                self.shift_replid(id);
                true
            }
            _ => false,
        };
        if self.backlog.is_none() {
            self.create_backlog();
        }
        Some(changed)
    }

    /// Stream bytes were read (not yet applied).
    pub fn received(&mut self, generation: u64, len: usize, now: Millis) {
        if len == 0 {
            return;
        }
        if let Some(u) = self.current(generation) {
            u.read_offset += len as u64;
            u.last_io = now;
        }
    }

    /// One stream unit (a command, or a whole MULTI..EXEC) was applied:
    /// its raw bytes go to our backlog and move our offset.
    pub fn applied(&mut self, generation: u64, raw: Bytes) -> bool {
        let Some(u) = self.current(generation) else {
            return false;
        };
        let p = u.processed.unwrap_or(0) + raw.len() as u64;
        u.processed = Some(p);
        self.offset = p;
        if let Some(b) = self.backlog.as_mut() {
            b.append(raw);
        }
        true
    }

    /// The link broke (or the attempt failed). `Some(was_up)` if it is the
    /// current link; `None` if it is stale.
    pub fn link_lost(&mut self, generation: u64, now: Millis) -> Option<bool> {
        let u = self.current(generation)?;
        let was_up = u.state == LinkState::Connected;
        if was_up {
            u.down_since = Some(now);
        }
        u.read_offset = u.processed.unwrap_or(0);
        u.pending_full = None;
        u.state = LinkState::Connect;
        Some(was_up)
    }

    /// `REPLCONF ACK <processed>` (sent every second and on GETACK).
    pub fn ack_bytes(&self, generation: u64) -> Option<Vec<u8>> {
        let u = self
            .upstream
            .as_ref()
            .filter(|u| u.generation == generation)?;
        (u.state == LinkState::Connected).then(|| protocol::ack(u.processed.unwrap_or(0)))
    }

    // ---- master side ----

    /// Appends an applied write to the stream (redis `replicationFeedSlaves`).
    /// Returns its bytes for the replicas and the AOF (with a `SELECT 0`
    /// before it when the stream needs one), or `None` when there is no
    /// backlog and no replica (the offset does not move then, as in redis)
    /// or we are a replica.
    pub fn feed(&mut self, args: &[Bytes]) -> Option<Bytes> {
        if self.upstream.is_some() || (self.backlog.is_none() && self.replicas.is_empty()) {
            return None;
        }
        let mut out = Vec::with_capacity(protocol::encoded_len(args) + 24);
        if !self.seldb_selected {
            out.extend_from_slice(protocol::SELECT_0);
            self.seldb_selected = true;
        }
        protocol::encode_command(args, &mut out);
        Some(self.push_stream(out))
    }

    fn push_stream(&mut self, out: Vec<u8>) -> Bytes {
        let bytes = Bytes::from(out);
        self.offset += bytes.len() as u64;
        if let Some(b) = self.backlog.as_mut() {
            b.append(bytes.clone());
        }
        bytes
    }

    /// `REPLCONF GETACK *` into the stream (a WAIT is blocked; redis sends
    /// it from `beforeSleep`). `None` without replicas.
    pub fn feed_getack(&mut self) -> Option<Bytes> {
        if self.upstream.is_some() || self.replicas.is_empty() {
            return None;
        }
        Some(self.push_stream(protocol::GETACK.to_vec()))
    }

    /// A replica asked to sync (redis `syncCommand` +
    /// `masterTryPartialResynchronization`). `new_replid` is called when a
    /// first replica creates the backlog (a fresh history).
    pub fn sync_request(
        &mut self,
        req: SyncRequest,
        new_replid: impl FnOnce() -> String,
        now: Millis,
        log: &mut Vec<String>,
    ) -> SyncDecision {
        if let Some(u) = &self.upstream {
            // hearsay-node does not chain replicas (cluster replicas follow
            // masters only); while our own link is down this is redis's reply.
            return SyncDecision::Refuse(if u.state == LinkState::Connected {
                "ERR hearsay-node does not serve replicas while it is a replica".into()
            } else {
                "NOMASTERLINK Can't SYNC while not connected with my master".into()
            });
        }
        let name = format!("{}:{}", req.ip, req.port);
        log.push(format!("Replica {name} asks for synchronization"));
        if let Some((replid, from)) = &req.psync {
            if let Ok(backlog) = self.try_partial(replid, *from, &name, log) {
                let id = self.add_replica(&req, ReplicaState::Online, now);
                let head = if req.capa_psync2 {
                    format!("+CONTINUE {}\r\n", self.replid)
                } else {
                    "+CONTINUE\r\n".to_string()
                };
                let len: usize = backlog.iter().map(|b| b.len()).sum();
                log.push(format!(
                    "Partial resynchronization request from {name} accepted. Sending {len} bytes of backlog starting from offset {from}."
                ));
                self.refresh_good_replicas(now);
                return SyncDecision::Continue {
                    id,
                    head: head.into_bytes(),
                    backlog,
                };
            }
        }
        let id = self.add_replica(&req, ReplicaState::WaitBgsave, now);
        if self.replicas.len() == 1 && self.backlog.is_none() {
            self.new_history(new_replid());
            self.create_backlog();
            log.push(format!(
                "Replication backlog created, my new replication IDs are '{}' and '{}'",
                self.replid, self.replid2
            ));
        }
        if self.config.diskless_sync && self.config.diskless_sync_delay_s > 0 {
            log.push("Delay next BGSAVE for diskless SYNC".into());
        }
        SyncDecision::Full { id }
    }

    fn try_partial(
        &self,
        replid: &str,
        from: i64,
        name: &str,
        log: &mut Vec<String>,
    ) -> Result<Vec<Bytes>, ()> {
        let from_u = u64::try_from(from).unwrap_or(0);
        let same = replid.eq_ignore_ascii_case(&self.replid);
        let second = replid.eq_ignore_ascii_case(&self.replid2)
            && self.second_offset.is_some_and(|s| from >= 0 && from_u <= s);
        if !same && !second {
            if replid.starts_with('?') {
                log.push(format!("Full resync requested by replica {name}"));
            } else if !replid.eq_ignore_ascii_case(&self.replid2) {
                log.push(format!(
                    "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{replid}', my replication IDs are '{}' and '{}')",
                    self.replid, self.replid2
                ));
            } else {
                log.push(format!(
                    "Partial resynchronization not accepted: Requested offset for second ID was {from}, but I can reply up to {}",
                    self.second_offset.map_or(-1, |s| s as i64)
                ));
            }
            return Err(());
        }
        match &self.backlog {
            Some(b) if from >= 0 && b.covers(from_u) => Ok(b.from_offset(from_u)),
            _ => {
                log.push(format!(
                    "Unable to partial resync with replica {name} for lack of backlog (Replica request was: {from})."
                ));
                if from > self.offset as i64 {
                    log.push(format!(
                        "Warning: replica {name} tried to PSYNC with an offset that is greater than the master replication offset."
                    ));
                }
                Err(())
            }
        }
    }

    fn add_replica(&mut self, req: &SyncRequest, state: ReplicaState, now: Millis) -> ReplicaId {
        let id = self.next_replica;
        self.next_replica += 1;
        self.replicas.insert(
            id,
            ReplicaEntry {
                ip: req.ip.clone(),
                port: req.port,
                state,
                pre_psync: req.psync.is_none(),
                since: now,
                sync_offset: self.offset,
                ack_offset: 0,
                ack_time: now,
                conn: ReplicaConn::default(),
            },
        );
        id
    }

    /// REPLICAOF host port / NO ONE on a standalone node. The shell follows
    /// it with [`Replication::set_master`] at the end of the pass.
    pub fn set_standalone_master(&mut self, target: Option<(String, u16)>) {
        self.standalone_master = target;
    }

    /// What [`Replication::set_master`] should follow on a standalone node.
    /// Such a master has no cluster node ID: the null name stands for it.
    pub fn standalone_target(&self) -> Option<(NodeName, String, u16)> {
        self.standalone_master
            .clone()
            .map(|(host, port)| (NodeName::NULL, host, port))
    }

    /// The shell names the connection a replica came on.
    pub fn set_replica_conn(&mut self, id: ReplicaId, conn: ReplicaConn) {
        if let Some(r) = self.replicas.get_mut(&id) {
            r.conn = conn;
        }
    }

    /// CLIENT KILL matched a replica's link: the shell drops it after the
    /// command.
    pub fn request_replica_kill(&mut self, id: ReplicaId) {
        self.replica_kills.push(id);
    }

    /// Replica links a CLIENT KILL asked to drop.
    pub fn take_replica_kills(&mut self) -> Vec<ReplicaId> {
        std::mem::take(&mut self.replica_kills)
    }

    /// Replicas waiting for a snapshot that should get one now (redis
    /// `shouldStartChildForReplication`): at once for disk-style syncs,
    /// else after `repl-diskless-sync-delay` or once enough are waiting.
    pub fn due_full_syncs(&self, now: Millis) -> Vec<ReplicaId> {
        let waiting: Vec<(ReplicaId, Millis)> = self
            .replicas
            .iter()
            .filter(|(_, r)| r.state == ReplicaState::WaitBgsave)
            .map(|(&id, r)| (id, r.since))
            .collect();
        if waiting.is_empty() {
            return Vec::new();
        }
        let delay_ms = self.config.diskless_sync_delay_s * 1000;
        let oldest = waiting.iter().map(|(_, t)| *t).min().unwrap_or(now);
        let max = self.config.diskless_sync_max_replicas;
        let due = !self.config.diskless_sync
            || delay_ms == 0
            || now.saturating_sub(oldest) >= delay_ms
            || (max > 0 && waiting.len() as u64 >= max);
        if due {
            waiting.into_iter().map(|(id, _)| id).collect()
        } else {
            Vec::new()
        }
    }

    /// A snapshot of the data set was taken now for `ids`: they are sent
    /// `+FULLRESYNC <replid> <offset>` and the snapshot, then the stream
    /// (which restarts with a SELECT, redis `slaveseldb = -1`). Returns the
    /// header's (replid, offset).
    pub fn snapshot_taken(&mut self, ids: &[ReplicaId]) -> (String, u64) {
        for id in ids {
            if let Some(r) = self.replicas.get_mut(id) {
                r.state = ReplicaState::SendBulk;
                r.sync_offset = self.offset;
            }
        }
        self.seldb_selected = false;
        (self.replid.clone(), self.offset)
    }

    /// The snapshot reached the replica's socket (redis `putSlaveOnline`).
    pub fn bulk_sent(&mut self, id: ReplicaId, now: Millis) -> bool {
        let Some(r) = self.replicas.get_mut(&id) else {
            return false;
        };
        if r.state != ReplicaState::SendBulk {
            return false;
        }
        r.state = ReplicaState::Online;
        r.ack_time = now;
        self.refresh_good_replicas(now);
        true
    }

    pub fn remove_replica(&mut self, id: ReplicaId, now: Millis) -> Option<ReplicaEntry> {
        let r = self.replicas.remove(&id)?;
        if self.replicas.is_empty() {
            self.no_replicas_since = now;
        }
        self.refresh_good_replicas(now);
        Some(r)
    }

    /// `REPLCONF ACK <offset>` from a replica (redis keeps the highest).
    pub fn handle_ack(&mut self, id: ReplicaId, offset: u64, now: Millis) -> bool {
        let Some(r) = self.replicas.get_mut(&id) else {
            return false;
        };
        r.ack_offset = r.ack_offset.max(offset);
        r.ack_time = now;
        self.refresh_good_replicas(now);
        true
    }

    /// Replicas that acknowledged `offset` (redis `replicationCountAcksByOffset`).
    pub fn count_acks(&self, offset: u64) -> usize {
        self.replicas
            .values()
            .filter(|r| r.state == ReplicaState::Online && r.ack_offset >= offset)
            .count()
    }

    /// redis `refreshGoodSlavesCount`.
    fn refresh_good_replicas(&mut self, now: Millis) {
        let lag_ms = self.config.min_replicas_max_lag_s * 1000;
        self.good_replicas = self
            .replicas
            .values()
            .filter(|r| r.state == ReplicaState::Online && now.saturating_sub(r.ack_time) <= lag_ms)
            .count() as u64;
    }

    /// Writes are refused (`-NOREPLICAS`) while fewer than
    /// `min-replicas-to-write` replicas are online within
    /// `min-replicas-max-lag` (only on a master, only when both are set).
    pub fn writes_refused(&self) -> bool {
        self.upstream.is_none()
            && self.config.min_replicas_to_write > 0
            && self.config.min_replicas_max_lag_s > 0
            && self.good_replicas < self.config.min_replicas_to_write
    }

    /// The once-a-second part of redis `replicationCron`. `paused`: a manual
    /// failover pauses writes, and no PING may move the offset meanwhile.
    pub fn cron(&mut self, now: Millis, paused: bool) -> CronOut {
        let mut out = CronOut::default();
        let timeout_ms = self.config.timeout_s * 1000;
        if let Some(u) = &self.upstream {
            let idle = now.saturating_sub(u.last_io);
            if idle > timeout_ms {
                let text = match u.state {
                    LinkState::Connecting | LinkState::Handshake => Some("Timeout connecting to the MASTER..."),
                    LinkState::Transfer => Some("Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value."),
                    LinkState::Connected => Some("MASTER timeout: no data nor PING received..."),
                    LinkState::Connect => None,
                };
                if let Some(t) = text {
                    out.log.push(t.to_string());
                    out.master_timed_out = true;
                }
            }
            return out;
        }
        let period_ms = self.config.ping_period_s.max(1) * 1000;
        if !self.replicas.is_empty() && now.saturating_sub(self.last_ping) >= period_ms {
            self.last_ping = now;
            if !paused {
                // redis feeds the PING with the current slaveseldb: no SELECT.
                out.stream = Some(self.push_stream(protocol::PING.to_vec()));
            }
        }
        for (&id, r) in &self.replicas {
            match r.state {
                ReplicaState::WaitBgsave => out.presync.push(id),
                ReplicaState::Online
                    if !r.pre_psync && now.saturating_sub(r.ack_time) > timeout_ms =>
                {
                    out.log.push(format!(
                        "Disconnecting timedout replica (streaming sync): {}:{}",
                        r.ip, r.port
                    ));
                    out.timed_out.push(id);
                }
                _ => {}
            }
        }
        let ttl_ms = self.config.backlog_ttl_s * 1000;
        if self.replicas.is_empty()
            && ttl_ms > 0
            && self.backlog.is_some()
            && now.saturating_sub(self.no_replicas_since) > ttl_ms
        {
            self.backlog = None;
            out.backlog_freed = true;
            out.log.push(format!(
                "Replication backlog freed after {} seconds without connected replicas.",
                self.config.backlog_ttl_s
            ));
        }
        self.refresh_good_replicas(now);
        out
    }

    /// After the backlog was freed: a fresh history (redis changes the ID so
    /// that a former replica can't continue a history we no longer count).
    pub fn backlog_freed(&mut self, replid: String) {
        self.new_history(replid);
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
            let transfer = u.state == LinkState::Transfer;
            // redis prints 1 when there is neither a master nor a cached one.
            let processed = u.processed.unwrap_or(1);
            s.push_str(&format!(
                "master_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{processed}\r\n",
                u.host,
                u.port,
                if up { "up" } else { "down" },
                if up { secs(u.last_io) } else { -1 },
                u8::from(transfer),
                if u.processed.is_some() { u.read_offset.max(processed) } else { 1 },
            ));
            if transfer {
                let (total, read) = u.transfer;
                let total = total.map_or(-1, |t| t as i64);
                let perc = if total > 0 {
                    read as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                s.push_str(&format!(
                    "master_sync_total_bytes:{total}\r\nmaster_sync_read_bytes:{read}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                    total - read as i64,
                    secs(u.last_io),
                ));
            }
            if !up {
                s.push_str(&format!(
                    "master_link_down_since_seconds:{}\r\n",
                    u.down_since.map_or(-1, secs)
                ));
            }
            s.push_str("slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n");
        }
        s.push_str(&format!("connected_slaves:{}\r\n", self.replicas.len()));
        if self.upstream.is_none()
            && self.config.min_replicas_to_write > 0
            && self.config.min_replicas_max_lag_s > 0
        {
            s.push_str(&format!(
                "min_slaves_good_slaves:{}\r\n",
                self.good_replicas
            ));
        }
        for (i, r) in self.replicas.values().enumerate() {
            let lag = if r.state == ReplicaState::Online {
                secs(r.ack_time)
            } else {
                0
            };
            s.push_str(&format!(
                "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
                r.ip,
                r.port,
                r.state.name(),
                r.ack_offset,
            ));
        }
        s.push_str(&format!(
            "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\n",
            self.replid,
            self.replid2,
            self.offset,
            self.second_offset.map_or(-1, |o| o as i64),
        ));
        match &self.backlog {
            Some(b) => s.push_str(&format!(
                "repl_backlog_active:1\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
                b.size(),
                b.first_byte_offset(),
                b.histlen()
            )),
            None => s.push_str(&format!(
                "repl_backlog_active:0\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
                self.config.backlog_size
            )),
        }
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
