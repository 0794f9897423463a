//! `junit.xml`: one `<testsuite>` per run, one `<testcase>` per checker, so CI
//! dashboards (GitHub, GitLab, Jenkins) list each checker of each run.
//!
//! - classname: `<test>.<nemesis>.seed<N>`, e.g. `set-redis.partition+kill.seed7`
//!   (test = workload-target; `,` in the nemesis list becomes `+` since dots and commas
//!   mean structure to junit viewers).
//! - valid → a passing case; invalid → `<failure>` whose message is the first evidence
//!   line and whose text is the evidence summary (full evidence: results.json).
//! - unknown → `<error type="unknown">` with the reason: the run's exit code is 2 for an
//!   unknown verdict, so CI must show it as not passed, never as skipped.
//! - a checker that did not run at all (e.g. no snapshots to judge) → `<skipped>`.
//!
//! All text is escaped for XML, and characters XML 1.0 cannot carry are replaced.

use crate::output::summary::{CheckerVerdict, Summary};
use hearsay_checkers::Valid;
use std::fmt::Write;

/// How a test case ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Passed,
    Failure { message: String, text: String },
    Error { message: String, text: String },
    Skipped { message: String },
}

/// One `<testcase>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub classname: String,
    pub name: String,
    pub time_s: f64,
    pub outcome: Outcome,
}

/// One `<testsuite>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Suite {
    pub name: String,
    /// ISO 8601 local-less UTC, `2026-11-22T21:51:36`.
    pub timestamp: Option<String>,
    pub time_s: f64,
    pub properties: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

impl Suite {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }
    pub fn failures(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failure { .. }))
    }
    pub fn errors(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error { .. }))
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped { .. }))
    }
}

pub use crate::output::markup::escape;

/// The classname of a run's cases.
pub fn classname(test: &str, nemesis: &str, seed: Option<u64>) -> String {
    let seed = seed.map_or_else(|| "seed?".to_string(), |s| format!("seed{s}"));
    let nemesis = if nemesis.is_empty() { "none" } else { nemesis };
    format!("{test}.{}.{seed}", nemesis.replace(',', "+"))
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 200 {
        line.chars().take(200).collect::<String>() + "..."
    } else {
        line.to_string()
    }
}

/// The suite of one checked run.
pub fn run_suite(s: &Summary, checks: &[CheckerVerdict]) -> Suite {
    let class = classname(&s.test, &s.nemesis, s.seed);
    let cases = checks
        .iter()
        .map(|c| {
            let outcome = match c.valid {
                Valid::True => Outcome::Passed,
                _ if c.skipped => Outcome::Skipped {
                    message: first_line(&c.detail),
                },
                Valid::False => Outcome::Failure {
                    message: first_line(&c.detail),
                    text: c.detail.clone(),
                },
                Valid::Unknown => Outcome::Error {
                    message: first_line(&c.detail),
                    text: c.detail.clone(),
                },
            };
            Case {
                classname: class.clone(),
                name: c.name.clone(),
                time_s: 0.0,
                outcome,
            }
        })
        .collect();
    Suite {
        name: class,
        timestamp: s
            .start
            .as_deref()
            .and_then(crate::output::summary::iso_stamp),
        time_s: s.duration_s.unwrap_or(0.0),
        properties: run_properties(s),
        cases,
    }
}

fn run_properties(s: &Summary) -> Vec<(String, String)> {
    vec![
        ("test".into(), s.test.clone()),
        ("target".into(), s.target.clone()),
        ("workload".into(), s.workload.clone()),
        ("nemesis".into(), s.nemesis.clone()),
        (
            "seed".into(),
            s.seed.map(|x| x.to_string()).unwrap_or_default(),
        ),
        ("run_dir".into(), s.run_dir.clone()),
        ("reproduce".into(), s.reproduce.clone()),
        (
            "claims".into(),
            s.claims
                .as_ref()
                .map(|c| c.summary.clone())
                .unwrap_or_default(),
        ),
        (
            "rules_without_cases".into(),
            s.coverage
                .iter()
                .filter(|r| r.status == "no cases")
                .map(|r| r.rule.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]
}

/// A suite for a run that produced no verdict: a harness error, or a run that was never
/// started (`skipped` set: e.g. the matrix's time budget ran out).
pub fn unrun_suite(name: &str, case: &str, reason: &str, skipped: bool) -> Suite {
    let outcome = if skipped {
        Outcome::Skipped {
            message: first_line(reason),
        }
    } else {
        Outcome::Error {
            message: first_line(reason),
            text: reason.to_string(),
        }
    };
    Suite {
        name: name.to_string(),
        timestamp: None,
        time_s: 0.0,
        properties: vec![],
        cases: vec![Case {
            classname: name.to_string(),
            name: case.to_string(),
            time_s: 0.0,
            outcome,
        }],
    }
}

/// The whole document.
pub fn render(suites: &[Suite]) -> String {
    let total = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>();
    let time: f64 = suites.iter().map(|s| s.time_s).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // write! into a String cannot fail.
    let _ = writeln!(
        x,
        "<testsuites name=\"hearsay\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.3}\">",
        total(|s| s.cases.len()),
        total(Suite::failures),
        total(Suite::errors),
        total(Suite::skipped),
    );
    for s in suites {
        let _ = write!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\"",
            escape(&s.name),
            s.cases.len(),
            s.failures(),
            s.errors(),
            s.skipped(),
            s.time_s
        );
        if let Some(t) = &s.timestamp {
            let _ = write!(x, " timestamp=\"{}\"", escape(t));
        }
        x.push_str(">\n");
        if !s.properties.is_empty() {
            x.push_str("    <properties>\n");
            for (k, v) in &s.properties {
                let _ = writeln!(
                    x,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    escape(k),
                    escape(v)
                );
            }
            x.push_str("    </properties>\n");
        }
        for c in &s.cases {
            let _ = write!(
                x,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&c.classname),
                escape(&c.name),
                c.time_s
            );
            match &c.outcome {
                Outcome::Passed => x.push_str("/>\n"),
                Outcome::Skipped { message } => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(message)
                    );
                }
                Outcome::Failure { message, text } => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure type=\"invalid\" message=\"{}\">{}</failure>\n    </testcase>",
                        escape(message),
                        escape(text)
                    );
                }
                Outcome::Error { message, text } => {
                    let _ = writeln!(
                        x,
                        ">\n      <error type=\"unknown\" message=\"{}\">{}</error>\n    </testcase>",
                        escape(message),
                        escape(text)
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A strict little checker for the subset of XML that `render` writes: a prolog,
    /// balanced elements, quoted attributes, and no raw `<` or `&` in text or
    /// attribute values. Returns the element names in document order.
    pub(crate) fn well_formed(x: &str) -> Result<Vec<String>, String> {
        let body = x
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .ok_or("no prolog")?;
        let mut stack: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut rest = body;
        let check_text = |t: &str| -> Result<(), String> {
            let mut r = t;
            while let Some(i) = r.find('&') {
                r = &r[i + 1..];
                let end = r.find(';').ok_or("& without ;")?;
                let ent = &r[..end];
                if !["amp", "lt", "gt", "quot", "apos"].contains(&ent) {
                    return Err(format!("bad entity &{ent};"));
                }
            }
            if t.contains('>') || t.contains('<') {
                return Err(format!("raw angle bracket in {t:?}"));
            }
            Ok(())
        };
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open])?;
            let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or("close without open")?;
                if top != name {
                    return Err(format!("</{name}> closes <{top}>"));
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("bad element name {name:?}"));
            }
            while !attrs.trim().is_empty() {
                let a = attrs.trim_start();
                let eq = a
                    .find("=\"")
                    .ok_or(format!("unquoted attribute in {tag:?}"))?;
                let after = &a[eq + 2..];
                let end = after.find('"').ok_or("unterminated attribute")?;
                check_text(&after[..end])?;
                attrs = &after[end + 1..];
            }
            names.push(name.to_string());
            if !self_closing {
                stack.push(name.to_string());
            }
        }
        check_text(rest)?;
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        if !rest.trim().is_empty() {
            return Err("text after the root".into());
        }
        Ok(names)
    }

    fn verdict(name: &str, valid: Valid, detail: &str, skipped: bool) -> CheckerVerdict {
        CheckerVerdict {
            name: name.into(),
            valid,
            detail: detail.into(),
            skipped,
        }
    }

    fn summary() -> Summary {
        crate::output::summary::summarize_parts(
            std::path::Path::new("/r/x"),
            &serde_json::json!({"name": "set-redis", "seed": 7, "start": "20261122T215136Z",
                "options": {"target": "redis", "workload": "set", "nemesis": "partition,kill"}}),
            &serde_json::json!({"valid": false}),
            &serde_json::Value::Null,
        )
    }

    #[test]
    fn every_checker_is_a_case_and_evidence_is_escaped() {
        let checks = [
            verdict(
                "set",
                Valid::False,
                "lost: [{\"key\":\"a<b>&'c\"}]\nstale: 3\u{1}",
                false,
            ),
            verdict("perf", Valid::True, "", false),
            verdict("epochs", Valid::Unknown, "n3: no events </error>", false),
            verdict("protocol", Valid::Unknown, "no snapshots.jsonl", true),
        ];
        let x = render(&[run_suite(&summary(), &checks)]);
        let names = well_formed(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
        assert_eq!(names.iter().filter(|n| *n == "testcase").count(), 4);
        assert_eq!(names.iter().filter(|n| *n == "failure").count(), 1);
        assert_eq!(names.iter().filter(|n| *n == "error").count(), 1);
        assert_eq!(names.iter().filter(|n| *n == "skipped").count(), 1);
        assert!(x.contains("a&lt;b&gt;&amp;&apos;c"), "{x}");
        assert!(x.contains("n3: no events &lt;/error&gt;"));
        assert!(!x.contains('\u{1}'));
        assert!(x.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""));
        assert!(x.contains("classname=\"set-redis.partition+kill.seed7\" name=\"set\""));
        assert!(x.contains("timestamp=\"2026-11-22T21:51:36\""));
        assert!(x.contains("<property name=\"seed\" value=\"7\"/>"));
    }

    #[test]
    fn the_checker_catches_bad_xml() {
        let p = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        assert!(well_formed(&format!("{p}<a><b></a></b>")).is_err());
        assert!(well_formed(&format!("{p}<a>x < y</a>")).is_err());
        assert!(well_formed(&format!("{p}<a>x & y</a>")).is_err());
        assert!(well_formed(&format!("{p}<a m=\"x\"y\"/>")).is_err());
        assert!(well_formed(&format!("{p}<a m=\"x&amp;y\"><b/></a>")).is_ok());
    }

    #[test]
    fn unrun_suites_total_up() {
        let a = unrun_suite("set-redis.kill.seed1", "run", "harness error: boom", false);
        let b = unrun_suite("set-redis.kill.seed2", "run", "time budget spent", true);
        let x = render(&[a, b]);
        well_formed(&x).unwrap();
        assert!(x.contains(
            "<testsuites name=\"hearsay\" tests=\"2\" failures=\"0\" errors=\"1\" skipped=\"1\""
        ));
    }
}
