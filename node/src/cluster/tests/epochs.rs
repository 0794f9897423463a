//! Epochs: collision resolution, UPDATE messages, stale masters.

use std::collections::BTreeSet;

use crate::events::{EventKind, SlotChangeReason};
use crate::resp::Frame;
use crate::slots::key_slot;

use super::sim::{test_config, Sim};

fn meshed(sim: &Sim) -> bool {
    let n = sim.nodes.len();
    sim.nodes
        .iter()
        .all(|x| x.core.known_ids().len() == n && x.core.handshake_count() == 0)
}

#[test]
fn config_epoch_collisions_resolve_to_unique_epochs() {
    let mut sim = Sim::new(6, 21, |i| test_config(i, 2000));
    sim.meet_chain();
    sim.run_until(20_000, meshed).expect("mesh");
    let unique = |s: &Sim| {
        let mine: BTreeSet<u64> = s.nodes.iter().map(|n| n.core.my_epoch()).collect();
        mine.len() == s.nodes.len()
    };
    sim.run_until(60_000, unique)
        .expect("unique configEpochs within 60 s");
    // Every node agrees on everyone's epoch, and currentEpoch covers them.
    sim.run_until(10_000, |s| {
        (0..6).all(|i| {
            (0..6).all(|j| {
                s.nodes[i].core.config_epoch_of(&s.id(j)) == Some(s.nodes[j].core.my_epoch())
            })
        })
    })
    .expect("epochs spread");
    let max = sim
        .nodes
        .iter()
        .map(|n| n.core.my_epoch())
        .max()
        .unwrap_or(0);
    for n in &sim.nodes {
        assert!(n.core.current_epoch() >= max);
    }
    // The node with the largest ID never moved.
    let largest = (0..6).max_by_key(|&i| sim.id(i).0).unwrap_or(0);
    assert_eq!(sim.nodes[largest].core.my_epoch(), 0);
    assert!(sim
        .events(largest, |e| matches!(e, EventKind::EpochCollision { .. }))
        .is_empty());
    let collisions: usize = (0..6)
        .map(|i| {
            sim.events(i, |e| matches!(e, EventKind::EpochCollision { .. }))
                .len()
        })
        .sum();
    assert!(collisions >= 5);
    let someone = (0..6).find(|&i| i != largest).unwrap_or(0);
    assert!(sim.nodes[someone]
        .logs
        .iter()
        .any(|(_, _, t)| t.starts_with("WARNING: configEpoch collision with node ")));
}

/// A key of `slot` (brute force).
fn key_in_slot(slot: u16) -> String {
    (0..200_000)
        .map(|n| format!("key{n}"))
        .find(|k| key_slot(k.as_bytes()) == slot)
        .unwrap_or_default()
}

/// Three masters with epochs 1, 2, 3: node 0 owns `zero`, node 1 the range up
/// to 10922, node 2 the rest.
fn three_masters(zero: (u16, u16), seed: u64) -> Sim {
    let mut sim = Sim::new(3, seed, |i| test_config(i, 1000));
    for i in 0..3 {
        assert_eq!(
            sim.cmd(i, &["SET-CONFIG-EPOCH", &(i + 1).to_string()]),
            Frame::ok()
        );
    }
    sim.cmd(
        0,
        &["ADDSLOTSRANGE", &zero.0.to_string(), &zero.1.to_string()],
    );
    sim.cmd(1, &["ADDSLOTSRANGE", &(zero.1 + 1).to_string(), "10922"]);
    sim.cmd(2, &["ADDSLOTSRANGE", "10923", "16383"]);
    sim.meet_chain();
    sim.run_until(20_000, |s| {
        meshed(s) && s.nodes.iter().all(|n| n.core.state_ok())
    })
    .expect("ok");
    sim
}

/// Moves `slots` to node 1 on node 1 only (IMPORTING + NODE), as redis-cli does
/// at the end of a migration: node 1 bumps its configEpoch.
fn take_slots_on_node1(sim: &mut Sim, slots: std::ops::RangeInclusive<u16>) {
    let (a, b) = (sim.id(0).to_string(), sim.id(1).to_string());
    for s in slots {
        assert_eq!(
            sim.cmd(1, &["SETSLOT", &s.to_string(), "IMPORTING", &a]),
            Frame::ok()
        );
        assert_eq!(
            sim.cmd(1, &["SETSLOT", &s.to_string(), "NODE", &b]),
            Frame::ok()
        );
    }
}

#[test]
fn update_message_makes_a_stale_master_give_up_slots() {
    let mut sim = three_masters((0, 5460), 22);
    let key = key_in_slot(50);
    sim.nodes[0].keys.add(&key);
    sim.nodes[0].keys.add(&key_in_slot(51));
    let (a, b) = (sim.id(0), sim.id(1));

    sim.isolate(0);
    take_slots_on_node1(&mut sim, 50..=50);
    assert!(sim.logged(1, "configEpoch updated after importing slot 50"));
    assert_eq!(sim.nodes[1].core.my_epoch(), 4);
    sim.run_until(5000, |s| s.nodes[2].core.owner_id(50) == Some(s.id(1)))
        .expect("node 2 follows the new epoch");
    assert_eq!(
        sim.nodes[0].core.owner_id(50),
        Some(a),
        "the isolated node still claims slot 50"
    );

    // Node 0 hears only from node 2, which must correct it with an UPDATE.
    sim.heal();
    sim.cut(0, 1);
    sim.run_until(5000, |s| s.nodes[0].core.owner_id(50) == Some(s.id(1)))
        .expect("node 0 gave up slot 50");
    let sent = sim.events(2, |e| {
        matches!(e, EventKind::UpdateSent { to, about, config_epoch: 4 } if *to == a.to_string() && *about == b.to_string())
    });
    assert!(!sent.is_empty(), "node 2 sent an UPDATE");
    assert!(sim.logged(
        2,
        &format!("Node {a} has old slots configuration, sending an UPDATE message about {b}")
    ));
    let applied = sim.events(0, |e| {
        matches!(
            e,
            EventKind::UpdateReceived {
                applied: true,
                config_epoch: 4,
                ..
            }
        )
    });
    assert!(!applied.is_empty());
    let moved = sim.events(0, |e| matches!(e, EventKind::SlotOwnerChanged { reason: SlotChangeReason::Update, slots, .. } if *slots == vec![[50u16, 50u16]]));
    assert_eq!(moved.len(), 1);
    // Still a master (it kept other slots), and the keys of the lost slot are gone.
    assert!(!sim.nodes[0].core.is_replica());
    assert_eq!(sim.nodes[0].deleted_slots, vec![vec![50]]);
    assert!(!sim.nodes[0].keys.keys.contains(key.as_bytes()));
    assert_eq!(sim.nodes[0].keys.keys.len(), 1);
    assert_eq!(sim.nodes[0].core.owner_id(51), Some(a));
}

#[test]
fn stale_master_that_lost_all_slots_becomes_a_replica() {
    let mut sim = three_masters((0, 9), 23);
    let b = sim.id(1);
    sim.isolate(0);
    take_slots_on_node1(&mut sim, 0..=9);
    sim.run_until(5000, |s| s.nodes[2].core.owner_id(0) == Some(s.id(1)))
        .expect("node 2 follows");
    sim.heal();
    sim.run_until(5000, |s| s.nodes[0].core.is_replica())
        .expect("node 0 became a replica");
    assert!(sim.logged(
        0,
        &format!("Configuration change detected. Reconfiguring myself as a replica of {b}")
    ));
    assert_eq!(sim.nodes[0].core.replication_master().map(|m| m.0), Some(b));
    // The others see it as a replica of node 1 too.
    let a = sim.id(0);
    sim.run_until(5000, |s| {
        (1..3).all(|i| s.nodes[i].core.has_flag(&a, crate::wire::node_flags::SLAVE))
    })
    .expect("seen as replica");
    let reps = sim.cmd(2, &["REPLICAS", &b.to_string()]);
    let Frame::Array(reps) = reps else {
        panic!("array")
    };
    assert_eq!(reps.len(), 1);
}

#[test]
fn epochs_move_only_forward_through_headers() {
    let mut sim = three_masters((0, 5460), 24);
    let epochs: Vec<u64> = sim.nodes.iter().map(|n| n.core.current_epoch()).collect();
    assert_eq!(epochs, vec![3, 3, 3]);
    assert_eq!(sim.cmd(0, &["BUMPEPOCH"]), Frame::Simple("BUMPED 4".into()));
    assert_eq!(sim.cmd(0, &["BUMPEPOCH"]), Frame::Simple("STILL 4".into()));
    let a = sim.id(0);
    sim.run_until(5000, |s| {
        s.nodes
            .iter()
            .all(|n| n.core.current_epoch() == 4 && n.core.config_epoch_of(&a) == Some(4))
    })
    .expect("spread");
    let changed = sim.events(1, |e| {
        matches!(e, EventKind::CurrentEpochChanged { from: 3, to: 4, .. })
    });
    assert_eq!(changed.len(), 1);
    let adopted = sim.events(2, |e| {
        matches!(
            e,
            EventKind::ConfigEpochChanged {
                from: 1,
                to: 4,
                reason: crate::events::EpochReason::Header,
                ..
            }
        )
    });
    assert_eq!(adopted.len(), 1);
}
