//! `hearsay check RUN_DIR`: judges a stored run folder again, offline, and rewrites
//! its views.

use super::{render, verdict_text};

pub fn check(run_dir: &std::path::Path) -> i32 {
    // Follow `results/latest` style links to the real folder.
    let dir = std::fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    match crate::run::check_dir(&dir) {
        Ok(c) => {
            render::run_files(&dir);
            let set = &c.results["set"];
            if set.is_object() {
                println!(
                    "{}: valid {}  (adds {} acknowledged {} lost {} unexpected {} recovered {} stale reads {})",
                    dir.display(),
                    verdict_text(c.valid),
                    set["attempt_count"],
                    set["acknowledged_count"],
                    set["lost"]["count"],
                    set["unexpected"]["count"],
                    set["recovered"]["count"],
                    set["stale_count"],
                );
            } else {
                println!("{}: valid {}", dir.display(), verdict_text(c.valid));
                // Other workloads: their checker's own summary line.
                for (name, counts) in [
                    (
                        "linearizable",
                        &["ops", "info_ops", "invalid_key_count", "invalid_keys"][..],
                    ),
                    ("counter", &["add_count", "read_count", "error_count"][..]),
                    (
                        "list-append",
                        &["txn_count", "ok_count", "anomaly_types", "lost_count"][..],
                    ),
                ] {
                    if let Some(r) = c.results.get(name) {
                        let parts: Vec<String> =
                            counts.iter().map(|k| format!("{k} {}", r[*k])).collect();
                        println!("  {name}: valid {}  {}", r["valid"], parts.join(" "));
                        if let Some(e) = r.get("error") {
                            println!("  {name}: error: {e}");
                        }
                    }
                }
            }
            if let Some(summary) = c.results["claims"]["summary"].as_str() {
                println!("claims: {summary}");
            }
            if let Some(cov) = c.results["protocol"]["coverage"].as_array() {
                let none: Vec<&str> = cov
                    .iter()
                    .filter(|r| r["status"] == "no cases")
                    .filter_map(|r| r["rule"].as_str())
                    .collect();
                println!(
                    "coverage: {} rules, {} without a case{}",
                    cov.len(),
                    none.len(),
                    if none.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", none.join(", "))
                    }
                );
            }
            if let Some(why) = c.results["unknown-because"]
                .as_array()
                .filter(|w| !w.is_empty())
            {
                for w in why {
                    println!("unknown because: {}", w.as_str().unwrap_or(""));
                }
            }
            let p = &c.results["protocol"];
            println!(
                "protocol: fail-quorum {} ({} decisions), convergence {} ({} ms after heal), epochs {}",
                p["fail-quorum"]["valid"],
                p["fail-quorum"]["decisions"],
                p["convergence"]["valid"],
                p["convergence"]["convergence_ms"],
                p["epochs"]["valid"],
            );
            let unverified = c.results["nemesis"]["unverified"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0);
            if unverified > 0 {
                println!(
                    "warning: {unverified} nemesis steps could not be verified (see results.json)"
                );
            }
            c.valid.exit_code()
        }
        Err(e) => {
            eprintln!("hearsay check: {e}");
            2
        }
    }
}
