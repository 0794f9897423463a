//! The protocol checkers' entry: fail-quorum, convergence and epochs over one run's
//! [`RunData`](crate::run_data::RunData), with detection latency measured alongside.

use crate::run_data::RunData;
use crate::verdict::Valid;
use serde_json::Value;

/// The protocol checkers together: fail-quorum, convergence and epochs decide the
/// verdict; detection latency is measured alongside.
pub fn check_run(d: &RunData, convergence_bound_ms: Option<i64>) -> (Valid, Value) {
    let fq = crate::fail_quorum::check(d);
    let conv = crate::convergence::check(d, convergence_bound_ms);
    let ep = crate::epochs::check(d);
    let lat = crate::latency::measure(d);
    let valid = fq.valid.and(conv.valid).and(ep.valid);
    let v = serde_json::json!({
        "valid": valid,
        "fail-quorum": fq,
        "convergence": conv,
        "epochs": ep,
        "detection-latency": lat,
        "notes": d.notes.iter().take(20).collect::<Vec<_>>(),
    });
    (valid, v)
}
