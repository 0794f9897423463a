//! Replication in the simulated world: the node's own sans-IO replication
//! core (`hearsay_node::replication::Replication`) driven as the shell
//! (`server/replication.rs`) drives it, over simulated connections.
//!
//! Every decision is the core's: role changes (`set_master`), PSYNC continue
//! or full resync (`sync_request`), the backlog, offsets and replication IDs,
//! when a full sync's snapshot is taken (`due_full_syncs`, redis's diskless
//! delay), repl-timeout on both sides and the master's pings (`cron`),
//! replica ACKs (`ack_bytes`, `handle_ack`). The replica reads what the
//! master sends with the node's own reader (`protocol::MasterReader`) and
//! applies stream units as the shell does (MULTI..EXEC whole, PING, SELECT
//! and REPLCONF not applied). What is modelled is the shell's tasks and the
//! sockets: a connect (refused at once by a dead node, 2 s timeout across a
//! partition, as the shell's `CONNECT_TIMEOUT`), the handshake's three round
//! trips (PING, REPLCONF, PSYNC), the retry a second after a failed attempt,
//! an ACK every second and at each GETACK, and FINs when a side closes or
//! dies. A snapshot is loaded at once when it has arrived.

use super::{Ev, Item, World};
use bytes::{Bytes, BytesMut};
use hearsay_node::commands;
use hearsay_node::events::EventKind;
use hearsay_node::replication::protocol::{self, Item as RItem, MasterReader, PsyncReply};
use hearsay_node::replication::{
    LinkState, ReplicaId, Replication, RoleChange, SyncDecision, SyncRequest,
};
use hearsay_node::wire::NodeName;
use hearsay_workloads::rng::below;
use rand_chacha::ChaCha8Rng;
use std::net::{IpAddr, SocketAddr};

/// The shell's connect timeout to a master (`server/replication.rs`).
const CONNECT_TIMEOUT_US: u64 = 2_000_000;
/// The shell retries a failed link a second later (`RETRY_DELAY`).
const RETRY_US: u64 = 1_000_000;
/// The replica acks every second (`ACK_PERIOD`).
const ACK_US: u64 = 1_000_000;

/// What a replica sends its master (the client commands of the handshake,
/// then ACKs).
pub(super) enum ReplReq {
    Ping,
    /// `REPLCONF listening-port` and `REPLCONF capa eof capa psync2`, pipelined.
    Replconf,
    Psync {
        replid: String,
        offset: i64,
    },
    /// `REPLCONF ACK <offset>` as the core wrote it.
    Ack(Vec<u8>),
}

/// Where a replica's link attempt stands (the shell's `run_link`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Ping,
    /// REPLCONF replies still to come.
    Handshake(u8),
    Psync,
    Snapshot,
    Stream,
}

/// Stream commands of one unit, with their raw bytes.
type Pending = protocol::StreamUnit;

/// One replication connection (replica -> master's client port).
pub(super) struct ReplConn {
    replica: usize,
    master: usize,
    /// The replica's link generation it was opened for.
    gen: u64,
    /// The master the replica's core named (for events).
    master_name: NodeName,
    /// replica -> master, master -> replica pipes.
    up: usize,
    down: usize,
    stage: Stage,
    reader: MasterReader,
    buf: BytesMut,
    txn: Option<Pending>,
    /// The master's ID for it once PSYNC registered it.
    id: Option<ReplicaId>,
    /// The stream goes to it (its snapshot was queued, or it continued).
    streaming: bool,
    replica_open: bool,
    master_open: bool,
}

/// 40 random hex characters from the world's ID stream.
pub(super) fn random_replid(ids: &mut ChaCha8Rng) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..40)
        .map(|_| HEX[below(ids, 16) as usize] as char)
        .collect()
}

fn is_command(args: &[Bytes], name: &[u8]) -> bool {
    args.first().is_some_and(|a| a.eq_ignore_ascii_case(name))
}

impl World {
    fn ms(&self, i: usize) -> u64 {
        self.nodes[i].clock(self.now)
    }

    /// A fresh replication core for node i (a process start).
    pub(super) fn new_replication(&mut self, i: usize) -> Replication {
        let replid = random_replid(&mut self.ids);
        let cfg = super::super::node::repl_config(&self.nodes[i].cfg);
        Replication::new(replid, cfg, self.ms(i))
    }

    // ---- roles (the shell's sync_replication_role) ----

    /// Follows the core's `replication_master()`; after every input.
    pub(super) fn sync_replication(&mut self, i: usize) {
        let now = self.ms(i);
        let target = self.nodes[i].core.replication_master();
        let ids = &mut self.ids;
        let n = &mut self.nodes[i];
        let change = n
            .repl
            .set_master(target.clone(), || random_replid(ids), now);
        match change {
            RoleChange::None => {}
            RoleChange::BecameReplica { generation } => {
                let ids: Vec<ReplicaId> = n.replica_conns.keys().copied().collect();
                for id in ids {
                    self.drop_replica(i, id);
                }
                commands::set_replica_mode(&mut self.nodes[i].db, true);
                self.start_link(i, generation, false);
            }
            RoleChange::ChangedMaster {
                old,
                was_up,
                generation,
            } => {
                self.stop_link(i, old, was_up);
                self.start_link(i, generation, false);
            }
            RoleChange::BecameMaster { old, was_up } => {
                self.stop_link(i, old, was_up);
                commands::set_replica_mode(&mut self.nodes[i].db, false);
            }
        }
        let n = &mut self.nodes[i];
        n.core.set_repl_offset(n.repl.core_offset());
    }

    fn master_link_down(&mut self, i: usize, master: NodeName, was_up: bool) {
        if was_up {
            let now = self.ms(i);
            self.nodes[i].core.handle_master_link_down(now);
            self.emit(
                i,
                EventKind::ReplicationLinkDown {
                    master: master.to_string(),
                },
            );
        }
    }

    /// The link task ends: its socket closes.
    fn stop_link(&mut self, i: usize, old: NodeName, was_up: bool) {
        if let Some(rc) = self.nodes[i].link.take() {
            self.close_replica_side(rc);
        }
        self.master_link_down(i, old, was_up);
    }

    fn start_link(&mut self, i: usize, gen: u64, delay_first: bool) {
        let inc = self.nodes[i].inc;
        let t = self.now + if delay_first { RETRY_US } else { 0 };
        self.at(t, Ev::ReplAttempt { node: i, inc, gen });
    }

    fn close_replica_side(&mut self, rc: usize) {
        let c = &mut self.rconns[rc];
        if c.replica_open {
            c.replica_open = false;
            c.buf = BytesMut::new();
            c.txn = None;
            let up = c.up;
            if c.master_open {
                self.push(up, Item::ReplFin { rc });
            }
        }
    }

    fn close_master_side(&mut self, rc: usize) {
        let c = &mut self.rconns[rc];
        if c.master_open {
            c.master_open = false;
            let down = c.down;
            if c.replica_open {
                self.push(down, Item::ReplFin { rc });
            }
        }
    }

    /// A process dies: every replication connection it had closes (FIN
    /// behind what it sent).
    pub(super) fn repl_killed(&mut self, i: usize) {
        self.nodes[i].link = None;
        self.nodes[i].replica_conns.clear();
        for rc in 0..self.rconns.len() {
            let c = &self.rconns[rc];
            if c.replica == i {
                self.close_replica_side(rc);
            } else if c.master == i {
                self.close_master_side(rc);
            }
        }
    }

    // ---- replica side: one link attempt (the shell's replica_link/run_link) ----

    pub(super) fn repl_attempt(&mut self, i: usize, inc: u64, gen: u64) {
        if !self.nodes[i].alive || self.nodes[i].inc != inc {
            return;
        }
        if self.nodes[i].paused {
            self.at(
                self.now + super::TICK_US,
                Ev::ReplAttempt { node: i, inc, gen },
            );
            return;
        }
        let now = self.ms(i);
        if !self.nodes[i]
            .repl
            .link_stage(gen, LinkState::Connecting, now)
        {
            return;
        }
        let Some(u) = self.nodes[i].repl.upstream() else {
            return;
        };
        let target = u
            .host
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| self.by_client_addr.get(&SocketAddr::new(ip, u.port)))
            .copied();
        let (when, t, ok) = match target {
            // Nobody answers the SYN.
            None => (self.now + CONNECT_TIMEOUT_US, i, false),
            Some(t) if self.blocked(t, i) || self.blocked(i, t) => {
                (self.now + CONNECT_TIMEOUT_US, t, false)
            }
            Some(t) => {
                let rtt = self.latency(i, t) + self.latency(t, i);
                (self.now + rtt, t, self.nodes[t].alive)
            }
        };
        self.at(
            when,
            Ev::ReplConnectDone {
                node: i,
                inc,
                gen,
                target: t,
                ok,
            },
        );
    }

    pub(super) fn repl_connect_done(&mut self, i: usize, inc: u64, gen: u64, t: usize, ok: bool) {
        if !self.nodes[i].alive || self.nodes[i].inc != inc {
            return;
        }
        if self.nodes[i].paused {
            self.at(
                self.now + super::TICK_US,
                Ev::ReplConnectDone {
                    node: i,
                    inc,
                    gen,
                    target: t,
                    ok,
                },
            );
            return;
        }
        if !self.nodes[i].repl.is_current(gen) {
            return;
        }
        if !ok || !self.nodes[t].alive {
            self.link_failed(i, gen);
            return;
        }
        let now = self.ms(i);
        self.nodes[i]
            .repl
            .link_stage(gen, LinkState::Handshake, now);
        let master_name = self.nodes[i]
            .repl
            .upstream()
            .map_or(NodeName::NULL, |u| u.master);
        let up = self.new_pipe(i, t);
        let down = self.new_pipe(t, i);
        let rc = self.rconns.len();
        self.rconns.push(ReplConn {
            replica: i,
            master: t,
            gen,
            master_name,
            up,
            down,
            stage: Stage::Ping,
            reader: MasterReader::new(),
            buf: BytesMut::new(),
            txn: None,
            id: None,
            streaming: false,
            replica_open: true,
            master_open: true,
        });
        self.nodes[i].link = Some(rc);
        self.push(
            up,
            Item::ReplReq {
                rc,
                req: ReplReq::Ping,
            },
        );
    }

    /// The attempt failed (or the link broke): the core hears it, the socket
    /// closes, and the shell tries again a second later.
    fn link_failed(&mut self, i: usize, gen: u64) {
        let now = self.ms(i);
        let Some(was_up) = self.nodes[i].repl.link_lost(gen, now) else {
            return;
        };
        if let Some(rc) = self.nodes[i].link.take() {
            self.close_replica_side(rc);
        }
        let master = self.nodes[i]
            .repl
            .upstream()
            .map_or(NodeName::NULL, |u| u.master);
        self.master_link_down(i, master, was_up);
        self.start_link(i, gen, true);
        self.after_input(i);
    }

    /// Bytes from the master arrived on the replica's side of `rc`.
    fn replica_data(&mut self, i: usize, rc: usize, data: Bytes) {
        let gen = self.rconns[rc].gen;
        if self.nodes[i].link != Some(rc)
            || !self.rconns[rc].replica_open
            || !self.nodes[i].repl.is_current(gen)
        {
            return;
        }
        let fresh = data.len();
        self.rconns[rc].buf.extend_from_slice(&data);
        let mut units: Vec<Pending> = Vec::new();
        let mut started = false;
        loop {
            let c = &mut self.rconns[rc];
            let item = match c.reader.next(&mut c.buf) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_) => {
                    self.link_failed(i, gen);
                    return;
                }
            };
            if c.stage == Stage::Stream {
                let RItem::Command { args, raw } = item else {
                    self.link_failed(i, gen);
                    return;
                };
                match c.txn.as_mut() {
                    Some(block) => {
                        let exec = args.len() == 1 && is_command(&args, b"exec");
                        block.push((args, raw));
                        if exec {
                            units.extend(c.txn.take());
                        }
                    }
                    None if args.len() == 1 && is_command(&args, b"multi") => {
                        c.txn = Some(vec![(args, raw)])
                    }
                    None => units.push(vec![(args, raw)]),
                }
                continue;
            }
            if !self.handshake_item(i, rc, item) {
                return;
            }
            if self.nodes[i].link != Some(rc) || !self.nodes[i].repl.is_current(gen) {
                return;
            }
            started |= self.rconns[rc].stage == Stage::Stream;
        }
        if self.rconns[rc].stage == Stage::Stream {
            // Bytes that came with the reply or the snapshot count as read
            // before the stream loop (the shell passes 0 for them).
            let fresh = if started { 0 } else { fresh };
            self.apply_units(i, rc, units, fresh);
        }
        if started {
            // The ack timer's first tick is at once.
            self.repl_ack(rc);
        }
    }

    /// One reply line or the snapshot, before the stream; false if the
    /// attempt ended.
    fn handshake_item(&mut self, i: usize, rc: usize, item: RItem) -> bool {
        let gen = self.rconns[rc].gen;
        let stage = self.rconns[rc].stage;
        let up = self.rconns[rc].up;
        let now = self.ms(i);
        match (stage, item) {
            (Stage::Ping, RItem::Line(l)) => {
                // redis accepts an auth error as "alive" (AUTH would follow).
                if !l.starts_with('+') && !l.starts_with("-NOAUTH") && !l.starts_with("-NOPERM") {
                    self.link_failed(i, gen);
                    return false;
                }
                self.rconns[rc].stage = Stage::Handshake(2);
                self.push(
                    up,
                    Item::ReplReq {
                        rc,
                        req: ReplReq::Replconf,
                    },
                );
            }
            (Stage::Handshake(k), RItem::Line(_)) => {
                // Errors to REPLCONF are not critical.
                if k > 1 {
                    self.rconns[rc].stage = Stage::Handshake(k - 1);
                    return true;
                }
                let Some((replid, offset)) = self.nodes[i].repl.psync_args(gen) else {
                    return false;
                };
                self.rconns[rc].stage = Stage::Psync;
                self.push(
                    up,
                    Item::ReplReq {
                        rc,
                        req: ReplReq::Psync { replid, offset },
                    },
                );
            }
            (Stage::Psync, RItem::Line(l)) => match protocol::parse_psync_reply(&l) {
                PsyncReply::FullResync { replid, offset } => {
                    let n = &mut self.nodes[i];
                    if !n.repl.full_resync_announced(gen, replid, offset, now) {
                        return false;
                    }
                    // Offset 0 announced until the snapshot is loaded.
                    n.core.set_repl_offset(n.repl.core_offset());
                    let c = &mut self.rconns[rc];
                    c.reader.expect_snapshot();
                    c.stage = Stage::Snapshot;
                    self.after_input(i);
                }
                PsyncReply::Continue { replid } => {
                    let n = &mut self.nodes[i];
                    if n.repl.continued(gen, replid, now).is_none() {
                        return false;
                    }
                    let offset = n.repl.core_offset();
                    self.master_link_up(i, rc, offset, now, |master| EventKind::PartialSync {
                        master,
                        offset,
                    });
                }
                PsyncReply::TryLater(_) | PsyncReply::Error(_) => {
                    self.link_failed(i, gen);
                    return false;
                }
            },
            (Stage::Snapshot, RItem::Payload(p)) => {
                let Ok((db, loaded)) = hearsay_node::rdb::file::load_db(&p, None) else {
                    self.link_failed(i, gen);
                    return false;
                };
                let n = &mut self.nodes[i];
                let _old = n.db.replace_with(db, now);
                commands::set_replica_mode(&mut n.db, true);
                let Some(offset) = n.repl.full_sync_done(gen, now) else {
                    return false;
                };
                self.master_link_up(i, rc, offset, now, |master| EventKind::FullSync {
                    master,
                    offset,
                    keys: loaded.keys,
                });
            }
            _ => {
                self.link_failed(i, gen);
                return false;
            }
        }
        true
    }

    /// The stream phase begins.
    fn stream_starts(&mut self, i: usize, rc: usize) {
        let c = &mut self.rconns[rc];
        c.reader.expect_stream();
        c.stage = Stage::Stream;
        self.after_input(i);
    }

    /// The ack timer of a link in the stream phase.
    pub(super) fn repl_ack(&mut self, rc: usize) {
        let c = &self.rconns[rc];
        let (i, gen, up) = (c.replica, c.gen, c.up);
        if !c.replica_open || self.nodes[i].link != Some(rc) {
            return;
        }
        if self.nodes[i].paused {
            self.at(self.now + super::TICK_US, Ev::ReplAck { rc });
            return;
        }
        let Some(ack) = self.nodes[i].repl.ack_bytes(gen) else {
            return;
        };
        self.push(
            up,
            Item::ReplReq {
                rc,
                req: ReplReq::Ack(ack),
            },
        );
        self.at(self.now + ACK_US, Ev::ReplAck { rc });
    }

    /// The link to the master is up after a partial or full sync: the core
    /// learns the offset, the sync's event and ReplicationLinkUp are logged,
    /// and the stream starts.
    fn master_link_up(
        &mut self,
        i: usize,
        rc: usize,
        offset: u64,
        now: u64,
        sync_event: impl FnOnce(String) -> EventKind,
    ) {
        let n = &mut self.nodes[i];
        n.core.set_repl_offset(offset);
        n.core.handle_master_link_up(now);
        let master = self.rconns[rc].master_name.to_string();
        self.emit(i, sync_event(master.clone()));
        self.emit(i, EventKind::ReplicationLinkUp { master });
        self.stream_starts(i, rc);
    }

    /// Applies complete stream units (the shell's apply_stream).
    fn apply_units(&mut self, i: usize, rc: usize, units: Vec<Pending>, fresh: usize) {
        let (gen, up) = (self.rconns[rc].gen, self.rconns[rc].up);
        let now = self.ms(i);
        let now_us = self.now;
        self.nodes[i].repl.received(gen, fresh, now);
        let mut acks = Vec::new();
        for unit in units {
            let raw = protocol::unit_bytes(&unit);
            let n = &mut self.nodes[i];
            for (args, _) in unit {
                if is_command(&args, b"replconf") {
                    if args
                        .get(1)
                        .is_some_and(|s| s.eq_ignore_ascii_case(b"getack"))
                    {
                        acks.extend(n.repl.ack_bytes(gen));
                    }
                    continue;
                }
                let bare = |name: &[u8]| args.len() == 1 && is_command(&args, name);
                if bare(b"ping") || is_command(&args, b"select") {
                    continue;
                }
                if !bare(b"multi") && !bare(b"exec") {
                    n.apply_replicated(now_us, args);
                }
            }
            n.repl.applied(gen, raw);
        }
        self.nodes[i].core.handle_master_activity(now);
        for ack in acks {
            self.push(
                up,
                Item::ReplReq {
                    rc,
                    req: ReplReq::Ack(ack),
                },
            );
        }
        self.after_input(i);
    }

    // ---- master side ----

    /// A replica's request arrived at master `m`.
    fn master_request(&mut self, m: usize, rc: usize, req: ReplReq) {
        if !self.rconns[rc].master_open {
            return;
        }
        let down = self.rconns[rc].down;
        let now = self.ms(m);
        match req {
            ReplReq::Ping => self.push(
                down,
                Item::ReplData {
                    rc,
                    data: Bytes::from_static(b"+PONG\r\n"),
                },
            ),
            ReplReq::Replconf => self.push(
                down,
                Item::ReplData {
                    rc,
                    data: Bytes::from_static(b"+OK\r\n+OK\r\n"),
                },
            ),
            ReplReq::Ack(bytes) => {
                let Some(id) = self.rconns[rc].id else {
                    return;
                };
                let mut buf = BytesMut::from(&bytes[..]);
                if let Ok(Some(Some(offset))) = protocol::next_ack(&mut buf) {
                    self.nodes[m].repl.handle_ack(id, offset, now);
                }
            }
            ReplReq::Psync { replid, offset } => {
                let r = self.rconns[rc].replica;
                let req = SyncRequest {
                    psync: Some((replid, offset)),
                    ip: self.nodes[r].ip.clone(),
                    port: self.nodes[r].port,
                    capa_eof: true,
                    capa_psync2: true,
                };
                let mut log = Vec::new();
                let ids = &mut self.ids;
                let decision =
                    self.nodes[m]
                        .repl
                        .sync_request(req, || random_replid(ids), now, &mut log);
                match decision {
                    SyncDecision::Refuse(text) => {
                        self.push(
                            down,
                            Item::ReplData {
                                rc,
                                data: Bytes::from(format!("-{text}\r\n")),
                            },
                        );
                        return;
                    }
                    SyncDecision::Continue { id, head, backlog } => {
                        self.stats.partial_syncs += 1;
                        let mut first = head;
                        for b in backlog {
                            first.extend_from_slice(&b);
                        }
                        let c = &mut self.rconns[rc];
                        c.id = Some(id);
                        c.streaming = true;
                        self.nodes[m].replica_conns.insert(id, rc);
                        self.push(
                            down,
                            Item::ReplData {
                                rc,
                                data: Bytes::from(first),
                            },
                        );
                    }
                    SyncDecision::Full { id } => {
                        self.stats.full_syncs += 1;
                        self.rconns[rc].id = Some(id);
                        self.nodes[m].replica_conns.insert(id, rc);
                        self.start_due_full_syncs(m);
                    }
                }
                self.after_input(m);
            }
        }
    }

    /// The full syncs that are due get one snapshot of the data set now.
    fn start_due_full_syncs(&mut self, m: usize) {
        let now = self.ms(m);
        let ids = self.nodes[m].repl.due_full_syncs(now);
        if ids.is_empty() {
            return;
        }
        let n = &mut self.nodes[m];
        let info = n.repl.save_info();
        let payload = hearsay_node::rdb::file::write_db(
            &n.db,
            hearsay_node::rdb::Options::default(),
            now / 1000,
            info.as_ref(),
        );
        let (replid, offset) = n.repl.snapshot_taken(&ids);
        for id in ids {
            let Some(&rc) = self.nodes[m].replica_conns.get(&id) else {
                continue;
            };
            let mut data =
                format!("+FULLRESYNC {replid} {offset}\r\n${}\r\n", payload.len()).into_bytes();
            data.extend_from_slice(&payload);
            let down = self.rconns[rc].down;
            self.rconns[rc].streaming = true;
            self.push(
                down,
                Item::ReplData {
                    rc,
                    data: Bytes::from(data),
                },
            );
            // The payload is in the socket: the replica is online.
            let n = &mut self.nodes[m];
            if n.repl.bulk_sent(id, now) {
                let Some(r) = n.repl.replica(id) else {
                    continue;
                };
                let offset = r.sync_offset;
                let replica = n
                    .core
                    .node_by_addr(&r.ip, r.port)
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| format!("{}:{}", r.ip, r.port));
                self.emit(m, EventKind::ReplicaSynced { replica, offset });
            }
        }
    }

    /// The master drops a replica (timeout, role change): its socket closes.
    fn drop_replica(&mut self, m: usize, id: ReplicaId) {
        let Some(rc) = self.nodes[m].replica_conns.remove(&id) else {
            return;
        };
        let now = self.ms(m);
        self.nodes[m].repl.remove_replica(id, now);
        self.close_master_side(rc);
    }

    /// Stream bytes to every replica that follows the stream.
    fn fan_out(&mut self, m: usize, bytes: Bytes) {
        let conns: Vec<usize> = self.nodes[m].replica_conns.values().copied().collect();
        for rc in conns {
            let c = &self.rconns[rc];
            if c.streaming && c.master_open {
                let down = c.down;
                self.push(
                    down,
                    Item::ReplData {
                        rc,
                        data: bytes.clone(),
                    },
                );
            }
        }
    }

    /// Applied writes into the stream, in order (the shell's feed_writes).
    pub(super) fn feed_writes(&mut self, m: usize, writes: &[Vec<Bytes>]) {
        for w in writes {
            if let Some(bytes) = self.nodes[m].repl.feed(w) {
                self.fan_out(m, bytes);
            }
        }
    }

    /// One request's writes; several go inside MULTI/EXEC (redis 7.0).
    pub(super) fn feed_request(&mut self, m: usize, writes: &[Vec<Bytes>]) {
        if writes.len() > 1 {
            self.feed_writes(m, &[vec![Bytes::from_static(b"MULTI")]]);
            self.feed_writes(m, writes);
            self.feed_writes(m, &[vec![Bytes::from_static(b"EXEC")]]);
        } else {
            self.feed_writes(m, writes);
        }
    }

    // ---- both sides ----

    /// A replication item reached node `to`.
    pub(super) fn repl_deliver(&mut self, to: usize, item: Item) {
        match item {
            Item::ReplReq { rc, req } => self.master_request(to, rc, req),
            Item::ReplData { rc, data } => self.replica_data(to, rc, data),
            Item::ReplFin { rc } => {
                let c = &self.rconns[rc];
                if to == c.replica {
                    if self.nodes[to].link == Some(rc) && c.replica_open {
                        let gen = c.gen;
                        self.link_failed(to, gen);
                    }
                } else if c.master_open {
                    self.rconns[rc].master_open = false;
                    if let Some(id) = self.rconns[rc].id {
                        if self.nodes[to].replica_conns.get(&id) == Some(&rc) {
                            self.nodes[to].replica_conns.remove(&id);
                            let now = self.ms(to);
                            self.nodes[to].repl.remove_replica(id, now);
                            self.after_input(to);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The replication part of the cron (the shell's replication_cron: due
    /// full syncs every tick, the core's cron once a second).
    pub(super) fn repl_cron(&mut self, i: usize) {
        self.start_due_full_syncs(i);
        let now = self.ms(i);
        if now.saturating_sub(self.nodes[i].repl_cron_ms) < 1000 {
            return;
        }
        self.nodes[i].repl_cron_ms = now;
        let n = &mut self.nodes[i];
        let paused = n.core.client_pause_until().is_some_and(|t| now < t);
        let out = n.repl.cron(now, paused);
        if let Some(bytes) = out.stream {
            self.fan_out(i, bytes);
        }
        for id in out.presync {
            if let Some(&rc) = self.nodes[i].replica_conns.get(&id) {
                let down = self.rconns[rc].down;
                self.push(
                    down,
                    Item::ReplData {
                        rc,
                        data: Bytes::from_static(b"\n"),
                    },
                );
            }
        }
        for id in out.timed_out {
            self.drop_replica(i, id);
        }
        if out.backlog_freed {
            let replid = random_replid(&mut self.ids);
            self.nodes[i].repl.backlog_freed(replid);
        }
        if out.master_timed_out {
            if let Some(gen) = self.nodes[i].repl.upstream().map(|u| u.generation) {
                self.link_failed(i, gen);
            }
        }
    }

    /// INFO replication's fields the snapshots keep (`replication_fields`).
    pub fn replication_json(&self, i: usize) -> serde_json::Value {
        let r = &self.nodes[i].repl;
        let mut v = serde_json::json!({
            "role": if r.is_replica() { "slave" } else { "master" },
            "offset": r.offset(),
            "replid": r.replid(),
        });
        if let Some(u) = r.upstream() {
            let up = u.state == LinkState::Connected;
            v["link"] = serde_json::json!(if up { "up" } else { "down" });
            v["master_host"] = serde_json::json!(u.host);
            v["master_port"] = serde_json::json!(u.port);
        }
        v
    }

    /// The node's link to its master is up (INFO `master_link_status:up`).
    pub fn link_up(&self, i: usize) -> bool {
        self.nodes[i]
            .repl
            .upstream()
            .is_some_and(|u| u.state == LinkState::Connected)
    }
}
