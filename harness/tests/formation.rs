//! Acceptance: a 6-node cluster is up and agreed in under 3 s on this machine, for
//! each target (the figure is printed). Its own test binary, so that no other
//! cluster test runs at the same time and skews the timing.

mod common;

use hearsay_harness::opts::TargetChoice;
use std::time::Duration;

#[tokio::test(flavor = "current_thread")]
async fn six_node_clusters_are_up_and_agreed_in_under_3s() {
    // One test, targets one after the other: two clusters forming at once on two
    // cores would measure the machine, not the harness.
    if common::require(true, true, false) {
        up_in_under_3s(TargetChoice::Redis).await;
    }
    if common::require(true, false, false) && common::require_hearsay_node() {
        up_in_under_3s(TargetChoice::Hearsay).await;
    }
}

async fn up_in_under_3s(target: TargetChoice) {
    // On a shared, loaded machine one slow attempt is not a regression: take the
    // better of two (redis itself holds a fresh master out of `ok` for 2 s).
    let mut best = u128::MAX;
    for attempt in 0..2 {
        let mut b = common::bed(target, false).await;
        println!(
            "6-node {target:?} cluster: network + start + form + agree in {} ms",
            b.form_total_ms
        );
        best = best.min(b.form_total_ms);
        for n in b.nodes.iter_mut() {
            n.stop(Duration::from_secs(2)).await.unwrap();
        }
        let prefix = b.prefix.clone();
        drop(b.guard);
        assert!(
            common::leftovers(&prefix).is_empty(),
            "{:?}",
            common::leftovers(&prefix)
        );
        if best < 3000 || attempt == 1 {
            break;
        }
    }
    assert!(best < 3000, "took {best} ms");
}
