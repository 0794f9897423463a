//! Every nemesis kind against a live 6-node cluster: each fault must be verified to
//! have taken effect, each heal verified, the cluster must recover afterwards, and
//! teardown must leave nothing behind. Needs root, nft and redis-server (libfaketime
//! and cc for the clock faults); skipped with a reason otherwise, failed under CI=true.

mod common;

use common::{bed, Bed};
use hearsay_harness::env::recorder::Recorder;
use hearsay_harness::faults::nemesis::Nemesis;
use hearsay_harness::faults::schedule::{self, Fault, PartitionSpec, Planned, TargetSpec};
use hearsay_harness::opts::TargetChoice;
use hearsay_harness::targets::form;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn planned(fault: Fault) -> Planned {
    Planned {
        start_ms: 0,
        stop_ms: 0,
        fault,
        draw: 11,
        package: None,
    }
}

async fn every_kind_takes_effect_and_heals(target: TargetChoice) {
    let b = bed(target, true).await;
    let Bed {
        guard,
        prefix,
        nodes,
        net,
        run_dir,
        ..
    } = b;
    let hist = run_dir.path().join("history.jsonl");
    let rec = Arc::new(Recorder::create(&hist, Instant::now()).unwrap());
    let delays = hearsay_harness::faults::delay::Delays::new(
        guard.0.clone(),
        PathBuf::from(env!("CARGO_BIN_EXE_hearsay")),
    );
    let mut nem = Nemesis::new(net, nodes, delays);
    nem.set_recorder(rec);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let one = TargetSpec::One;
    let faults = vec![
        Fault::Partition {
            partition: PartitionSpec::IsolateOne,
        },
        Fault::Partition {
            partition: PartitionSpec::RandomHalves,
        },
        Fault::Partition {
            partition: PartitionSpec::MajorityMinority,
        },
        Fault::Partition {
            partition: PartitionSpec::MajoritiesRing,
        },
        Fault::Partition {
            partition: PartitionSpec::Bridge,
        },
        Fault::Partition {
            partition: PartitionSpec::PrimariesAlone,
        },
        Fault::Partition {
            partition: PartitionSpec::OneWay,
        },
        Fault::Partition {
            partition: PartitionSpec::BlindVoter,
        },
        Fault::Partition {
            partition: PartitionSpec::PrimaryRefusesOne,
        },
        Fault::Partition {
            partition: PartitionSpec::IsolatePrimary { rank: 1 },
        },
        Fault::Pause {
            targets: TargetSpec::Primary { rank: 0 },
        },
        Fault::Pause {
            targets: TargetSpec::Primaries,
        },
        Fault::Kill {
            targets: one.clone(),
        },
        Fault::Kill {
            targets: TargetSpec::Minority,
        },
        Fault::Kill {
            targets: TargetSpec::FirstPrimaries { count: 2 },
        },
        Fault::ClockBump {
            targets: TargetSpec::All,
            delta_s: 30,
        },
        Fault::ClockBump {
            targets: TargetSpec::Replicas,
            delta_s: -20,
        },
        Fault::ClockStrobe {
            targets: one.clone(),
            delta_s: 5,
            period_ms: 200,
        },
        Fault::Loss {
            targets: TargetSpec::Majority,
            pct: 40,
        },
        Fault::Delay {
            targets: one.clone(),
            ms: 60,
        },
    ];
    for f in faults {
        let topo = if schedule::needs_topology(&f) {
            hearsay_harness::targets::cluster::topology(&nem.nodes).await
        } else {
            schedule::Topology::default()
        };
        let (resolved, ok) = nem.start(&planned(f.clone()), &topo).await;
        assert!(
            ok,
            "start of {f:?} (resolved {resolved:?}) not verified; see {}",
            hist.display()
        );
        nem.hold(
            &resolved,
            tokio::time::Instant::now() + Duration::from_millis(600),
            &rx,
        )
        .await;
        assert!(nem.stop(&resolved).await, "heal of {f:?} not verified");
    }
    assert!(nem.heal_all().await, "final heal not verified");
    let addrs: Vec<_> = nem.nodes.iter().map(|n| n.addr()).collect();
    form::wait_agreed(&addrs, Some(6), Duration::from_secs(40))
        .await
        .expect("cluster recovers after every fault is healed");
    // Every nemesis step is in the history with its evidence.
    let h = hearsay_checkers::history::History::read(&hist).unwrap();
    let verified = h
        .ops
        .iter()
        .filter(|o| o.value.json().get("verified").and_then(|v| v.as_bool()) == Some(true))
        .count();
    assert_eq!(verified, 20 * 2 + 1);
    for n in nem.nodes.iter_mut() {
        n.stop(Duration::from_secs(2)).await.unwrap();
    }
    drop(guard);
    assert!(
        common::leftovers(&prefix).is_empty(),
        "{:?}",
        common::leftovers(&prefix)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn every_nemesis_kind_takes_effect_and_heals_on_redis() {
    if !common::require(true, true, true) {
        return;
    }
    every_kind_takes_effect_and_heals(TargetChoice::Redis).await;
}

#[tokio::test(flavor = "current_thread")]
async fn every_nemesis_kind_takes_effect_and_heals_on_hearsay() {
    if !common::require(true, false, true) || !common::require_hearsay_node() {
        return;
    }
    every_kind_takes_effect_and_heals(TargetChoice::Hearsay).await;
}
