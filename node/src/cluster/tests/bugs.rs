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
