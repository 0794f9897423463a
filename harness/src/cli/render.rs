//! The views of a run folder, written after a run or a check: summary.json and
//! junit.xml (from results.json), report.html and the results index. Failing to write
//! a view never changes a verdict.

use crate::run::{self, RunError, RunSummary};
use std::path::Path;

/// summary.json and junit.xml of a judged folder.
pub fn run_files(run_dir: &Path) {
    if let Err(e) = crate::output::run_files::write_run_files(run_dir) {
        eprintln!("[hearsay] summary.json / junit.xml not written: {e}");
    }
}

/// Runs one test and writes its views: summary, junit and report after a verdict;
/// the error files after a harness error inside the run.
pub async fn run_one(opts: &crate::opts::RunOpts) -> Result<RunSummary, RunError> {
    match run::run_one(opts).await {
        Ok(s) if s.dry_run => Ok(s),
        Ok(s) => {
            run_files(&s.run_dir);
            crate::output::report::after_run(&s.run_dir, &opts.results_dir);
            Ok(s)
        }
        Err(RunError::InRun { run_dir, source }) => {
            let _ = crate::output::run_files::write_error_files(&run_dir, &source.to_string());
            Err(RunError::InRun { run_dir, source })
        }
        Err(e) => Err(e),
    }
}
