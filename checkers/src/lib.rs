//! History model and checkers for hearsay runs.
//!
//! Every checker reads only what a run folder holds (the history as JSON lines), so a
//! stored run can be judged again offline with `hearsay check RUN_DIR`.

pub mod claims;
pub mod claims_facts;
mod claims_standalone;
pub mod convergence;
pub mod counter;
pub mod detection;
pub mod elections;
pub mod epochs;
pub mod fail_quorum;
pub mod gen;
pub mod history;
pub mod latency;
pub mod linear;
pub mod list_append;
pub mod migration;
pub mod moves;
pub mod perf;
pub mod protocol;
pub mod redis_log;
pub mod run_data;
pub mod sentinel;
pub mod sentinel_log;
pub mod set;
pub mod set_full;
pub mod stats;
pub mod verdict;

#[cfg(test)]
mod testkit;

pub use history::{Op, OpType, Process};
pub use verdict::Valid;
