//! `summary.json`: a small, stable, machine-readable digest of one run folder (what CI
//! jobs, `hearsay compare` and `hearsay test-all` read), built from `test.json`,
//! `results.json`, `run-info.json` and `bus-stats.json`. Also the per-checker verdicts
//! with their evidence in a few lines, which `junit.xml` shows.
//!
//! Everything here reads files a run already wrote; nothing can change a verdict.

use hearsay_checkers::Valid;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped when a field changes meaning or disappears (adding fields keeps it).
pub const SCHEMA: u32 = 1;

/// Errors reading a run folder for its summary.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One checker's verdict and, when it is not valid, why (evidence in brief).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckerVerdict {
    pub name: String,
    pub valid: Valid,
    /// Evidence summary (invalid) or the reason (unknown); empty when valid.
    pub detail: String,
    /// The checker did not run at all (e.g. no snapshots): a skip, not an error.
    pub skipped: bool,
}

/// count / median / max of a set of millisecond figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub count: u64,
    pub median: Option<i64>,
    pub max: Option<i64>,
}

impl Stat {
    fn of(v: &Value) -> Stat {
        Stat {
            count: v["count"].as_u64().unwrap_or(0),
            median: v["median"].as_i64(),
            max: v["max"].as_i64(),
        }
    }
}

/// Client op completions (final reads included).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ops {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// What the workload's data checker counts as damage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataFigures {
    /// The results key of the data checker (`set`, `linearizable`, `counter`, `list-append`).
    pub checker: String,
    /// Acknowledged writes missing from the final reads (set, list-append).
    pub lost: Option<u64>,
    /// Reads that missed an element acknowledged before they began (set).
    pub stale: Option<u64>,
    /// Keys whose history is not linearizable (register).
    pub nonlinearizable_keys: Option<u64>,
    /// Reads outside the acknowledged/attempted bounds (counter).
    pub bad_reads: Option<u64>,
    /// Anomaly kinds found (list-append).
    pub anomalies: Option<Vec<String>>,
}

/// One node's cluster-bus message counters at the end of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BusNode {
    pub sent: Option<u64>,
    pub received: Option<u64>,
    /// Why the counters are missing (node down, no answer).
    pub error: Option<String>,
}

/// Key figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub ops: Ops,
    /// ok / all client completions.
    pub availability: Option<f64>,
    /// The same, counting only completions while a fault was active.
    pub availability_during_faults: Option<f64>,
    pub data: DataFigures,
    /// Nodes that faults made unreachable (detection is measured for each).
    pub faulted_nodes: u64,
    pub first_pfail_ms: Stat,
    pub fail_decided_ms: Stat,
    pub fail_known_by_all_ms: Stat,
    /// Masters that faults made unreachable, and fault start -> a replica won.
    pub masters_faulted: u64,
    pub failover_ms: Stat,
    /// Final heal -> every live node agrees on the slot map.
    pub convergence_ms: Option<i64>,
    /// Faults started.
    pub faults: Option<u64>,
    /// Per node; empty when the run did not collect bus stats.
    pub bus: BTreeMap<String, BusNode>,
    /// Why some figures could not be read (protocol checkers skipped, ...).
    pub notes: Vec<String>,
}

/// The data verdict under the claims model, in brief.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsFigures {
    /// `redis-cluster` or `linearizable`: what the run's verdict uses.
    pub model: String,
    /// E.g. "valid under redis-cluster claims; 96 lost, all explained by 2 failover(s)
    /// or documented windows; not linearizable".
    pub summary: String,
    pub anomalies: u64,
    pub explained: u64,
    pub unexplained: u64,
    pub redis_cluster: Option<Valid>,
    pub linearizable: Option<Valid>,
    pub by_mechanism: BTreeMap<String, u64>,
    /// What a linearizable (consensus) store would have ruled out, in words.
    pub linearizable_contrast: String,
}

/// One protocol rule's coverage in the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleCoverage {
    pub rule: String,
    /// `held`, `violated`, `no cases`, `not judgeable`, `unknown`.
    pub status: String,
    pub cases: u64,
    pub unjudged: u64,
}

/// summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: u32,
    pub test: String,
    pub target: String,
    pub seed: Option<u64>,
    pub workload: String,
    pub nemesis: String,
    /// UTC `YYYYMMDDTHHMMSSZ`, as in the folder name.
    pub start: Option<String>,
    /// Run start -> end of the run body (before checking).
    pub duration_s: Option<f64>,
    pub verdict: Valid,
    pub exit_code: i32,
    pub checkers: BTreeMap<String, Valid>,
    pub figures: Figures,
    /// A harness error that ended the run early.
    pub error: Option<String>,
    pub run_dir: String,
    /// Runs the same test again (the main options and the seed; a new folder).
    pub reproduce: String,
    /// Runs it again with every stored option (`hearsay replay`).
    pub replay: String,
    /// The data verdict under the claims model (absent for runs judged before it).
    #[serde(default)]
    pub claims: Option<ClaimsFigures>,
    /// Every protocol rule and how many cases it judged.
    #[serde(default)]
    pub coverage: Vec<RuleCoverage>,
    /// Why the verdict is unknown (damaged evidence, a vacuous run...).
    #[serde(default)]
    pub unknown_because: Vec<String>,
}

pub(crate) fn read_json(path: &Path) -> Result<Value, SummaryError> {
    let text = std::fs::read_to_string(path).map_err(|source| SummaryError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| SummaryError::Json {
        path: path.display().to_string(),
        source,
    })
}

pub(crate) fn read_json_opt(path: &Path) -> Value {
    read_json(path).unwrap_or(Value::Null)
}

/// The data checkers' results keys, in the order `check_dir` may write them.
const DATA_CHECKERS: [&str; 5] = ["set", "linearizable", "counter", "list-append", "error"];

/// Fields that carry a checker's evidence, most telling first.
const EVIDENCE_KEYS: [&str; 20] = [
    "error",
    "skipped",
    "lost",
    "unexpected",
    "stale",
    "failed_present",
    "invalid_keys",
    "unknown_keys",
    "errors",
    "anomaly_types",
    "duplicates",
    "garbage",
    "incompatible_order",
    "cycles",
    "violations",
    "problems",
    "unknown",
    "untraced",
    "detail",
    "notes",
];

/// Longest evidence text kept per checker (the full evidence is in results.json).
const EVIDENCE_CHARS: usize = 1500;

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty() || o.get("count").is_some_and(|c| c == 0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}... (truncated; full evidence in results.json)")
}

/// A few lines naming what a checker found: its non-empty evidence fields.
pub fn evidence_text(v: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(o) = v.as_object() {
        for k in EVIDENCE_KEYS {
            if let Some(x) = o.get(k).filter(|x| !is_empty(x)) {
                let text = match x {
                    Value::String(s) => s.clone(),
                    // The checkers' `{count, examples}` tallies read as a sentence.
                    Value::Object(m) if m.get("count").is_some_and(Value::is_u64) => {
                        let examples: Vec<String> = m
                            .get("examples")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .take(3)
                            .map(Value::to_string)
                            .collect();
                        match (m.get("count"), examples.is_empty()) {
                            (Some(c), true) => c.to_string(),
                            (Some(c), false) => format!("{c} (e.g. {})", examples.join(", ")),
                            (None, _) => x.to_string(),
                        }
                    }
                    other => other.to_string(),
                };
                lines.push(format!("{k}: {}", cut(&text, 400)));
            }
        }
    } else if !is_empty(v) {
        lines.push(v.to_string());
    }
    cut(&lines.join("\n"), EVIDENCE_CHARS)
}

fn verdict_of(v: &Value) -> Valid {
    Valid::try_from(v["valid"].clone()).unwrap_or(Valid::Unknown)
}

fn entry(name: &str, v: &Value) -> CheckerVerdict {
    let valid = verdict_of(v);
    let mut detail = match valid {
        Valid::True => String::new(),
        _ => evidence_text(v),
    };
    if valid == Valid::Unknown && detail.is_empty() {
        detail = "unknown verdict (the checker gave no reason)".into();
    }
    CheckerVerdict {
        name: name.to_string(),
        valid,
        detail,
        skipped: v.get("skipped").is_some(),
    }
}

/// Every checker of a results.json, in a fixed order: the data checker, perf, the
/// protocol checkers, then recovery, crashes and whether the run completed.
pub fn checkers(results: &Value) -> Vec<CheckerVerdict> {
    let mut out = Vec::new();
    for k in DATA_CHECKERS {
        match results.get(k) {
            // `error` is a bare message: no checker for the workload.
            Some(Value::String(s)) => out.push(CheckerVerdict {
                name: "data".into(),
                valid: Valid::Unknown,
                detail: s.clone(),
                skipped: false,
            }),
            Some(v) => {
                let mut e = entry(k, v);
                // Judged under the run's claims model: an anomaly the model explains is
                // reported, not a failure (the checker's own verdict stays in results.json).
                if let Some(c) = results
                    .get("claims")
                    .filter(|c| c.get("data_valid").is_some())
                {
                    e.valid = verdict_of(&json!({"valid": c["data_valid"]}));
                    e.detail = match e.valid {
                        Valid::True => String::new(),
                        _ => {
                            let mut d = c["summary"].as_str().unwrap_or("").to_string();
                            let ex =
                                evidence_text(&json!({"unexplained": c["unexplained_examples"]}));
                            if !ex.is_empty() {
                                d.push('\n');
                                d.push_str(&ex);
                            }
                            if e.valid == Valid::Unknown {
                                d.push('\n');
                                d.push_str(&evidence_text(v));
                            }
                            d
                        }
                    };
                }
                out.push(e);
            }
            None => {}
        }
    }
    if let Some(p) = results.get("perf") {
        out.push(entry("perf", p));
    }
    match results.get("protocol") {
        Some(p) if p.get("fail-quorum").is_some() => {
            for k in ["fail-quorum", "convergence", "epochs"] {
                out.push(entry(k, &p[k]));
            }
            // The rules of the detection and election checkers, one row each group.
            for k in ["detection", "elections"] {
                let Some(rules) = p.get(k).and_then(Value::as_array) else {
                    continue;
                };
                let mut valid = Valid::True;
                let mut detail = Vec::new();
                for r in rules {
                    let v = verdict_of(r);
                    valid = valid.and(v);
                    if v != Valid::True {
                        detail.push(format!(
                            "{}: {}",
                            r["rule"].as_str().unwrap_or("?"),
                            evidence_text(r)
                        ));
                    }
                }
                out.push(CheckerVerdict {
                    name: k.into(),
                    valid,
                    detail: cut(&detail.join("\n"), EVIDENCE_CHARS),
                    skipped: false,
                });
            }
        }
        // Sentinel: one row per rule, judged from the sentinels' logs.
        Some(p) if p.get("rules").is_some_and(Value::is_array) => {
            for r in p["rules"].as_array().into_iter().flatten() {
                let name = format!("sentinel {}", r["rule"].as_str().unwrap_or("?"));
                out.push(entry(&name, r));
            }
        }
        Some(p) => out.push(entry("protocol", p)),
        None => {}
    }
    // The harness's own recovery wait timed out: the cluster never agreed again.
    if let Some(c) = results.get("convergence") {
        out.push(entry("recovery", c));
    }
    if let Some(c) = results.get("crashes").and_then(Value::as_array) {
        out.push(CheckerVerdict {
            name: "crashes".into(),
            valid: if c.is_empty() {
                Valid::True
            } else {
                Valid::False
            },
            detail: if c.is_empty() {
                String::new()
            } else {
                cut(&Value::Array(c.clone()).to_string(), EVIDENCE_CHARS)
            },
            skipped: false,
        });
    }
    // Damaged evidence, a vacuous run: the verdict is unknown and says why.
    if let Some(why) = results.get("unknown-because").and_then(Value::as_array) {
        let reasons: Vec<String> = why
            .iter()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect();
        out.push(CheckerVerdict {
            name: "evidence".into(),
            valid: if reasons.is_empty() {
                Valid::True
            } else {
                Valid::Unknown
            },
            detail: cut(&reasons.join("\n"), EVIDENCE_CHARS),
            skipped: false,
        });
    }
    if let Some(c) = results.get("complete-run").and_then(Value::as_bool) {
        out.push(CheckerVerdict {
            name: "complete-run".into(),
            valid: if c { Valid::True } else { Valid::Unknown },
            detail: if c {
                String::new()
            } else {
                "the run ended before its recovery step: its history is partial".into()
            },
            skipped: false,
        });
    }
    out
}

/// Epoch seconds of a `YYYYMMDDTHHMMSSZ` stamp.
pub fn stamp_secs(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
    if s.len() != 16 || s.get(8..9) != Some("T") {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days * 24 + hh) * 60 + mm) * 60 + ss)
}

/// `2026-11-22T21:51:36` from `20261122T215136Z` (the junit timestamp form).
pub fn iso_stamp(s: &str) -> Option<String> {
    stamp_secs(s)?;
    Some(format!(
        "{}-{}-{}T{}:{}:{}",
        s.get(0..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(9..11)?,
        s.get(11..13)?,
        s.get(13..15)?
    ))
}

/// The `hearsay run` command line that runs this test again.
pub fn reproduce_command(options: &Value, seed: Option<u64>) -> String {
    // The options that define a test are always written (defaults may change between
    // versions); every other option only when the run changed it. Hidden switches of
    // planted-bug runs are options too: without them the run is a different test.
    const ALWAYS: [&str; 8] = [
        "target",
        "workload",
        "nemesis",
        "nemesis_interval",
        "time_limit",
        "nodes",
        "replicas",
        "node_timeout",
    ];
    // Not part of the test: where results go, how many runs, print-only; the seed
    // comes last.
    const NEVER: [&str; 4] = ["seed", "test_count", "results_dir", "dry_run"];
    let defaults = default_run_options();
    let Some(all) = options.as_object() else {
        return "hearsay run".to_string();
    };
    let changed = all
        .keys()
        .filter(|k| !ALWAYS.contains(&k.as_str()) && !NEVER.contains(&k.as_str()))
        .filter(|k| defaults.get(k.as_str()) != all.get(k.as_str()));
    let mut cmd = vec!["hearsay".to_string(), "run".to_string()];
    for key in ALWAYS.iter().copied().chain(changed.map(String::as_str)) {
        let flag = format!("--{}", key.replace('_', "-"));
        match &options[key] {
            Value::String(s) => cmd.extend([flag, shell_word(s)]),
            Value::Number(n) => cmd.extend([flag, n.to_string()]),
            Value::Bool(true) => cmd.push(flag),
            Value::Array(items) => {
                for item in items {
                    let word = item
                        .as_str()
                        .map_or_else(|| item.to_string(), str::to_string);
                    cmd.extend([flag.clone(), shell_word(&word)]);
                }
            }
            _ => {}
        }
    }
    if let Some(s) = seed {
        cmd.push("--seed".into());
        cmd.push(s.to_string());
    }
    cmd.join(" ")
}

/// `hearsay run`'s option defaults, as test.json stores options.
fn default_run_options() -> serde_json::Map<String, Value> {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        run: crate::opts::RunOpts,
    }
    <Defaults as clap::Parser>::try_parse_from(["run"])
        .ok()
        .and_then(|d| serde_json::to_value(d.run).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,/:=+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn data_figures(results: &Value) -> DataFigures {
    let n = |v: &Value| v.as_u64();
    if let Some(s) = results.get("set").filter(|v| v.is_object()) {
        return DataFigures {
            checker: "set".into(),
            lost: n(&s["lost"]["count"]),
            stale: n(&s["stale_count"]),
            ..DataFigures::default()
        };
    }
    if let Some(s) = results.get("linearizable").filter(|v| v.is_object()) {
        return DataFigures {
            checker: "linearizable".into(),
            nonlinearizable_keys: n(&s["invalid_key_count"]),
            ..DataFigures::default()
        };
    }
    if let Some(s) = results.get("counter").filter(|v| v.is_object()) {
        return DataFigures {
            checker: "counter".into(),
            bad_reads: n(&s["error_count"]),
            ..DataFigures::default()
        };
    }
    if let Some(s) = results.get("list-append").filter(|v| v.is_object()) {
        return DataFigures {
            checker: "list-append".into(),
            lost: n(&s["lost_count"]),
            anomalies: s["anomaly_types"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            }),
            ..DataFigures::default()
        };
    }
    DataFigures::default()
}

fn figures(results: &Value, bus: &Value) -> Figures {
    let mut f = Figures::default();
    let perf = &results["perf"];
    let overall = &perf["overall"];
    f.ops = Ops {
        ok: overall["ok"].as_u64().unwrap_or(0),
        fail: overall["fail"].as_u64().unwrap_or(0),
        info: overall["info"].as_u64().unwrap_or(0),
    };
    f.availability = overall["availability"].as_f64();
    // Faults run one at a time, so the fault windows add up without overlap.
    let (mut ok, mut all) = (0u64, 0u64);
    if let Some(by) = perf["by_fault"].as_object() {
        for w in by
            .iter()
            .filter(|(k, _)| k.as_str() != "healthy")
            .map(|(_, w)| w)
        {
            let o = w["ok"].as_u64().unwrap_or(0);
            ok += o;
            all += o + w["fail"].as_u64().unwrap_or(0) + w["info"].as_u64().unwrap_or(0);
        }
    }
    f.availability_during_faults = (all > 0).then(|| ok as f64 / all as f64);
    f.data = data_figures(results);
    let p = &results["protocol"];
    if p.get("fail-quorum").is_none() && p.get("rules").is_none() {
        f.notes.push(format!(
            "protocol checkers did not run: {}",
            evidence_text(p)
                .lines()
                .next()
                .unwrap_or("no protocol results")
        ));
    }
    let lat = &p["detection-latency"]["summary"];
    f.faulted_nodes = lat["faulted_nodes"].as_u64().unwrap_or(0);
    f.first_pfail_ms = Stat::of(&lat["first_pfail_ms"]);
    f.fail_decided_ms = Stat::of(&lat["fail_decided_ms"]);
    f.fail_known_by_all_ms = Stat::of(&lat["fail_known_by_all_ms"]);
    f.masters_faulted = lat["masters_faulted"].as_u64().unwrap_or(0);
    f.failover_ms = Stat::of(&lat["failover_ms"]);
    for n in p["detection-latency"]["notes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(s) = n.as_str() {
            f.notes.push(s.to_string());
        }
    }
    f.convergence_ms = p["convergence"]["convergence_ms"].as_i64();
    f.faults = results["run-info"]["faults"].as_u64();
    if let Some(nodes) = bus["nodes"].as_object() {
        for (name, v) in nodes {
            f.bus.insert(
                name.clone(),
                BusNode {
                    sent: v["sent"].as_u64(),
                    received: v["received"].as_u64(),
                    error: v["error"].as_str().map(str::to_string),
                },
            );
        }
    }
    f
}

/// Builds the summary of a run folder that has test.json and results.json.
pub fn summarize(run_dir: &Path) -> Result<Summary, SummaryError> {
    let test = read_json(&run_dir.join("test.json"))?;
    let results = read_json(&run_dir.join("results.json"))?;
    Ok(summarize_parts(
        run_dir,
        &test,
        &results,
        &read_json_opt(&run_dir.join("bus-stats.json")),
    ))
}

/// The summary from already-read parts (what tests call).
pub fn summarize_parts(run_dir: &Path, test: &Value, results: &Value, bus: &Value) -> Summary {
    let o = &test["options"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let seed = test["seed"].as_u64().or_else(|| o["seed"].as_u64());
    let start = test["start"].as_str().map(str::to_string);
    // The run body ends when run-info.json is written (before checking), so a later
    // `hearsay check` reports the same duration.
    let end = std::fs::metadata(run_dir.join("run-info.json"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    let duration_s = match (start.as_deref().and_then(stamp_secs), end) {
        (Some(a), Some(b)) if b >= a as f64 => Some(((b - a as f64) * 10.0).round() / 10.0),
        _ => None,
    };
    let verdict = Valid::try_from(results["valid"].clone()).unwrap_or(Valid::Unknown);
    let checkers = checkers(results)
        .into_iter()
        .map(|c| (c.name, c.valid))
        .collect();
    Summary {
        schema: SCHEMA,
        test: s(&test["name"]),
        target: s(&o["target"]),
        seed,
        workload: s(&o["workload"]),
        nemesis: s(&o["nemesis"]),
        start,
        duration_s,
        verdict,
        exit_code: verdict.exit_code(),
        checkers,
        figures: figures(results, bus),
        error: results["run-info"]["error"].as_str().map(str::to_string),
        run_dir: run_dir.display().to_string(),
        reproduce: reproduce_command(o, seed),
        replay: format!(
            "hearsay replay {}",
            shell_word(&run_dir.display().to_string())
        ),
        claims: claims_figures(&results["claims"]),
        coverage: coverage(&results["protocol"]["coverage"]),
        unknown_because: results["unknown-because"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect(),
    }
}

fn claims_figures(c: &Value) -> Option<ClaimsFigures> {
    if !c.is_object() {
        return None;
    }
    let verdict = |v: &Value| Valid::try_from(v.clone()).ok();
    Some(ClaimsFigures {
        model: c["model"].as_str().unwrap_or("").to_string(),
        summary: c["summary"].as_str().unwrap_or("").to_string(),
        anomalies: c["anomalies"].as_u64().unwrap_or(0),
        explained: c["explained"].as_u64().unwrap_or(0),
        unexplained: c["unexplained"].as_u64().unwrap_or(0),
        redis_cluster: verdict(&c["redis_cluster"]),
        linearizable: verdict(&c["linearizable"]),
        by_mechanism: c["by_mechanism"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect(),
        linearizable_contrast: c["linearizable_contrast"]["text"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    })
}

fn coverage(c: &Value) -> Vec<RuleCoverage> {
    c.as_array()
        .into_iter()
        .flatten()
        .map(|r| RuleCoverage {
            rule: r["rule"].as_str().unwrap_or("").to_string(),
            status: r["status"].as_str().unwrap_or("").to_string(),
            cases: r["cases"].as_u64().unwrap_or(0),
            unjudged: r["unjudged"].as_u64().unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results() -> Value {
        json!({
            "valid": false,
            "set": {"valid": false, "lost": {"count": 2, "examples": [{"element": 5, "key": "k<&>"}]},
                    "stale_count": 3, "unexpected": {"count": 0, "examples": []}, "notes": []},
            "perf": {"valid": true, "overall": {"ok": 80, "fail": 15, "info": 5, "availability": 0.8},
                     "by_fault": {"healthy": {"ok": 60, "fail": 0, "info": 0},
                                  "partition": {"ok": 10, "fail": 10, "info": 0},
                                  "kill": {"ok": 10, "fail": 5, "info": 5}}},
            "protocol": {"valid": true,
                "fail-quorum": {"valid": true, "violations": []},
                "convergence": {"valid": true, "convergence_ms": 1234},
                "epochs": {"valid": "unknown", "unknown": ["n3: no events"]},
                "detection-latency": {"summary": {
                    "faulted_nodes": 2,
                    "first_pfail_ms": {"count": 2, "median": 2100, "max": 2300},
                    "fail_decided_ms": {"count": 1, "median": 2500, "max": 2500},
                    "fail_known_by_all_ms": {"count": 0},
                    "masters_faulted": 1,
                    "failover_ms": {"count": 1, "median": 3100, "max": 3100}}, "notes": []}},
            "crashes": [],
            "complete-run": true,
            "run-info": {"faults": 4}
        })
    }

    fn test_json() -> Value {
        json!({"name": "set-redis", "seed": 7, "start": "20261122T215136Z",
               "options": {"target": "redis", "workload": "set", "nemesis": "partition,kill",
                           "nemesis_interval": 5.0, "time_limit": 30.0, "nodes": 6, "seed": 7,
                           "schedule_from": null, "linearizable": false}})
    }

    #[test]
    fn checkers_list_every_verdict_with_evidence_for_the_bad_ones() {
        let c = checkers(&results());
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "set",
                "perf",
                "fail-quorum",
                "convergence",
                "epochs",
                "crashes",
                "complete-run"
            ]
        );
        assert_eq!(c[0].valid, Valid::False);
        assert!(c[0].detail.contains("lost: "), "{}", c[0].detail);
        assert!(c[0].detail.contains("k<&>"), "{}", c[0].detail);
        assert!(
            !c[0].detail.contains("unexpected"),
            "empty evidence is left out"
        );
        assert_eq!(c[4].valid, Valid::Unknown);
        assert!(c[4].detail.contains("n3: no events"));
        assert!(c[1].detail.is_empty());
    }

    #[test]
    fn protocol_skip_and_crashes_and_partial_runs_are_named() {
        let r = json!({"valid": "unknown", "protocol": {"valid": "unknown", "skipped": "no snapshots.jsonl"},
                       "crashes": [{"node": "n2", "line": "panicked at x"}], "complete-run": false});
        let c = checkers(&r);
        assert_eq!(c[0].name, "protocol");
        assert!(c[0].skipped && c[0].detail.contains("no snapshots"));
        assert_eq!((c[1].name.as_str(), c[1].valid), ("crashes", Valid::False));
        assert!(c[1].detail.contains("panicked"));
        assert_eq!(c[2].valid, Valid::Unknown);
    }

    #[test]
    fn summary_has_the_key_figures() {
        let s = summarize_parts(
            Path::new("/r/set-redis/x"),
            &test_json(),
            &results(),
            &json!({"nodes": {"n1": {"sent": 10, "received": 9}, "n2": {"error": "timeout"}}}),
        );
        assert_eq!(s.verdict, Valid::False);
        assert_eq!(s.exit_code, 1);
        assert_eq!(s.seed, Some(7));
        assert_eq!(s.checkers["epochs"], Valid::Unknown);
        assert_eq!(s.figures.ops.fail, 15);
        assert_eq!(s.figures.data.lost, Some(2));
        assert_eq!(s.figures.data.stale, Some(3));
        // During faults: 20 ok of 40 (partition 10/20, kill 10/20).
        let a = s.figures.availability_during_faults.unwrap();
        assert!((a - 0.5).abs() < 1e-9, "{a}");
        assert_eq!(s.figures.first_pfail_ms.median, Some(2100));
        assert_eq!(s.figures.failover_ms.max, Some(3100));
        assert_eq!(s.figures.convergence_ms, Some(1234));
        assert_eq!(s.figures.bus["n1"].sent, Some(10));
        assert_eq!(s.figures.bus["n2"].error.as_deref(), Some("timeout"));
        assert_eq!(
            s.reproduce,
            "hearsay run --target redis --workload set --nemesis partition,kill \
             --nemesis-interval 5.0 --time-limit 30.0 --nodes 6 --seed 7"
        );
        assert_eq!(s.replay, "hearsay replay /r/set-redis/x");
        // Stable shape: it round-trips.
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), s);
    }

    #[test]
    fn reproduce_keeps_planted_bugs_changed_options_and_quotes_odd_words() {
        let mut o = serde_json::Value::Object(default_run_options());
        for (k, v) in [
            ("target", json!("hearsay")),
            ("nemesis", json!("partition,kill")),
            ("node_bug", json!(["double-vote"])),
            ("node_election_delay_ms", json!(4000)),
            ("schedule_from", json!("/r/a b")),
            ("read_fraction", json!(0.5)),
            ("linearizable", json!(true)),
            ("results_dir", json!("elsewhere")),
        ] {
            o[k] = v;
        }
        assert_eq!(
            reproduce_command(&o, Some(3)),
            "hearsay run --target hearsay --workload set --nemesis partition,kill \
             --nemesis-interval 10.0 --time-limit 60.0 --nodes 6 --replicas 1 --node-timeout 2000 \
             --linearizable --node-bug double-vote --node-election-delay-ms 4000 \
             --read-fraction 0.5 --schedule-from '/r/a b' --seed 3"
        );
    }

    #[test]
    fn evidence_reads_count_tallies_as_sentences() {
        let t = evidence_text(&results()["set"]);
        assert!(
            t.starts_with("lost: 2 (e.g. {\"element\":5,\"key\":\"k<&>\"})"),
            "{t}"
        );
    }

    #[test]
    fn stamps_parse() {
        assert_eq!(stamp_secs("19700101T000000Z"), Some(0));
        assert_eq!(stamp_secs("20261122T193456Z"), Some(1_795_376_096));
        assert_eq!(stamp_secs("2026112"), None);
        assert_eq!(
            iso_stamp("20261122T193456Z").as_deref(),
            Some("2026-11-22T19:34:56")
        );
    }
}
