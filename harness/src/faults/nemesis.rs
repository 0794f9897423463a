//! The nemesis executor: starts and heals faults, verifies that each took effect, and
//! records every step (with its evidence) in the history as `process: "nemesis"` ops.

use crate::env::net::{grudge::cut_pairs, Grudge, Network, Probe};
use crate::env::process::Node;
use crate::env::recorder::Recorder;
use crate::faults::schedule::{self, Fault, PartitionSpec, Planned, TargetSpec, Topology};
use hearsay_checkers::{OpType, Process};
use hearsay_workloads::conn::oneshot;
use hearsay_workloads::resp::Value;
use serde_json::{json, Value as J};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Probe timeout: long enough for a SYN-ACK inside one bridge (sub-ms), short enough
/// to keep a verification step well under a second.
const PROBE: Duration = Duration::from_millis(300);

/// Why a `reshard` or `member` fault reaches this executor: only Redis Cluster
/// targets change the cluster's shape.
const NOT_HERE: &str = "reshard and member faults need a Redis Cluster target";

/// (receiver, sender) node indices.
type Pair = (usize, usize);

/// What is currently in effect, so that the final heal undoes exactly that.
#[derive(Default)]
struct Active {
    partition: bool,
    loss: bool,
    paused: Vec<usize>,
    killed: Vec<usize>,
    skewed: Vec<usize>,
    delayed: Vec<usize>,
}

/// The nemesis.
pub struct Nemesis {
    pub net: Network,
    pub nodes: Vec<Node>,
    /// Where steps are recorded; set before the first fault (the history starts
    /// after formation, the nemesis exists from the start).
    rec: Option<Arc<Recorder>>,
    active: Active,
    delay: crate::faults::delay::Delays,
}

fn names(nodes: &[Node], idx: &[usize]) -> Vec<String> {
    idx.iter()
        .filter_map(|i| nodes.get(*i).map(|n| n.name.clone()))
        .collect()
}

fn target_nodes(f: &Fault) -> Vec<usize> {
    match f.targets() {
        Some(TargetSpec::Nodes { nodes }) => nodes.clone(),
        _ => vec![],
    }
}

impl Nemesis {
    pub fn new(net: Network, nodes: Vec<Node>, delay: crate::faults::delay::Delays) -> Nemesis {
        Nemesis {
            net,
            nodes,
            rec: None,
            active: Active::default(),
            delay,
        }
    }

    /// Records nemesis steps in `rec` from now on.
    pub fn set_recorder(&mut self, rec: Arc<Recorder>) {
        self.rec = Some(rec);
    }

    /// Records one `info` step of a fault the target carries out itself.
    pub fn record_info(&self, f: &str, value: J, error: Option<String>) {
        self.record(OpType::Info, f, value, error);
    }

    /// The recorder's clock, in ms since the history's start (0 before it exists).
    pub fn now_ms(&self) -> u64 {
        self.rec.as_ref().map_or(0, |r| r.now_ns() / 1_000_000)
    }

    /// Node names of indices.
    pub fn names_of(&self, idx: &[usize]) -> Vec<String> {
        names(&self.nodes, idx)
    }

    fn record(&self, kind: OpType, f: &str, value: J, error: Option<String>) {
        if let Some(rec) = &self.rec {
            rec.record(Process::Nemesis, kind, f, value, None, error);
        }
    }

    /// Resolves and starts a planned fault; returns the concrete fault for `stop` and
    /// whether its effect was verified. `topo` is the topology (primaries and their
    /// replicas, node indices) as the target sees it, when the fault needs it
    /// ([`schedule::needs_topology`]).
    pub async fn start(&mut self, p: &Planned, topo: &Topology) -> (Fault, bool) {
        let prim = topo.primaries.clone();
        let f = schedule::resolve(p, self.nodes.len(), topo);
        let fname = format!("start-{}", f.kind().name());
        self.record(
            OpType::Info,
            &fname,
            json!({"planned": p, "primaries": names(&self.nodes, &prim)}),
            None,
        );
        let (evidence, verified, error) = self.apply(&f).await;
        self.record(
            OpType::Info,
            &fname,
            json!({
                "planned": p,
                "resolved": f,
                "targets": self.describe_targets(&f),
                "evidence": evidence,
                "verified": verified,
            }),
            error,
        );
        (f, verified)
    }

    fn describe_targets(&self, f: &Fault) -> J {
        match f {
            Fault::Partition {
                partition: PartitionSpec::Grudge { grudge },
            } => {
                let g: serde_json::Map<String, J> = grudge
                    .iter()
                    .map(|(k, v)| {
                        (
                            names(&self.nodes, &[*k]).join(""),
                            J::from(names(&self.nodes, v)),
                        )
                    })
                    .collect();
                json!({"refuses-from": g})
            }
            _ => J::from(names(&self.nodes, &target_nodes(f))),
        }
    }

    /// Heals a fault started with [`Nemesis::start`]; returns whether the heal was
    /// verified.
    pub async fn stop(&mut self, f: &Fault) -> bool {
        let fname = format!("stop-{}", f.kind().name());
        self.record(OpType::Info, &fname, json!({"resolved": f}), None);
        let (evidence, verified, error) = self.heal(f).await;
        self.record(
            OpType::Info,
            &fname,
            json!({"resolved": f, "evidence": evidence, "verified": verified}),
            error,
        );
        verified
    }

    /// Runs between start and stop: drives clock strobes until `until`.
    pub async fn hold(
        &mut self,
        f: &Fault,
        until: tokio::time::Instant,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) {
        let Fault::ClockStrobe {
            delta_s, period_ms, ..
        } = f
        else {
            let mut stop = stop.clone();
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            return;
        };
        let targets = target_nodes(f);
        let mut on = false;
        let mut flips = 0u64;
        while tokio::time::Instant::now() < until && !*stop.borrow() {
            on = !on;
            for i in &targets {
                if let Some(n) = self.nodes.get(*i) {
                    let _ = crate::faults::clock::set_offset(n, if on { *delta_s } else { 0 });
                }
            }
            flips += 1;
            tokio::time::sleep(Duration::from_millis((*period_ms).max(50))).await;
        }
        self.record(
            OpType::Info,
            "strobe-clock",
            json!({"flips": flips, "targets": names(&self.nodes, &targets)}),
            None,
        );
    }

    /// Probes all pairs at once (each probe is its own thread), in input order.
    async fn probe_pairs(&self, pairs: &[(usize, usize)]) -> Vec<(usize, usize, Probe)> {
        let mut handles = Vec::new();
        for (dst, src) in pairs {
            let (Some(d), Some(s)) = (self.nodes.get(*dst), self.nodes.get(*src)) else {
                continue;
            };
            let (ns, addr) = (s.ns.clone(), d.bus_addr());
            let h = tokio::spawn(async move { crate::env::net::probe(&ns, addr, PROBE).await });
            handles.push((*dst, *src, h));
        }
        let mut out = Vec::new();
        for (dst, src, h) in handles {
            let p = h.await.unwrap_or_else(|e| Probe::Error {
                error: e.to_string(),
            });
            out.push((dst, src, p));
        }
        out
    }

    fn probe_json(&self, probes: &[(usize, usize, Probe)], expect: &str) -> J {
        J::from(
            probes
                .iter()
                .map(|(dst, src, p)| {
                    json!({"from": names(&self.nodes, &[*src]).join(""), "to": names(&self.nodes, &[*dst]).join(""), "expect": expect, "probe": p})
                })
                .collect::<Vec<_>>(),
        )
    }

    /// Sample of cut pairs (receiver, sender) and one open pair, for probing.
    fn sample_pairs(&self, g: &Grudge) -> (Vec<Pair>, Vec<Pair>) {
        let cut = cut_pairs(g);
        let n = self.nodes.len();
        let open: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .filter(|(a, b)| a != b && !cut.contains(&(*a, *b)) && !cut.contains(&(*b, *a)))
            .take(1)
            .collect();
        (cut.into_iter().take(4).collect(), open)
    }

    async fn clock_offsets(&self, idx: &[usize]) -> J {
        let mut m = serde_json::Map::new();
        for i in idx {
            let Some(n) = self.nodes.get(*i) else {
                continue;
            };
            m.insert(
                n.name.clone(),
                node_clock_offset_ms(n)
                    .await
                    .map(J::from)
                    .unwrap_or(J::Null),
            );
        }
        J::Object(m)
    }

    /// Applies a concrete fault. Returns (evidence, verified, error).
    async fn apply(&mut self, f: &Fault) -> (J, bool, Option<String>) {
        // A fault on nobody has no effect to verify: never `verified`.
        if crate::faults::schedule::node_indices(f).is_empty() {
            return (
                J::Null,
                false,
                Some("the fault resolved to no node (nothing was done)".into()),
            );
        }
        match f {
            Fault::Partition {
                partition: PartitionSpec::Grudge { grudge },
            } => {
                self.active.partition = true;
                let rules = match self.net.apply_grudge(grudge).await {
                    Ok(r) => r,
                    Err(e) => return (J::Null, false, Some(e.to_string())),
                };
                let (cut, open) = self.sample_pairs(grudge);
                let pc = self.probe_pairs(&cut).await;
                let po = self.probe_pairs(&open).await;
                // A cut pair must time out (SYN or SYN-ACK dropped), an open one answer.
                let ok = pc.iter().all(|(_, _, p)| *p == Probe::Timeout)
                    && po.iter().all(|(_, _, p)| p.reachable());
                let mut probes = self.probe_json(&pc, "cut");
                if let (J::Array(a), J::Array(b)) = (&mut probes, self.probe_json(&po, "open")) {
                    a.extend(b);
                }
                (json!({"rules": rules, "probes": probes}), ok, None)
            }
            Fault::Partition { .. } => (J::Null, false, Some("unresolved partition".into())),
            Fault::Pause { .. } => {
                let t = target_nodes(f);
                let mut states = serde_json::Map::new();
                let mut errors = Vec::new();
                for i in &t {
                    let Some(n) = self.nodes.get(*i) else {
                        continue;
                    };
                    if let Err(e) = n.pause() {
                        errors.push(e.to_string());
                        continue;
                    }
                    self.active.paused.push(*i);
                }
                // The kernel stops a process asynchronously (it must be scheduled to
                // take the signal): poll its state for up to a second.
                let mut ok = errors.is_empty();
                for i in &t {
                    let Some(n) = self.nodes.get(*i) else {
                        continue;
                    };
                    let st = wait_state(n, |s| s == Some('T')).await;
                    ok &= st == Some('T');
                    states.insert(n.name.clone(), J::from(st.map(|c| c.to_string())));
                }
                (
                    json!({"proc-state": states}),
                    ok,
                    (!errors.is_empty()).then(|| errors.join("; ")),
                )
            }
            Fault::Kill { .. } => {
                let t = target_nodes(f);
                let mut ev = serde_json::Map::new();
                let mut ok = true;
                let mut errors = Vec::new();
                for i in &t {
                    let Some(n) = self.nodes.get_mut(*i) else {
                        continue;
                    };
                    let pid = n.pid();
                    match n.kill().await {
                        Ok(status) => {
                            self.active.killed.push(*i);
                            let gone = pid
                                .map(|p| crate::env::sys::proc_state(p).is_none())
                                .unwrap_or(true);
                            ok &= gone;
                            ev.insert(
                                n.name.clone(),
                                json!({"pid": pid, "exit": status, "gone": gone}),
                            );
                        }
                        Err(e) => {
                            ok = false;
                            errors.push(e.to_string());
                        }
                    }
                }
                (
                    J::Object(ev),
                    ok,
                    (!errors.is_empty()).then(|| errors.join("; ")),
                )
            }
            Fault::ClockBump { delta_s, .. } | Fault::ClockStrobe { delta_s, .. } => {
                let t = target_nodes(f);
                let mut errors = Vec::new();
                for i in &t {
                    let Some(n) = self.nodes.get(*i) else {
                        continue;
                    };
                    match crate::faults::clock::set_offset(n, *delta_s) {
                        Ok(()) => self.active.skewed.push(*i),
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                let offsets = self.clock_offsets(&t).await;
                // Verified when every reachable target's TIME is within 1 s of the bump.
                let ok = errors.is_empty()
                    && offsets.as_object().is_some_and(|m| {
                        m.values().all(|v| {
                            v.as_i64()
                                .is_none_or(|ms| (ms - delta_s * 1000).abs() < 1000)
                        }) && m.values().any(|v| v.is_i64())
                    });
                (
                    json!({"delta-s": delta_s, "offsets-ms": offsets}),
                    ok,
                    (!errors.is_empty()).then(|| errors.join("; ")),
                )
            }
            Fault::Loss { pct, .. } => {
                let t = target_nodes(f);
                self.active.loss = true;
                if let Err(e) = self.net.set_loss(&t, *pct).await {
                    return (J::Null, false, Some(e.to_string()));
                }
                // Cluster-bus gossip never stops, so within half a second the drop
                // rules must have matched something.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let drops = self.net.chain_drops("loss").await.ok();
                (
                    json!({"pct": pct, "rules": t.len() * 2, "dropped-packets-after-500ms": drops}),
                    drops.is_some_and(|d| d > 0),
                    None,
                )
            }
            Fault::Delay { ms, .. } => {
                let t = target_nodes(f);
                let (ev, ok, err) = self.delay.start(&self.net, &self.nodes, &t, *ms).await;
                self.active.delayed.extend(t);
                (ev, ok, err)
            }
            // Redis Cluster targets carry these out themselves (`targets::reshape`).
            Fault::Reshard { .. } | Fault::Member { .. } => (J::Null, false, Some(NOT_HERE.into())),
        }
    }

    /// Heals a concrete fault and verifies the heal.
    async fn heal(&mut self, f: &Fault) -> (J, bool, Option<String>) {
        match f {
            Fault::Partition { partition } => {
                if let Err(e) = self.net.heal_partitions().await {
                    return (J::Null, false, Some(e.to_string()));
                }
                self.active.partition = false;
                let pairs = match partition {
                    PartitionSpec::Grudge { grudge } => self.sample_pairs(grudge).0,
                    _ => vec![],
                };
                let probes = self.probe_pairs(&pairs).await;
                let ok = probes.iter().all(|(_, _, p)| p.reachable());
                (
                    json!({"probes": self.probe_json(&probes, "open")}),
                    ok,
                    None,
                )
            }
            Fault::Pause { .. } => self.resume(&target_nodes(f)).await,
            Fault::Kill { .. } => self.restart(&target_nodes(f)).await,
            Fault::ClockBump { .. } | Fault::ClockStrobe { .. } => {
                self.reset_clocks(&target_nodes(f)).await
            }
            Fault::Loss { .. } => {
                let drops = self.net.chain_drops("loss").await.ok();
                self.active.loss = false;
                match self.net.clear_loss().await {
                    Ok(()) => (
                        json!({"dropped-packets": drops}),
                        drops.is_some_and(|d| d > 0),
                        None,
                    ),
                    Err(e) => (J::Null, false, Some(e.to_string())),
                }
            }
            Fault::Delay { .. } => {
                let r = self.delay.stop_all(&self.nodes).await;
                self.active.delayed.clear();
                r
            }
            Fault::Reshard { .. } | Fault::Member { .. } => (J::Null, false, Some(NOT_HERE.into())),
        }
    }

    async fn resume(&mut self, t: &[usize]) -> (J, bool, Option<String>) {
        let mut states = serde_json::Map::new();
        let mut ok = true;
        for i in t {
            let Some(n) = self.nodes.get(*i) else {
                continue;
            };
            let _ = n.resume();
            let st = wait_state(n, |s| s.is_some() && s != Some('T')).await;
            ok &= st.is_some() && st != Some('T');
            states.insert(n.name.clone(), J::from(st.map(|c| c.to_string())));
        }
        self.active.paused.retain(|p| !t.contains(p));
        (json!({"proc-state": states}), ok, None)
    }

    async fn restart(&mut self, t: &[usize]) -> (J, bool, Option<String>) {
        let mut ev = serde_json::Map::new();
        let mut ok = true;
        let mut errors = Vec::new();
        for i in t {
            let Some(n) = self.nodes.get_mut(*i) else {
                continue;
            };
            match n.restart() {
                Ok(pid) => {
                    let up = answers_ping(n.addr(), Duration::from_secs(10)).await;
                    ok &= up;
                    ev.insert(n.name.clone(), json!({"pid": pid, "answers-ping": up}));
                }
                Err(e) => {
                    ok = false;
                    errors.push(e.to_string());
                }
            }
        }
        self.active.killed.retain(|k| !t.contains(k));
        (
            J::Object(ev),
            ok,
            (!errors.is_empty()).then(|| errors.join("; ")),
        )
    }

    async fn reset_clocks(&mut self, t: &[usize]) -> (J, bool, Option<String>) {
        for i in t {
            if let Some(n) = self.nodes.get(*i) {
                let _ = crate::faults::clock::set_offset(n, 0);
            }
        }
        self.active.skewed.retain(|s| !t.contains(s));
        let offsets = self.clock_offsets(t).await;
        let ok = offsets.as_object().is_some_and(|m| {
            m.values()
                .all(|v| v.as_i64().is_none_or(|ms| ms.abs() < 1000))
        });
        (json!({"offsets-ms": offsets}), ok, None)
    }

    /// The final phase: undo everything that may be in effect, whatever the schedule
    /// did. Always safe to call, also twice.
    pub async fn heal_all(&mut self) -> bool {
        self.record(OpType::Info, "heal-all", J::Null, None);
        let mut ev = serde_json::Map::new();
        let mut ok = true;
        let mut errors = Vec::new();
        if let Err(e) = self.net.heal_partitions().await {
            errors.push(e.to_string());
        }
        if let Err(e) = self.net.clear_loss().await {
            errors.push(e.to_string());
        }
        self.active.partition = false;
        self.active.loss = false;
        let (d, dok, derr) = self.delay.stop_all(&self.nodes).await;
        self.active.delayed.clear();
        ev.insert("delay".into(), d);
        ok &= dok;
        errors.extend(derr);
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        // A node that died although no kill is in effect crashed by itself: evidence
        // of a bug in the server (its log tells why), recorded as such.
        let mut crashed = serde_json::Map::new();
        for i in &all {
            if self.active.killed.contains(i) {
                continue;
            }
            if let Some(n) = self.nodes.get_mut(*i) {
                if let Some(status) = n.exited() {
                    crashed.insert(n.name.clone(), J::from(status.to_string()));
                }
            }
        }
        if !crashed.is_empty() {
            ev.insert("unexpected-exits".into(), J::Object(crashed));
        }
        // SIGCONT everyone (harmless when not stopped) rather than trusting bookkeeping.
        let (r, rok, _) = self
            .resume(
                &all.iter()
                    .copied()
                    .filter(|i| self.nodes.get(*i).is_some_and(|n| n.is_running()))
                    .collect::<Vec<_>>(),
            )
            .await;
        ev.insert("resume".into(), r);
        ok &= rok;
        let dead: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| self.nodes.get(*i).is_some_and(|n| !n.is_running()))
            .collect();
        if !dead.is_empty() {
            let (r, rok, rerr) = self.restart(&dead).await;
            ev.insert("restart".into(), r);
            ok &= rok;
            errors.extend(rerr);
        }
        let clocked: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| self.nodes.get(*i).is_some_and(|n| n.clock_file.is_some()))
            .collect();
        if !clocked.is_empty() {
            let (r, rok, _) = self.reset_clocks(&clocked).await;
            ev.insert("clock".into(), r);
            ok &= rok;
        }
        ok &= errors.is_empty();
        self.record(
            OpType::Info,
            "heal-all",
            json!({"evidence": ev, "verified": ok}),
            (!errors.is_empty()).then(|| errors.join("; ")),
        );
        ok
    }
}

/// Whether `addr` answers PING within `limit` (a restarted node is back).
async fn answers_ping(addr: std::net::SocketAddr, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let reply = oneshot(addr, &[b"PING"], Duration::from_millis(1000)).await;
        if matches!(reply, Ok(ref v) if !matches!(v, Value::Error(_))) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls a node's process state until `done` holds or one second passes; returns the
/// last state seen.
async fn wait_state(n: &Node, done: impl Fn(Option<char>) -> bool) -> Option<char> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let st = n.proc_state();
        if done(st) || tokio::time::Instant::now() > deadline {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Node wall clock minus harness wall clock, in ms, from the node's TIME reply (or,
/// where TIME is not a command, as in redis-sentinel, INFO server's
/// `server_time_usec`).
pub async fn node_clock_offset_ms(n: &Node) -> Option<i64> {
    let v = oneshot(n.addr(), &[b"TIME"], Duration::from_millis(500))
        .await
        .ok()?;
    let node_ms = match v.as_array() {
        Some(items) => {
            let parse = |x: &Value| x.as_text()?.parse::<i64>().ok();
            let secs = parse(items.first()?)?;
            let usecs = parse(items.get(1)?)?;
            secs * 1000 + usecs / 1000
        }
        None => {
            let info = oneshot(n.addr(), &[b"INFO", b"server"], Duration::from_millis(500))
                .await
                .ok()?
                .as_text()?;
            info.lines()
                .find_map(|l| l.trim().strip_prefix("server_time_usec:"))
                .and_then(|u| u.parse::<i64>().ok())?
                / 1000
        }
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    Some(node_ms - now.as_millis() as i64)
}
