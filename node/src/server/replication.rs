//! Replication I/O: the tasks and sockets around the sans-IO
//! [`crate::replication::Replication`] state, speaking redis 7.0's protocol
//! both ways (so a redis-server replica can follow a hearsay master and the
//! reverse).
//!
//! - Master side: a replica connects to our client port, announces itself
//!   with `REPLCONF` (kept on the connection) and sends `PSYNC` or `SYNC`;
//!   the client task hands the socket to [`start_replica`]. Under the node
//!   lock the core decides: `+CONTINUE` with the backlog, or a full sync.
//!   A full sync waits for a snapshot ([`Node::start_due_full_syncs`], at
//!   once or after `repl-diskless-sync-delay`), taken under the lock as an
//!   RDB and queued as `+FULLRESYNC`, `$<len>` and the payload; every write
//!   applied after that lock release is queued behind it, in apply order. A
//!   writer task drains the queue to the socket; a reader task takes
//!   `REPLCONF ACK`s (they wake WAIT).
//! - Replica side: [`Node::sync_replication_role`] (run at the end of every
//!   `drain`) follows the core's `replication_master()`: one link task per
//!   master does the handshake and PSYNC, loads a snapshot (parsed off the
//!   lock into a fresh data set, swapped in only when complete and valid,
//!   so a bad or cut payload leaves the old data as it was), applies the
//!   stream and acks; on a broken link it retries every second while the
//!   core still names that master. A generation number keeps a superseded
//!   task from touching anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::{now_ms, Node, Shared};
use crate::cluster::LogLevel;
use crate::commands;
use crate::events::{Event, EventKind};
use crate::rdb;
use crate::replication::protocol::{
    self, HandshakeStep, Item, MasterReader, ProtocolError, PsyncReply,
};
use crate::replication::{
    LinkState, ReplicaConn, ReplicaId, Replication, RoleChange, SyncDecision, SyncRequest,
};
use crate::resp::Frame;
use crate::wire::NodeName;

/// How long a connect to the master may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between attempts (redis retries from its once-a-second replicationCron).
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// The replica acks at least this often (redis: every second).
const ACK_PERIOD: Duration = Duration::from_secs(1);
/// redis `client-output-buffer-limit replica 256mb`: a replica this far behind
/// is disconnected (it will resync) rather than let its queue grow forever.
const OUTPUT_LIMIT: usize = 256 * 1024 * 1024;
/// Largest write the replica writer coalesces queued chunks into.
const COALESCE: usize = 1024 * 1024;

/// Why a replication link ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("connecting to the master timed out")]
    ConnectTimeout,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the master")]
    Closed,
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Refused(String),
    #[error("Failed trying to load the MASTER synchronization DB: {0}")]
    Load(rdb::RdbError),
}

/// What the writer task sends.
enum Out {
    Data(Bytes),
    /// A pause (`rdb-key-save-delay`, a test knob that slows full syncs).
    Sleep(Duration),
    /// The snapshot has been written: the replica is online.
    BulkEnd,
}

/// The master's handle on one replica connection.
struct ReplicaHandle {
    tx: mpsc::UnboundedSender<Out>,
    /// Bytes queued but not yet written (for the output limit).
    queued: Arc<AtomicUsize>,
    tasks: Vec<AbortHandle>,
    /// `ip:port` for log lines.
    addr: String,
    /// The stream goes to it (its snapshot was queued, or it continued).
    streaming: bool,
}

impl ReplicaHandle {
    /// Queues bytes for the writer; the output-limit count follows them.
    /// Returns the new queued total, or `None` if the writer is gone.
    fn send(&self, bytes: Bytes) -> Option<usize> {
        let len = bytes.len();
        let total = self.queued.fetch_add(len, Ordering::Relaxed) + len;
        self.tx.send(Out::Data(bytes)).ok().map(|_| total)
    }
}

/// The shell's replication state: the sans-IO state plus task handles.
pub(super) struct ReplShell {
    pub(super) state: Replication,
    replicas: HashMap<ReplicaId, ReplicaHandle>,
    /// The replica-side link task of the current generation.
    link_task: Option<AbortHandle>,
    /// A WAIT blocked: `REPLCONF GETACK *` goes out at the end of the pass.
    pub(super) getack_wanted: bool,
    last_cron_ms: u64,
    /// The master link was dropped on request (CLIENT KILL): the next cron
    /// tick starts a new one, as redis's replicationCron reconnects.
    relink_wanted: bool,
}

impl ReplShell {
    /// Connected replicas (they count against maxclients).
    pub(super) fn replica_count(&self) -> usize {
        self.replicas.len()
    }

    pub(super) fn new(config: &crate::config::Config, now: u64) -> ReplShell {
        ReplShell {
            state: Replication::new(random_replid(), config.repl_config(), now),
            replicas: HashMap::new(),
            link_task: None,
            getack_wanted: false,
            last_cron_ms: now,
            relink_wanted: false,
        }
    }
}

/// 40 random hex characters (redis `getRandomHexChars`).
pub(super) fn random_replid() -> String {
    format!(
        "{:016x}{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// What a client announced with `REPLCONF` before asking to sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ReplConf {
    pub listening_port: u16,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
}

/// `REPLCONF` from a client (redis `replconfCommand`): the handshake options
/// are kept on the connection; `ACK` and `GETACK` from a non-replica get no
/// reply at all (`None`), as in redis.
pub(super) fn replconf(conf: &mut ReplConf, args: &[Bytes]) -> Option<Frame> {
    let rest = &args[1..];
    if !rest.len().is_multiple_of(2) {
        return Some(Frame::error(commands::err::SYNTAX));
    }
    for pair in rest.chunks(2) {
        let opt = pair[0].to_ascii_lowercase();
        let val = &pair[1];
        match &opt[..] {
            b"listening-port" => {
                match crate::resp::string2ll(val).and_then(|p| u16::try_from(p).ok()) {
                    Some(p) => conf.listening_port = p,
                    None => return Some(Frame::error(commands::err::NOT_INTEGER)),
                }
            }
            b"ip-address" => {
                if val.len() >= 46 {
                    return Some(Frame::Error(format!(
                        "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                        val.len()
                    )));
                }
                conf.ip = Some(String::from_utf8_lossy(val).into_owned());
            }
            b"capa" => {
                if val.eq_ignore_ascii_case(b"eof") {
                    conf.capa_eof = true;
                } else if val.eq_ignore_ascii_case(b"psync2") {
                    conf.capa_psync2 = true;
                }
            }
            b"ack" | b"getack" => return None,
            b"rdb-only" | b"rdb-filter-only" => {}
            _ => {
                return Some(Frame::Error(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(&pair[0])
                )))
            }
        }
    }
    Some(Frame::ok())
}

impl Node {
    fn emit(&mut self, kind: EventKind) {
        self.write_event(&Event::from(kind));
        self.flush_events();
    }

    /// The write pause of a manual failover is in force (`client_pause_until`).
    pub(super) fn paused(&self, now: u64) -> bool {
        self.cluster
            .as_ref()
            .and_then(|c| c.client_pause_until())
            .is_some_and(|t| now < t)
    }

    /// Keys past their TTL are deleted (and the DEL replicated) only by a
    /// master that is not paused; a replica waits for its master's DEL, and a
    /// paused master must not move its offset while its replica catches up
    /// (redis skips expiry while paused for the same reason).
    pub(super) fn refresh_expire_mode(&mut self, now: u64) {
        // Any pause (CLIENT PAUSE too) stops expiry, as in redis 7.0.
        let hide = self.repl.state.is_replica()
            || self.is_replica()
            || self.pause_kind(now) != commands::PauseKind::Off;
        commands::set_replica_mode(&mut self.db, hide);
    }

    /// Appends applied writes to the replication stream, in order. The AOF
    /// gets the same bytes (less a leading SELECT, which it has no use for).
    pub(super) fn feed_writes(&mut self, writes: &[Vec<Bytes>]) {
        for w in writes {
            let bytes = self.repl.state.feed(w);
            if let Some(aof) = self.aof.as_mut() {
                match &bytes {
                    Some(b) => aof.append_encoded(b.strip_prefix(protocol::SELECT_0).unwrap_or(b)),
                    None => aof.append_command(w),
                }
            }
            if let Some(bytes) = bytes {
                self.fan_out(bytes);
            }
        }
        // The core's view of the offset follows every write at once, not at
        // the next drain: a client pass may leave its drain to the end of
        // the turn, and an MFSTART handled meanwhile reports this offset to
        // the replica, which waits for exactly it (redis reads
        // `master_repl_offset` live).
        let offset = self.repl.state.core_offset();
        if let Some(c) = self.cluster.as_mut() {
            c.set_repl_offset(offset);
        }
    }

    /// The writes of one client request. Several (an EXEC, or a lazy-expiry
    /// DEL before a write) go out inside MULTI/EXEC as redis 7.0 propagates
    /// them, so a replica applies them together and its readers never see
    /// half a transaction.
    pub(super) fn feed_request(&mut self, writes: &[Vec<Bytes>]) {
        if writes.len() > 1 {
            self.feed_writes(&[vec![Bytes::from_static(b"MULTI")]]);
            self.feed_writes(writes);
            self.feed_writes(&[vec![Bytes::from_static(b"EXEC")]]);
        } else {
            self.feed_writes(writes);
        }
    }

    /// `DEL key` for each key (expired or dropped with a lost slot).
    pub(super) fn feed_deletes(&mut self, keys: Vec<Bytes>) {
        for key in keys {
            self.feed_writes(&[vec![Bytes::from_static(b"DEL"), key]]);
        }
    }

    fn fan_out(&mut self, bytes: Bytes) {
        let mut over = Vec::new();
        for (&id, h) in &self.repl.replicas {
            if !h.streaming {
                continue;
            }
            if h.send(bytes.clone())
                .is_none_or(|queued| queued > OUTPUT_LIMIT)
            {
                over.push(id);
            }
        }
        for id in over {
            if let Some(h) = self.repl.replicas.get(&id) {
                let text = format!(
                    "Client replica {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    h.addr
                );
                self.log(LogLevel::Warning, &text);
            }
            self.drop_replica(id);
        }
    }

    pub(super) fn drop_replica(&mut self, id: ReplicaId) -> bool {
        let Some(h) = self.repl.replicas.remove(&id) else {
            return false;
        };
        for t in h.tasks {
            t.abort();
        }
        self.repl.state.remove_replica(id, now_ms());
        let text = format!("Connection with replica {} lost.", h.addr);
        self.log(LogLevel::Notice, &text);
        true
    }

    /// `REPLCONF GETACK *` for a blocked WAIT, once per pass (redis
    /// `beforeSleep`), not while a manual failover holds the offset.
    pub(super) fn send_getack(&mut self, now: u64) {
        if !std::mem::take(&mut self.repl.getack_wanted) || self.paused(now) {
            return;
        }
        if let Some(bytes) = self.repl.state.feed_getack() {
            self.fan_out(bytes);
        }
    }

    /// The replication part of the cron (redis `replicationCron` runs once a
    /// second; the core keeps its own schedule, so this runs every tick).
    pub(super) fn replication_cron(&mut self, shared: &Arc<Shared>, now: u64) {
        self.repl.state.set_config(self.config.repl_config());
        if std::mem::take(&mut self.repl.relink_wanted) {
            if let Some(u) = self.repl.state.upstream().cloned() {
                self.spawn_link(shared, u.generation, u.master, u.host, u.port, true);
            }
        }
        self.start_due_full_syncs(now);
        if now.saturating_sub(self.repl.last_cron_ms) < 1000 {
            return;
        }
        self.repl.last_cron_ms = now;
        let paused = self.paused(now);
        let out = self.repl.state.cron(now, paused);
        for line in &out.log {
            self.log(LogLevel::Warning, line);
        }
        if let Some(bytes) = out.stream {
            self.fan_out(bytes);
        }
        for id in out.presync {
            if let Some(h) = self.repl.replicas.get(&id) {
                let _ = h.send(Bytes::from_static(b"\n"));
            }
        }
        for id in out.timed_out {
            self.drop_replica(id);
        }
        if out.backlog_freed {
            self.repl.state.backlog_freed(random_replid());
        }
        if out.master_timed_out {
            // The link task notices by itself (it reads with the same
            // timeout); aborting it here makes the timeout exact.
            if let Some(u) = self.repl.state.upstream().cloned() {
                if let Some(t) = self.repl.link_task.take() {
                    t.abort();
                }
                if let Some(was_up) = self.repl.state.link_lost(u.generation, now) {
                    self.master_link_down(u.master, was_up, now);
                }
                self.spawn_link(shared, u.generation, u.master, u.host, u.port, true);
            }
        }
    }

    /// Starts the full syncs that are due: one snapshot (an RDB, taken now
    /// under the lock) for every replica waiting, each sent `+FULLRESYNC`,
    /// the payload and then the stream.
    pub(super) fn start_due_full_syncs(&mut self, now: u64) {
        let ids = self.repl.state.due_full_syncs(now);
        if ids.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let info = self.repl.state.save_info();
        let payload = Bytes::from(rdb::file::write_db(
            &self.db,
            self.config.rdb_options(),
            now / 1000,
            info.as_ref(),
        ));
        let (replid, offset) = self.repl.state.snapshot_taken(&ids);
        // redis sleeps `rdb-key-save-delay` us per key while saving (a test
        // knob): here the payload goes out in pieces with that much delay.
        let delay_us = self
            .config
            .get("rdb-key-save-delay")
            .and_then(|d| d.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64;
        let total_delay = Duration::from_micros(delay_us.saturating_mul(self.db.len() as u64));
        self.log(
            LogLevel::Notice,
            &format!(
                "Starting BGSAVE for SYNC with target: replicas sockets ({} keys, {} bytes, offset {offset}, {} ms)",
                self.db.len(),
                payload.len(),
                started.elapsed().as_millis()
            ),
        );
        for id in ids {
            let pre_psync = self.repl.state.replica(id).is_some_and(|r| r.pre_psync);
            let Some(h) = self.repl.replicas.get_mut(&id) else {
                continue;
            };
            let mut head = if pre_psync {
                String::new()
            } else {
                format!("+FULLRESYNC {replid} {offset}\r\n")
            };
            head.push_str(&format!("${}\r\n", payload.len()));
            let mut ok = h.send(Bytes::from(head)).is_some();
            if total_delay.is_zero() {
                ok &= h.send(payload.clone()).is_some();
            } else {
                let pieces = 100usize;
                let step = payload.len().div_ceil(pieces).max(1);
                let mut at = 0;
                while at < payload.len() && ok {
                    let end = (at + step).min(payload.len());
                    ok &= h.tx.send(Out::Sleep(total_delay / pieces as u32)).is_ok();
                    ok &= h.send(payload.slice(at..end)).is_some();
                    at = end;
                }
            }
            ok &= h.tx.send(Out::BulkEnd).is_ok();
            h.streaming = ok;
        }
    }

    /// Follows the core's `replication_master()`; called at the end of every
    /// drain. Also keeps the core's offset current.
    pub(super) fn sync_replication_role(&mut self, shared: &Arc<Shared>, now: u64) {
        let target = match self.cluster.as_ref() {
            Some(c) => c.replication_master(),
            None => self.repl.state.standalone_target(),
        };
        let change = self
            .repl
            .state
            .set_master(target.clone(), random_replid, now);
        match (change, target) {
            (RoleChange::None, _) => {}
            (RoleChange::BecameReplica { generation }, Some((master, host, port))) => {
                let ids: Vec<ReplicaId> = self.repl.replicas.keys().copied().collect();
                for id in ids {
                    self.drop_replica(id);
                }
                self.log(
                    LogLevel::Notice,
                    "Before turning into a replica, using my own master parameters to synthesize a cached master: I may be able to synchronize with the new master with just a partial transfer.",
                );
                self.start_link(shared, generation, master, host, port);
                // Blocked WAITs end with redis's "instance state changed" error.
                shared.acks.notify_waiters();
            }
            (
                RoleChange::ChangedMaster {
                    old,
                    was_up,
                    generation,
                },
                Some((master, host, port)),
            ) => {
                self.stop_link(old, was_up, now);
                self.start_link(shared, generation, master, host, port);
            }
            (RoleChange::BecameMaster { old, was_up }, _) => {
                self.stop_link(old, was_up, now);
                let text = format!(
                    "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
                    self.repl.state.replid2(),
                    self.repl.state.offset() + 1,
                    self.repl.state.replid()
                );
                self.log(LogLevel::Notice, &text);
                self.log(LogLevel::Notice, "MASTER MODE enabled");
            }
            // `set_master` only reports a new link for a `Some` target.
            (RoleChange::BecameReplica { .. } | RoleChange::ChangedMaster { .. }, None) => {}
        }
        let offset = self.repl.state.core_offset();
        if let Some(c) = self.cluster.as_mut() {
            c.set_repl_offset(offset);
        }
        self.refresh_expire_mode(now);
    }

    fn master_link_down(&mut self, master: NodeName, was_up: bool, now: u64) {
        if was_up {
            self.log(LogLevel::Notice, "Connection with master lost.");
            if let Some(c) = self.cluster.as_mut() {
                c.handle_master_link_down(now);
            }
            self.emit(EventKind::ReplicationLinkDown {
                master: master.to_string(),
            });
        }
    }

    /// CLIENT KILL of the master link (redis frees the master client): the
    /// link closes now, under the lock, so nothing still in its socket is
    /// applied; the cron reconnects.
    pub(super) fn drop_master_link(&mut self, now: u64) {
        let Some(u) = self.repl.state.upstream().cloned() else {
            return;
        };
        if let Some(t) = self.repl.link_task.take() {
            t.abort();
        }
        if let Some(was_up) = self.repl.state.link_lost(u.generation, now) {
            self.master_link_down(u.master, was_up, now);
        }
        self.repl.relink_wanted = true;
    }

    fn stop_link(&mut self, old: NodeName, was_up: bool, now: u64) {
        if let Some(t) = self.repl.link_task.take() {
            t.abort();
        }
        self.master_link_down(old, was_up, now);
    }

    fn start_link(
        &mut self,
        shared: &Arc<Shared>,
        generation: u64,
        master: NodeName,
        host: String,
        port: u16,
    ) {
        let text = format!("Connecting to MASTER {host}:{port}");
        self.log(LogLevel::Notice, &text);
        self.spawn_link(shared, generation, master, host, port, false);
    }

    fn spawn_link(
        &mut self,
        shared: &Arc<Shared>,
        generation: u64,
        master: NodeName,
        host: String,
        port: u16,
        delay_first: bool,
    ) {
        if let Some(t) = self.repl.link_task.take() {
            t.abort();
        }
        let task = tokio::spawn(replica_link(
            shared.clone(),
            generation,
            master,
            host,
            port,
            delay_first,
        ));
        self.repl.link_task = Some(task.abort_handle());
    }
}

// ------------------------------------------------------------ master side

/// A client sent PSYNC or SYNC: under the lock, the core decides. On a
/// refusal the socket comes back with the error reply, and the connection
/// goes on as a client; otherwise it is a replica link from now on.
pub(super) fn start_replica(
    shared: &Arc<Shared>,
    stream: TcpStream,
    inbuf: BytesMut,
    args: &[Bytes],
    conf: &ReplConf,
    client_id: u64,
) -> Result<(), (TcpStream, BytesMut, Frame)> {
    let peer_ip = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let conn = ReplicaConn {
        client_id,
        addr: stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        laddr: stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
    let psync = if args[0].eq_ignore_ascii_case(b"psync") {
        let replid = String::from_utf8_lossy(&args[1]).into_owned();
        match crate::resp::string2ll(&args[2]) {
            Some(off) => Some((replid, off)),
            None => return Err((stream, inbuf, Frame::error(commands::err::NOT_INTEGER))),
        }
    } else {
        None
    };
    let req = SyncRequest {
        psync,
        ip: conf.ip.clone().unwrap_or(peer_ip),
        port: conf.listening_port,
        capa_eof: conf.capa_eof,
        capa_psync2: conf.capa_psync2,
    };
    let addr = format!("{}:{}", req.ip, req.port);
    let mut guard = shared.node.lock();
    let n = &mut *guard;
    let now = now_ms();
    let mut log = Vec::new();
    let decision = n.repl.state.sync_request(req, random_replid, now, &mut log);
    for line in &log {
        n.log(LogLevel::Notice, line);
    }
    let (id, first, streaming) = match decision {
        SyncDecision::Refuse(text) => return Err((stream, inbuf, Frame::Error(text))),
        SyncDecision::Continue { id, head, backlog } => {
            let mut first = vec![Bytes::from(head)];
            first.extend(backlog);
            (id, first, true)
        }
        SyncDecision::Full { id } => (id, Vec::new(), false),
    };
    n.repl.state.set_replica_conn(id, conn);
    let _ = stream.set_nodelay(n.config.get("repl-disable-tcp-nodelay") != Some("yes"));
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    for b in first {
        queued.fetch_add(b.len(), Ordering::Relaxed);
        let _ = tx.send(Out::Data(b));
    }
    let writer = tokio::spawn(write_replica(shared.clone(), id, wr, rx, queued.clone()));
    let reader = tokio::spawn(read_replica(shared.clone(), id, rd, inbuf));
    n.repl.replicas.insert(
        id,
        ReplicaHandle {
            tx,
            queued,
            tasks: vec![writer.abort_handle(), reader.abort_handle()],
            addr,
            streaming,
        },
    );
    n.start_due_full_syncs(now);
    guard.drain(shared);
    drop(guard);
    shared.acks.notify_waiters();
    Ok(())
}

/// Writes the replica's queue (reply, snapshot, then stream) to its socket,
/// coalescing what has piled up into one write.
async fn write_replica(
    shared: Arc<Shared>,
    id: ReplicaId,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
) {
    let mut batch = Vec::new();
    'outer: while let Some(first) = rx.recv().await {
        let mut items = vec![first];
        while let Ok(more) = rx.try_recv() {
            items.push(more);
            if items.len() > 1024 {
                break;
            }
        }
        batch.clear();
        for item in items {
            match item {
                Out::Data(b) if b.len() >= COALESCE => {
                    // A snapshot: no copy.
                    if !write_all(&mut wr, &mut batch, &queued).await
                        || wr.write_all(&b).await.is_err()
                    {
                        break 'outer;
                    }
                    queued.fetch_sub(b.len(), Ordering::Relaxed);
                }
                Out::Data(b) => {
                    batch.extend_from_slice(&b);
                    if batch.len() >= COALESCE && !write_all(&mut wr, &mut batch, &queued).await {
                        break 'outer;
                    }
                }
                Out::BulkEnd => {
                    if !write_all(&mut wr, &mut batch, &queued).await {
                        break 'outer;
                    }
                    bulk_sent(&shared, id);
                }
                Out::Sleep(d) => {
                    if !write_all(&mut wr, &mut batch, &queued).await {
                        break 'outer;
                    }
                    tokio::time::sleep(d).await;
                }
            }
        }
        if !write_all(&mut wr, &mut batch, &queued).await {
            break;
        }
    }
    replica_gone(&shared, id);
}

async fn write_all(wr: &mut OwnedWriteHalf, batch: &mut Vec<u8>, queued: &AtomicUsize) -> bool {
    if batch.is_empty() {
        return true;
    }
    if wr.write_all(batch).await.is_err() {
        return false;
    }
    queued.fetch_sub(batch.len(), Ordering::Relaxed);
    batch.clear();
    true
}

/// The snapshot is on the replica's socket: it is online (redis
/// `putSlaveOnline`).
fn bulk_sent(shared: &Arc<Shared>, id: ReplicaId) {
    let mut n = shared.node.lock();
    let now = now_ms();
    if n.repl.state.bulk_sent(id, now) {
        let (addr, ip, port, offset) = match (n.repl.replicas.get(&id), n.repl.state.replica(id)) {
            (Some(h), Some(r)) => (h.addr.clone(), r.ip.clone(), r.port, r.sync_offset),
            _ => return,
        };
        n.log(
            LogLevel::Notice,
            &format!("Synchronization with replica {addr} succeeded"),
        );
        let replica = n
            .cluster
            .as_ref()
            .and_then(|c| c.node_by_addr(&ip, port))
            .map(|id| id.to_string())
            .unwrap_or(addr);
        n.emit(EventKind::ReplicaSynced { replica, offset });
    }
}

/// Reads the replica's ACKs until it goes away or stays silent for repl-timeout.
async fn read_replica(
    shared: Arc<Shared>,
    id: ReplicaId,
    mut rd: OwnedReadHalf,
    mut buf: BytesMut,
) {
    loop {
        let mut acks = Vec::new();
        loop {
            match protocol::next_ack(&mut buf) {
                Ok(Some(Some(offset))) => acks.push(offset),
                Ok(Some(None)) => {}
                Ok(None) => break,
                Err(e) => {
                    let mut n = shared.node.lock();
                    let addr = n.repl.replicas.get(&id).map(|h| h.addr.clone());
                    let text = format!("Replica {}: {e}", addr.unwrap_or_default());
                    n.log(LogLevel::Warning, &text);
                    drop(n);
                    replica_gone(&shared, id);
                    return;
                }
            }
        }
        if let Some(&offset) = acks.iter().max() {
            let mut n = shared.node.lock();
            n.repl.state.handle_ack(id, offset, now_ms());
            drop(n);
            shared.acks.notify_waiters();
        }
        // The master's cron disconnects a silent online replica; this read
        // only ends with the connection.
        match rd.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    replica_gone(&shared, id);
}

fn replica_gone(shared: &Arc<Shared>, id: ReplicaId) {
    let mut n = shared.node.lock();
    if n.drop_replica(id) {
        n.drain(shared);
        drop(n);
        // A replica fewer can end a WAIT early only by timeout, but the
        // waiters should recount.
        shared.acks.notify_waiters();
    }
}

// ------------------------------------------------------------ replica side

/// What one link attempt learned that outlives it.
struct Attempt {
    generation: u64,
    master: NodeName,
}

/// The replica's link to one master, for one generation: connect, sync,
/// stream; on failure wait a second and start over.
async fn replica_link(
    shared: Arc<Shared>,
    generation: u64,
    master: NodeName,
    host: String,
    port: u16,
    delay_first: bool,
) {
    let mut first = !delay_first;
    loop {
        if !first {
            tokio::time::sleep(RETRY_DELAY).await;
        }
        first = false;
        {
            let mut n = shared.node.lock();
            if !n
                .repl
                .state
                .link_stage(generation, LinkState::Connecting, now_ms())
            {
                return;
            }
            n.log(LogLevel::Notice, "MASTER <-> REPLICA sync started");
        }
        let attempt = Attempt { generation, master };
        let result = run_link(&shared, &attempt, &host, port).await;
        let mut n = shared.node.lock();
        let now = now_ms();
        let Some(was_up) = n.repl.state.link_lost(generation, now) else {
            return;
        };
        let reason = match &result {
            Ok(()) => return,
            Err(e) => e.to_string(),
        };
        n.master_link_down(master, was_up, now);
        n.log(
            LogLevel::Warning,
            &format!("Replication link to MASTER {host}:{port}: {reason}"),
        );
        n.drain(&shared);
    }
}

/// Reads at least one more chunk, with the replication timeout.
async fn read_some(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<usize, LinkError> {
    match tokio::time::timeout(timeout, rd.read_buf(buf)).await {
        Err(_) => Err(LinkError::Refused(
            "no data from the master for repl-timeout".into(),
        )),
        Ok(Err(e)) => Err(LinkError::Io(e)),
        Ok(Ok(0)) => Err(LinkError::Closed),
        Ok(Ok(n)) => Ok(n),
    }
}

/// The next reply line of the handshake.
async fn read_line(
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    reader: &mut MasterReader,
    timeout: Duration,
) -> Result<String, LinkError> {
    loop {
        if let Some(item) = reader.next(buf)? {
            return match item {
                Item::Line(l) => Ok(l),
                _ => Err(LinkError::Protocol(ProtocolError::Unexpected {
                    what: "data",
                    phase: "handshake",
                })),
            };
        }
        read_some(rd, buf, timeout).await?;
    }
}

/// One attempt: returns `Ok(())` only when the link became stale (another
/// generation took over), else why it ended.
async fn run_link(
    shared: &Arc<Shared>,
    at: &Attempt,
    host: &str,
    port: u16,
) -> Result<(), LinkError> {
    let generation = at.generation;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| LinkError::ConnectTimeout)??;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (timeout, auth, myport, announce_ip) = {
        let mut n = shared.node.lock();
        if !n
            .repl
            .state
            .link_stage(generation, LinkState::Handshake, now_ms())
        {
            return Ok(());
        }
        n.log(
            LogLevel::Notice,
            "Non blocking connect for SYNC fired the event.",
        );
        let pass = n.config.get("masterauth").unwrap_or_default().to_string();
        let user = n.config.get("masteruser").unwrap_or_default().to_string();
        let ip = n
            .config
            .get("replica-announce-ip")
            .unwrap_or_default()
            .to_string();
        (
            Duration::from_secs(n.repl.state.config().timeout_s.max(1)),
            (!pass.is_empty()).then_some((user, pass)),
            n.config.port(),
            (!ip.is_empty()).then_some(ip),
        )
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut reader = MasterReader::new();

    // PING first: redis accepts an auth error as "alive" (AUTH follows).
    wr.write_all(&protocol::command(&[b"PING"])).await?;
    let pong = read_line(&mut rd, &mut buf, &mut reader, timeout).await?;
    if !pong.starts_with('+')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(LinkError::Refused(format!(
            "Error reply to PING from master: '{pong}'"
        )));
    }
    shared.node.lock().log(
        LogLevel::Notice,
        "Master replied to PING, replication can continue...",
    );
    let (hs, steps) = protocol::handshake(
        auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
        myport,
        announce_ip.as_deref(),
    );
    wr.write_all(&hs).await?;
    for step in steps {
        let reply = read_line(&mut rd, &mut buf, &mut reader, timeout).await?;
        if !reply.starts_with('-') {
            continue;
        }
        match step {
            HandshakeStep::Auth => {
                return Err(LinkError::Refused(format!(
                    "Unable to AUTH to MASTER: {reply}"
                )))
            }
            HandshakeStep::Port => shared.node.lock().log(
                LogLevel::Notice,
                &format!(
                    "(Non critical) Master does not understand REPLCONF listening-port: {reply}"
                ),
            ),
            HandshakeStep::Ip => shared.node.lock().log(
                LogLevel::Notice,
                &format!("(Non critical) Master does not understand REPLCONF ip-address: {reply}"),
            ),
            HandshakeStep::Capa => shared.node.lock().log(
                LogLevel::Notice,
                &format!("(Non critical) Master does not understand REPLCONF capa: {reply}"),
            ),
        }
    }

    // PSYNC.
    let Some((replid, offset)) = shared.node.lock().repl.state.psync_args(generation) else {
        return Ok(());
    };
    {
        let mut n = shared.node.lock();
        if offset > 0 {
            n.log(
                LogLevel::Notice,
                &format!("Trying a partial resynchronization (request {replid}:{offset})."),
            );
        } else {
            n.log(
                LogLevel::Notice,
                "Partial resynchronization not possible (no cached master)",
            );
        }
    }
    wr.write_all(&protocol::psync(&replid, offset)).await?;
    let reply = read_line(&mut rd, &mut buf, &mut reader, timeout).await?;
    match protocol::parse_psync_reply(&reply) {
        PsyncReply::FullResync { replid, offset } => {
            {
                let mut n = shared.node.lock();
                if !n
                    .repl
                    .state
                    .full_resync_announced(generation, replid.clone(), offset, now_ms())
                {
                    return Ok(());
                }
                n.log(
                    LogLevel::Notice,
                    &format!("Full resync from master: {replid}:{offset}"),
                );
                // redis discards the cached master here: until the snapshot
                // is loaded we announce offset 0 (CLUSTER SLOTS hides us,
                // CLUSTER SHARDS says "loading").
                let offset = n.repl.state.core_offset();
                if let Some(c) = n.cluster.as_mut() {
                    c.set_repl_offset(offset);
                }
                n.drain(shared);
            }
            reader.expect_snapshot();
            let payload =
                receive_snapshot(shared, generation, &mut rd, &mut buf, &mut reader, timeout)
                    .await?;
            if !load_snapshot(shared, at, payload, &replid).await? {
                return Ok(());
            }
        }
        PsyncReply::Continue { replid } => {
            let mut n = shared.node.lock();
            let now = now_ms();
            let Some(changed) = n.repl.state.continued(generation, replid.clone(), now) else {
                return Ok(());
            };
            n.log(
                LogLevel::Notice,
                "Successful partial resynchronization with master.",
            );
            if changed {
                let text = format!(
                    "Master replication ID changed to {}",
                    replid.unwrap_or_default()
                );
                n.log(LogLevel::Notice, &text);
            }
            n.log(
                LogLevel::Notice,
                "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.",
            );
            let offset = n.repl.state.core_offset();
            if let Some(c) = n.cluster.as_mut() {
                c.set_repl_offset(offset);
                c.handle_master_link_up(now);
            }
            n.emit(EventKind::PartialSync {
                master: at.master.to_string(),
                offset,
            });
            n.emit(EventKind::ReplicationLinkUp {
                master: at.master.to_string(),
            });
            n.drain(shared);
        }
        PsyncReply::TryLater(text) => {
            return Err(LinkError::Refused(format!(
                "Master is currently unable to PSYNC but should be in the future: {text}"
            )))
        }
        PsyncReply::Error(text) => {
            return Err(LinkError::Refused(format!(
                "Unexpected reply to PSYNC from master: {text}"
            )))
        }
    }

    reader.expect_stream();
    stream_loop(
        shared,
        generation,
        &mut rd,
        &mut wr,
        &mut buf,
        &mut reader,
        timeout,
    )
    .await
}

/// Reads the snapshot whole (the stream that follows stays in `buf`).
async fn receive_snapshot(
    shared: &Arc<Shared>,
    generation: u64,
    rd: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    reader: &mut MasterReader,
    timeout: Duration,
) -> Result<Vec<u8>, LinkError> {
    let mut last_report = std::time::Instant::now();
    let mut logged_size = false;
    loop {
        match reader.next(buf)? {
            Some(Item::Payload(p)) => return Ok(p),
            Some(_) => {
                return Err(LinkError::Protocol(ProtocolError::Unexpected {
                    what: "data",
                    phase: "snapshot",
                }))
            }
            None => {}
        }
        let (total, read) = reader.progress();
        if !logged_size {
            if let Some(t) = total {
                shared.node.lock().log(
                    LogLevel::Notice,
                    &format!("MASTER <-> REPLICA sync: receiving {t} bytes from master to memory"),
                );
                logged_size = true;
            }
        }
        if last_report.elapsed() >= Duration::from_millis(100) {
            last_report = std::time::Instant::now();
            let mut n = shared.node.lock();
            if !n.repl.state.is_current(generation) {
                return Err(LinkError::Closed);
            }
            n.repl
                .state
                .transfer_progress(generation, total, read, now_ms());
        }
        read_some(rd, buf, timeout).await?;
    }
}

/// Parses the snapshot off the lock into a fresh data set, then swaps it in
/// under the lock. A payload that fails to parse changes nothing (the error
/// drops the link; the old data stays, as redis keeps it on a failed load).
/// `Ok(false)` if the link went stale meanwhile.
async fn load_snapshot(
    shared: &Arc<Shared>,
    at: &Attempt,
    payload: Vec<u8>,
    replid: &str,
) -> Result<bool, LinkError> {
    let size = payload.len();
    shared.node.lock().log(
        LogLevel::Notice,
        &format!("MASTER <-> REPLICA sync: Loading DB in memory ({size} bytes)"),
    );
    let pace = LoadPacer::new(Arc::clone(shared), at.generation);
    let parsed = tokio::task::spawn_blocking(move || {
        let mut pace = pace;
        rdb::file::load_db_paced(&payload, None, |read| pace.after_key(read))
    })
    .await
    .map_err(|e| LinkError::Refused(format!("loader task failed: {e}")))?;
    let (db, loaded) = parsed.map_err(LinkError::Load)?;
    let old = {
        let mut guard = shared.node.lock();
        let n = &mut *guard;
        if !n.repl.state.is_current(at.generation) {
            return Ok(false);
        }
        let now = now_ms();
        n.log(
            LogLevel::Notice,
            "MASTER <-> REPLICA sync: Flushing old data",
        );
        let old = n.db.replace_with(db, now);
        if loaded.functions_skipped > 0 {
            n.log(
                LogLevel::Warning,
                &format!(
                    "The master's RDB holds {} function libraries: hearsay-node runs no functions, they were skipped",
                    loaded.functions_skipped
                ),
            );
        }
        if loaded.empty_skipped > 0 {
            n.log(
                LogLevel::Warning,
                &format!("rdbLoadObject skipped {} empty keys", loaded.empty_skipped),
            );
        }
        let Some(offset) = n.repl.state.full_sync_done(at.generation, now) else {
            return Ok(false);
        };
        n.aof_after_full_sync(shared);
        if let Some(c) = n.cluster.as_mut() {
            c.set_repl_offset(offset);
            c.handle_master_link_up(now);
        }
        n.emit(EventKind::FullSync {
            master: at.master.to_string(),
            offset,
            keys: loaded.keys,
        });
        n.emit(EventKind::ReplicationLinkUp {
            master: at.master.to_string(),
        });
        n.log(
            LogLevel::Notice,
            &format!(
                "MASTER <-> REPLICA sync: Finished with success ({replid}:{offset}, {} keys)",
                loaded.keys
            ),
        );
        guard.drain(shared);
        old
    };
    // Freeing the old data set can take a while: not under the lock.
    tokio::task::spawn_blocking(move || drop(old));
    Ok(true)
}

/// How redis's loader looks from outside, for a load that runs off the lock
/// here while redis runs it on its only thread:
/// - redis serves nobody while loading until `loading-process-events-interval-bytes`
///   of the file are read (then it processes events, answering `-LOADING`),
///   so a small snapshot's load is never seen; ours becomes visible (INFO
///   `loading:1`, `-LOADING`) at that same point;
/// - `key-load-delay` (redis `debugDelay` per key): a positive value sleeps
///   that many microseconds, a negative one 1 us every `-value` keys (redis
///   draws that at random; the rate is the same).
///
/// CONFIG SET takes effect during the load, as the suite relies on: the
/// options are read again for every key while a delay is set, and every 1024
/// keys otherwise, so an unpaced load does not take the node lock per key.
struct LoadPacer {
    shared: Arc<Shared>,
    generation: u64,
    delay_us: i64,
    events_interval: u64,
    visible: bool,
    keys: u64,
}

impl LoadPacer {
    fn new(shared: Arc<Shared>, generation: u64) -> Self {
        let mut pace = LoadPacer {
            shared,
            generation,
            delay_us: 0,
            events_interval: 0,
            visible: false,
            keys: 0,
        };
        pace.reread();
        pace
    }

    fn reread(&mut self) {
        let n = self.shared.node.lock();
        let int = |name: &str| n.config.get(name).and_then(|v| v.parse::<i64>().ok());
        self.delay_us = int("key-load-delay").unwrap_or(0);
        self.events_interval = int("loading-process-events-interval-bytes")
            .map_or(2 * 1024 * 1024, |v| v.max(0).unsigned_abs());
    }

    fn after_key(&mut self, read: usize) {
        self.keys += 1;
        if self.delay_us != 0 || self.keys.is_multiple_of(1024) {
            self.reread();
        }
        if !self.visible && self.events_interval > 0 && read as u64 >= self.events_interval {
            self.visible = true;
            self.shared
                .node
                .lock()
                .repl
                .state
                .loading_started(self.generation);
        }
        let sleep_us = match self.delay_us {
            d if d > 0 => d.unsigned_abs(),
            d if d < 0 && self.keys.is_multiple_of(d.unsigned_abs()) => 1,
            _ => 0,
        };
        if sleep_us > 0 {
            std::thread::sleep(Duration::from_micros(sleep_us));
        }
    }
}

/// Follows the stream: applies commands, acks every second and on GETACK.
async fn stream_loop(
    shared: &Arc<Shared>,
    generation: u64,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    buf: &mut BytesMut,
    reader: &mut MasterReader,
    timeout: Duration,
) -> Result<(), LinkError> {
    let mut ack_timer = tokio::time::interval(ACK_PERIOD);
    ack_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A MULTI .. EXEC block whose EXEC has not arrived yet.
    let mut txn: Option<Pending> = None;
    let mut fresh = 0usize;
    loop {
        // The buffer may already hold stream commands (they can arrive in
        // the same read as the end of the snapshot).
        let acks = match apply_stream(shared, generation, reader, buf, &mut txn, fresh)? {
            None => return Ok(()),
            Some(acks) => acks,
        };
        for ack in acks {
            wr.write_all(&ack).await?;
        }
        let periodic = tokio::select! {
            read = read_some(rd, buf, timeout) => {
                fresh = read?;
                false
            }
            _ = ack_timer.tick() => {
                fresh = 0;
                true
            }
        };
        if periodic {
            // The periodic ack goes out even if nothing changed: the
            // master's `lag` and repl-timeout count on it.
            let ack = shared.node.lock().repl.state.ack_bytes(generation);
            match ack {
                Some(a) => wr.write_all(&a).await?,
                None => return Ok(()),
            }
        }
    }
}

fn is_command(args: &[Bytes], name: &[u8]) -> bool {
    args.first().is_some_and(|a| a.eq_ignore_ascii_case(name))
}

/// Stream commands with their raw bytes.
type Pending = protocol::StreamUnit;

/// Applies every complete stream unit in `buf` (a MULTI .. EXEC block only
/// once its EXEC is in: `txn` carries it across reads). The offset counts
/// what was applied. `Ok(None)` if the link is stale; else the ACKs owed
/// for `REPLCONF GETACK`s, each with the offset before that GETACK.
fn apply_stream(
    shared: &Arc<Shared>,
    generation: u64,
    reader: &mut MasterReader,
    buf: &mut BytesMut,
    txn: &mut Option<Pending>,
    fresh: usize,
) -> Result<Option<Vec<Vec<u8>>>, LinkError> {
    let mut units: Vec<Pending> = Vec::new();
    while let Some(item) = reader.next(buf)? {
        let Item::Command { args, raw } = item else {
            return Err(LinkError::Protocol(ProtocolError::Unexpected {
                what: "status line",
                phase: "stream",
            }));
        };
        match txn.as_mut() {
            Some(block) => {
                let exec = args.len() == 1 && is_command(&args, b"exec");
                block.push((args, raw));
                if exec {
                    units.extend(txn.take());
                }
            }
            None if args.len() == 1 && is_command(&args, b"multi") => {
                *txn = Some(vec![(args, raw)])
            }
            None => units.push(vec![(args, raw)]),
        }
    }
    let mut guard = shared.node.lock();
    let n = &mut *guard;
    if !n.repl.state.is_current(generation) {
        return Ok(None);
    }
    let now = now_ms();
    n.repl.state.received(generation, fresh, now);
    let mut acks = Vec::new();
    for unit in units {
        let raw = protocol::unit_bytes(&unit);
        for (args, _) in unit {
            if is_command(&args, b"replconf") {
                if args
                    .get(1)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"getack"))
                {
                    // The ack states the offset before this GETACK (redis
                    // updates its offset after the command ran).
                    acks.extend(n.repl.state.ack_bytes(generation));
                }
                continue;
            }
            let bare = |name: &[u8]| args.len() == 1 && is_command(&args, name);
            if bare(b"ping") {
                continue;
            }
            if is_command(&args, b"select") {
                if args.get(1).is_some_and(|d| &d[..] != b"0") {
                    n.log(
                        LogLevel::Warning,
                        "The master selected a database other than 0: hearsay-node keeps only DB 0",
                    );
                }
                continue;
            }
            // The AOF keeps MULTI/EXEC so a restart never loads half a block.
            n.aof_append(&args);
            if !bare(b"multi") && !bare(b"exec") {
                n.apply_stream_command(args);
            }
        }
        n.repl.state.applied(generation, raw);
    }
    if let Some(c) = n.cluster.as_mut() {
        c.handle_master_activity(now);
    }
    guard.drain(shared);
    Ok(Some(acks))
}
