//! Replica failover, voting, manual failover, replica migration and the
//! restart rules (reference section 5), in the simulator and on hand-driven
//! cores.

use std::collections::BTreeMap;

use crate::cluster::ClusterConfig;
use crate::events::{EpochReason, EventKind, ManualFailoverMode, SlotChangeReason};
use crate::resp::Frame;
use crate::wire::node_flags::*;
use crate::wire::NodeName;

use super::sim::{test_config, Sim};

const TIMEOUT: u64 = 1000;

/// `masters` masters splitting the slots evenly, then one replica per entry
/// of `replica_of` (node `masters + k` replicates master `replica_of[k]`),
/// fully meshed, state ok everywhere, every replica synced. `cfg` may adjust
/// each node's config.
fn build(
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

/// Every voter granted at most one vote per epoch, and every win had a
/// majority of grants behind it (the "epochs" checker's rules).
fn assert_vote_safety(sim: &Sim) {
    let mut grants: BTreeMap<u64, Vec<(usize, String)>> = BTreeMap::new();
    for i in 0..sim.nodes.len() {
        let mut mine: Vec<u64> = Vec::new();
        for e in sim.events(i, |e| matches!(e, EventKind::VoteGranted { .. })) {
            if let EventKind::VoteGranted { to, epoch, .. } = e {
                assert!(
                    !mine.contains(epoch),
                    "node {i} voted twice in epoch {epoch}"
                );
                mine.push(*epoch);
                grants.entry(*epoch).or_default().push((i, to.clone()));
            }
        }
    }
    for i in 0..sim.nodes.len() {
        let me = sim.id(i).to_string();
        for (epoch, votes, needed) in elections_won(sim, i) {
            assert!(votes >= needed, "won with {votes}/{needed}");
            let for_me = grants
                .get(&epoch)
                .map_or(0, |g| g.iter().filter(|(_, to)| *to == me).count());
            assert!(
                for_me >= needed,
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
