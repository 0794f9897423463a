//! `report.html` for a run folder and `index.html` for a results folder.
//!
//! The page is self-contained: inline CSS and SVG drawn here, no script, no network.
//! Sections, in order: the verdict and how to reproduce it (`#verdict`), client ops
//! per process (`#timeline`), latency and throughput (`#latency`, `#throughput`),
//! failure detection per observer node (`#detection`), slot-map convergence
//! (`#convergence`) and every checker's evidence (`#evidence`). What the folder lacks
//! is listed in `#notes` and the sections that needed it say so.

pub mod claims;
pub mod data;
pub mod evidence;
pub mod index;
pub mod plots;
pub mod svg;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use data::{Loaded, Outcome};
use svg::esc;

pub use index::{index_html, write_index};

/// Report errors: only a folder that is not there, or a file that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}: not a run folder (no such directory)")]
    NotARunDir(String),
    #[error("{0}: not a results folder (no such directory)")]
    NotAResultsDir(String),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Section ids, in page order (tests and the render check look for them).
pub const SECTIONS: [&str; 9] = [
    "verdict",
    "timeline",
    "latency",
    "throughput",
    "detection",
    "convergence",
    "claims",
    "coverage",
    "evidence",
];

/// Writes `RUN_DIR/report.html`; returns its path.
pub fn write_report(run_dir: &Path) -> Result<PathBuf, ReportError> {
    let l = Loaded::load(run_dir)?;
    let html = render(&l);
    let path = run_dir.join("report.html");
    write_atomic(&path, &html)?;
    Ok(path)
}

/// Writes through a temp file and a rename, so a reader never sees half a page.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), ReportError> {
    let tmp = path.with_extension("html.tmp");
    let err = |source| ReportError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// After a run: its report, then the results index. Never fails the run: problems
/// (even a panic) become a warning.
pub fn after_run(run_dir: &Path, results_dir: &Path) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match write_report(run_dir) {
            Ok(p) => eprintln!("[hearsay] report {}", p.display()),
            Err(e) => eprintln!("[hearsay] warning: report not written: {e}"),
        }
        if let Err(e) = write_index(results_dir) {
            eprintln!("[hearsay] warning: results index not written: {e}");
        }
    }));
    if r.is_err() {
        eprintln!("[hearsay] warning: the report generator panicked; the run's verdict stands");
    }
}

/// `hearsay report RUN_DIR` / `hearsay report --index RESULTS_DIR`: exit 0, or 2
/// with the error.
pub fn cli(run_dir: Option<PathBuf>, index: Option<PathBuf>) -> i32 {
    let r = match (run_dir, index) {
        (_, Some(results)) => write_index(&results),
        (Some(dir), None) => {
            // `results/latest` links resolve to the real folder, so the page names it.
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            write_report(&dir)
        }
        (None, None) => Err(ReportError::NotARunDir("(none given)".into())),
    };
    match r {
        Ok(p) => {
            println!("{}", p.display());
            0
        }
        Err(e) => {
            eprintln!("hearsay report: {e}");
            2
        }
    }
}

pub(crate) const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0 auto;max-width:1360px;padding:12px 20px 60px}
h1{font-size:24px;margin:4px 0}h1 small{color:#666;font-weight:normal;font-size:16px}
h2{font-size:19px;border-bottom:1px solid #d0d7de;padding-bottom:3px;margin:30px 0 8px}
h3{font-size:15px;margin:18px 0 6px}h3.group{font-size:16px;margin-top:24px}h4{margin:10px 0 4px;font-size:13px}
header{border-left:10px solid #888;padding:8px 16px;background:#f6f8fa}
header.v-valid{border-color:#1a7f37}header.v-invalid{border-color:#cf222e;background:#fff5f5}header.v-unknown{border-color:#bf8700;background:#fffbea}
.verdict-word{font-size:30px;font-weight:700;letter-spacing:.5px}
.v-valid .verdict-word{color:#1a7f37}.v-invalid .verdict-word{color:#cf222e}.v-unknown .verdict-word{color:#9a6700}
.badge{display:inline-block;padding:0 7px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;vertical-align:middle}
.badge.valid{background:#1a7f37}.badge.invalid{background:#cf222e}.badge.unknown{background:#bf8700}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0}th,td{border:1px solid #d8dee4;padding:2px 7px;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600;white-space:nowrap}
pre{background:#f6f8fa;padding:8px 10px;overflow-x:auto;font-size:12.5px;border:1px solid #d8dee4}
code{font-size:12.5px}pre.cmd{white-space:pre-wrap}
.legend{font-size:12.5px;margin:2px 0 4px 130px}.sw{display:inline-flex;align-items:center;margin-right:14px;white-space:nowrap}
.sw i{display:inline-block;width:12px;height:12px;margin-right:4px;border-radius:2px}.sw svg{margin-right:3px}
.note{font-size:12.5px;color:#57606a;margin:2px 0 2px 130px}.muted{color:#8c959f}
.missing{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px}
#notes li{margin:2px 0}
nav a{margin-right:14px}
.checker{margin-left:8px}details{margin:4px 0}summary{cursor:pointer;color:#0969da;font-size:12.5px}
svg text{font-family:system-ui,sans-serif}svg .tk{font-size:11px;fill:#444}svg .ax{font-size:12px;fill:#333}
svg .rl{font-size:11px;fill:#333}svg .rlb{font-size:12px;font-weight:600;fill:#111}svg .fl{font-size:10px;fill:#fff;font-weight:600}svg .mk{font-size:11px;font-weight:600}svg .role{font-size:9.5px;fill:#57606a;font-style:italic}
table.maps td:nth-child(2){font-family:ui-monospace,monospace;font-size:11.5px}
"#;

/// Verdict class and word.
fn verdict_of(l: &Loaded) -> (&'static str, &'static str, String) {
    match l.verdict() {
        Some(hearsay_checkers::Valid::True) => ("valid", "VALID", String::new()),
        Some(hearsay_checkers::Valid::False) => ("invalid", "INVALID", String::new()),
        Some(hearsay_checkers::Valid::Unknown) => ("unknown", "UNKNOWN", String::new()),
        None => (
            "unknown",
            "NOT JUDGED",
            "no verdict in results.json — run <code>hearsay check RUN_DIR</code>".into(),
        ),
    }
}

/// `20261122T215136Z` → `2026-11-22 21:51:36 UTC` (other text unchanged).
pub fn pretty_stamp(s: &str) -> String {
    crate::output::summary::iso_stamp(s)
        .map_or_else(|| s.to_string(), |t| t.replace('T', " ") + " UTC")
}

fn header(l: &Loaded) -> String {
    let (class, word, why) = verdict_of(l);
    let t = &l.test;
    let name = t["name"].as_str().unwrap_or("(unnamed test)");
    let opt = |k: &str| -> String {
        match l.option(k) {
            Value::Null => "—".into(),
            Value::String(s) => esc(s),
            v => esc(&v.to_string()),
        }
    };
    let seed = match &t["seed"] {
        Value::Null => "—".to_string(),
        v => v.to_string(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<header id="verdict" class="v-{class}"><div class="verdict-word">{word}</div>"#
    );
    if !why.is_empty() {
        let _ = write!(out, r#"<p class="note" style="margin-left:0">{why}</p>"#);
    }
    let _ = write!(
        out,
        r#"<h1>{} <small>target {} · seed {}</small></h1>"#,
        esc(name),
        opt("target"),
        esc(&seed)
    );
    let count = |o: Outcome| l.ops.iter().filter(|x| x.outcome == o).count();
    let versions = t["versions"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    out.push_str(r#"<table class="kv">"#);
    for (k, v) in [
        ("test", esc(name)),
        ("target", opt("target")),
        ("workload", opt("workload")),
        ("nemesis", opt("nemesis")),
        ("seed", esc(&seed)),
        (
            "started",
            esc(&pretty_stamp(t["start"].as_str().unwrap_or("—"))),
        ),
        (
            "timeline",
            format!(
                "{:.1} s (time limit {} s), {} nodes, node timeout {} ms",
                l.end_ms / 1000.0,
                opt("time_limit"),
                opt("nodes"),
                opt("node_timeout")
            ),
        ),
        (
            "client ops",
            format!(
                "{} ok, {} fail, {} info, {} pending, in {} processes",
                count(Outcome::Ok),
                count(Outcome::Fail),
                count(Outcome::Info),
                count(Outcome::Pending),
                {
                    let mut p: Vec<u64> = l.ops.iter().map(|o| o.process).collect();
                    p.sort_unstable();
                    p.dedup();
                    p.len()
                }
            ),
        ),
        ("faults", format!("{}", l.run.faults.len())),
        ("versions", esc(&versions)),
        (
            "folder",
            format!("<code>{}</code>", esc(&l.dir.display().to_string())),
        ),
    ] {
        let _ = write!(out, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    out.push_str("</table>");
    // Which checkers failed, at a glance.
    if let Some(r) = l.results.as_ref().and_then(Value::as_object) {
        let mut bad = Vec::new();
        let claims = r.get("claims").filter(|c| c.get("data_valid").is_some());
        if let Some(c) = claims {
            let _ = write!(
                out,
                "<p><b>Data:</b> {}</p>",
                esc(c["summary"].as_str().unwrap_or(""))
            );
        }
        for (k, v) in r {
            // With a claims judgement, the data verdict is the claims one (the data
            // checker's own is Jepsen's judgement, shown in its section).
            let data_key = ["set", "linearizable", "counter", "list-append"].contains(&k.as_str());
            let verdict = match (claims.is_some(), k.as_str()) {
                (true, _) if data_key => None,
                (_, "claims") => v.get("data_valid"),
                _ => v.get("valid"),
            };
            if let Some(s) = verdict.filter(|s| **s != Value::Bool(true)) {
                bad.push(format!("{k}: {s}"));
            }
            if k == "protocol" {
                for (pk, pv) in v.as_object().into_iter().flatten() {
                    if let Some(s) = pv.get("valid").filter(|s| **s != Value::Bool(true)) {
                        bad.push(format!("protocol/{pk}: {s}"));
                    }
                }
            }
        }
        if !bad.is_empty() {
            let _ = write!(out, "<p><b>Not valid:</b> {}</p>", esc(&bad.join(", ")));
        }
    }
    out.push_str(r#"<h3>Reproduce</h3><pre class="cmd">"#);
    let _ = writeln!(out, "hearsay replay {}", esc(&l.dir.display().to_string()));
    match t["options"].as_object() {
        // The same line summary.json carries.
        Some(_) => out.push_str(&esc(&crate::output::summary::reproduce_command(
            &t["options"],
            t["seed"].as_u64(),
        ))),
        None => out.push_str("(test.json has no options: cannot rebuild the run command)"),
    }
    out.push_str("</pre><p class=\"note\" style=\"margin-left:0\">The seed reproduces the fault schedule and each process's ops, not the timing inside the servers.</p></header>");
    out
}

/// The whole page.
pub fn render(l: &Loaded) -> String {
    let ts = svg::TimeScale::new(0.0, l.end_ms / 1000.0);
    let bars = svg::fault_bars(&l.run.faults, l.end_ms);
    let conv = l
        .results
        .as_ref()
        .map(|r| &r["protocol"]["convergence"])
        .filter(|c| c.is_object());
    let heal_ms = conv
        .and_then(|c| c["heal_ms"].as_f64())
        .or(l.run.heal_ms.map(|h| h as f64));
    let converged_ms = conv
        .and_then(|c| c["converged_at_ms"].as_f64())
        .or(l.run.recovered_ms.map(|h| h as f64));
    let c = plots::Ctx {
        l,
        ts,
        bars,
        heal_ms,
        converged_ms,
    };
    let (class, word, _) = verdict_of(l);
    let name = l.test["name"].as_str().unwrap_or("run");
    let mut out = String::with_capacity(1 << 20);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{word} — {} seed {} — hearsay report</title><style>{CSS}</style></head><body class="v-{class}">"#,
        esc(name),
        esc(&l.test["seed"].to_string())
    );
    out.push_str(&header(l));
    out.push_str(r##"<nav><a href="#timeline">client ops</a><a href="#latency">latency</a><a href="#throughput">throughput</a><a href="#detection">failure detection</a><a href="#convergence">slot maps</a><a href="#claims">claims</a><a href="#coverage">rule coverage</a><a href="#evidence">checker evidence</a></nav>"##);
    if !l.notes.is_empty() {
        out.push_str(r#"<section id="notes" class="missing"><b>Missing or unreadable in this run folder:</b><ul>"#);
        for n in l.notes.iter().take(40) {
            let _ = write!(out, "<li>{}</li>", esc(n));
        }
        if l.notes.len() > 40 {
            let _ = write!(out, "<li>… {} more</li>", l.notes.len() - 40);
        }
        out.push_str("</ul></section>");
    }
    let sections: [(&str, &str, String); 5] = [
        (
            "timeline",
            "Client operations per process",
            plots::timeline(&c),
        ),
        (
            "latency",
            "Latency",
            plots::latency(&c) + &plots::latency_quantiles(&c),
        ),
        ("throughput", "Throughput", plots::throughput(&c)),
        (
            "detection",
            "Failure detection per observer node",
            plots::detection(&c),
        ),
        (
            "convergence",
            "Slot-map convergence",
            plots::convergence(&c, &data::slot_maps(&l.run)),
        ),
    ];
    for (id, title, body) in sections {
        let _ = write!(
            out,
            r#"<section id="{id}"><h2>{title}</h2>{body}</section>"#
        );
    }
    let _ = write!(
        out,
        r#"<section id="claims"><h2>Data verdict and claims</h2>{}</section>"#,
        claims::claims(l.results.as_ref())
    );
    let _ = write!(
        out,
        r#"<section id="coverage"><h2>Rule coverage</h2>{}</section>"#,
        claims::coverage(l.results.as_ref())
    );
    let _ = write!(
        out,
        r#"<section id="evidence"><h2>Checker evidence</h2>{}</section>"#,
        evidence::evidence(l.results.as_ref())
    );
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests;
