//! Replica failover, voting, manual failover, replica migration and the
//! restart rules (reference section 5), in the simulator and on hand-driven
//! cores.

use std::collections::BTreeMap;

use crate::cluster::ClusterConfig;
use crate::events::{EpochReason, EventKind, ManualFailoverMode, Role, SlotChangeReason};
use crate::resp::Frame;
use crate::wire::node_flags::*;
use crate::wire::NodeName;

use super::sim::{test_config, Sim};

pub(super) const TIMEOUT: u64 = 1000;

/// `masters` masters splitting the slots evenly, then one replica per entry
/// of `replica_of` (node `masters + k` replicates master `replica_of[k]`),
/// fully meshed, state ok everywhere, every replica synced. `cfg` may adjust
/// each node's config.
pub(super) fn build(
    masters: usize,
    replica_of: &[usize],
    seed: u64,
    cfg: impl Fn(usize, &mut ClusterConfig),
) -> Sim {
    let n = masters + replica_of.len();
    let mut sim = Sim::new(n, seed, |i| {
        let mut c = test_config(i, TIMEOUT);
        cfg(i, &mut c);
        c
    });
    let per = 16384 / masters;
    for m in 0..masters {
        let start = m * per;
        let end = if m == masters - 1 {
            16383
        } else {
            start + per - 1
        };
        let r = sim.cmd(m, &["ADDSLOTSRANGE", &start.to_string(), &end.to_string()]);
        assert_eq!(r, Frame::ok());
    }
    sim.meet_chain();
    sim.run_until(20_000, |s| {
        s.nodes
            .iter()
            .all(|x| x.core.known_ids().len() == n && x.core.handshake_count() == 0)
    })
    .expect("mesh");
    for (k, &m) in replica_of.iter().enumerate() {
        let mid = sim.id(m).to_string();
        assert_eq!(sim.cmd(masters + k, &["REPLICATE", &mid]), Frame::ok());
    }
    sim.run_until(20_000, |s| {
        s.nodes.iter().all(|x| x.core.state_ok())
            && (masters..n).all(|r| {
                s.nodes[r].repl_link.is_some()
                    && s.nodes.iter().all(|x| x.core.has_flag(&s.id(r), SLAVE))
            })
    })
    .expect("cluster ok with synced replicas");
    sim
}

/// Events of node i with the virtual time they were produced at.
fn timed(sim: &Sim, i: usize) -> Vec<(u64, EventKind)> {
    sim.nodes[i]
        .events
        .iter()
        .map(|(t, e)| (*t, e.kind.clone()))
        .collect()
}

fn elections_won(sim: &Sim, i: usize) -> Vec<(u64, usize, usize)> {
    sim.events(i, |e| matches!(e, EventKind::ElectionWon { .. }))
        .into_iter()
        .filter_map(|e| match e {
            EventKind::ElectionWon {
                epoch,
                votes,
                needed,
                ..
            } => Some((*epoch, *votes, *needed)),
            _ => None,
        })
        .collect()
}

fn scheduled(sim: &Sim, i: usize) -> Vec<(i64, usize, u64, bool)> {
    sim.events(i, |e| matches!(e, EventKind::ElectionScheduled { .. }))
        .into_iter()
        .filter_map(|e| match e {
            EventKind::ElectionScheduled {
                delay_ms,
                rank,
                offset,
                manual,
                ..
            } => Some((*delay_ms, *rank, *offset, *manual)),
            _ => None,
        })
        .collect()
}

/// redis 7.0's `clusterSendFailoverAuthIfNeeded`, re-judged from one
/// `vote_granted` line alone.
pub(super) fn vote_line_obeys_the_rules(e: &EventKind) {
    let EventKind::VoteGranted {
        to,
        epoch,
        req_epoch,
        last_vote_epoch,
        master_fail,
        force_ack,
        voter_is_master,
        voter_slots,
        last_vote_for_master_ms,
        req_config_epoch,
        claimed_slots_max_epoch,
        now_ms,
        node_timeout_ms,
        ..
    } = e
    else {
        return;
    };
    assert!(
        *voter_is_master && *voter_slots > 0,
        "{to}: no right to vote"
    );
    assert!(req_epoch >= epoch, "{to}: stale request");
    assert_ne!(last_vote_epoch, epoch, "{to}: already voted in {epoch}");
    assert!(*master_fail || *force_ack, "{to}: its master is up");
    assert!(
        *last_vote_for_master_ms == 0 || now_ms - last_vote_for_master_ms >= 2 * node_timeout_ms,
        "{to}: voted about its master {} ms before",
        now_ms - last_vote_for_master_ms
    );
    assert!(
        claimed_slots_max_epoch <= req_config_epoch,
        "{to}: claim at {req_config_epoch} older than {claimed_slots_max_epoch}"
    );
}

/// Every voter granted at most one vote per epoch, each grant obeying the
/// vote rules from its own line, and every win had a majority of grants
/// behind it, from the voters it names (the "epochs" checker's rules); every
/// PFAIL and FAIL clearing line obeys its rule too.
fn assert_vote_safety(sim: &Sim) {
    let mut grants: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
    for i in 0..sim.nodes.len() {
        let mut mine: Vec<u64> = Vec::new();
        for e in sim.events(i, |e| matches!(e, EventKind::VoteGranted { .. })) {
            vote_line_obeys_the_rules(e);
            if let EventKind::VoteGranted { to, epoch, .. } = e {
                assert!(
                    !mine.contains(epoch),
                    "node {i} voted twice in epoch {epoch}"
                );
                mine.push(*epoch);
                grants
                    .entry(*epoch)
                    .or_default()
                    .push((sim.id(i).to_string(), to.clone()));
            }
        }
        super::failure::pfail_lines_obey_the_rule(sim, i);
        super::failure::fail_cleared_lines_obey_the_rule(sim, i);
    }
    for i in 0..sim.nodes.len() {
        let me = sim.id(i).to_string();
        for e in sim.events(i, |e| matches!(e, EventKind::ElectionWon { .. })) {
            let EventKind::ElectionWon {
                epoch,
                votes,
                needed,
                voters,
                ..
            } = e
            else {
                continue;
            };
            assert!(votes >= needed, "won with {votes}/{needed}");
            assert_eq!(voters.len(), *votes, "one voter per counted vote");
            let granted = grants.get(epoch).cloned().unwrap_or_default();
            for v in voters {
                assert!(
                    granted.contains(&(v.clone(), me.clone())),
                    "node {i} counted {v} in epoch {epoch} without its grant"
                );
            }
            let for_me = granted.iter().filter(|(_, to)| *to == me).count();
            assert!(
                for_me >= *needed,
                "node {i} won epoch {epoch} with {for_me} grants, {needed} needed"
            );
        }
    }
}

/// Every live node agrees on every slot's owner.
fn converged(sim: &Sim) -> bool {
    let live: Vec<usize> = (0..sim.nodes.len())
        .filter(|&i| sim.nodes[i].alive)
        .collect();
    let Some(&first) = live.first() else {
        return true;
    };
    [0u16, 5000, 5461, 10922, 10923, 16383].iter().all(|&s| {
        let o = sim.nodes[first].core.owner_id(s);
        o.is_some() && live.iter().all(|&i| sim.nodes[i].core.owner_id(s) == o)
    })
}

fn master_of(sim: &Sim, i: usize) -> Option<NodeName> {
    sim.nodes[i].core.replication_master().map(|(n, _, _)| n)
}

#[test]
fn paused_master_is_replaced_by_its_replica_which_it_then_follows() {
    let mut sim = build(3, &[0], 101, |_, _| {});
    sim.write(0, 1000);
    sim.run_for(1000);
    assert_eq!(sim.nodes[3].repl_offset, 1000);
    let (old, rep) = (sim.id(0), sim.id(3));
    let epoch_before = sim.nodes[3].core.current_epoch();
    let paused_at = sim.now;
    sim.pause(0);

    let took = sim
        .run_until(20_000, |s| {
            !s.nodes[3].core.is_replica()
                && s.nodes[3].core.owner_id(0) == Some(rep)
                && (1..4)
                    .all(|i| s.nodes[i].core.state_ok() && s.nodes[i].core.owner_id(0) == Some(rep))
        })
        .expect("replica promoted and cluster ok");
    assert!(took < 10_000, "promotion took {took} ms");

    // The election, as redis logs and our events record it.
    let sched = scheduled(&sim, 3);
    assert_eq!(sched.len(), 1, "{sched:?}");
    let (delay, rank, offset, manual) = sched[0];
    assert!((500..1000).contains(&delay), "delay {delay}");
    assert_eq!((rank, offset, manual), (0, 1000, false));
    assert!(sim.logged(
        3,
        &format!("Start of election delayed for {delay} milliseconds (rank #0, offset 1000).")
    ));
    let epoch = epoch_before + 1;
    assert!(sim.logged(
        3,
        &format!("Starting a failover election for epoch {epoch}.")
    ));
    assert!(sim.logged(3, "Failover election won: I'm the new master."));
    assert!(sim.logged(
        3,
        &format!("configEpoch set to {epoch} after successful failover")
    ));
    assert_eq!(elections_won(&sim, 3), vec![(epoch, 2, 2)]);
    for voter in [1, 2] {
        assert!(
            sim.logged(
                voter,
                &format!("Failover auth granted to {rep} for epoch {epoch}")
            ),
            "voter {voter}"
        );
        assert!(sim.nodes[voter]
            .conf
            .as_deref()
            .is_some_and(|c| c.contains(&format!("lastVoteEpoch {epoch}\n"))));
    }
    // The election happened after FAIL, which happened after node_timeout.
    let started = timed(&sim, 3)
        .into_iter()
        .find(|(_, e)| matches!(e, EventKind::ElectionStarted { .. }))
        .map(|(t, _)| t)
        .expect("started");
    assert!(started - paused_at > TIMEOUT + 500);
    // Slots moved with reason failover at the new configEpoch, everywhere.
    for i in 1..4 {
        let moved = sim.events(i, |e| {
            matches!(e, EventKind::SlotOwnerChanged { reason: SlotChangeReason::Failover, to: Some(to), .. } if *to == rep.to_string())
                || matches!(e, EventKind::SlotOwnerChanged { to: Some(to), config_epoch, .. } if *to == rep.to_string() && *config_epoch == epoch)
        });
        assert!(!moved.is_empty(), "node {i} saw the slots move");
        assert_eq!(sim.nodes[i].core.config_epoch_of(&rep), Some(epoch));
    }
    assert!(sim
        .events(3, |e| matches!(e, EventKind::ConfigEpochChanged { reason: EpochReason::Election, to, .. } if *to == epoch))
        .len()
        == 1);
    // The new master continues from its processed offset.
    assert_eq!(master_of(&sim, 3), None);
    sim.write(3, 10);
    assert_eq!(sim.nodes[3].repl_offset, 1010);

    // The old master comes back, learns its slots moved, and follows.
    sim.resume(0);
    sim.run_until(10_000, |s| master_of(s, 0) == Some(rep) && converged(s))
        .expect("old master becomes a replica of the new one");
    assert!(sim.logged(
        0,
        &format!("Configuration change detected. Reconfiguring myself as a replica of {rep}")
    ));
    assert!(sim.nodes[0].core.is_replica());
    sim.run_for(2000);
    assert_eq!(
        sim.nodes[0].repl_offset, 1010,
        "resynced from the new master"
    );
    for i in 0..4 {
        assert!(sim.nodes[i].core.has_flag(&old, SLAVE), "node {i}");
        assert!(sim.nodes[i].core.state_ok(), "node {i}");
        sim.nodes[i]
            .core
            .check_invariants()
            .unwrap_or_else(|e| panic!("node {i}: {e}"));
    }
    assert_vote_safety(&sim);
}

// ---- hand-driven cores ----

use std::net::SocketAddr;

use crate::cluster::{Action, Cluster, LinkId, LogLevel, Phase};
use crate::events::VoteRefusedReason;
use crate::slots::SlotSet;
use crate::wire::{msg_flags, msg_type, Body, Header, Message};

use super::fixed_id;
use super::sim::T0;

pub(super) fn nid(c: char) -> NodeName {
    NodeName::parse(&fixed_id(c)).unwrap_or(NodeName::NULL)
}

pub(super) fn slots(a: u16, b: u16) -> SlotSet {
    let mut s = SlotSet::new();
    for j in a..=b {
        s.insert(j);
    }
    s
}

/// One core fed hand-made packets. Peers are named by one character; node
/// `x` lives at 127.0.0.(x-'a'+1):(7000+x-'a').
pub(super) struct Hand {
    pub(super) core: Cluster,
    pub(super) now: u64,
    /// Inbound links, one per peer, created on demand.
    inbound: BTreeMap<char, LinkId>,
    /// Everything the core produced, in order.
    pub(super) out: Vec<Action>,
    /// Outbound links by the IP they were opened to.
    outbound: BTreeMap<LinkId, String>,
}

fn peer_index(c: char) -> u16 {
    u16::try_from(c as u32 - 'a' as u32).unwrap_or(0)
}

impl Hand {
    pub(super) fn load(conf: &str, seed: u64) -> Hand {
        Self::load_with(conf, seed, |_| {})
    }

    /// `load` with the config adjusted by `f` (e.g. planted bugs).
    pub(super) fn load_with(conf: &str, seed: u64, f: impl FnOnce(&mut ClusterConfig)) -> Hand {
        let mut cfg = test_config(0, TIMEOUT);
        cfg.announce_ip = Some("127.0.0.1".into());
        f(&mut cfg);
        let mut core = Cluster::new(cfg, T0, seed, Some(conf)).expect("load");
        core.set_log_level(LogLevel::Verbose);
        let mut h = Hand {
            core,
            now: T0,
            inbound: BTreeMap::new(),
            out: Vec::new(),
            outbound: BTreeMap::new(),
        };
        h.settle();
        h
    }

    /// before_sleep, then connect every outbound link the core asked for.
    fn settle(&mut self) {
        loop {
            self.core.before_sleep(self.now);
            let actions: Vec<Action> = std::iter::from_fn(|| self.core.poll_action()).collect();
            if actions.is_empty() {
                return;
            }
            for a in &actions {
                if let Action::Connect { link, ip, .. } = a {
                    self.outbound.insert(*link, ip.clone());
                    let local: SocketAddr =
                        "127.0.0.1:40000".parse().unwrap_or_else(|_| unreachable!());
                    self.core.handle_connected(self.now, *link, local);
                }
            }
            self.out.extend(actions);
        }
    }

    pub(super) fn take(&mut self) -> Vec<Action> {
        self.settle();
        std::mem::take(&mut self.out)
    }

    pub(super) fn tick(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now += 100;
            self.core.tick(self.now);
            self.settle();
        }
    }

    fn link_from(&mut self, c: char) -> LinkId {
        if let Some(&l) = self.inbound.get(&c) {
            return l;
        }
        let k = peer_index(c);
        let peer: SocketAddr = format!("127.0.0.{}:{}", k + 1, 50000 + k)
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let local: SocketAddr = "127.0.0.1:17000".parse().unwrap_or_else(|_| unreachable!());
        let l = self.core.handle_accept(self.now, peer, local);
        self.inbound.insert(c, l);
        l
    }

    /// A header from `from` with its real address fields.
    fn header(
        t: u16,
        from: char,
        master: Option<char>,
        current_epoch: u64,
        config_epoch: u64,
    ) -> Header {
        let k = peer_index(from);
        let mut h = Header::new(t, nid(from));
        h.port = 7000 + k;
        h.cport = 17000 + k;
        h.myip = crate::wire::ip_field(&format!("127.0.0.{}", k + 1));
        h.current_epoch = current_epoch;
        h.config_epoch = config_epoch;
        match master {
            Some(m) => {
                h.flags = SLAVE;
                h.slaveof = nid(m);
            }
            None => h.flags = MASTER,
        }
        h
    }

    fn send(&mut self, from: char, header: Header, body: Body) {
        let l = self.link_from(from);
        self.core
            .handle_packet(self.now, l, Message { header, body });
        self.settle();
    }

    /// FAILOVER_AUTH_REQUEST from replica `from` of `master`.
    pub(super) fn request(
        &mut self,
        from: char,
        master: Option<char>,
        cur: u64,
        cfg_epoch: u64,
        claimed: SlotSet,
        force: bool,
    ) {
        let mut h = Self::header(
            msg_type::FAILOVER_AUTH_REQUEST,
            from,
            master,
            cur,
            cfg_epoch,
        );
        h.myslots = claimed;
        if force {
            h.mflags[0] |= msg_flags::FORCEACK;
        }
        self.send(from, h, Body::Empty);
    }

    fn logged(&self, text: &str) -> bool {
        self.out
            .iter()
            .any(|a| matches!(a, Action::Log { text: t, .. } if t.contains(text)))
    }

    pub(super) fn events(&self) -> Vec<EventKind> {
        self.out
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e.kind.clone()),
                _ => None,
            })
            .collect()
    }

    /// Acks sent (as messages on some link).
    pub(super) fn acks(&self) -> usize {
        self.out
            .iter()
            .filter(|a| matches!(a, Action::Send { msg, .. } if msg.header.msg_type == msg_type::FAILOVER_AUTH_ACK))
            .count()
    }
}

/// A voter `a` (master with slots) that knows failed master `f` (replicas `r`,
/// `s`), healthy master `g` (replica `t`) and replica `u` of an unknown master.
pub(super) fn voter_conf(last_vote_epoch: u64) -> String {
    format!(
        "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-4000\n\
         {f} 127.0.0.6:7005@17005 master,fail - 0 0 2 connected 4001-8000\n\
         {g} 127.0.0.7:7006@17006 master - 0 0 3 connected 8001-16383\n\
         {r} 127.0.0.18:7017@17017 slave {f} 0 0 2 connected\n\
         {s} 127.0.0.19:7018@17018 slave {f} 0 0 2 connected\n\
         {t} 127.0.0.20:7019@17019 slave {g} 0 0 3 connected\n\
         vars currentEpoch 3 lastVoteEpoch {last_vote_epoch}\n",
        a = fixed_id('a'),
        f = fixed_id('f'),
        g = fixed_id('g'),
        r = fixed_id('r'),
        s = fixed_id('s'),
        t = fixed_id('t'),
    )
}

pub(super) fn grants(h: &Hand) -> Vec<EventKind> {
    h.events()
        .into_iter()
        .filter(|e| matches!(e, EventKind::VoteGranted { .. }))
        .collect()
}

pub(super) fn refusals(h: &Hand) -> Vec<VoteRefusedReason> {
    h.events()
        .into_iter()
        .filter_map(|e| match e {
            EventKind::VoteRefused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn vote_rules_in_redis_order_with_verbatim_refusals() {
    let mut h = Hand::load(&voter_conf(0), 1);
    h.tick(200);
    h.take();
    let (r, s, t, g) = (nid('r'), nid('s'), nid('t'), nid('g'));

    // A claim older than what we know (slot 8001 is g's at epoch 3): refused.
    let mut claim = slots(4001, 8000);
    claim.insert(8001);
    h.request('r', Some('f'), 4, 2, claim, false);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::StaleSlotClaim]);
    assert!(h.logged(&format!(
        "Failover auth denied to {r}: slot 8001 epoch (3) > reqEpoch (2)"
    )));
    assert_eq!(h.acks(), 0);
    h.take();

    // The same replica with the right claim: granted, persisted, then acked.
    h.request('r', Some('f'), 4, 2, slots(4001, 8000), false);
    let out = h.take();
    let save = out.iter().position(|a| matches!(a, Action::SaveConfig { contents, fsync: true } if contents.contains("lastVoteEpoch 4\n")));
    let ack = out.iter().position(|a| matches!(a, Action::Send { msg, .. } if msg.header.msg_type == msg_type::FAILOVER_AUTH_ACK));
    assert!(
        save.is_some() && ack.is_some() && save < ack,
        "fsync before ACK: {save:?} {ack:?}"
    );
    assert!(out.iter().any(|a| matches!(a, Action::Log { text, .. } if *text == format!("Failover auth granted to {r} for epoch 4"))));
    // The line re-checks every vote rule: f is FAIL, we are a master with
    // 4001 slots, never voted, and f's slots are at epoch 2 = the request's.
    let granted: Vec<&EventKind> = out
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) if matches!(e.kind, EventKind::VoteGranted { .. }) => Some(&e.kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        granted,
        vec![&EventKind::VoteGranted {
            to: r.to_string(),
            master: fixed_id('f'),
            epoch: 4,
            req_epoch: 4,
            last_vote_epoch: 0,
            master_fail: true,
            force_ack: false,
            voter_is_master: true,
            voter_slots: 4001,
            last_vote_for_master_ms: 0,
            req_config_epoch: 2,
            claimed_slots_max_epoch: 2,
            now_ms: h.now,
            node_timeout_ms: TIMEOUT,
        }]
    );
    let first_vote_at = h.now;

    // One vote per epoch, whoever asks.
    h.request('s', Some('f'), 4, 2, slots(4001, 8000), false);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::AlreadyVoted]);
    assert!(h.logged(&format!(
        "Failover auth denied to {s}: already voted for epoch 4"
    )));
    h.take();

    // A new epoch, but the same master within 2 x node_timeout.
    h.tick(500);
    h.take();
    h.request('s', Some('f'), 5, 2, slots(4001, 8000), false);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::VotedRecently]);
    assert!(h.logged(&format!(
        "Failover auth denied to {s}: can't vote about this master before 1500 milliseconds"
    )));
    assert_eq!(h.acks(), 0);
    h.take();

    // An older epoch than ours.
    h.request('s', Some('f'), 4, 2, slots(4001, 8000), false);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::ReqEpochStale]);
    assert!(h.logged(&format!(
        "Failover auth denied to {s}: reqEpoch (4) < curEpoch(5)"
    )));
    h.take();

    // A master asking; a replica whose master is up (unless FORCEACK).
    h.request('g', None, 6, 3, slots(8001, 16383), false);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::RequesterIsMaster]);
    assert!(h.logged(&format!("Failover auth denied to {g}: it is a master node")));
    h.take();
    h.request('t', Some('g'), 7, 3, slots(8001, 16383), false);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::MasterUp]);
    assert!(h.logged(&format!("Failover auth denied to {t}: its master is up")));
    h.take();
    h.request('t', Some('g'), 8, 3, slots(8001, 16383), true);
    assert!(refusals(&h).is_empty());
    assert!(h.logged(&format!("Failover auth granted to {t} for epoch 8")));
    // A manual failover's vote: g is up, FORCEACK stands in for its FAIL.
    assert!(matches!(
        grants(&h)[..],
        [EventKind::VoteGranted {
            master_fail: false,
            force_ack: true,
            last_vote_epoch: 4,
            claimed_slots_max_epoch: 3,
            req_config_epoch: 3,
            ..
        }]
    ));
    h.take();

    // After 2 x node_timeout the same master may be voted on again.
    h.tick(2000);
    h.take();
    h.request('s', Some('f'), 9, 2, slots(4001, 8000), false);
    assert!(h.logged(&format!("Failover auth granted to {s} for epoch 9")));
    assert_eq!(h.acks(), 1);
    // The previous vote about f is in the line: more than 2 x node_timeout ago.
    match &grants(&h)[..] {
        [EventKind::VoteGranted {
            last_vote_for_master_ms,
            now_ms,
            node_timeout_ms,
            ..
        }] => {
            assert_eq!(*last_vote_for_master_ms, first_vote_at);
            assert!(now_ms - last_vote_for_master_ms >= 2 * node_timeout_ms);
        }
        other => panic!("{other:?}"),
    }
    h.take();

    // lastVoteEpoch survives a restart: no second vote in epoch 9.
    let conf = h.core.config_text_for_tests();
    assert!(
        conf.contains("vars currentEpoch 9 lastVoteEpoch 9"),
        "{conf}"
    );
    let mut again = Hand::load(&conf, 2);
    again.tick(5000); // well past 2 x node_timeout: only the epoch rule applies
    again.take();
    again.request('r', Some('f'), 9, 2, slots(4001, 8000), false);
    assert_eq!(refusals(&again), vec![VoteRefusedReason::AlreadyVoted]);
    assert!(again.logged(&format!(
        "Failover auth denied to {r}: already voted for epoch 9"
    )));
}

/// The shell runs a batch by `Phase`: a granted vote is on disk, then in the
/// event log (flushed), and only then can its ACK leave, so a SIGKILL at any
/// point never leaves a peer holding a vote our log does not show, nor a log
/// showing a vote a restart would forget.
#[test]
fn a_vote_is_saved_then_logged_then_acked_in_shell_order() {
    let mut h = Hand::load(&voter_conf(0), 1);
    h.tick(200);
    h.take();
    h.request('r', Some('f'), 4, 2, slots(4001, 8000), false);
    let mut batch = h.take();
    batch.sort_by_key(Action::phase);
    let save = batch.iter().position(
        |a| matches!(a, Action::SaveConfig { contents, fsync: true } if contents.contains("lastVoteEpoch 4\n")),
    );
    let event = batch.iter().position(
        |a| matches!(a, Action::Event(e) if matches!(e.kind, EventKind::VoteGranted { epoch: 4, .. })),
    );
    let ack = batch.iter().position(|a| matches!(a, Action::Send { msg, .. } if msg.header.msg_type == msg_type::FAILOVER_AUTH_ACK));
    assert!(
        save.is_some() && event.is_some() && ack.is_some(),
        "{save:?} {event:?} {ack:?}"
    );
    assert!(save < event && event < ack, "{save:?} {event:?} {ack:?}");
    // Every phase boundary holds for the whole batch.
    let phases: Vec<Phase> = batch.iter().map(Action::phase).collect();
    assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{phases:?}");
}

#[test]
fn unknown_master_and_no_right_to_vote() {
    // u is a replica whose master we never heard of.
    let conf = format!(
        "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n\
         {u} 127.0.0.21:7020@17020 slave - 0 0 0 connected\n\
         vars currentEpoch 1 lastVoteEpoch 0\n",
        a = fixed_id('a'),
        u = fixed_id('u'),
    );
    let mut h = Hand::load(&conf, 3);
    h.take();
    h.request('u', Some('y'), 2, 1, SlotSet::new(), true);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::UnknownMaster]);
    assert!(h.logged(&format!(
        "Failover auth denied to {}: I don't know its master",
        nid('u')
    )));
    h.take();

    // A master without slots has no vote, and says nothing about it.
    let conf = format!(
        "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected\n\
         {f} 127.0.0.6:7005@17005 master,fail - 0 0 2 connected 0-16383\n\
         {r} 127.0.0.18:7017@17017 slave {f} 0 0 2 connected\n\
         vars currentEpoch 2 lastVoteEpoch 0\n",
        a = fixed_id('a'),
        f = fixed_id('f'),
        r = fixed_id('r'),
    );
    let mut h = Hand::load(&conf, 4);
    h.take();
    h.request('r', Some('f'), 3, 2, slots(0, 16383), false);
    assert_eq!(refusals(&h), vec![VoteRefusedReason::NoRightToVote]);
    assert!(!h.logged("Failover auth"));
    assert_eq!(h.acks(), 0);
}

/// Replica `b` of failed master `f` (0-5000), sibling replica `s`, masters
/// `g` and `h` with the other slots.
pub(super) fn replica_conf() -> String {
    format!(
        "{b} 127.0.0.2:7001@17001 myself,slave {f} 0 0 2 connected\n\
         {f} 127.0.0.6:7005@17005 master,fail - 0 0 2 connected 0-5000\n\
         {g} 127.0.0.7:7006@17006 master - 0 0 3 connected 5001-10000\n\
         {h} 127.0.0.8:7007@17007 master - 0 0 4 connected 10001-16383\n\
         {s} 127.0.0.19:7018@17018 slave {f} 0 0 2 connected\n\
         vars currentEpoch 4 lastVoteEpoch 0\n",
        b = fixed_id('b'),
        f = fixed_id('f'),
        g = fixed_id('g'),
        h = fixed_id('h'),
        s = fixed_id('s'),
    )
}

impl Hand {
    /// A PING from sibling replica `s` announcing `offset`.
    fn sibling_ping(&mut self, offset: u64, flags: u16) {
        let mut hd = Self::header(msg_type::PING, 's', Some('f'), self.core.current_epoch(), 2);
        hd.myslots = slots(0, 5000);
        hd.offset = offset;
        hd.flags |= flags;
        self.send(
            's',
            hd,
            Body::Ping {
                gossip: vec![],
                extensions: vec![],
            },
        );
    }

    pub(super) fn ack(&mut self, from: char, master: Option<char>, cur: u64) {
        let hd = Self::header(msg_type::FAILOVER_AUTH_ACK, from, master, cur, 3);
        self.send(from, hd, Body::Empty);
    }

    pub(super) fn scheduled(&self) -> Vec<(i64, usize)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                EventKind::ElectionScheduled { delay_ms, rank, .. } => Some((delay_ms, rank)),
                _ => None,
            })
            .collect()
    }

    fn unable(&self) -> Vec<String> {
        self.out
            .iter()
            .filter_map(|a| match a {
                Action::Log { text, .. } => text
                    .strip_prefix("Currently unable to failover: ")
                    .map(str::to_string),
                _ => None,
            })
            .collect()
    }

    fn sent(&self, t: u16) -> Vec<(String, Header)> {
        self.out
            .iter()
            .filter_map(|a| match a {
                Action::Send { link, msg } if msg.header.msg_type == t => Some((
                    self.outbound.get(link).cloned().unwrap_or_default(),
                    msg.header.clone(),
                )),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn election_delay_is_500_plus_random_plus_rank_seconds() {
    let mut delays = Vec::new();
    for seed in 0..16 {
        for sibling_ahead in [false, true] {
            let mut h = Hand::load(&replica_conf(), seed);
            h.core.set_repl_offset(100);
            h.core.handle_master_link_up(h.now);
            if sibling_ahead {
                h.sibling_ping(101, 0);
            }
            h.tick(100);
            let sched = h.scheduled();
            assert_eq!(sched.len(), 1, "seed {seed}");
            let (delay, rank) = sched[0];
            let rank_ms = if sibling_ahead { 1000 } else { 0 };
            assert_eq!(rank, usize::from(sibling_ahead));
            assert!(
                (500 + rank_ms..1000 + rank_ms).contains(&delay),
                "seed {seed}: delay {delay} rank {rank}"
            );
            delays.push(delay - rank_ms);
            // Siblings hear our offset at once (a PONG to each local replica).
            assert!(h
                .sent(msg_type::PONG)
                .iter()
                .any(|(ip, hd)| ip == "127.0.0.19" && hd.offset == 100));
        }
    }
    // The random part is really used.
    assert!(
        delays.iter().any(|&d| d < 600) && delays.iter().any(|&d| d >= 900),
        "{delays:?}"
    );

    // Equal offsets share a rank; a NOFAILOVER sibling never outranks us.
    for (offset, flags) in [(100, 0), (900, NOFAILOVER)] {
        let mut h = Hand::load(&replica_conf(), 7);
        h.core.set_repl_offset(100);
        h.core.handle_master_link_up(h.now);
        h.sibling_ping(offset, flags);
        h.tick(100);
        assert_eq!(
            h.scheduled().first().map(|s| s.1),
            Some(0),
            "offset {offset}"
        );
    }
}

#[test]
fn election_runs_expires_retries_and_counts_only_valid_acks() {
    // Nobody here answers PINGs: a seed whose random pings (redis's dict draws)
    // leave every link up until the end, so requests and PONGs reach all four.
    let mut h = Hand::load(&replica_conf(), 10);
    let me = nid('b');
    h.core.set_repl_offset(100);

    // Never synced: the data-age rule blocks us, logged once after FAIL + nt + 5 s.
    h.tick(7000);
    assert!(h.scheduled().is_empty());
    let unable = h.unable();
    assert_eq!(
        unable,
        vec!["Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option.".to_string()]
    );
    h.take();

    h.core.handle_master_link_up(h.now);
    h.tick(100);
    let (delay, rank) = h.scheduled()[0];
    assert_eq!(rank, 0);
    assert!(h.logged(&format!(
        "Start of election delayed for {delay} milliseconds (rank #0, offset 100)."
    )));
    h.take();

    // A sibling turns out to be ahead: the rank is recomputed while waiting.
    h.sibling_ping(500, 0);
    h.tick(100);
    assert!(h.logged("Replica rank updated to #1, added 1000 milliseconds of delay."));
    assert!(h.events().contains(&EventKind::ElectionRankUpdated {
        rank: 1,
        added_delay_ms: 1000
    }));
    assert!(h
        .unable()
        .contains(&"Waiting the delay before I can start a new failover.".to_string()));
    h.take();

    // The request goes out once the delay has passed, to every node with a link.
    let started_by = T0 + 7100 + u64::try_from(delay).unwrap_or(0) + 1000;
    while h.now < started_by + 100 {
        h.tick(100);
        if h.events()
            .iter()
            .any(|e| matches!(e, EventKind::ElectionStarted { .. }))
        {
            break;
        }
    }
    assert!(h.now >= started_by, "started early at {}", h.now - T0);
    assert!(h.events().contains(&EventKind::ElectionStarted {
        master: fixed_id('f'),
        epoch: 5,
        force_ack: false,
        offset: 100,
    }));
    assert!(h.logged("Starting a failover election for epoch 5."));
    let reqs = h.sent(msg_type::FAILOVER_AUTH_REQUEST);
    let mut to: Vec<&str> = reqs.iter().map(|(ip, _)| ip.as_str()).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        vec!["127.0.0.19", "127.0.0.6", "127.0.0.7", "127.0.0.8"]
    );
    for (_, hd) in &reqs {
        assert_eq!(hd.current_epoch, 5);
        assert_eq!(hd.mflags[0] & msg_flags::FORCEACK, 0);
        assert_eq!(hd.myslots, slots(0, 5000));
        assert_eq!(hd.slaveof, nid('f'));
    }
    assert_eq!(h.core.current_epoch(), 5);
    h.take();

    // Only masters with slots, at our election's epoch or later, count.
    h.ack('h', None, 4);
    h.ack('s', Some('f'), 5);
    h.ack('g', None, 5);
    let counted: Vec<(String, bool)> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            EventKind::AuthAckReceived { from, counted, .. } => Some((from, counted)),
            _ => None,
        })
        .collect();
    assert_eq!(
        counted,
        vec![
            (fixed_id('h'), false),
            (fixed_id('s'), false),
            (fixed_id('g'), true)
        ]
    );
    assert!(h.core.is_replica(), "one valid vote of two needed");
    h.take();

    // No majority within the auth timeout (2 s): expired, then a retry
    // 4 s after the first attempt, with a new epoch.
    h.tick(2100);
    assert!(h.events().contains(&EventKind::ElectionExpired {
        epoch: 5,
        votes: 1,
        needed: 2
    }));
    assert!(h
        .unable()
        .contains(&"Failover attempt expired.".to_string()));
    h.take();
    h.tick(2000);
    assert_eq!(h.scheduled().len(), 1, "rescheduled after the retry time");
    while !h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::ElectionStarted { .. }))
    {
        assert!(h.now < T0 + 30_000);
        h.tick(100);
    }
    assert!(h.logged("Starting a failover election for epoch 6."));
    h.take();

    // Two valid ACKs: we win at once (before_sleep), take f's slots with the
    // election's epoch and tell everyone.
    h.ack('g', None, 6);
    assert!(h.core.is_replica());
    h.ack('h', None, 6);
    assert!(!h.core.is_replica());
    assert!(h.events().contains(&EventKind::ElectionWon {
        master: fixed_id('f'),
        epoch: 6,
        votes: 2,
        needed: 2,
        voters: vec![fixed_id('g'), fixed_id('h')],
    }));
    assert!(h.logged("configEpoch set to 6 after successful failover"));
    assert_eq!(h.core.my_epoch(), 6);
    assert_eq!(h.core.owner_id(0), Some(me));
    assert_eq!(h.core.owner_id(5000), Some(me));
    assert_eq!(h.core.owner_id(5001), Some(nid('g')));
    assert_eq!(h.core.replication_master(), None);
    assert!(h.events().contains(&EventKind::RoleChanged {
        node: fixed_id('b'),
        previous: Role::Replica,
        role: Role::Master,
        master: None
    }));
    let pongs: Vec<String> = h
        .sent(msg_type::PONG)
        .into_iter()
        .map(|(ip, _)| ip)
        .collect();
    for ip in ["127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.19"] {
        assert!(pongs.iter().any(|p| p == ip), "PONG to {ip}: {pongs:?}");
    }
    assert!(h.out.iter().any(|a| matches!(a, Action::SaveConfig { fsync: true, contents } if contents.contains(&format!("{} 127.0.0.1:7000@17000 myself,master - ", fixed_id('b'))))));
}

// ---- scenarios ----

#[test]
fn of_two_replicas_the_one_with_more_data_wins_and_the_other_follows_it() {
    let mut sim = build(3, &[0, 0], 202, |_, _| {});
    sim.write(0, 1000);
    sim.run_for(500);
    // Replica 4 stops receiving data: replica 3 ends up ahead.
    sim.nodes[4].repl_hold = true;
    sim.write(0, 700);
    sim.run_for(2000);
    assert_eq!(
        (sim.nodes[3].repl_offset, sim.nodes[4].repl_offset),
        (1700, 1000)
    );
    let r3 = sim.id(3);
    sim.pause(0);
    sim.run_until(20_000, |s| {
        (1..5).all(|i| {
            s.nodes[i].core.state_ok() && s.nodes[i].core.owner_id(0).is_some_and(|o| o != s.id(0))
        }) && master_of(s, 4) == Some(r3)
    })
    .expect("failover, and the other replica follows the winner");
    assert!(!sim.nodes[3].core.is_replica());
    assert!(elections_won(&sim, 4).is_empty());
    assert_eq!(sim.nodes[1].core.owner_id(0), Some(r3));
    let s3 = scheduled(&sim, 3);
    assert_eq!(s3.first().map(|s| (s.1, s.2)), Some((0, 1700)));
    // The election names the data the winner had: every write it acked.
    let started = sim.events(3, |e| matches!(e, EventKind::ElectionStarted { .. }));
    assert!(matches!(
        started[..],
        [EventKind::ElectionStarted { offset: 1700, .. }]
    ));
    // The laggard is ranked behind (at scheduling or by a rank update), so it
    // never even asks for votes.
    let s4 = scheduled(&sim, 4);
    let &(delay, rank, offset, _) = s4.first().expect("laggard scheduled too");
    assert_eq!((rank, offset), (1, 1000));
    assert!((1500..2000).contains(&delay));
    assert!(sim
        .events(4, |e| matches!(e, EventKind::ElectionStarted { .. }))
        .is_empty());
    assert!(sim.logged(
        4,
        &format!("Configuration change detected. Reconfiguring myself as a replica of {r3}")
    ));
    assert_vote_safety(&sim);
}

#[test]
fn rank_and_delay_follow_offsets_across_three_replicas() {
    // Seeds where every replica has heard its siblings' offsets before it
    // schedules (which random pings carry them is the draw's business, as in
    // redis, where the freshest replica usually, not always, goes first).
    for seed in [4u64, 5] {
        let mut sim = build(3, &[0, 0, 0], 300 + seed, |_, _| {});
        sim.write(0, 100);
        sim.run_for(500);
        sim.nodes[5].repl_hold = true;
        sim.write(0, 100);
        sim.run_for(500);
        sim.nodes[4].repl_hold = true;
        sim.write(0, 100);
        sim.run_for(2000);
        let offsets: Vec<u64> = (3..6).map(|i| sim.nodes[i].repl_offset).collect();
        assert_eq!(offsets, vec![300, 200, 100]);
        sim.pause(0);
        let r3 = sim.id(3);
        sim.run_until(20_000, |s| {
            (1..6).all(|i| s.nodes[i].core.owner_id(0) == Some(r3))
        })
        .expect("the freshest replica wins");
        for (i, want_rank) in [(3usize, 0usize), (4, 1), (5, 2)] {
            // Replicas that scheduled before the winner's PONG arrived.
            for &(delay, rank, _, _) in scheduled(&sim, i).iter().take(1) {
                assert_eq!(rank, want_rank, "seed {seed} node {i}");
                let base = 500 + 1000 * i64::try_from(want_rank).unwrap_or(0);
                assert!(
                    (base..base + 500).contains(&delay),
                    "seed {seed} node {i}: {delay}"
                );
            }
        }
        assert!(!scheduled(&sim, 3).is_empty() && !scheduled(&sim, 4).is_empty());
        assert!(!scheduled(&sim, 5).is_empty());
        assert_vote_safety(&sim);
    }
}

#[test]
fn manual_failover_waits_for_the_offset_then_wins_without_a_failed_master() {
    let mut sim = build(3, &[0], 404, |_, _| {});
    sim.write(0, 1000);
    sim.run_for(1000);
    let (m, rep) = (sim.id(0), sim.id(3));
    // The replica is behind when the failover starts.
    sim.nodes[3].repl_hold = true;
    sim.write(0, 250);
    assert_eq!(sim.cmd(3, &["FAILOVER"]), Frame::ok());
    assert!(sim.logged(3, "Manual failover user request accepted."));
    assert!(
        sim.events(3, |e| *e
            == EventKind::ManualFailoverRequested {
                master: m.to_string(),
                mode: ManualFailoverMode::Default
            })
        .len()
            == 1
    );
    // MFSTART reached the master: writes held for 10 s, offset sent back.
    let until = sim.nodes[0].core.client_pause_until().expect("paused");
    assert_eq!(until, sim.now + 10_000);
    assert!(sim.logged(0, &format!("Manual failover requested by replica {rep}.")));
    assert!(sim.logged(
        3,
        "Received replication offset for paused master manual failover: 1250"
    ));
    sim.run_for(1000);
    assert!(
        sim.nodes[3].core.is_replica(),
        "not caught up yet: no election"
    );
    assert!(scheduled(&sim, 3).is_empty());

    sim.nodes[3].repl_hold = false;
    sim.run_until(3000, |s| !s.nodes[3].core.is_replica())
        .expect("promoted");
    assert!(sim.logged(
        3,
        "All master replication stream processed, manual failover can start."
    ));
    assert_eq!(scheduled(&sim, 3), vec![(0, 0, 1250, true)]);
    assert!(sim.logged(
        3,
        "Start of election delayed for 0 milliseconds (rank #0, offset 1250)."
    ));
    assert!(
        sim.events(3, |e| matches!(
            e,
            EventKind::ElectionStarted {
                force_ack: true,
                ..
            }
        ))
        .len()
            == 1
    );
    // The masters voted although the old master was never FAIL.
    for i in 0..3 {
        assert!(!sim.nodes[i].core.has_flag(&m, FAIL), "node {i}");
    }
    sim.run_until(5000, |s| master_of(s, 0) == Some(rep) && converged(s))
        .expect("old master follows the new one");
    assert_eq!(sim.nodes[0].core.client_pause_until(), None, "pause lifted");
    sim.run_for(6000);
    // Completed: nothing timed out on the replica side.
    assert!(!sim.logged(3, "Manual failover timed out."));
    assert_vote_safety(&sim);
}

#[test]
fn manual_failover_times_out_when_the_replica_never_catches_up() {
    let mut sim = build(3, &[0], 405, |_, _| {});
    sim.write(0, 1000);
    sim.run_for(1000);
    sim.nodes[3].repl_hold = true;
    sim.write(0, 1);
    assert_eq!(sim.cmd(3, &["FAILOVER"]), Frame::ok());
    assert!(sim.nodes[0].core.client_pause_until().is_some());
    sim.run_for(4800);
    assert!(!sim.logged(3, "Manual failover timed out."));
    sim.run_for(400);
    for i in [0, 3] {
        assert!(sim.logged(i, "Manual failover timed out."), "node {i}");
        assert_eq!(
            sim.events(i, |e| *e == EventKind::ManualFailoverTimedOut)
                .len(),
            1
        );
    }
    assert_eq!(sim.nodes[0].core.client_pause_until(), None);
    sim.nodes[3].repl_hold = false;
    sim.run_for(3000);
    assert!(sim.nodes[3].core.is_replica());
    assert!(scheduled(&sim, 3).is_empty());
    assert!(!sim.logged(3, "manual failover can start"));
}

#[test]
fn no_failover_replica_stays_put_until_forced() {
    let mut sim = build(3, &[0], 505, |i, c| c.replica_no_failover = i == 3);
    let (m, rep) = (sim.id(0), sim.id(3));
    for i in 0..4 {
        assert!(sim.nodes[i].core.has_flag(&rep, NOFAILOVER), "node {i}");
    }
    sim.pause(0);
    sim.run_until(10_000, |s| {
        (1..4).all(|i| s.nodes[i].core.has_flag(&m, FAIL))
    })
    .expect("FAIL");
    sim.run_for(8000);
    assert!(scheduled(&sim, 3).is_empty(), "cluster-replica-no-failover");
    assert!(sim.nodes[3].core.is_replica());
    assert!(!sim.nodes[1].core.state_ok());

    assert_eq!(
        sim.cmd(3, &["FAILOVER"]),
        Frame::Error("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into())
    );
    assert_eq!(sim.cmd(3, &["failover", "force"]), Frame::ok());
    assert!(sim.logged(3, "Forced failover user request accepted."));
    sim.run_until(3000, |s| {
        (1..4).all(|i| s.nodes[i].core.state_ok() && s.nodes[i].core.owner_id(0) == Some(rep))
    })
    .expect("forced failover");
    assert_eq!(scheduled(&sim, 3).len(), 1);
    assert!(scheduled(&sim, 3)[0].3, "manual: no delay");
    assert_eq!(scheduled(&sim, 3)[0].0, 0);
    assert_vote_safety(&sim);
}

#[test]
fn takeover_needs_no_votes() {
    // A seed where formation's epoch-collision handling leaves the replica's
    // configEpoch below the greatest, so TAKEOVER must bump it.
    let mut sim = build(3, &[0], 607, |i, c| c.replica_no_failover = i == 3);
    let (m0, rep) = (sim.id(0), sim.id(3));
    // A majority of masters is gone: no election could ever win.
    sim.pause(0);
    sim.pause(1);
    sim.run_until(10_000, |s| s.nodes[3].core.has_flag(&m0, PFAIL | FAIL))
        .expect("suspected");
    let epoch_before = sim.nodes[3].core.current_epoch();
    assert_eq!(sim.cmd(3, &["FAILOVER", "TAKEOVER"]), Frame::ok());
    assert!(sim.logged(3, "Taking over the master (user request)."));
    let new_epoch = epoch_before + 1;
    assert!(sim.logged(3, &format!("New configEpoch set to {new_epoch}")));
    assert!(!sim.nodes[3].core.is_replica());
    assert_eq!(sim.nodes[3].core.owner_id(0), Some(rep));
    assert_eq!(sim.nodes[3].core.my_epoch(), new_epoch);
    assert!(sim
        .events(3, |e| matches!(e, EventKind::ElectionStarted { .. }))
        .is_empty());
    assert!(
        sim.events(3, |e| matches!(
            e,
            EventKind::ConfigEpochChanged {
                reason: EpochReason::Takeover,
                ..
            }
        ))
        .len()
            == 1
    );
    assert!(
        sim.events(3, |e| *e
            == EventKind::ManualFailoverRequested {
                master: m0.to_string(),
                mode: ManualFailoverMode::Takeover
            })
        .len()
            == 1
    );
    // The surviving master learns at once from the PONG broadcast.
    assert_eq!(sim.nodes[2].core.owner_id(0), Some(rep));
    sim.resume(0);
    sim.resume(1);
    sim.run_until(10_000, |s| {
        master_of(s, 0) == Some(rep) && converged(s) && (0..4).all(|i| s.nodes[i].core.state_ok())
    })
    .expect("old master follows, cluster ok");
}

/// Replica 3 hears nothing from master 0 for 6 s (a one-way silence: the
/// other masters still see 0), then 0 dies.
fn stale_replica_scenario(factor: u32, seed: u64) -> Sim {
    let mut sim = build(3, &[0], seed, |_, c| {
        c.replica_validity_factor = factor;
        c.repl_ping_replica_period = 1;
    });
    sim.cut(3, 0);
    sim.run_for(6_000);
    sim.kill(0);
    sim.run_for(9_000);
    sim
}

#[test]
fn validity_factor_keeps_a_stale_replica_from_failing_over() {
    let sim = stale_replica_scenario(1, 707);
    let m = sim.id(0);
    assert!(sim.nodes[3].core.has_flag(&m, FAIL));
    assert!(scheduled(&sim, 3).is_empty());
    assert!(sim.nodes[3].core.is_replica());
    assert!(!sim.nodes[1].core.state_ok());
    let lines: Vec<&String> = sim.nodes[3]
        .logs
        .iter()
        .map(|(_, _, t)| t)
        .filter(|t| t.starts_with("Currently unable to failover:"))
        .collect();
    assert_eq!(
        lines,
        vec!["Currently unable to failover: Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option."],
        "logged once (throttled)"
    );

    // The same silence with the check disabled (factor 0): failover.
    let sim = stale_replica_scenario(0, 707);
    assert!(!sim.nodes[3].core.is_replica());
    assert!((1..4).all(|i| sim.nodes[i].core.state_ok()));
}

#[test]
fn a_replica_migrates_to_an_orphaned_master() {
    // Master 0 has replicas 3 and 4, master 1 has replica 5.
    let mut sim = build(3, &[0, 0, 1], 808, |_, _| {});
    let (m0, m1) = (sim.id(0), sim.id(1));
    let smaller = if sim.id(3).0 < sim.id(4).0 { 3 } else { 4 };
    let other = 7 - smaller;
    let killed_at = sim.now;
    sim.kill(5);
    sim.run_until(10_000, |s| {
        (0..5).all(|i| s.nodes[i].core.has_flag(&s.id(5), FAIL))
    })
    .expect("replica 5 FAIL");
    let failed_at = sim.now;
    sim.run_until(15_000, |s| master_of(s, smaller) == Some(m1))
        .expect("migrated");
    assert!(
        sim.now - failed_at > 5000,
        "orphaned for more than 5 s first"
    );
    // (The negative test below waits 11 s: long enough to see a migration.)
    assert!(sim.now - killed_at < 10_000, "{}", sim.now - killed_at);
    assert!(sim.logged(smaller, &format!("Migrating to orphaned master {m1}")));
    assert_eq!(master_of(&sim, other), Some(m0));
    assert!(!sim.logged(other, "Migrating to orphaned master"));
    sim.run_for(3000);
    for i in 0..5 {
        let owner_view = sim.nodes[i].core.flags_of(&sim.id(smaller));
        assert!(owner_view.is_some_and(|f| f & SLAVE != 0));
    }
    match sim.cmd(1, &["REPLICAS", &m1.to_string()]) {
        Frame::Array(lines) => assert_eq!(lines.len(), 2, "{lines:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn migration_barrier_and_allow_replica_migration_hold_replicas_back() {
    for (barrier, allow) in [(2u32, true), (1, false)] {
        let mut sim = build(3, &[0, 0, 1], 809, |_, c| {
            c.migration_barrier = barrier;
            c.allow_replica_migration = allow;
        });
        sim.kill(5);
        sim.run_for(11_000);
        for i in [3, 4] {
            assert_eq!(
                master_of(&sim, i),
                Some(sim.id(0)),
                "barrier {barrier} allow {allow}"
            );
            assert!(!sim.logged(i, "Migrating to orphaned master"));
        }
    }
}

#[test]
fn killed_master_restarts_as_a_replica_and_roles_and_votes_survive_restarts() {
    let mut sim = build(3, &[0], 909, |_, _| {});
    sim.write(0, 500);
    sim.run_for(1000);
    let rep = sim.id(3);
    sim.kill(0);
    sim.run_until(15_000, |s| {
        (1..4).all(|i| s.nodes[i].core.state_ok() && s.nodes[i].core.owner_id(0) == Some(rep))
    })
    .expect("promoted");
    let epoch = elections_won(&sim, 3)[0].0;
    // While 0 was down its slots moved; it comes back claiming them with
    // its old epoch, is told by UPDATE/claims, and becomes a replica.
    sim.restart(0);
    assert!(
        !sim.nodes[0].core.is_replica(),
        "loads as the master it was"
    );
    sim.run_until(10_000, |s| master_of(s, 0) == Some(rep) && converged(s))
        .expect("old master becomes a replica");
    assert!(sim.logged(
        0,
        &format!("Configuration change detected. Reconfiguring myself as a replica of {rep}")
    ));
    let conf0 = sim.nodes[0].conf.clone().unwrap_or_default();
    assert!(conf0.contains(&format!("myself,slave {rep} ")), "{conf0}");

    // Roles survive restarts of the replica and of the new master.
    sim.run_for(1000);
    sim.kill(0);
    sim.restart(0);
    assert_eq!(master_of(&sim, 0), Some(rep));
    sim.kill(3);
    sim.restart(3);
    assert!(!sim.nodes[3].core.is_replica());
    assert_eq!(sim.nodes[3].core.my_epoch(), epoch);
    // A voter restarted keeps its lastVoteEpoch.
    sim.kill(1);
    sim.restart(1);
    assert!(sim.nodes[1]
        .core
        .config_text_for_tests()
        .contains(&format!("lastVoteEpoch {epoch}\n")));
    sim.run_until(10_000, |s| {
        converged(s) && (0..4).all(|i| s.nodes[i].core.state_ok())
    })
    .expect("converged after restarts");
    assert_vote_safety(&sim);
}

#[test]
fn test_election_delay_replaces_the_random_delay() {
    let mut sim = build(3, &[0], 102, |i, c| {
        if i == 3 {
            c.test_election_delay_ms = Some(2500);
        }
    });
    sim.pause(0);
    sim.run_until(20_000, |s| !s.nodes[3].core.is_replica())
        .expect("replica promoted");
    let sched = scheduled(&sim, 3);
    assert_eq!(sched.len(), 1, "{sched:?}");
    assert_eq!((sched[0].0, sched[0].1), (2500, 0));
    assert!(sim.logged(
        3,
        "Start of election delayed for 2500 milliseconds (rank #0, offset 0)."
    ));
}
