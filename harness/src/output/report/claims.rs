//! The report's data-verdict and rule-coverage sections: what the claims model made of
//! each anomaly (explained by which documented mechanism, or not), what a linearizable
//! store would have ruled out, and how many cases each protocol rule judged.

use std::fmt::Write;

use serde_json::Value;

use super::evidence::verdict_class;
use super::svg::esc;

/// The "Data verdict and claims" section body.
pub fn claims(results: Option<&Value>) -> String {
    let Some(c) = results.map(|r| &r["claims"]).filter(|c| c.is_object()) else {
        return r#"<p class="note">No claims judgement in results.json (judged by an older hearsay): re-judge with <code>hearsay check</code>.</p>"#.into();
    };
    let mut out = String::new();
    let (class, word) = verdict_class(&c["data_valid"]);
    let _ = write!(
        out,
        r#"<p><span class="badge {class}">{word}</span> under <b>{}</b> claims: {}</p>"#,
        esc(c["model"].as_str().unwrap_or("?")),
        esc(c["summary"].as_str().unwrap_or(""))
    );
    let _ = write!(
        out,
        r#"<table class="kv"><tr><th>anomalies</th><td>{}</td></tr><tr><th>explained</th><td>{}</td></tr><tr><th>unexplained</th><td>{}</td></tr>"#,
        c["anomalies"], c["explained"], c["unexplained"]
    );
    if let Some(m) = c["by_mechanism"].as_object().filter(|m| !m.is_empty()) {
        let list: Vec<String> = m.iter().map(|(k, v)| format!("{} × {k}", v)).collect();
        let _ = write!(
            out,
            "<tr><th>by mechanism</th><td>{}</td></tr>",
            esc(&list.join(", "))
        );
    }
    for (k, label) in [
        ("redis_cluster", "redis-cluster claims"),
        ("linearizable", "linearizable claims"),
    ] {
        let (class, word) = verdict_class(&c[k]);
        let _ = write!(
            out,
            r#"<tr><th>{label}</th><td><span class="badge {class}">{word}</span></td></tr>"#
        );
    }
    out.push_str("</table>");
    let _ = write!(
        out,
        r#"<p><b>Gossip versus consensus:</b> {}</p>"#,
        esc(c["linearizable_contrast"]["text"].as_str().unwrap_or(""))
    );
    for (key, title) in [
        ("unexplained_examples", "Unexplained anomalies"),
        ("explained_examples", "Explained anomalies (examples)"),
    ] {
        let Some(list) = c[key].as_array().filter(|l| !l.is_empty()) else {
            continue;
        };
        let _ = write!(out, "<h3>{title}</h3><table><tr><th>kind</th><th>key</th><th>what</th><th>mechanism</th><th>evidence</th></tr>");
        for a in list.iter().take(25) {
            let ev = match &a["evidence"] {
                Value::Array(v) => v.first().cloned().unwrap_or(Value::Null),
                e => e.clone(),
            };
            let why = ev["why"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| ev.to_string());
            let _ = write!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(a["kind"].as_str().unwrap_or("")),
                esc(a["key"].as_str().unwrap_or("")),
                esc(a["what"].as_str().unwrap_or("")),
                esc(a["mechanism"].as_str().unwrap_or("—")),
                esc(&why)
            );
        }
        out.push_str("</table>");
    }
    out
}

/// The "Rule coverage" section body: one row per protocol rule.
pub fn coverage(results: Option<&Value>) -> String {
    let Some(rows) = results
        .and_then(|r| r["protocol"]["coverage"].as_array())
        .filter(|r| !r.is_empty())
    else {
        return r#"<p class="note">No rule coverage (no protocol evidence in this run folder, or judged by an older hearsay).</p>"#.into();
    };
    let mut out = String::from(
        "<table><tr><th>rule</th><th>status</th><th>cases judged</th><th>not judgeable</th><th>violations</th></tr>",
    );
    for r in rows {
        let status = r["status"].as_str().unwrap_or("?");
        let class = match status {
            "held" => "valid",
            "violated" => "invalid",
            _ => "unknown",
        };
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td><span class="badge {class}">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(r["rule"].as_str().unwrap_or("")),
            esc(status),
            r["cases"],
            r["unjudged"],
            r["violations"]
        );
    }
    out.push_str("</table>");
    let none: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "no cases")
        .filter_map(|r| r["rule"].as_str())
        .collect();
    if !none.is_empty() {
        let _ = write!(
            out,
            r#"<p class="note">No case in this run for: {} — these rules were not exercised; the packages of <code>--nemesis all</code> aim at them.</p>"#,
            esc(&none.join(", "))
        );
    }
    out
}
