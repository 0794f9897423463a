//! The hearsay chaos harness. Folders, top to bottom; imports point down only
//! (`scripts/import-graph --folders harness` checks it):
//!
//! - `cli/`: the subcommands (run, check, replay, report, compare, test-all, clean,
//!   doctor); the only folder that reads `output/`.
//! - `run/`: the phases of one test and its judgement (results.json), driving a target.
//! - `targets/`: one file per target behind the [`targets::Target`] interface.
//! - `faults/`: the schedule, the nemesis executor and its evidence, packet delay, clock.
//! - `env/`: namespaces and links, the registry of created resources and clean-up,
//!   processes, the recorder of the run folder's files.
//! - `output/`: summary, junit, report, compare and matrix tables, index: views of run
//!   folders; imports only `opts` and `env` below it, never `run/` or `cli/`.
//! - `sim/`: `hearsay sim`, the node's cluster core in deterministic simulated time;
//!   imports `run/`, `targets/` (pure helpers), `faults/`, `env/`, `opts`; read by
//!   `cli/` only.
//! - `opts`: the options of a test (a leaf anyone may read).

pub mod cli;
pub mod env;
pub mod faults;
pub mod opts;
pub mod output;
pub mod run;
pub mod sim;
pub mod targets;

/// For tests whose prerequisite (root, redis-server, libfaketime, ...) is missing:
/// prints why the test is skipped, but fails when `CI=true`, where every
/// prerequisite must be present.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing under CI=true: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}
