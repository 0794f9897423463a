//! The judgement of a run folder: reads test.json, history.jsonl, the node logs and
//! the protocol evidence, runs the checkers and writes results.json. Used after every
//! run and by `hearsay check`, so both agree. (summary.json, junit.xml and report.html
//! are views of results.json, written by `output/`.)

mod data;

use super::folder::write_json;
use super::RunError;
use hearsay_checkers::claims::Model;
use hearsay_checkers::history::History;
use hearsay_checkers::{Process, Valid};
use hearsay_workloads::any::Workload;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The offline judgement of a run folder: reads test.json and history.jsonl, writes
/// results.json. Used by `run` and by `hearsay check`, so both agree.
pub struct Checked {
    pub valid: Valid,
    pub results: serde_json::Value,
}

/// Lines that mean a server crashed: a Rust panic, or redis's crash report.
const CRASH_PATTERNS: [&str; 3] = [
    "panicked at",
    "=== REDIS BUG REPORT START",
    "Guru Meditation",
];

/// Every crash line in `nodes/*/{log,stdout.log}`: (node, file, line).
pub fn scan_node_logs(run_dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(run_dir.join("nodes")) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs {
        let node = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for f in ["log", "stdout.log"] {
            // Bytes, line by line: whatever surrounds a crash line (invalid UTF-8, a
            // binary dump), the line is found.
            let bytes = std::fs::read(d.join(f)).unwrap_or_default();
            for line in bytes.split(|b| *b == b'\n') {
                if CRASH_PATTERNS
                    .iter()
                    .any(|p| line.windows(p.len()).any(|w| w == p.as_bytes()))
                {
                    let text = String::from_utf8_lossy(line);
                    out.push(json!({"node": node, "file": f, "line": text.trim_end()}));
                }
            }
        }
    }
    out
}

/// Fewer ok client ops than this during the workload judge nothing.
pub const MIN_OK_OPS: usize = 10;

/// Judges a run folder and writes results.json. test.json and history.jsonl must read
/// in full (their errors are the folder's errors, exit 2); every other file that is
/// damaged makes the rules that need it `unknown`, with the reason.
pub fn check_dir(run_dir: &Path) -> Result<Checked, RunError> {
    let test = hearsay_checkers::run_data::read_test_json(run_dir)
        .map_err(|e| RunError::Other(e.to_string()))?;
    let o = &test["options"];
    let workload = o["workload"]
        .as_str()
        .and_then(Workload::parse)
        .ok_or_else(|| {
            RunError::Other(format!(
                "{}: options.workload {} is not one of {}",
                run_dir.join("test.json").display(),
                o["workload"],
                Workload::NAMES
            ))
        })?;
    let model = claims_model(o)
        .map_err(|e| RunError::Other(format!("{}: {e}", run_dir.join("test.json").display())))?;
    let history = History::read(&run_dir.join("history.jsonl"))?;
    let mut valid = Valid::True;
    let mut results = serde_json::Map::new();
    let d = hearsay_checkers::run_data::RunData::load_with(run_dir, &history);
    // Data: the checker, then the claims model on what it found.
    let mut data = data::check_workload(workload, &history, model == Model::Linearizable);
    let target = o["target"].as_str().unwrap_or("");
    let (dv, claims) = data::judge_claims(model, target, &mut data, &d, &history, &test);
    valid = valid.and(dv);
    results.insert(data.name.into(), data.result.clone());
    results.insert("claims".into(), claims);
    results.insert(
        "perf".into(),
        json!(hearsay_checkers::perf::check(&history, 1.0)),
    );
    results.insert(
        "stats".into(),
        json!(hearsay_checkers::stats::stats(&history)),
    );
    let (faults, unverified) = nemesis_steps(&history);
    let recovered = history
        .ops
        .iter()
        .rev()
        .find(|o| o.f == "recovered")
        .map(|o| o.value.json());
    if recovered.as_ref().and_then(|r| r["converged"].as_bool()) == Some(false) {
        results.insert(
            "convergence".into(),
            json!({"valid": false, "detail": recovered}),
        );
        valid = valid.and(Valid::False);
    }
    // Server crashes: a panic or bug report in a node's output makes the run invalid,
    // whatever the data says (Jepsen's log-file-pattern checker).
    let crashes = scan_node_logs(run_dir);
    if !crashes.is_empty() {
        valid = valid.and(Valid::False);
    }
    results.insert("crashes".into(), json!(crashes));
    let (pv, protocol) = protocol_verdict(run_dir, &test, &d);
    valid = valid.and(pv);
    results.insert("protocol".into(), protocol);
    let complete = recovered.is_some();
    let coverage = fault_coverage(&test, &history);
    let reasons = unknown_reasons(run_dir, &history, &d, &coverage, complete, data.ok_ops);
    if !reasons.is_empty() {
        valid = valid.and(Valid::Unknown);
    }
    results.insert(
        "nemesis".into(),
        json!({"steps": faults, "unverified": unverified}),
    );
    results.insert("faults".into(), coverage);
    results.insert("complete-run".into(), json!(complete));
    results.insert(
        "history-truncated-tail".into(),
        json!(history.truncated_tail),
    );
    results.insert("evidence-damage".into(), json!(d.damage));
    results.insert("unknown-because".into(), json!(reasons));
    if let Some(info) = std::fs::read_to_string(run_dir.join("run-info.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        results.insert("run-info".into(), info);
    }
    results.insert("valid".into(), json!(valid));
    let results = serde_json::Value::Object(results);
    write_json(&run_dir.join("results.json"), &results)?;
    Ok(Checked { valid, results })
}

/// Why the evidence cannot carry a confident verdict (each reason makes it unknown).
fn unknown_reasons(
    run_dir: &Path,
    history: &History,
    d: &hearsay_checkers::run_data::RunData,
    coverage: &serde_json::Value,
    complete: bool,
    ok_ops: usize,
) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    if !complete {
        // A run that died mid-way: the data verdict can still be false, never true.
        reasons.push("the run did not complete (no recovery step in the history)".into());
    }
    if history.truncated_tail {
        reasons.push("history.jsonl ends with a cut line".into());
    }
    reasons.extend(coverage["vacuous"].as_str().map(str::to_string));
    if ok_ops < MIN_OK_OPS {
        reasons.push(format!(
            "only {ok_ops} ok client ops during the workload (at least {MIN_OK_OPS} are needed to judge)"
        ));
    }
    // A folder without snapshots is a stored history alone: it has no protocol
    // evidence to be damaged (the protocol checkers say so themselves).
    if run_dir.join("snapshots.jsonl").is_file() {
        for dmg in &d.damage {
            reasons.push(format!("{}: {}", dmg.file, dmg.reason));
        }
    }
    reasons
}

/// The claims model of a run: `options.claims`, else `linearizable` when the older
/// `--linearizable` flag was set, else redis-cluster.
fn claims_model(o: &serde_json::Value) -> Result<Model, String> {
    if o["linearizable"].as_bool() == Some(true) {
        return Ok(Model::Linearizable);
    }
    match o["claims"].as_str() {
        Some(s) => Model::parse(s)
            .ok_or_else(|| format!("options.claims {s:?} is not redis-cluster or linearizable")),
        None => Ok(Model::RedisCluster),
    }
}

/// Which fault kinds the test asked for and which took effect (verified). A run that
/// asked for faults and realised none is vacuous: `vacuous` says why.
fn fault_coverage(test: &serde_json::Value, history: &History) -> serde_json::Value {
    let mut realised: BTreeMap<String, usize> = BTreeMap::new();
    let mut unverified = 0usize;
    for op in history.ops.iter().filter(|o| o.process == Process::Nemesis) {
        let Some(kind) = op.f.strip_prefix("start-") else {
            continue;
        };
        let v = op.value.json();
        match v["verified"].as_bool() {
            Some(true) => *realised.entry(kind.to_string()).or_default() += 1,
            Some(false) => unverified += 1,
            None => {}
        }
    }
    let from_schedule = !test["options"]["schedule_from"].is_null();
    let asked: Vec<String> = if from_schedule {
        vec!["(the schedule replayed)".into()]
    } else {
        test["options"]["nemesis"]
            .as_str()
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty() && *k != "none")
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let total: usize = realised.values().sum();
    let vacuous = (!asked.is_empty() && total == 0).then(|| {
        if from_schedule {
            "the replayed schedule realised no fault".to_string()
        } else {
            format!(
                "no fault of the kinds asked for ({}) took effect",
                asked.join(",")
            )
        }
    });
    json!({"asked": asked, "realised": realised, "unverified": unverified, "vacuous": vacuous})
}

/// Every nemesis start/stop with whether its effect was verified; and the unverified.
fn nemesis_steps(history: &History) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut faults = Vec::new();
    let mut unverified = Vec::new();
    for op in history.ops.iter().filter(|o| o.process == Process::Nemesis) {
        let value = op.value.json();
        if value.get("verified").is_none() {
            continue;
        }
        let verified = value["verified"].as_bool().unwrap_or(false);
        let entry = json!({"index": op.index, "time": op.time, "f": op.f, "verified": verified, "targets": value.get("targets"), "error": op.error});
        if !verified {
            unverified.push(entry.clone());
        }
        faults.push(entry);
    }
    (faults, unverified)
}

/// The protocol checkers: they read the node event logs and snapshots. A folder
/// without snapshots (a stored history alone) has no protocol evidence at all: say
/// so, without turning the data verdict into unknown.
fn protocol_verdict(
    run_dir: &Path,
    test: &serde_json::Value,
    d: &hearsay_checkers::run_data::RunData,
) -> (Valid, serde_json::Value) {
    if !run_dir.join("snapshots.jsonl").is_file() {
        return (
            Valid::True,
            json!({"valid": "unknown", "skipped": "no snapshots.jsonl in the run folder"}),
        );
    }
    match test["options"]["target"].as_str() {
        Some("sentinel") => return hearsay_checkers::sentinel::check_dir(run_dir),
        Some("twemproxy") => {
            return (
                Valid::True,
                json!({"valid": true, "coverage": [],
                       "skipped": "twemproxy has no replication and no failover protocol: no protocol rules to judge"}),
            )
        }
        _ => {}
    }
    let bound = test["options"]["convergence_bound_ms"].as_i64();
    hearsay_checkers::protocol::check_run(d, bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir_with(history_fixture: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests/fixtures");
        std::fs::copy(
            fixtures.join(history_fixture),
            d.path().join("history.jsonl"),
        )
        .unwrap();
        std::fs::write(
            d.path().join("test.json"),
            r#"{"options":{"workload":"set"}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("nodes/n2")).unwrap();
        std::fs::write(
            d.path().join("nodes/n2/log"),
            "1:M 22 Nov 2026 18:58:09.131 * Ready\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn check_dir_judges_a_stored_run_offline() {
        let d = run_dir_with("set-redis-partition-clock-valid.jsonl");
        let c = check_dir(d.path()).unwrap();
        assert_eq!(c.valid, Valid::True, "{}", c.results);
        assert!(d.path().join("results.json").is_file());
        let d = run_dir_with("set-redis-loss-lost-writes.jsonl");
        assert_eq!(check_dir(d.path()).unwrap().valid, Valid::False);
        let d = run_dir_with("set-redis-killed-mid-run.jsonl");
        let c = check_dir(d.path()).unwrap();
        assert_eq!(c.valid, Valid::Unknown);
        assert_eq!(c.results["complete-run"], false);
    }

    #[test]
    fn a_node_panic_makes_the_run_invalid() {
        let d = run_dir_with("set-redis-partition-clock-valid.jsonl");
        std::fs::write(
            d.path().join("nodes/n2/stdout.log"),
            "thread 'main' panicked at node/src/server/mod.rs:10:5:\nboom\n",
        )
        .unwrap();
        let c = check_dir(d.path()).unwrap();
        assert_eq!(c.valid, Valid::False);
        assert_eq!(c.results["crashes"][0]["node"], "n2");
        // The same panic line followed by one byte that is not UTF-8.
        let d = run_dir_with("set-redis-partition-clock-valid.jsonl");
        let mut bytes = b"thread 'main' panicked at node/src/server/mod.rs:10:5:\n".to_vec();
        bytes.push(0xff);
        std::fs::write(d.path().join("nodes/n2/stdout.log"), bytes).unwrap();
        let c = check_dir(d.path()).unwrap();
        assert_eq!(c.valid, Valid::False, "{}", c.results["crashes"]);
    }
}
