//! The judgement of a run folder: reads test.json, history.jsonl, the node logs and
//! the protocol evidence, runs the checkers and writes results.json. Used after every
//! run and by `hearsay check`, so both agree. (summary.json, junit.xml and report.html
//! are views of results.json, written by `output/`.)

use super::folder::write_json;
use super::RunError;
use hearsay_checkers::history::History;
use hearsay_checkers::set::{self as set_checker, SetOptions};
use hearsay_checkers::{Process, Valid};
use hearsay_workloads::any::Workload;
use serde::Serialize;
use serde_json::json;
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
            let text = std::fs::read_to_string(d.join(f)).unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| CRASH_PATTERNS.iter().any(|p| l.contains(p)))
            {
                out.push(json!({"node": node, "file": f, "line": line}));
            }
        }
    }
    out
}

/// The data checker of a workload: (results key, (verdict, result)). A history the
/// checker cannot read (a malformed op) gets `unknown` with the error naming the op.
fn check_workload(
    workload: &str,
    history: &History,
    linearizable: bool,
) -> (&'static str, (Valid, serde_json::Value)) {
    use hearsay_checkers::{counter, linear, list_append};
    fn judged<T: Serialize, E: std::fmt::Display>(
        r: Result<T, E>,
        valid: impl Fn(&T) -> Valid,
    ) -> (Valid, serde_json::Value) {
        match r {
            Ok(r) => (valid(&r), json!(r)),
            Err(e) => (
                Valid::Unknown,
                json!({"valid": Valid::Unknown, "error": e.to_string()}),
            ),
        }
    }
    match Workload::parse(workload) {
        Some(Workload::Set) => {
            let r = set_checker::check(history, SetOptions { linearizable });
            // Per-element analysis (first seen, stable, lost, stale) rides along.
            let full = hearsay_checkers::set_full::check(history);
            let mut j = json!(r);
            j["full"] = json!(full);
            ("set", (r.valid.and(full.valid), j))
        }
        Some(Workload::Register) => (
            "linearizable",
            judged(
                linear::check(history, linear::LinearOptions::default()),
                |r| r.valid,
            ),
        ),
        Some(Workload::Counter) => ("counter", judged(counter::check(history), |r| r.valid)),
        Some(Workload::ListAppend) => (
            "list-append",
            judged(list_append::check(history), |r| r.valid),
        ),
        None => (
            "error",
            (
                Valid::Unknown,
                json!(format!("no checker for workload {workload}")),
            ),
        ),
    }
}

pub fn check_dir(run_dir: &Path) -> Result<Checked, RunError> {
    let test: serde_json::Value = std::fs::read_to_string(run_dir.join("test.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let workload = test["options"]["workload"]
        .as_str()
        .unwrap_or("set")
        .to_string();
    let linearizable = test["options"]["linearizable"].as_bool().unwrap_or(false);
    let history = History::read(&run_dir.join("history.jsonl"))?;
    let mut valid = Valid::True;
    let mut results = serde_json::Map::new();
    let (name, data) = check_workload(&workload, &history, linearizable);
    valid = valid.and(data.0);
    results.insert(name.into(), data.1);
    let perf = hearsay_checkers::perf::check(&history, 1.0);
    results.insert("perf".into(), json!(perf));
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
    let (pv, protocol) = protocol_verdict(run_dir, &test);
    valid = valid.and(pv);
    results.insert("protocol".into(), protocol);
    let complete = recovered.is_some();
    if !complete {
        // A run that died mid-way: the data verdict can still be false, never true.
        valid = valid.and(Valid::Unknown);
    }
    results.insert(
        "nemesis".into(),
        json!({"steps": faults, "unverified": unverified}),
    );
    results.insert("complete-run".into(), json!(complete));
    results.insert(
        "history-truncated-tail".into(),
        json!(history.truncated_tail),
    );
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
fn protocol_verdict(run_dir: &Path, test: &serde_json::Value) -> (Valid, serde_json::Value) {
    match hearsay_checkers::run_data::RunData::load(run_dir) {
        Ok(_) if !run_dir.join("snapshots.jsonl").is_file() => (
            Valid::True,
            json!({"valid": "unknown", "skipped": "no snapshots.jsonl in the run folder"}),
        ),
        Ok(d) => {
            let bound = test["options"]["convergence_bound_ms"].as_i64();
            hearsay_checkers::protocol::check_run(&d, bound)
        }
        Err(e) => (
            Valid::Unknown,
            json!({"valid": "unknown", "error": e.to_string()}),
        ),
    }
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
    }
}
