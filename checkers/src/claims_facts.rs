//! The facts the claims model reads for one run, gathered once: ops by history
//! index, node names and IDs, each slot's majority owner per snapshot round, the
//! fault windows active at a time, the replication offsets around it. Shared by the
//! Redis Cluster mechanisms (`claims`) and those of Sentinel and twemproxy
//! (`claims_standalone`), which both read it and neither of which it reads.

use std::collections::{BTreeMap, HashMap};

use crate::convergence::rounds;
use crate::history::{History, Op};
use crate::run_data::{Ev, FaultWindow, RunData};

/// A slot's majority owner (ID) per snapshot round: (round time, owner).
type OwnerTimeline = Vec<(i64, Option<String>)>;

/// A sampled offset and the replication ID it belongs to.
type OffsetAt<'s> = Option<(u64, &'s str)>;

/// The facts of a run the mechanisms look at, indexed once.
pub struct Facts<'a> {
    pub(crate) d: &'a RunData,
    /// Ops by history index.
    pub(crate) ops: HashMap<u64, &'a Op>,
    /// Completion index -> invocation index.
    pub(crate) invoke_of: HashMap<u64, u64>,
    /// Node name -> ID (every ID it had), and ID -> name.
    ids: HashMap<String, Vec<String>>,
    pub(crate) appendonly: bool,
    /// Per slot: the majority owner (ID) in each snapshot round, in time order.
    owners: std::cell::RefCell<HashMap<u16, OwnerTimeline>>,
    /// Slack on node_timeout windows (cron period, gossip, client latency).
    pub(crate) slack_ms: i64,
    /// Snapshot rounds, computed once.
    rounds: Vec<Vec<&'a crate::run_data::Snapshot>>,
    /// Sentinel: the data nodes' `min-replicas-to-write`.
    pub(crate) min_replicas_to_write: u32,
    /// twemproxy: `auto_eject_hosts`.
    pub(crate) auto_eject: bool,
}

impl<'a> Facts<'a> {
    pub fn new(d: &'a RunData, history: &'a History, appendonly: bool) -> Facts<'a> {
        Facts::with_options(d, history, appendonly, 0, false)
    }

    /// With the Sentinel and twemproxy options the claims depend on.
    pub fn with_options(
        d: &'a RunData,
        history: &'a History,
        appendonly: bool,
        min_replicas_to_write: u32,
        auto_eject: bool,
    ) -> Facts<'a> {
        let mut ops = HashMap::new();
        let mut invoke_of = HashMap::new();
        for op in &history.ops {
            ops.insert(op.index, op);
        }
        for (inv, done) in history.pairs() {
            if let Some(d) = done {
                invoke_of.insert(d.index, inv.index);
            }
        }
        let mut ids: HashMap<String, Vec<String>> = HashMap::new();
        for (id, name) in &d.names {
            ids.entry(name.clone()).or_default().push(id.clone());
        }
        Facts {
            d,
            ops,
            invoke_of,
            ids,
            appendonly,
            owners: Default::default(),
            slack_ms: d.node_timeout_ms / 2 + 1000,
            rounds: rounds(&d.snapshots),
            min_replicas_to_write,
            auto_eject,
        }
    }

    pub(crate) fn time_ms(&self, index: u64) -> Option<i64> {
        self.ops.get(&index).map(|o| (o.time / 1_000_000) as i64)
    }

    pub(crate) fn name_of(&self, id: &str) -> String {
        self.d.name(id)
    }

    pub(crate) fn is_node(&self, id: &str, name: &str) -> bool {
        self.ids
            .get(name)
            .is_some_and(|v| v.iter().any(|x| x == id))
    }

    /// The slot's majority owner per snapshot round.
    pub(crate) fn owner_timeline(&self, slot: u16) -> OwnerTimeline {
        if let Some(v) = self.owners.borrow().get(&slot) {
            return v.clone();
        }
        let mut out = Vec::new();
        for rd in &self.rounds {
            let mut votes: BTreeMap<Option<String>, usize> = BTreeMap::new();
            let mut answered = 0;
            let mut t = i64::MIN;
            for s in rd {
                let Some(view) = &s.lines else { continue };
                answered += 1;
                t = t.max(s.t_ms);
                let owner = view
                    .iter()
                    .find(|l| l.master && l.slots.iter().any(|(a, b)| *a <= slot && slot <= *b))
                    .map(|l| l.id.clone());
                *votes.entry(owner).or_default() += 1;
            }
            if answered == 0 {
                continue;
            }
            if let Some((owner, n)) = votes.into_iter().max_by_key(|(_, n)| *n) {
                if n * 2 > answered {
                    out.push((t, owner));
                }
            }
        }
        self.owners.borrow_mut().insert(slot, out.clone());
        out
    }

    /// The slot's majority owner at `t` (the last round at or before it).
    pub(crate) fn owner_at(&self, slot: u16, t: i64) -> Option<String> {
        self.owner_timeline(slot)
            .into_iter()
            .rfind(|(rt, _)| *rt <= t)
            .and_then(|(_, o)| o)
    }

    /// Ownership changes of `slot` after `t`: (time of the first round showing the new
    /// owner, previous owner, new owner).
    pub(crate) fn changes_after(&self, slot: u16, t: i64) -> Vec<(i64, Option<String>, String)> {
        let tl = self.owner_timeline(slot);
        let mut out = Vec::new();
        let mut prev = self.owner_at(slot, t);
        for (rt, o) in tl.into_iter().filter(|(rt, _)| *rt > t) {
            if let Some(new) = &o {
                if Some(new) != prev.as_ref() {
                    out.push((rt, prev.clone(), new.clone()));
                }
            }
            prev = o;
        }
        out
    }

    /// [`Facts::changes_after`] without the slot moves of reshards and the final
    /// repair (a new owner that is the move's source or target, once it opened): a
    /// migration hands the keys over with the slot, so it explains no loss.
    pub(crate) fn failovers_after(&self, slot: u16, t: i64) -> Vec<(i64, Option<String>, String)> {
        let mut out = self.changes_after(slot, t);
        out.retain(|(tc, _, new)| {
            let new = self.name_of(new);
            !self
                .d
                .moves
                .iter()
                .any(|m| m.slot == slot && *tc >= m.opened_ms && (m.to == new || m.from == new))
        });
        out
    }

    /// Whether `a` and `b` (names) could exchange packets at `t`, by the fault windows.
    pub(crate) fn reachable(&self, a: &str, b: &str, t: i64) -> bool {
        !self.active(t).any(|f| match f.kind.as_str() {
            "partition" => {
                f.grudge.get(a).is_some_and(|v| v.iter().any(|x| x == b))
                    || f.grudge.get(b).is_some_and(|v| v.iter().any(|x| x == a))
            }
            "pause" | "kill" => f.targets.iter().any(|x| x == a || x == b),
            _ => false,
        })
    }

    pub(crate) fn active(&self, t: i64) -> impl Iterator<Item = &FaultWindow> + '_ {
        self.d
            .faults
            .iter()
            .filter(move |f| f.start_ms <= t && f.stop_ms.is_none_or(|s| t <= s))
    }

    /// Masters with slots (names) in the majority's view at `t`.
    pub(crate) fn masters_at(&self, t: i64) -> Vec<String> {
        let all = &self.rounds;
        let Some(rd) = all
            .iter()
            .rev()
            .find(|rd| rd.iter().all(|s| s.t_ms <= t) && rd.iter().any(|s| s.lines.is_some()))
            .or_else(|| all.first())
        else {
            return vec![];
        };
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        let mut answered = 0;
        for s in rd {
            let Some(view) = &s.lines else { continue };
            answered += 1;
            for l in view.iter().filter(|l| l.master && l.slot_count() > 0) {
                *count.entry(self.name_of(&l.id)).or_default() += 1;
            }
        }
        count
            .into_iter()
            .filter(|(_, n)| n * 2 > answered)
            .map(|(m, _)| m)
            .collect()
    }

    /// When `node` became cut off from the majority of masters, if it is at `t`: the
    /// earliest fault boundary since which the cut has held without a break.
    pub(crate) fn cut_since(&self, node: &str, t: i64) -> Option<i64> {
        let cut_at = |x: i64| {
            let masters = self.masters_at(x);
            if masters.is_empty() {
                return false;
            }
            let reach = masters
                .iter()
                .filter(|m| *m == node || self.reachable(node, m, x))
                .count();
            reach < masters.len() / 2 + 1
        };
        self.held_since(t, cut_at)
    }

    /// Since when `holds(x)` has held without a break up to `t`, if it holds at `t`:
    /// the fault state is constant between fault boundaries, so walk back interval
    /// by interval (judged at each interval's middle) while it holds.
    pub(crate) fn held_since(&self, t: i64, holds: impl Fn(i64) -> bool) -> Option<i64> {
        if !holds(t) {
            return None;
        }
        let mut bounds: Vec<i64> = self
            .d
            .faults
            .iter()
            .flat_map(|f| [Some(f.start_ms), f.stop_ms])
            .flatten()
            .filter(|b| *b <= t)
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let Some(&last) = bounds.last() else {
            return Some(t);
        };
        let mut since = last;
        for w in bounds.windows(2).rev() {
            if holds((w[0] + w[1]) / 2) {
                since = w[0];
            } else {
                break;
            }
        }
        Some(since)
    }

    /// How long `node` was paused (SIGSTOP) between `from` and `to`, by the fault
    /// windows: time its own cron could not run.
    pub(crate) fn paused_within(&self, node: &str, from: i64, to: i64) -> i64 {
        self.d
            .faults
            .iter()
            .filter(|f| f.kind == "pause" && f.targets.iter().any(|x| x == node))
            .map(|f| {
                let a = f.start_ms.max(from);
                let b = f.stop_ms.unwrap_or(to).min(to);
                (b - a).max(0)
            })
            .sum()
    }

    /// How long a backward clock step of `node` kept it blind within `from..to`
    /// (see `RunData::backward_clock_steps`).
    pub(crate) fn blind_within(&self, node: &str, from: i64, to: i64) -> i64 {
        self.d
            .backward_clock_steps()
            .iter()
            .filter(|s| s.nodes.iter().any(|x| x == node))
            .map(|s| (s.blind_until().min(to) - s.at_ms.max(from)).max(0))
            .sum()
    }

    /// The end of the last pause/kill/partition touching `node` that ended at or
    /// before `t`.
    pub(crate) fn back_from_fault(&self, node: &str, t: i64) -> Option<i64> {
        self.d
            .faults
            .iter()
            .filter(|f| matches!(f.kind.as_str(), "pause" | "kill" | "partition"))
            .filter(|f| f.targets.iter().any(|x| x == node))
            .filter_map(|f| f.stop_ms)
            .filter(|s| *s <= t)
            .max()
    }

    /// The replication offset a replica reported when it scheduled its election
    /// before winning at `t_win` (its own log), in the same replication history as
    /// the old master if the samples say so.
    pub(crate) fn election_offset(&self, replica: &str, t_win: i64) -> Option<u64> {
        self.d
            .events_of(replica)
            .filter(|e| e.t_ms.is_some_and(|t| t <= t_win + e.slack_ms))
            .filter_map(|e| match &e.ev {
                Ev::ElectionScheduled { offset, .. } => *offset,
                _ => None,
            })
            .last()
    }

    /// A node's sampled offset: the first sample at or after `t` (an upper bound on
    /// what it had written by `t`) and the last before `t` (a lower bound), with the
    /// replication ID of each.
    pub(crate) fn offset_around(&self, node: &str, t: i64) -> (OffsetAt<'_>, OffsetAt<'_>) {
        let mine = self.d.offsets.iter().filter(|o| o.node == node);
        let before = mine
            .clone()
            .rfind(|o| o.t_ms < t)
            .map(|o| (o.offset, o.replid.as_str()));
        let after = mine
            .filter(|o| o.t_ms >= t)
            .find(|o| o.role == "master")
            .map(|o| (o.offset, o.replid.as_str()));
        (before, after)
    }

    pub(crate) fn replid_before(&self, node: &str, t: i64) -> Option<&str> {
        self.d
            .offsets
            .iter()
            .rfind(|o| o.node == node && o.t_ms <= t)
            .map(|o| o.replid.as_str())
    }

    /// When the replica `new` (ID) won the election that moved the slot, if it logged it.
    pub(crate) fn win_time(&self, new: &str, by: i64) -> Option<i64> {
        let name = self.name_of(new);
        self.d
            .events_of(&name)
            .filter(|e| matches!(e.ev, Ev::FailoverWon { .. }))
            .filter_map(|e| e.t_ms)
            .filter(|t| *t <= by + 2000)
            .last()
    }
}
