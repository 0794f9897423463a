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
