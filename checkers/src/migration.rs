//! `single-writer`: no two nodes accepted writes for one key during a slot move.
//! Once the target acknowledged a write of a key of the moving slot, the source must
//! not acknowledge a later one (MIGRATE deletes the key from the source as it lands
//! on the target; the source then answers ASK, then MOVED). The moves and writes are
//! `RunData::moves` and `RunData::move_writes` (see `moves.rs`).

use crate::moves::Write;
use crate::run_data::RunData;
use crate::verdict::{Rule, Valid};
use serde_json::json;
use std::collections::BTreeMap;

/// `single-writer`: in each move's window, no write acknowledged by the source that
/// was invoked after the target acknowledged one of the same key. A move whose source
/// or target a process or network fault touched in the window is not judged (a
/// failover or a partition there has documented outcomes of its own).
pub fn single_writer(d: &RunData) -> Rule {
    let mut r = Rule::new(
        "single-writer",
        "during a slot move, once the target acknowledged a write of a key, the source \
         acknowledges none invoked later (MIGRATE moves a key atomically; the source then \
         redirects)",
    );
    if d.moves.is_empty() {
        r.notes.push("no slot moved in this run".into());
        return r;
    }
    for m in &d.moves {
        let (a, b) = m.window();
        let touched = d.faults.iter().any(|f| {
            matches!(f.kind.as_str(), "kill" | "pause" | "partition" | "clock")
                && f.start_ms <= b
                && f.stop_ms.is_none_or(|s| s >= a)
                && (f.targets.contains(&m.from) || f.targets.contains(&m.to))
        });
        let ws: Vec<&Write> = d
            .move_writes
            .iter()
            .filter(|w| hearsay_node::slots::key_slot(w.key.as_bytes()) == m.slot)
            .filter(|w| w.acked_ms >= a && w.invoked_ms <= b)
            .collect();
        if ws.is_empty() {
            continue;
        }
        if touched {
            r.unjudged += 1;
            continue;
        }
        r.cases += 1;
        let mut by_key: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
        for w in ws {
            by_key.entry(w.key.as_str()).or_default().push(w);
        }
        for (k, ws) in by_key {
            let first_at_target = ws
                .iter()
                .filter(|w| w.node == m.to)
                .min_by_key(|w| w.acked_ms);
            let Some(t) = first_at_target else { continue };
            if let Some(s) = ws
                .iter()
                .find(|w| w.node == m.from && w.invoked_ms > t.acked_ms)
            {
                r.violate(json!({
                    "slot": m.slot, "key": k, "from": m.from, "to": m.to,
                    "target_ack": {"index": t.index, "acked_ms": t.acked_ms},
                    "source_ack": {"index": s.index, "invoked_ms": s.invoked_ms, "acked_ms": s.acked_ms},
                    "why": format!("{} acknowledged a write of {k} invoked after {} had acknowledged one, while slot {} moved between them", m.from, m.to, m.slot),
                }));
            }
        }
    }
    if r.cases == 0 && r.violations.is_empty() {
        r.notes.push(format!(
            "{} slot moves, none with writes in its window on untouched nodes ({} touched by faults)",
            d.moves.len(),
            r.unjudged
        ));
    }
    if !r.violations.is_empty() {
        r.valid = Valid::False;
    }
    r
}
