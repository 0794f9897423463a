//! Replication I/O: the tasks and sockets around the sans-IO
//! [`crate::replication::Replication`] state.
//!
//! - Master side: a replica connects to our client port and sends
//!   `HEARSAY.SYNC`; the client task hands the socket over to
//!   [`serve_replica`]. Under the node lock we register the replica, encode a
//!   snapshot and queue it, so every write applied after that lock release is
//!   queued behind it in apply order. A writer task drains the queue to the
//!   socket; a reader task takes `REPLCONF ACK`s (they wake WAIT).
//! - Replica side: [`Node::sync_replication_role`] (run at the end of every
//!   `drain`) follows the core's `replication_master()`: it starts one link
//!   task per master, which connects, loads the snapshot, applies the stream
//!   and acks; on a broken link it retries every second while the core still
//!   names that master. A generation number keeps a superseded task from
//!   touching anything.

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
use crate::replication::protocol::{self, Item, ProtocolError, StreamDecoder};
use crate::replication::{snapshot, ReplicaId, Replication, RoleChange};
use crate::wire::NodeName;

/// redis `repl-timeout` (60 s): a link with no traffic for this long is dead.
const REPL_TIMEOUT: Duration = Duration::from_secs(60);
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
    #[error("no data from the master for {}s (repl-timeout)", REPL_TIMEOUT.as_secs())]
    Timeout,
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

/// The master's handle on one replica connection.
struct ReplicaHandle {
    tx: mpsc::UnboundedSender<Bytes>,
    /// Bytes queued but not yet written (for the output limit).
    queued: Arc<AtomicUsize>,
    tasks: Vec<AbortHandle>,
    /// `ip:port` for log lines.
    addr: String,
}

/// The shell's replication state: the sans-IO state plus task handles.
pub(super) struct ReplShell {
    pub(super) state: Replication,
    replicas: HashMap<ReplicaId, ReplicaHandle>,
    /// The replica-side link task of the current generation.
    link_task: Option<AbortHandle>,
    last_ping_ms: u64,
}

impl ReplShell {
    pub(super) fn new(now: u64) -> ReplShell {
        ReplShell {
            state: Replication::new(random_replid()),
            replicas: HashMap::new(),
            link_task: None,
            last_ping_ms: now,
        }
    }
}

/// 40 random hex characters (redis `getRandomHexChars`).
fn random_replid() -> String {
    format!(
        "{:016x}{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

impl Node {
    fn emit(&mut self, kind: EventKind) {
        self.write_event(&Event::from(kind));
        self.flush_events();
    }

    /// A replica can't take a sync request; neither can a node whose core
    /// says it is a replica but whose master is not known yet.
    fn refuse_sync(&self) -> Option<&'static str> {
        if self.cluster.is_none() {
            return Some("ERR HEARSAY.SYNC needs cluster mode");
        }
        if self.repl.state.is_replica() || self.is_replica() {
            return Some("ERR HEARSAY.SYNC: this node is a replica");
        }
        None
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
        let hide = self.repl.state.is_replica() || self.is_replica() || self.paused(now);
        commands::set_replica_mode(&mut self.db, hide);
    }

    /// Appends applied writes to the replication stream, in order.
    /// The AOF gets the same bytes (encoded here only when no replica
    /// needed them).
    pub(super) fn feed_writes(&mut self, writes: &[Vec<Bytes>]) {
        for w in writes {
            let bytes = self.repl.state.feed(w);
            if let Some(aof) = self.aof.as_mut() {
                match &bytes {
                    Some(b) => aof.append_encoded(b),
                    None => aof.append_command(w),
                }
            }
            if let Some(bytes) = bytes {
                self.fan_out(bytes);
            }
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
            let queued = h.queued.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
            if queued > OUTPUT_LIMIT || h.tx.send(bytes.clone()).is_err() {
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

    fn drop_replica(&mut self, id: ReplicaId) -> bool {
        let Some(h) = self.repl.replicas.remove(&id) else {
            return false;
        };
        for t in h.tasks {
            t.abort();
        }
        self.repl.state.remove_replica(id);
        let text = format!("Connection with replica {} lost.", h.addr);
        self.log(LogLevel::Notice, &text);
        true
    }

    /// The 1 s part of redis `replicationCron` that runs on masters: a PING
    /// into the stream every repl-ping-replica-period, except while paused
    /// (the replica must be able to reach the paused offset exactly).
    pub(super) fn replication_cron(&mut self, now: u64) {
        let period_s = self
            .config
            .get("repl-ping-replica-period")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(10)
            .max(1);
        if now.saturating_sub(self.repl.last_ping_ms) < period_s * 1000 {
            return;
        }
        self.repl.last_ping_ms = now;
        if self.paused(now) {
            return;
        }
        if let Some(ping) = self.repl.state.feed_ping() {
            self.fan_out(ping);
        }
    }

    /// Follows the core's `replication_master()`; called at the end of every
    /// drain. Also keeps the core's offset current.
    pub(super) fn sync_replication_role(&mut self, shared: &Arc<Shared>) {
        let now = now_ms();
        let target = self.cluster.as_ref().and_then(|c| c.replication_master());
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

    fn stop_link(&mut self, old: NodeName, was_up: bool, now: u64) {
        if let Some(t) = self.repl.link_task.take() {
            t.abort();
        }
        if was_up {
            self.log(LogLevel::Notice, "Connection with master lost.");
            if let Some(c) = self.cluster.as_mut() {
                c.handle_master_link_down(now);
            }
            self.emit(EventKind::ReplicationLinkDown {
                master: old.to_string(),
            });
        }
    }

    fn start_link(
        &mut self,
        shared: &Arc<Shared>,
        generation: u64,
        master: NodeName,
        host: String,
        port: u16,
    ) {
        if let Some(t) = self.repl.link_task.take() {
            t.abort();
        }
        let text = format!("Connecting to MASTER {host}:{port}");
        self.log(LogLevel::Notice, &text);
        let task = tokio::spawn(replica_link(shared.clone(), generation, master, host, port));
        self.repl.link_task = Some(task.abort_handle());
    }
}

// ------------------------------------------------------------ master side

/// Serves a replica on a client connection that sent `HEARSAY.SYNC`.
pub(super) async fn serve_replica(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    inbuf: BytesMut,
    args: Vec<Bytes>,
) {
    let ip = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let req = match protocol::parse_sync_request(&args) {
        Ok(r) => r,
        Err(e) => {
            let _ = stream.write_all(format!("-ERR {e}\r\n").as_bytes()).await;
            return;
        }
    };
    if let Err((mut stream, text)) = register_replica(&shared, stream, inbuf, req, ip) {
        let _ = stream.write_all(format!("-{text}\r\n").as_bytes()).await;
    }
}

/// Under the lock: checks we may serve, registers the replica, queues the
/// header and snapshot, and starts its tasks. Every write applied after this
/// lock release is queued behind the snapshot, in apply order.
fn register_replica(
    shared: &Arc<Shared>,
    stream: TcpStream,
    inbuf: BytesMut,
    req: protocol::SyncRequest,
    ip: String,
) -> Result<(), (TcpStream, &'static str)> {
    let addr = format!("{ip}:{}", req.listening_port);
    let mut guard = shared.node.lock();
    let n = &mut *guard;
    if let Some(text) = n.refuse_sync() {
        return Err((stream, text));
    }
    let (rd, wr) = stream.into_split();
    let now = now_ms();
    n.log(
        LogLevel::Notice,
        &format!("Replica {addr} asks for synchronization"),
    );
    n.log(
        LogLevel::Notice,
        &format!("Full resync requested by replica {addr}"),
    );
    let id = n
        .repl
        .state
        .add_replica(req.replica_id, ip, req.listening_port, now);
    let offset = n.repl.state.offset();
    let snap = snapshot::encode(&mut n.db, now);
    let mut first = protocol::fullresync_header(n.repl.state.replid(), offset);
    first.extend_from_slice(&snap.bytes);
    first.extend_from_slice(&protocol::snapshot_end(snap.keys));
    n.log(
        LogLevel::Notice,
        &format!(
            "Streaming a snapshot of {} keys ({} bytes) to replica {addr} at offset {offset}",
            snap.keys,
            first.len()
        ),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(first.len()));
    let _ = tx.send(Bytes::from(first));
    let writer = tokio::spawn(write_replica(shared.clone(), id, wr, rx, queued.clone()));
    let reader = tokio::spawn(read_replica(shared.clone(), id, rd, inbuf));
    n.repl.replicas.insert(
        id,
        ReplicaHandle {
            tx,
            queued,
            tasks: vec![writer.abort_handle(), reader.abort_handle()],
            addr,
        },
    );
    guard.drain(shared);
    Ok(())
}

/// Writes the replica's queue (snapshot, then stream) to its socket,
/// coalescing what has piled up into one write.
async fn write_replica(
    shared: Arc<Shared>,
    id: ReplicaId,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        let written = match rx.try_recv() {
            Err(_) => wr.write_all(&first).await.map(|_| first.len()),
            Ok(second) => {
                batch.clear();
                batch.extend_from_slice(&first);
                batch.extend_from_slice(&second);
                while batch.len() < COALESCE {
                    match rx.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                wr.write_all(&batch).await.map(|_| batch.len())
            }
        };
        match written {
            Ok(len) => {
                queued.fetch_sub(len, Ordering::Relaxed);
            }
            Err(_) => break,
        }
    }
    replica_gone(&shared, id);
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
                Ok(Some(offset)) => acks.push(offset),
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
            let now = now_ms();
            if let Some(synced) = n.repl.state.handle_ack(id, offset, now) {
                let (addr, node) = match (n.repl.replicas.get(&id), n.repl.state.replica(id)) {
                    (Some(h), Some(r)) => (h.addr.clone(), r.node.clone()),
                    _ => (String::new(), String::new()),
                };
                n.log(
                    LogLevel::Notice,
                    &format!("Synchronization with replica {addr} succeeded"),
                );
                n.emit(EventKind::ReplicaSynced {
                    replica: node,
                    offset: synced,
                });
            }
            drop(n);
            shared.acks.notify_waiters();
        }
        match tokio::time::timeout(REPL_TIMEOUT, rd.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Ok(_)) | Ok(Err(_)) => break,
            Err(_) => {
                shared.node.lock().log(
                    LogLevel::Warning,
                    "Disconnecting timedout replica (streaming sync)",
                );
                break;
            }
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

/// The replica's link to one master, for one generation: connect, sync,
/// stream; on failure wait a second and start over.
async fn replica_link(
    shared: Arc<Shared>,
    generation: u64,
    master: NodeName,
    host: String,
    port: u16,
) {
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(RETRY_DELAY).await;
        }
        first = false;
        let (myid, myport) = {
            let mut n = shared.node.lock();
            if !n.repl.state.link_connecting(generation) {
                return;
            }
            let myid = n
                .cluster
                .as_ref()
                .map(|c| c.myself().to_string())
                .unwrap_or_default();
            let myport = n.config.port();
            n.log(LogLevel::Notice, "MASTER <-> REPLICA sync started");
            (myid, myport)
        };
        let result = run_link(&shared, generation, master, &host, port, &myid, myport).await;
        let mut n = shared.node.lock();
        let now = now_ms();
        let Some(was_up) = n.repl.state.link_lost(generation, now) else {
            return;
        };
        let reason = match &result {
            Ok(()) => return,
            Err(e) => e.to_string(),
        };
        if was_up {
            n.log(LogLevel::Notice, "Connection with master lost.");
            if let Some(c) = n.cluster.as_mut() {
                c.handle_master_link_down(now);
            }
            n.emit(EventKind::ReplicationLinkDown {
                master: master.to_string(),
            });
        }
        n.log(
            LogLevel::Warning,
            &format!("Replication link to MASTER {host}:{port}: {reason}"),
        );
        n.drain(&shared);
    }
}

/// One attempt: returns `Ok(())` only when the link became stale (another
/// generation took over), else why it ended.
async fn run_link(
    shared: &Arc<Shared>,
    generation: u64,
    master: NodeName,
    host: &str,
    port: u16,
    myid: &str,
    myport: u16,
) -> Result<(), LinkError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| LinkError::ConnectTimeout)??;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(&protocol::sync_request(myid, myport)).await?;

    let mut dec = StreamDecoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut header: Option<(String, u64)> = None;
    let mut commands_in: Vec<Vec<Bytes>> = Vec::new();
    // Header and snapshot. The snapshot is kept aside and applied at once
    // when complete, so clients read the old data until then (as redis
    // serves its old dataset while an RDB downloads to disk).
    let keys = 'snapshot: loop {
        read_some(&mut rd, &mut buf).await?;
        while let Some(item) = dec.next(&mut buf)? {
            match item {
                Item::FullResync { replid, offset } => {
                    let mut n = shared.node.lock();
                    if !n.repl.state.link_transfer(generation, now_ms()) {
                        return Ok(());
                    }
                    n.log(
                        LogLevel::Notice,
                        &format!("Full resync from master: {replid}:{offset}"),
                    );
                    n.drain(shared);
                    header = Some((replid, offset));
                }
                Item::Command { args, .. } => commands_in.push(args),
                Item::SnapshotEnd { keys } => break 'snapshot keys,
            }
        }
    };
    let Some((replid, offset)) = header else {
        // The decoder only yields SnapshotEnd after a header.
        return Err(LinkError::Protocol(ProtocolError::Unexpected {
            what: "end marker",
            phase: "header",
        }));
    };
    if !load_snapshot(
        shared,
        generation,
        master,
        &replid,
        offset,
        keys,
        commands_in,
    ) {
        return Ok(());
    }

    // The stream. The first ack tells the master the snapshot is loaded.
    let mut ack_timer = tokio::time::interval(ACK_PERIOD);
    ack_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut processed;
    let mut ack_due = true;
    // A MULTI .. EXEC block whose EXEC has not arrived yet.
    let mut txn = None;
    loop {
        // The buffer may already hold stream commands (they can arrive in
        // the same read as the end of the snapshot).
        match apply_stream(shared, generation, &mut dec, &mut buf, &mut txn)? {
            None => return Ok(()),
            Some((offset, data)) => {
                processed = offset;
                // Ack soon after data (WAIT is waiting for it); a ping alone
                // waits for the timer.
                ack_due |= data;
            }
        }
        if ack_due {
            wr.write_all(&protocol::ack(processed)).await?;
        }
        ack_due = tokio::select! {
            read = read_some(&mut rd, &mut buf) => {
                read?;
                false
            }
            // The periodic ack goes out even if nothing changed: the
            // master's `lag` and repl-timeout count on it.
            _ = ack_timer.tick() => true,
        };
    }
}

async fn read_some(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<(), LinkError> {
    match tokio::time::timeout(REPL_TIMEOUT, rd.read_buf(buf)).await {
        Err(_) => Err(LinkError::Timeout),
        Ok(Err(e)) => Err(LinkError::Io(e)),
        Ok(Ok(0)) => Err(LinkError::Closed),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Replaces our data with the snapshot, under the lock. False if stale.
fn load_snapshot(
    shared: &Arc<Shared>,
    generation: u64,
    master: NodeName,
    replid: &str,
    offset: u64,
    keys: u64,
    commands_in: Vec<Vec<Bytes>>,
) -> bool {
    let mut guard = shared.node.lock();
    let n = &mut *guard;
    if !n.repl.state.is_current(generation) {
        return false;
    }
    let now = now_ms();
    n.log(
        LogLevel::Notice,
        "MASTER <-> REPLICA sync: Flushing old data",
    );
    n.db.flush_all(now);
    n.log(
        LogLevel::Notice,
        "MASTER <-> REPLICA sync: Loading DB in memory",
    );
    for args in commands_in {
        n.apply_stream_command(args);
    }
    n.repl.state.full_sync_done(generation, replid, offset, now);
    n.aof_after_full_sync(shared);
    if let Some(c) = n.cluster.as_mut() {
        c.set_repl_offset(offset);
        c.handle_master_link_up(now);
    }
    n.emit(EventKind::FullSync {
        master: master.to_string(),
        offset,
        keys,
    });
    n.emit(EventKind::ReplicationLinkUp {
        master: master.to_string(),
    });
    n.log(
        LogLevel::Notice,
        "MASTER <-> REPLICA sync: Finished with success",
    );
    guard.drain(shared);
    true
}

fn is_command(args: &[Bytes], name: &[u8]) -> bool {
    args.len() == 1 && args[0].eq_ignore_ascii_case(name)
}

/// Stream commands with their encoded lengths.
type Pending = Vec<(Vec<Bytes>, usize)>;

/// Applies every complete stream command in `buf`; a MULTI .. EXEC block is
/// applied only once its EXEC is in (`txn` carries it across reads). The
/// offset counts what was applied. `Ok(None)` if the link is stale; else the
/// processed offset and whether anything but pings came.
fn apply_stream(
    shared: &Arc<Shared>,
    generation: u64,
    dec: &mut StreamDecoder,
    buf: &mut BytesMut,
    txn: &mut Option<Pending>,
) -> Result<Option<(u64, bool)>, LinkError> {
    let mut items = Vec::new();
    while let Some(item) = dec.next(buf)? {
        match item {
            Item::Command { args, len } => match txn.as_mut() {
                Some(block) => {
                    let exec = is_command(&args, b"exec");
                    block.push((args, len));
                    if exec {
                        items.append(block);
                        *txn = None;
                    }
                }
                None if is_command(&args, b"multi") => *txn = Some(vec![(args, len)]),
                None => items.push((args, len)),
            },
            // The decoder refuses status lines once streaming.
            Item::FullResync { .. } | Item::SnapshotEnd { .. } => {
                return Err(LinkError::Protocol(ProtocolError::Unexpected {
                    what: "status line",
                    phase: "stream",
                }))
            }
        }
    }
    let mut guard = shared.node.lock();
    let n = &mut *guard;
    if !n.repl.state.is_current(generation) {
        return Ok(None);
    }
    let now = now_ms();
    let mut data = false;
    for (args, len) in items {
        let control = ["ping", "multi", "exec"]
            .iter()
            .any(|c| is_command(&args, c.as_bytes()));
        if !control {
            data = true;
        }
        // The AOF keeps MULTI/EXEC so a restart never loads half a block.
        if !is_command(&args, b"ping") {
            n.aof_append(&args);
        }
        if !control {
            n.apply_stream_command(args);
        }
        n.repl.state.applied(generation, len);
    }
    n.repl.state.activity(generation, now);
    if let Some(c) = n.cluster.as_mut() {
        c.handle_master_activity(now);
    }
    let offset = n.repl.state.core_offset();
    guard.drain(shared);
    Ok(Some((offset, data)))
}
