//! What the protocol checkers read from a run folder, put on one timeline.
//!
//! Sources: `test.json` (node_timeout), `timebase.json` (the harness's CLOCK_MONOTONIC
//! and wall clock when the history's time 0 was taken), `history.jsonl` (nemesis ops),
//! `snapshots.jsonl` (every node's CLUSTER NODES on a period) and
//! `nodes/<name>/events.jsonl` (hearsay-node's event log, or the one the redis log
//! adapter wrote). Every event is placed on the run's timeline in ms since the
//! history's time 0: hearsay events by `mono_ms` (not faked by the clock nemesis),
//! redis events by their wall stamp minus the clock nemesis's offset for that node.

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::history::{History, Process};

/// Errors loading a run folder for the protocol checkers.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    #[error("{path}: {reason}")]
    Test { path: String, reason: String },
}

/// A file the checkers could not read in full: the rules that need it say `unknown`
/// with this reason instead of judging what is left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damage {
    /// The file, relative to the run folder.
    pub file: String,
    pub reason: String,
    /// The node whose event log it is, if it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A normalized protocol event; node fields are 40-char IDs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Ev {
    Started {
        id: String,
    },
    PfailSet {
        about: String,
    },
    PfailCleared {
        about: String,
    },
    /// A report first added (`refresh` false) or refreshed.
    Report {
        reporter: String,
        about: String,
        refresh: bool,
    },
    ReportRemoved {
        reporter: String,
        about: String,
        reason: String,
    },
    /// The node decided FAIL by itself. Hearsay adds what it counted; redis does not.
    FailMarked {
        about: String,
        claimed: Option<Claimed>,
    },
    FailReceived {
        from: String,
        about: String,
    },
    FailCleared {
        about: String,
        /// hearsay: the reason's name; redis: its log text ("master without slots is
        /// reachable again", ...).
        reason: String,
    },
    VoteGranted {
        to: String,
        epoch: Option<u64>,
    },
    /// A master refused its vote (hearsay: the reason's name; redis: its log text).
    VoteRefused {
        to: String,
        reason: String,
    },
    FailoverStarted {
        epoch: Option<u64>,
        /// The failed master (hearsay says; redis does not log it).
        master: Option<String>,
    },
    /// A replica scheduled an election; `offset` is its replication offset then (both
    /// servers log it).
    ElectionScheduled {
        master: Option<String>,
        offset: Option<u64>,
    },
    /// A replica received a vote (hearsay only; redis does not log acks).
    AuthAck {
        from: String,
        epoch: u64,
        counted: bool,
    },
    FailoverWon {
        master: Option<String>,
        epoch: Option<u64>,
    },
    /// The node's clean shutdown.
    Stopped,
    /// A replica's replication link to its master came up (a full or partial sync
    /// finished) or broke. Redis's replica validity rule reads it: a replica whose
    /// link was down too long, or never came up, does not start an election.
    ReplLink {
        up: bool,
    },
    CurrentEpoch {
        from: Option<u64>,
        to: u64,
        reason: String,
    },
    /// The configEpoch the node holds for `node`; None = its own (redis logs only
    /// its own).
    ConfigEpoch {
        node: Option<String>,
        to: u64,
    },
    EpochCollision {
        with: String,
    },
}

/// What a hearsay node said it counted for a FAIL (kept as evidence, never trusted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claimed {
    pub reporters: Vec<String>,
    pub quorum_needed: Option<u64>,
    pub masters_with_slots: Option<u64>,
    pub counted_self: Option<bool>,
}

/// One event of one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeEvent {
    /// Harness node name (e.g. `n3`).
    pub node: String,
    /// ms on the run timeline (history time 0); None when it cannot be placed.
    pub t_ms: Option<i64>,
    /// The node's own clock (wall ms as the node saw it, offsets included).
    pub local_ms: i64,
    /// How far `t_ms` may be off (second stamps, clock strobes).
    pub slack_ms: i64,
    #[serde(flatten)]
    pub ev: Ev,
    /// Position in its node's file, to keep same-ms order.
    #[serde(skip)]
    pub seq: usize,
    /// The whole line, for the fields a rule re-checks (times and state the node
    /// reported with its decision).
    #[serde(skip)]
    pub raw: Value,
}

/// One node's line in a CLUSTER NODES snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeLine {
    pub id: String,
    pub myself: bool,
    pub master: bool,
    pub fail: bool,
    pub pfail: bool,
    pub handshake: bool,
    pub noaddr: bool,
    pub master_of: Option<String>,
    pub config_epoch: u64,
    pub slots: Vec<(u16, u16)>,
    /// Open-slot markers (only on a node's own line): `[slot->-id]` migrating to,
    /// `[slot-<-id]` importing from.
    pub migrating: Vec<(u16, String)>,
    pub importing: Vec<(u16, String)>,
}

impl NodeLine {
    pub fn slot_count(&self) -> usize {
        self.slots
            .iter()
            .map(|(a, b)| usize::from(b.saturating_sub(*a)) + 1)
            .sum()
    }
}

/// Parses CLUSTER NODES text; lines that do not parse are skipped.
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(id), Some(flags), Some(master), Some(epoch)) =
            (f.first(), f.get(2), f.get(3), f.get(6))
        else {
            continue;
        };
        let flags: Vec<&str> = flags.split(',').collect();
        let mut slots = Vec::new();
        let (mut migrating, mut importing) = (Vec::new(), Vec::new());
        for s in f.iter().skip(8) {
            // `[slot->-id]` / `[slot-<-id]` are migration markers, not ownership.
            if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                if let Some((slot, id)) = inner.split_once("->-") {
                    if let Ok(slot) = slot.parse() {
                        migrating.push((slot, id.to_string()));
                    }
                } else if let Some((slot, id)) = inner.split_once("-<-") {
                    if let Ok(slot) = slot.parse() {
                        importing.push((slot, id.to_string()));
                    }
                }
                continue;
            }
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                slots.push((a, b));
            }
        }
        out.push(NodeLine {
            id: id.to_string(),
            myself: flags.contains(&"myself"),
            master: flags.contains(&"master"),
            fail: flags.contains(&"fail"),
            pfail: flags.contains(&"fail?"),
            handshake: flags.contains(&"handshake"),
            noaddr: flags.contains(&"noaddr"),
            master_of: (*master != "-").then(|| master.to_string()),
            config_epoch: epoch.parse().unwrap_or(0),
            slots,
            migrating,
            importing,
        });
    }
    out
}

/// One snapshot of one node.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub t_ms: i64,
    pub node: String,
    /// None when the node did not answer.
    pub lines: Option<Vec<NodeLine>>,
}

/// One node's replication state as the observer sampled it (INFO replication).
#[derive(Clone, Debug, Serialize)]
pub struct OffsetSample {
    pub t_ms: i64,
    pub node: String,
    /// `master` or `slave`.
    pub role: String,
    /// master_repl_offset: a master's stream position, a replica's processed offset.
    pub offset: u64,
    pub replid: String,
}

/// A nemesis fault window on the run timeline.
#[derive(Clone, Debug, Serialize)]
pub struct FaultWindow {
    pub kind: String,
    pub start_ms: i64,
    /// None if never stopped (the final heal ends it).
    pub stop_ms: Option<i64>,
    /// Node names the fault targets (for partitions: every node named in the grudge).
    pub targets: Vec<String>,
    /// For partitions: node -> nodes it refuses traffic from.
    pub grudge: BTreeMap<String, Vec<String>>,
    /// Clock faults: the offset in ms, and whether it strobes.
    pub clock_delta_ms: Option<i64>,
    pub strobe: bool,
    /// What a shape change did, for views (`slots 3371-3434 n1->n3`, `+n7 replica`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A clock stepped back: from `at_ms` on, `nodes` compare their clock with times
/// they stored up to `step_ms` in the future, so their staleness rules (PFAIL,
/// report validity, election timeouts) see nothing for `step_ms` (redis compares
/// `mstime()` with stored times just the same).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClockStep {
    pub at_ms: i64,
    pub step_ms: i64,
    pub nodes: Vec<String>,
}

impl ClockStep {
    /// The end of the blind window.
    pub fn blind_until(&self) -> i64 {
        self.at_ms + self.step_ms
    }
}

/// Everything the protocol checkers need.
#[derive(Debug, Default)]
pub struct RunData {
    /// Slot moves (the `reshard` nemesis, the final repair), from the history.
    pub moves: Vec<crate::moves::SlotMove>,
    /// Acknowledged writes of keys in moved slots.
    pub move_writes: Vec<crate::moves::Write>,
    pub node_timeout_ms: i64,
    /// Node names, sorted.
    pub nodes: Vec<String>,
    pub kinds: HashMap<String, String>,
    /// 40-char ID -> node name (every ID a node ever had as `myself`).
    pub names: HashMap<String, String>,
    pub events: Vec<NodeEvent>,
    pub snapshots: Vec<Snapshot>,
    /// Replication offsets sampled with the snapshots, in time order.
    pub offsets: Vec<OffsetSample>,
    pub faults: Vec<FaultWindow>,
    /// Time of the final heal (`heal-all`) and of the `recovered` op.
    pub heal_ms: Option<i64>,
    pub recovered_ms: Option<i64>,
    /// When the harness's final repair (`repair-cluster`: members added back,
    /// open slots closed) ended, if it ran.
    pub repaired_ms: Option<i64>,
    /// Whether events could be placed on the timeline at all.
    pub has_timebase: bool,
    pub loglevel: String,
    /// Notes met while loading (what was left out and why), reported with the verdict.
    pub notes: Vec<String>,
    /// Files that could not be read in full. Rules that need them are `unknown`.
    pub damage: Vec<Damage>,
    /// The node count test.json asked for (None for stored runs without it).
    pub expected_nodes: Option<usize>,
    /// hearsay-node's pinned election delay, when a test set one.
    pub election_delay_ms: Option<i64>,
    /// The target (`redis`, `sentinel`, `twemproxy`, ...) test.json names.
    pub target: String,
    /// Sentinel: what each sentinel named as the master per snapshot (time,
    /// sentinel, the master's node name or None when it did not answer).
    pub sentinel_views: Vec<(i64, String, Option<String>)>,
    /// twemproxy: the workload keys each shard held per snapshot (time, shard,
    /// keys; None when it did not answer).
    pub shard_keys: Vec<(i64, String, Option<Vec<String>>)>,
}

impl RunData {
    /// A target without Redis Cluster's event logs and CLUSTER NODES (Sentinel,
    /// twemproxy): its own checkers read its evidence.
    pub fn is_standalone(&self) -> bool {
        is_standalone(&self.target)
    }
}

/// Whether `target` is one of the targets that are not a Redis Cluster.
pub fn is_standalone(target: &str) -> bool {
    matches!(target, "sentinel" | "twemproxy")
}

impl RunData {
    /// Short display name for an ID: the node name, else the ID's first 8 chars.
    pub fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.get(..8).unwrap_or(id).to_string())
    }

    /// Why the nodes' event logs cannot be judged (one of them damaged or missing, no
    /// time base), or None when every log was read in full.
    pub fn events_unusable(&self) -> Option<String> {
        let bad: Vec<String> = self
            .damage
            .iter()
            .filter(|d| d.node.is_some() || d.file == "timebase.json" || d.file == "test.json")
            .map(|d| format!("{}: {}", d.file, d.reason))
            .collect();
        (!bad.is_empty()).then(|| bad.join("; "))
    }

    /// Why the snapshots cannot be judged, or None.
    pub fn snapshots_unusable(&self) -> Option<String> {
        let bad: Vec<String> = self
            .damage
            .iter()
            .filter(|d| d.file == "snapshots.jsonl" || d.file == "test.json")
            .map(|d| format!("{}: {}", d.file, d.reason))
            .collect();
        (!bad.is_empty()).then(|| bad.join("; "))
    }

    /// Loads a run folder. test.json and history.jsonl must read in full (their
    /// errors are the folder's errors); the rest is read as far as it goes, and what
    /// could not be read is listed in `damage`.
    pub fn load(dir: &Path) -> Result<RunData, LoadError> {
        read_test_json(dir)?;
        let history = History::read(&dir.join("history.jsonl"))?;
        Ok(RunData::load_with(dir, &history))
    }

    /// Loads a run folder whose history the caller has already read (the report reads
    /// it once for both its client-op plots and this).
    pub fn load_with(dir: &Path, history: &History) -> RunData {
        let mut damage = Vec::new();
        let test = match read_test_json(dir) {
            Ok(v) => v,
            Err(e) => {
                damage.push(Damage {
                    file: "test.json".into(),
                    reason: e.to_string(),
                    node: None,
                });
                Value::Null
            }
        };
        let timebase: Option<Value> = match std::fs::read(dir.join("timebase.json")) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(v) => Some(v),
                Err(e) => {
                    damage.push(Damage {
                        file: "timebase.json".into(),
                        reason: format!("not valid JSON: {e}"),
                        node: None,
                    });
                    None
                }
            },
            Err(_) => None,
        };
        let snapshots = std::fs::read(dir.join("snapshots.jsonl")).unwrap_or_default();
        let mut node_logs = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir.join("nodes")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let bytes = std::fs::read(e.path().join("events.jsonl")).ok();
                node_logs.push((name, bytes));
            }
        }
        let mut d = RunData::build_bytes(&test, timebase.as_ref(), history, &snapshots, &node_logs);
        d.damage.splice(0..0, damage);
        d
    }

    /// Builds from already-read parts (what tests call).
    pub fn build(
        test: &Value,
        timebase: Option<&Value>,
        history: &History,
        snapshots: &str,
        node_logs: &[(String, Option<String>)],
    ) -> RunData {
        let logs: Vec<(String, Option<Vec<u8>>)> = node_logs
            .iter()
            .map(|(n, t)| (n.clone(), t.as_ref().map(|t| t.as_bytes().to_vec())))
            .collect();
        RunData::build_bytes(test, timebase, history, snapshots.as_bytes(), &logs)
    }

    /// Builds from the files' bytes: event logs and snapshots are read line by line
    /// and strictly, so one bad byte or a cut line is named in `damage`, never
    /// skipped in silence.
    pub fn build_bytes(
        test: &Value,
        timebase: Option<&Value>,
        history: &History,
        snapshots: &[u8],
        node_logs: &[(String, Option<Vec<u8>>)],
    ) -> RunData {
        let mut d = RunData {
            node_timeout_ms: test["options"]["node_timeout"].as_i64().unwrap_or(2000),
            loglevel: test["options"]["loglevel"]
                .as_str()
                .unwrap_or("debug")
                .to_string(),
            ..RunData::default()
        };
        let target = test["options"]["target"].as_str().unwrap_or("");
        d.target = target.to_string();
        // Sentinel and twemproxy nodes write no event log: nothing to expect or load.
        let node_logs = if is_standalone(target) {
            &[][..]
        } else {
            node_logs
        };
        d.expected_nodes = test["options"]["nodes"]
            .as_u64()
            .map(|n| n as usize)
            .filter(|_| !is_standalone(target));
        d.election_delay_ms = test["options"]["node_election_delay_ms"].as_i64();
        d.faults = fault_windows(history);
        d.moves = crate::moves::moves(history);
        if !d.moves.is_empty() {
            let slots = d.moves.iter().map(|m| m.slot).collect();
            d.move_writes = crate::moves::writes_in(history, &slots);
        }
        for op in history.ops.iter().filter(|o| o.process == Process::Nemesis) {
            let t = (op.time / 1_000_000) as i64;
            if op.f == "heal-all" && d.heal_ms.is_none_or(|h| h < t) {
                d.heal_ms = Some(t);
            }
            if op.f == "recovered" {
                d.recovered_ms = Some(t);
            }
            if op.f == "repair-cluster" && d.repaired_ms.is_none_or(|r| r < t) {
                d.repaired_ms = Some(t);
            }
        }
        let (snap_lines, snap_broken) = json_lines_lenient(snapshots);
        if let Some(reason) = snap_broken {
            d.damage.push(Damage {
                file: "snapshots.jsonl".into(),
                reason,
                node: None,
            });
        }
        // Sentinel and twemproxy snapshot lines carry each node's address.
        let addr_names: HashMap<String, String> = snap_lines
            .iter()
            .filter_map(|(_, v)| {
                Some((
                    v["addr"].as_str()?.to_string(),
                    v["node"].as_str()?.to_string(),
                ))
            })
            .collect();
        for (_, v) in snap_lines {
            let node = v["node"].as_str().unwrap_or("").to_string();
            let t_ms = (v["time"].as_u64().unwrap_or(0) / 1_000_000) as i64;
            if v["kind"] == "sentinel" {
                let named = v["sentinel"]["master"]
                    .as_str()
                    .map(|a| addr_names.get(a).cloned().unwrap_or_else(|| a.to_string()));
                d.sentinel_views.push((t_ms, node.clone(), named));
            }
            if v["kind"] == "shard" {
                let keys = v["keys"].as_array().map(|ks| {
                    ks.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                });
                d.shard_keys.push((t_ms, node.clone(), keys));
            }
            let lines = v["nodes"].as_str().map(parse_cluster_nodes);
            if let Some(me) = lines.as_ref().and_then(|l| l.iter().find(|n| n.myself)) {
                d.names.insert(me.id.clone(), node.clone());
            }
            let r = &v["replication"];
            if let (Some(role), Some(offset)) = (r["role"].as_str(), r["offset"].as_u64()) {
                d.offsets.push(OffsetSample {
                    t_ms: (r["time"].as_u64().unwrap_or(0) / 1_000_000) as i64,
                    node: node.clone(),
                    role: role.to_string(),
                    offset,
                    replid: r["replid"].as_str().unwrap_or("").to_string(),
                });
            }
            d.snapshots.push(Snapshot { t_ms, node, lines });
        }
        let base_mono = timebase.and_then(|t| t["mono_ms"].as_i64());
        let base_wall = timebase.and_then(|t| t["wall_ms"].as_i64());
        d.has_timebase = base_mono.is_some() && base_wall.is_some();
        if !d.has_timebase && !node_logs.is_empty() {
            d.damage.push(Damage {
                file: "timebase.json".into(),
                reason: "missing: node events cannot be placed on the run's timeline".into(),
                node: None,
            });
        }
        for (name, bytes) in node_logs {
            d.nodes.push(name.clone());
            let file = format!("nodes/{name}/events.jsonl");
            let Some(bytes) = bytes else {
                d.damage.push(Damage {
                    file,
                    reason: "missing".into(),
                    node: Some(name.clone()),
                });
                continue;
            };
            // A damaged log is named in `damage` (so no rule judges from it); what
            // parses is still kept for views such as the report.
            let (lines, broken) = json_lines_lenient(bytes);
            if let Some(reason) = broken.or_else(|| complete_log(&lines).err()) {
                d.damage.push(Damage {
                    file,
                    reason,
                    node: Some(name.clone()),
                });
            }
            let mut kind = "hearsay";
            for (seq, v) in lines {
                let redis = v["source"] == "redis-log";
                if redis {
                    kind = "redis";
                }
                let local_ms = v["wall_ms"].as_i64().unwrap_or(0);
                let (t_ms, slack_ms) = if redis {
                    match base_wall {
                        Some(b) => {
                            let (off, slack) = clock_offset(&d.faults, name, local_ms - b);
                            (Some(local_ms - b - off), slack + 5)
                        }
                        None => (None, 0),
                    }
                } else {
                    match (base_mono, v["mono_ms"].as_i64()) {
                        (Some(b), Some(m)) => (Some(m - b), 5),
                        _ => (None, 0),
                    }
                };
                let Some(ev) = normalize(&v, redis) else {
                    continue;
                };
                if let Ev::Started { id } = &ev {
                    d.names.insert(id.clone(), name.clone());
                }
                d.events.push(NodeEvent {
                    node: name.clone(),
                    t_ms,
                    local_ms,
                    slack_ms,
                    ev,
                    seq,
                    raw: v,
                });
            }
            d.kinds.insert(name.clone(), kind.to_string());
        }
        if let Some(n) = d.expected_nodes {
            for i in 1..=n {
                let name = format!("n{i}");
                if !node_logs.iter().any(|(x, _)| *x == name) {
                    d.damage.push(Damage {
                        file: format!("nodes/{name}/events.jsonl"),
                        reason: "missing (no folder for this node)".into(),
                        node: Some(name),
                    });
                }
            }
        }
        // A node without events has no `source` to tell its kind: use the target's rule
        // (mixed puts redis on even indices, i.e. n1, n3, ...).
        for (name, k) in d.kinds.iter_mut() {
            let idx = name.strip_prefix('n').and_then(|x| x.parse::<usize>().ok());
            match (target, idx) {
                ("redis", _) => *k = "redis".into(),
                ("mixed", Some(i)) if i % 2 == 1 => *k = "redis".into(),
                _ => {}
            }
        }
        d.nodes.sort();
        d.events
            .sort_by_key(|e| (e.t_ms.unwrap_or(e.local_ms), e.node.clone(), e.seq));
        d
    }

    /// Every backward clock step of the run: a forward bump's reset (at its stop,
    /// or the final heal), a backward bump's start, a strobe's last reset.
    pub fn backward_clock_steps(&self) -> Vec<ClockStep> {
        let mut out = Vec::new();
        for f in self.faults.iter().filter(|f| f.kind == "clock") {
            let Some(d) = f.clock_delta_ms else { continue };
            let at = if d > 0 {
                f.stop_ms.or(self.heal_ms)
            } else {
                Some(f.start_ms)
            };
            if let (Some(at), true) = (at, d != 0) {
                out.push(ClockStep {
                    at_ms: at,
                    step_ms: d.abs(),
                    nodes: f.targets.clone(),
                });
            }
        }
        out
    }

    /// The allowance for a liveness bound over `[from, from + bound]`: the steps
    /// whose blind window overlaps it, each adding its size (with the steps).
    pub fn clock_step_allowance(&self, from: i64, bound: i64) -> (i64, Vec<ClockStep>) {
        let steps: Vec<ClockStep> = self
            .backward_clock_steps()
            .into_iter()
            .filter(|s| s.at_ms <= from + bound && s.blind_until() > from)
            .collect();
        (steps.iter().map(|s| s.step_ms).sum(), steps)
    }

    /// Events of one node in file order.
    pub fn events_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a NodeEvent> + 'a {
        self.events.iter().filter(move |e| e.node == node)
    }

    /// The latest answered snapshot of `node` at or before `t_ms`.
    pub fn snapshot_before(&self, node: &str, t_ms: i64) -> Option<&Snapshot> {
        self.snapshots
            .iter()
            .filter(|s| s.node == node && s.t_ms <= t_ms && s.lines.is_some())
            .max_by_key(|s| s.t_ms)
    }

    /// True if any answered snapshot in `[from, to]` shows `id` as a master.
    pub fn seen_as_master(&self, id: &str, from: i64, to: i64) -> bool {
        self.snapshots
            .iter()
            .filter(|s| s.t_ms >= from && s.t_ms <= to)
            .filter_map(|s| s.lines.as_ref())
            .any(|l| l.iter().any(|n| n.id == id && n.master))
    }

    /// True if any answered snapshot in `[from, to]` shows `id` at all.
    pub fn seen(&self, id: &str, from: i64, to: i64) -> bool {
        self.snapshots
            .iter()
            .filter(|s| s.t_ms >= from && s.t_ms <= to)
            .filter_map(|s| s.lines.as_ref())
            .any(|l| l.iter().any(|n| n.id == id))
    }
}

/// test.json, which every judgement needs (workload, node timeout, target).
pub fn read_test_json(dir: &Path) -> Result<Value, LoadError> {
    let path = dir.join("test.json");
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| LoadError::Test {
        path: shown.clone(),
        reason: format!("cannot be read: {e}"),
    })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| LoadError::Test {
        path: shown.clone(),
        reason: format!("not valid JSON: {e}"),
    })?;
    if !v["options"].is_object() {
        return Err(LoadError::Test {
            path: shown,
            reason: "has no \"options\" object".into(),
        });
    }
    Ok(v)
}

/// Splits a JSON-lines file into (line index, object), strictly: every line must be
/// UTF-8, end with a newline and hold one JSON object. The first failure is the
/// error, naming its line.
pub fn json_lines(bytes: &[u8]) -> Result<Vec<(usize, Value)>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0usize;
    while !rest.is_empty() {
        let (line, next, newline) = match rest.iter().position(|b| *b == b'\n') {
            Some(p) => (&rest[..p], &rest[p + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        rest = next;
        i += 1;
        if !newline {
            return Err(format!(
                "line {i} is cut short (no newline at the end of the file)"
            ));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|e| format!("line {i} is not UTF-8 ({e})"))?;
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("line {i} is not JSON ({e})"))?;
        if !v.is_object() {
            return Err(format!("line {i} is not a JSON object"));
        }
        out.push((i - 1, v));
    }
    Ok(out)
}

/// Like [`json_lines`], but keeps every line that parses; the first problem is
/// returned beside them.
pub fn json_lines_lenient(bytes: &[u8]) -> (Vec<(usize, Value)>, Option<String>) {
    let mut out = Vec::new();
    let mut first = None;
    for (i, chunk) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        match json_lines(chunk) {
            Ok(mut l) => {
                if let Some((_, v)) = l.pop() {
                    out.push((i, v));
                }
            }
            Err(e) => {
                first.get_or_insert_with(|| e.replacen("line 1", &format!("line {}", i + 1), 1));
                // A last line without its newline may still be a whole object: the
                // view keeps it; the damage is recorded all the same.
                if let Ok(v) = serde_json::from_slice::<Value>(chunk) {
                    if v.is_object() && !chunk.ends_with(b"\n") {
                        out.push((i, v));
                    }
                }
            }
        }
    }
    (out, first)
}

/// An event log written with `seq` numbers (hearsay-node, and the redis log adapter)
/// must have no gap: each process start begins at 0 with `started`, every line
/// follows the previous one, and the log ends with the last process's `stopped`.
/// Logs without `seq` (older runs) cannot be checked and pass.
fn complete_log(lines: &[(usize, Value)]) -> Result<(), String> {
    let Some((_, first)) = lines.first() else {
        return Err("empty".into());
    };
    if first.get("seq").is_none() {
        return Ok(());
    }
    let mut prev: Option<u64> = None;
    for (i, v) in lines {
        let Some(seq) = v["seq"].as_u64() else {
            return Err(format!("line {} has no seq", i + 1));
        };
        let restart = seq == 0 && v["event"] == "started";
        match prev {
            _ if restart => {}
            None => {
                return Err(format!(
                    "line {} (seq {seq}) does not start with `started`",
                    i + 1
                ))
            }
            Some(p) if seq != p + 1 => {
                return Err(format!(
                    "line {} has seq {seq} after {p}: lines are missing or out of order",
                    i + 1
                ))
            }
            Some(_) => {}
        }
        prev = Some(seq);
    }
    match lines.last() {
        Some((_, v)) if v["event"] == "stopped" => Ok(()),
        Some((i, _)) => Err(format!(
            "ends at line {} without the node's `stopped` event (cut, or the node did not shut down cleanly)",
            i + 1
        )),
        None => Ok(()),
    }
}

/// Which nemesis faults ran when, from the history's nemesis ops (the completion line
/// of each start/stop, the one carrying `verified`).
fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let mut out: Vec<FaultWindow> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for op in history.ops.iter().filter(|o| o.process == Process::Nemesis) {
        let t = (op.time / 1_000_000) as i64;
        if let Some(kind) = op.f.strip_prefix("start-") {
            // The first line of a start marks its beginning; the second has targets.
            let i = match open.get(kind) {
                Some(i) => *i,
                None => {
                    out.push(FaultWindow {
                        kind: kind.to_string(),
                        start_ms: t,
                        stop_ms: None,
                        targets: vec![],
                        grudge: BTreeMap::new(),
                        clock_delta_ms: None,
                        strobe: false,
                        detail: None,
                    });
                    open.insert(kind.to_string(), out.len() - 1);
                    out.len() - 1
                }
            };
            let Some(w) = out.get_mut(i) else { continue };
            let value = op.value.json();
            let targets = &value["targets"];
            if let Some(a) = targets.as_array() {
                w.targets = a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect();
            } else if let Some(g) = targets["refuses-from"].as_object() {
                for (k, v) in g {
                    let from: Vec<String> = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    for n in std::iter::once(k).chain(from.iter()) {
                        if !w.targets.contains(n) {
                            w.targets.push(n.clone());
                        }
                    }
                    w.grudge.insert(k.clone(), from);
                }
            }
            let res = &value["resolved"];
            if let Some(ds) = res["delta_s"]
                .as_i64()
                .or_else(|| res["delta-s"].as_i64())
                .or_else(|| value["evidence"]["delta-s"].as_i64())
            {
                w.clock_delta_ms = Some(ds * 1000);
            }
            if res["fault"].as_str().is_some_and(|f| f.contains("strobe")) {
                w.strobe = true;
            }
            let ev = &value["evidence"];
            match res["fault"].as_str() {
                Some("reshard") => {
                    if let (Some(a), Some(b)) = (ev["slots"][0].as_u64(), ev["slots"][1].as_u64()) {
                        w.detail = Some(format!(
                            "slots {a}-{b} {}->{}",
                            ev["from"].as_str().unwrap_or("?"),
                            ev["to"].as_str().unwrap_or("?")
                        ));
                    }
                }
                Some("member") => {
                    if let Some(n) = ev["node"].as_str() {
                        let add = res["add"].as_bool().unwrap_or(false);
                        w.detail = Some(format!(
                            "{}{n}{}",
                            if add { "+" } else { "-" },
                            ev["as"]
                                .as_str()
                                .map(|a| format!(" {a}"))
                                .unwrap_or_default()
                        ));
                    }
                }
                _ => {}
            }
        } else if let Some(kind) = op.f.strip_prefix("stop-") {
            if let Some(i) = open.remove(kind) {
                if let Some(w) = out.get_mut(i) {
                    w.stop_ms = Some(t);
                }
            }
        } else if op.f == "heal-all" {
            for (_, i) in open.drain() {
                if let Some(w) = out.get_mut(i) {
                    w.stop_ms = Some(t);
                }
            }
        }
    }
    out
}

/// The clock offset of `node` at (approximately) run time `t_ms`, and the
/// uncertainty: a strobe flips between 0 and delta, and the edges of a bump are only
/// known to the nemesis op's resolution.
fn clock_offset(faults: &[FaultWindow], node: &str, t_ms: i64) -> (i64, i64) {
    let mut off = 0;
    let mut slack = 0;
    for f in faults.iter().filter(|f| f.kind == "clock") {
        let Some(d) = f.clock_delta_ms else { continue };
        if !f.targets.iter().any(|n| n == node) {
            continue;
        }
        let stop = f.stop_ms.unwrap_or(i64::MAX);
        // A wall stamp taken with the offset on reads `d` later than run time.
        let within = |x: i64| x >= f.start_ms - 1000 && x <= stop.saturating_add(1000);
        if within(t_ms) || within(t_ms - d) {
            if f.strobe {
                off += d / 2;
                slack += d.abs() / 2 + 1000;
            } else {
                let sure = t_ms - d >= f.start_ms + 1000 && t_ms - d <= stop.saturating_sub(1000);
                if sure {
                    off += d;
                } else {
                    off += d / 2;
                    slack += d.abs() / 2 + 1000;
                }
            }
        }
    }
    (off, slack)
}

/// Maps one event line (hearsay or redis-adapter form) to an [`Ev`].
fn normalize(v: &Value, redis: bool) -> Option<Ev> {
    let s = |k: &str| v[k].as_str().map(str::to_string);
    let kind = v["event"].as_str()?;
    // hearsay lines carry the writer's ID in `me` (older logs: in `node`, before the
    // event's own `node`; JSON keeps the last key, which is the event's field).
    Some(match kind {
        "started" => Ev::Started { id: s("id")? },
        "pfail_set" => Ev::PfailSet {
            about: if redis { s("about")? } else { s("node")? },
        },
        "pfail_cleared" => Ev::PfailCleared { about: s("node")? },
        "failure_report" | "failure_report_added" => Ev::Report {
            reporter: s("reporter")?,
            about: s("about")?,
            refresh: false,
        },
        "failure_report_refreshed" => Ev::Report {
            reporter: s("reporter")?,
            about: s("about")?,
            refresh: true,
        },
        "failure_report_cleared" => Ev::ReportRemoved {
            reporter: s("reporter")?,
            about: s("about")?,
            reason: "back_online".into(),
        },
        "failure_report_removed" => Ev::ReportRemoved {
            reporter: s("reporter")?,
            about: s("about")?,
            reason: s("reason").unwrap_or_default(),
        },
        "fail_marked" => Ev::FailMarked {
            about: s("about")?,
            claimed: v["reporters"].as_array().map(|r| Claimed {
                reporters: r
                    .iter()
                    .filter_map(|x| x["id"].as_str().map(str::to_string))
                    .collect(),
                quorum_needed: v["quorum_needed"].as_u64(),
                masters_with_slots: v["masters_with_slots"].as_u64(),
                counted_self: v["counted_self"].as_bool(),
            }),
        },
        "fail_received" => Ev::FailReceived {
            from: s("from")?,
            about: s("about")?,
        },
        "fail_cleared" => Ev::FailCleared {
            about: s("about")?,
            reason: s("reason").unwrap_or_default(),
        },
        "vote_granted" => Ev::VoteGranted {
            to: s("to")?,
            epoch: v["epoch"].as_u64(),
        },
        "vote_refused" => Ev::VoteRefused {
            to: s("to")?,
            reason: s("reason").unwrap_or_default(),
        },
        "failover_started" | "election_started" => Ev::FailoverStarted {
            epoch: v["epoch"].as_u64(),
            master: s("master"),
        },
        "election_scheduled" => Ev::ElectionScheduled {
            master: s("master"),
            offset: v["offset"].as_u64(),
        },
        "auth_ack_received" => Ev::AuthAck {
            from: s("from")?,
            epoch: v["epoch"].as_u64()?,
            counted: v["counted"].as_bool().unwrap_or(false),
        },
        "failover_won" | "election_won" => Ev::FailoverWon {
            master: s("master"),
            epoch: v["epoch"].as_u64(),
        },
        "stopped" => Ev::Stopped,
        "replication_link_up" => Ev::ReplLink { up: true },
        "replication_link_down" => Ev::ReplLink { up: false },
        "current_epoch_changed" => Ev::CurrentEpoch {
            from: v["from"].as_u64(),
            to: v["to"].as_u64()?,
            reason: s("reason").unwrap_or_default(),
        },
        "config_epoch_changed" => Ev::ConfigEpoch {
            node: s("node"),
            to: v["to"].as_u64()?,
        },
        "config_epoch_set" => Ev::ConfigEpoch {
            node: None,
            to: v["epoch"].as_u64()?,
        },
        "epoch_collision" => Ev::EpochCollision { with: s("with")? },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [7->-bbbb]
bbbb 127.0.0.1:7001@17001 slave,fail? aaaa 0 0 1 connected
cccc 127.0.0.1:7002@17002 master,fail - 0 0 3 disconnected 5461 5462-10922
";
        let l = parse_cluster_nodes(text);
        assert_eq!(l.len(), 3);
        assert!(l[0].myself && l[0].master);
        assert_eq!(l[0].slots, vec![(0, 5460)]);
        assert_eq!(l[0].slot_count(), 5461);
        assert!(l[1].pfail && !l[1].master);
        assert_eq!(l[1].master_of.as_deref(), Some("aaaa"));
        assert!(l[2].fail);
        assert_eq!(l[2].config_epoch, 3);
        assert_eq!(l[2].slots, vec![(5461, 5461), (5462, 10922)]);
    }

    #[test]
    fn hearsay_pfail_subject_is_the_last_node_key() {
        let line = r#"{"node":"me","wall_ms":5,"mono_ms":7,"event":"pfail_set","node":"them"}"#;
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            normalize(&v, false),
            Some(Ev::PfailSet {
                about: "them".into()
            })
        );
    }

    #[test]
    fn vote_refusals_are_events() {
        let hs = r#"{"me":"a","event":"vote_refused","to":"b","reason":"already_voted","epoch":5,"req_epoch":5}"#;
        let redis = r#"{"event":"vote_refused","to":"b","reason":"slot has an older configEpoch"}"#;
        for (line, redis, reason) in [
            (hs, false, "already_voted"),
            (redis, true, "slot has an older configEpoch"),
        ] {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                normalize(&v, redis),
                Some(Ev::VoteRefused {
                    to: "b".into(),
                    reason: reason.into()
                })
            );
        }
    }

    #[test]
    fn clock_offsets_are_removed_from_redis_stamps() {
        let w = FaultWindow {
            kind: "clock".into(),
            start_ms: 10_000,
            stop_ms: Some(20_000),
            targets: vec!["n1".into()],
            grudge: BTreeMap::new(),
            clock_delta_ms: Some(60_000),
            strobe: false,
            detail: None,
        };
        let faults = vec![w];
        // Run time 15 s, stamped 60 s ahead.
        assert_eq!(clock_offset(&faults, "n1", 75_000), (60_000, 0));
        assert_eq!(clock_offset(&faults, "n2", 75_000), (0, 0));
        assert_eq!(clock_offset(&faults, "n1", 5_000), (0, 0));
    }
}
