//! Nemesis packages: a few faults composed to reach what a protocol rule judges,
//! timed against node_timeout. Each package's faults share one draw (so a rank such
//! as "primary 1" names the same node in each) and one topology, read when the
//! package's first fault starts. Times are relative to the package's start and
//! follow the node timeout (and a pinned election delay, see [`Timing`]).
//!
//! | package | faults | aims at |
//! |---|---|---|
//! | election-short | pause primary 0; primary 1 hears only primary 0's replica, which does not hear it | vote-conditions (a voter without the FAIL gets a vote request), won-with-grants (an election short of votes), failover-liveness |
//! | shards-in-turn | kill primary 0, then primary 1 | failover twice in a row, liveness, epochs |
//! | shards-at-once | kill primaries 0 and 1 together, their replicas not hearing each other, every other node paused while both elections start (no one to relay the first epoch to the second candidate; a wider window when the election delay is pinned) | two elections in one epoch (one vote per epoch) |
//! | report-expiry | primary 0 refuses one node, then is cut off from everyone | fail-quorum (a report that ages out), minority writes |
//! | voter-restart | pause primary 0; kill primary 1 right after it voted, restart it | one vote per epoch across a restart, epochs never go back |
//! | master-return | pause primary 0 past its FAIL while its replicas are cut off a little longer | FAIL of a returning master kept 2 x node_timeout, an election while the master is back, UPDATE |

use super::schedule::{Fault, NemesisKind, PartitionSpec, Planned, TargetSpec};
use hearsay_workloads::rng::below;
use rand_chacha::ChaCha8Rng;

/// The node timings packages are planned against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub node_timeout_ms: u64,
    /// hearsay-node's election delay when a test pins it (`--node-election-delay-ms`):
    /// packages aimed at elections then time their faults around it.
    pub election_delay_ms: Option<u64>,
}

impl Timing {
    pub fn node_timeout(node_timeout_ms: u64) -> Self {
        Timing {
            node_timeout_ms,
            election_delay_ms: None,
        }
    }
}

/// The bound the failover-liveness rule allows (keep in step with the checker's
/// `elections::liveness_bound_ms`): packages that want a liveness case hold a master
/// down longer than this.
fn liveness_bound(nt: u64) -> u64 {
    6 * nt + 5000
}

/// The faults of one package starting at `t0` (ms after the workload starts); `n` is
/// the package's number in the schedule (for its name).
pub fn plan(
    kind: NemesisKind,
    r: &mut ChaCha8Rng,
    t0: u64,
    timing: Timing,
    draw: u64,
    n: usize,
) -> Vec<Planned> {
    let nt = timing.node_timeout_ms;
    let name = format!("{}#{n}", kind.name());
    let f = |start: u64, stop: u64, fault: Fault| Planned {
        start_ms: t0 + start,
        stop_ms: t0 + stop,
        fault,
        draw,
        package: Some(name.clone()),
    };
    let primary = |rank| TargetSpec::Primary { rank };
    match kind {
        NemesisKind::ElectionShort => {
            // FAIL comes about node_timeout after the pause, the first election up to
            // ~1.5 s later; the blind voter hears the rest again after that, and the
            // pause outlasts the liveness bound counted from then, so the failover
            // (a retried election) is judged too.
            let blind = nt + 4000;
            vec![
                f(
                    0,
                    blind + liveness_bound(nt) + 1000,
                    Fault::Pause {
                        targets: primary(0),
                    },
                ),
                f(
                    0,
                    blind,
                    Fault::Partition {
                        partition: PartitionSpec::BlindVoter,
                    },
                ),
            ]
        }
        NemesisKind::ShardsInTurn => {
            let k = 3 * nt + 2000;
            let gap = 500 + below(r, 1000);
            vec![
                f(
                    0,
                    k,
                    Fault::Kill {
                        targets: primary(0),
                    },
                ),
                f(
                    k + gap,
                    2 * k + gap,
                    Fault::Kill {
                        targets: primary(1),
                    },
                ),
            ]
        }
        NemesisKind::ShardsAtOnce => {
            // Their replicas do not hear each other, and every other node is paused
            // while both elections start: with no one awake to relay the first
            // candidate's epoch to the second, both pick the same epoch, and both
            // requests wait in the voters' sockets, so each voter must refuse the
            // second. (Pausing only the voters left the other replicas to relay it:
            // the second election then took the next epoch, and a double vote had no
            // chance.) The pause must begin after both replicas know the FAIL and
            // before either election starts: (pause from, pause to, replicas apart
            // from).
            let k = 3 * nt + 3000;
            let (pause_from, pause_to, apart_from) = match timing.election_delay_ms {
                // Elections 0.5 to 1.5 s after the FAIL (~node_timeout + gossip): a
                // narrow window whose place moves with the machine's load.
                None => (nt + 1200, nt + 4500, 0),
                // A pinned delay opens a wide one: the FAIL is known everywhere by
                // node_timeout + 2 s even on a loaded machine (~0.8 s on a quiet
                // one), both elections start by then + the delay, and the voters
                // wake a second later, inside the candidates' auth timeout
                // (2 x node_timeout from their requests). The longer the voters
                // sleep before an election, the likelier a candidate has just
                // dropped its stale link to one (nothing is sent to a node without
                // a link, as in redis), so the pause begins as late as it can.
                // The replicas hear each other until the pause: the one that marks
                // its master FAIL first broadcasts it, and the other would otherwise
                // wait for three masters' gossip to carry the FAIL (the random part
                // of a ping, three entries of N - 2), often past the pause.
                Some(delay) => {
                    let known = 2000;
                    let from = nt + known.min(delay.saturating_sub(500));
                    (from, nt + known + delay + 1000, from)
                }
            };
            let k = k.max(pause_to + 1000);
            vec![
                f(
                    pause_from,
                    pause_to,
                    Fault::Pause {
                        targets: TargetSpec::Bystanders { count: 2 },
                    },
                ),
                f(
                    0,
                    k,
                    Fault::Kill {
                        targets: TargetSpec::FirstPrimaries { count: 2 },
                    },
                ),
                f(
                    apart_from,
                    k,
                    Fault::Partition {
                        partition: PartitionSpec::ReplicasApart { count: 2 },
                    },
                ),
            ]
        }
        NemesisKind::ReportExpiry => {
            let refuse = nt + 1500;
            vec![
                f(
                    0,
                    refuse,
                    Fault::Partition {
                        partition: PartitionSpec::PrimaryRefusesOne,
                    },
                ),
                f(
                    refuse,
                    refuse + 3 * nt,
                    Fault::Partition {
                        partition: PartitionSpec::IsolatePrimary { rank: 0 },
                    },
                ),
            ]
        }
        NemesisKind::VoterRestart => {
            // The election starts ~node_timeout + 0.5..1.5 s after the pause; the voter
            // is killed a little after it could have voted, and back 1.5 s later.
            let at = nt + 1200 + below(r, 800);
            vec![
                f(
                    0,
                    liveness_bound(nt) + 1000,
                    Fault::Pause {
                        targets: primary(0),
                    },
                ),
                f(
                    at,
                    at + 1500,
                    Fault::Kill {
                        targets: primary(1),
                    },
                ),
            ]
        }
        NemesisKind::MasterReturn => {
            // Primary 0 is FAIL everywhere (after ~node_timeout + gossip) and returns
            // with its slots while its replicas, cut off until a second later, could
            // not fail it over yet: every node must keep the FAIL for 2 x node_timeout
            // (nobody took the slots), then the replicas' election runs while their
            // master is back (the FAIL still stands).
            let back = nt + 1500 + below(r, 1000);
            vec![
                f(
                    0,
                    back,
                    Fault::Pause {
                        targets: primary(0),
                    },
                ),
                f(
                    0,
                    back + 1000,
                    Fault::Partition {
                        partition: PartitionSpec::IsolateReplicasOf { rank: 0 },
                    },
                ),
            ]
        }
        _ => vec![],
    }
}

/// How long a package's faults last from its start.
pub fn span(planned: &[Planned]) -> u64 {
    let start = planned.iter().map(|p| p.start_ms).min().unwrap_or(0);
    let stop = planned.iter().map(|p| p.stop_ms).max().unwrap_or(0);
    stop.saturating_sub(start)
}
