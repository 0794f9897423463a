//! What a report shows, read from a run folder. Nothing here is fatal but a missing
//! folder: a missing or malformed file becomes a note on the page, and the sections
//! that needed it say so.
//!
//! Node events, fault windows and snapshots come from the protocol checkers' loader
//! ([`RunData`]), so the report places them on the timeline exactly as the checkers
//! judged them (hearsay by `mono_ms`, redis by wall stamp minus the clock nemesis's
//! offset).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hearsay_checkers::history::{History, Op, OpType, Process};
use hearsay_checkers::run_data::{RunData, Snapshot};
use hearsay_checkers::Valid;
use serde_json::Value;

use super::ReportError;

/// How a client op ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
    /// Invoked, never completed (the run ended or the harness died).
    Pending,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
        }
    }

    pub fn colour(self) -> &'static str {
        match self {
            Outcome::Ok => super::svg::OK,
            Outcome::Fail => super::svg::FAIL,
            Outcome::Info => super::svg::INFO,
            Outcome::Pending => super::svg::PENDING,
        }
    }

    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Fail, Outcome::Info, Outcome::Pending];
}

/// One client op: its invocation and completion.
#[derive(Clone, Debug)]
pub struct ClientOp {
    pub process: u64,
    /// Index into [`Loaded::fs`].
    pub f: usize,
    pub start_ms: f64,
    /// None while pending.
    pub end_ms: Option<f64>,
    pub outcome: Outcome,
    /// Positions in `history.ops` (for tooltips).
    pub invoke: usize,
    pub completion: Option<usize>,
}

impl ClientOp {
    pub fn latency_ms(&self) -> Option<f64> {
        self.end_ms.map(|e| (e - self.start_ms).max(0.0))
    }
}

/// A run folder, read for the report.
pub struct Loaded {
    pub dir: PathBuf,
    pub test: Value,
    pub results: Option<Value>,
    pub history: History,
    pub run: RunData,
    /// Distinct op functions (`add`, `read`, ...), in first-seen order.
    pub fs: Vec<String>,
    pub ops: Vec<ClientOp>,
    /// End of the run's timeline in ms (last op, snapshot or fault edge).
    pub end_ms: f64,
    /// What is missing or could not be read.
    pub notes: Vec<String>,
}

impl Loaded {
    /// Reads a run folder. Only a folder that does not exist (or is not a folder) is
    /// an error.
    pub fn load(dir: &Path) -> Result<Loaded, ReportError> {
        if !dir.is_dir() {
            return Err(ReportError::NotARunDir(dir.display().to_string()));
        }
        let mut notes = Vec::new();
        let test = read_json(dir, "test.json", &mut notes).unwrap_or(Value::Null);
        let results = read_json(dir, "results.json", &mut notes);
        let history = match History::read(&dir.join("history.jsonl")) {
            Ok(h) => {
                if h.truncated_tail {
                    notes.push("history.jsonl: the last line was cut short (the run was killed) and is left out".into());
                }
                h
            }
            Err(e) => {
                notes.push(format!("{e} — no client ops or faults can be shown"));
                History::default()
            }
        };
        for f in ["snapshots.jsonl", "timebase.json"] {
            if !dir.join(f).is_file() {
                notes.push(format!("{f}: missing"));
            }
        }
        if !dir.join("nodes").is_dir() {
            notes.push("nodes/: missing — no node events".into());
        }
        let run = RunData::load_with(dir, &history);
        Ok(Loaded::from_parts(dir, test, results, history, run, notes))
    }

    /// Builds from parts already read (tests build synthetic runs this way).
    pub fn from_parts(
        dir: &Path,
        test: Value,
        results: Option<Value>,
        history: History,
        run: RunData,
        mut notes: Vec<String>,
    ) -> Loaded {
        let (fs, ops) = client_ops(&history);
        let mut end_ms = 0f64;
        if let Some(last) = history.ops.iter().map(|o| o.time).max() {
            end_ms = end_ms.max(last as f64 / 1e6);
        }
        if let Some(last) = run.snapshots.iter().map(|s| s.t_ms).max() {
            end_ms = end_ms.max(last as f64);
        }
        for f in &run.faults {
            end_ms = end_ms.max(f.stop_ms.unwrap_or(f.start_ms) as f64);
        }
        if end_ms <= 0.0 {
            end_ms = 1000.0;
        }
        for dmg in &run.damage {
            notes.push(format!(
                "{}: {} (the checkers that need it did not judge)",
                dmg.file, dmg.reason
            ));
        }
        for n in &run.notes {
            notes.push(format!("node events: {n}"));
        }
        if !run.nodes.is_empty() && !run.has_timebase {
            notes.push(
                "timebase.json missing or unreadable: node events cannot be placed on the timeline"
                    .into(),
            );
        }
        Loaded {
            dir: dir.to_path_buf(),
            test,
            results,
            history,
            run,
            fs,
            ops,
            end_ms,
            notes,
        }
    }

    /// The run's verdict from results.json (None: not judged).
    pub fn verdict(&self) -> Option<Valid> {
        self.results
            .as_ref()
            .and_then(|r| Valid::try_from(r.get("valid")?.clone()).ok())
    }

    /// An option from test.json, if present.
    pub fn option(&self, key: &str) -> &Value {
        &self.test["options"][key]
    }

    /// The completion op of a client op, if any.
    pub fn op_at(&self, i: usize) -> Option<&Op> {
        self.history.ops.get(i)
    }
}

fn read_json(dir: &Path, name: &str, notes: &mut Vec<String>) -> Option<Value> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => match serde_json::from_str(&t) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("{name}: not valid JSON ({e})"));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!("{name}: missing"));
            None
        }
        Err(e) => {
            notes.push(format!("{name}: {e}"));
            None
        }
    }
}

/// Pairs each client invocation with its completion (a process runs one op at a
/// time), keeping positions so tooltips can show values and errors.
fn client_ops(history: &History) -> (Vec<String>, Vec<ClientOp>) {
    let mut fs: Vec<String> = Vec::new();
    let mut f_index: HashMap<&str, usize> = HashMap::new();
    let mut ops: Vec<ClientOp> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        let Process::Client(p) = op.process else {
            continue;
        };
        match op.kind {
            OpType::Invoke => {
                let f = match f_index.get(op.f.as_str()) {
                    Some(f) => *f,
                    None => {
                        fs.push(op.f.clone());
                        f_index.insert(op.f.as_str(), fs.len() - 1);
                        fs.len() - 1
                    }
                };
                open.insert(p, ops.len());
                ops.push(ClientOp {
                    process: p,
                    f,
                    start_ms: op.time as f64 / 1e6,
                    end_ms: None,
                    outcome: Outcome::Pending,
                    invoke: i,
                    completion: None,
                });
            }
            kind => {
                let Some(c) = open.remove(&p).and_then(|k| ops.get_mut(k)) else {
                    continue;
                };
                c.end_ms = Some(op.time as f64 / 1e6);
                c.completion = Some(i);
                c.outcome = match kind {
                    OpType::Ok => Outcome::Ok,
                    OpType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
            }
        }
    }
    (fs, ops)
}

/// Rows of the client timeline: one per process, or per worker slot when there are
/// too many processes to read (each `info` outcome starts a new process).
pub struct Rows {
    /// Row label per row.
    pub labels: Vec<String>,
    /// Process → row.
    pub of: HashMap<u64, usize>,
    pub grouped: bool,
}

/// More processes than this are grouped by worker slot.
pub const MAX_ROWS: usize = 40;

pub fn rows(l: &Loaded) -> Rows {
    let mut procs: Vec<u64> = l.ops.iter().map(|o| o.process).collect();
    procs.sort_unstable();
    procs.dedup();
    if procs.len() <= MAX_ROWS {
        return Rows {
            labels: procs.iter().map(|p| format!("p{p}")).collect(),
            of: procs.iter().enumerate().map(|(i, p)| (*p, i)).collect(),
            grouped: false,
        };
    }
    // Process p runs on worker p mod concurrency (a fresh id after info is
    // old + concurrency); the final reads use one extra process.
    let c = l
        .option("concurrency")
        .as_u64()
        .filter(|c| *c > 0 && (*c as usize) < MAX_ROWS)
        .unwrap_or(MAX_ROWS as u64 - 1);
    let last = procs.last().copied().unwrap_or(0);
    let final_reads = l
        .ops
        .iter()
        .any(|o| o.process == last && l.fs.get(o.f).is_some_and(|f| f.starts_with("final")));
    let mut labels: Vec<String> = (0..c).map(|w| format!("worker {w}")).collect();
    let mut of = HashMap::new();
    for p in &procs {
        of.insert(*p, (*p % c) as usize);
    }
    if final_reads {
        labels.push(format!("p{last} (final)"));
        of.insert(last, labels.len() - 1);
    }
    Rows {
        labels,
        of,
        grouped: true,
    }
}

/// One round of CLUSTER NODES snapshots (every node polled once).
#[derive(Clone, Debug)]
pub struct Round {
    pub t_ms: i64,
    /// Node → index into [`SlotMaps::maps`], or None when it did not answer.
    pub views: BTreeMap<String, Option<usize>>,
}

impl Round {
    /// Distinct slot maps among the nodes that answered.
    pub fn distinct(&self) -> usize {
        let mut m: Vec<usize> = self.views.values().flatten().copied().collect();
        m.sort_unstable();
        m.dedup();
        m.len()
    }

    pub fn silent(&self) -> usize {
        self.views.values().filter(|v| v.is_none()).count()
    }
}

/// Every distinct slot map seen, and the snapshot rounds.
#[derive(Clone, Debug, Default)]
pub struct SlotMaps {
    /// Readable form of each map: `0-5460 n1, 5461-10922 n2, …`.
    pub maps: Vec<String>,
    pub rounds: Vec<Round>,
}

/// Groups snapshots into rounds (a node seen again starts a new round) and names
/// each node's view of slot ownership.
pub fn slot_maps(run: &RunData) -> SlotMaps {
    let mut snaps: Vec<&Snapshot> = run.snapshots.iter().collect();
    snaps.sort_by_key(|s| s.t_ms);
    let mut out = SlotMaps::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut cur: Option<Round> = None;
    for s in snaps {
        let view = s.lines.as_ref().map(|lines| {
            let mut ranges: Vec<(u16, u16, String)> = Vec::new();
            for n in lines.iter().filter(|n| n.master) {
                for (a, b) in &n.slots {
                    ranges.push((*a, *b, run.name(&n.id)));
                }
            }
            ranges.sort();
            describe_map(&ranges)
        });
        let view = view.map(|key| match index.get(&key) {
            Some(i) => *i,
            None => {
                out.maps.push(key.clone());
                index.insert(key, out.maps.len() - 1);
                out.maps.len() - 1
            }
        });
        let new_round = match &cur {
            Some(r) => r.views.contains_key(&s.node),
            None => true,
        };
        if new_round {
            if let Some(r) = cur.take() {
                out.rounds.push(r);
            }
            cur = Some(Round {
                t_ms: s.t_ms,
                views: BTreeMap::new(),
            });
        }
        if let Some(r) = cur.as_mut() {
            r.views.insert(s.node.clone(), view);
        }
    }
    if let Some(r) = cur {
        out.rounds.push(r);
    }
    out
}

/// `0-5460 n1, 5461-10922 n2, …`, adjacent ranges of one owner merged, and the
/// number of unowned slots.
fn describe_map(ranges: &[(u16, u16, String)]) -> String {
    let mut merged: Vec<(u16, u16, &str)> = Vec::new();
    for (a, b, who) in ranges {
        match merged.last_mut() {
            Some(last) if last.2 == who && u32::from(last.1) + 1 == u32::from(*a) => last.1 = *b,
            _ => merged.push((*a, *b, who)),
        }
    }
    let owned: usize = merged
        .iter()
        .map(|(a, b, _)| usize::from(b.saturating_sub(*a)) + 1)
        .sum();
    let mut parts: Vec<String> = merged
        .iter()
        .map(|(a, b, who)| {
            if a == b {
                format!("{a} {who}")
            } else {
                format!("{a}-{b} {who}")
            }
        })
        .collect();
    if owned < 16384 {
        parts.push(format!(
            "{} slots unowned",
            16384usize.saturating_sub(owned)
        ));
    }
    if parts.is_empty() {
        return "no slots".into();
    }
    parts.join(", ")
}

/// A node's role over time from its own snapshots (`myself` line): (role, from ms,
/// to ms). Unanswered snapshots do not end a role.
pub fn roles(run: &RunData, node: &str, end_ms: f64) -> Vec<(String, f64, f64)> {
    let mut snaps: Vec<&Snapshot> = run.snapshots.iter().filter(|s| s.node == node).collect();
    snaps.sort_by_key(|s| s.t_ms);
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for s in snaps {
        let Some(me) = s.lines.as_ref().and_then(|l| l.iter().find(|n| n.myself)) else {
            continue;
        };
        let role = if me.master { "master" } else { "replica" };
        let t = s.t_ms as f64;
        match out.last_mut() {
            Some(last) if last.0 == role => last.2 = t,
            Some(last) => {
                last.2 = t;
                out.push((role.to_string(), t, t));
            }
            None => out.push((role.to_string(), t, t)),
        }
    }
    if let Some(last) = out.last_mut() {
        last.2 = end_ms.max(last.2);
    }
    out
}

/// A span in which an observer held PFAIL or FAIL about one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub about: String,
    pub fail: bool,
    pub start_ms: f64,
    /// None: still held when the events end.
    pub end_ms: Option<f64>,
    /// How it began (`PFAIL set`, `FAIL marked (reporters …)`, `FAIL received from n2`).
    pub how: String,
    pub ended_by: String,
}

/// A point event of an observer (FAIL decisions, elections, votes, restarts).
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub t_ms: f64,
    pub kind: MarkKind,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkKind {
    PfailSet,
    PfailCleared,
    FailMarked,
    FailReceived,
    FailCleared,
    ElectionStarted,
    ElectionWon,
    VoteGranted,
    VoteRefused,
    Restarted,
}

impl MarkKind {
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::PfailSet => "PFAIL set",
            MarkKind::PfailCleared => "PFAIL cleared",
            MarkKind::FailMarked => "FAIL marked (own decision)",
            MarkKind::FailReceived => "FAIL received",
            MarkKind::FailCleared => "FAIL cleared",
            MarkKind::ElectionStarted => "election started",
            MarkKind::ElectionWon => "election won",
            MarkKind::VoteGranted => "vote granted",
            MarkKind::VoteRefused => "vote refused",
            MarkKind::Restarted => "node (re)started",
        }
    }

    /// (shape index for [`super::svg::marker`], colour, filled)
    pub fn style(self) -> (usize, &'static str, bool) {
        match self {
            MarkKind::PfailSet => (2, "#f08c00", true),
            MarkKind::PfailCleared => (2, "#f08c00", false),
            MarkKind::FailMarked => (3, "#c00000", true),
            MarkKind::FailReceived => (0, "#c00000", true),
            MarkKind::FailCleared => (0, "#2e9e44", false),
            MarkKind::ElectionStarted => (1, "#1f5fbf", false),
            MarkKind::ElectionWon => (1, "#1f5fbf", true),
            MarkKind::VoteGranted => (3, "#7b3fb5", true),
            MarkKind::VoteRefused => (4, "#7b3fb5", false),
            MarkKind::Restarted => (4, "#333333", false),
        }
    }

    /// Marks drawn on the observer's own lane (the rest sit on the subject's lane).
    pub fn own_lane(self) -> bool {
        matches!(
            self,
            MarkKind::ElectionStarted
                | MarkKind::ElectionWon
                | MarkKind::VoteGranted
                | MarkKind::VoteRefused
                | MarkKind::Restarted
        )
    }
}

/// What one node believed about the others, over time.
#[derive(Clone, Debug, Default)]
pub struct Observer {
    pub node: String,
    pub kind: String,
    /// Subjects (node names) in lane order.
    pub subjects: Vec<String>,
    pub spans: Vec<Span>,
    /// Marks with the subject they are about (None: the observer's own lane).
    pub marks: Vec<(Option<String>, Mark)>,
    /// Events that could not be placed on the timeline.
    pub unplaced: usize,
}

/// Per observer node: PFAIL/FAIL spans about each other node, and point marks.
pub fn observers(run: &RunData) -> Vec<Observer> {
    use hearsay_checkers::run_data::Ev;
    let mut out = Vec::new();
    for node in &run.nodes {
        let mut o = Observer {
            node: node.clone(),
            kind: run.kinds.get(node).cloned().unwrap_or_default(),
            ..Observer::default()
        };
        // This observer's answered snapshots, oldest first: (t, subject name → flagged).
        let mut own: Vec<(f64, HashMap<String, bool>)> = run
            .snapshots
            .iter()
            .filter(|s| &s.node == node)
            .filter_map(|s| {
                let lines = s.lines.as_ref()?;
                let flags = lines
                    .iter()
                    .map(|n| (run.name(&n.id), n.pfail || n.fail))
                    .collect();
                Some((s.t_ms as f64, flags))
            })
            .collect();
        own.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Open spans: (about, fail) → index into o.spans.
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        let close = |o: &mut Observer,
                     open: &mut BTreeMap<String, usize>,
                     about: &str,
                     t: f64,
                     by: &str| {
            if let Some(i) = open.remove(about) {
                if let Some(s) = o.spans.get_mut(i) {
                    s.end_ms = Some(t);
                    s.ended_by = by.to_string();
                }
            }
        };
        for e in run.events_of(node) {
            let Some(t) = e.t_ms.map(|t| t as f64) else {
                o.unplaced += 1;
                continue;
            };
            let mark = |o: &mut Observer, about: Option<String>, kind: MarkKind, text: String| {
                o.marks.push((
                    about,
                    Mark {
                        t_ms: t,
                        kind,
                        text,
                    },
                ));
            };
            match &e.ev {
                Ev::Started { .. } => {
                    let abouts: Vec<String> = open.keys().cloned().collect();
                    for a in abouts {
                        close(&mut o, &mut open, &a, t, "restart");
                    }
                    mark(&mut o, None, MarkKind::Restarted, "node (re)started".into());
                }
                Ev::PfailSet { about } => {
                    let a = run.name(about);
                    // redis logs no PFAIL clear: a PFAIL still open may have ended
                    // unseen, which its CLUSTER NODES snapshots show.
                    if let Some(i) = open.get(&a).copied() {
                        let open_pfail = o.spans.get(i).filter(|s| !s.fail).map(|s| s.start_ms);
                        if let Some(t_clear) =
                            open_pfail.and_then(|from| cleared_at(&own, &a, from, t))
                        {
                            close(&mut o, &mut open, &a, t_clear, SNAPSHOT_CLEAR);
                        }
                    }
                    if !open.contains_key(&a) {
                        open.insert(a.clone(), o.spans.len());
                        o.spans.push(Span {
                            about: a.clone(),
                            fail: false,
                            start_ms: t,
                            end_ms: None,
                            how: "PFAIL set".into(),
                            ended_by: String::new(),
                        });
                    }
                    mark(
                        &mut o,
                        Some(a.clone()),
                        MarkKind::PfailSet,
                        format!("PFAIL set about {a}"),
                    );
                }
                Ev::PfailCleared { about } => {
                    let a = run.name(about);
                    close(&mut o, &mut open, &a, t, "PFAIL cleared");
                    mark(
                        &mut o,
                        Some(a.clone()),
                        MarkKind::PfailCleared,
                        format!("PFAIL cleared about {a}"),
                    );
                }
                Ev::FailMarked { about, claimed } => {
                    let a = run.name(about);
                    let how = match claimed {
                        Some(c) => format!(
                            "FAIL marked by itself: reporters {}{}",
                            c.reporters
                                .iter()
                                .map(|r| run.name(r))
                                .collect::<Vec<_>>()
                                .join(" "),
                            c.quorum_needed
                                .map(|q| format!(", quorum {q}"))
                                .unwrap_or_default()
                        ),
                        None => "FAIL marked by itself".to_string(),
                    };
                    open_fail(&mut o, &mut open, &a, t, &how);
                    mark(
                        &mut o,
                        Some(a.clone()),
                        MarkKind::FailMarked,
                        format!("{how} about {a}"),
                    );
                }
                Ev::FailReceived { from, about } => {
                    let a = run.name(about);
                    let how = format!("FAIL received from {}", run.name(from));
                    open_fail(&mut o, &mut open, &a, t, &how);
                    mark(
                        &mut o,
                        Some(a.clone()),
                        MarkKind::FailReceived,
                        format!("{how} about {a}"),
                    );
                }
                Ev::FailCleared { about, .. } => {
                    let a = run.name(about);
                    close(&mut o, &mut open, &a, t, "FAIL cleared");
                    mark(
                        &mut o,
                        Some(a.clone()),
                        MarkKind::FailCleared,
                        format!("FAIL cleared about {a}"),
                    );
                }
                Ev::FailoverStarted { epoch, .. } => mark(
                    &mut o,
                    None,
                    MarkKind::ElectionStarted,
                    format!(
                        "election started{}",
                        epoch.map(|e| format!(" for epoch {e}")).unwrap_or_default()
                    ),
                ),
                Ev::FailoverWon { .. } => mark(
                    &mut o,
                    None,
                    MarkKind::ElectionWon,
                    "election won (promoted to master)".into(),
                ),
                Ev::VoteGranted { to, epoch } => mark(
                    &mut o,
                    None,
                    MarkKind::VoteGranted,
                    format!(
                        "vote granted to {}{}",
                        run.name(to),
                        epoch.map(|e| format!(" for epoch {e}")).unwrap_or_default()
                    ),
                ),
                Ev::VoteRefused { to, reason } => mark(
                    &mut o,
                    None,
                    MarkKind::VoteRefused,
                    format!("vote refused to {}: {reason}", run.name(to)),
                ),
                _ => {}
            }
        }
        for (a, i) in open {
            if let Some(sp) = o.spans.get_mut(i).filter(|s| !s.fail) {
                if let Some(t) = cleared_at(&own, &a, sp.start_ms, f64::MAX) {
                    sp.end_ms = Some(t);
                    sp.ended_by = SNAPSHOT_CLEAR.into();
                }
            }
        }
        let mut subjects: Vec<String> = o.spans.iter().map(|s| s.about.clone()).collect();
        subjects.extend(o.marks.iter().filter_map(|(a, _)| a.clone()));
        subjects.sort_by_key(|s| natural_key(s));
        subjects.dedup();
        o.subjects = subjects;
        out.push(o);
    }
    out
}

const SNAPSHOT_CLEAR: &str =
    "no longer flagged in its CLUSTER NODES snapshot (redis logs no PFAIL clear; to the snapshot period)";

/// The first snapshot in `(from, to)` where the observer lists `subject` without
/// `fail?`/`fail`.
fn cleared_at(
    own: &[(f64, HashMap<String, bool>)],
    subject: &str,
    from: f64,
    to: f64,
) -> Option<f64> {
    own.iter()
        // A snapshot a few ms after the event may predate it (clock placement slack).
        .filter(|(t, _)| *t > from + 50.0 && *t < to)
        .find(|(_, flags)| flags.get(subject) == Some(&false))
        .map(|(t, _)| *t)
}

/// A FAIL begins: a PFAIL about the same node ends there (PFAIL → FAIL).
fn open_fail(o: &mut Observer, open: &mut BTreeMap<String, usize>, about: &str, t: f64, how: &str) {
    if let Some(i) = open.get(about).copied() {
        match o.spans.get_mut(i) {
            Some(s) if s.fail => return,
            Some(s) => {
                s.end_ms = Some(t);
                s.ended_by = "became FAIL".into();
            }
            None => {}
        }
    }
    open.insert(about.to_string(), o.spans.len());
    o.spans.push(Span {
        about: about.to_string(),
        fail: true,
        start_ms: t,
        end_ms: None,
        how: how.to_string(),
        ended_by: String::new(),
    });
}

/// Sort key that puts `n2` before `n10`.
pub fn natural_key(s: &str) -> (String, u64, String) {
    let digits: String = s
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let head: String = s.chars().take_while(|c| !c.is_ascii_digit()).collect();
    (head, digits.parse().unwrap_or(0), s.to_string())
}

/// Throughput per bucket: completions of each outcome per second.
pub struct Throughput {
    pub bucket_s: f64,
    /// Per bucket: [ok, fail, info] counts.
    pub counts: Vec<[u32; 3]>,
}

pub fn throughput(l: &Loaded) -> Throughput {
    let span_s = l.end_ms / 1000.0;
    // About 300 buckets at most, in whole (or half) seconds.
    let mut bucket_s = super::svg::nice_step(span_s, 300.0).max(0.5);
    if span_s / bucket_s > 400.0 {
        bucket_s *= 2.0;
    }
    let n = ((span_s / bucket_s).ceil() as usize).clamp(1, 2000);
    let mut counts = vec![[0u32; 3]; n];
    for o in &l.ops {
        let (Some(end), k) = (o.end_ms, o.outcome) else {
            continue;
        };
        let i = ((end / 1000.0 / bucket_s) as usize).min(n - 1);
        let slot = match k {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            _ => 2,
        };
        if let Some(c) = counts.get_mut(i).and_then(|c| c.get_mut(slot)) {
            *c += 1;
        }
    }
    Throughput { bucket_s, counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_described_compactly() {
        let r = vec![
            (0, 100, "n1".to_string()),
            (101, 200, "n1".to_string()),
            (201, 16383, "n2".to_string()),
        ];
        assert_eq!(describe_map(&r), "0-200 n1, 201-16383 n2");
        let r = vec![(5, 5, "n3".to_string())];
        assert_eq!(describe_map(&r), "5 n3, 16383 slots unowned");
        assert_eq!(describe_map(&[]), "16384 slots unowned");
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["n10", "n2", "n1"];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(v, vec!["n1", "n2", "n10"]);
    }
}
