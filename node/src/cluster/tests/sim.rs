//! A deterministic in-memory network of `Cluster` cores (in the style of
//! quinn's `Pair` and raft-rs's `Network`): a virtual clock stepped in 100 ms
//! ticks, zero-latency FIFO links, partitions (`cut`, `isolate`, `heal`),
//! paused nodes (no ticks, no delivery: their inbox fills up as a SIGSTOPped
//! process's socket buffers would), kills and restarts from the last saved
//! nodes.conf.
//!
//! Links: `Action::Connect` to a live, reachable node creates a connection:
//! the target gets `handle_accept`, the source `handle_connected`. Across a
//! cut, or to a dead node, the connect fails (`handle_connect_failed`).
//! Connections survive a cut (packets are silently dropped, as with a
//! firewall DROP rule), so the cores' own staleness rules must notice.
//!
//! Replication is modelled as the shell would drive it: each node has a
//! replication offset (`write` advances a master's); every step, a replica
//! whose core names a master (`replication_master`) connects when that master
//! is reachable (full sync to the master's offset, then
//! `handle_master_link_up`), and then copies the master's offset and reports
//! `handle_master_activity` while it can hear the master. A killed master
//! breaks the link (`handle_master_link_down`); a paused or cut-off master
//! leaves it up but silent, like a TCP connection without a reset.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;

use crate::cluster::{Action, Cluster, ClusterConfig, Keyspace, LinkId, LogLevel, Millis};
use crate::events::{Event, EventKind};
use crate::resp::Frame;
use crate::slots::key_slot;
use crate::wire::{Message, NodeName};

/// Decides whether to drop a packet: `(from, to, message)`.
pub type DropFilter = Box<dyn Fn(usize, usize, &Message) -> bool>;

/// Virtual time at which every simulation starts (a plausible wall clock).
pub const T0: Millis = 1_700_000_000_000;
/// The cron period.
pub const TICK: Millis = 100;

/// A tiny keyspace: key names only, enough for the CLUSTER subcommands that
/// look at keys and for `DeleteKeysInSlots`.
#[derive(Default, Debug, Clone)]
pub struct MemKeys {
    pub keys: BTreeSet<Bytes>,
}

impl MemKeys {
    pub fn add(&mut self, key: &str) {
        self.keys.insert(Bytes::copy_from_slice(key.as_bytes()));
    }
}

impl Keyspace for MemKeys {
    fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.keys.iter().filter(|k| key_slot(k) == slot).count()
    }
    fn keys_in_slot(&self, slot: u16, count: usize) -> Vec<Bytes> {
        self.keys
            .iter()
            .filter(|k| key_slot(k) == slot)
            .take(count)
            .cloned()
            .collect()
    }
    fn key_count(&self) -> usize {
        self.keys.len()
    }
}

/// One simulated process.
pub struct SimNode {
    pub core: Cluster,
    pub cfg: ClusterConfig,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub paused: bool,
    pub alive: bool,
    /// Last nodes.conf content the core asked to save.
    pub conf: Option<String>,
    pub saves: usize,
    pub keys: MemKeys,
    /// Every event, with the virtual time it was produced at.
    pub events: Vec<(Millis, Event)>,
    pub logs: Vec<(Millis, LogLevel, String)>,
    /// `DeleteKeysInSlots` requests received.
    pub deleted_slots: Vec<Vec<u16>>,
    /// Replication offset the shell reports (`set_repl_offset`).
    pub repl_offset: u64,
    /// The master our replication link is connected to, if any.
    pub repl_link: Option<NodeName>,
    /// The replica keeps its link (and hears pings) but receives no data.
    pub repl_hold: bool,
}

/// Something waiting to be handed to a node.
#[derive(Debug)]
enum Delivery {
    /// Our connect succeeded (source side).
    Connected {
        link: LinkId,
        conn: usize,
    },
    ConnectFailed {
        link: LinkId,
    },
    /// A peer connected to us (server side).
    Accept {
        conn: usize,
    },
    Packet {
        conn: usize,
        msg: Box<Message>,
    },
    Closed {
        conn: usize,
    },
}

#[derive(Debug)]
struct Conn {
    client: usize,
    client_link: LinkId,
    server: usize,
    /// Assigned when the server side processes the accept.
    server_link: Option<LinkId>,
    client_port: u16,
    open: bool,
}

pub struct Sim {
    pub now: Millis,
    pub nodes: Vec<SimNode>,
    conns: Vec<Conn>,
    /// (node, link) -> conn index.
    by_link: BTreeMap<(usize, LinkId), usize>,
    inbox: Vec<VecDeque<Delivery>>,
    /// Unordered pairs that cannot talk.
    cuts: BTreeSet<(usize, usize)>,
    next_ephemeral: u16,
    seed: u64,
    restarts: u64,
    /// Packets dropped by cuts or by `drop_filter`.
    pub dropped: usize,
    /// Encode every message to bytes and decode it back before delivery, so
    /// the cores only ever see what survives the real wire format.
    pub codec_roundtrip: bool,
    /// Drops a packet when it returns true: `(from, to, message)`. For
    /// targeted faults (e.g. lose every UPDATE, or PONGs from one node).
    pub drop_filter: Option<DropFilter>,
    /// Packets delivered, per message type.
    pub delivered: BTreeMap<u16, usize>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// Config used by most tests: short timeouts so that scenarios take a few
/// virtual seconds.
pub fn test_config(i: usize, node_timeout: u64) -> ClusterConfig {
    ClusterConfig {
        node_timeout,
        announce_port: 7000 + i as u16,
        announce_bus_port: 17000 + i as u16,
        ..ClusterConfig::default()
    }
}

impl Sim {
    /// `n` fresh nodes (no nodes.conf) with `cfg(i)`; node i listens on
    /// 127.0.0.(i+1):(7000+i), bus port 17000+i.
    pub fn new(n: usize, seed: u64, cfg: impl Fn(usize) -> ClusterConfig) -> Sim {
        let mut sim = Sim {
            now: T0,
            nodes: Vec::new(),
            conns: Vec::new(),
            by_link: BTreeMap::new(),
            inbox: Vec::new(),
            cuts: BTreeSet::new(),
            next_ephemeral: 40000,
            seed,
            restarts: 0,
            dropped: 0,
            codec_roundtrip: true,
            drop_filter: None,
            delivered: BTreeMap::new(),
        };
        for i in 0..n {
            let c = cfg(i);
            let core = Cluster::new(
                c.clone(),
                sim.now,
                seed.wrapping_mul(1000).wrapping_add(i as u64),
                None,
            )
            .unwrap_or_else(|e| panic!("new node {i}: {e}"));
            sim.add_node(core, c);
        }
        sim
    }

    /// Adds a node built elsewhere (e.g. from a nodes.conf text).
    pub fn add_node(&mut self, core: Cluster, cfg: ClusterConfig) -> usize {
        let i = self.nodes.len();
        self.nodes.push(SimNode {
            core,
            ip: format!("127.0.0.{}", i + 1),
            port: cfg.announce_port,
            cport: cfg.announce_bus_port,
            cfg,
            paused: false,
            alive: true,
            conf: None,
            saves: 0,
            keys: MemKeys::default(),
            events: Vec::new(),
            logs: Vec::new(),
            deleted_slots: Vec::new(),
            repl_offset: 0,
            repl_link: None,
            repl_hold: false,
        });
        self.inbox.push(VecDeque::new());
        self.drain(i);
        self.deliver_all();
        i
    }

    pub fn id(&self, i: usize) -> NodeName {
        self.nodes[i].core.myself()
    }

    fn can_talk(&self, a: usize, b: usize) -> bool {
        a == b || !self.cuts.contains(&pair(a, b))
    }

    // ---- faults ----

    pub fn cut(&mut self, a: usize, b: usize) {
        if a != b {
            self.cuts.insert(pair(a, b));
        }
    }

    pub fn isolate(&mut self, a: usize) {
        for b in 0..self.nodes.len() {
            self.cut(a, b);
        }
    }

    pub fn heal(&mut self) {
        self.cuts.clear();
    }

    pub fn pause(&mut self, i: usize) {
        self.nodes[i].paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.nodes[i].paused = false;
        self.deliver_all();
    }

    /// SIGKILL: the peers see every connection close.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.inbox[i].clear();
        let conns: Vec<usize> = (0..self.conns.len())
            .filter(|&c| {
                self.conns[c].open && (self.conns[c].client == i || self.conns[c].server == i)
            })
            .collect();
        for c in conns {
            self.conns[c].open = false;
            let other = if self.conns[c].client == i {
                self.conns[c].server
            } else {
                self.conns[c].client
            };
            self.inbox[other].push_back(Delivery::Closed { conn: c });
        }
        self.by_link.retain(|&(n, _), _| n != i);
        self.deliver_all();
    }

    /// Restarts a killed node from its last saved nodes.conf.
    pub fn restart(&mut self, i: usize) {
        self.restarts += 1;
        let conf = self.nodes[i].conf.clone();
        let seed = self.seed.wrapping_mul(7919).wrapping_add(self.restarts);
        let core = Cluster::new(self.nodes[i].cfg.clone(), self.now, seed, conf.as_deref())
            .unwrap_or_else(|e| panic!("restart node {i}: {e}"));
        let n = &mut self.nodes[i];
        n.core = core;
        n.alive = true;
        n.paused = false;
        n.repl_link = None;
        // The dataset (and its offset) survives the restart.
        n.core.set_repl_offset(n.repl_offset);
        self.drain(i);
        self.deliver_all();
    }

    // ---- driving ----

    /// `CLUSTER <args>` on node i, then its before_sleep and deliveries.
    pub fn cmd(&mut self, i: usize, args: &[&str]) -> Frame {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let n = &mut self.nodes[i];
        let reply = n.core.command(self.now, &args, &n.keys, false);
        n.core.before_sleep(self.now);
        self.drain(i);
        self.deliver_all();
        reply
    }

    /// `CLUSTER MEET` from a to b.
    pub fn meet(&mut self, a: usize, b: usize) {
        let (ip, port) = (self.nodes[b].ip.clone(), self.nodes[b].port.to_string());
        let cport = self.nodes[b].cport.to_string();
        let r = self.cmd(a, &["MEET", &ip, &port, &cport]);
        assert_eq!(r, Frame::ok(), "MEET {a} -> {b}");
    }

    /// Node i meets i+1 for all i.
    pub fn meet_chain(&mut self) {
        for i in 0..self.nodes.len().saturating_sub(1) {
            self.meet(i, i + 1);
        }
    }

    /// One 100 ms step: every running node's replication inputs, cron and
    /// before_sleep, then all deliveries until the network is quiet.
    pub fn step(&mut self) {
        self.now += TICK;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive || self.nodes[i].paused {
                continue;
            }
            self.replicate(i);
            let now = self.now;
            let core = &mut self.nodes[i].core;
            core.tick(now);
            core.before_sleep(now);
            self.drain(i);
        }
        self.deliver_all();
    }

    pub fn run_for(&mut self, ms: Millis) {
        let end = self.now + ms;
        while self.now < end {
            self.step();
        }
    }

    /// Steps until `pred` holds (checked after every step); returns the virtual
    /// ms it took, or None after `max_ms`.
    pub fn run_until(
        &mut self,
        max_ms: Millis,
        mut pred: impl FnMut(&Sim) -> bool,
    ) -> Option<Millis> {
        let start = self.now;
        while self.now - start < max_ms {
            if pred(self) {
                return Some(self.now - start);
            }
            self.step();
        }
        pred(self).then(|| self.now - start)
    }

    /// Index of the node whose core has ID `name`.
    pub fn index_of(&self, name: &NodeName) -> Option<usize> {
        self.nodes.iter().position(|n| n.core.myself() == *name)
    }

    /// `bytes` of writes applied on node i (a master): its offset grows.
    pub fn write(&mut self, i: usize, bytes: u64) {
        let n = &mut self.nodes[i];
        n.repl_offset += bytes;
        n.core.set_repl_offset(n.repl_offset);
    }

    /// The shell's replication client for node i, one step's worth.
    fn replicate(&mut self, i: usize) {
        let now = self.now;
        let target = self.nodes[i]
            .core
            .replication_master()
            .and_then(|(name, _, _)| self.index_of(&name).map(|t| (name, t)));
        let Some((name, t)) = target else {
            // Not a replica (any more): stop syncing, keep the offset.
            self.nodes[i].repl_link = None;
            return;
        };
        let reachable = self.nodes[t].alive && !self.nodes[t].paused && self.can_talk(i, t);
        let master_offset = self.nodes[t].repl_offset;
        let n = &mut self.nodes[i];
        if n.repl_link != Some(name) {
            if n.repl_link.take().is_some() {
                n.core.handle_master_link_down(now);
            }
            if reachable {
                // Full sync: the snapshot brings us to the master's offset.
                n.repl_offset = master_offset;
                n.core.set_repl_offset(master_offset);
                n.core.handle_master_link_up(now);
                n.repl_link = Some(name);
            }
        } else if reachable {
            if !n.repl_hold {
                n.repl_offset = master_offset;
                n.core.set_repl_offset(master_offset);
            }
            n.core.handle_master_activity(now);
        } else if !self.nodes[t].alive && self.can_talk(i, t) {
            // The dead master's socket was reset (a cut would hide the reset).
            let n = &mut self.nodes[i];
            n.repl_link = None;
            n.core.handle_master_link_down(now);
        }
        self.nodes[i].core.before_sleep(now);
        self.drain(i);
    }

    fn addr(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(
            ip.parse()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            port,
        )
    }

    /// Executes node i's pending actions.
    fn drain(&mut self, i: usize) {
        while let Some(a) = self.nodes[i].core.poll_action() {
            let now = self.now;
            match a {
                Action::Connect { link, ip, port } => {
                    let target = self
                        .nodes
                        .iter()
                        .position(|n| n.ip == ip && n.cport == port);
                    match target {
                        Some(t) if self.nodes[t].alive && self.can_talk(i, t) => {
                            let c = self.conns.len();
                            self.next_ephemeral = self.next_ephemeral.wrapping_add(1).max(40000);
                            self.conns.push(Conn {
                                client: i,
                                client_link: link,
                                server: t,
                                server_link: None,
                                client_port: self.next_ephemeral,
                                open: true,
                            });
                            self.by_link.insert((i, link), c);
                            // The kernel completes the handshake even for a
                            // paused server: the client sees it connected.
                            self.inbox[t].push_back(Delivery::Accept { conn: c });
                            self.inbox[i].push_back(Delivery::Connected { link, conn: c });
                        }
                        _ => self.inbox[i].push_back(Delivery::ConnectFailed { link }),
                    }
                }
                Action::Send { link, msg } => {
                    let Some(&c) = self.by_link.get(&(i, link)) else {
                        continue;
                    };
                    let conn = &self.conns[c];
                    if !conn.open {
                        continue;
                    }
                    let to = if conn.client == i {
                        conn.server
                    } else {
                        conn.client
                    };
                    self.inbox[to].push_back(Delivery::Packet {
                        conn: c,
                        msg: Box::new(msg),
                    });
                }
                Action::Close { link } => {
                    let Some(c) = self.by_link.remove(&(i, link)) else {
                        continue;
                    };
                    let conn = &mut self.conns[c];
                    if !conn.open {
                        continue;
                    }
                    conn.open = false;
                    let to = if conn.client == i {
                        conn.server
                    } else {
                        conn.client
                    };
                    self.inbox[to].push_back(Delivery::Closed { conn: c });
                }
                Action::SaveConfig { contents, .. } => {
                    self.nodes[i].conf = Some(contents);
                    self.nodes[i].saves += 1;
                }
                Action::DeleteKeysInSlots { slots } => {
                    self.nodes[i]
                        .keys
                        .keys
                        .retain(|k| !slots.contains(&key_slot(k)));
                    self.nodes[i].deleted_slots.push(slots);
                }
                Action::FlushAll => self.nodes[i].keys.keys.clear(),
                Action::Event(e) => self.nodes[i].events.push((now, e)),
                Action::Log { level, text } => self.nodes[i].logs.push((now, level, text)),
                // No clients in the simulation.
                Action::Publish { .. } | Action::DropShardChannels { .. } => {}
            }
        }
    }

    /// Hands out deliveries until every running node's inbox is empty.
    fn deliver_all(&mut self) {
        let mut budget = 1_000_000usize;
        loop {
            let mut progressed = false;
            for i in 0..self.nodes.len() {
                if !self.nodes[i].alive {
                    self.inbox[i].clear();
                    continue;
                }
                if self.nodes[i].paused {
                    continue;
                }
                while let Some(d) = self.inbox[i].pop_front() {
                    progressed = true;
                    budget = budget.saturating_sub(1);
                    self.deliver(i, d);
                    self.nodes[i].core.before_sleep(self.now);
                    self.drain(i);
                }
            }
            if !progressed {
                break;
            }
            assert!(budget > 0, "message storm: the network never went quiet");
        }
    }

    fn deliver(&mut self, i: usize, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::Connected { link, conn } => {
                let port = self.conns[conn].client_port;
                let local = Self::addr(&self.nodes[i].ip, port);
                if self.conns[conn].open {
                    self.nodes[i].core.handle_connected(now, link, local);
                } else {
                    self.nodes[i]
                        .core
                        .handle_connect_failed(now, link, "Connection refused");
                }
            }
            Delivery::ConnectFailed { link } => {
                self.nodes[i]
                    .core
                    .handle_connect_failed(now, link, "Connection refused");
            }
            Delivery::Accept { conn } => {
                let c = &self.conns[conn];
                if !c.open {
                    return;
                }
                let peer = Self::addr(&self.nodes[c.client].ip, c.client_port);
                let local = Self::addr(&self.nodes[i].ip, self.nodes[i].cport);
                let link = self.nodes[i].core.handle_accept(now, peer, local);
                self.conns[conn].server_link = Some(link);
                self.by_link.insert((i, link), conn);
            }
            Delivery::Packet { conn, msg } => {
                let c = &self.conns[conn];
                let from = if c.client == i { c.server } else { c.client };
                let link = if c.client == i {
                    Some(c.client_link)
                } else {
                    c.server_link
                };
                if !c.open || !self.can_talk(i, from) {
                    self.dropped += 1;
                    return;
                }
                let Some(link) = link else { return };
                if self.drop_filter.as_ref().is_some_and(|f| f(from, i, &msg)) {
                    self.dropped += 1;
                    return;
                }
                let msg = if self.codec_roundtrip {
                    Self::roundtrip(&msg)
                } else {
                    *msg
                };
                *self.delivered.entry(msg.header.msg_type).or_default() += 1;
                self.nodes[i].core.handle_packet(now, link, msg);
            }
            Delivery::Closed { conn } => {
                let c = &self.conns[conn];
                let link = if c.client == i {
                    Some(c.client_link)
                } else {
                    c.server_link
                };
                if let Some(link) = link {
                    self.by_link.remove(&(i, link));
                    self.nodes[i].core.handle_link_closed(now, link);
                }
            }
        }
    }

    /// What the peer would decode from the bytes we would send.
    fn roundtrip(msg: &Message) -> Message {
        let mut buf = Vec::new();
        crate::wire::encode(msg, &mut buf);
        let prefix: [u8; 8] = buf
            .get(..8)
            .and_then(|p| p.try_into().ok())
            .unwrap_or([0; 8]);
        let totlen = crate::wire::check_prefix(&prefix)
            .unwrap_or_else(|e| panic!("bad prefix {e}: {msg:?}"));
        assert_eq!(totlen as usize, buf.len(), "totlen of {msg:?}");
        crate::wire::decode(&buf)
            .unwrap_or_else(|e| panic!("decode of our own encoding failed: {e}: {msg:?}"))
    }

    // ---- observations ----

    /// Events of node i matching `f`.
    pub fn events<'a>(
        &'a self,
        i: usize,
        f: impl Fn(&EventKind) -> bool + 'a,
    ) -> Vec<&'a EventKind> {
        self.nodes[i]
            .events
            .iter()
            .map(|(_, e)| &e.kind)
            .filter(|k| f(k))
            .collect()
    }

    /// Whether node i's log has a line containing `text`.
    pub fn logged(&self, i: usize, text: &str) -> bool {
        self.nodes[i].logs.iter().any(|(_, _, t)| t.contains(text))
    }
}
