//! The CI files of a run folder: summary.json and junit.xml, from results.json (or,
//! when a harness error ended the run, from the error).

use crate::output::junit;
use crate::output::summary::{
    checkers, read_json, read_json_opt, summarize, summarize_parts, Summary, SummaryError,
};
use serde_json::Value;
use std::path::Path;

/// Writes summary.json and junit.xml into a checked run folder.
pub fn write_run_files(run_dir: &Path) -> Result<Summary, SummaryError> {
    let summary = summarize(run_dir)?;
    let results = read_json(&run_dir.join("results.json"))?;
    let write = |name: &str, text: String| {
        let path = run_dir.join(name);
        std::fs::write(&path, text).map_err(|source| SummaryError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
    write("summary.json", json + "\n")?;
    let suite = junit::run_suite(&summary, &checkers(&results));
    write("junit.xml", junit::render(&[suite]))?;
    Ok(summary)
}

/// For a run that a harness error ended before any verdict: summary.json (verdict
/// unknown, with the error) and a junit.xml whose one case is that error.
pub fn write_error_files(run_dir: &Path, error: &str) -> Result<Summary, SummaryError> {
    let test = read_json_opt(&run_dir.join("test.json"));
    let results = serde_json::json!({"valid": "unknown", "run-info": {"error": error}});
    let summary = summarize_parts(run_dir, &test, &results, &Value::Null);
    let path = run_dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
    std::fs::write(&path, json + "\n").map_err(|source| SummaryError::Write {
        path: path.display().to_string(),
        source,
    })?;
    let class = junit::classname(&summary.test, &summary.nemesis, summary.seed);
    let suite = junit::unrun_suite(&class, "run", &format!("harness error: {error}"), false);
    let path = run_dir.join("junit.xml");
    std::fs::write(&path, junit::render(&[suite])).map_err(|source| SummaryError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearsay_checkers::Valid;
    use serde_json::json;

    fn test_json() -> Value {
        json!({"name": "set-redis", "seed": 7, "start": "20261122T215136Z",
               "options": {"target": "redis", "workload": "set", "nemesis": "partition,kill",
                           "nemesis_interval": 5.0, "time_limit": 30.0, "nodes": 6, "seed": 7,
                           "schedule_from": null, "linearizable": false}})
    }

    #[test]
    fn a_run_ended_by_a_harness_error_still_gets_its_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("test.json"), test_json().to_string()).unwrap();
        let s = write_error_files(d.path(), "node n1 exited <early>").unwrap();
        assert_eq!((s.verdict, s.exit_code), (Valid::Unknown, 2));
        assert_eq!(s.error.as_deref(), Some("node n1 exited <early>"));
        let back: Summary =
            serde_json::from_str(&std::fs::read_to_string(d.path().join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(back, s);
        let x = std::fs::read_to_string(d.path().join("junit.xml")).unwrap();
        junit::tests::well_formed(&x).unwrap();
        assert!(
            x.contains("errors=\"1\"") && x.contains("&lt;early&gt;"),
            "{x}"
        );
    }
}
