//! The run folder: `results/<test>/<start>-seed<N>/`, its test.json and schedule.json,
//! and the `latest` links.

use super::RunError;
use crate::env::stamp::utc_stamp;
use crate::opts::RunOpts;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// An `io::Error` mapper that names what failed.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Writes pretty JSON plus a newline.
pub fn write_json(path: &Path, v: &Value) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| RunError::Other(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(io(format!("write {}", path.display())))
}

/// A new run folder (never an existing one), absolute: nodes run with their own
/// working directory, so every path handed to them must be absolute.
pub fn create(
    results: &Path,
    test: &str,
    seed: u64,
    started: SystemTime,
) -> Result<PathBuf, RunError> {
    let run_name = format!("{}-seed{seed}", utc_stamp(started));
    let mut run_dir = results.join(test).join(&run_name);
    let mut k = 1;
    while run_dir.exists() {
        run_dir = results.join(test).join(format!("{run_name}.{k}"));
        k += 1;
    }
    std::fs::create_dir_all(run_dir.join("nodes")).map_err(io("create run dir"))?;
    std::fs::canonicalize(&run_dir).map_err(io("resolve run dir"))
}

/// test.json: every option (so `replay` can run it again), the seed, the start, the
/// resource prefix, the binaries and their versions.
pub struct TestJson<'a> {
    pub test: &'a str,
    pub seed: u64,
    pub started: SystemTime,
    pub prefix: &'a str,
    pub opts: &'a RunOpts,
    pub versions: serde_json::Map<String, Value>,
    pub binaries: Value,
}

impl TestJson<'_> {
    pub fn to_json(&self) -> Value {
        let mut stored = self.opts.clone();
        stored.seed = Some(self.seed);
        stored.test_count = 1;
        stored.dry_run = false;
        let mut versions = self.versions.clone();
        versions.insert("harness".into(), json!(env!("CARGO_PKG_VERSION")));
        json!({
            "name": self.test,
            "seed": self.seed,
            "start": utc_stamp(self.started),
            "prefix": self.prefix,
            "options": stored,
            "versions": versions,
            "binaries": self.binaries,
            "schedule-from": self.opts.schedule_from,
        })
    }
}

/// Points `<results>/<test>/latest` and `<results>/latest` at the run. Relative
/// links, so the results folder can be moved or archived.
pub fn link_latest(results: &Path, test: &str, run_dir: &Path) {
    let Some(run_name) = run_dir.file_name() else {
        return;
    };
    let set = |link: PathBuf, to: PathBuf| {
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(to, link);
    };
    set(results.join(test).join("latest"), PathBuf::from(run_name));
    set(results.join("latest"), Path::new(test).join(run_name));
}
