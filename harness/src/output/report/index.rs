//! `results/index.html`: every run under `<results>/<test>/<run>/`, newest first,
//! with its verdict and a relative link to its report.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::evidence::verdict_class;
use super::svg::esc;
use super::{pretty_stamp, write_atomic, ReportError};

/// One run folder as the index lists it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub test: String,
    pub run: String,
    /// `<test>/<run>` (relative to the results folder).
    pub rel: String,
    pub target: String,
    pub seed: String,
    pub nemesis: String,
    /// `YYYYMMDDTHHMMSSZ` (from test.json, else the folder name).
    pub start: String,
    /// results.json `valid`; None when never judged.
    pub valid: Option<Value>,
    /// Seconds of workload (perf), if judged.
    pub seconds: Option<f64>,
    pub has_report: bool,
    /// The run's own error (run-info.json), if it died.
    pub error: Option<String>,
}

fn is_real_dir(p: &Path) -> bool {
    // `latest` links point at runs that are listed anyway.
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// Every run folder, newest first.
pub fn scan(results: &Path) -> Result<Vec<Entry>, ReportError> {
    let rd = std::fs::read_dir(results)
        .map_err(|_| ReportError::NotAResultsDir(results.display().to_string()))?;
    let mut tests: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_real_dir(p))
        .collect();
    tests.sort();
    let mut out = Vec::new();
    for tdir in tests {
        let Ok(rd) = std::fs::read_dir(&tdir) else {
            continue;
        };
        let test = tdir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for run in rd.flatten().map(|e| e.path()).filter(|p| is_real_dir(p)) {
            if !run.join("test.json").is_file() && !run.join("history.jsonl").is_file() {
                continue;
            }
            let name = run
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let t = read_json(&run.join("test.json")).unwrap_or(Value::Null);
            let r = read_json(&run.join("results.json"));
            let info = read_json(&run.join("run-info.json"));
            let start = t["start"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| name.split('-').next().unwrap_or("").to_string());
            out.push(Entry {
                test: test.clone(),
                rel: format!("{test}/{name}"),
                run: name,
                target: t["options"]["target"].as_str().unwrap_or("?").to_string(),
                seed: match &t["seed"] {
                    Value::Null => "?".into(),
                    v => v.to_string(),
                },
                start,
                valid: r.as_ref().and_then(|r| r.get("valid").cloned()),
                nemesis: t["options"]["nemesis"].as_str().unwrap_or("?").to_string(),
                // Older runs have no perf figures: their time limit is the next best.
                seconds: r
                    .as_ref()
                    .and_then(|r| r["perf"]["overall"]["seconds"].as_f64())
                    .or_else(|| t["options"]["time_limit"].as_f64()),
                has_report: run.join("report.html").is_file(),
                error: info.and_then(|i| i["error"].as_str().map(str::to_string)),
            });
        }
    }
    out.sort_by(|a, b| b.start.cmp(&a.start).then(b.rel.cmp(&a.rel)));
    Ok(out)
}

/// Percent-encodes a relative path for an href (keeps `/`).
fn href(rel: &str) -> String {
    let mut out = String::new();
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The index page.
pub fn index_html(results: &Path) -> Result<String, ReportError> {
    let runs = scan(results)?;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>hearsay results</title><style>{}
tr.invalid td:first-child{{border-left:6px solid #cf222e}}tr.valid td:first-child{{border-left:6px solid #1a7f37}}tr.unknown td:first-child{{border-left:6px solid #bf8700}}
td,th{{padding:3px 9px}}</style></head><body><h1>hearsay results <small>{} runs, newest first</small></h1>"#,
        super::CSS,
        runs.len()
    );
    let (mut v, mut i, mut u) = (0, 0, 0);
    for r in &runs {
        match r.valid.as_ref().map(verdict_class) {
            Some(("valid", _)) => v += 1,
            Some(("invalid", _)) => i += 1,
            _ => u += 1,
        }
    }
    let _ = write!(
        out,
        r#"<p><span class="badge valid">{v} valid</span> <span class="badge invalid">{i} invalid</span> <span class="badge unknown">{u} unknown or not judged</span></p>"#
    );
    if runs.is_empty() {
        out.push_str(
            r#"<p class="missing">No runs yet: <code>hearsay run</code> writes them here.</p>"#,
        );
    } else {
        out.push_str("<table><tr><th>verdict</th><th>time</th><th>test</th><th>target</th><th>nemesis</th><th>seed</th><th>duration</th><th>report</th><th>folder</th></tr>");
        for r in &runs {
            let (class, text) = match &r.valid {
                Some(x) => verdict_class(x),
                None if r.error.is_some() => ("unknown", "error"),
                None => ("unknown", "not judged"),
            };
            let link = if r.has_report {
                format!(r#"<a href="{}/report.html">report</a>"#, href(&r.rel))
            } else {
                r#"<span class="muted">no report</span>"#.to_string()
            };
            let dur = r
                .seconds
                .map(|s| format!("{s:.0} s"))
                .unwrap_or_else(|| "—".into());
            let title = r
                .error
                .as_deref()
                .map(|e| format!(r#" title="{}""#, esc(e)))
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<tr class="{class}"{title}><td><span class="badge {class}">{text}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{dur}</td><td>{link}</td><td><a href="{}/">{}</a></td></tr>"#,
                esc(&pretty_stamp(&r.start)),
                esc(&r.test),
                esc(&r.target),
                esc(&r.nemesis),
                esc(&r.seed),
                href(&r.rel),
                esc(&r.run),
            );
        }
        out.push_str("</table>");
    }
    out.push_str(&other_outputs(results));
    out.push_str("</body></html>\n");
    Ok(out)
}

/// `hearsay compare` and `hearsay test-all` folders (not run folders themselves),
/// newest first, linked to their page or table.
fn other_outputs(results: &Path) -> String {
    let mut out = String::new();
    for (kind, files) in [
        ("compare", &["compare.html", "compare.md"][..]),
        ("matrix", &["matrix.md", "matrix.json"][..]),
    ] {
        let Ok(rd) = std::fs::read_dir(results.join(kind)) else {
            continue;
        };
        let mut dirs: Vec<String> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_real_dir(p))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if dirs.is_empty() {
            continue;
        }
        dirs.sort_by(|a, b| b.cmp(a));
        let _ = write!(
            out,
            "<h2>{kind} <small>(hearsay {})</small></h2><ul>",
            if kind == "compare" {
                "compare"
            } else {
                "test-all"
            }
        );
        for d in dirs {
            let rel = format!("{kind}/{d}");
            let link = files
                .iter()
                .find(|f| results.join(&rel).join(f).is_file())
                .map(|f| format!("{rel}/{f}"))
                .unwrap_or_else(|| format!("{rel}/"));
            let _ = write!(
                out,
                r#"<li><a href="{}">{}</a> {}</li>"#,
                href(&link),
                esc(&d),
                esc(&pretty_stamp(d.split('-').next().unwrap_or("")))
            );
        }
        out.push_str("</ul>");
    }
    out
}

/// Writes `<results>/index.html`; returns its path.
pub fn write_index(results: &Path) -> Result<PathBuf, ReportError> {
    let html = index_html(results)?;
    let path = results.join("index.html");
    write_atomic(&path, &html)?;
    Ok(path)
}
