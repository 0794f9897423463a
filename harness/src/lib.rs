//! The hearsay chaos harness: network namespaces, targets, nemeses, seeded schedules,
//! the recorder and the results folder. The binary `hearsay` is a thin CLI over this.

pub mod compare;
pub mod delay;
pub mod doctor;
pub mod faketime;
pub mod form;
pub mod junit;
pub mod markup;
pub mod matrix;
pub mod nemesis;
pub mod net;
pub mod recorder;
pub mod registry;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod summary;
pub mod sys;
pub mod target;

/// For tests whose prerequisite (root, redis-server, libfaketime, ...) is missing:
/// prints why the test is skipped, but fails when `CI=true`, where every
/// prerequisite must be present.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing under CI=true: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}
