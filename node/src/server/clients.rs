//! The registry of client connections (redis `server.clients`): each
//! connection's command-layer state, its pending output and unparsed input,
//! and what other connections may do to it (deliver a Pub/Sub message, kill
//! it, release it from a pause). Everything here sits behind the node lock;
//! a connection's task only holds its socket and its slot number.
//!
//! Memory: an idle connection holds no buffer. Reads start in one shared
//! scratch buffer and replies are built in another (one node, one lock, one
//! user at a time); only a partial request, or output the socket would not
//! take, is copied into buffers of the connection's own, which are freed as
//! soon as they empty.

use std::collections::HashMap;
use std::task::Waker;

use bytes::{Bytes, BytesMut};

use crate::commands::{
    self, kill_reply, ClientAdmin, ClientKind, ClientState, ConnInfo, KillFilter, PauseKind,
};
use crate::config::{Config, ObufLimit};
use crate::pubsub::{self, PubSub};
use crate::resp::{self, Frame, RequestLimits, RequestParser};

/// Size of one read (redis `PROTO_IOBUF_LEN`).
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// Why and how a connection is to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Close {
    No,
    /// After the pending output is written (QUIT, CLIENT KILL of oneself,
    /// a protocol error).
    AfterReply,
    /// At once, dropping pending output (CLIENT KILL, output buffer limits,
    /// idle timeout).
    Asap,
}

/// A blocked client (WAIT, XREAD BLOCK), as CLIENT UNBLOCK sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unblock {
    No,
    Timeout,
    Error,
}

/// One connection.
pub(super) struct Entry {
    pub id: u64,
    /// `None` while the connection's own requests run (the command layer
    /// holds it then).
    pub state: Option<Box<ClientState>>,
    /// The protocol messages to this client are encoded in (kept beside the
    /// state so a push can be encoded while the state is out).
    pub resp3: bool,
    /// Output not yet written to the socket.
    pub out: BytesMut,
    /// Largest pending output seen recently (CLIENT LIST `rbp`).
    pub out_peak: usize,
    /// When the pending output first passed the soft limit (Unix s).
    pub soft_limit_since: Option<u64>,
    /// Input not yet parsed into a complete request.
    pub qbuf: BytesMut,
    pub parser: RequestParser,
    pub close: Close,
    /// Wakes the connection's task (output to write, killed, unpaused).
    pub waker: Option<Waker>,
    /// Last read or write, Unix ms (CLIENT LIST `idle`, `timeout`).
    pub last_interaction_ms: u64,
    /// A request held by a pause, to run again when it ends.
    pub postponed: Option<Vec<Bytes>>,
    /// Blocked in WAIT or a blocking command (flag `b`).
    pub blocked: bool,
    pub unblock: Unblock,
    /// The master offset right after this client's last replicated write
    /// (redis `c->woff`): what its WAIT waits for.
    pub woff: u64,
    /// What it announced with `REPLCONF` (a replica-to-be).
    pub repl: super::replication::ReplConf,
    /// Listed in `Clients::deferred`: its replies go out at the end of the
    /// event-loop turn.
    pub deferred: bool,
}

impl Entry {
    fn new(id: u64, state: ClientState, now_ms: u64) -> Entry {
        Entry {
            id,
            state: Some(Box::new(state)),
            resp3: false,
            out: BytesMut::new(),
            out_peak: 0,
            soft_limit_since: None,
            qbuf: BytesMut::new(),
            parser: RequestParser::new(),
            close: Close::No,
            waker: None,
            last_interaction_ms: now_ms,
            postponed: None,
            blocked: false,
            unblock: Unblock::No,
            woff: 0,
            repl: Default::default(),
            deferred: false,
        }
    }

    pub fn wake(&mut self) {
        if let Some(w) = self.waker.as_ref() {
            w.wake_by_ref();
        }
    }

    /// CLIENT LIST's view of this connection's buffers.
    pub fn conn_info(&self, now_ms: u64, argv_mem: usize) -> ConnInfo {
        let pending = self.out.len();
        ConnInfo {
            idle_s: now_ms.saturating_sub(self.last_interaction_ms) / 1000,
            qbuf: self.qbuf.len(),
            qbuf_free: self.qbuf.capacity() - self.qbuf.len(),
            argv_mem,
            rbs: self.out.capacity(),
            rbp: self.out_peak,
            obl: pending.min(READ_CHUNK),
            oll: pending.saturating_sub(READ_CHUNK).div_ceil(READ_CHUNK),
            omem: pending.saturating_sub(READ_CHUNK),
            tot_mem: std::mem::size_of::<Entry>()
                + std::mem::size_of::<ClientState>()
                + self.qbuf.capacity()
                + self.out.capacity()
                + argv_mem,
            events: if pending > 0 { "rw" } else { "r" },
            blocked: self.blocked || self.postponed.is_some(),
            close_asap: self.close == Close::Asap,
            close_after_reply: self.close == Close::AfterReply,
        }
    }
}

/// A client pause by purpose (redis keeps one per purpose and applies the
/// most restrictive): CLIENT PAUSE's, and a manual failover's (WRITE, told
/// by the cluster core each time it is checked).
#[derive(Clone, Copy, Debug, Default)]
struct ClientPause {
    /// (ALL?, until Unix ms)
    by_command: Option<(bool, u64)>,
}

/// The client limits from the config, parsed once per change (they are
/// read on every request).
#[derive(Clone, Debug, Default)]
pub(super) struct Limits {
    pub request: RequestLimits,
    pub obuf: [ObufLimit; 3],
    pub query_buffer: usize,
    pub timeout_s: u64,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            request: RequestLimits {
                max_bulk_len: config.proto_max_bulk_len(),
                ..RequestLimits::default()
            },
            obuf: config.obuf_limits(),
            query_buffer: config.query_buffer_limit(),
            timeout_s: config.idle_timeout_s(),
        }
    }
}

/// All client connections of the node.
#[derive(Default)]
pub(super) struct Clients {
    /// The config's client limits.
    pub limits: Limits,
    entries: Vec<Option<Box<Entry>>>,
    free: Vec<usize>,
    by_id: HashMap<u64, usize>,
    next_id: u64,
    pub pubsub: PubSub,
    pause: ClientPause,
    /// Entries with a postponed request.
    postponed: usize,
    /// Reused for reads that start at a request boundary.
    pub scratch_in: Vec<u8>,
    /// Reused for the replies of one batch.
    pub scratch_out: BytesMut,
    /// INFO clients' client_recent_max_input_buffer / _output_buffer.
    pub recent_max_input: usize,
    pub recent_max_output: usize,
    /// The second of the last once-a-second pass.
    pub last_cron_s: u64,
    /// Most connections seen since memory was last given back.
    pub peak_since_trim: usize,
    /// Replies are written once per event-loop turn (the runtime calls
    /// `server::before_park`), not at the end of each client's pass.
    pub defer_writes: bool,
    /// Connections with replies waiting for the end of the turn.
    pub deferred: Vec<usize>,
}

impl Clients {
    pub fn new(config: &Config) -> Clients {
        Clients {
            limits: Limits::from_config(config),
            next_id: 1,
            scratch_in: vec![0; READ_CHUNK],
            ..Clients::default()
        }
    }

    /// Connected clients (INFO connected_clients).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Registers a new connection; returns its slot.
    pub fn add(&mut self, mut state: ClientState, now_ms: u64) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        state.id = id;
        let entry = Box::new(Entry::new(id, state, now_ms));
        let slot = match self.free.pop() {
            Some(s) => {
                self.entries[s] = Some(entry);
                s
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    /// Takes a connection out of the registry (it closed, or became a
    /// replication link). The caller cleans up its state.
    pub fn remove(&mut self, slot: usize) -> Option<Box<Entry>> {
        let entry = self.entries.get_mut(slot)?.take()?;
        self.by_id.remove(&entry.id);
        if entry.postponed.is_some() {
            self.postponed -= 1;
        }
        self.free.push(slot);
        if self.by_id.is_empty() {
            // Give the slab and the index back once everyone left.
            self.entries = Vec::new();
            self.free = Vec::new();
            self.by_id = HashMap::new();
        }
        Some(entry)
    }

    pub fn get(&mut self, slot: usize) -> Option<&mut Entry> {
        self.entries.get_mut(slot)?.as_deref_mut()
    }

    pub fn slot_of(&self, id: u64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    fn by_id(&mut self, id: u64) -> Option<&mut Entry> {
        let slot = self.slot_of(id)?;
        self.get(slot)
    }

    pub fn set_postponed(&mut self, slot: usize, args: Vec<Bytes>) {
        if let Some(e) = self.get(slot) {
            if e.postponed.replace(args).is_none() {
                self.postponed += 1;
            }
        }
    }

    pub fn take_postponed(&mut self, slot: usize) -> Option<Vec<Bytes>> {
        let args = self.get(slot)?.postponed.take()?;
        self.postponed -= 1;
        Some(args)
    }

    // ---- pause ----

    /// The pause in force at `now`, given the failover's write pause.
    pub fn pause_kind(&self, now_ms: u64, failover_until: Option<u64>) -> PauseKind {
        let mut kind = PauseKind::Off;
        if let Some((all, until)) = self.pause.by_command {
            // redis expires a pause once its end is in the past.
            if until >= now_ms {
                kind = if all {
                    PauseKind::All
                } else {
                    PauseKind::Write
                };
            }
        }
        if failover_until.is_some_and(|t| now_ms < t) && kind == PauseKind::Off {
            kind = PauseKind::Write;
        }
        kind
    }

    /// CLIENT PAUSE: an existing pause is only ever extended and made
    /// stricter (redis `pauseClients`).
    pub fn pause(&mut self, all: bool, until_ms: u64) {
        self.pause.by_command = Some(match self.pause.by_command {
            Some((a, u)) => (a || all, u.max(until_ms)),
            None => (all, until_ms),
        });
    }

    pub fn unpause(&mut self) {
        self.pause.by_command = None;
        self.wake_postponed();
    }

    /// Some client has a request held by a pause.
    pub fn has_postponed(&self) -> bool {
        self.postponed > 0
    }

    /// Once the pause has lapsed or loosened, lets held requests run again
    /// (they are held once more if the pause still covers them).
    pub fn release_postponed(&mut self, kind: PauseKind) {
        if self.postponed == 0 || kind == PauseKind::All {
            return;
        }
        if kind == PauseKind::Off {
            self.pause.by_command = None;
        }
        self.wake_postponed();
    }

    fn wake_postponed(&mut self) {
        for e in self.entries.iter_mut().flatten() {
            if e.postponed.is_some() {
                e.wake();
            }
        }
    }

    // ---- output ----

    /// Appends a push or reply for a connection other than the running one
    /// and wakes it; enforces the output buffer limits.
    pub fn push_to(
        &mut self,
        slot: usize,
        f: impl FnOnce(&mut BytesMut, bool),
        limits: &[ObufLimit; 3],
        now_ms: u64,
    ) -> Option<String> {
        let e = self.get(slot)?;
        if e.close == Close::Asap {
            return None;
        }
        f(&mut e.out, e.resp3);
        e.out_peak = e.out_peak.max(e.out.len());
        e.wake();
        check_output_limits(e, limits, now_ms)
    }

    // ---- listing and killing ----

    /// CLIENT LIST text for the matching connections, in ID order. `me` is
    /// the running client (its state is out of the registry).
    pub fn list(
        &mut self,
        req_kind: Option<ClientKind>,
        ids: Option<&[u64]>,
        me: &ClientState,
        argv_mem: usize,
        now_ms: u64,
    ) -> String {
        let mut order: Vec<(u64, usize)> = match ids {
            Some(ids) => ids
                .iter()
                .filter_map(|id| self.slot_of(*id).map(|s| (*id, s)))
                .collect(),
            None => {
                let mut v: Vec<(u64, usize)> = self.by_id.iter().map(|(&id, &s)| (id, s)).collect();
                v.sort_unstable();
                v
            }
        };
        if ids.is_none() {
            order.dedup();
        }
        let mut out = String::new();
        for (id, slot) in order {
            let Some(e) = self.get(slot) else { continue };
            let (state, argv): (&ClientState, usize) = match e.state.as_deref() {
                Some(s) => (s, 0),
                None if id == me.id => (me, argv_mem),
                None => continue,
            };
            if req_kind.is_some_and(|k| k != state.kind()) {
                continue;
            }
            out.push_str(&state.info_line(now_ms, &e.conn_info(now_ms, argv)));
            out.push('\n');
        }
        out
    }

    /// CLIENT KILL: marks the matching connections to close; the running
    /// client is closed after its reply. Returns how many matched.
    pub fn kill(&mut self, filter: &KillFilter, me: &mut ClientState) -> usize {
        let mut killed = 0;
        for e in self.entries.iter_mut().flatten() {
            match e.state.as_deref() {
                Some(s) if filter.matches(s) => {
                    e.close = Close::Asap;
                    e.wake();
                    killed += 1;
                }
                None if e.id == me.id && !filter.skipme && filter.matches(me) => {
                    me.close_after_reply = true;
                    killed += 1;
                }
                _ => {}
            }
        }
        killed
    }

    /// Carries out a CLIENT LIST/KILL/PAUSE/UNPAUSE/UNBLOCK.
    pub fn admin(&mut self, req: ClientAdmin, me: &mut ClientState, now_ms: u64) -> Frame {
        match req {
            ClientAdmin::List {
                kind,
                ids,
                argv_mem,
            } => Frame::Verbatim(self.list(kind, ids.as_deref(), me, argv_mem, now_ms)),
            ClientAdmin::Kill { filter, old_style } => {
                let n = self.kill(&filter, me);
                kill_reply(n, old_style)
            }
            ClientAdmin::Pause { until_ms, all } => {
                self.pause(all, until_ms);
                Frame::ok()
            }
            ClientAdmin::Unpause => {
                self.unpause();
                Frame::ok()
            }
            ClientAdmin::Unblock { id, error } => match self.by_id(id) {
                Some(e) if e.blocked && e.unblock == Unblock::No => {
                    e.unblock = if error {
                        Unblock::Error
                    } else {
                        Unblock::Timeout
                    };
                    e.wake();
                    Frame::Integer(1)
                }
                _ => Frame::Integer(0),
            },
        }
    }

    // ---- pub/sub ----

    /// Delivers a message to local subscribers (`me`: the running client,
    /// whose entry has no state). Returns the receivers and any log lines
    /// about clients closed for their output buffer.
    pub fn deliver(
        &mut self,
        channel: &[u8],
        message: &[u8],
        shard: bool,
        limits: &[ObufLimit; 3],
        now_ms: u64,
    ) -> (usize, Vec<String>) {
        let receivers = self.pubsub.receivers(channel, shard);
        let mut logs = Vec::new();
        for r in &receivers {
            let Some(slot) = self.slot_of(r.client) else {
                continue;
            };
            let pattern = r.pattern.as_deref();
            if let Some(log) = self.push_to(
                slot,
                |out, resp3| pubsub::encode_message(out, resp3, shard, pattern, channel, message),
                limits,
                now_ms,
            ) {
                logs.push(log);
            }
        }
        (receivers.len(), logs)
    }

    /// Unsubscribes everyone from the shard channels of `slots` (this node
    /// stopped serving them), each with a `sunsubscribe` push.
    pub fn drop_shard_slots(
        &mut self,
        slots: &crate::slots::SlotSet,
        limits: &[ObufLimit; 3],
        now_ms: u64,
    ) -> Vec<String> {
        let mut logs = Vec::new();
        for (channel, subscribers) in self.pubsub.shard_channels_in(slots) {
            for id in subscribers {
                let Some(slot) = self.slot_of(id) else {
                    continue;
                };
                let Some(e) = self.get(slot) else { continue };
                // The running client's state is out; it cannot be here (this
                // runs outside command execution).
                let Some(mut state) = e.state.take() else {
                    continue;
                };
                let frame = commands::drop_shard_channel(&mut self.pubsub, &mut state, &channel);
                let resp3 = state.resp3;
                if let Some(e) = self.get(slot) {
                    e.state = Some(state);
                    e.resp3 = resp3;
                }
                if let Some(log) = self.push_to(
                    slot,
                    |out, resp3| resp::encode(&frame, resp3, out),
                    limits,
                    now_ms,
                ) {
                    logs.push(log);
                }
            }
        }
        logs
    }

    // ---- cron ----

    /// redis `clientsCronHandleTimeout` for one pass: closes normal clients
    /// idle for longer than `timeout_s` (not blocked, not subscribed).
    pub fn close_idle(&mut self, timeout_s: u64, now_ms: u64) -> Vec<String> {
        let mut logs = Vec::new();
        if timeout_s == 0 {
            return logs;
        }
        for e in self.entries.iter_mut().flatten() {
            let Some(state) = e.state.as_deref() else {
                continue;
            };
            if e.blocked
                || e.postponed.is_some()
                || state.in_pubsub_context()
                || state.is_master_link
                || e.close != Close::No
            {
                continue;
            }
            if now_ms.saturating_sub(e.last_interaction_ms) / 1000 > timeout_s {
                logs.push("Closing idle client".to_string());
                e.close = Close::Asap;
                e.wake();
            }
        }
        logs
    }

    /// Applies the output limits again (redis re-checks in clientsCron so a
    /// soft limit held long enough closes even an idle publisher's target),
    /// and decays the peaks.
    pub fn cron(&mut self, limits: &[ObufLimit; 3], now_ms: u64) -> Vec<String> {
        let mut logs = Vec::new();
        let mut max_in = 0;
        let mut max_out = 0;
        for e in self.entries.iter_mut().flatten() {
            max_in = max_in.max(e.qbuf.len());
            max_out = max_out.max(e.out.len());
            if !e.out.is_empty() {
                if let Some(l) = check_output_limits(e, limits, now_ms) {
                    logs.push(l);
                }
            }
            e.out_peak = e.out.len();
        }
        self.recent_max_input = max_in;
        self.recent_max_output = max_out;
        logs
    }

    /// Memory held by client connections (INFO mem_clients_normal).
    pub fn memory(&self) -> u64 {
        self.entries
            .iter()
            .flatten()
            .map(|e| {
                (std::mem::size_of::<Entry>()
                    + std::mem::size_of::<ClientState>()
                    + e.qbuf.capacity()
                    + e.out.capacity()) as u64
            })
            .sum::<u64>()
            + (self.scratch_in.capacity() + self.scratch_out.capacity()) as u64
    }

    /// Clients blocked in WAIT or a blocking command, or held by a pause
    /// (INFO blocked_clients).
    pub fn blocked(&self) -> usize {
        self.entries
            .iter()
            .flatten()
            .filter(|e| e.blocked || e.postponed.is_some())
            .count()
    }
}

/// The output limit class of a client: 0 normal (masters count as normal,
/// as in redis), 2 pubsub. (Replicas have their own limit in the
/// replication shell.)
pub(super) fn limit_class(state: &ClientState) -> usize {
    if state.in_pubsub_context() {
        2
    } else {
        0
    }
}

/// redis `checkClientOutputBufferLimits`: `used` bytes pending reached the
/// hard limit, or stayed at or above the soft one for longer than allowed
/// (`soft_since` remembers since when, in Unix seconds).
pub(super) fn over_output_limit(
    used: usize,
    l: &ObufLimit,
    soft_since: &mut Option<u64>,
    now_ms: u64,
) -> bool {
    let used = used as u64;
    let hard = l.hard_bytes > 0 && used >= l.hard_bytes;
    let mut soft = l.soft_bytes > 0 && used >= l.soft_bytes;
    let now_s = now_ms / 1000;
    if soft {
        match *soft_since {
            None => {
                *soft_since = Some(now_s);
                soft = false;
            }
            Some(since) => {
                if now_s.saturating_sub(since) <= l.soft_seconds {
                    soft = false;
                }
            }
        }
    } else {
        *soft_since = None;
    }
    soft || hard
}

/// redis `closeClientOnOutputBufferLimitReached` (async) for a client other
/// than the running one: marks it to close when its pending output is over
/// its class's limit. Returns the warning to log when it does.
pub(super) fn check_output_limits(
    e: &mut Entry,
    limits: &[ObufLimit; 3],
    now_ms: u64,
) -> Option<String> {
    if e.close == Close::Asap || e.out.is_empty() {
        e.soft_limit_since = None;
        return None;
    }
    let class = e.state.as_deref().map_or(0, limit_class);
    if !over_output_limit(e.out.len(), &limits[class], &mut e.soft_limit_since, now_ms) {
        return None;
    }
    let line = e
        .state
        .as_deref()
        .map(|s| s.info_line(now_ms, &e.conn_info(now_ms, 0)))
        .unwrap_or_else(|| format!("id={}", e.id));
    e.close = Close::Asap;
    e.wake();
    Some(format!(
        "Client {line} scheduled to be closed ASAP for overcoming of output buffer limits."
    ))
}
