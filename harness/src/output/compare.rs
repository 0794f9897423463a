//! The tables of `hearsay compare` (`cli/compare.rs` runs the targets): the same test
//! on hearsay and on redis-server (and a mixed cluster when asked) under the same
//! realised fault schedule, side by side.
//!
//! The first target runs with the seed; the others replay its resolved faults by node
//! index (`--schedule-from` the first run folder), so every column saw the same faults
//! at the same times. The table (`compare.md`, `compare.html`, `compare.json`) goes to
//! `<results>/compare/<start>-seed<N>/` and links each run folder. Every cell is
//! filled: a figure that cannot be measured says why.

use crate::output::summary::{self, CheckerVerdict, Stat, Summary};
use hearsay_checkers::Valid;
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One column: a target's run (or why it has none).
#[derive(Clone, Debug)]
pub struct Column {
    pub target: String,
    pub summary: Option<Summary>,
    pub checkers: Vec<CheckerVerdict>,
    /// Why the run gave no results (harness error, unreadable folder).
    pub error: Option<String>,
}

impl Column {
    /// Reads a checked run folder.
    pub fn from_dir(target: &str, run_dir: &Path) -> Column {
        let results = std::fs::read_to_string(run_dir.join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        match (summary::summarize(run_dir), results) {
            (Ok(s), Some(r)) => Column {
                target: target.to_string(),
                summary: Some(s),
                checkers: summary::checkers(&r),
                error: None,
            },
            (Err(e), _) => Column::failed(target, &e.to_string()),
            (_, None) => Column::failed(target, "results.json missing or unreadable"),
        }
    }

    pub fn failed(target: &str, error: &str) -> Column {
        Column {
            target: target.to_string(),
            summary: None,
            checkers: vec![],
            error: Some(error.to_string()),
        }
    }

    /// The column's verdict; a run without results is unknown.
    pub fn verdict(&self) -> Valid {
        self.summary.as_ref().map_or(Valid::Unknown, |s| s.verdict)
    }
}

/// One table row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub label: String,
    pub cells: Vec<String>,
}

fn verdict_text(v: Valid) -> &'static str {
    match v {
        Valid::True => "valid",
        Valid::False => "INVALID",
        Valid::Unknown => "unknown",
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn short(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > max {
        line.chars().take(max).collect::<String>() + "..."
    } else {
        line.to_string()
    }
}

/// Why a detection figure is missing.
fn detection_cell(st: &Stat, s: &Summary, what: &str) -> String {
    if st.count > 0 {
        return format!(
            "{} / {} ms (n={} of {} faulted)",
            st.median.unwrap_or(0),
            st.max.unwrap_or(0),
            st.count,
            s.figures.faulted_nodes
        );
    }
    if let Some(n) = s.figures.notes.first() {
        return format!("not measured: {n}");
    }
    if s.figures.faulted_nodes == 0 {
        return "not measured: no fault cut a node off from a majority (nothing to detect)".into();
    }
    format!(
        "none: no {what} within the fault window of any of {} faulted nodes",
        s.figures.faulted_nodes
    )
}

fn failover_cell(s: &Summary) -> String {
    let f = &s.figures;
    if f.failover_ms.count > 0 {
        return format!(
            "{} / {} ms (n={} of {} failed masters)",
            f.failover_ms.median.unwrap_or(0),
            f.failover_ms.max.unwrap_or(0),
            f.failover_ms.count,
            f.masters_faulted
        );
    }
    if let Some(n) = f.notes.first() {
        return format!("not measured: {n}");
    }
    if f.masters_faulted == 0 {
        return "no failover: no master failed".into();
    }
    format!(
        "no failover: {} master(s) cut off, no replica won an election for them",
        f.masters_faulted
    )
}

fn data_cell(s: &Summary) -> String {
    let d = &s.figures.data;
    let n = |x: Option<u64>| x.map_or_else(|| "?".to_string(), |v| v.to_string());
    match d.checker.as_str() {
        "set" => format!("lost {}, stale reads {}", n(d.lost), n(d.stale)),
        "linearizable" => format!(
            "non-linearizable keys {} (register: no lost/stale count)",
            n(d.nonlinearizable_keys)
        ),
        "counter" => format!("out-of-bounds reads {}", n(d.bad_reads)),
        "list-append" => format!(
            "lost {}, anomalies {}",
            n(d.lost),
            d.anomalies
                .as_ref()
                .filter(|a| !a.is_empty())
                .map_or_else(|| "none".to_string(), |a| a.join(","))
        ),
        _ => "not measured: no data checker result".into(),
    }
}

fn bus_cell(s: &Summary, pick: fn(&summary::BusNode) -> Option<u64>) -> String {
    let bus = &s.figures.bus;
    if bus.is_empty() {
        return "not collected: no bus-stats.json in the run folder".into();
    }
    let vals: Vec<(&String, u64)> = bus
        .iter()
        .filter_map(|(n, b)| Some((n, pick(b)?)))
        .collect();
    let (Some(min), Some(max)) = (
        vals.iter().min_by_key(|(_, v)| *v),
        vals.iter().max_by_key(|(_, v)| *v),
    ) else {
        let why = bus
            .values()
            .find_map(|b| b.error.clone())
            .unwrap_or_default();
        return format!("not measured: no node answered CLUSTER INFO ({why})");
    };
    let mean = vals.iter().map(|(_, v)| *v).sum::<u64>() / vals.len() as u64;
    let mut cell = format!(
        "mean {mean}; min {} ({}), max {} ({})",
        min.1, min.0, max.1, max.0
    );
    let missing = bus.len() - vals.len();
    if missing > 0 {
        let _ = write!(cell, "; {missing} node(s) not counted");
    }
    cell
}

fn bus_nodes_cell(s: &Summary) -> String {
    let bus = &s.figures.bus;
    if bus.is_empty() {
        return "not collected: no bus-stats.json in the run folder".into();
    }
    bus.iter()
        .map(|(n, b)| match (b.sent, b.received) {
            (Some(a), Some(r)) => format!("{n} {a}/{r}"),
            _ => format!("{n} -- ({})", b.error.as_deref().unwrap_or("no counters")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of the table, every cell filled.
pub fn rows(cols: &[Column]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut push = |label: &str, f: &dyn Fn(&Column, &Summary) -> String| {
        let cells = cols
            .iter()
            .map(|c| match &c.summary {
                Some(s) => f(c, s),
                None => format!(
                    "no run: {}",
                    short(c.error.as_deref().unwrap_or("unknown error"), 120)
                ),
            })
            .collect();
        rows.push(Row {
            label: label.to_string(),
            cells,
        });
    };
    push("verdict", &|_, s| verdict_text(s.verdict).to_string());
    push("data under claims", &|_, s| match &s.claims {
        Some(c) => c.summary.clone(),
        None => "no claims judgement (judged by an older hearsay)".into(),
    });
    push("rules without cases", &|_, s| {
        let none: Vec<&str> = s
            .coverage
            .iter()
            .filter(|r| r.status == "no cases")
            .map(|r| r.rule.as_str())
            .collect();
        match (s.coverage.is_empty(), none.is_empty()) {
            (true, _) => "no coverage recorded".into(),
            (false, true) => "none: every rule judged a case".into(),
            (false, false) => none.join(", "),
        }
    });
    // Checker names in first-seen order over all columns.
    let mut names: Vec<String> = Vec::new();
    for c in cols {
        for v in &c.checkers {
            if !names.contains(&v.name) {
                names.push(v.name.clone());
            }
        }
    }
    for name in &names {
        push(
            &format!("checker: {name}"),
            &|c, _| match c.checkers.iter().find(|v| &v.name == name) {
                Some(v) if v.valid == Valid::True => "valid".into(),
                Some(v) => format!("{}: {}", verdict_text(v.valid), short(&v.detail, 100)),
                None => "not run in this run".into(),
            },
        );
    }
    push("client ops ok / fail / info", &|_, s| {
        let o = &s.figures.ops;
        format!("{} / {} / {}", o.ok, o.fail, o.info)
    });
    push("availability (ok / all ops)", &|_, s| {
        s.figures
            .availability
            .map_or_else(|| "not measured: no client op completed".into(), pct)
    });
    push("availability during faults", &|_, s| match (
        s.figures.availability_during_faults,
        s.figures.faults,
    ) {
        (Some(a), _) => pct(a),
        (None, Some(0)) => "not measured: no fault ran".into(),
        (None, _) => "not measured: no client op completed during a fault".into(),
    });
    push("lost / stale writes", &|_, s| data_cell(s));
    push("detection: first PFAIL (median / max)", &|_, s| {
        detection_cell(&s.figures.first_pfail_ms, s, "PFAIL")
    });
    push("detection: FAIL decided (median / max)", &|_, s| {
        detection_cell(&s.figures.fail_decided_ms, s, "FAIL decision")
    });
    push(
        "detection: FAIL known everywhere (median / max)",
        &|_, s| {
            detection_cell(
                &s.figures.fail_known_by_all_ms,
                s,
                "FAIL reaching every node",
            )
        },
    );
    push("failover: fault -> replica won (median / max)", &|_, s| {
        failover_cell(s)
    });
    push(
        "convergence: final heal -> agreed slot maps",
        &|_, s| match s.figures.convergence_ms {
            Some(ms) => format!("{ms} ms"),
            None => match s.checkers.get("convergence") {
                Some(Valid::False) => "did not converge (see checker row)".into(),
                Some(_) => "not measured: convergence checker gave no time".into(),
                None => format!(
                    "not measured: {}",
                    s.figures
                        .notes
                        .first()
                        .map_or("protocol checkers did not run", String::as_str)
                ),
            },
        },
    );
    push("bus msgs sent per node", &|_, s| bus_cell(s, |b| b.sent));
    push("bus msgs received per node", &|_, s| {
        bus_cell(s, |b| b.received)
    });
    push("bus msgs per node (sent/received)", &|_, s| {
        bus_nodes_cell(s)
    });
    push("bus bytes per node", &|_, _| {
        "not available: CLUSTER INFO counts messages, not bytes".into()
    });
    push("faults started", &|_, s| {
        s.figures
            .faults
            .map_or_else(|| "not recorded (no run-info)".into(), |n| n.to_string())
    });
    push("run duration", &|_, s| {
        s.duration_s.map_or_else(
            || "not recorded (no start stamp or run-info.json)".into(),
            |d| format!("{d:.1} s"),
        )
    });
    rows
}

/// `to` relative to the directory `from` (both absolute), for links that survive
/// moving the results folder.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let a: Vec<_> = from.components().collect();
    let b: Vec<_> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut p = PathBuf::new();
    for _ in common..a.len() {
        p.push("..");
    }
    for c in b.iter().skip(common) {
        p.push(c);
    }
    p
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The markdown table (what `compare` prints).
pub fn markdown(title: &str, notes: &[String], cols: &[Column], links: &[String]) -> String {
    let mut m = format!("# {title}\n\n");
    for n in notes {
        let _ = writeln!(m, "- {}", md_cell(n));
    }
    if !notes.is_empty() {
        m.push('\n');
    }
    let _ = writeln!(
        m,
        "| | {} |",
        cols.iter()
            .map(|c| md_cell(&c.target))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(m, "|---|{}", "---|".repeat(cols.len()));
    for r in rows(cols) {
        let _ = writeln!(
            m,
            "| {} | {} |",
            md_cell(&r.label),
            r.cells
                .iter()
                .map(|c| md_cell(c))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let _ = writeln!(
        m,
        "| run folder | {} |",
        links
            .iter()
            .map(|l| if l.is_empty() {
                "none".to_string()
            } else {
                format!("[{0}]({0})", md_cell(l))
            })
            .collect::<Vec<_>>()
            .join(" | ")
    );
    m
}

fn html_escape(s: &str) -> String {
    crate::output::junit::escape(s)
}

/// The same table as one self-contained HTML page (inline CSS, no scripts, no network).
pub fn html(title: &str, notes: &[String], cols: &[Column], links: &[String]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\n\
         body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}\n\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:14px}}\n\
         th{{background:#f3f3f3;text-align:left}}td.label{{font-weight:600;white-space:nowrap}}\n\
         .valid{{background:#dff5df}}.invalid{{background:#f8d7d7}}.unknown{{background:#fff3c4}}\n\
         </style></head><body>\n<h1>{}</h1>\n<ul>\n",
        html_escape(title),
        html_escape(title)
    );
    for n in notes {
        let _ = writeln!(h, "<li>{}</li>", html_escape(n));
    }
    h.push_str("</ul>\n<table>\n<tr><th></th>");
    for c in cols {
        let _ = write!(h, "<th>{}</th>", html_escape(&c.target));
    }
    h.push_str("</tr>\n");
    for r in rows(cols) {
        let _ = write!(h, "<tr><td class=\"label\">{}</td>", html_escape(&r.label));
        for c in &r.cells {
            let class = if c == "valid" {
                " class=\"valid\""
            } else if c.starts_with("INVALID") {
                " class=\"invalid\""
            } else if c.starts_with("unknown") || c.starts_with("no run") {
                " class=\"unknown\""
            } else {
                ""
            };
            let _ = write!(h, "<td{class}>{}</td>", html_escape(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("<tr><td class=\"label\">run folder</td>");
    for l in links {
        if l.is_empty() {
            h.push_str("<td>none</td>");
        } else {
            let _ = write!(h, "<td><a href=\"{0}/\">{0}</a></td>", html_escape(l));
        }
    }
    h.push_str("</tr>\n</table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(target: &str, verdict: Valid) -> Summary {
        let results = json!({
            "valid": verdict,
            "set": {"valid": verdict, "lost": {"count": 1, "examples": [{"key": "k|1"}]}, "stale_count": 0},
            "perf": {"valid": true, "overall": {"ok": 90, "fail": 10, "info": 0, "availability": 0.9},
                     "by_fault": {"healthy": {"ok": 80, "fail": 0, "info": 0}, "kill": {"ok": 10, "fail": 10, "info": 0}}},
            "protocol": {"valid": true, "fail-quorum": {"valid": true}, "convergence": {"valid": true, "convergence_ms": 40},
                         "epochs": {"valid": true},
                         "detection-latency": {"summary": {"faulted_nodes": 1,
                            "first_pfail_ms": {"count": 1, "median": 2100, "max": 2100},
                            "fail_decided_ms": {"count": 1, "median": 2600, "max": 2600},
                            "fail_known_by_all_ms": {"count": 0},
                            "masters_faulted": 0, "failover_ms": {"count": 0}}}},
            "crashes": [], "complete-run": true, "run-info": {"faults": 1}
        });
        summary::summarize_parts(
            Path::new("/r/x"),
            &json!({"name": format!("set-{target}"), "seed": 7, "start": "20261122T215136Z",
                    "options": {"target": target, "workload": "set", "nemesis": "kill"}}),
            &results,
            &json!({"nodes": {"n1": {"sent": 100, "received": 90}, "n2": {"sent": 300, "received": 310},
                              "n3": {"error": "not running at the end of the run"}}}),
        )
    }

    fn col(target: &str, verdict: Valid) -> Column {
        let s = summary(target, verdict);
        let results = json!({"valid": verdict, "set": {"valid": verdict, "lost": {"count": 1}}});
        Column {
            target: target.into(),
            checkers: summary::checkers(&results),
            summary: Some(s),
            error: None,
        }
    }

    #[test]
    fn every_cell_is_filled_and_says_why_when_unmeasured() {
        let cols = vec![
            col("hearsay", Valid::True),
            col("redis", Valid::False),
            Column::failed("mixed", "node n2 exited during startup"),
        ];
        let rows = rows(&cols);
        for r in &rows {
            assert_eq!(r.cells.len(), 3, "{r:?}");
            for c in &r.cells {
                assert!(!c.trim().is_empty(), "empty cell in {r:?}");
            }
        }
        let cell = |label: &str, i: usize| {
            rows.iter()
                .find(|r| r.label.starts_with(label))
                .unwrap_or_else(|| panic!("no row {label}"))
                .cells[i]
                .clone()
        };
        assert_eq!(cell("verdict", 0), "valid");
        assert_eq!(cell("verdict", 1), "INVALID");
        assert!(cell("verdict", 2).starts_with("no run: node n2 exited"));
        assert!(cell("checker: set", 1).starts_with("INVALID: lost"));
        assert_eq!(cell("availability during faults", 0), "50.0%");
        assert_eq!(cell("lost / stale", 0), "lost 1, stale reads 0");
        assert_eq!(
            cell("detection: first PFAIL", 0),
            "2100 / 2100 ms (n=1 of 1 faulted)"
        );
        assert!(cell("detection: FAIL known", 0).starts_with("none: "));
        assert_eq!(cell("failover", 0), "no failover: no master failed");
        assert_eq!(cell("convergence", 0), "40 ms");
        assert_eq!(
            cell("bus msgs sent", 0),
            "mean 200; min 100 (n1), max 300 (n2); 1 node(s) not counted"
        );
        assert!(cell("bus msgs per node", 0).contains("n3 -- (not running"));
        assert!(cell("bus bytes", 1).starts_with("not available"));
    }

    #[test]
    fn markdown_and_html_escape_and_link() {
        let cols = vec![col("hearsay", Valid::True), col("redis", Valid::False)];
        let links = vec!["../../set-hearsay/a".to_string(), String::new()];
        let md = markdown("t", &["n|ote".into()], &cols, &links);
        assert!(md.contains("| | hearsay | redis |"), "{md}");
        assert!(md.contains("n\\|ote"));
        assert!(md.contains("[../../set-hearsay/a](../../set-hearsay/a) | none |"));
        // Every table line has the same number of cells.
        let widths: Vec<usize> = md
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.replace("\\|", "").matches('|').count())
            .collect();
        assert!(widths.iter().all(|w| *w == 4), "{widths:?}\n{md}");
        let h = html("t<x>", &[], &cols, &links);
        assert!(h.contains("<title>t&lt;x&gt;</title>"));
        assert!(h.contains("<td class=\"invalid\">INVALID</td>"));
        assert!(
            !h.contains("http"),
            "self-contained: no external references"
        );
    }

    #[test]
    fn relative_links() {
        assert_eq!(
            relative(Path::new("/r/compare/x"), Path::new("/r/set-redis/y")),
            PathBuf::from("../../set-redis/y")
        );
    }
}
