//! The Sentinel protocol rules, judged from the sentinels' own logs
//! ([`sentinel_log`](crate::sentinel_log)) and the final snapshot round:
//!
//! - **odown-quorum**: a sentinel declares ODOWN only with at least `quorum`
//!   sentinels agreeing (its `#quorum x/y`, x >= the configured quorum, y = it).
//! - **one-vote-per-epoch**: a sentinel votes for at most one leader per epoch
//!   (`+vote-for-leader`), across its restarts too (it flushes the vote to its config
//!   before logging it).
//! - **failover-by-elected-leader**: a sentinel acts on a failover (`+elected-leader`
//!   and every `+failover-state-*` / `+selected-slave` / `+promoted-slave` /
//!   `+failover-end`, and a `+switch-master` it did not learn from a peer) only in an
//!   epoch where the logged votes for it come from a majority of all sentinels and at
//!   least `quorum` of them.
//! - **epochs-never-go-back**: the epochs a sentinel logs (`+new-epoch`) increase
//!   while it runs, and after a restart never fall below an epoch it voted in.
//! - **converges-after-heal**: in the final snapshot round every sentinel names the
//!   same master, that node reports role master, every other data node follows it
//!   with its link up.
//!
//! Evidence: a sentinel log that is missing or damaged makes every rule that reads
//! logs `unknown` (with the reason) unless an intact log alone shows a violation;
//! damaged snapshots make the convergence rule `unknown`. Nothing is inferred from a
//! partial log.

use crate::run_data::json_lines_lenient;
use crate::sentinel_log::{self, SEv, SLog};
use crate::verdict::{Rule, Valid};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Who is who in a Sentinel run (`sentinel.json`).
#[derive(Clone, Debug, Default)]
pub struct Setup {
    pub quorum: u32,
    /// Sentinel node names.
    pub sentinels: Vec<String>,
    /// Data node name -> `ip:port`.
    pub data: BTreeMap<String, String>,
}

impl Setup {
    pub fn from_json(v: &Value) -> Option<Setup> {
        let names = |k: &str| -> Option<BTreeMap<String, String>> {
            Some(
                v[k].as_object()?
                    .iter()
                    .filter_map(|(n, a)| Some((n.clone(), a.as_str()?.to_string())))
                    .collect(),
            )
        };
        Some(Setup {
            quorum: u32::try_from(v["quorum"].as_u64()?).ok()?,
            sentinels: names("sentinels")?.into_keys().collect(),
            data: names("data")?,
        })
    }

    fn majority(&self) -> usize {
        self.sentinels.len() / 2 + 1
    }

    fn node_at(&self, addr: &str) -> String {
        self.data
            .iter()
            .find(|(_, a)| *a == addr)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| addr.to_string())
    }
}

/// Reads `sentinel.json`, each sentinel's `nodes/<name>/log` and the snapshots, and
/// judges. Errors only when sentinel.json is unusable (then nothing can be judged).
pub fn check_dir(dir: &Path) -> (Valid, Value) {
    let setup = std::fs::read(dir.join("sentinel.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| Setup::from_json(&v));
    let Some(setup) = setup else {
        return (
            Valid::Unknown,
            json!({"valid": "unknown", "skipped": "sentinel.json is missing or unreadable: who is a sentinel is unknown"}),
        );
    };
    let logs: Vec<(String, Option<Vec<u8>>)> = setup
        .sentinels
        .iter()
        .map(|n| {
            (
                n.clone(),
                std::fs::read(dir.join("nodes").join(n).join("log")).ok(),
            )
        })
        .collect();
    let snapshots = std::fs::read(dir.join("snapshots.jsonl")).ok();
    check(&setup, &logs, snapshots.as_deref())
}

/// The rules over parsed inputs (what tests call).
pub fn check(
    setup: &Setup,
    logs: &[(String, Option<Vec<u8>>)],
    snapshots: Option<&[u8]>,
) -> (Valid, Value) {
    let mut parsed: BTreeMap<String, SLog> = BTreeMap::new();
    let mut damage: Vec<Value> = Vec::new();
    for (name, bytes) in logs {
        let log = match bytes {
            Some(b) => sentinel_log::parse(b),
            None => SLog {
                events: vec![],
                damage: Some("missing".into()),
            },
        };
        if let Some(d) = &log.damage {
            damage.push(json!({"file": format!("nodes/{name}/log"), "reason": d}));
        }
        parsed.insert(name.clone(), log);
    }
    let damaged = (!damage.is_empty()).then(|| {
        damage
            .iter()
            .map(|d| {
                format!(
                    "{}: {}",
                    d["file"].as_str().unwrap_or(""),
                    d["reason"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
    let ids = sentinel_ids(&parsed);
    let rules = vec![
        finish(odown_quorum(setup, &parsed), &damaged),
        finish(one_vote_per_epoch(&parsed, &ids), &damaged),
        finish(failover_by_elected_leader(setup, &parsed, &ids), &damaged),
        finish(epochs_never_go_back(&parsed), &damaged),
        converges_after_heal(setup, snapshots),
    ];
    let mut valid = Valid::True;
    for r in &rules {
        valid = valid.and(r.valid);
    }
    let coverage: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({"rule": r.rule, "status": r.status(), "cases": r.cases,
                   "unjudged": r.unjudged, "violations": r.violations.len()})
        })
        .collect();
    let failovers = failover_summary(setup, &parsed, &ids);
    (
        valid,
        json!({
            "valid": valid,
            "checker": "sentinel",
            "rules": rules,
            "coverage": coverage,
            "evidence-damage": damage,
            "failovers": failovers,
            "sentinel-ids": ids,
        }),
    )
}

/// A rule judged from the logs: with a damaged log and no violation from the
/// intact ones, it is unknown.
fn finish(mut r: Rule, damaged: &Option<String>) -> Rule {
    if let Some(why) = damaged {
        if r.valid != Valid::False {
            r = r.not_judged(why.clone());
        } else {
            r.notes.push(format!("also damaged: {why}"));
        }
    }
    r
}

/// Sentinel run ID -> node name, from each log's `Sentinel ID is`.
fn sentinel_ids(logs: &BTreeMap<String, SLog>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, log) in logs {
        for l in &log.events {
            if let SEv::Id { id } = &l.ev {
                out.insert(id.clone(), name.clone());
            }
        }
    }
    out
}

fn odown_quorum(setup: &Setup, logs: &BTreeMap<String, SLog>) -> Rule {
    let mut r = Rule::new(
        "odown-quorum",
        "ODOWN declared only with at least `quorum` sentinels agreeing (#quorum x/y: x >= quorum, y = quorum)",
    );
    for (name, log) in logs {
        for l in &log.events {
            let SEv::Odown {
                addr,
                agree,
                quorum,
                on: true,
            } = &l.ev
            else {
                continue;
            };
            r.cases += 1;
            let q = setup.quorum;
            let ok = agree.is_some_and(|a| a >= q) && *quorum == Some(q);
            if !ok {
                r.violate(
                    json!({"sentinel": name, "line": l.line, "master": setup.node_at(addr),
                    "agree": agree, "quorum_logged": quorum, "quorum_configured": q}),
                );
            }
        }
    }
    r
}

fn one_vote_per_epoch(logs: &BTreeMap<String, SLog>, ids: &BTreeMap<String, String>) -> Rule {
    let mut r = Rule::new(
        "one-vote-per-epoch",
        "a sentinel votes for at most one leader per epoch, across its restarts",
    );
    for (name, log) in logs {
        let mut votes: BTreeMap<u64, (String, usize)> = BTreeMap::new();
        for l in &log.events {
            let SEv::VoteForLeader { leader, epoch } = &l.ev else {
                continue;
            };
            r.cases += 1;
            match votes.get(epoch) {
                Some((first, line)) if first != leader => r.violate(json!({
                    "sentinel": name, "epoch": epoch,
                    "first_vote": {"for": ids.get(first).unwrap_or(first), "line": line},
                    "second_vote": {"for": ids.get(leader).unwrap_or(leader), "line": l.line},
                })),
                Some(_) => {}
                None => {
                    votes.insert(*epoch, (leader.clone(), l.line));
                }
            }
        }
    }
    r
}

/// Epoch of the failover a sentinel is running: its last `+new-epoch` before the
/// `+try-failover` that opened it.
struct Attempt {
    epoch: Option<u64>,
    elected: bool,
}

fn failover_by_elected_leader(
    setup: &Setup,
    logs: &BTreeMap<String, SLog>,
    ids: &BTreeMap<String, String>,
) -> Rule {
    let mut r = Rule::new(
        "failover-by-elected-leader",
        "a failover is carried out only by a leader whose logged votes in its epoch come from a majority of all sentinels and at least quorum",
    );
    // (epoch, leader runid) -> voters (node names), from every log's own votes.
    let mut votes: BTreeMap<(u64, String), BTreeSet<String>> = BTreeMap::new();
    for (name, log) in logs {
        for l in &log.events {
            if let SEv::VoteForLeader { leader, epoch } = &l.ev {
                votes
                    .entry((*epoch, leader.clone()))
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    let need = setup.majority().max(setup.quorum as usize);
    for (name, log) in logs {
        let my_id: Option<&String> = ids.iter().find(|(_, n)| *n == name).map(|(i, _)| i);
        let mut epoch: Option<u64> = None;
        let mut attempt: Option<Attempt> = None;
        let mut prev: Option<&SEv> = None;
        for l in &log.events {
            match &l.ev {
                SEv::ProcessStart => {
                    attempt = None;
                }
                SEv::NewEpoch { epoch: e } => epoch = Some(*e),
                SEv::TryFailover { .. } => {
                    attempt = Some(Attempt {
                        epoch,
                        elected: false,
                    })
                }
                SEv::ElectedLeader { .. } => {
                    r.cases += 1;
                    let e = attempt.as_ref().and_then(|a| a.epoch);
                    let voters = match (e, my_id) {
                        (Some(e), Some(id)) => {
                            votes.get(&(e, id.clone())).cloned().unwrap_or_default()
                        }
                        _ => BTreeSet::new(),
                    };
                    let ok = e.is_some() && my_id.is_some() && voters.len() >= need;
                    if !ok {
                        r.violate(json!({"sentinel": name, "line": l.line, "epoch": e,
                            "votes_from": voters, "needed": need,
                            "why": if attempt.is_none() { "elected without a failover attempt (+try-failover)" }
                                   else if my_id.is_none() { "the sentinel's ID is not in its log" }
                                   else { "fewer logged votes than a majority of all sentinels (and quorum)" }}));
                    }
                    if let Some(a) = attempt.as_mut() {
                        a.elected = ok;
                    }
                }
                SEv::FailoverStep { step } => {
                    r.cases += 1;
                    if !attempt.as_ref().is_some_and(|a| a.elected) {
                        r.violate(json!({"sentinel": name, "line": l.line, "step": step,
                            "why": "a failover step without an election won in this attempt"}));
                    }
                }
                SEv::FailoverAbort { .. } => attempt = None,
                SEv::SwitchMaster { from, to } => {
                    let learned = matches!(prev, Some(SEv::ConfigUpdateFrom { .. }));
                    if !learned {
                        r.cases += 1;
                        if !attempt.as_ref().is_some_and(|a| a.elected) {
                            r.violate(json!({"sentinel": name, "line": l.line,
                                "from": setup.node_at(from), "to": setup.node_at(to),
                                "why": "switched master neither as an elected leader nor from a peer's newer config"}));
                        }
                        attempt = None;
                    }
                }
                _ => {}
            }
            prev = Some(&l.ev);
        }
    }
    r
}

fn epochs_never_go_back(logs: &BTreeMap<String, SLog>) -> Rule {
    let mut r = Rule::new(
        "epochs-never-go-back",
        "a sentinel's epochs increase while it runs, and never fall below an epoch it voted in after a restart",
    );
    for (name, log) in logs {
        let mut running: Option<u64> = None;
        let mut voted_max: Option<u64> = None;
        for l in &log.events {
            match &l.ev {
                SEv::ProcessStart => running = None,
                SEv::NewEpoch { epoch } => {
                    r.cases += 1;
                    if let Some(p) = running {
                        if *epoch <= p {
                            r.violate(json!({"sentinel": name, "line": l.line, "epoch": epoch, "previous": p}));
                        }
                    } else if let Some(v) = voted_max {
                        if *epoch <= v {
                            r.violate(json!({"sentinel": name, "line": l.line, "epoch": epoch,
                                "voted_before_restart": v}));
                        }
                    }
                    running = Some(*epoch);
                }
                SEv::VoteForLeader { epoch, .. } => {
                    voted_max = voted_max.max(Some(*epoch));
                    running = running.max(Some(*epoch));
                }
                _ => {}
            }
        }
    }
    r
}

fn converges_after_heal(setup: &Setup, snapshots: Option<&[u8]>) -> Rule {
    let mut r = Rule::new(
        "converges-after-heal",
        "in the final snapshot round every sentinel names the same master, it is a master, every other data node follows it with its link up",
    );
    let Some(bytes) = snapshots else {
        return r.not_judged("snapshots.jsonl is missing".into());
    };
    let (lines, broken) = json_lines_lenient(bytes);
    if let Some(why) = broken {
        return r.not_judged(format!("snapshots.jsonl: {why}"));
    }
    // The last line of each node is the final round (taken after recovery).
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    for (_, v) in lines {
        if let Some(n) = v["node"].as_str() {
            last.insert(n.to_string(), v);
        }
    }
    let mut problems = Vec::new();
    let mut named = BTreeSet::new();
    for s in &setup.sentinels {
        match last.get(s).map(|v| &v["sentinel"]["master"]) {
            Some(Value::String(m)) => {
                named.insert(m.clone());
            }
            _ => problems.push(format!("{s} named no master in the final round")),
        }
    }
    if last.is_empty() {
        return r.not_judged("no snapshot round".into());
    }
    r.cases = 1;
    if named.len() > 1 {
        problems.push(format!(
            "sentinels name different masters: {:?}",
            named.iter().map(|a| setup.node_at(a)).collect::<Vec<_>>()
        ));
    }
    if let Some(m) = named.iter().next().filter(|_| named.len() == 1) {
        for (node, addr) in &setup.data {
            let rep = last.get(node).map(|v| &v["replication"]);
            let role = rep.and_then(|x| x["role"].as_str()).unwrap_or("?");
            if addr == m {
                if role != "master" {
                    problems.push(format!("{node} is named master but reports role {role}"));
                }
                continue;
            }
            let follows = rep.is_some_and(|x| {
                x["role"] == "slave"
                    && format!(
                        "{}:{}",
                        x["master_host"].as_str().unwrap_or(""),
                        x["master_port"].as_u64().unwrap_or(0)
                    ) == *m
                    && x["link"] == "up"
            });
            if !follows {
                problems.push(format!(
                    "{node} does not follow {} (role {role}, master {}:{}, link {})",
                    setup.node_at(m),
                    rep.map(|x| x["master_host"].clone()).unwrap_or(Value::Null),
                    rep.map(|x| x["master_port"].clone()).unwrap_or(Value::Null),
                    rep.map(|x| x["link"].clone()).unwrap_or(Value::Null),
                ));
            }
        }
    }
    if !problems.is_empty() {
        r.violate(json!({"problems": problems}));
    }
    r
}

/// Every master switch a sentinel carried out itself (not learned from a peer), for
/// the report: who, in which epoch, with whose votes, from and to which node.
fn failover_summary(
    setup: &Setup,
    logs: &BTreeMap<String, SLog>,
    ids: &BTreeMap<String, String>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, log) in logs {
        let my_id = ids.iter().find(|(_, n)| *n == name).map(|(i, _)| i.clone());
        let mut epoch = None;
        let mut prev: Option<&SEv> = None;
        for l in &log.events {
            match &l.ev {
                SEv::NewEpoch { epoch: e } => epoch = Some(*e),
                SEv::SwitchMaster { from, to }
                    if !matches!(prev, Some(SEv::ConfigUpdateFrom { .. })) =>
                {
                    let voters: Vec<&String> = logs
                        .iter()
                        .filter(|(_, lg)| {
                            lg.events.iter().any(|x| {
                                matches!(&x.ev, SEv::VoteForLeader { leader, epoch: e }
                                    if Some(leader) == my_id.as_ref() && Some(*e) == epoch)
                            })
                        })
                        .map(|(n, _)| n)
                        .collect();
                    out.push(json!({
                        "sentinel": name, "epoch": epoch, "line": l.line, "wall_ms": l.wall_ms,
                        "from": setup.node_at(from), "to": setup.node_at(to), "votes_from": voters,
                    }));
                }
                _ => {}
            }
            prev = Some(&l.ev);
        }
    }
    out
}
