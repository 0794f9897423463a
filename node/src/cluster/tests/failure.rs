//! Failure detection: PFAIL, failure reports, the FAIL quorum, FAIL clearing.

use std::net::SocketAddr;

use crate::cluster::{Action, Cluster, LogLevel};
use crate::events::{EventKind, FailClearedReason, ReportRemovedReason, Role};
use crate::wire::node_flags::*;
use crate::wire::{ip_field, msg_type, Body, GossipEntry, Header, Message, NodeName};

use super::fixed_id;
use super::sim::{test_config, Sim, T0};

const TIMEOUT: u64 = 1000;

/// `masters` masters splitting the slots, plus `replicas` replicas of master 0,
/// fully meshed and ok.
fn cluster(masters: usize, replicas: usize, seed: u64) -> Sim {
    let n = masters + replicas;
    let mut sim = Sim::new(n, seed, |i| test_config(i, TIMEOUT));
    let per = 16384 / masters;
    for m in 0..masters {
        let start = m * per;
        let end = if m == masters - 1 {
            16383
        } else {
            start + per - 1
        };
        let r = sim.cmd(m, &["ADDSLOTSRANGE", &start.to_string(), &end.to_string()]);
        assert_eq!(r, crate::resp::Frame::ok());
    }
    sim.meet_chain();
    sim.run_until(20_000, |s| {
        s.nodes
            .iter()
            .all(|x| x.core.known_ids().len() == n && x.core.handshake_count() == 0)
    })
    .expect("mesh");
    for r in masters..n {
        let m0 = sim.id(0).to_string();
        assert_eq!(sim.cmd(r, &["REPLICATE", &m0]), crate::resp::Frame::ok());
    }
    sim.run_until(20_000, |s| {
        s.nodes.iter().all(|x| x.core.state_ok())
            && (masters..n).all(|r| s.nodes.iter().all(|x| x.core.has_flag(&s.id(r), SLAVE)))
    })
    .expect("cluster ok");
    sim
}

fn fail_marked(sim: &Sim, i: usize, about: usize) -> Vec<EventKind> {
    let id = sim.id(about).to_string();
    sim.events(
        i,
        |e| matches!(e, EventKind::FailMarked { about, .. } if *about == id),
    )
    .into_iter()
    .cloned()
    .collect()
}

/// Every `pfail_set` line of node i, re-judged from its own fields by redis
/// 7.0's rule: a ping outstanding and min(now - ping_sent, now - data_received)
/// > node_timeout; `now_ms` is when the core decided. Returns how many.
pub(super) fn pfail_lines_obey_the_rule(sim: &Sim, i: usize) -> usize {
    let mut n = 0;
    for (t, e) in &sim.nodes[i].events {
        if let EventKind::PfailSet {
            node,
            ping_sent_ms,
            data_received_ms,
            now_ms,
            node_timeout_ms,
        } = &e.kind
        {
            assert_eq!(now_ms, t, "{node}: now_ms is the decision's time");
            assert_eq!(*node_timeout_ms, sim.nodes[i].cfg.node_timeout);
            assert_ne!(*ping_sent_ms, 0, "{node}: no ping outstanding");
            let delay = (now_ms - ping_sent_ms).min(now_ms - data_received_ms);
            assert!(delay > *node_timeout_ms, "{node}: PFAIL after {delay} ms");
            n += 1;
        }
    }
    n
}

/// Every `fail_cleared` line of node i, re-judged from its own fields by
/// redis 7.0's `clearNodeFailureIfNeeded`, reason included. Returns how many.
pub(super) fn fail_cleared_lines_obey_the_rule(sim: &Sim, i: usize) -> usize {
    let mut n = 0;
    for (t, e) in &sim.nodes[i].events {
        if let EventKind::FailCleared {
            about,
            reason,
            role,
            slots,
            fail_time_ms,
            now_ms,
            node_timeout_ms,
        } = &e.kind
        {
            assert_eq!(now_ms, t, "{about}");
            assert_eq!(*node_timeout_ms, sim.nodes[i].cfg.node_timeout);
            assert_ne!(*fail_time_ms, 0, "{about}: never flagged FAIL");
            let expected = match (role, slots) {
                (Role::Replica, _) => FailClearedReason::ReplicaReachable,
                (Role::Master, 0) => FailClearedReason::MasterWithoutSlotsReachable,
                (Role::Master, _) => {
                    assert!(
                        now_ms - fail_time_ms > 2 * node_timeout_ms,
                        "{about}: a master with {slots} slots cleared {} ms after FAIL",
                        now_ms - fail_time_ms
                    );
                    FailClearedReason::NobodyServingSlots
                }
            };
            assert_eq!(*reason, expected, "{about}");
            n += 1;
        }
    }
    n
}

#[test]
fn paused_master_goes_pfail_then_fail_with_majority_reports() {
    let mut sim = cluster(3, 0, 11);
    let c = sim.id(2);
    let paused_at = sim.now;
    sim.pause(2);
    // PFAIL needs more than node_timeout without an answer.
    sim.run_until(10_000, |s| s.nodes[0].core.has_flag(&c, PFAIL | FAIL))
        .expect("PFAIL");
    let pfail_at = sim.nodes[0]
        .events
        .iter()
        .find(
            |(_, e)| matches!(&e.kind, EventKind::PfailSet { node, .. } if *node == c.to_string()),
        )
        .map(|(t, _)| *t)
        .expect("pfail_set event");
    assert!(
        pfail_at - paused_at > TIMEOUT,
        "PFAIL after {} ms",
        pfail_at - paused_at
    );
    assert!(
        pfail_at - paused_at <= TIMEOUT + TIMEOUT / 2 + 300,
        "PFAIL late: {} ms",
        pfail_at - paused_at
    );

    sim.run_until(10_000, |s| {
        (0..2).all(|i| s.nodes[i].core.has_flag(&c, FAIL))
    })
    .expect("FAIL");
    // With 3 masters the quorum is 2: one peer report plus our own opinion.
    let decided: Vec<usize> = (0..2)
        .filter(|&i| !fail_marked(&sim, i, 2).is_empty())
        .collect();
    assert!(!decided.is_empty(), "someone decided FAIL by quorum");
    for &i in &decided {
        let EventKind::FailMarked {
            reporters,
            quorum_needed,
            masters_with_slots,
            counted_self,
            ..
        } = &fail_marked(&sim, i, 2)[0]
        else {
            unreachable!()
        };
        assert_eq!(*quorum_needed, 2);
        assert_eq!(*masters_with_slots, 3);
        assert!(*counted_self);
        assert_eq!(reporters.len(), 1);
        let other = sim.id(1 - i).to_string();
        assert_eq!(reporters[0].id, other);
        assert!(sim.logged(i, &format!("Marking node {c} as failing (quorum reached).")));
    }
    // The other master learned it from the FAIL broadcast (or decided too).
    for i in 0..2 {
        let received = sim.events(
            i,
            |e| matches!(e, EventKind::FailReceived { about, .. } if *about == c.to_string()),
        );
        assert!(decided.contains(&i) || !received.is_empty());
    }
    // Full coverage is lost: the survivors report cluster_state:fail.
    sim.run_until(1000, |s| !s.nodes[0].core.state_ok())
        .expect("state fail");
    assert!(sim.logged(0, "Cluster state changed: fail"));
    // The PFAIL line carries the state it was decided in: our ping went out
    // after the pause (a pong was due), and nothing came back since.
    let pfail = sim.events(
        0,
        |e| matches!(e, EventKind::PfailSet { node, .. } if *node == c.to_string()),
    );
    let EventKind::PfailSet {
        ping_sent_ms,
        data_received_ms,
        now_ms,
        ..
    } = pfail[0]
    else {
        unreachable!()
    };
    assert_eq!(*now_ms, pfail_at);
    assert!(*ping_sent_ms >= paused_at && *data_received_ms <= paused_at);
    for i in 0..2 {
        assert!(pfail_lines_obey_the_rule(&sim, i) >= 1, "node {i}");
    }
}

#[test]
fn minority_of_reports_does_not_reach_fail() {
    let mut sim = cluster(3, 0, 12);
    let c = sim.id(2);
    // Masters 0 and 1 cannot exchange reports: each only has its own PFAIL,
    // 1 of the 2 needed.
    sim.cut(0, 1);
    sim.pause(2);
    sim.run_for(6 * TIMEOUT);
    for i in 0..2 {
        assert!(sim.nodes[i].core.has_flag(&c, PFAIL), "node {i} suspects");
        assert!(
            !sim.nodes[i].core.has_flag(&c, FAIL),
            "node {i} must not reach FAIL alone"
        );
        assert!(fail_marked(&sim, i, 2).is_empty());
        // Cut peers are suspected too: every line still obeys the rule.
        assert!(pfail_lines_obey_the_rule(&sim, i) >= 2, "node {i}");
    }
    // Once they talk again the second opinion arrives and FAIL follows.
    sim.heal();
    sim.run_until(5 * TIMEOUT, |s| {
        (0..2).all(|i| s.nodes[i].core.has_flag(&c, FAIL))
    })
    .expect("FAIL after heal");
}

#[test]
fn five_masters_need_three_opinions() {
    let mut sim = cluster(5, 0, 13);
    let e = sim.id(4);
    // Node 0 hears only from node 1: self + 1 report = 2 < 3.
    for other in 2..4 {
        sim.cut(0, other);
    }
    sim.pause(4);
    sim.run_for(5 * TIMEOUT);
    // Nodes 1..3 may decide FAIL among themselves and broadcast it; node 0 is
    // cut from 2 and 3 but not from 1, so isolate 1's FAIL broadcast by
    // checking node 0 never *decided* FAIL itself.
    assert!(
        fail_marked(&sim, 0, 4).is_empty(),
        "node 0 decided FAIL with a minority"
    );
    assert!(sim.nodes[0].core.has_flag(&e, PFAIL | FAIL));
    // Nodes 1, 2 and 3 have three opinions among them: some decided.
    assert!((1..4).any(|i| !fail_marked(&sim, i, 4).is_empty()));
}

#[test]
fn replica_fail_clears_at_once_when_reachable() {
    let mut sim = cluster(3, 1, 14);
    let r = sim.id(3);
    sim.pause(3);
    sim.run_until(10_000, |s| {
        (0..3).all(|i| s.nodes[i].core.has_flag(&r, FAIL))
    })
    .expect("replica FAIL");
    sim.resume(3);
    sim.run_until(3 * TIMEOUT, |s| {
        (0..3).all(|i| !s.nodes[i].core.has_flag(&r, FAIL))
    })
    .expect("cleared");
    assert!(sim.logged(
        0,
        &format!("Clear FAIL state for node {r}: replica is reachable again.")
    ));
    let cleared = sim.events(0, |e| {
        matches!(
            e,
            EventKind::FailCleared {
                reason: FailClearedReason::ReplicaReachable,
                role: Role::Replica,
                slots: 0,
                ..
            }
        )
    });
    assert_eq!(cleared.len(), 1);
    for i in 0..3 {
        assert_eq!(fail_cleared_lines_obey_the_rule(&sim, i), 1, "node {i}");
    }
}

#[test]
fn slotless_master_fail_clears_at_once() {
    // Three masters with slots plus one without.
    let mut sim = cluster(3, 0, 15);
    let i = sim.add_node(
        Cluster::new(test_config(3, TIMEOUT), sim.now, 99, None).expect("node"),
        test_config(3, TIMEOUT),
    );
    sim.meet(0, i);
    sim.run_until(10_000, |s| {
        s.nodes.iter().all(|x| x.core.known_ids().len() == 4)
    })
    .expect("joined");
    let d = sim.id(3);
    sim.pause(3);
    sim.run_until(10_000, |s| s.nodes[0].core.has_flag(&d, FAIL))
        .expect("FAIL");
    sim.resume(3);
    sim.run_until(3 * TIMEOUT, |s| !s.nodes[0].core.has_flag(&d, FAIL))
        .expect("cleared");
    assert!(sim.logged(
        0,
        &format!("Clear FAIL state for node {d}: master without slots is reachable again.")
    ));
    let cleared = sim.events(0, |e| matches!(e, EventKind::FailCleared { .. }));
    assert!(matches!(
        cleared[..],
        [EventKind::FailCleared {
            reason: FailClearedReason::MasterWithoutSlotsReachable,
            role: Role::Master,
            slots: 0,
            ..
        }]
    ));
    assert_eq!(fail_cleared_lines_obey_the_rule(&sim, 0), 1);
}

#[test]
fn master_with_slots_fail_clears_only_after_twice_node_timeout() {
    let mut sim = cluster(3, 0, 16);
    let c = sim.id(2);
    sim.pause(2);
    sim.run_until(10_000, |s| s.nodes[0].core.has_flag(&c, FAIL))
        .expect("FAIL");
    let fail_at = sim.now;
    sim.resume(2);
    let took = sim
        .run_until(10 * TIMEOUT, |s| !s.nodes[0].core.has_flag(&c, FAIL))
        .expect("cleared eventually");
    assert!(
        took > 2 * TIMEOUT - 100,
        "FAIL cleared after {took} ms, before 2 x node_timeout"
    );
    assert!(sim.now - fail_at > 2 * TIMEOUT);
    assert!(sim.logged(
        0,
        &format!("Clear FAIL state for node {c}: is reachable again and nobody is serving its slots after some time.")
    ));
    // The line names the FAIL it undoes and the slots c still serves.
    let cleared = sim.events(0, |e| matches!(e, EventKind::FailCleared { .. }));
    let [EventKind::FailCleared {
        role: Role::Master,
        slots,
        fail_time_ms,
        ..
    }] = cleared[..]
    else {
        panic!("{cleared:?}")
    };
    assert_eq!(*slots, 16384 - 2 * (16384 / 3));
    assert!(*fail_time_ms <= fail_at && fail_at - fail_time_ms < 200);
    assert_eq!(fail_cleared_lines_obey_the_rule(&sim, 0), 1);
    sim.run_until(10_000, |s| s.nodes.iter().all(|n| n.core.state_ok()))
        .expect("ok again");
}

// ---- hand-driven single core: exact report timing ----

/// A core that believes in five masters with slots (A = us, B..E), each with
/// an inbound link we can inject packets on.
struct Driver {
    core: Cluster,
    now: u64,
    links: Vec<(NodeName, crate::cluster::LinkId)>,
}

fn id(c: char) -> NodeName {
    NodeName::parse(&fixed_id(c)).unwrap_or(NodeName::NULL)
}

impl Driver {
    fn new() -> Driver {
        let conf = format!(
            "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-3000\n\
             {b} 127.0.0.2:7001@17001 master - 0 0 2 connected 3001-6000\n\
             {c} 127.0.0.3:7002@17002 master - 0 0 3 connected 6001-9000\n\
             {d} 127.0.0.4:7003@17003 master - 0 0 4 connected 9001-12000\n\
             {e} 127.0.0.5:7004@17004 master - 0 0 5 connected 12001-16383\n\
             vars currentEpoch 5 lastVoteEpoch 0\n",
            a = fixed_id('a'),
            b = fixed_id('b'),
            c = fixed_id('c'),
            d = fixed_id('d'),
            e = fixed_id('e'),
        );
        let mut cfg = test_config(0, TIMEOUT);
        cfg.announce_ip = Some("127.0.0.1".into());
        let mut core = Cluster::new(cfg, T0, 5, Some(&conf)).expect("load");
        core.set_log_level(LogLevel::Verbose);
        let mut d = Driver {
            core,
            now: T0,
            links: Vec::new(),
        };
        for (k, ch) in ['b', 'c', 'd', 'e'].into_iter().enumerate() {
            let peer: SocketAddr = format!("127.0.0.{}:{}", k + 2, 50000 + k)
                .parse()
                .unwrap_or_else(|_| unreachable!());
            let local: SocketAddr = "127.0.0.1:17000".parse().unwrap_or_else(|_| unreachable!());
            let l = d.core.handle_accept(d.now, peer, local);
            d.links.push((id(ch), l));
        }
        d
    }

    fn drain(&mut self) -> Vec<Action> {
        self.core.before_sleep(self.now);
        std::iter::from_fn(|| self.core.poll_action()).collect()
    }

    /// Sends (as `from`) a PING whose gossip says `about` has `flags`.
    fn gossip(&mut self, from: char, about: char, flags: u16) {
        let sender = id(from);
        let Some(&(_, link)) = self.links.iter().find(|(n, _)| *n == sender) else {
            panic!("no link")
        };
        let k = u16::try_from(from as u32 - 'a' as u32).unwrap_or(0);
        let mut h = Header::new(msg_type::PING, sender);
        h.port = 7000 + k;
        h.cport = 17000 + k;
        h.flags = MASTER;
        h.current_epoch = 5;
        h.config_epoch = u64::from(k) + 1;
        h.myip = ip_field(&format!("127.0.0.{}", k + 1));
        // Claim the same slots we hold for the sender, so no slot logic runs.
        let r = self.core.lookup(&sender).expect("known");
        h.myslots = self
            .core
            .node(r)
            .map(|n| n.slots.clone())
            .unwrap_or_default();
        let g = GossipEntry {
            nodename: id(about),
            ping_sent: 0,
            pong_received: 0,
            ip: [0; 46],
            port: 0,
            cport: 0,
            flags: MASTER | flags,
            pport: 0,
        };
        let msg = Message {
            header: h,
            body: Body::Ping {
                gossip: vec![g],
                extensions: vec![],
            },
        };
        self.core.handle_packet(self.now, link, msg);
    }

    /// Advances time with ticks, never answering the core's pings.
    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now += 100;
            self.core.tick(self.now);
            for a in self.drain() {
                if let Action::Connect { link, .. } = a {
                    let local: SocketAddr =
                        "127.0.0.1:40000".parse().unwrap_or_else(|_| unreachable!());
                    self.core.handle_connected(self.now, link, local);
                }
            }
        }
    }
}

#[test]
fn expired_failure_reports_do_not_count() {
    let mut d = Driver::new();
    let c = id('c');
    d.core.tick(d.now);
    d.drain();
    // B reports C at t0.
    d.gossip('b', 'c', PFAIL);
    assert_eq!(d.core.report_count(&c), 1);
    // C stays silent: we get PFAIL ourselves after node_timeout, and B's report
    // expires after 2 x node_timeout. Keep the others answering so only C fails.
    d.advance(2 * TIMEOUT + 200);
    assert!(d.core.has_flag(&c, PFAIL), "we suspect C");
    // D reports now: B's report is stale, so D + self = 2 < 3.
    d.gossip('d', 'c', PFAIL);
    assert!(!d.core.has_flag(&c, FAIL), "an expired report was counted");
    let actions = d.drain();
    let expired = actions.iter().any(|a| matches!(a, Action::Event(e) if matches!(&e.kind,
        EventKind::FailureReportRemoved { reason: ReportRemovedReason::Expired, reporter, .. } if *reporter == fixed_id('b'))));
    assert!(expired, "expiry is reported as an event");
    assert_eq!(d.core.report_count(&c), 1);
    // E reports: D + E + self = 3 reaches the quorum of 5 masters.
    d.gossip('e', 'c', FAIL);
    assert!(d.core.has_flag(&c, FAIL));
    let actions = d.drain();
    let marked = actions.iter().find_map(|a| match a {
        Action::Event(e) => match &e.kind {
            EventKind::FailMarked {
                reporters,
                quorum_needed,
                masters_with_slots,
                counted_self,
                ..
            } => Some((
                reporters.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                *quorum_needed,
                *masters_with_slots,
                *counted_self,
            )),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(
        marked,
        Some((vec![fixed_id('d'), fixed_id('e')], 3, 5, true))
    );
    // FAIL is broadcast on every outbound link.
    let fails = actions
        .iter()
        .filter(|a| matches!(a, Action::Send { msg, .. } if msg.header.msg_type == msg_type::FAIL))
        .count();
    assert_eq!(fails, 4);
}

#[test]
fn back_online_gossip_withdraws_a_report_and_count_failure_reports_agrees() {
    let mut d = Driver::new();
    let c = id('c');
    d.gossip('b', 'c', PFAIL);
    d.gossip('d', 'c', FAIL);
    let keys = super::sim::MemKeys::default();
    let arg = |s: &str| bytes::Bytes::copy_from_slice(s.as_bytes());
    let count = d.core.command(
        d.now,
        &[arg("COUNT-FAILURE-REPORTS"), arg(&fixed_id('c'))],
        &keys,
        false,
    );
    assert_eq!(count, crate::resp::Frame::Integer(2));
    d.gossip('b', 'c', 0);
    assert_eq!(d.core.report_count(&c), 1);
    let actions = d.drain();
    assert!(actions.iter().any(|a| matches!(a, Action::Log { level: LogLevel::Verbose, text }
        if *text == format!("Node {} reported node {} is back online.", fixed_id('b'), fixed_id('c')))));
    let count = d.core.command(
        d.now,
        &[arg("COUNT-FAILURE-REPORTS"), arg(&fixed_id('c'))],
        &keys,
        false,
    );
    assert_eq!(count, crate::resp::Frame::Integer(1));
}
