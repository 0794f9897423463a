//! The nemesis schedule: drawn up front from the root seed (stream "nemesis"), so the
//! same seed and options give the same kinds, targets specs, parameters and times.
//! Random choices that depend on the cluster (which node is "one", how halves are cut)
//! are fixed by a per-fault `draw`, resolved against the node count at run time;
//! `primaries`/`replicas` are read from the cluster at run time and the resolved node
//! list is recorded, so `--schedule-from` can replay exactly what happened.

use crate::env::net::{grudge, Grudge};
use hearsay_workloads::rng::shuffle;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A nemesis family, as named on the command line: a basic fault kind, or a package
/// of faults aimed at a protocol rule (see `faults::packages`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    Partition,
    Pause,
    Kill,
    Clock,
    Loss,
    Delay,
    /// A voter that never hears the FAIL: an election short of votes.
    ElectionShort,
    /// Two shards failing one after the other.
    ShardsInTurn,
    /// Two shards failing at once (simultaneous elections).
    ShardsAtOnce,
    /// A reporter isolated right after its report, so the report ages out.
    ReportExpiry,
    /// A voter killed and restarted right after voting.
    VoterRestart,
    /// A master returning while its failover runs.
    MasterReturn,
    /// A slot range moved between masters, step by step as `redis-cli --cluster
    /// reshard` moves it (faults may interrupt it half-way).
    Reshard,
    /// A node added (CLUSTER MEET, REPLICATE) or removed (CLUSTER FORGET everywhere,
    /// CLUSTER RESET).
    Member,
}

impl NemesisKind {
    /// The basic fault kinds.
    pub const BASIC: [NemesisKind; 6] = [
        NemesisKind::Partition,
        NemesisKind::Pause,
        NemesisKind::Kill,
        NemesisKind::Clock,
        NemesisKind::Loss,
        NemesisKind::Delay,
    ];

    /// The packages, in rotation order: consecutive pairs share a run, so a long one
    /// is followed by a short one (both fit in 60 s at a 5 s interval).
    pub const PACKAGES: [NemesisKind; 6] = [
        NemesisKind::ElectionShort,
        NemesisKind::MasterReturn,
        NemesisKind::VoterRestart,
        NemesisKind::ReportExpiry,
        NemesisKind::ShardsInTurn,
        NemesisKind::ShardsAtOnce,
    ];

    /// The changes of the cluster's shape: slots moving, nodes joining and leaving.
    /// Drawn on their own timeline, beside the basic faults and packages, so faults
    /// can interrupt them; Redis Cluster targets only.
    pub const RESHAPE: [NemesisKind; 2] = [NemesisKind::Reshard, NemesisKind::Member];

    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Reshard => "reshard",
            NemesisKind::Member => "member",
            NemesisKind::Partition => "partition",
            NemesisKind::Pause => "pause",
            NemesisKind::Kill => "kill",
            NemesisKind::Clock => "clock",
            NemesisKind::Loss => "loss",
            NemesisKind::Delay => "delay",
            NemesisKind::ElectionShort => "election-short",
            NemesisKind::ShardsInTurn => "shards-in-turn",
            NemesisKind::ShardsAtOnce => "shards-at-once",
            NemesisKind::ReportExpiry => "report-expiry",
            NemesisKind::VoterRestart => "voter-restart",
            NemesisKind::MasterReturn => "master-return",
        }
    }

    pub fn is_package(self) -> bool {
        NemesisKind::PACKAGES.contains(&self)
    }

    pub fn is_reshape(self) -> bool {
        NemesisKind::RESHAPE.contains(&self)
    }

    fn every() -> impl Iterator<Item = &'static NemesisKind> {
        NemesisKind::BASIC
            .iter()
            .chain(&NemesisKind::PACKAGES)
            .chain(&NemesisKind::RESHAPE)
    }

    /// Parses the `--nemesis` list: comma separated kinds and packages, `none`, or
    /// `all` (every kind and every package).
    pub fn parse_list(s: &str) -> Result<Vec<NemesisKind>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "none" => {}
                "all" => {
                    out.extend(NemesisKind::BASIC);
                    out.extend(NemesisKind::PACKAGES);
                    out.extend(NemesisKind::RESHAPE);
                }
                other => out.push(
                    *NemesisKind::every()
                        .find(|k| k.name() == other)
                        .ok_or_else(|| {
                            let names: Vec<&str> = NemesisKind::every().map(|k| k.name()).collect();
                            format!(
                                "unknown nemesis {other:?} ({}, none, all)",
                                names.join(", ")
                            )
                        })?,
                ),
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Which nodes a fault hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "spec")]
pub enum TargetSpec {
    One,
    Minority,
    Majority,
    All,
    Primaries,
    Replicas,
    Nodes {
        nodes: Vec<usize>,
    },
    /// The `rank`-th primary in the fault's draw order (faults of one package share
    /// the draw and the topology, so a rank names the same node in each).
    Primary {
        rank: usize,
    },
    /// The first `count` primaries in the draw order.
    FirstPrimaries {
        count: usize,
    },
    /// Every primary but the first `skip` in the draw order.
    OtherPrimaries {
        skip: usize,
    },
    /// Every node that is neither one of the first `count` primaries in the draw
    /// order nor a replica of one: the bystanders of those shards' failovers.
    Bystanders {
        count: usize,
    },
}

/// How a partition is cut.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "spec")]
pub enum PartitionSpec {
    IsolateOne,
    RandomHalves,
    MajorityMinority,
    MajoritiesRing,
    Bridge,
    PrimariesAlone,
    OneWay,
    /// Primary 1 (draw order) hears only the first replica of primary 0, which does
    /// not hear it: a voter that never learns primary 0's FAIL but gets its replica's
    /// vote request.
    BlindVoter,
    /// Primary 0 refuses packets from one other node (it reports that node PFAIL).
    PrimaryRefusesOne,
    /// Primary `rank` cut off from everyone.
    IsolatePrimary {
        rank: usize,
    },
    /// The replicas of primary `rank` cut off from everyone (no failover can win).
    IsolateReplicasOf {
        rank: usize,
    },
    /// The replicas of the first `count` primaries do not hear each other (their
    /// elections cannot see each other's epochs).
    ReplicasApart {
        count: usize,
    },
    /// Primary 0 (draw order) with a minority of the failover voters (the sentinels;
    /// the masters under Redis Cluster), cut off from every other node: Jepsen's 2013
    /// Sentinel partition, where the old master keeps a client-reachable minority.
    PrimaryWithMinority,
    Grudge {
        #[serde(with = "grudge_serde")]
        grudge: Grudge,
    },
}

/// JSON object keys are strings; grudge keys are node indices. Parsing them by hand
/// works inside internally tagged enums, where serde's integer-key support does not.
mod grudge_serde {
    use super::Grudge;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(g: &Grudge, s: S) -> Result<S::Ok, S::Error> {
        g.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Grudge, D::Error> {
        let m: BTreeMap<String, Vec<usize>> = BTreeMap::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| {
                k.parse::<usize>()
                    .map(|k| (k, v))
                    .map_err(|e| serde::de::Error::custom(format!("grudge key {k:?}: {e}")))
            })
            .collect()
    }
}

/// One fault with its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "fault")]
pub enum Fault {
    Partition {
        partition: PartitionSpec,
    },
    Pause {
        targets: TargetSpec,
    },
    Kill {
        targets: TargetSpec,
    },
    ClockBump {
        targets: TargetSpec,
        delta_s: i64,
    },
    ClockStrobe {
        targets: TargetSpec,
        delta_s: i64,
        period_ms: u64,
    },
    Loss {
        targets: TargetSpec,
        pct: u32,
    },
    Delay {
        targets: TargetSpec,
        ms: u64,
    },
    /// Moves `slots` slots from one master to another (`redis-cli --cluster reshard`'s
    /// steps); `from`, `to` and `first` are fixed when it resolves (a range inside one
    /// of the source's slot ranges).
    Reshard {
        slots: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first: Option<u16>,
    },
    /// Adds a node outside the cluster (the spare, or one removed earlier), as a
    /// replica when `replica` (else as a master without slots); with every node a
    /// member, removes a replica instead. Resolved: `node`, `add`, `replica_of`.
    Member {
        replica: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        add: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica_of: Option<usize>,
    },
}

impl Fault {
    pub fn kind(&self) -> NemesisKind {
        match self {
            Fault::Partition { .. } => NemesisKind::Partition,
            Fault::Pause { .. } => NemesisKind::Pause,
            Fault::Kill { .. } => NemesisKind::Kill,
            Fault::ClockBump { .. } | Fault::ClockStrobe { .. } => NemesisKind::Clock,
            Fault::Loss { .. } => NemesisKind::Loss,
            Fault::Delay { .. } => NemesisKind::Delay,
            Fault::Reshard { .. } => NemesisKind::Reshard,
            Fault::Member { .. } => NemesisKind::Member,
        }
    }

    pub fn targets(&self) -> Option<&TargetSpec> {
        match self {
            Fault::Partition { .. } | Fault::Reshard { .. } | Fault::Member { .. } => None,
            Fault::Pause { targets }
            | Fault::Kill { targets }
            | Fault::ClockBump { targets, .. }
            | Fault::ClockStrobe { targets, .. }
            | Fault::Loss { targets, .. }
            | Fault::Delay { targets, .. } => Some(targets),
        }
    }

    fn with_targets(&self, t: TargetSpec) -> Fault {
        let mut f = self.clone();
        match &mut f {
            Fault::Partition { .. } | Fault::Reshard { .. } | Fault::Member { .. } => {}
            Fault::Pause { targets }
            | Fault::Kill { targets }
            | Fault::ClockBump { targets, .. }
            | Fault::ClockStrobe { targets, .. }
            | Fault::Loss { targets, .. }
            | Fault::Delay { targets, .. } => *targets = t,
        }
        f
    }
}

/// One planned fault: start at `start_ms` after the workload starts, heal at `stop_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub start_ms: u64,
    pub stop_ms: u64,
    pub fault: Fault,
    /// Fixes the random choices made when the fault is resolved at run time.
    pub draw: u64,
    /// The package this fault belongs to (`election-short#2`: its name and its
    /// number in the schedule); its faults share one draw and one topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// What fault targets resolve against: the current primaries and their replicas
/// (node indices), as the target reads them when a fault (or a package) starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub primaries: Vec<usize>,
    pub replicas_of: BTreeMap<usize, Vec<usize>>,
    /// The nodes that vote on a failover when they are not the primaries (Sentinel's
    /// sentinels); empty under Redis Cluster, whose masters vote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voters: Vec<usize>,
    /// Every node the cluster knows (Redis Cluster; what `member` faults resolve
    /// against: a node outside it is added, else a replica removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<usize>,
    /// Each master's slot ranges (what `reshard` faults resolve against).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slots_of: BTreeMap<usize, Vec<(u16, u16)>>,
    /// A slot holding keys on each master, where known: a reshard's range starts
    /// near it, so the migration moves keys the workload uses.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_slot_of: BTreeMap<usize, u16>,
}

impl Topology {
    /// Primaries only (replicas unknown).
    pub fn of_primaries(p: &[usize]) -> Topology {
        Topology {
            primaries: p.to_vec(),
            ..Topology::default()
        }
    }

    /// The primaries in a draw's order.
    fn primaries_in(&self, draw: u64) -> Vec<usize> {
        let mut r = ChaCha8Rng::seed_from_u64(draw ^ 0x5052_494d);
        let mut v = self.primaries.clone();
        shuffle(&mut r, &mut v);
        v
    }
}

/// One step of a schedule's timeline: start or heal fault `index` at `at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Start { at_ms: u64, index: usize },
    Stop { at_ms: u64, index: usize },
}

impl Step {
    pub fn at_ms(&self) -> u64 {
        match self {
            Step::Start { at_ms, .. } | Step::Stop { at_ms, .. } => *at_ms,
        }
    }
}

/// Whether any two faults of a schedule are in effect at the same time.
pub fn overlaps(planned: &[Planned]) -> bool {
    let mut by_start: Vec<&Planned> = planned.iter().collect();
    by_start.sort_by_key(|p| p.start_ms);
    by_start.windows(2).any(|w| w[1].start_ms < w[0].stop_ms)
}

/// The start/stop steps of a schedule whose faults may overlap (a hand-written
/// `--schedule-from` history can compose faults; drawn schedules never overlap), in
/// time order, heals before starts at the same instant. Overlapping faults must be of
/// different kinds (each kind has one piece of state: one nft grudge, one loss rule...)
/// and not clock strobes (a strobe needs the nemesis's whole attention while it runs).
pub fn timeline(planned: &[Planned]) -> Result<Vec<Step>, String> {
    for (i, a) in planned.iter().enumerate() {
        if a.stop_ms < a.start_ms {
            return Err(format!(
                "fault {i} stops ({} ms) before it starts ({} ms)",
                a.stop_ms, a.start_ms
            ));
        }
        for (j, b) in planned.iter().enumerate().skip(i + 1) {
            let overlap = a.start_ms < b.stop_ms && b.start_ms < a.stop_ms;
            if !overlap {
                continue;
            }
            if a.fault.kind() == b.fault.kind() {
                return Err(format!(
                    "faults {i} and {j} are both {} and overlap in time",
                    a.fault.kind().name()
                ));
            }
            let strobe = |f: &Fault| matches!(f, Fault::ClockStrobe { .. });
            if strobe(&a.fault) || strobe(&b.fault) {
                return Err(format!(
                    "faults {i} and {j} overlap and one is a clock strobe"
                ));
            }
        }
    }
    let mut steps: Vec<Step> = planned
        .iter()
        .enumerate()
        .flat_map(|(index, p)| {
            [
                Step::Start {
                    at_ms: p.start_ms,
                    index,
                },
                Step::Stop {
                    at_ms: p.stop_ms,
                    index,
                },
            ]
        })
        .collect();
    // Heals first at equal times, then by fault order, so back-to-back faults of one
    // kind never coexist.
    steps.sort_by_key(|s| {
        (
            s.at_ms(),
            matches!(s, Step::Start { .. }),
            match s {
                Step::Start { index, .. } | Step::Stop { index, .. } => *index,
            },
        )
    });
    Ok(steps)
}

impl PartitionSpec {
    /// Parses `--partitions`: comma-separated shape names as schedule.json spells
    /// them (`isolate-one`, `majority-minority`, `primary-with-minority`, ...).
    pub fn parse_list(s: &str) -> Result<Vec<PartitionSpec>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                serde_json::from_value::<PartitionSpec>(serde_json::json!({"spec": p}))
                    .map_err(|_| format!("unknown partition shape {p:?}"))
                    .and_then(|spec| match spec {
                        PartitionSpec::Grudge { .. } => Err("grudge is not a shape".into()),
                        s => Ok(s),
                    })
            })
            .collect()
    }
}

/// Which partition shapes a schedule draws from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shapes {
    /// The default seven plus these (a target's own, e.g. Sentinel's).
    Add(Vec<PartitionSpec>),
    /// These alone (`--partitions`).
    Only(Vec<PartitionSpec>),
}

/// The partition shapes a draw picks from.
pub fn partition_draw(shapes: &Shapes) -> Vec<PartitionSpec> {
    let extra = match shapes {
        Shapes::Only(only) if !only.is_empty() => return only.clone(),
        Shapes::Only(_) => &[][..],
        Shapes::Add(extra) => extra.as_slice(),
    };
    let mut specs = vec![
        PartitionSpec::IsolateOne,
        PartitionSpec::RandomHalves,
        PartitionSpec::MajorityMinority,
        PartitionSpec::MajoritiesRing,
        PartitionSpec::Bridge,
        PartitionSpec::PrimariesAlone,
        PartitionSpec::OneWay,
    ];
    specs.extend_from_slice(extra);
    specs
}

/// Resolves a spec to node indices against the current topology.
pub fn resolve_targets(spec: &TargetSpec, n: usize, topo: &Topology, draw: u64) -> Vec<usize> {
    let mut r = ChaCha8Rng::seed_from_u64(draw);
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut r, &mut order);
    let primaries = &topo.primaries;
    let mut v = match spec {
        TargetSpec::One => order.into_iter().take(1).collect(),
        TargetSpec::Minority => order.into_iter().take(n.saturating_sub(1) / 2).collect(),
        TargetSpec::Majority => order.into_iter().take(n / 2 + 1).collect(),
        TargetSpec::All => order,
        TargetSpec::Primaries => primaries.to_vec(),
        TargetSpec::Replicas => (0..n).filter(|i| !primaries.contains(i)).collect(),
        TargetSpec::Nodes { nodes } => nodes.iter().copied().filter(|i| *i < n).collect(),
        TargetSpec::Primary { rank } => topo
            .primaries_in(draw)
            .get(*rank)
            .copied()
            .into_iter()
            .collect(),
        TargetSpec::FirstPrimaries { count } => {
            topo.primaries_in(draw).into_iter().take(*count).collect()
        }
        TargetSpec::OtherPrimaries { skip } => {
            topo.primaries_in(draw).into_iter().skip(*skip).collect()
        }
        TargetSpec::Bystanders { count } => {
            let shards: Vec<usize> = topo.primaries_in(draw).into_iter().take(*count).collect();
            let mut involved = shards.clone();
            for p in &shards {
                involved.extend(topo.replicas_of.get(p).into_iter().flatten().copied());
            }
            (0..n).filter(|i| !involved.contains(i)).collect()
        }
    };
    v.sort_unstable();
    v.dedup();
    v
}

/// Resolves a partition spec to a grudge.
pub fn resolve_partition(spec: &PartitionSpec, n: usize, topo: &Topology, draw: u64) -> Grudge {
    let mut r = ChaCha8Rng::seed_from_u64(draw);
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut r, &mut order);
    let primaries = &topo.primaries;
    let split = |k: usize| -> Vec<Vec<usize>> {
        let (a, b) = order.split_at(k.min(order.len()));
        vec![a.to_vec(), b.to_vec()]
    };
    let ranked = topo.primaries_in(draw);
    match spec {
        PartitionSpec::IsolateOne => grudge::complete(&split(1)),
        PartitionSpec::RandomHalves => grudge::complete(&split(n / 2)),
        PartitionSpec::MajorityMinority => grudge::complete(&split(n.saturating_sub(1) / 2)),
        PartitionSpec::MajoritiesRing => grudge::majorities_ring(&order),
        PartitionSpec::Bridge => grudge::bridge(&order),
        PartitionSpec::PrimariesAlone => {
            // Each primary alone; all the replicas together.
            let mut comps: Vec<Vec<usize>> = primaries.iter().map(|p| vec![*p]).collect();
            comps.push((0..n).filter(|i| !primaries.contains(i)).collect());
            comps.retain(|c| !c.is_empty());
            grudge::complete(&comps)
        }
        PartitionSpec::OneWay => {
            let k = n.saturating_sub(1) / 2;
            let (from, to) = order.split_at(k.max(1).min(order.len()));
            grudge::one_way(from, to)
        }
        PartitionSpec::BlindVoter => {
            let (Some(p0), Some(voter)) = (ranked.first(), ranked.get(1)) else {
                return Grudge::new();
            };
            let Some(r0) = topo.replicas_of.get(p0).and_then(|r| r.first()).copied() else {
                return Grudge::new();
            };
            let mut g = Grudge::new();
            g.insert(
                *voter,
                (0..n).filter(|i| *i != *voter && *i != r0).collect(),
            );
            g.insert(r0, vec![*voter]);
            g
        }
        PartitionSpec::PrimaryRefusesOne => {
            let Some(a) = ranked.first().copied() else {
                return Grudge::new();
            };
            match order.iter().find(|x| **x != a) {
                Some(x) => grudge::one_way(&[*x], &[a]),
                None => Grudge::new(),
            }
        }
        PartitionSpec::IsolatePrimary { rank } => match ranked.get(*rank) {
            Some(a) => grudge::complete(&[vec![*a], (0..n).filter(|i| i != a).collect()]),
            None => Grudge::new(),
        },
        PartitionSpec::IsolateReplicasOf { rank } => {
            let reps = ranked
                .get(*rank)
                .and_then(|p| topo.replicas_of.get(p))
                .cloned()
                .unwrap_or_default();
            if reps.is_empty() {
                return Grudge::new();
            }
            grudge::complete(&[reps.clone(), (0..n).filter(|i| !reps.contains(i)).collect()])
        }
        PartitionSpec::ReplicasApart { count } => {
            let groups: Vec<Vec<usize>> = ranked
                .iter()
                .take(*count)
                .filter_map(|p| topo.replicas_of.get(p).cloned())
                .filter(|r| !r.is_empty())
                .collect();
            if groups.len() < 2 {
                return Grudge::new();
            }
            let mut g = Grudge::new();
            for (i, a) in groups.iter().enumerate() {
                let others: Vec<usize> = groups
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, b)| b.iter().copied())
                    .collect();
                for x in a {
                    g.insert(*x, others.clone());
                }
            }
            g
        }
        PartitionSpec::PrimaryWithMinority => {
            let Some(p0) = ranked.first().copied() else {
                return Grudge::new();
            };
            // The voters in the draw's order; under Redis Cluster the masters (p0
            // among them), else the target's own voters.
            let mut voters = if topo.voters.is_empty() {
                ranked.clone()
            } else {
                let mut v = topo.voters.clone();
                shuffle(&mut r, &mut v);
                v
            };
            // A minority of the voters on p0's side: p0 counts when it votes itself.
            let minority = voters.len().saturating_sub(1) / 2;
            let others = if topo.voters.is_empty() {
                minority.saturating_sub(1)
            } else {
                minority
            };
            voters.retain(|v| *v != p0);
            let side_a: Vec<usize> = std::iter::once(p0)
                .chain(voters.into_iter().take(others))
                .collect();
            let side_b: Vec<usize> = (0..n).filter(|i| !side_a.contains(i)).collect();
            grudge::complete(&[side_a, side_b])
        }
        PartitionSpec::Grudge { grudge } => grudge.clone(),
    }
}

/// Makes a planned fault concrete: explicit nodes, explicit grudge.
pub fn resolve(p: &Planned, n: usize, topo: &Topology) -> Fault {
    match &p.fault {
        Fault::Reshard { from: Some(_), .. } | Fault::Member { node: Some(_), .. } => {
            p.fault.clone()
        }
        Fault::Reshard { slots, .. } => resolve_reshard(*slots, topo, p.draw),
        Fault::Member { replica, .. } => resolve_member(*replica, n, topo, p.draw),
        Fault::Partition { partition } => Fault::Partition {
            partition: PartitionSpec::Grudge {
                grudge: resolve_partition(partition, n, topo, p.draw),
            },
        },
        f => {
            let spec = f.targets().cloned().unwrap_or(TargetSpec::One);
            f.with_targets(TargetSpec::Nodes {
                nodes: resolve_targets(&spec, n, topo, p.draw),
            })
        }
    }
}

/// A reshard against the slot map: a source master with slots (drawn), a target
/// among the other masters (with or without slots), and a range of up to `slots`
/// slots inside one of the source's ranges at a drawn place. Nobody when there are
/// not two masters.
fn resolve_reshard(slots: u16, topo: &Topology, draw: u64) -> Fault {
    let mut r = ChaCha8Rng::seed_from_u64(draw ^ 0x5245_5348);
    let unresolved = Fault::Reshard {
        slots,
        from: None,
        to: None,
        first: None,
    };
    let mut sources: Vec<usize> = topo.slots_of.keys().copied().collect();
    shuffle(&mut r, &mut sources);
    let Some(from) = sources.first().copied() else {
        return unresolved;
    };
    let replicas: Vec<usize> = topo.replicas_of.values().flatten().copied().collect();
    let mut targets: Vec<usize> = topo
        .members
        .iter()
        .chain(&topo.primaries)
        .copied()
        .filter(|m| *m != from && !replicas.contains(m))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    shuffle(&mut r, &mut targets);
    let (Some(to), Some(ranges)) = (targets.first().copied(), topo.slots_of.get(&from)) else {
        return unresolved;
    };
    let hot = topo.key_slot_of.get(&from).copied();
    let Some((a, b)) = ranges
        .iter()
        .find(|(a, b)| hot.is_some_and(|h| *a <= h && h <= *b))
        .or_else(|| ranges.get(hearsay_workloads::rng::below(&mut r, ranges.len() as u64) as usize))
        .copied()
    else {
        return unresolved;
    };
    let len = b.saturating_sub(a) + 1;
    let take = slots.clamp(1, len);
    let first = match hot {
        // The slot with keys inside the range, at a drawn place in it.
        Some(h) if a <= h && h <= b => {
            let back = hearsay_workloads::rng::below(&mut r, u64::from(take)) as u16;
            h.saturating_sub(back).max(a).min(b + 1 - take)
        }
        _ => a + hearsay_workloads::rng::below(&mut r, u64::from(len - take + 1)) as u16,
    };
    Fault::Reshard {
        slots: take,
        from: Some(from),
        to: Some(to),
        first: Some(first),
    }
}

/// A membership change: add the first node (in the draw's order) outside the cluster,
/// as a replica of a drawn primary or as a master; with none outside, remove a drawn
/// replica. Nobody when the members are unknown.
fn resolve_member(replica: bool, n: usize, topo: &Topology, draw: u64) -> Fault {
    let mut r = ChaCha8Rng::seed_from_u64(draw ^ 0x4d45_4d42);
    let mut outside: Vec<usize> = (0..n).filter(|i| !topo.members.contains(i)).collect();
    shuffle(&mut r, &mut outside);
    let mut primaries = topo.primaries.clone();
    shuffle(&mut r, &mut primaries);
    let nobody = Fault::Member {
        replica,
        node: None,
        add: None,
        replica_of: None,
    };
    if topo.members.is_empty() {
        return nobody;
    }
    if let Some(node) = outside.first().copied() {
        return Fault::Member {
            replica,
            node: Some(node),
            add: Some(true),
            replica_of: if replica {
                primaries.first().copied()
            } else {
                None
            },
        };
    }
    let mut replicas: Vec<usize> = topo.replicas_of.values().flatten().copied().collect();
    replicas.sort_unstable();
    shuffle(&mut r, &mut replicas);
    match replicas.first() {
        Some(node) => Fault::Member {
            replica,
            node: Some(*node),
            add: Some(false),
            replica_of: None,
        },
        None => nobody,
    }
}

/// Every node index a fault names explicitly (resolved targets and grudges).
pub fn node_indices(f: &Fault) -> Vec<usize> {
    match f {
        Fault::Reshard { from, to, .. } => from.iter().chain(to.iter()).copied().collect(),
        Fault::Member {
            node, replica_of, ..
        } => node.iter().chain(replica_of.iter()).copied().collect(),
        Fault::Partition {
            partition: PartitionSpec::Grudge { grudge },
        } => grudge
            .iter()
            .flat_map(|(k, v)| std::iter::once(*k).chain(v.iter().copied()))
            .collect(),
        _ => match f.targets() {
            Some(TargetSpec::Nodes { nodes }) => nodes.clone(),
            _ => vec![],
        },
    }
}

/// Whether resolving this fault needs the current topology (primaries, replicas).
pub fn needs_topology(f: &Fault) -> bool {
    matches!(f, Fault::Reshard { .. } | Fault::Member { .. })
        || matches!(
            f,
            Fault::Partition {
                partition: PartitionSpec::PrimariesAlone
                    | PartitionSpec::PrimaryWithMinority
                    | PartitionSpec::BlindVoter
                    | PartitionSpec::PrimaryRefusesOne
                    | PartitionSpec::IsolatePrimary { .. }
                    | PartitionSpec::IsolateReplicasOf { .. }
                    | PartitionSpec::ReplicasApart { .. }
            }
        )
        || matches!(
            f.targets(),
            Some(
                TargetSpec::Primaries
                    | TargetSpec::Replicas
                    | TargetSpec::Primary { .. }
                    | TargetSpec::FirstPrimaries { .. }
                    | TargetSpec::OtherPrimaries { .. }
                    | TargetSpec::Bystanders { .. }
            )
        )
}

/// A stored run's schedule could not be read.
/// How long after the time limit a backward clock step of this schedule still
/// blinds some node (its stored times lie in the future for the step's size):
/// the recovery wait adds it, as the checkers' liveness bounds do.
pub fn clock_step_allowance_ms(planned: &[Planned], time_limit_ms: u64) -> u64 {
    planned
        .iter()
        .filter(|p| p.start_ms < time_limit_ms)
        .filter_map(|p| match &p.fault {
            Fault::ClockBump { delta_s, .. } | Fault::ClockStrobe { delta_s, .. } => {
                let step = delta_s.unsigned_abs() * 1000;
                let at = if *delta_s > 0 {
                    p.stop_ms.min(time_limit_ms)
                } else {
                    p.start_ms
                };
                Some((at + step).saturating_sub(time_limit_ms))
            }
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    History(#[from] hearsay_checkers::history::HistoryError),
    #[error("{0}")]
    Bad(String),
}

/// Loads the realised fault schedule of a stored run: each started fault's concrete
/// form (explicit nodes / grudge) at its planned times.
pub fn load_realised(run_dir: &std::path::Path) -> Result<Vec<Planned>, LoadError> {
    use hearsay_checkers::{history::History, Process};
    let h = History::read(&run_dir.join("history.jsonl"))?;
    let mut out = Vec::new();
    for op in &h.ops {
        if op.process != Process::Nemesis || !op.f.starts_with("start-") {
            continue;
        }
        let value = op.value.json();
        let (Some(planned), Some(resolved)) = (value.get("planned"), value.get("resolved")) else {
            continue;
        };
        let mut p: Planned = serde_json::from_value(planned.clone()).map_err(|e| {
            LoadError::Bad(format!("{}: bad planned fault: {e}", run_dir.display()))
        })?;
        p.fault = serde_json::from_value(resolved.clone()).map_err(|e| {
            LoadError::Bad(format!("{}: bad resolved fault: {e}", run_dir.display()))
        })?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_partition_round_trips_through_json() {
        let p = Planned {
            start_ms: 1,
            stop_ms: 2,
            fault: resolve(
                &Planned {
                    start_ms: 1,
                    stop_ms: 2,
                    fault: Fault::Partition {
                        partition: PartitionSpec::RandomHalves,
                    },
                    draw: 5,
                    package: None,
                },
                6,
                &Topology::default(),
            ),
            draw: 5,
            package: None,
        };
        let v = serde_json::to_value(&p).unwrap();
        let back: Planned = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn parse_list() {
        assert_eq!(NemesisKind::parse_list("none").unwrap(), vec![]);
        assert_eq!(NemesisKind::parse_list("all").unwrap().len(), 14);
        assert_eq!(
            NemesisKind::parse_list("kill,partition,kill").unwrap(),
            vec![NemesisKind::Partition, NemesisKind::Kill]
        );
        assert!(NemesisKind::parse_list("flood").is_err());
    }

    fn fixed(start_ms: u64, stop_ms: u64, fault: Fault) -> Planned {
        Planned {
            start_ms,
            stop_ms,
            fault,
            draw: 0,
            package: None,
        }
    }

    #[test]
    fn timeline_composes_faults_of_different_kinds() {
        let part = Fault::Partition {
            partition: PartitionSpec::RandomHalves,
        };
        let pause = Fault::Pause {
            targets: TargetSpec::Nodes { nodes: vec![2] },
        };
        let s = vec![
            fixed(1000, 9000, part.clone()),
            fixed(3000, 5000, pause.clone()),
        ];
        assert!(overlaps(&s));
        let steps = timeline(&s).unwrap();
        let at: Vec<u64> = steps.iter().map(Step::at_ms).collect();
        assert_eq!(at, [1000, 3000, 5000, 9000]);
        assert_eq!(
            steps[1],
            Step::Start {
                at_ms: 3000,
                index: 1
            }
        );
        // Two partitions at once would fight over one grudge.
        let bad = vec![
            fixed(1000, 9000, part.clone()),
            fixed(3000, 5000, part.clone()),
        ];
        assert!(timeline(&bad).unwrap_err().contains("both partition"));
        // Back to back is not overlap: the heal comes first.
        let seq = vec![fixed(1000, 3000, part.clone()), fixed(3000, 5000, part)];
        assert!(!overlaps(&seq));
        let steps = timeline(&seq).unwrap();
        assert_eq!(
            steps[1],
            Step::Stop {
                at_ms: 3000,
                index: 0
            }
        );
        assert_eq!(
            steps[2],
            Step::Start {
                at_ms: 3000,
                index: 1
            }
        );
        assert!(timeline(&[fixed(5, 1, pause)]).is_err());
    }

    #[test]
    fn target_specs_resolve_to_expected_sizes() {
        let prim = Topology::of_primaries(&[0, 1, 2]);
        assert_eq!(resolve_targets(&TargetSpec::One, 6, &prim, 1).len(), 1);
        assert_eq!(resolve_targets(&TargetSpec::Minority, 6, &prim, 1).len(), 2);
        assert_eq!(resolve_targets(&TargetSpec::Majority, 6, &prim, 1).len(), 4);
        assert_eq!(
            resolve_targets(&TargetSpec::All, 6, &prim, 1),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(
            resolve_targets(&TargetSpec::Primaries, 6, &prim, 1),
            vec![0, 1, 2]
        );
        assert_eq!(
            resolve_targets(&TargetSpec::Replicas, 6, &prim, 1),
            vec![3, 4, 5]
        );
        assert_eq!(
            resolve_targets(&TargetSpec::Nodes { nodes: vec![9, 2] }, 6, &prim, 1),
            vec![2]
        );
    }

    #[test]
    fn primary_with_minority_keeps_a_minority_of_voters_with_the_master() {
        // Sentinel: data nodes 0..3 (master 1), sentinels 3..6.
        let topo = Topology {
            primaries: vec![1],
            replicas_of: [(1, vec![0, 2])].into_iter().collect(),
            voters: vec![3, 4, 5],
            ..Topology::default()
        };
        for draw in 0..20 {
            let g = resolve_partition(&PartitionSpec::PrimaryWithMinority, 6, &topo, draw);
            let side_a: Vec<usize> = (0..6)
                .filter(|i| g.get(i).is_some_and(|v| v.contains(&0)))
                .collect();
            assert!(side_a.contains(&1), "{g:?}");
            let sentinels = side_a.iter().filter(|i| **i >= 3).count();
            assert_eq!((side_a.len(), sentinels), (2, 1), "{g:?}");
        }
        // Redis Cluster: three masters, so the primary alone is the minority.
        let topo = Topology {
            primaries: vec![0, 1, 2],
            replicas_of: [(0, vec![3]), (1, vec![4]), (2, vec![5])]
                .into_iter()
                .collect(),
            ..Topology::default()
        };
        let g = resolve_partition(&PartitionSpec::PrimaryWithMinority, 6, &topo, 3);
        let alone: Vec<usize> = (0..6)
            .filter(|i| g.get(i).is_some_and(|v| v.len() == 5))
            .collect();
        assert_eq!(alone.len(), 1);
        assert!(topo.primaries.contains(&alone[0]));
    }

    #[test]
    fn package_specs_resolve_against_one_topology() {
        let topo = Topology {
            primaries: vec![0, 1, 2],
            replicas_of: [(0, vec![3]), (1, vec![4]), (2, vec![5])]
                .into_iter()
                .collect(),
            ..Topology::default()
        };
        let draw = 11;
        let p0 = resolve_targets(&TargetSpec::Primary { rank: 0 }, 6, &topo, draw);
        let p1 = resolve_targets(&TargetSpec::Primary { rank: 1 }, 6, &topo, draw);
        assert_eq!((p0.len(), p1.len()), (1, 1));
        assert_ne!(p0, p1);
        let two = resolve_targets(&TargetSpec::FirstPrimaries { count: 2 }, 6, &topo, draw);
        assert_eq!(two, {
            let mut v = vec![p0[0], p1[0]];
            v.sort();
            v
        });
        // The blind voter is primary 1, hearing only primary 0's replica.
        let g = resolve_partition(&PartitionSpec::BlindVoter, 6, &topo, draw);
        let r0 = topo.replicas_of[&p0[0]][0];
        assert_eq!(g[&p1[0]].len(), 4);
        assert!(!g[&p1[0]].contains(&r0));
        assert_eq!(g[&r0], vec![p1[0]]);
        let g = resolve_partition(&PartitionSpec::IsolatePrimary { rank: 0 }, 6, &topo, draw);
        assert_eq!(g[&p0[0]].len(), 5);
        // Without a topology a package fault resolves to nobody (and is never verified).
        let none = Topology::default();
        assert!(resolve_targets(&TargetSpec::Primary { rank: 0 }, 6, &none, draw).is_empty());
        assert!(resolve_partition(&PartitionSpec::BlindVoter, 6, &none, draw).is_empty());
    }

    #[test]
    fn partitions_resolve() {
        let g = resolve_partition(&PartitionSpec::IsolateOne, 6, &Topology::default(), 3);
        let isolated: Vec<usize> = g
            .iter()
            .filter(|(_, v)| v.len() == 5)
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(isolated.len(), 1);
        let g = resolve_partition(
            &PartitionSpec::PrimariesAlone,
            6,
            &Topology::of_primaries(&[0, 1, 2]),
            3,
        );
        assert_eq!(g[&0].len(), 5);
        assert_eq!(g[&3], vec![0, 1, 2]);
        let g = resolve_partition(&PartitionSpec::OneWay, 5, &Topology::default(), 3);
        // one-way: the receivers refuse, the senders refuse nobody
        let senders: Vec<usize> = g.values().next().unwrap().clone();
        assert!(senders.iter().all(|s| !g.contains_key(s)));
    }
}
