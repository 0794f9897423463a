//! `--shrink`: reduces a failing seed's schedule while the run still fails
//! with one of the rules it broke: drop faults one by one, halve windows,
//! drop nodes (faults naming a node that is gone go too), end the workload
//! soon after the last fault. Greedy (delta debugging's one-at-a-time pass,
//! repeated until nothing more goes), each try a full simulated run.

use super::{run_seed, SimOpts, SimRun};
use crate::faults::schedule::{self, Planned};
use crate::opts::RunOpts;
use crate::run::{folder, RunError};
use hearsay_checkers::Valid;
use serde_json::json;
use std::path::PathBuf;

/// The minimal schedule found.
pub struct Shrunk {
    pub faults: usize,
    pub nodes: usize,
    pub tries: usize,
    /// `shrunk-schedule.json` in the last failing run's folder.
    pub path: PathBuf,
    pub dir: PathBuf,
}

pub fn shrink(opts: &RunOpts, failed: &SimRun, sim: &SimOpts) -> Result<Shrunk, RunError> {
    let mut planned = schedule::load_realised(&failed.dir)?;
    let mut o = opts.clone();
    let want = failed.broken.clone();
    let tries = std::cell::Cell::new(0usize);
    let mut best_dir = failed.dir.clone();
    // Whether this schedule and these options still break one of the rules.
    let still_fails = |o: &RunOpts, p: &[Planned], best: &mut PathBuf| -> bool {
        tries.set(tries.get() + 1);
        if p.is_empty() || schedule::timeline(p).is_err() {
            return false;
        }
        let Ok(r) = run_seed(o, failed.seed, Some(p.to_vec()), sim) else {
            return false;
        };
        let hit = r.valid == Valid::False && r.broken.iter().any(|b| want.contains(b));
        if hit {
            let old = std::mem::replace(best, r.dir.clone());
            if old != failed.dir {
                let _ = std::fs::remove_dir_all(old);
            }
        } else {
            let _ = std::fs::remove_dir_all(&r.dir);
        }
        hit
    };
    loop {
        let before = (planned.len(), o.nodes, total_ms(&planned));
        // Fewer faults.
        let mut i = 0;
        while i < planned.len() && planned.len() > 1 {
            let mut p = planned.clone();
            p.remove(i);
            if still_fails(&o, &p, &mut best_dir) {
                planned = p;
            } else {
                i += 1;
            }
        }
        // Shorter windows.
        for i in 0..planned.len() {
            let mut p = planned.clone();
            let w = p[i].stop_ms - p[i].start_ms;
            if w < 400 {
                continue;
            }
            p[i].stop_ms = p[i].start_ms + w / 2;
            if still_fails(&o, &p, &mut best_dir) {
                planned = p;
            }
        }
        // Fewer nodes (keeping at least three shards' worth).
        let min_nodes = 3 * (o.replicas + 1);
        while o.nodes > min_nodes {
            let mut o2 = o.clone();
            o2.nodes -= 1;
            let p: Vec<Planned> = planned
                .iter()
                .filter(|p| {
                    schedule::node_indices(&p.fault)
                        .iter()
                        .all(|n| *n < o2.nodes)
                })
                .cloned()
                .collect();
            if still_fails(&o2, &p, &mut best_dir) {
                o = o2;
                planned = p;
            } else {
                break;
            }
        }
        // A workload that ends soon after the last fault.
        let end = planned.iter().map(|p| p.stop_ms).max().unwrap_or(0) + 10_000;
        if (end as f64) < o.time_limit * 1000.0 {
            let mut o2 = o.clone();
            o2.time_limit = end as f64 / 1000.0;
            if still_fails(&o2, &planned, &mut best_dir) {
                o = o2;
            }
        }
        if (planned.len(), o.nodes, total_ms(&planned)) == before || tries.get() > 300 {
            break;
        }
    }
    let path = best_dir.join("shrunk-schedule.json");
    folder::write_json(
        &path,
        &json!({
            "seed": failed.seed,
            "broken": want,
            "nodes": o.nodes,
            "time_limit": o.time_limit,
            "schedule": planned,
            "replay": format!("hearsay sim --seed {} --nodes {} --time-limit {} --schedule-from {} ...", failed.seed, o.nodes, o.time_limit, best_dir.display()),
        }),
    )?;
    Ok(Shrunk {
        faults: planned.len(),
        nodes: o.nodes,
        tries: tries.get(),
        path,
        dir: best_dir,
    })
}

fn total_ms(p: &[Planned]) -> u64 {
    p.iter().map(|x| x.stop_ms - x.start_ms).sum()
}
