//! Planted bugs (`--bug NAME`) really change behaviour; the checkers that catch
//! them are proven in `hearsay-checkers` and the harness's `protocol_bugs` runs.

use std::collections::BTreeSet;

use super::sim::{test_config, Sim};

fn distinct_epochs(s: &Sim) -> usize {
    let mine: BTreeSet<u64> = s.nodes.iter().map(|n| n.core.my_epoch()).collect();
    mine.len()
}

#[test]
fn ignore_epoch_collision_leaves_masters_sharing_an_epoch() {
    let meshed = |s: &Sim| {
        let n = s.nodes.len();
        s.nodes
            .iter()
            .all(|x| x.core.known_ids().len() == n && x.core.handshake_count() == 0)
    };
    let with = |bugs: Vec<String>| {
        let mut sim = Sim::new(4, 21, |i| {
            let mut c = test_config(i, 2000);
            c.bugs = bugs.clone();
            c
        });
        sim.meet_chain();
        sim.run_until(20_000, meshed).expect("mesh");
        let _ = sim.run_until(30_000, |s| distinct_epochs(s) == s.nodes.len());
        distinct_epochs(&sim)
    };
    assert_eq!(with(vec![]), 4, "collision handling gives unique epochs");
    assert_eq!(
        with(vec!["ignore-epoch-collision".into()]),
        1,
        "with the bug every master keeps configEpoch 0"
    );
}

// ---- double-vote: one core fed two auth requests by hand ----

use std::net::SocketAddr;

use crate::cluster::{Action, Cluster};
use crate::events::EventKind;
use crate::slots::SlotSet;
use crate::wire::node_flags::SLAVE;
use crate::wire::{msg_type, Body, Header, Message, NodeName};

use super::fixed_id;
use super::sim::T0;

fn nid(c: char) -> NodeName {
    NodeName::parse(&fixed_id(c)).unwrap_or(NodeName::NULL)
}

/// Voter `a` (master of 0-4000) knows two failed masters, `f` (replica `r`)
/// and `h` (replica `s`): two different masters, so the per-master
/// 2 x node_timeout rule cannot be what refuses the second vote.
fn two_failed_masters_conf() -> String {
    format!(
        "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-4000\n\
         {f} 127.0.0.6:7005@17005 master,fail - 0 0 2 connected 4001-8000\n\
         {h} 127.0.0.8:7007@17007 master,fail - 0 0 3 connected 8001-16383\n\
         {r} 127.0.0.18:7017@17017 slave {f} 0 0 2 connected\n\
         {s} 127.0.0.19:7018@17018 slave {h} 0 0 3 connected\n\
         vars currentEpoch 3 lastVoteEpoch 0\n",
        a = fixed_id('a'),
        f = fixed_id('f'),
        h = fixed_id('h'),
        r = fixed_id('r'),
        s = fixed_id('s'),
    )
}

/// Votes (VoteGranted epochs) the voter gives when replica `r` of `f` and
/// then replica `s` of `h` both ask in epoch 4.
fn votes_in_epoch_4(bugs: Vec<String>) -> Vec<(String, u64)> {
    let mut cfg = test_config(0, 1000);
    cfg.announce_ip = Some("127.0.0.1".into());
    cfg.bugs = bugs;
    let mut core = Cluster::new(cfg, T0, 7, Some(&two_failed_masters_conf())).expect("load");
    let mut now = T0;
    // Let it settle past startup; outbound connects are simply left pending.
    for _ in 0..3 {
        now += 100;
        core.tick(now);
        core.before_sleep(now);
        while core.poll_action().is_some() {}
    }
    let mut granted = Vec::new();
    for (port_k, (from, master, cfg_epoch, lo, hi)) in
        [('r', 'f', 2, 4001u16, 8000u16), ('s', 'h', 3, 8001, 16383)]
            .into_iter()
            .enumerate()
    {
        let peer: SocketAddr = format!("127.0.0.{}:{}", 18 + port_k, 50000 + port_k)
            .parse()
            .expect("addr");
        let local: SocketAddr = "127.0.0.1:17000".parse().expect("addr");
        let link = core.handle_accept(now, peer, local);
        let mut h = Header::new(msg_type::FAILOVER_AUTH_REQUEST, nid(from));
        h.port = 7017 + port_k as u16;
        h.cport = 17017 + port_k as u16;
        h.myip = crate::wire::ip_field(&format!("127.0.0.{}", 18 + port_k));
        h.current_epoch = 4;
        h.config_epoch = cfg_epoch;
        h.flags = SLAVE;
        h.slaveof = nid(master);
        let mut claim = SlotSet::new();
        for j in lo..=hi {
            claim.insert(j);
        }
        h.myslots = claim;
        core.handle_packet(
            now,
            link,
            Message {
                header: h,
                body: Body::Empty,
            },
        );
        core.before_sleep(now);
        while let Some(a) = core.poll_action() {
            if let Action::Event(e) = a {
                if let EventKind::VoteGranted { to, epoch, .. } = e.kind {
                    granted.push((to, epoch));
                }
            }
        }
    }
    granted
}

#[test]
fn double_vote_grants_two_votes_in_one_epoch() {
    let (r, s) = (nid('r').to_string(), nid('s').to_string());
    assert_eq!(
        votes_in_epoch_4(vec![]),
        vec![(r.clone(), 4)],
        "lastVoteEpoch allows one vote per epoch"
    );
    assert_eq!(
        votes_in_epoch_4(vec!["double-vote".into()]),
        vec![(r, 4), (s, 4)],
        "with the bug the second replica gets a vote in the same epoch"
    );
}

// ---- the bugs of the rules the events now let a checker judge ----
//
// Each test runs the same scenario without and with the bug: the clean run
// keeps redis's rule, the bugged one breaks it, and the event line of the
// bent decision still tells the truth, so a checker can judge it alone.

use crate::cluster::ClusterConfig;
use crate::events::{FailClearedReason, Role};
use crate::wire::node_flags::{FAIL, PFAIL};

use super::failover::{build, grants, refusals, replica_conf, slots, voter_conf, Hand, TIMEOUT};
use crate::events::{ClusterStateName, VoteRefusedReason};

fn bugged(names: &[&str]) -> impl Fn(usize, &mut ClusterConfig) {
    let bugs: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    move |_, c| c.bugs = bugs.clone()
}

/// min(now - ping_sent, now - data_received) of node 0's PFAIL decisions
/// about node 2, after node 2 was paused.
fn pfail_delays(bugs: &[&str]) -> Vec<u64> {
    let mut sim = build(3, &[], 41, bugged(bugs));
    let c = sim.id(2);
    sim.pause(2);
    sim.run_until(10_000, |s| s.nodes[0].core.has_flag(&c, PFAIL | FAIL))
        .expect("PFAIL");
    sim.events(
        0,
        |e| matches!(e, EventKind::PfailSet { node, .. } if *node == c.to_string()),
    )
    .into_iter()
    .filter_map(|e| match e {
        EventKind::PfailSet {
            ping_sent_ms,
            data_received_ms,
            now_ms,
            ..
        } => Some((now_ms - ping_sent_ms).min(now_ms - data_received_ms)),
        _ => None,
    })
    .collect()
}

#[test]
fn early_pfail_suspects_after_half_the_node_timeout() {
    let clean = pfail_delays(&[]);
    assert!(
        !clean.is_empty() && clean.iter().all(|&d| d > TIMEOUT),
        "{clean:?}"
    );
    let early = pfail_delays(&["early-pfail"]);
    assert!(
        !early.is_empty() && early.iter().all(|&d| d > TIMEOUT / 2 && d <= TIMEOUT),
        "{early:?}"
    );
}

#[test]
fn vote_master_up_votes_while_the_candidates_master_is_up() {
    // t is a replica of g, which is up in the voter's view.
    let ask = |bugs: &[&str]| {
        let mut h = Hand::load_with(&voter_conf(0), 1, |c| {
            c.bugs = bugs.iter().map(|s| s.to_string()).collect()
        });
        h.tick(200);
        h.take();
        h.request('t', Some('g'), 4, 3, slots(8001, 16383), false);
        h
    };
    let clean = ask(&[]);
    assert_eq!(refusals(&clean), vec![VoteRefusedReason::MasterUp]);
    assert_eq!(clean.acks(), 0);
    let bad = ask(&["vote-master-up"]);
    assert_eq!(bad.acks(), 1);
    // The line says what the voter saw: g up, no FORCEACK.
    assert!(matches!(
        grants(&bad)[..],
        [EventKind::VoteGranted {
            master_fail: false,
            force_ack: false,
            voter_is_master: true,
            ..
        }]
    ));
}

/// How long after node 0 set FAIL on paused master 2 (resumed at once) it
/// cleared it, and the clearing line.
fn fail_clear(bugs: &[&str]) -> (u64, EventKind) {
    let mut sim = build(3, &[], 43, bugged(bugs));
    let c = sim.id(2);
    sim.pause(2);
    sim.run_until(10_000, |s| s.nodes[0].core.has_flag(&c, FAIL))
        .expect("FAIL");
    sim.resume(2);
    let took = sim
        .run_until(10 * TIMEOUT, |s| !s.nodes[0].core.has_flag(&c, FAIL))
        .expect("cleared");
    let line = sim
        .events(0, |e| matches!(e, EventKind::FailCleared { .. }))
        .first()
        .map(|e| (*e).clone())
        .expect("fail_cleared");
    (took, line)
}

#[test]
fn early_fail_clear_clears_a_master_with_slots_at_once() {
    let (took, _) = fail_clear(&[]);
    assert!(
        took > 2 * TIMEOUT - 100,
        "clean run cleared after {took} ms"
    );
    let (took, line) = fail_clear(&["early-fail-clear"]);
    assert!(took < TIMEOUT, "bugged run cleared after {took} ms");
    let EventKind::FailCleared {
        reason: FailClearedReason::NobodyServingSlots,
        role: Role::Master,
        slots,
        fail_time_ms,
        now_ms,
        node_timeout_ms,
        ..
    } = line
    else {
        panic!("{line:?}")
    };
    assert!(slots > 0);
    assert!(
        now_ms - fail_time_ms <= 2 * node_timeout_ms,
        "the line shows the early clear"
    );
}

/// A replica of failed master f, in a cluster of three masters with slots
/// (a majority is 2), that runs its election and gets g's vote only.
fn one_vote(bugs: &[&str]) -> Hand {
    let mut h = Hand::load_with(&replica_conf(), 9, |c| {
        c.bugs = bugs.iter().map(|s| s.to_string()).collect()
    });
    h.core.set_repl_offset(100);
    h.core.handle_master_link_up(h.now);
    while !h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::ElectionStarted { .. }))
    {
        assert!(h.now < T0 + 30_000, "no election");
        h.tick(100);
    }
    h.take();
    h.ack('g', None, 5);
    h
}

#[test]
fn premature_win_takes_over_with_one_vote_short() {
    let clean = one_vote(&[]);
    assert!(clean.core.is_replica(), "1 vote of 2 needed");
    let bad = one_vote(&["premature-win"]);
    assert!(!bad.core.is_replica());
    assert!(bad.events().contains(&EventKind::ElectionWon {
        master: fixed_id('f'),
        epoch: 5,
        votes: 1,
        needed: 2,
        voters: vec![fixed_id('g')],
    }));
}

/// ms from the first failover check (master already FAIL) to the election.
fn election_start(bugs: &[&str]) -> (u64, i64) {
    let mut h = Hand::load_with(&replica_conf(), 9, |c| {
        c.bugs = bugs.iter().map(|s| s.to_string()).collect()
    });
    h.core.set_repl_offset(100);
    h.core.handle_master_link_up(h.now);
    let from = h.now;
    let mut delay = None;
    loop {
        h.tick(100);
        if delay.is_none() {
            delay = h.scheduled().first().map(|s| s.0);
        }
        if h.events()
            .iter()
            .any(|e| matches!(e, EventKind::ElectionStarted { .. }))
        {
            return (h.now - from, delay.unwrap_or(-1));
        }
        assert!(h.now - from < 60 * TIMEOUT, "no election");
    }
}

#[test]
fn slow_failover_waits_ten_node_timeouts_more() {
    let (clean, delay) = election_start(&[]);
    assert!(
        clean < 1200 && (500..1000).contains(&delay),
        "{clean} {delay}"
    );
    let (slow, delay) = election_start(&["slow-failover"]);
    let extra = 10 * TIMEOUT;
    assert!(slow >= extra + 500 && slow < extra + 1200, "{slow}");
    // The scheduled delay it reports is the one it keeps.
    assert!((500..1000).contains(&(delay - extra as i64)), "{delay}");
}

#[test]
fn minority_writes_keeps_a_cut_off_master_ok() {
    let cut_off = |bugs: &[&str]| {
        let mut sim = build(3, &[], 44, bugged(bugs));
        sim.isolate(2);
        sim.run_for(5 * TIMEOUT);
        sim
    };
    let clean = cut_off(&[]);
    assert!(!clean.nodes[2].core.state_ok());
    assert_eq!(
        clean
            .events(2, |e| matches!(
                e,
                EventKind::ClusterStateChanged {
                    state: ClusterStateName::Fail
                }
            ))
            .len(),
        1
    );
    let bad = cut_off(&["minority-writes"]);
    assert!(bad.nodes[2].core.state_ok(), "the minority master stays ok");
    assert!(bad
        .events(2, |e| matches!(
            e,
            EventKind::ClusterStateChanged {
                state: ClusterStateName::Fail
            }
        ))
        .is_empty());
    // Its own lines still show it lost the majority: both peers suspected.
    for peer in [0, 1] {
        let id = bad.id(peer).to_string();
        assert_eq!(
            bad.events(
                2,
                |e| matches!(e, EventKind::PfailSet { node, .. } if *node == id)
            )
            .len(),
            1
        );
    }
    // Replicas are not masters: the bug leaves them alone.
    let mut sim = build(3, &[2], 45, bugged(&["minority-writes"]));
    sim.isolate(3);
    sim.run_for(5 * TIMEOUT);
    assert!(!sim.nodes[3].core.state_ok());
}
