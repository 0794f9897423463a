//! The simulated world: N node processes, the network between them, the
//! clients, and one virtual clock. Everything happens as an event in one
//! queue ordered by (time, sequence number), so a seed gives one order.
//!
//! The network model (what the OS would do):
//! - a bus or replication connection is two one-way *pipes*, FIFO like TCP;
//!   each packet takes 60-250 µs, plus the delay nemesis's ms, plus one
//!   retransmission timeout (200 ms, doubling) per loss drawn; when the loss
//!   falls, a packet still waiting has its attempts to come drawn again at
//!   the new rate, so after the fault it gets through at its next
//!   retransmission (`net.rs`, shared with the clients' requests and replies);
//! - a connect whose SYN exchange takes longer than the node's connect
//!   timeout fails then, as in `server/bus.rs`;
//! - a partition (a grudge: receiver refuses packets from sender) stalls a
//!   pipe at its head, as dropped segments do; on heal, delivery resumes at
//!   the next retransmission (200 ms x (2^k - 1) after the stall began);
//! - a connect across a partition fails after the node's connect timeout
//!   (node_timeout, at least 1 s, as `server/bus.rs`), to a dead node at once
//!   (refused); a paused process's kernel still accepts connections, and what
//!   reaches it waits until it resumes;
//! - a killed process's peers get a FIN behind the data already sent;
//! - clients reach every node whatever the partitions (in real runs they talk
//!   from the host over the bridge, which no grudge touches); their requests
//!   and replies take 40-160 µs plus the node's delay and loss.

mod net;
mod repl;

use super::client::{IoCell, IoReq, IoRes, Task};
use super::node::{SimNode, T0_MS};
use super::record::Rec;
use bytes::Bytes;
use hearsay_node::cluster::{Action, Cluster, ClusterConfig, LinkId, LogLevel};
use hearsay_node::commands::ClientState;
use hearsay_node::events::{Event, EventKind, EventLine};
use hearsay_node::resp::Frame;
use hearsay_node::wire::{Message, NodeName};
use hearsay_workloads::conn::ConnError;
use hearsay_workloads::resp::{Blob, Value as RValue};
use hearsay_workloads::rng::{below, stream};
use net::{Trip, RTO_MAX_US};
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

/// The monotonic clock of the simulated machine at time 0 (ms), for mono_ms.
pub const MONO0_MS: u64 = 1_000_000;
const TICK_US: u64 = 100_000;
/// What a cron turn adds to its 100 ms (the node re-arms the timer after each
/// run, as redis's ae does): tokio's 1 ms timer resolution and the wake-up,
/// drawn per turn from 100 µs up to this. Phases drift apart as on a machine;
/// a fixed 100 ms locks them, which changes the ping schedule (issue 14).
const CRON_OVERRUN_MAX_US: u64 = 1_100;

/// What a pipe carries.
enum Item {
    /// The server side's accept of a bus connection.
    Accept {
        conn: usize,
    },
    Bus {
        conn: usize,
        msg: Box<Message>,
    },
    Fin {
        conn: usize,
    },
    /// A replica's request on a replication connection.
    ReplReq {
        rc: usize,
        req: repl::ReplReq,
    },
    /// What a master sends on a replication connection.
    ReplData {
        rc: usize,
        data: Bytes,
    },
    /// One side of a replication connection closed.
    ReplFin {
        rc: usize,
    },
}

/// A packet on its way: when it arrives (after the packet before it), and
/// its trip (for re-timing it when the loss falls).
struct InFlight {
    ready: u64,
    item: Item,
    trip: Trip,
}

/// A client's request or reply sent while its node's loss was on, and its
/// event in the queue (`World::retime_clients` moves it when the loss falls).
struct ClientTrip {
    node: usize,
    /// A request's connection (requests on one connection arrive in order).
    cconn: Option<u64>,
    trip: Trip,
    at: u64,
    slot: usize,
}

struct Pipe {
    from: usize,
    to: usize,
    to_inc: u64,
    q: VecDeque<InFlight>,
    /// When the pending Pump event fires (an earlier one supersedes it).
    pump_at: Option<u64>,
    stalled_since: Option<u64>,
    last_ready: u64,
    dead: bool,
}

/// A bus connection: client side (who connected) and server side.
struct BusConn {
    client: usize,
    client_link: LinkId,
    server_link: Option<LinkId>,
    /// client -> server, server -> client.
    up: usize,
    down: usize,
    client_port: u16,
}

/// A client's connection to a node.
struct CConn {
    node: usize,
    inc: u64,
    state: ClientState,
    last_arrival: u64,
}

enum Ev {
    Tick {
        node: usize,
        inc: u64,
    },
    Pump {
        pipe: usize,
    },
    ConnectDone {
        node: usize,
        inc: u64,
        link: LinkId,
        target: usize,
        ok: bool,
        refused: bool,
    },
    ClientArrive {
        node: usize,
        cconn: u64,
        proc_: usize,
        io: u64,
        args: Vec<Vec<u8>>,
    },
    ProcIo {
        proc_: usize,
        io: u64,
        res: IoRes,
    },
    Timeout {
        proc_: usize,
        io: u64,
    },
    Call {
        id: usize,
    },
    /// A replica's link task makes an attempt (replication).
    ReplAttempt {
        node: usize,
        inc: u64,
        gen: u64,
    },
    ReplConnectDone {
        node: usize,
        inc: u64,
        gen: u64,
        target: usize,
        ok: bool,
    },
    /// A replica's ack timer.
    ReplAck {
        rc: usize,
    },
}

/// A queued event's place in the order: (virtual µs, sequence number, slot
/// of its `Ev` in `World::slots`). The heap moves these 24 bytes, not the
/// events (sifting whole events was a few percent of a run).
type Queued = (u64, u64, usize);

/// A client task and its I/O slot.
pub struct Proc {
    task: Option<Task>,
    pub cell: Rc<RefCell<IoCell>>,
    /// Sequence number of the outstanding I/O (stale answers are ignored).
    io: u64,
    waiting: bool,
}

/// Counters for the summary and the benchmark.
#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub events: u64,
    pub bus_delivered: u64,
    pub bus_lost: u64,
    pub client_requests: u64,
    pub full_syncs: u64,
    pub partial_syncs: u64,
}

/// Timed callbacks the driver schedules (fault steps, strobes, snapshots).
pub type Callback = Box<dyn FnMut(&mut World)>;

pub struct World {
    pub now: u64,
    pub clock: Rc<Cell<u64>>,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    /// The queued events, by slot; `free` lists the empty slots.
    slots: Vec<Option<Ev>>,
    free: Vec<usize>,
    pub nodes: Vec<SimNode>,
    net: ChaCha8Rng,
    ids: ChaCha8Rng,
    /// Each cron turn's overrun (`CRON_OVERRUN_MAX_US`).
    cron_drift: ChaCha8Rng,
    seed: u64,
    pipes: Vec<Pipe>,
    conns: Vec<BusConn>,
    by_link: BTreeMap<(usize, LinkId), usize>,
    by_bus_addr: BTreeMap<(String, u16), usize>,
    pub by_client_addr: BTreeMap<SocketAddr, usize>,
    names: BTreeMap<NodeName, usize>,
    cconns: BTreeMap<u64, CConn>,
    next_cconn: u64,
    pub procs: Vec<Proc>,
    /// cut[receiver * n + sender]: the receiver refuses the sender's packets.
    cut: Vec<bool>,
    stalled: Vec<usize>,
    loss_pct: Vec<u32>,
    /// Clients' messages sent during a loss fault, in sending order.
    client_trips: Vec<ClientTrip>,
    pub delay_ms: Vec<u64>,
    /// Replication connections (`repl.rs`), by index.
    rconns: Vec<repl::ReplConn>,
    next_port: u16,
    pub stats: Stats,
    pub rec: Rc<RefCell<Rec>>,
    callbacks: Vec<Option<Callback>>,
    /// Send every bus message through the node's wire codec and back.
    pub codec_roundtrip: bool,
    /// Count what each node sends on the bus (`hearsay scale`'s window):
    /// (messages, bytes as encoded, TCP/IP headers excluded) per node.
    /// Off in runs: it encodes every message.
    pub count_bus: bool,
    pub bus_sent: Vec<(u64, u64)>,
    /// The end (µs) of the last backward clock step's blind window: until then
    /// some node compares its clock with stored times in its future.
    pub clock_blind_until: u64,
}

fn node_ip(i: usize) -> String {
    format!("10.77.{}.{}", i / 250, i % 250 + 1)
}

impl World {
    pub fn new(seed: u64, cfgs: Vec<ClusterConfig>) -> World {
        let clock = Rc::new(Cell::new(0));
        let n = cfgs.len();
        let mut w = World {
            now: 0,
            clock: clock.clone(),
            seq: 0,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            nodes: Vec::with_capacity(n),
            net: stream(seed, "sim-net"),
            ids: stream(seed, "sim-ids"),
            cron_drift: stream(seed, "sim-cron-drift"),
            seed,
            pipes: Vec::new(),
            conns: Vec::new(),
            by_link: BTreeMap::new(),
            by_bus_addr: BTreeMap::new(),
            by_client_addr: BTreeMap::new(),
            names: BTreeMap::new(),
            cconns: BTreeMap::new(),
            next_cconn: 1,
            procs: Vec::new(),
            cut: vec![false; n * n],
            stalled: Vec::new(),
            loss_pct: vec![0; n],
            client_trips: Vec::new(),
            delay_ms: vec![0; n],
            rconns: Vec::new(),
            next_port: 40000,
            stats: Stats::default(),
            rec: Rc::new(RefCell::new(Rec::new(clock))),
            callbacks: Vec::new(),
            codec_roundtrip: false,
            count_bus: false,
            bus_sent: vec![(0, 0); n],
            clock_blind_until: 0,
        };
        let mut phases = stream(seed, "sim-cron-phase");
        for (i, cfg) in cfgs.into_iter().enumerate() {
            let ip = node_ip(i);
            let (port, cport) = (cfg.announce_port, cfg.announce_bus_port);
            let core_seed = w.core_seed(i, 0);
            let core = Cluster::new(cfg.clone(), T0_MS, core_seed, None)
                .unwrap_or_else(|e| panic!("a fresh core cannot fail to load: {e}"));
            w.by_bus_addr.insert((ip.clone(), cport), i);
            if let Ok(a) = ip.parse::<Ipv4Addr>() {
                w.by_client_addr
                    .insert(SocketAddr::new(IpAddr::V4(a), port), i);
            }
            w.nodes.push(SimNode {
                index: i,
                name: format!("n{}", i + 1),
                ip,
                port,
                cport,
                cfg,
                core,
                db: hearsay_node::store::Db::new(),
                alive: true,
                paused: false,
                inc: 0,
                clock_ms: 0,
                conf: None,
                events: Vec::new(),
                seq: 0,
                repl: hearsay_node::replication::Replication::new(
                    String::new(),
                    Default::default(),
                    T0_MS,
                ),
                link: None,
                replica_conns: BTreeMap::new(),
                repl_cron_ms: T0_MS,
                held: Vec::new(),
                held_pipes: Vec::new(),
                cron_phase_us: below(&mut phases, TICK_US),
            });
            w.nodes[i].repl = w.new_replication(i);
            w.start_process(i);
        }
        w
    }

    fn core_seed(&self, i: usize, inc: u64) -> u64 {
        self.seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add((i as u64) << 20)
            .wrapping_add(inc)
    }

    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    /// The client address of node `i`.
    pub fn client_addr(&self, i: usize) -> SocketAddr {
        let ip = self.nodes[i]
            .ip
            .parse::<Ipv4Addr>()
            .unwrap_or(Ipv4Addr::LOCALHOST);
        SocketAddr::new(IpAddr::V4(ip), self.nodes[i].port)
    }

    // ---- the queue ----

    /// Queues `ev` at `t` (not before now); its slot.
    fn at(&mut self, t: u64, ev: Ev) -> usize {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(k) => {
                self.slots[k] = Some(ev);
                k
            }
            None => {
                self.slots.push(Some(ev));
                self.slots.len() - 1
            }
        };
        self.queue.push(Reverse((t.max(self.now), self.seq, slot)));
        slot
    }

    /// Runs `f` at virtual time `t`.
    pub fn call_at(&mut self, t: u64, f: Callback) {
        let id = self.callbacks.len();
        self.callbacks.push(Some(f));
        self.at(t, Ev::Call { id });
    }

    /// Runs every event up to and including time `t`; the clock ends at `t`.
    pub fn run_until(&mut self, t: u64) {
        while let Some(&Reverse((qt, _, slot))) = self.queue.peek() {
            if qt > t {
                break;
            }
            self.queue.pop();
            let Some(ev) = self.slots.get_mut(slot).and_then(Option::take) else {
                // Moved to an earlier time (`retime_clients`).
                self.free.push(slot);
                continue;
            };
            self.free.push(slot);
            self.now = qt;
            self.clock.set(qt);
            self.stats.events += 1;
            self.handle(ev);
        }
        self.now = self.now.max(t);
        self.clock.set(self.now);
    }

    /// Steps `poll_us` at a time until `done` holds or `limit_us` passed; the
    /// time it took, or None.
    pub fn run_while(
        &mut self,
        poll_us: u64,
        limit_us: u64,
        mut done: impl FnMut(&World) -> bool,
    ) -> Option<u64> {
        let start = self.now;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if self.now - start >= limit_us {
                return None;
            }
            let t = self.now + poll_us;
            self.run_until(t);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { node, inc } => self.tick(node, inc),
            Ev::Pump { pipe } => self.pump(pipe),
            Ev::ConnectDone {
                node,
                inc,
                link,
                target,
                ok,
                refused,
            } => self.connect_done(node, inc, link, target, ok, refused),
            Ev::ClientArrive {
                node,
                cconn,
                proc_,
                io,
                args,
            } => self.client_arrive(node, cconn, proc_, io, args),
            Ev::ProcIo { proc_, io, res } => self.proc_io(proc_, io, res),
            Ev::Timeout { proc_, io } => {
                let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
                self.proc_io(
                    proc_,
                    io,
                    IoRes::Reply(Err(ConnError::Timeout { addr, sent: true })),
                )
            }
            Ev::Call { id } => {
                if let Some(mut f) = self.callbacks.get_mut(id).and_then(Option::take) {
                    f(self);
                }
            }
            Ev::ReplAttempt { node, inc, gen } => self.repl_attempt(node, inc, gen),
            Ev::ReplConnectDone {
                node,
                inc,
                gen,
                target,
                ok,
            } => self.repl_connect_done(node, inc, gen, target, ok),
            Ev::ReplAck { rc } => self.repl_ack(rc),
        }
    }

    // ---- processes ----

    /// Writes one event line to node i's log.
    fn write_event(&mut self, i: usize, event: &Event) {
        let now = self.now;
        let n = &mut self.nodes[i];
        let me = n.core.myself().to_string();
        EventLine {
            me: &me,
            seq: n.seq,
            wall_ms: n.clock(now),
            mono_ms: MONO0_MS + now / 1000,
            event,
        }
        .write_to(&mut n.events);
        n.seq += 1;
    }

    fn emit(&mut self, i: usize, kind: EventKind) {
        self.write_event(i, &Event::from(kind));
    }

    /// The shell's start: `started` first, then the core's queued actions,
    /// then the cron.
    fn start_process(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.core.set_log_level(LogLevel::Warning);
        n.seq = 0;
        let id = n.core.myself().to_string();
        self.names.insert(n.core.myself(), i);
        self.emit(i, EventKind::Started { id });
        let now = self.now;
        let n = &mut self.nodes[i];
        let clock = n.clock(now);
        n.repl_cron_ms = n.clock(now);
        n.core.set_repl_offset(n.repl.core_offset());
        n.core.verify_config_with_data(&n.db);
        n.core.before_sleep(clock);
        self.drain(i);
        let first = self.now + self.nodes[i].cron_phase_us;
        let inc = self.nodes[i].inc;
        self.at(first, Ev::Tick { node: i, inc });
    }

    /// SIGKILL: peers see FINs behind what was already sent; replicas see
    /// their link end; nothing of the process survives but nodes.conf (and
    /// the data set, with AOF).
    pub fn kill(&mut self, i: usize) {
        if !self.nodes[i].alive {
            return;
        }
        self.nodes[i].alive = false;
        self.nodes[i].paused = false;
        let links: Vec<(LinkId, usize)> = self
            .by_link
            .range((i, 0)..=(i, LinkId::MAX))
            .map(|(&(_, l), &c)| (l, c))
            .collect();
        for (l, c) in links {
            self.by_link.remove(&(i, l));
            let pipe = self.out_pipe(c, i);
            self.push(pipe, Item::Fin { conn: c });
        }
        self.repl_killed(i);
        let n = &mut self.nodes[i];
        n.held.clear();
        n.held_pipes.clear();
    }

    /// Starts a killed node again from its nodes.conf (and, with AOF, its data).
    pub fn restart(&mut self, i: usize, aof: bool) {
        if self.nodes[i].alive {
            return;
        }
        let inc = self.nodes[i].inc + 1;
        let seed = self.core_seed(i, inc);
        let now = self.now;
        let n = &mut self.nodes[i];
        let clock = n.clock(now);
        let core = match Cluster::new(n.cfg.clone(), clock, seed, n.conf.as_deref()) {
            Ok(c) => c,
            // A nodes.conf the core wrote itself always loads; if not, start
            // empty as redis would refuse to (the event log then shows it).
            Err(_) => match Cluster::new(n.cfg.clone(), clock, seed, None) {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        n.core = core;
        n.inc = inc;
        n.alive = true;
        n.paused = false;
        if !aof {
            n.db = hearsay_node::store::Db::new();
        }
        self.nodes[i].repl = self.new_replication(i);
        self.nodes[i].link = None;
        self.nodes[i].replica_conns.clear();
        self.start_process(i);
    }

    /// Sets node i's clock offset (the clock nemesis); a step back opens a
    /// blind window as long as the step.
    pub fn set_clock(&mut self, i: usize, ms: i64) {
        let old = self.nodes[i].clock_ms;
        if ms < old {
            let until = self.now + (old - ms) as u64 * 1000;
            self.clock_blind_until = self.clock_blind_until.max(until);
        }
        self.nodes[i].clock_ms = ms;
    }

    pub fn pause(&mut self, i: usize) {
        if self.nodes[i].alive {
            self.nodes[i].paused = true;
        }
    }

    pub fn resume(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if !n.alive || !n.paused {
            return;
        }
        n.paused = false;
        let pipes = std::mem::take(&mut n.held_pipes);
        let held = std::mem::take(&mut n.held);
        let inc = n.inc;
        // The missed cron tick fires at once (tokio's interval after SIGCONT).
        self.at(self.now, Ev::Tick { node: i, inc });
        for p in pipes {
            self.schedule_pump(p, self.now);
        }
        for (cconn, proc_, io, args) in held {
            self.at(
                self.now,
                Ev::ClientArrive {
                    node: i,
                    cconn,
                    proc_,
                    io,
                    args,
                },
            );
        }
    }

    /// A clean shutdown at the end of the run: the `stopped` line.
    pub fn stop_all(&mut self) {
        for i in 0..self.n() {
            if self.nodes[i].alive {
                self.emit(
                    i,
                    EventKind::Stopped {
                        reason: "SIGTERM".into(),
                    },
                );
            }
        }
    }

    fn tick(&mut self, i: usize, inc: u64) {
        let n = &mut self.nodes[i];
        if !n.alive || n.inc != inc {
            return;
        }
        if n.paused {
            // resume() fires the missed tick.
            return;
        }
        let clock = n.clock(self.now);
        n.core.tick(clock);
        self.repl_cron(i);
        self.after_input(i);
        let overrun = 100 + below(&mut self.cron_drift, CRON_OVERRUN_MAX_US - 100);
        self.at(self.now + TICK_US + overrun, Ev::Tick { node: i, inc });
    }

    /// The shell after every input: before_sleep, the actions, replication
    /// following the core's role.
    fn after_input(&mut self, i: usize) {
        let clock = self.nodes[i].clock(self.now);
        self.nodes[i].core.before_sleep(clock);
        self.drain(i);
        self.sync_replication(i);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        while let Some(a) = self.nodes[i].core.poll_action() {
            self.action(i, a);
        }
    }

    fn action(&mut self, i: usize, a: Action) {
        match a {
            Action::Connect { link, ip, port } => self.connect(i, link, &ip, port),
            Action::Send { link, msg } => {
                let Some(&c) = self.by_link.get(&(i, link)) else {
                    return;
                };
                if self.count_bus {
                    let mut buf = Vec::new();
                    hearsay_node::wire::encode(&msg, &mut buf);
                    if let Some(s) = self.bus_sent.get_mut(i) {
                        s.0 += 1;
                        s.1 += buf.len() as u64;
                    }
                }
                let pipe = self.out_pipe(c, i);
                self.push(
                    pipe,
                    Item::Bus {
                        conn: c,
                        msg: Box::new(msg),
                    },
                );
            }
            Action::Close { link } => {
                let Some(c) = self.by_link.remove(&(i, link)) else {
                    return;
                };
                let pipe = self.out_pipe(c, i);
                self.push(pipe, Item::Fin { conn: c });
            }
            Action::SaveConfig { contents, .. } => self.nodes[i].conf = Some(contents),
            Action::DeleteKeysInSlots { slots } => {
                // Our replicas drop them too (a DEL per key).
                let n = &mut self.nodes[i];
                if !n.repl.is_replica() {
                    let keys: Vec<Bytes> = slots
                        .iter()
                        .flat_map(|&s| n.db.keys_in_slot(s, usize::MAX))
                        .collect();
                    for k in keys {
                        self.feed_writes(i, &[vec![Bytes::from_static(b"DEL"), k]]);
                    }
                }
                self.nodes[i].db.delete_slots(&slots);
            }
            Action::FlushAll => {
                let clock = self.nodes[i].clock(self.now);
                self.nodes[i].db.flush_all(clock);
                self.feed_writes(i, &[vec![Bytes::from_static(b"FLUSHALL")]]);
            }
            Action::Event(e) => self.write_event(i, &e),
            Action::Log { .. } | Action::Publish { .. } | Action::DropShardChannels { .. } => {}
        }
    }

    // ---- the network ----

    fn blocked(&self, to: usize, from: usize) -> bool {
        let n = self.n();
        self.cut.get(to * n + from).copied().unwrap_or(false)
    }

    /// Sets the grudge in force (receiver -> senders it refuses); an empty one heals.
    pub fn set_grudge(&mut self, g: &BTreeMap<usize, Vec<usize>>) {
        let n = self.n();
        self.cut.iter_mut().for_each(|c| *c = false);
        for (to, froms) in g {
            for from in froms {
                if *to < n && *from < n && to != from {
                    self.cut[to * n + from] = true;
                }
            }
        }
        // Stalled pipes whose direction opened resume at the next retransmission.
        let stalled = std::mem::take(&mut self.stalled);
        for p in stalled {
            let (from, to, since) = {
                let pp = &self.pipes[p];
                (pp.from, pp.to, pp.stalled_since)
            };
            if self.blocked(to, from) {
                self.stalled.push(p);
                continue;
            }
            let since = since.unwrap_or(self.now);
            let mut k = 1u32;
            let next = loop {
                let back = net::backoff(k.min(30));
                let t = since + back.min(RTO_MAX_US * k as u64);
                if t >= self.now || k > 40 {
                    break t.max(self.now);
                }
                k += 1;
            };
            self.pipes[p].stalled_since = None;
            self.schedule_pump(p, next);
        }
    }

    fn latency(&mut self, from: usize, to: usize) -> u64 {
        self.trip(from, to).arrival() - self.now
    }

    /// A packet from `from` to `to` sent now.
    fn trip(&mut self, from: usize, to: usize) -> Trip {
        let mut t = 60 + below(&mut self.net, 190);
        let d = self.delay_ms[from].max(self.delay_ms[to]);
        if d > 0 {
            // The delayer's jitter: +-10 %.
            t += d * 900 + below(&mut self.net, d * 200 + 1);
        }
        let loss = self.loss_pct[from].max(self.loss_pct[to]);
        let trip = Trip::draw(&mut self.net, self.now, t, loss);
        self.stats.bus_lost += u64::from(trip.lost);
        trip
    }

    /// Sets node i's loss percentage. When a path's loss falls, packets
    /// waiting on it for a retransmission have their attempts to come drawn
    /// again at the new rate (`Trip::retime`): the losses drawn at send time
    /// for later attempts would have fallen after the fault (seed 6024: a
    /// PONG drawn 9 losses, 102 s, and its PFAIL outlived the run). The same
    /// for clients' requests and replies to and from node i.
    pub fn set_loss(&mut self, i: usize, pct: u32) {
        let Some(&old) = self.loss_pct.get(i) else {
            return;
        };
        self.loss_pct[i] = pct;
        if pct >= old {
            return;
        }
        for p in 0..self.pipes.len() {
            let (from, to) = (self.pipes[p].from, self.pipes[p].to);
            if from != i && to != i {
                continue;
            }
            let other = if from == i { to } else { from };
            let after = self.loss_pct[from].max(self.loss_pct[to]);
            if after < old.max(self.loss_pct[other]) {
                self.retime(p, after);
            }
        }
        self.retime_clients(i);
    }

    /// Re-times a pipe's waiting packets after its loss fell to `loss_pct`
    /// (`set_loss`).
    fn retime(&mut self, pipe: usize, loss_pct: u32) {
        let now = self.now;
        let p = &mut self.pipes[pipe];
        if p.dead || p.q.iter().all(|f| f.trip.lost == 0) {
            return;
        }
        let mut prev = 0;
        for f in p.q.iter_mut() {
            f.trip.retime(&mut self.net, now, loss_pct);
            f.ready = f.trip.arrival().max(prev);
            prev = f.ready;
        }
        p.last_ready = prev;
        let head = p.q.front().map(|f| f.ready);
        if let (Some(t), None) = (head, p.stalled_since) {
            self.schedule_pump(pipe, t);
        }
    }

    fn new_pipe(&mut self, from: usize, to: usize) -> usize {
        self.pipes.push(Pipe {
            from,
            to,
            to_inc: self.nodes[to].inc,
            q: VecDeque::new(),
            pump_at: None,
            stalled_since: None,
            last_ready: 0,
            dead: false,
        });
        self.pipes.len() - 1
    }

    fn push(&mut self, pipe: usize, item: Item) {
        let (from, to) = (self.pipes[pipe].from, self.pipes[pipe].to);
        let trip = self.trip(from, to);
        let p = &mut self.pipes[pipe];
        if p.dead {
            return;
        }
        let ready = trip.arrival().max(p.last_ready);
        p.last_ready = ready;
        p.q.push_back(InFlight { ready, item, trip });
        if p.pump_at.is_none() && p.stalled_since.is_none() && p.q.len() == 1 {
            self.schedule_pump(pipe, ready);
        }
    }

    fn schedule_pump(&mut self, pipe: usize, t: u64) {
        let t = t.max(self.now);
        let p = &mut self.pipes[pipe];
        if p.dead || p.pump_at.is_some_and(|at| at <= t) {
            return;
        }
        p.pump_at = Some(t);
        self.at(t, Ev::Pump { pipe });
    }

    fn pump(&mut self, pipe: usize) {
        if self.pipes[pipe].pump_at != Some(self.now) {
            return; // superseded by an earlier pump (`retime`)
        }
        self.pipes[pipe].pump_at = None;
        loop {
            let p = &self.pipes[pipe];
            if p.dead {
                return;
            }
            let Some(f) = p.q.front() else {
                return;
            };
            if f.ready > self.now {
                let t = f.ready;
                self.schedule_pump(pipe, t);
                return;
            }
            let (from, to, to_inc) = (p.from, p.to, p.to_inc);
            if self.blocked(to, from) {
                if self.pipes[pipe].stalled_since.is_none() {
                    self.pipes[pipe].stalled_since = Some(self.now);
                    self.stalled.push(pipe);
                }
                return;
            }
            let r = &mut self.nodes[to];
            if !r.alive || r.inc != to_inc {
                let p = &mut self.pipes[pipe];
                p.dead = true;
                p.q.clear();
                return;
            }
            if r.paused {
                if !r.held_pipes.contains(&pipe) {
                    r.held_pipes.push(pipe);
                }
                return;
            }
            let Some(f) = self.pipes[pipe].q.pop_front() else {
                return;
            };
            self.deliver(to, f.item);
        }
    }

    fn out_pipe(&self, conn: usize, from: usize) -> usize {
        let c = &self.conns[conn];
        if c.client == from {
            c.up
        } else {
            c.down
        }
    }

    fn connect(&mut self, i: usize, link: LinkId, ip: &str, port: u16) {
        let target = self.by_bus_addr.get(&(ip.to_string(), port)).copied();
        let inc = self.nodes[i].inc;
        let Some(t) = target else {
            // No such address on the bridge: nobody answers the SYN.
            let timeout = self.connect_timeout_us(i);
            self.at(
                self.now + timeout,
                Ev::ConnectDone {
                    node: i,
                    inc,
                    link,
                    target: i,
                    ok: false,
                    refused: false,
                },
            );
            return;
        };
        let reachable = !self.blocked(t, i) && !self.blocked(i, t);
        let rtt = self.latency(i, t) + self.latency(t, i);
        let timeout = self.connect_timeout_us(i);
        let (when, ok, refused) = if !reachable || rtt > timeout {
            (self.now + timeout, false, false)
        } else if !self.nodes[t].alive {
            (self.now + rtt, false, true)
        } else {
            (self.now + rtt, true, false)
        };
        self.at(
            when,
            Ev::ConnectDone {
                node: i,
                inc,
                link,
                target: t,
                ok,
                refused,
            },
        );
    }

    fn connect_timeout_us(&self, i: usize) -> u64 {
        self.nodes[i].cfg.node_timeout.max(1000) * 1000
    }

    fn connect_done(
        &mut self,
        i: usize,
        inc: u64,
        link: LinkId,
        t: usize,
        ok: bool,
        refused: bool,
    ) {
        if !self.nodes[i].alive || self.nodes[i].inc != inc {
            return;
        }
        if self.nodes[i].paused {
            // The process sees the result when it runs again.
            self.at(
                self.now + TICK_US,
                Ev::ConnectDone {
                    node: i,
                    inc,
                    link,
                    target: t,
                    ok,
                    refused,
                },
            );
            return;
        }
        let clock = self.nodes[i].clock(self.now);
        if !ok || !self.nodes[t].alive {
            let why = if refused || !self.nodes[t].alive {
                "Connection refused"
            } else {
                "Connection timed out"
            };
            self.nodes[i].core.handle_connect_failed(clock, link, why);
            self.after_input(i);
            return;
        }
        self.next_port = self.next_port.wrapping_add(1).max(40000);
        let c = self.conns.len();
        let up = self.new_pipe(i, t);
        let down = self.new_pipe(t, i);
        self.conns.push(BusConn {
            client: i,
            client_link: link,
            server_link: None,
            up,
            down,
            client_port: self.next_port,
        });
        self.by_link.insert((i, link), c);
        self.push(up, Item::Accept { conn: c });
        let local = SocketAddr::new(self.ip_of(i), self.next_port);
        self.nodes[i].core.handle_connected(clock, link, local);
        self.after_input(i);
    }

    fn ip_of(&self, i: usize) -> IpAddr {
        self.nodes[i]
            .ip
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    fn deliver(&mut self, to: usize, item: Item) {
        let clock = self.nodes[to].clock(self.now);
        match item {
            Item::Accept { conn } => {
                let c = &self.conns[conn];
                let peer = SocketAddr::new(self.ip_of(c.client), c.client_port);
                let local = SocketAddr::new(self.ip_of(to), self.nodes[to].cport);
                let link = self.nodes[to].core.handle_accept(clock, peer, local);
                self.conns[conn].server_link = Some(link);
                self.by_link.insert((to, link), conn);
                self.after_input(to);
            }
            Item::Bus { conn, msg } => {
                let Some(link) = self.link_of(conn, to) else {
                    return;
                };
                self.stats.bus_delivered += 1;
                let msg = if self.codec_roundtrip {
                    match roundtrip(&msg) {
                        Some(m) => m,
                        None => return,
                    }
                } else {
                    *msg
                };
                self.nodes[to].core.handle_packet(clock, link, msg);
                self.after_input(to);
            }
            Item::Fin { conn } => {
                let Some(link) = self.link_of(conn, to) else {
                    return;
                };
                self.by_link.remove(&(to, link));
                self.nodes[to].core.handle_link_closed(clock, link);
                self.after_input(to);
            }
            item @ (Item::ReplReq { .. } | Item::ReplData { .. } | Item::ReplFin { .. }) => {
                self.repl_deliver(to, item)
            }
        }
    }

    /// The link ID on `node`'s side of a bus connection, if that side is open.
    fn link_of(&self, conn: usize, node: usize) -> Option<LinkId> {
        let c = &self.conns[conn];
        let link = if c.client == node {
            Some(c.client_link)
        } else {
            c.server_link
        }?;
        (self.by_link.get(&(node, link)) == Some(&conn)).then_some(link)
    }

    // ---- admin commands (formation) and observations ----

    /// `CLUSTER <args>` on node i, as an admin client would send it.
    pub fn cluster_cmd(&mut self, i: usize, args: &[&str]) -> hearsay_node::resp::Frame {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let clock = self.nodes[i].clock(self.now);
        let n = &mut self.nodes[i];
        let reply = n.core.command(clock, &args, &n.db, false);
        self.after_input(i);
        reply
    }

    // ---- clients ----

    /// Adds a client task and runs it to its first I/O.
    pub fn spawn(&mut self, make: impl FnOnce(Rc<RefCell<IoCell>>) -> Task) -> usize {
        let cell = Rc::new(RefCell::new(IoCell::default()));
        let task = make(cell.clone());
        self.procs.push(Proc {
            task: Some(task),
            cell,
            io: 0,
            waiting: false,
        });
        let p = self.procs.len() - 1;
        self.poll_proc(p);
        p
    }

    pub fn procs_running(&self) -> usize {
        self.procs.iter().filter(|p| p.task.is_some()).count()
    }

    fn poll_proc(&mut self, p: usize) {
        let Some(mut task) = self.procs[p].task.take() else {
            return;
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if task.as_mut().poll(&mut cx).is_ready() {
            return;
        }
        self.procs[p].task = Some(task);
        let req = self.procs[p].cell.borrow_mut().req.take();
        if let Some(req) = req {
            self.procs[p].io += 1;
            self.procs[p].waiting = true;
            self.start_io(p, req);
        }
    }

    fn proc_io(&mut self, p: usize, io: u64, res: IoRes) {
        let pr = &mut self.procs[p];
        if pr.io != io || !pr.waiting {
            return;
        }
        pr.waiting = false;
        pr.cell.borrow_mut().res = Some(res);
        self.poll_proc(p);
    }

    fn start_io(&mut self, p: usize, req: IoReq) {
        let io = self.procs[p].io;
        match req {
            IoReq::Sleep { us } => {
                self.at(
                    self.now + us,
                    Ev::ProcIo {
                        proc_: p,
                        io,
                        res: IoRes::Woke,
                    },
                );
            }
            IoReq::Connect { addr, timeout_us } => {
                let node = self.by_client_addr.get(&addr).copied();
                // The SYN exchange, decided at once (as the bus's connects).
                let rtt = match node {
                    Some(i) => 2 * (self.client_trip(i).arrival() - self.now),
                    None => 100,
                };
                if rtt > timeout_us {
                    // SYNs lost past the client's connect timeout.
                    self.at(
                        self.now + timeout_us,
                        Ev::ProcIo {
                            proc_: p,
                            io,
                            res: IoRes::Connected(Err(ConnError::ConnectTimeout { addr })),
                        },
                    );
                    return;
                }
                let res = match node {
                    Some(i) if self.nodes[i].alive => {
                        let id = self.next_cconn;
                        self.next_cconn += 1;
                        self.cconns.insert(
                            id,
                            CConn {
                                node: i,
                                inc: self.nodes[i].inc,
                                state: ClientState::new(id),
                                last_arrival: 0,
                            },
                        );
                        Ok(id)
                    }
                    _ => Err(ConnError::Refused { addr }),
                };
                self.at(
                    self.now + rtt,
                    Ev::ProcIo {
                        proc_: p,
                        io,
                        res: IoRes::Connected(res),
                    },
                );
            }
            IoReq::Request {
                conn,
                args,
                timeout_us,
            } => {
                self.stats.client_requests += 1;
                self.at(self.now + timeout_us, Ev::Timeout { proc_: p, io });
                let Some(cc) = self.cconns.get(&conn) else {
                    return;
                };
                let i = cc.node;
                self.client_send(
                    i,
                    Some(conn),
                    Ev::ClientArrive {
                        node: i,
                        cconn: conn,
                        proc_: p,
                        io,
                        args,
                    },
                );
            }
        }
    }

    /// A client's message to or from node i sent now.
    fn client_trip(&mut self, i: usize) -> Trip {
        let mut t = 40 + below(&mut self.net, 120);
        let d = self.delay_ms[i];
        if d > 0 {
            t += d * 900 + below(&mut self.net, d * 200 + 1);
        }
        Trip::draw(&mut self.net, self.now, t, self.loss_pct[i])
    }

    /// Sends a client's request (on connection `fifo`, behind the ones before
    /// it) or reply to or from node i: `ev` happens when it arrives. Sent
    /// during a loss fault, it is kept for `retime_clients`.
    fn client_send(&mut self, i: usize, fifo: Option<u64>, ev: Ev) {
        let trip = self.client_trip(i);
        let mut at = trip.arrival();
        if let Some(cc) = fifo.and_then(|c| self.cconns.get_mut(&c)) {
            at = at.max(cc.last_arrival);
            cc.last_arrival = at;
        }
        let slot = self.at(at, ev);
        if self.loss_pct[i] > 0 {
            self.client_trips.push(ClientTrip {
                node: i,
                cconn: fifo,
                trip,
                at,
                slot,
            });
        }
    }

    /// Node i's loss fell: the clients' messages still on their way to or
    /// from it have their attempts to come drawn again (`Trip::retime`), and
    /// those that arrive earlier move in the queue.
    fn retime_clients(&mut self, i: usize) {
        let now = self.now;
        // Those due by now have arrived (one due exactly now cannot move).
        self.client_trips.retain(|c| c.at > now);
        let loss = self.loss_pct[i];
        // A connection's last request: (its time before, after).
        let mut last: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for k in 0..self.client_trips.len() {
            let c = &mut self.client_trips[k];
            if c.node != i {
                continue;
            }
            c.trip.retime(&mut self.net, now, loss);
            let mut at = c.trip.arrival();
            if let Some(cc) = c.cconn {
                let prev = last.get(&cc).map_or(0, |&(_, after)| after);
                at = at.max(prev);
                last.insert(cc, (c.at, at));
            }
            if at >= c.at {
                continue;
            }
            let (old, slot) = (c.at, c.slot);
            // Its queue entry stays behind, pointing at an empty slot.
            let Some(ev) = self.slots.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            let slot = self.at(at, ev);
            let c = &mut self.client_trips[k];
            (c.at, c.slot) = (at, slot);
            debug_assert!(at < old);
        }
        for (cc, (before, after)) in last {
            if let Some(c) = self.cconns.get_mut(&cc) {
                if c.last_arrival == before {
                    c.last_arrival = after;
                }
            }
        }
    }

    fn client_arrive(&mut self, i: usize, cconn: u64, p: usize, io: u64, args: Vec<Vec<u8>>) {
        let stale = self
            .cconns
            .get(&cconn)
            .is_none_or(|c| c.inc != self.nodes[i].inc || !self.nodes[i].alive);
        if stale {
            // The process that held the socket is gone: RST.
            self.cconns.remove(&cconn);
            let addr = self.client_addr(i);
            self.client_send(
                i,
                None,
                Ev::ProcIo {
                    proc_: p,
                    io,
                    res: IoRes::Reply(Err(ConnError::Closed { addr, sent: true })),
                },
            );
            return;
        }
        if self.nodes[i].paused {
            self.nodes[i].held.push((cconn, p, io, args));
            return;
        }
        let Some(cc) = self.cconns.get_mut(&cconn) else {
            return;
        };
        let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
        let out = self.nodes[i].execute(self.now, &mut cc.state, args);
        if let Some(args) = out.postponed {
            // A write pause (manual failover): the request runs again later.
            let args = args.into_iter().map(|b| b.to_vec()).collect();
            self.at(
                self.now + 10_000,
                Ev::ClientArrive {
                    node: i,
                    cconn,
                    proc_: p,
                    io,
                    args,
                },
            );
            return;
        }
        if out.close {
            self.cconns.remove(&cconn);
        }
        self.feed_request(i, &out.applied_writes);
        self.after_input(i);
        // What the client would decode from the bytes on the wire (RESP2):
        // the common shapes converted directly, the rest through the codecs.
        let res = match reply_value(&out.reply, 0) {
            Some(v) => Ok(v),
            None => {
                let bytes = hearsay_node::resp::encode_to_vec(&out.reply, false);
                match hearsay_workloads::resp::decode(&bytes) {
                    Ok(Some((v, _))) => Ok(v),
                    _ => Err(ConnError::Closed {
                        addr: self.client_addr(i),
                        sent: true,
                    }),
                }
            }
        };
        self.client_send(
            i,
            None,
            Ev::ProcIo {
                proc_: p,
                io,
                res: IoRes::Reply(res),
            },
        );
    }
}

/// The value the workloads' RESP2 decoder reads from `f`'s encoding, for the
/// shapes whose encoding is plain (strings without line breaks, integers,
/// bulks, nulls, arrays of those within the decoder's limits); `None` for the
/// rest, which go through the encoder and decoder.
fn reply_value(f: &Frame, depth: usize) -> Option<RValue> {
    use hearsay_workloads::resp::{MAX_ARRAY, MAX_BULK};
    // Deeper than the decoder's 16 levels: its error, through the codecs.
    if depth > 16 {
        return None;
    }
    let plain = |s: &str| !s.bytes().any(|b| b == b'\r' || b == b'\n');
    Some(match f {
        Frame::Simple(s) if plain(s) => RValue::Simple(s.clone()),
        Frame::Error(s) if plain(s) => RValue::Error(s.clone()),
        Frame::Integer(n) => RValue::Int(*n),
        // The node's bytes themselves (shared, not copied).
        Frame::Bulk(b) if b.len() <= MAX_BULK => RValue::Bulk(Some(Blob(b.clone()))),
        Frame::Null => RValue::Bulk(None),
        Frame::NullArray => RValue::Array(None),
        // RESP2 writes sets and pushes as arrays.
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items)
            if items.len() <= MAX_ARRAY =>
        {
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(reply_value(x, depth + 1)?);
            }
            RValue::Array(Some(out))
        }
        Frame::Boolean(b) => RValue::Int(i64::from(*b)),
        _ => return None,
    })
}

/// What the peer would decode from the bytes the shell would send.
fn roundtrip(msg: &Message) -> Option<Message> {
    let mut buf = Vec::new();
    hearsay_node::wire::encode(msg, &mut buf);
    hearsay_node::wire::decode(&buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet lost during a loss fault arrives at its first retransmission
    /// after the fault ends, not after the losses drawn for later attempts.
    #[test]
    fn a_waiting_packet_gets_through_at_the_next_retransmission_after_the_loss() {
        let mut w = World::new(1, vec![ClusterConfig::default(); 2]);
        let pipe = w.new_pipe(0, 1);
        // Certain loss: every attempt up to Linux's cap (10 losses, 204.6 s).
        w.set_loss(1, 100);
        w.push(pipe, Item::Fin { conn: 0 });
        let f = &w.pipes[pipe].q[0];
        assert_eq!(f.trip.lost, 10);
        assert!(f.ready > 200_000_000, "{}", f.ready);
        let base = f.trip.base;
        // A second packet queues behind it (FIFO).
        w.now = 500_000;
        w.push(pipe, Item::Fin { conn: 1 });
        // The loss ends at 1 s: attempts left at 0, 0.2, 0.6 s (lost) and
        // 1.4 s, which gets through; the second packet's at 1.3 s (0.5 + 0.2
        // + 0.6) does, but waits behind the first.
        w.now = 1_000_000;
        w.set_loss(1, 0);
        let q = &w.pipes[pipe].q;
        assert_eq!(q[0].trip.lost, 3);
        assert_eq!(q[0].ready, 1_400_000 + base);
        assert!(q[1].ready >= q[0].ready, "{} {}", q[1].ready, q[0].ready);
        assert!(q[1].ready < 2_000_000, "{}", q[1].ready);
        assert_eq!(w.pipes[pipe].pump_at, Some(q[0].ready));
        // The superseded pump (at ~204 s) does nothing when it fires.
        let first = q[0].ready;
        w.now = 204_600_000;
        w.pump(pipe);
        assert_eq!(w.pipes[pipe].q.len(), 2);
        assert_eq!(w.pipes[pipe].pump_at, Some(first));
    }

    /// Overlapping loss faults: when the loss falls to a lower rate that is
    /// not zero, a waiting packet's attempts to come are drawn at that rate.
    #[test]
    fn a_fall_to_a_lower_loss_redraws_the_waiting_packets() {
        let mut w = World::new(1, vec![ClusterConfig::default(); 2]);
        let pipe = w.new_pipe(0, 1);
        w.set_loss(0, 100);
        w.set_loss(1, 100);
        for c in 0..200 {
            w.push(pipe, Item::Fin { conn: c });
        }
        assert!(w.pipes[pipe].q.iter().all(|f| f.trip.lost == 10));
        // Node 1's fault ends; node 0's goes on at 100 %: nothing changes.
        w.now = 1_000_000;
        w.set_loss(1, 0);
        assert!(w.pipes[pipe].q.iter().all(|f| f.trip.lost == 10));
        // Node 0's falls to 50 %: about half get through at 1.4 s.
        w.set_loss(0, 50);
        let q = &w.pipes[pipe].q;
        let next = q.iter().filter(|f| f.trip.lost == 3).count();
        assert!((70..130).contains(&next), "{next}");
        assert!(q.iter().all(|f| f.trip.lost >= 3));
        assert!(q.iter().any(|f| f.trip.lost > 3));
        assert_eq!(w.pipes[pipe].pump_at, Some(q[0].ready));
        // Then to 0: every one at its next attempt from 2 s on (3 s).
        w.now = 2_000_000;
        w.set_loss(0, 0);
        let q = &w.pipes[pipe].q;
        assert!(q.iter().all(|f| f.trip.lost <= 4));
        assert!(q.iter().all(|f| f.ready < 3_001_000), "{}", q[199].ready);
    }

    /// The queue entries of `ev`s matching `f`: (time, slot).
    fn queued(w: &World, f: impl Fn(&Ev) -> bool) -> Vec<(u64, usize)> {
        let mut v: Vec<(u64, usize)> = w
            .queue
            .iter()
            .filter(|Reverse((_, _, slot))| w.slots[*slot].as_ref().is_some_and(&f))
            .map(|&Reverse((t, _, slot))| (t, slot))
            .collect();
        v.sort();
        v
    }

    /// A client's request sent during a loss fault gets through at its first
    /// retransmission after the fault, like a bus packet; a second request on
    /// the same connection stays behind it; a reply likewise.
    #[test]
    fn a_clients_request_and_reply_get_through_after_the_loss() {
        let mut w = World::new(1, vec![ClusterConfig::default(); 2]);
        w.cconns.insert(
            9,
            CConn {
                node: 1,
                inc: 0,
                state: ClientState::new(9),
                last_arrival: 0,
            },
        );
        w.set_loss(1, 100);
        let arrive = |io| Ev::ClientArrive {
            node: 1,
            cconn: 9,
            proc_: 0,
            io,
            args: Vec::new(),
        };
        let is_arrive = |io| move |e: &Ev| matches!(e, Ev::ClientArrive { io: x, .. } if *x == io);
        w.client_send(1, Some(9), arrive(1));
        w.now = 500_000;
        w.client_send(1, Some(9), arrive(2));
        w.client_send(
            1,
            None,
            Ev::ProcIo {
                proc_: 0,
                io: 3,
                res: IoRes::Woke,
            },
        );
        let before = queued(&w, is_arrive(1));
        assert_eq!(before.len(), 1);
        assert!(before[0].0 > 200_000_000, "{before:?}");
        let events = w.queue.len();
        w.now = 1_000_000;
        w.set_loss(1, 0);
        // Three events moved: their old entries stay, pointing at nothing.
        assert_eq!(w.queue.len(), events + 3);
        let one = queued(&w, is_arrive(1));
        let two = queued(&w, is_arrive(2));
        let reply = queued(&w, |e| matches!(e, Ev::ProcIo { io: 3, .. }));
        assert!((1_400_000..1_400_200).contains(&one[0].0), "{one:?}");
        // Sent at 0.5 s: attempts at 0.5, 0.7, 1.1 s; the last one, behind the first.
        assert!((1_100_000..1_100_200).contains(&reply[0].0), "{reply:?}");
        assert_eq!(two[0].0, one[0].0);
        assert_eq!(w.cconns[&9].last_arrival, one[0].0);
        assert!(w.slots[before[0].1].is_none());
        // The empty entries are dropped and their slots freed (the moved
        // events taken out too: there is no client task to run them).
        for (_, slot) in one.iter().chain(&two).chain(&reply) {
            w.slots[*slot] = None;
        }
        w.run_until(300_000_000);
        let live = w.slots.iter().filter(|s| s.is_some()).count();
        assert_eq!(live, w.queue.len());
        assert_eq!(live + w.free.len(), w.slots.len());
    }

    /// A connect whose SYN exchange outlasts the connect timeout fails then
    /// (`server/bus.rs`), rather than completing minutes later.
    #[test]
    fn a_lossy_connect_times_out() {
        let mut w = World::new(1, vec![ClusterConfig::default(); 2]);
        w.set_loss(1, 100);
        let (ip, cport) = (w.nodes[1].ip.clone(), w.nodes[1].cport);
        let events = w.queue.len();
        w.connect(0, 7, &ip, cport);
        assert_eq!(w.queue.len(), events + 1);
        let timeout = w.connect_timeout_us(0);
        let done = w.queue.iter().any(|&Reverse((t, _, slot))| {
            matches!(
                w.slots.get(slot),
                Some(Some(Ev::ConnectDone {
                    link: 7,
                    ok: false,
                    refused: false,
                    ..
                }))
            ) && t == timeout
        });
        assert!(done, "no failed ConnectDone at the connect timeout");
    }
}
