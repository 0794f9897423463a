//! The protocol checkers' entry: fail-quorum, convergence, epochs, failure detection
//! and elections over one run's [`RunData`](crate::run_data::RunData), with detection
//! latency measured alongside, and the coverage of every rule (how many cases each
//! judged; a rule with none says so).

use crate::run_data::{Ev, RunData};
use crate::verdict::{Rule, Valid};
use serde_json::{json, Value};

/// The protocol checkers together; returns the verdict and results.json's `protocol`.
pub fn check_run(d: &RunData, convergence_bound_ms: Option<i64>) -> (Valid, Value) {
    let fq = crate::fail_quorum::check(d);
    let conv = crate::convergence::check(d, convergence_bound_ms);
    let ep = crate::epochs::check(d);
    let lat = crate::latency::measure(d);
    let detection = crate::detection::check(d);
    let elections = crate::elections::check(d);
    let single_writer = crate::migration::single_writer(d);
    let mut valid = fq
        .valid
        .and(conv.valid)
        .and(ep.valid)
        .and(single_writer.valid);
    for r in detection.iter().chain(&elections) {
        valid = valid.and(r.valid);
    }
    let mut rules = coverage_of_checkers(d, &fq, &conv, &ep);
    rules.extend(detection.iter().cloned());
    rules.extend(elections.iter().cloned());
    rules.push(single_writer.clone());
    rules.extend(membership_rules(d, &conv));
    let coverage: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({"rule": r.rule, "status": r.status(), "cases": r.cases,
                   "unjudged": r.unjudged, "violations": r.violations.len()})
        })
        .collect();
    let v = json!({
        "valid": valid,
        "fail-quorum": fq,
        "convergence": conv,
        "epochs": ep,
        "detection": detection,
        "elections": elections,
        "migration": {
            "single-writer": single_writer,
            "moves": d.moves.len(),
            "moved-keys": d.moves.iter().map(|m| m.keys.len()).sum::<usize>(),
            "left-open": d.moves.iter().filter(|m| m.closed_ms.is_none()).count(),
            "repaired": d.moves.iter().filter(|m| m.repaired_ms.is_some()).count(),
        },
        "detection-latency": lat,
        "coverage": coverage,
        "notes": d.notes.iter().take(20).collect::<Vec<_>>(),
    });
    (valid, v)
}

/// The slot and membership parts of convergence as rules of their own, so the
/// coverage table says when a run moved no slot or changed no member.
fn membership_rules(d: &RunData, conv: &crate::convergence::Convergence) -> Vec<Rule> {
    let changes = d.faults.iter().filter(|f| f.kind == "member").count();
    let mut out = Vec::new();
    for (name, requires, cases, needle) in [
        (
            "slots-settled",
            "after the final heal no master has a slot migrating or importing",
            d.moves.len(),
            "left ",
        ),
        (
            "members-converge",
            "after the final heal every live node knows the same members",
            changes,
            "members differ",
        ),
    ] {
        let mut r = Rule::new(name, requires);
        r.cases = cases;
        if conv.valid == Valid::Unknown {
            r = r.not_judged("convergence was not judged".into());
        } else {
            for p in conv.problems.iter().filter(|p| {
                p.contains(needle) || (needle == "members differ" && p.contains("handshake"))
            }) {
                r.violate(json!(p));
            }
            if cases == 0 {
                r.notes.push(match name {
                    "slots-settled" => {
                        "no slot moved in this run (the final state is still checked)".into()
                    }
                    _ => {
                        "no membership change in this run (the final state is still checked)".into()
                    }
                });
            }
        }
        out.push(r);
    }
    out
}

/// The rules of the older checkers, as coverage entries (their verdicts and evidence
/// stay in their own sections).
fn coverage_of_checkers(
    d: &RunData,
    fq: &crate::fail_quorum::FailQuorum,
    conv: &crate::convergence::Convergence,
    ep: &crate::epochs::Epochs,
) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut rule = |name, requires, cases, broken: Vec<Value>, valid: Valid| {
        let mut r = Rule::new(name, requires);
        r.cases = cases;
        for b in broken {
            r.violate(b);
        }
        if valid == Valid::Unknown && r.valid != Valid::False {
            r.valid = Valid::Unknown;
        }
        out.push(r);
    };
    rule(
        "fail-backed-by-quorum",
        "a FAIL decided only with fresh reports from a majority of masters with slots",
        fq.decisions,
        fq.violations.clone(),
        fq.valid,
    );
    rule(
        "fail-received-traced",
        "a FAIL received only from a node that decided it",
        fq.received,
        fq.untraced.clone(),
        fq.valid,
    );
    let by = |key: &str| -> Vec<Value> {
        ep.violations
            .iter()
            .filter(|v| v.get(key).is_some())
            .cloned()
            .collect()
    };
    rule(
        "one-vote-per-epoch",
        "a master grants at most one vote per epoch",
        ep.votes,
        by("voted_for"),
        ep.valid,
    );
    rule(
        "unique-config-epoch",
        "no two masters hold slots with the same configEpoch",
        ep.rounds_checked,
        by("owners"),
        ep.valid,
    );
    rule(
        "promotion-majority",
        "every promotion backed by votes from a majority of masters with slots in its epoch",
        ep.promotions,
        by("votes_from"),
        ep.valid,
    );
    let epoch_changes = d
        .events
        .iter()
        .filter(|e| matches!(e.ev, Ev::CurrentEpoch { .. } | Ev::Started { .. }))
        .count();
    let mut mono: Vec<Value> = by("last_seen");
    mono.extend(by("loaded"));
    mono.extend(by("previous"));
    rule(
        "epochs-never-go-back",
        "currentEpoch never decreases while a node runs, nor across a restart below an epoch it acted on",
        epoch_changes,
        mono,
        ep.valid,
    );
    let conv_cases = usize::from(conv.heal_ms.is_some() && conv.rounds_after_heal > 0);
    let broken = if conv.valid == Valid::False {
        vec![
            json!({"problems": conv.problems, "convergence_ms": conv.convergence_ms, "bound_ms": conv.bound_ms}),
        ]
    } else {
        vec![]
    };
    rule(
        "converges-after-heal",
        "after the final heal every live node holds the same slot map, each slot with one master, within the bound",
        conv_cases,
        broken,
        conv.valid,
    );
    out
}
