//! The data side of a judgement: the workload's checker, the anomalies it found, and
//! the claims model's verdict on them.

use hearsay_checkers::claims::{self, Anomaly, Facts, Model};
use hearsay_checkers::history::History;
use hearsay_checkers::run_data::RunData;
use hearsay_checkers::set::{self as set_checker, SetOptions};
use hearsay_checkers::Valid;
use hearsay_workloads::any::Workload;
use serde::Serialize;
use serde_json::{json, Value};

/// A workload checker's outcome.
pub struct DataVerdict {
    /// The results key (`set`, `linearizable`, `counter`, `list-append`).
    pub name: &'static str,
    /// The checker's own verdict: any anomaly is invalid (Jepsen's judgement).
    pub checker: Valid,
    pub result: Value,
    pub anomalies: Vec<Anomaly>,
    /// Acknowledged client writes during the workload (for the "too few ops" rule).
    pub ok_ops: usize,
}

/// Runs the workload's checker. A history the checker cannot read (a malformed op)
/// gets `unknown` with the error naming the op.
pub fn check_workload(workload: Workload, history: &History, stale_invalid: bool) -> DataVerdict {
    use hearsay_checkers::{counter, linear, list_append};
    fn failed(name: &'static str, e: impl std::fmt::Display) -> DataVerdict {
        DataVerdict {
            name,
            checker: Valid::Unknown,
            result: json!({"valid": Valid::Unknown, "error": e.to_string()}),
            anomalies: vec![],
            ok_ops: 0,
        }
    }
    fn verdict<T: Serialize>(
        name: &'static str,
        r: &T,
        valid: Valid,
        anomalies: Vec<Anomaly>,
    ) -> DataVerdict {
        DataVerdict {
            name,
            checker: valid,
            result: json!(r),
            anomalies,
            ok_ops: 0,
        }
    }
    let mut v = match workload {
        Workload::Set => {
            let r = set_checker::check(
                history,
                SetOptions {
                    linearizable: stale_invalid,
                },
            );
            // Per-element analysis (first seen, stable, lost, stale) rides along.
            let full = hearsay_checkers::set_full::check(history);
            let mut v = verdict(
                "set",
                &r,
                r.valid.and(full.valid),
                claims::set_anomalies(&r),
            );
            v.result["full"] = json!(full);
            v
        }
        Workload::Register => match linear::check(history, linear::LinearOptions::default()) {
            Ok(r) => {
                let mut a = claims::register_anomalies(&r);
                // Keys judged invalid without evidence listed cannot be attributed.
                for k in r.invalid_keys.iter().skip(a.len()) {
                    a.push(unattributed("nonlinearizable", k));
                }
                verdict("linearizable", &r, r.valid, a)
            }
            Err(e) => failed("linearizable", e),
        },
        Workload::Counter => match counter::check(history) {
            Ok(r) => verdict("counter", &r, r.valid, claims::counter_anomalies(&r)),
            Err(e) => failed("counter", e),
        },
        Workload::ListAppend => match list_append::check(history) {
            Ok(r) => verdict(
                "list-append",
                &r,
                r.valid,
                claims::list_append_anomalies(&r),
            ),
            Err(e) => failed("list-append", e),
        },
    };
    v.ok_ops = history
        .client_ops()
        .filter(|o| o.kind == hearsay_checkers::OpType::Ok && o.f != "final-read")
        .count();
    v
}

fn unattributed(kind: &str, key: &str) -> Anomaly {
    Anomaly {
        kind: kind.into(),
        key: key.into(),
        what: "listed by the checker without evidence to attribute".into(),
        acks: vec![],
        at: None,
        impossible: true,
    }
}

/// The claims judgement of the checker's anomalies; and the data verdict under the
/// run's model: the checker's `unknown` (a key never read...) stays unknown, an
/// anomaly counts as the model says.
pub fn judge_claims(
    model: Model,
    target: &str,
    data: &mut DataVerdict,
    d: &RunData,
    history: &History,
    test: &Value,
) -> (Valid, Value) {
    let o = &test["options"];
    let facts = Facts::with_options(
        d,
        history,
        claims::appendonly(test),
        o["min_replicas_to_write"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        o["auto_eject"].as_str() == Some("yes"),
    );
    let anomalies = std::mem::take(&mut data.anomalies);
    let n = anomalies.len();
    let c = claims::judge(model, target, anomalies, &facts);
    let valid = match (data.checker, c.valid) {
        // The checker found something it did not list as an anomaly: never valid.
        (Valid::False, _) if n == 0 => Valid::False,
        (_, Valid::False) => Valid::False,
        (Valid::Unknown, _) => Valid::Unknown,
        (_, v) => v,
    };
    let mut j = json!(c);
    // The data verdict under the run's model (what the run's verdict uses), beside
    // the checker's own (Jepsen's) in its section.
    j["data_valid"] = json!(valid);
    j["checker"] = json!(data.name);
    (valid, j)
}
