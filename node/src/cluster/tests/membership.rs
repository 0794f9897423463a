//! Joining, gossip spread, links and slot propagation.

use crate::events::{AddedVia, EventKind, RemovedReason};
use crate::wire::msg_type;
use crate::wire::node_flags::*;

use super::sim::{test_config, Sim};

/// Every node knows all `n` nodes, and none is left in handshake.
fn fully_meshed(sim: &Sim) -> bool {
    let n = sim.nodes.len();
    sim.nodes
        .iter()
        .all(|x| x.core.known_ids().len() == n && x.core.handshake_count() == 0)
}

#[test]
fn meet_chain_spreads_membership_to_all_six_nodes() {
    let mut sim = Sim::new(6, 1, |i| test_config(i, 2000));
    sim.meet_chain();
    let took = sim.run_until(20_000, fully_meshed);
    assert!(
        took.is_some(),
        "membership did not converge in 20 s: {:?}",
        sim.nodes
            .iter()
            .map(|n| n.core.known_ids().len())
            .collect::<Vec<_>>()
    );

    // Every node learned its own IP from a MEET (not announced).
    for (i, n) in sim.nodes.iter().enumerate() {
        let line = n
            .core
            .nodes_text()
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap_or_default()
            .to_string();
        assert!(
            line.contains(&format!("127.0.0.{}:{}@{}", i + 1, 7000 + i, 17000 + i)),
            "node {i}: {line}"
        );
    }
    // Nodes beyond the direct neighbours were learned through gossip.
    let via_gossip = sim
        .events(0, |e| {
            matches!(
                e,
                EventKind::NodeAdded {
                    via: AddedVia::Gossip,
                    ..
                }
            )
        })
        .len();
    assert!(
        via_gossip >= 3,
        "node 0 learned {via_gossip} nodes by gossip"
    );

    // Eventually two links per peer: one outbound, one inbound.
    let ok = sim.run_until(10_000, |s| {
        (0..6).all(|i| {
            (0..6)
                .filter(|&j| j != i)
                .all(|j| s.nodes[i].core.link_count(&s.id(j)) == 2)
        })
    });
    assert!(ok.is_some(), "links did not settle at 2 per peer");
    let links = sim.cmd(0, &["LINKS"]);
    let crate::resp::Frame::Array(links) = links else {
        panic!("LINKS is an array")
    };
    assert_eq!(links.len(), 10);
}

#[test]
fn meet_handshake_completes_with_real_ids_and_dedupes() {
    let mut sim = Sim::new(2, 2, |i| test_config(i, 2000));
    sim.meet(0, 1);
    sim.meet(0, 1); // a second MEET to the same address is a no-op
    assert_eq!(sim.nodes[0].core.handshake_count(), 1);
    sim.run_until(3000, fully_meshed).expect("two nodes meet");
    let (a, b) = (sim.id(0), sim.id(1));
    assert!(sim.nodes[0].core.has_flag(&b, MASTER));
    assert!(sim.nodes[1].core.has_flag(&a, MASTER));
    // Node 0 renamed its handshake node to node 1's real ID.
    assert!(
        sim.events(
            0,
            |e| matches!(e, EventKind::NodeRenamed { to, .. } if *to == b.to_string())
        )
        .len()
            == 1
    );
    assert!(
        sim.events(0, |e| matches!(e, EventKind::HandshakeCompleted { .. }))
            .len()
            == 1
    );
    // Node 1 created a handshake node when the MEET arrived.
    assert!(!sim
        .events(1, |e| matches!(
            e,
            EventKind::NodeAdded {
                via: AddedVia::Handshake,
                ..
            }
        ))
        .is_empty());
    assert!(sim.delivered.get(&msg_type::MEET).copied().unwrap_or(0) >= 1);
}

#[test]
fn handshake_to_nowhere_times_out() {
    let mut sim = Sim::new(1, 3, |i| test_config(i, 500));
    let r = sim.cmd(0, &["MEET", "127.0.0.99", "7099"]);
    assert_eq!(r, crate::resp::Frame::ok());
    assert_eq!(sim.nodes[0].core.handshake_count(), 1);
    sim.run_for(900);
    assert_eq!(
        sim.nodes[0].core.handshake_count(),
        1,
        "handshake timeout is at least 1000 ms"
    );
    sim.run_for(300);
    assert_eq!(sim.nodes[0].core.handshake_count(), 0);
    assert_eq!(
        sim.events(0, |e| matches!(
            e,
            EventKind::NodeRemoved {
                reason: RemovedReason::HandshakeTimeout,
                ..
            }
        ))
        .len(),
        1
    );
    // Connection failures are logged at VERBOSE, once per attempt (every tick).
    let fails = sim.nodes[0]
        .logs
        .iter()
        .filter(|(_, _, t)| t.starts_with("Connection with Node "))
        .count();
    assert!(fails >= 9, "{fails} connect failures logged");
}

#[test]
fn slots_assigned_on_one_node_spread_and_state_becomes_ok() {
    let mut sim = Sim::new(3, 4, |i| test_config(i, 2000));
    sim.meet_chain();
    sim.run_until(10_000, fully_meshed).expect("mesh");
    assert_eq!(
        sim.cmd(0, &["ADDSLOTSRANGE", "0", "16383"]),
        crate::resp::Frame::ok()
    );
    let took = sim.run_until(10_000, |s| {
        s.nodes.iter().all(|n| {
            n.core.state_ok()
                && n.core.owner_id(0) == Some(s.id(0))
                && n.core.owner_id(16383) == Some(s.id(0))
        })
    });
    assert!(took.is_some(), "slots did not spread");
    for i in 0..3 {
        assert!(sim.logged(i, "Cluster state changed: ok"));
        assert!(sim.nodes[i]
            .core
            .info_text()
            .starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"));
    }
    // Peers recorded the change as a gossip-driven slot move.
    let moved = sim.events(1, |e| {
        matches!(
            e,
            EventKind::SlotOwnerChanged {
                reason: crate::events::SlotChangeReason::Gossip,
                ..
            }
        )
    });
    assert_eq!(moved.len(), 1);
    if let EventKind::SlotOwnerChanged {
        slots, from, to, ..
    } = moved[0]
    {
        assert_eq!(slots, &vec![[0u16, 16383u16]]);
        assert_eq!(from, &None);
        assert_eq!(to.as_deref(), Some(sim.id(0).to_string().as_str()));
    }
}

#[test]
fn three_masters_split_slots_and_agree_on_cluster_slots() {
    let mut sim = Sim::new(3, 5, |i| test_config(i, 2000));
    sim.cmd(0, &["ADDSLOTSRANGE", "0", "5460"]);
    sim.cmd(1, &["ADDSLOTSRANGE", "5461", "10922"]);
    sim.cmd(2, &["ADDSLOTSRANGE", "10923", "16383"]);
    sim.meet_chain();
    let took = sim.run_until(15_000, |s| s.nodes.iter().all(|n| n.core.state_ok()));
    assert!(took.is_some(), "cluster never became ok");
    let slots: Vec<_> = (0..3).map(|i| sim.cmd(i, &["SLOTS"])).collect();
    assert_eq!(slots[0], slots[1]);
    assert_eq!(slots[1], slots[2]);
    let crate::resp::Frame::Array(ranges) = &slots[0] else {
        panic!("array")
    };
    assert_eq!(ranges.len(), 3);
    for n in &sim.nodes {
        assert_eq!(n.core.cluster_size(), 3);
    }
}

#[test]
fn forget_blacklists_for_sixty_seconds() {
    let mut sim = Sim::new(3, 6, |i| test_config(i, 2000));
    sim.meet_chain();
    sim.run_until(10_000, fully_meshed).expect("mesh");
    let c = sim.id(2).to_string();
    assert_eq!(sim.cmd(0, &["FORGET", &c]), crate::resp::Frame::ok());
    assert!(!sim.nodes[0].core.known_ids().contains(&sim.id(2)));
    // Node 1 keeps gossiping about node 2, but the blacklist holds for 60 s.
    sim.run_for(30_000);
    assert!(
        !sim.nodes[0].core.known_ids().contains(&sim.id(2)),
        "re-added within the blacklist TTL"
    );
    sim.run_until(40_000, |s| s.nodes[0].core.known_ids().contains(&s.id(2)))
        .expect("re-added after the TTL");
    assert_eq!(
        sim.events(0, |e| matches!(
            e,
            EventKind::NodeRemoved {
                reason: RemovedReason::Forgotten,
                ..
            }
        ))
        .len(),
        1
    );
}

#[test]
fn converged_cluster_does_not_rewrite_its_config() {
    let mut sim = Sim::new(4, 7, |i| test_config(i, 1000));
    sim.cmd(0, &["ADDSLOTSRANGE", "0", "9000"]);
    sim.cmd(1, &["ADDSLOTSRANGE", "9001", "16383"]);
    sim.meet_chain();
    sim.run_until(20_000, |s| {
        fully_meshed(s) && s.nodes.iter().all(|n| n.core.state_ok())
    })
    .expect("ok");
    // Let epoch collisions settle.
    sim.run_for(10_000);
    let saves: Vec<usize> = sim.nodes.iter().map(|n| n.saves).collect();
    sim.run_for(10_000);
    let after: Vec<usize> = sim.nodes.iter().map(|n| n.saves).collect();
    assert_eq!(saves, after, "a quiet cluster keeps rewriting nodes.conf");
}

#[test]
fn hostname_and_nofailover_spread_and_retract() {
    let mut sim = Sim::new(3, 8, |i| test_config(i, 1000));
    sim.meet_chain();
    sim.run_until(10_000, fully_meshed).expect("mesh");
    let mut cfg = sim.nodes[1].cfg.clone();
    cfg.announce_hostname = Some("host-1.example".into());
    cfg.replica_no_failover = true;
    sim.nodes[1].core.set_config(cfg.clone());
    let b = sim.id(1);
    let line_of = |s: &Sim, i: usize| {
        s.nodes[i]
            .core
            .nodes_text()
            .lines()
            .find(|l| l.starts_with(&b.to_string()))
            .unwrap_or_default()
            .to_string()
    };
    sim.run_until(5000, |s| {
        line_of(s, 0).contains("@17001,host-1.example master,nofailover ")
            && line_of(s, 2).contains(",host-1.example")
    })
    .unwrap_or_else(|| panic!("hostname did not spread: {}", line_of(&sim, 0)));
    assert!(line_of(&sim, 1).contains(",host-1.example myself,master,nofailover "));
    cfg.announce_hostname = None;
    cfg.replica_no_failover = false;
    sim.nodes[1].core.set_config(cfg);
    sim.run_until(5000, |s| {
        !line_of(s, 0).contains("host-1") && !line_of(s, 0).contains("nofailover")
    })
    .unwrap_or_else(|| panic!("hostname not retracted: {}", line_of(&sim, 0)));
}

#[test]
fn hostname_validation_texts() {
    use crate::cluster::validate_hostname;
    assert_eq!(validate_hostname(""), Ok(()));
    assert_eq!(validate_hostname("a-b.c9"), Ok(()));
    assert_eq!(
        validate_hostname("a_b"),
        Err("Hostnames may only contain alphanumeric characters, hyphens or dots")
    );
    assert_eq!(
        validate_hostname(&"a".repeat(256)),
        Err("Hostnames must be less than 256 characters")
    );
}
