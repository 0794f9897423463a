//! Checker results as readable tables: objects become key/value tables, lists of
//! objects become tables with a column per key, lists of scalars become short lists.
//! Long lists are cut (the count says how many more); the full JSON stays available
//! in a collapsed `<details>`.

use std::fmt::Write;

use serde_json::Value;

use super::svg::{clip, esc};

/// Rows shown of a list before cutting.
const MAX_ROWS: usize = 25;
/// Scalars shown of a list before cutting.
const MAX_ITEMS: usize = 40;
/// Raw JSON kept in the collapsed block, per checker.
const MAX_RAW: usize = 200_000;

/// The HTML class and text of a verdict value (`true`, `false`, `"unknown"`).
pub fn verdict_class(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Bool(true) => ("valid", "valid"),
        Value::Bool(false) => ("invalid", "INVALID"),
        _ => ("unknown", "unknown"),
    }
}

fn scalar(key: &str, v: &Value) -> String {
    match v {
        Value::Null => r#"<span class="muted">—</span>"#.into(),
        Value::Bool(_) if key == "valid" || key == "verified" || key == "converged" => {
            let (class, text) = verdict_class(v);
            format!(r#"<span class="badge {class}">{text}</span>"#)
        }
        Value::String(s) if key == "valid" => {
            format!(r#"<span class="badge unknown">{}</span>"#, esc(s))
        }
        Value::Number(n) => {
            // Floats with long tails read badly; 3 decimals are plenty here.
            match n.as_f64() {
                Some(f) if n.is_f64() => {
                    if f.abs() >= 100.0 {
                        format!("{f:.1}")
                    } else {
                        format!("{f:.3}")
                    }
                }
                _ => n.to_string(),
            }
        }
        Value::String(s) => esc(&clip(s, 300)),
        other => esc(&clip(&other.to_string(), 300)),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Renders any JSON value as HTML, `depth` levels deep at most.
pub fn to_html(key: &str, v: &Value, depth: usize) -> String {
    let mut out = String::new();
    match v {
        Value::Array(a) if a.is_empty() => out.push_str(r#"<span class="muted">none</span>"#),
        Value::Object(o) if o.is_empty() => out.push_str(r#"<span class="muted">—</span>"#),
        _ if depth == 0 => {
            let _ = write!(out, "<code>{}</code>", esc(&clip(&v.to_string(), 300)));
        }
        Value::Array(a) if a.iter().all(is_scalar) => {
            let items: Vec<String> = a.iter().take(MAX_ITEMS).map(|x| scalar(key, x)).collect();
            out.push_str(&items.join(", "));
            if a.len() > MAX_ITEMS {
                let _ = write!(
                    out,
                    r#" <span class="muted">… {} more</span>"#,
                    a.len() - MAX_ITEMS
                );
            }
        }
        Value::Array(a) if a.iter().all(Value::is_object) => {
            // Columns: every key, in first-seen order.
            let mut cols: Vec<&str> = Vec::new();
            for o in a.iter().filter_map(Value::as_object) {
                for k in o.keys() {
                    if !cols.contains(&k.as_str()) {
                        cols.push(k);
                    }
                }
            }
            out.push_str("<table><tr>");
            for c in &cols {
                let _ = write!(out, "<th>{}</th>", esc(c));
            }
            out.push_str("</tr>");
            for row in a.iter().take(MAX_ROWS) {
                out.push_str("<tr>");
                for c in &cols {
                    let cell = row.get(*c).unwrap_or(&Value::Null);
                    let _ = write!(out, "<td>{}</td>", cell_html(c, cell, depth - 1));
                }
                out.push_str("</tr>");
            }
            out.push_str("</table>");
            if a.len() > MAX_ROWS {
                let _ = write!(
                    out,
                    r#"<p class="muted">… {} more rows (see the raw JSON)</p>"#,
                    a.len() - MAX_ROWS
                );
            }
        }
        Value::Array(a) => {
            out.push_str("<ol>");
            for x in a.iter().take(MAX_ROWS) {
                let _ = write!(out, "<li>{}</li>", to_html(key, x, depth - 1));
            }
            out.push_str("</ol>");
            if a.len() > MAX_ROWS {
                let _ = write!(out, r#"<p class="muted">… {} more</p>"#, a.len() - MAX_ROWS);
            }
        }
        Value::Object(o) if depth < 4 && o.len() <= 6 && o.values().all(is_compact) => {
            // Small flat objects (`count: 0, examples: none`) read best on one line.
            out.push_str(&inline(o));
        }
        Value::Object(o) => {
            out.push_str(r#"<table class="kv">"#);
            for (k, x) in o {
                let _ = write!(
                    out,
                    "<tr><th>{}</th><td>{}</td></tr>",
                    esc(k),
                    to_html(k, x, depth - 1)
                );
            }
            out.push_str("</table>");
        }
        _ => out.push_str(&scalar(key, v)),
    }
    out
}

/// Scalars, and empty or short scalar lists.
fn is_compact(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.len() <= 8 && a.iter().all(is_scalar),
        Value::Object(o) => o.is_empty(),
        _ => true,
    }
}

/// `k: v, k: v` for a small flat object.
fn inline(o: &serde_json::Map<String, Value>) -> String {
    o.iter()
        .map(|(k, x)| {
            let v = match x {
                Value::Array(a) if a.is_empty() => r#"<span class="muted">none</span>"#.to_string(),
                Value::Array(a) => a
                    .iter()
                    .map(|y| scalar(k, y))
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::Object(_) => r#"<span class="muted">—</span>"#.to_string(),
                _ => scalar(k, x),
            };
            format!("<b>{}</b>: {v}", esc(k))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A table cell: scalars as they are, small objects inline.
fn cell_html(key: &str, v: &Value, depth: usize) -> String {
    match v {
        Value::Object(o) if o.len() <= 6 && o.values().all(is_compact) => inline(o),
        _ => to_html(key, v, depth.max(1)),
    }
}

/// The raw JSON in a collapsed block (cut when very long).
pub fn raw_details(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let shown = if text.len() > MAX_RAW {
        let mut cut = MAX_RAW;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!(
            "{}\n… cut at {} KB of {} KB (the file has it all)",
            text.get(..cut).unwrap_or(""),
            MAX_RAW / 1000,
            text.len() / 1000
        )
    } else {
        text
    };
    format!(
        "<details><summary>raw JSON</summary><pre>{}</pre></details>",
        esc(&shown)
    )
}

/// One checker's block: heading with its verdict, a summary table, raw JSON.
pub fn checker_block(id: &str, title: &str, v: &Value, note: &str) -> String {
    let mut out = String::new();
    let verdict = v.get("valid");
    let badge = match verdict {
        Some(x) => {
            let (class, text) = verdict_class(x);
            format!(r#" <span class="badge {class}">{text}</span>"#)
        }
        None => String::new(),
    };
    let _ = write!(
        out,
        r#"<div class="checker" id="ev-{}"><h3>{}{badge}</h3>"#,
        esc(id),
        esc(title)
    );
    if !note.is_empty() {
        let _ = write!(out, r#"<p class="note">{note}</p>"#);
    }
    out.push_str(&to_html(id, v, 4));
    out.push_str(&raw_details(v));
    out.push_str("</div>");
    out
}

/// Section 6: every checker in results.json, most important first.
pub fn evidence(results: Option<&Value>) -> String {
    let Some(r) = results.and_then(Value::as_object) else {
        return r#"<p class="missing">No results.json: this run was never judged. Run <code>hearsay check RUN_DIR</code>, then <code>hearsay report RUN_DIR</code>.</p>"#.into();
    };
    let mut out = String::new();
    let mut shown: Vec<&str> = vec!["valid"];
    // Data checkers first: they decide most verdicts.
    for (key, title) in [
        ("set", "set: lost, stale and unexpected elements"),
        ("linearizable", "register: linearizability per key"),
        ("counter", "counter: reads within bounds"),
        ("list-append", "list-append: lost appends, non-prefix reads"),
        ("error", "workload checker"),
        ("convergence", "recovery after the final heal"),
        (
            "crashes",
            "server crashes (panics, bug reports in node logs)",
        ),
    ] {
        if let Some(v) = r.get(key) {
            shown.push(key);
            if key == "crashes" {
                let wrapped = serde_json::json!({
                    "valid": v.as_array().is_none_or(|a| a.is_empty()),
                    "crash lines": v,
                });
                out.push_str(&checker_block(key, title, &wrapped, ""));
            } else {
                out.push_str(&checker_block(key, title, v, ""));
            }
        }
    }
    if let Some(p) = r.get("protocol") {
        shown.push("protocol");
        let (class, text) = verdict_class(p.get("valid").unwrap_or(&Value::Null));
        let _ = write!(
            out,
            r#"<h3 class="group">protocol checkers <span class="badge {class}">{text}</span></h3>"#
        );
        let mut any = false;
        for (key, title, note) in [
            ("fail-quorum", "fail-quorum: every FAIL backed by a majority of masters' reports", "One row per FAIL a node decided by itself: who decided, about whom, which reports it could count (reporter PFAIL really held, within the validity window) and the quorum needed."),
            ("convergence", "convergence: one slot map after the final heal", "Times are ms on the run's timeline."),
            ("epochs", "epochs: unique configEpochs, one vote per epoch, promotions with a majority", ""),
            ("detection-latency", "detection latency (measured, never invalidates)", "Per faulted node: ms from the fault's start to the first PFAIL, to the FAIL decision, and to FAIL being known by every expected node."),
        ] {
            if let Some(v) = p.get(key) {
                any = true;
                out.push_str(&checker_block(key, title, v, note));
            }
        }
        if !any {
            out.push_str(&checker_block("protocol", "protocol", p, ""));
        } else if let Some(n) = p
            .get("notes")
            .filter(|n| n.as_array().is_some_and(|a| !a.is_empty()))
        {
            let _ = write!(
                out,
                r#"<div class="checker"><h3>protocol notes</h3>{}</div>"#,
                to_html("notes", n, 2)
            );
        }
    }
    if let Some(p) = r.get("perf") {
        shown.push("perf");
        out.push_str(&perf_block(p));
    }
    for (key, title) in [
        ("stats", "op counts and latency per function"),
        ("nemesis", "nemesis steps and their verification"),
        ("run-info", "run timings"),
    ] {
        if let Some(v) = r.get(key) {
            shown.push(key);
            out.push_str(&checker_block(key, title, v, ""));
        }
    }
    // Anything else a newer harness writes.
    let rest: serde_json::Map<String, Value> = r
        .iter()
        .filter(|(k, _)| !shown.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !rest.is_empty() {
        out.push_str(&checker_block(
            "other",
            "other results",
            &Value::Object(rest),
            "",
        ));
    }
    out
}

/// The perf checker: latency quantiles as one table, windows by fault kind.
fn perf_block(p: &Value) -> String {
    let mut out = String::from(
        r#"<div class="checker" id="ev-perf"><h3>perf: latency, throughput and availability</h3>"#,
    );
    for (key, title) in [
        ("latency_ok", "latency of ok ops (ms)"),
        ("latency_all", "latency of all completions (ms)"),
    ] {
        let Some(m) = p.get(key).and_then(Value::as_object) else {
            continue;
        };
        let _ = write!(out, "<h4>{title}</h4><table><tr><th>f</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
        for (f, l) in m {
            let _ = write!(out, "<tr><th>{}</th>", esc(f));
            for k in ["count", "p50", "p90", "p99", "max"] {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    scalar(k, l.get(k).unwrap_or(&Value::Null))
                );
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
    let mut windows = serde_json::Map::new();
    if let Some(o) = p.get("overall") {
        windows.insert("whole run".into(), o.clone());
    }
    if let Some(b) = p.get("by_fault").and_then(Value::as_object) {
        for (k, v) in b {
            windows.insert(format!("during {k}"), v.clone());
        }
    }
    if !windows.is_empty() {
        out.push_str("<h4>availability and throughput by fault</h4><table><tr><th>window</th><th>seconds</th><th>ok</th><th>fail</th><th>info</th><th>availability</th><th>ok/s</th></tr>");
        for (k, w) in &windows {
            let _ = write!(out, "<tr><th>{}</th>", esc(k));
            for f in [
                "seconds",
                "ok",
                "fail",
                "info",
                "availability",
                "throughput",
            ] {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    scalar(f, w.get(f).unwrap_or(&Value::Null))
                );
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
    out.push_str(&raw_details(p));
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_and_lists_become_tables() {
        let v = json!({
            "valid": false,
            "lost": {"count": 2, "examples": [1, 2]},
            "evidence": [{"about": "n4", "decider": "n1"}, {"about": "n5", "extra": 3}],
        });
        let h = to_html("x", &v, 4);
        assert!(
            h.contains(r#"<span class="badge invalid">INVALID</span>"#),
            "{h}"
        );
        assert!(
            h.contains("<th>about</th><th>decider</th><th>extra</th>"),
            "{h}"
        );
        assert!(h.contains("<td>n5</td>"));
        assert!(h.contains("1, 2"));
    }

    #[test]
    fn long_lists_are_cut_and_markup_escaped() {
        let v = json!((0..100)
            .map(|i| json!({"i": i, "s": "<b>"}))
            .collect::<Vec<_>>());
        let h = to_html("x", &v, 3);
        assert!(h.contains("… 75 more rows"));
        assert!(!h.contains("<b>"));
        assert!(h.contains("&lt;b&gt;"));
    }

    #[test]
    fn missing_results_say_so() {
        assert!(evidence(None).contains("never judged"));
        let r = json!({"valid": true, "set": {"valid": true, "lost": {"count": 0}}, "future": {"x": 1}});
        let h = evidence(Some(&r));
        assert!(h.contains(r#"id="ev-set""#));
        assert!(h.contains(r#"id="ev-other""#), "unknown keys still shown");
    }
}
