//! fail-quorum: every FAIL a node decides by itself must be backed, at that moment,
//! by failure reports from at least floor(masters-with-slots / 2) + 1 distinct
//! masters (the decider counting itself if it is a master), each younger than
//! 2 x node_timeout, each matching a PFAIL/FAIL its reporter really held. FAILs
//! received by message are traced back to a decision of their sender.
//!
//! The report table is rebuilt from the decider's own events, never taken from what
//! it says it counted (that is kept as evidence only). Where the evidence is thin
//! (redis does not log report refreshes, a reporter's log is missing) the checker
//! leans towards "backed" and says `unknown` rather than accuse falsely.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::run_data::{Ev, NodeEvent, RunData};
use crate::verdict::Valid;

/// Tolerance for stamps taken a little after the core's decision.
const TOL_MS: i64 = 250;

/// The checker's result.
#[derive(Debug, Serialize)]
pub struct FailQuorum {
    pub valid: Valid,
    pub decisions: usize,
    pub received: usize,
    /// Decisions not backed by a quorum (or counting what may not count).
    pub violations: Vec<Value>,
    /// FAILs received from a node that never decided them.
    pub untraced: Vec<Value>,
    /// Why parts could not be judged.
    pub unknown: Vec<String>,
    /// Every decision with its evidence (capped).
    pub evidence: Vec<Value>,
}

#[derive(Clone, Debug)]
struct Report {
    first_local: i64,
    last_local: i64,
    last_t: Option<i64>,
    refreshes_logged: bool,
}

/// Windows during which `node` held PFAIL or FAIL about `about`, by its own events;
/// None if it has no event log. Open ends are `i64::MAX`.
fn held_windows(d: &RunData, node: &str, about: &str) -> Option<Vec<(i64, i64)>> {
    if !d.events.iter().any(|e| e.node == node) {
        return None;
    }
    let mut out = Vec::new();
    let mut open: Option<i64> = None;
    for e in d.events_of(node) {
        let Some(t) = e.t_ms else { continue };
        match &e.ev {
            Ev::PfailSet { about: a }
            | Ev::FailMarked { about: a, .. }
            | Ev::FailReceived { about: a, .. }
                if a == about =>
            {
                open.get_or_insert(t - e.slack_ms);
            }
            Ev::PfailCleared { about: a } | Ev::FailCleared { about: a, .. } if a == about => {
                if let Some(s) = open.take() {
                    out.push((s, t + e.slack_ms));
                }
            }
            // A restart forgets PFAIL.
            Ev::Started { .. } => {
                if let Some(s) = open.take() {
                    out.push((s, t + e.slack_ms));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        // redis does not log PFAIL clearing: the hold ends when anyone logs this
        // reporter's report as back online; else it stays open (lenient).
        let id_of_node: Option<&String> = d
            .names
            .iter()
            .find(|(_, n)| n.as_str() == node)
            .map(|(id, _)| id);
        let end = d
            .events
            .iter()
            .filter(|e| e.t_ms.is_some_and(|t| t > s))
            .find(|e| {
                matches!(&e.ev, Ev::ReportRemoved { reporter, about: a, reason }
                    if Some(reporter) == id_of_node && a == about && reason == "back_online")
            })
            .and_then(|e| e.t_ms.map(|t| t + e.slack_ms))
            .unwrap_or(i64::MAX);
        out.push((s, end));
    }
    Some(out)
}

/// Whether `node` was killed (and so restarted) before `t`.
fn restarted_before(d: &RunData, node: &str, t: i64) -> bool {
    d.faults
        .iter()
        .any(|f| f.kind == "kill" && f.start_ms < t && f.targets.iter().any(|n| n == node))
}

fn overlaps(w: &[(i64, i64)], from: i64, to: i64) -> bool {
    w.iter().any(|(s, e)| *s <= to && *e >= from)
}

/// Masters with slots as `node` saw them: the smallest count among its snapshots in
/// `[from, to]` (smallest = smallest quorum = lenient), else the latest before.
fn masters_with_slots(d: &RunData, node: &str, from: i64, to: i64) -> Option<usize> {
    let count = |l: &Vec<crate::run_data::NodeLine>| {
        l.iter().filter(|n| n.master && n.slot_count() > 0).count()
    };
    let within = d
        .snapshots
        .iter()
        .filter(|s| s.node == node && s.t_ms >= from && s.t_ms <= to)
        .filter_map(|s| s.lines.as_ref())
        .map(count)
        .filter(|c| *c > 0)
        .min();
    within.or_else(|| {
        d.snapshot_before(node, to)
            .and_then(|s| s.lines.as_ref())
            .map(count)
            .filter(|c| *c > 0)
    })
}

/// Runs the checker.
pub fn check(d: &RunData) -> FailQuorum {
    let w = d.node_timeout_ms.saturating_mul(2);
    let mut r = FailQuorum {
        valid: Valid::True,
        decisions: 0,
        received: 0,
        violations: vec![],
        untraced: vec![],
        unknown: vec![],
        evidence: vec![],
    };
    // A partial log would invent violations (a report never seen, a FAIL never
    // decided): judge nothing rather than part.
    if let Some(why) = d.events_unusable() {
        r.valid = Valid::Unknown;
        r.unknown.push(format!("not judged: {why}"));
        return r;
    }
    let snap_gap = 2000;
    for node in &d.nodes {
        let redis = d.kinds.get(node).is_some_and(|k| k == "redis");
        let my_id = d
            .names
            .iter()
            .find(|(_, n)| *n == node)
            .map(|(id, _)| id.clone());
        // Reports held by this node: about -> reporter -> report.
        let mut table: BTreeMap<String, BTreeMap<String, Report>> = BTreeMap::new();
        let mut evs: Vec<&NodeEvent> = d.events_of(node).collect();
        evs.sort_by_key(|e| e.seq);
        for e in evs {
            match &e.ev {
                Ev::Started { .. } => table.clear(),
                Ev::Report {
                    reporter, about, ..
                } => {
                    let rep = table
                        .entry(about.clone())
                        .or_default()
                        .entry(reporter.clone())
                        .or_insert(Report {
                            first_local: e.local_ms,
                            last_local: e.local_ms,
                            last_t: e.t_ms,
                            refreshes_logged: !redis,
                        });
                    rep.last_local = e.local_ms;
                    rep.last_t = e.t_ms;
                }
                Ev::ReportRemoved {
                    reporter, about, ..
                } => {
                    if let Some(m) = table.get_mut(about) {
                        m.remove(reporter);
                    }
                }
                Ev::FailMarked { about, claimed } => {
                    r.decisions += 1;
                    judge(
                        d,
                        node,
                        my_id.as_deref(),
                        e,
                        about,
                        claimed.as_ref(),
                        table.get(about),
                        redis,
                        w,
                        snap_gap,
                        &mut r,
                    );
                }
                Ev::FailReceived { from, about } => {
                    r.received += 1;
                    trace(d, node, e, from, about, &mut r);
                }
                _ => {}
            }
        }
    }
    if redis_without_reports(d) {
        r.unknown.push(format!(
            "redis loglevel {} does not log failure reports (needs verbose or debug)",
            d.loglevel
        ));
    }
    if !r.violations.is_empty() || !r.untraced.is_empty() {
        r.valid = Valid::False;
    } else if !r.unknown.is_empty() {
        r.valid = Valid::Unknown;
    }
    r.evidence.truncate(50);
    r.unknown.truncate(50);
    r
}

fn redis_without_reports(d: &RunData) -> bool {
    d.kinds.values().any(|k| k == "redis") && !matches!(d.loglevel.as_str(), "debug" | "verbose")
}

#[allow(clippy::too_many_arguments)]
fn judge(
    d: &RunData,
    node: &str,
    my_id: Option<&str>,
    e: &NodeEvent,
    about: &str,
    claimed: Option<&crate::run_data::Claimed>,
    reports: Option<&BTreeMap<String, Report>>,
    redis: bool,
    w: i64,
    snap_gap: i64,
    r: &mut FailQuorum,
) {
    let t = e.t_ms;
    let tt = t.unwrap_or(i64::MIN / 4);
    let mut counted = Vec::new();
    let mut rejected = Vec::new();
    let mut unsure = Vec::new();
    for (reporter, rep) in reports.into_iter().flatten() {
        if Some(reporter.as_str()) == my_id {
            continue;
        }
        let name = d.name(reporter);
        // Age on the decider's own clock (what the node itself uses), and on the
        // timeline; the report is young if either says so (clock jumps).
        let age_local = e.local_ms - rep.last_local;
        let age_t = match (t, rep.last_t) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        let mut young = age_local <= w + TOL_MS || age_t.is_some_and(|a| a <= w + TOL_MS);
        if !young && !rep.refreshes_logged {
            // redis does not log refreshes: young if the reporter held PFAIL/FAIL
            // (and so kept gossiping it) within the validity window.
            match d
                .names
                .get(reporter)
                .and_then(|n| held_windows(d, n, about))
            {
                Some(hw) if t.is_some() => {
                    young = overlaps(&hw, tt - w - TOL_MS, tt + TOL_MS);
                }
                _ => {
                    unsure.push(json!({"reporter": name, "why": "no refresh evidence"}));
                    young = true;
                }
            }
        }
        if !young {
            rejected.push(json!({"reporter": name, "why": "older than 2 x node_timeout", "age_ms": age_t.unwrap_or(age_local), "first_local_ms": rep.first_local}));
            continue;
        }
        let is_master = t.is_none_or(|_| {
            d.seen_as_master(reporter, tt - w - snap_gap, tt + snap_gap)
                || !d.seen(reporter, tt - w - snap_gap, tt + snap_gap)
        });
        if !is_master {
            rejected.push(json!({"reporter": name, "why": "not a master"}));
            continue;
        }
        // The report must echo a PFAIL/FAIL the reporter really held (gossip may
        // arrive late: a paused receiver handles it after resuming).
        if let (Some(rt), Some(rn)) = (rep.last_t, d.names.get(reporter)) {
            // A decider that was paused reads on SIGCONT what its socket buffered
            // during the whole pause: the gossip may be as old as the pause.
            let mut from = rt - 2 * w - 5000;
            if let Some(p) = d
                .faults
                .iter()
                .filter(|f| f.kind == "pause" && f.targets.iter().any(|x| x == node))
                .filter(|f| f.stop_ms.is_some_and(|s| s <= rt + TOL_MS && s >= from))
                .map(|f| f.start_ms)
                .min()
            {
                from = from.min(p - TOL_MS);
            }
            match held_windows(d, rn, about) {
                Some(hw) => {
                    if !overlaps(&hw, from, rt + TOL_MS + 1000) {
                        // A restarted node reloads FAIL flags from nodes.conf without
                        // logging them: then the log cannot prove it held nothing.
                        if restarted_before(d, rn, rt) {
                            unsure.push(json!({"reporter": name, "why": "restarted; FAIL flags may come from nodes.conf"}));
                        } else {
                            rejected.push(json!({"reporter": name, "why": "reporter never held PFAIL/FAIL then"}));
                            continue;
                        }
                    }
                }
                None => unsure.push(json!({"reporter": name, "why": "reporter has no event log"})),
            }
        }
        counted.push(name);
    }
    let self_master = match (t, my_id) {
        (Some(t), Some(id)) => d.seen_as_master(id, t - 2 * snap_gap, t + snap_gap),
        _ => claimed.and_then(|c| c.counted_self).unwrap_or(true),
    };
    let size = match t {
        Some(t) => masters_with_slots(d, node, t - w, t)
            .or_else(|| claimed.and_then(|c| c.masters_with_slots.map(|m| m as usize))),
        None => claimed.and_then(|c| c.masters_with_slots.map(|m| m as usize)),
    };
    let size = match (size, claimed.and_then(|c| c.masters_with_slots)) {
        (Some(s), Some(c)) => Some(s.min(c as usize)),
        (s, _) => s,
    };
    let Some(size) = size else {
        r.unknown.push(format!(
            "{node} FAIL {} at {t:?}: masters with slots unknown",
            d.name(about)
        ));
        return;
    };
    let needed = size / 2 + 1;
    let backing = counted.len() + usize::from(self_master);
    // What the node says it counted but may not count.
    let mut counted_invalid = Vec::new();
    if let Some(c) = claimed {
        for id in &c.reporters {
            let n = d.name(id);
            if !counted.contains(&n) {
                counted_invalid.push(n);
            }
        }
        if c.counted_self == Some(true) && !self_master && t.is_some() {
            counted_invalid.push(format!("{node} (itself, not a master)"));
        }
    }
    let ev = json!({
        "decider": node,
        "about": d.name(about),
        "t_ms": t,
        "quorum_needed": needed,
        "masters_with_slots": size,
        "decider_is_master": self_master,
        "reports_counted": counted,
        "reports_rejected": rejected,
        "unsure": unsure,
        "node_claimed": claimed.map(|c| json!({
            "reporters": c.reporters.iter().map(|x| d.name(x)).collect::<Vec<_>>(),
            "quorum_needed": c.quorum_needed,
            "counted_self": c.counted_self,
        })),
        "counted_invalid": counted_invalid,
    });
    if backing < needed {
        if unsure.is_empty() && t.is_some() {
            let mut v = ev.clone();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "effect".into(),
                    json!(format!(
                        "FAIL without quorum: {backing} of {needed} needed masters' reports"
                    )),
                );
            }
            r.violations.push(v);
        } else {
            r.unknown.push(format!(
                "{node} FAIL {} at {t:?}: {backing}/{needed} backing with unverifiable reports",
                d.name(about)
            ));
        }
    } else if !counted_invalid.is_empty() && !redis {
        let mut v = ev.clone();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "effect".into(),
                json!(format!(
                    "counted reports that may not count: {counted_invalid:?}"
                )),
            );
        }
        r.violations.push(v);
    }
    r.evidence.push(ev);
}

/// A FAIL received from `from` must follow a FAIL that `from` decided.
fn trace(d: &RunData, node: &str, e: &NodeEvent, from: &str, about: &str, r: &mut FailQuorum) {
    let Some(sender) = d.names.get(from) else {
        r.unknown.push(format!(
            "{node}: FAIL about {} from unknown node {from}",
            d.name(about)
        ));
        return;
    };
    if !d.events.iter().any(|x| &x.node == sender) {
        r.unknown.push(format!("{sender} has no event log"));
        return;
    }
    let Some(t) = e.t_ms else {
        r.unknown
            .push(format!("{node}: FAIL received, no timeline"));
        return;
    };
    let slack = e.slack_ms + 2000;
    let found = d.events_of(sender).any(|x| {
        matches!(&x.ev, Ev::FailMarked { about: a, .. } if a == about)
            && x.t_ms.is_some_and(|xt| xt - x.slack_ms <= t + slack)
    });
    if !found {
        r.untraced.push(json!({
            "receiver": node, "from": sender, "about": d.name(about), "t_ms": t,
            "effect": "FAIL message without a FAIL decision by its sender",
        }));
    }
}
