//! `hearsay compare` and `hearsay test-all` through the CLI: real (short) runs on
//! hearsay-node and redis-server, the same realised faults in both columns, every
//! table cell filled, junit.xml / summary.json / bus-stats.json in each run folder,
//! and the matrix's files and exit code. Needs root, nft, redis-server and a built
//! hearsay-node; skips without them (fails under CI=true).

mod common;

use hearsay_checkers::history::History;
use hearsay_checkers::Process;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Two clusters at once would starve each other on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

use common::hearsay;

fn realised_faults(run: &Path) -> Vec<serde_json::Value> {
    let h = History::read(&run.join("history.jsonl")).unwrap();
    h.ops
        .iter()
        .filter(|o| o.process == Process::Nemesis && o.f.starts_with("start-"))
        .filter_map(|o| o.value.json().get("resolved").cloned())
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The worse of two exit codes: invalid (1) beats unknown (2) beats valid (0).
fn worse(a: i64, b: i64) -> i64 {
    match (a, b) {
        (1, _) | (_, 1) => 1,
        (2, _) | (_, 2) => 2,
        _ => 0,
    }
}

/// The per-run CI files exist and agree with results.json.
fn assert_run_files(run: &Path) {
    let results = json(&run.join("results.json"));
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["verdict"], results["valid"], "{}", run.display());
    assert_eq!(summary["schema"], 1);
    assert!(summary["reproduce"]
        .as_str()
        .unwrap()
        .starts_with("hearsay run --target"));
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml"));
    let cases = junit.matches("<testcase ").count();
    assert_eq!(
        cases,
        summary["checkers"].as_object().unwrap().len(),
        "one case per checker:\n{junit}"
    );
    // Every live node answered CLUSTER INFO with its bus counters.
    let bus = json(&run.join("bus-stats.json"));
    let nodes = bus["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 6, "{bus}");
    for (n, v) in nodes {
        if v.get("error").is_none() {
            assert!(v["sent"].as_u64().unwrap() > 0, "{n}: {v}");
            assert!(v["received"].as_u64().unwrap() > 0, "{n}: {v}");
        }
    }
}

#[test]
fn compare_runs_both_targets_on_the_same_faults_and_fills_every_cell() {
    if !common::require(true, true, false) || !common::require_hearsay_node() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reg = tempfile::tempdir().unwrap();
    let res = tempfile::tempdir().unwrap();
    let (code, out, err) = hearsay(
        &[
            "compare",
            "--seed",
            "3",
            "--nemesis",
            "pause,kill",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "10",
            "--results-dir",
            res.path().to_str().unwrap(),
        ],
        reg.path(),
    );
    assert!((0..=2).contains(&code), "exit {code}\n{out}\n{err}");
    assert!(out.contains("| | hearsay | redis |"), "{out}\n{err}");
    let cmp_root = res.path().join("compare");
    let cmp: PathBuf = std::fs::read_dir(&cmp_root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("a compare folder");
    for f in ["compare.md", "compare.html", "compare.json"] {
        assert!(cmp.join(f).is_file(), "{f} missing");
    }
    // Every table row has a filled cell for both targets.
    let md = std::fs::read_to_string(cmp.join("compare.md")).unwrap();
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| |"))
        .collect();
    assert!(rows.len() >= 15, "{md}");
    for r in &rows {
        let cells: Vec<&str> = r.split(" | ").collect();
        assert_eq!(cells.len(), 3, "{r}");
        assert!(
            cells.iter().all(|c| !c.trim_matches(['|', ' ']).is_empty()),
            "{r}"
        );
    }
    let data = json(&cmp.join("compare.json"));
    let cols = data["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 2);
    let dirs: Vec<PathBuf> = cols
        .iter()
        .map(|c| PathBuf::from(c["run_dir"].as_str().unwrap_or_else(|| panic!("{c}"))))
        .collect();
    let worst = cols
        .iter()
        .map(|c| c["summary"]["exit_code"].as_i64().unwrap())
        .fold(0, worse);
    assert_eq!(code as i64, worst, "exit code is the worst verdict");
    // The redis run replayed the hearsay run's realised faults.
    let test = json(&dirs[1].join("test.json"));
    assert_eq!(
        test["schedule-from"].as_str().map(PathBuf::from),
        Some(dirs[0].clone())
    );
    let (a, b) = (realised_faults(&dirs[0]), realised_faults(&dirs[1]));
    assert!(!a.is_empty(), "the seed drew faults");
    assert_eq!(a, b, "same realised faults");
    for d in &dirs {
        assert_run_files(d);
    }
    // Links in the HTML page are relative and point at the run folders.
    let html = std::fs::read_to_string(cmp.join("compare.html")).unwrap();
    assert!(html.contains("href=\"../../set-hearsay/"), "{html}");
    assert!(html.contains("href=\"../../set-redis/"));
}

#[test]
fn test_all_runs_a_tiny_matrix_and_exits_with_the_worst_verdict() {
    if !common::require(true, true, false) || !common::require_hearsay_node() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reg = tempfile::tempdir().unwrap();
    let res = tempfile::tempdir().unwrap();
    let (code, out, err) = hearsay(
        &[
            "test-all",
            "--workloads",
            "set",
            "--nemeses",
            "pause",
            "--targets",
            "hearsay,redis",
            "--test-count",
            "1",
            "--time-limit",
            "10",
            "--nemesis-interval",
            "3",
            "--seed",
            "5",
            "--results-dir",
            res.path().to_str().unwrap(),
        ],
        reg.path(),
    );
    assert!((0..=2).contains(&code), "exit {code}\n{out}\n{err}");
    assert!(out.contains("workload"), "a table header: {out}");
    let dir: PathBuf = std::fs::read_dir(res.path().join("matrix"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("a matrix folder");
    let m = json(&dir.join("matrix.json"));
    assert_eq!(m["complete"], true);
    let runs = m["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{m}");
    assert_eq!(m["exit_code"].as_i64(), Some(code as i64));
    let mut worst = 0;
    for r in runs {
        assert_eq!(r["outcome"], "verdict", "{r}");
        let run = PathBuf::from(r["run_dir"].as_str().unwrap());
        assert_run_files(&run);
        worst = worse(worst, r["summary"]["exit_code"].as_i64().unwrap());
    }
    assert_eq!(code as i64, worst);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 2, "{junit}");
    assert!(junit.contains("set-hearsay.pause.seed5"));
    assert!(junit.contains("set-redis.pause.seed5"));
}

#[test]
fn test_all_starts_nothing_beyond_its_time_budget() {
    // Nothing starts, so this needs no privileges.
    let reg = tempfile::tempdir().unwrap();
    let res = tempfile::tempdir().unwrap();
    let (code, out, err) = hearsay(
        &[
            "test-all",
            "--workloads",
            "set,register",
            "--nemeses",
            "kill",
            "--targets",
            "redis",
            "--time-limit",
            "30",
            "--time-budget",
            "20",
            "--seed",
            "1",
            "--results-dir",
            res.path().to_str().unwrap(),
        ],
        reg.path(),
    );
    assert_eq!(code, 2, "no run, no verdict\n{out}\n{err}");
    assert_eq!(out.matches("not run").count(), 2, "{out}");
    let dir: PathBuf = std::fs::read_dir(res.path().join("matrix"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap();
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("skipped=\"2\""), "{junit}");
    let (code, _, err) = hearsay(&["test-all", "--nemeses", "flood"], reg.path());
    assert_eq!(code, 254, "{err}");
}
