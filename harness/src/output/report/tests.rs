//! Report tests on synthetic run folders (tempdirs): data extraction, the page's
//! sections, missing and malformed files, the index, and page size for a huge history.

use super::data::{self, Loaded, MarkKind, Outcome};
use super::*;
use hearsay_checkers::history::{History, Op, OpType, OpValue, Process};
use hearsay_checkers::run_data::RunData;
use serde_json::json;
use std::path::Path;

const ID1: &str = "1111111111111111111111111111111111111111";
const ID2: &str = "2222222222222222222222222222222222222222";
const ID3: &str = "3333333333333333333333333333333333333333";
const MONO0: i64 = 1_000_000;

fn op(index: u64, t_ms: f64, process: Value, kind: &str, f: &str, value: Value) -> String {
    json!({"index": index, "time": (t_ms * 1e6) as u64, "process": process, "type": kind, "f": f, "value": value})
        .to_string()
}

fn nodes_text(myself: &str, owner_of_all: Option<&str>) -> String {
    let mut s = String::new();
    for (i, id) in [ID1, ID2, ID3].iter().enumerate() {
        let flags = if *id == myself {
            "myself,master"
        } else {
            "master"
        };
        let slots = match owner_of_all {
            Some(o) if o == *id => "0-16383".to_string(),
            Some(_) => String::new(),
            None => ["0-5460", "5461-10922", "10923-16383"][i].to_string(),
        };
        s.push_str(&format!(
            "{id} 10.0.0.{}:7000@17000 {flags} - 0 0 {} connected {slots}\n",
            i + 1,
            i + 1
        ));
    }
    s
}

/// A 10 s run of 3 hearsay nodes: a partition 4–7 s, n1 decides FAIL about n3, n2
/// hears it and wins an election; n1's snapshot disagrees 5–6 s, n3 is silent at 6 s.
fn synthetic_run(dir: &Path) {
    let w = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    w(
        "test.json",
        json!({
            "name": "set-hearsay", "seed": 7, "start": "20261122T215136Z",
            "options": {"target": "hearsay", "workload": "set", "nemesis": "partition",
                "time_limit": 10.0, "concurrency": 2, "nodes": 3, "node_timeout": 2000,
                "rate": 50.0, "seed": 7, "results_dir": "results", "replicas": 0,
                "node_bug": ["fail-without-quorum"], "linearizable": false},
            "versions": {"harness": "0.1.0"}
        })
        .to_string(),
    );
    w(
        "timebase.json",
        json!({"mono_ms": MONO0, "wall_ms": 1_795_384_298_797i64}).to_string(),
    );
    let mut h = Vec::new();
    let mut idx = 0;
    let mut push = |line: String| {
        h.push(line);
    };
    let mut t = 0.0;
    let mut proc1 = 1u64;
    while t < 10_000.0 {
        for p in [0u64, 1] {
            let process = if p == 1 { proc1 } else { 0 };
            let v = json!({"key": "k", "element": idx});
            push(op(
                idx,
                t + p as f64,
                json!(process),
                "invoke",
                "add",
                v.clone(),
            ));
            idx += 1;
            let during = (4000.0..7000.0).contains(&t);
            let kind = if p == 1 && (5000.0..5100.0).contains(&t) {
                "info"
            } else if during {
                "fail"
            } else {
                "ok"
            };
            push(op(idx, t + p as f64 + 3.0, json!(process), kind, "add", v));
            idx += 1;
            if kind == "info" {
                proc1 += 2;
            }
        }
        t += 100.0;
    }
    let grudge = json!({"refuses-from": {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}});
    for (t, f, v) in [
        (4000.0, "start-partition", json!({"planned": {}})),
        (
            4010.0,
            "start-partition",
            json!({"targets": grudge, "verified": true, "resolved": {}}),
        ),
        (7000.0, "stop-partition", json!({})),
        (7005.0, "stop-partition", json!({"verified": true})),
        (10_000.0, "heal-all", json!({})),
        (10_200.0, "recovered", json!({"converged": true, "ms": 200})),
    ] {
        push(op(idx, t, json!("nemesis"), "info", f, v));
        idx += 1;
    }
    // One op still pending at the end.
    push(op(
        idx,
        9_990.0,
        json!(0),
        "invoke",
        "read",
        json!({"key": "k"}),
    ));
    // Lines in time order with consecutive indexes, as the recorder writes them.
    let mut lines: Vec<Value> = h.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines.sort_by_key(|v| v["time"].as_u64().unwrap_or(0));
    let h: Vec<String> = lines
        .into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            v["index"] = json!(i);
            v.to_string()
        })
        .collect();
    w("history.jsonl", h.join("\n") + "\n");
    let mut snaps = Vec::new();
    for s in 0..=10 {
        for (name, id) in [("n1", ID1), ("n2", ID2), ("n3", ID3)] {
            let t = (s * 1000 + 10) as u64 * 1_000_000;
            let line = if name == "n3" && s == 6 {
                json!({"time": t, "node": name, "error": "timeout"})
            } else if name == "n1" && (5..=6).contains(&s) {
                json!({"time": t, "node": name, "nodes": nodes_text(id, Some(ID1))})
            } else {
                json!({"time": t, "node": name, "nodes": nodes_text(id, None)})
            };
            snaps.push(line.to_string());
        }
    }
    w("snapshots.jsonl", snaps.join("\n") + "\n");
    let ev = |me: &str, t_ms: i64, rest: Value| {
        let mut v =
            json!({"me": me, "wall_ms": 1_795_384_298_797i64 + t_ms, "mono_ms": MONO0 + t_ms});
        if let (Some(o), Some(r)) = (v.as_object_mut(), rest.as_object()) {
            for (k, x) in r {
                o.insert(k.clone(), x.clone());
            }
        }
        v.to_string()
    };
    std::fs::create_dir_all(dir.join("nodes/n1")).unwrap();
    std::fs::create_dir_all(dir.join("nodes/n2")).unwrap();
    std::fs::create_dir_all(dir.join("nodes/n3")).unwrap();
    let n1 = [
        ev(ID1, 4500, json!({"event": "pfail_set", "node": ID3})),
        ev(
            ID1,
            5000,
            json!({"event": "fail_marked", "about": ID3, "reporters": [{"id": ID1}, {"id": ID2}], "quorum_needed": 2}),
        ),
        ev(
            ID1,
            5600,
            json!({"event": "vote_granted", "to": ID2, "master": ID3, "epoch": 5}),
        ),
        ev(
            ID1,
            5700,
            json!({"event": "vote_refused", "to": ID2, "reason": "already_voted", "epoch": 5, "req_epoch": 5}),
        ),
        ev(ID1, 7500, json!({"event": "fail_cleared", "about": ID3})),
        ev(ID1, 60_000, json!({"event": "pfail_set", "node": ID2})),
    ];
    std::fs::write(dir.join("nodes/n1/events.jsonl"), n1.join("\n") + "\n").unwrap();
    let n2 = [
        ev(
            ID2,
            5100,
            json!({"event": "fail_received", "from": ID1, "about": ID3}),
        ),
        ev(ID2, 5500, json!({"event": "election_started", "epoch": 5})),
        ev(ID2, 5800, json!({"event": "election_won"})),
        "{not json".to_string(),
    ];
    std::fs::write(dir.join("nodes/n2/events.jsonl"), n2.join("\n") + "\n").unwrap();
    w(
        "results.json",
        json!({
            "valid": false,
            "set": {"valid": false, "lost": {"count": 1, "examples": [17]}, "acknowledged_count": 150},
            "protocol": {"valid": true,
                "fail-quorum": {"valid": true, "decisions": 1, "evidence": [{"decider": "n1", "about": "n3", "reports_counted": ["n1", "n2"], "quorum_needed": 2}]},
                "convergence": {"valid": true, "heal_ms": 10_000, "converged_at_ms": 10_010, "convergence_ms": 10}},
            "perf": {"valid": true, "latency_ok": {"add": {"count": 100, "p50": 3.0, "p90": 3.0, "p99": 3.0, "max": 3.0}},
                "overall": {"ok": 100, "fail": 60, "info": 1, "availability": 0.62, "throughput": 10.0, "seconds": 10.0},
                "by_fault": {"partition": {"ok": 0, "fail": 60, "info": 1, "availability": 0.0, "throughput": 0.0, "seconds": 3.0}}}
        })
        .to_string(),
    );
}

#[test]
fn extracts_ops_faults_detection_and_slot_maps() {
    let d = tempfile::tempdir().unwrap();
    synthetic_run(d.path());
    let l = Loaded::load(d.path()).unwrap();
    // 100 rounds x 2 processes + the pending read.
    assert_eq!(l.ops.len(), 201);
    assert_eq!(l.fs, vec!["add".to_string(), "read".to_string()]);
    let count = |o: Outcome| l.ops.iter().filter(|x| x.outcome == o).count();
    assert_eq!(count(Outcome::Pending), 1);
    assert_eq!(count(Outcome::Info), 1);
    assert_eq!(count(Outcome::Fail), 59);
    assert_eq!(count(Outcome::Ok), 140);
    let first = l.ops.first().unwrap();
    assert!((first.latency_ms().unwrap() - 3.0).abs() < 1e-6);
    // The info op moved process 1 to process 3.
    let rows = data::rows(&l);
    assert_eq!(rows.labels, vec!["p0", "p1", "p3"]);
    assert_eq!(l.verdict(), Some(hearsay_checkers::Valid::False));

    // Faults: one partition 4.0–7.0 s, named by its sides.
    let bars = svg::fault_bars(&l.run.faults, l.end_ms);
    assert_eq!(bars.len(), 1);
    assert_eq!(bars[0].label, "partition: n1 | n2 n3");
    assert_eq!((bars[0].start_ms, bars[0].stop_ms), (4000.0, 7000.0));

    // n1: PFAIL about n3 4.5–5.0 s, then FAIL 5.0–7.5 s; a vote granted and refused.
    let obs = data::observers(&l.run);
    let n1 = obs.iter().find(|o| o.node == "n1").unwrap();
    assert_eq!(n1.kind, "hearsay");
    let spans: Vec<(bool, f64, Option<f64>)> = n1
        .spans
        .iter()
        .filter(|s| s.about == "n3")
        .map(|s| (s.fail, s.start_ms, s.end_ms))
        .collect();
    assert_eq!(
        spans,
        vec![(false, 4500.0, Some(5000.0)), (true, 5000.0, Some(7500.0))]
    );
    assert!(
        n1.spans[1].how.contains("reporters n1 n2, quorum 2"),
        "{:?}",
        n1.spans[1]
    );
    let kinds: Vec<MarkKind> = n1.marks.iter().map(|(_, m)| m.kind).collect();
    assert!(kinds.contains(&MarkKind::VoteGranted) && kinds.contains(&MarkKind::VoteRefused));
    let refused = n1
        .marks
        .iter()
        .find(|(_, m)| m.kind == MarkKind::VoteRefused)
        .unwrap();
    assert_eq!(refused.1.text, "vote refused to n2: already_voted");
    let n2 = obs.iter().find(|o| o.node == "n2").unwrap();
    assert_eq!(n2.spans.len(), 1);
    assert!(n2.spans[0].fail && n2.spans[0].end_ms.is_none());
    assert!(n2
        .marks
        .iter()
        .any(|(_, m)| m.kind == MarkKind::ElectionWon));
    // n3 has no events.jsonl, and n2's bad line is reported.
    assert!(
        l.notes
            .iter()
            .any(|n| n.contains("nodes/n3/events.jsonl: missing")),
        "{:?}",
        l.notes
    );
    assert!(l
        .notes
        .iter()
        .any(|n| n.contains("nodes/n2/events.jsonl: line 4 is not JSON")));

    // Slot maps: 11 rounds; two maps at 5 s and 6 s; n3 silent at 6 s.
    let sm = data::slot_maps(&l.run);
    assert_eq!(sm.rounds.len(), 11);
    let distinct: Vec<usize> = sm.rounds.iter().map(|r| r.distinct()).collect();
    assert_eq!(distinct, vec![1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1]);
    assert_eq!(sm.rounds[6].silent(), 1);
    assert_eq!(sm.maps[0], "0-5460 n1, 5461-10922 n2, 10923-16383 n3");
    assert_eq!(sm.maps[1], "0-16383 n1");

    // Roles from each node's own snapshots: all masters, n3's silent round ignored.
    let r = data::roles(&l.run, "n3", l.end_ms);
    assert_eq!(r, vec![("master".to_string(), 10.0, l.end_ms)]);

    // Throughput: 2 completions per 100 ms = 20/s, split by outcome.
    let tp = data::throughput(&l);
    let total: u32 = tp.counts.iter().flat_map(|c| c.iter()).sum();
    assert_eq!(total, 200);
}

#[test]
fn page_has_every_section_in_order_and_nothing_external() {
    let d = tempfile::tempdir().unwrap();
    synthetic_run(d.path());
    let path = write_report(d.path()).unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    let mut last = 0;
    for id in SECTIONS {
        let at = html
            .find(&format!(r#"id="{id}""#))
            .unwrap_or_else(|| panic!("section {id} missing"));
        assert!(at > last, "section {id} out of order");
        last = at;
    }
    assert!(html.contains(r#"<div class="verdict-word">INVALID</div>"#));
    assert!(html.contains(&format!("hearsay replay {}", d.path().display())));
    // The run line is summary.json's (planted bugs kept).
    assert!(
        html.contains("hearsay run --target hearsay --workload set --nemesis partition"),
        "run line"
    );
    assert!(html.contains("--node-bug fail-without-quorum"));
    assert!(html.contains("--rate 50"));
    assert!(html.contains("--seed 7"));
    // Self-contained: no script, no external resource.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src="));
    assert!(!html
        .replace("http://www.w3.org/2000/svg", "")
        .contains("http"));
    // Marks carry tooltips; faults are labelled; heal and convergence are marked.
    assert!(html.contains("<title>p3 add"), "op tooltips");
    assert!(html.contains("partition: n1 | n2 n3"));
    assert!(html.contains("FAIL marked by itself: reporters n1 n2, quorum 2 about n3"));
    assert!(
        html.contains(">final heal 10.0 s · converged 10.0 s (+10 ms)<"),
        "heal and convergence marked"
    );
    assert!(html.contains(r#"id="ev-set""#) && html.contains(r#"id="ev-fail-quorum""#));
    assert!(html.contains("0-16383 n1"), "slot map legend");
    // The event outside the run (60 s) is not drawn but counted.
    assert!(html.contains("1 events fall outside"));
    assert!(html.contains(r#"id="notes""#));
}

#[test]
fn missing_and_malformed_files_are_reported_not_fatal() {
    // Nothing at all.
    let d = tempfile::tempdir().unwrap();
    let l = Loaded::load(d.path()).unwrap();
    let html = render(&l);
    for id in SECTIONS {
        assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    assert!(html.contains("NOT JUDGED"));
    for what in [
        "test.json: missing",
        "results.json: missing",
        "history.jsonl",
        "snapshots.jsonl: missing",
    ] {
        assert!(
            l.notes.iter().any(|n| n.contains(what)),
            "{what}: {:?}",
            l.notes
        );
    }
    assert!(html.contains("No client ops"));
    assert!(html.contains("never judged"));

    // Malformed: a bad line in the middle of the history, bad JSON in results.json,
    // garbage snapshots and events.
    let d = tempfile::tempdir().unwrap();
    synthetic_run(d.path());
    let h = std::fs::read_to_string(d.path().join("history.jsonl")).unwrap();
    let mut lines: Vec<&str> = h.lines().collect();
    lines.insert(10, "{\"index\": oops");
    std::fs::write(d.path().join("history.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(d.path().join("results.json"), "{\"valid\": tru").unwrap();
    std::fs::write(d.path().join("snapshots.jsonl"), "xx\n{\"time\":\"no\"}\n").unwrap();
    std::fs::write(d.path().join("test.json"), "[1,2]").unwrap();
    std::fs::write(
        d.path().join("nodes/n1/events.jsonl"),
        [0xffu8, 0xfe, b'\n'],
    )
    .unwrap();
    let l = Loaded::load(d.path()).unwrap();
    assert!(
        l.notes.iter().any(|n| n.contains("line 11")),
        "{:?}",
        l.notes
    );
    assert!(l
        .notes
        .iter()
        .any(|n| n.contains("results.json: not valid JSON")));
    let html = render(&l);
    assert!(html.contains("NOT JUDGED"));
    assert!(html.contains("cannot rebuild the run command"));

    // A cut last line (killed run) is noted.
    let d = tempfile::tempdir().unwrap();
    synthetic_run(d.path());
    let mut h = std::fs::read_to_string(d.path().join("history.jsonl")).unwrap();
    h.push_str("{\"index\":99");
    std::fs::write(d.path().join("history.jsonl"), h).unwrap();
    let l = Loaded::load(d.path()).unwrap();
    assert!(l.notes.iter().any(|n| n.contains("cut short")));

    // Not a folder: a clear error.
    let e = write_report(&d.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains("not a run folder"), "{e}");
}

#[test]
fn index_lists_runs_newest_first_with_relative_links() {
    let res = tempfile::tempdir().unwrap();
    let a = res.path().join("set-hearsay/20261122T100000Z-seed1");
    let b = res.path().join("set-redis/20261122T110000Z-seed2");
    let c = res.path().join("set-redis/20261122T090000Z-seed3");
    for d in [&a, &b, &c] {
        std::fs::create_dir_all(d).unwrap();
    }
    synthetic_run(&a);
    write_report(&a).unwrap();
    std::fs::write(
        b.join("test.json"),
        json!({"name": "set-redis", "seed": 2, "start": "20261122T110000Z", "options": {"target": "redis"}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        b.join("results.json"),
        r#"{"valid": true, "perf": {"overall": {"seconds": 30.2}}}"#,
    )
    .unwrap();
    std::fs::write(c.join("history.jsonl"), "").unwrap();
    std::fs::write(c.join("run-info.json"), r#"{"error": "node n1 exited"}"#).unwrap();
    std::os::unix::fs::symlink(
        "set-redis/20261122T110000Z-seed2",
        res.path().join("latest"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "20261122T110000Z-seed2",
        res.path().join("set-redis/latest"),
    )
    .unwrap();
    let cmp = res.path().join("compare/20261122T120000Z-seed7");
    std::fs::create_dir_all(&cmp).unwrap();
    std::fs::write(cmp.join("compare.html"), "<html></html>").unwrap();
    let runs = index::scan(res.path()).unwrap();
    let order: Vec<&str> = runs.iter().map(|r| r.seed.as_str()).collect();
    assert_eq!(
        order,
        vec!["7", "2", "?"],
        "newest first, links not listed twice"
    );
    let path = write_index(res.path()).unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    assert!(html.contains(r#"<a href="set-hearsay/20261122T100000Z-seed1/report.html">report</a>"#));
    assert!(html.contains(r#"<span class="badge valid">valid</span>"#));
    assert!(html.contains(r#"<span class="badge invalid">INVALID</span>"#));
    assert!(html.contains(r#"<span class="badge unknown">error</span>"#));
    assert!(html.contains("30 s"));
    assert!(html.contains("2026-11-22 11:00:00 UTC"));
    // The synthetic run says it started at 21:51, after the 11:00 one.
    assert!(html.find("seed1").unwrap() < html.find("seed2").unwrap());
    assert!(
        html.contains(r#"<a href="compare/20261122T120000Z-seed7/compare.html">"#),
        "compare tables linked"
    );
    assert!(write_index(&res.path().join("nope")).is_err());
}

/// A million history lines (500k ops over an hour, 40 processes) gives a page of
/// bounded size, quickly.
#[test]
fn million_line_history_gives_a_bounded_page() {
    let n_ops = 500_000u64;
    let mut ops = Vec::with_capacity(2 * n_ops as usize + 2);
    let mut state = 0x2545f4914f6cdd1du64;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let span_ns = 3_600_000_000_000u64;
    for i in 0..n_ops {
        let t = i * (span_ns / n_ops);
        let lat = 100_000 + rnd() % 50_000_000;
        let r = rnd() % 100;
        let kind = if r < 85 {
            OpType::Ok
        } else if r < 97 {
            OpType::Fail
        } else {
            OpType::Info
        };
        let process = Process::Client(i % 40);
        let f = if i % 10 == 0 { "read" } else { "add" };
        for (k, at) in [(OpType::Invoke, t), (kind, t + lat)] {
            ops.push(Op {
                index: ops.len() as u64,
                time: at,
                process,
                kind: k,
                f: f.to_string(),
                value: OpValue::NULL,
                node: None,
                error: None,
            });
        }
    }
    ops.sort_by_key(|o| o.time);
    let history = History {
        ops,
        truncated_tail: false,
    };
    assert_eq!(history.ops.len(), 1_000_000);
    let t0 = std::time::Instant::now();
    let run = RunData::build(&Value::Null, None, &history, "", &[]);
    let l = Loaded::from_parts(Path::new("/tmp/x"), Value::Null, None, history, run, vec![]);
    let html = render(&l);
    let took = t0.elapsed();
    eprintln!("1M-line history: page {} bytes in {took:?}", html.len());
    assert!(html.len() < 15_000_000, "page is {} bytes", html.len());
    assert!(html.contains("drawn in 2 px bins"));
    // Debug builds are ~10x slower than release; the bound is for release.
    if !cfg!(debug_assertions) {
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }
}

/// redis logs no PFAIL clear: the span ends at the first snapshot of the observer
/// that no longer flags the node, and a later PFAIL starts a new span.
#[test]
fn redis_pfail_ends_where_snapshots_stop_flagging() {
    let test = json!({"options": {"target": "redis"}});
    let timebase = json!({"mono_ms": 0, "wall_ms": 1_000_000});
    let ev = |t: i64, about: &str| {
        json!({"source": "redis-log", "event": "pfail_set", "about": about, "wall_ms": 1_000_000 + t})
            .to_string()
    };
    let events = [ev(4500, ID3), ev(8500, ID3)].join("\n");
    let snap = |t: u64, flag: &str| {
        let text = format!(
            "{ID1} 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n{ID3} 10.0.0.3:7000@17000 {flag} - 0 0 3 connected\n"
        );
        json!({"time": t * 1_000_000, "node": "n1", "nodes": text}).to_string()
    };
    let snaps = [
        snap(4000, "master"),
        snap(5000, "master,fail?"),
        snap(6000, "master"),
        snap(9000, "master,fail?"),
    ]
    .join("\n");
    let run = RunData::build(
        &test,
        Some(&timebase),
        &History::default(),
        &snaps,
        &[("n1".to_string(), Some(events))],
    );
    let obs = data::observers(&run);
    let spans: Vec<(f64, Option<f64>)> = obs[0]
        .spans
        .iter()
        .map(|s| (s.start_ms, s.end_ms))
        .collect();
    assert_eq!(spans, vec![(4500.0, Some(6000.0)), (8500.0, None)]);
    assert!(obs[0].spans[0]
        .ended_by
        .contains("redis logs no PFAIL clear"));
}

/// The run's hook: a folder that cannot be reported or indexed only warns.
#[test]
fn after_run_never_fails_the_run() {
    let d = tempfile::tempdir().unwrap();
    after_run(&d.path().join("gone"), &d.path().join("also-gone"));
    // A real run folder gets its page, and the results folder its index.
    let run = d.path().join("t/r");
    std::fs::create_dir_all(&run).unwrap();
    synthetic_run(&run);
    after_run(&run, d.path());
    assert!(run.join("report.html").is_file());
    assert!(d.path().join("index.html").is_file());
}
