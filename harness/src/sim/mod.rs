//! `hearsay sim`: the node's real cluster core, command layer and keyspace in
//! deterministic simulated time. A run has the phases of a real one (form,
//! workload + faults, heal, recover, final reads, stop) on a virtual clock,
//! draws its schedule exactly as a real run does (`faults::generate`, one
//! schedule format), and writes the same run folder (target `sim`), which the
//! same judge (`run::check_dir`) and views read.
//!
//! What is modelled is only what the OS and the network would do
//! (`world.rs`); every decision is the node's own code: `cluster::Cluster`
//! for the protocol, `commands::execute` for routing (MOVED, ASK,
//! CLUSTERDOWN) and data, the workloads' own client and op taxonomy
//! (`client.rs`), and the node's replication core (`replication::Replication`)
//! driven as the shell drives it (`world/repl.rs`).
//!
//! Determinism: one root seed; every draw comes from a named ChaCha8 stream
//! (`sim-net`, `sim-ids`, `sim-cron-phase`, the workloads' and the
//! schedule's own); the event queue is ordered by (time, sequence); maps are
//! BTreeMaps; nothing reads the wall clock. The summary's digest covers
//! history.jsonl and every node's events.jsonl.
//!
//! Imports: `run/` (folder, plan, judge), `faults/` (schedule), `targets/`
//! (pure helpers of formation and bus counters), `env/`, `opts`; read by
//! `cli/` only.

pub mod client;
pub mod node;
pub mod record;
pub mod scale;
pub mod search;
pub mod shrink;
pub mod world;

use crate::faults::schedule::{self, Fault, PartitionSpec, Planned, Step, Topology};
use crate::opts::RunOpts;
use crate::run::{self, folder, RunError};
use crate::targets::form;
use client::Clients;
use hearsay_checkers::{OpType, Process, Valid};
use hearsay_node::cluster::ClusterConfig;
use hearsay_workloads::any::{self, Workload};
use hearsay_workloads::cluster::ClientConfig;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};
use world::World;

/// What one simulated run gives back.
#[derive(Debug, Clone)]
pub struct SimRun {
    pub seed: u64,
    pub dir: PathBuf,
    pub valid: Valid,
    /// Digest of history.jsonl and every events.jsonl.
    pub digest: String,
    /// Rules that failed (`protocol:<rule>`, `data:<checker>`, `convergence`...).
    pub broken: Vec<String>,
    /// Why the verdict is unknown, if it is.
    pub unknown: Vec<String>,
    pub sim_secs: f64,
    pub wall_secs: f64,
    /// CPU seconds of the simulation (this thread), judge excluded.
    pub cpu_secs: f64,
    /// Simulated and CPU seconds of the formation (part of the above).
    pub form_sim_secs: f64,
    pub form_cpu_secs: f64,
    pub stats: world::Stats,
    pub ops: (u64, u64, u64),
    /// Resident set (KB) when the simulation ended, before the judge.
    pub peak_kb: u64,
}

/// Options only the simulator has.
#[derive(Clone, Debug, Default)]
pub struct SimOpts {
    /// Send every bus message through the node's wire codec and back.
    pub codec: bool,
    /// Skip the judge (benchmarks: the simulation alone).
    pub no_check: bool,
}

/// A simulated node's options: every node announces the same ports (its own IP
/// tells them apart), as the real targets' nodes do.
pub(super) fn node_cfg(node_timeout: u64) -> ClusterConfig {
    ClusterConfig {
        node_timeout,
        announce_port: 7000,
        announce_bus_port: 17000,
        ..ClusterConfig::default()
    }
}

fn sim_cfgs(opts: &RunOpts) -> Vec<ClusterConfig> {
    (0..opts.nodes)
        .map(|_| ClusterConfig {
            bugs: opts.node_bug.clone(),
            test_election_delay_ms: opts.node_election_delay_ms,
            ..node_cfg(opts.node_timeout)
        })
        .collect()
}

/// Runs one seed into a new folder under `opts.results_dir` and judges it.
pub fn run_seed(
    opts: &RunOpts,
    seed: u64,
    planned: Option<Vec<Planned>>,
    sim: &SimOpts,
) -> Result<SimRun, RunError> {
    let wall = Instant::now();
    let cpu0 = crate::thread_cpu_secs();
    let mut opts = opts.clone();
    opts.seed = Some(seed);
    opts.target = crate::opts::TargetChoice::Sim;
    run::validate(&opts)?;
    let planned = match planned {
        Some(p) => p,
        None => run::plan(&opts, seed)?,
    };
    if let Some(p) = planned.iter().find(|p| p.fault.kind().is_reshape()) {
        return Err(RunError::BadOption(format!(
            "the simulator does not model the {} nemesis (a schedule from a real run?)",
            p.fault.kind().name()
        )));
    }
    let workload = Workload::parse(&opts.workload).unwrap_or(Workload::Set);
    let test = format!("{}-sim", opts.workload);
    let dir = folder::create(&opts.results_dir, &test, seed, SystemTime::now())?;
    let test_json = folder::TestJson {
        test: &test,
        seed,
        started: SystemTime::now(),
        prefix: "sim",
        opts: &opts,
        versions: {
            let mut m = serde_json::Map::new();
            m.insert(
                "hearsay".into(),
                json!("sim (hearsay-node core in-process)"),
            );
            m
        },
        binaries: json!({}),
    };
    folder::write_json(&dir.join("test.json"), &test_json.to_json())?;
    folder::write_json(&dir.join("schedule.json"), &json!(planned))?;
    folder::link_latest(&opts.results_dir, &test, &dir);

    // Without kills nothing reads a nodes.conf back before the end: the cores
    // skip rendering one at every save (n^3 lines while a large cluster forms),
    // and the folder gets each node's file as it would be saved at the end.
    let restarts = planned
        .iter()
        .any(|p| matches!(p.fault, Fault::Kill { .. }));
    let mut cfgs = sim_cfgs(&opts);
    for c in &mut cfgs {
        c.skip_config_text = !restarts;
    }
    let mut w = World::new(seed, cfgs);
    w.codec_roundtrip = sim.codec;
    let n = w.n();
    let form_t0 = w.now;
    let form_ms = form_cluster(&mut w, opts.replicas, !opts.skip_config_epochs)
        .map_err(|e| RunError::Other(format!("sim formation: {e}")))?;
    let form_sim_secs = (w.now - form_t0) as f64 / 1e6;
    let form_cpu_secs = crate::thread_cpu_secs() - cpu0;

    // The history starts now.
    let t0 = w.now;
    w.rec.borrow_mut().t0_us = t0;
    folder::write_json(
        &dir.join("timebase.json"),
        &json!({"mono_ms": world::MONO0_MS + t0 / 1000, "wall_ms": node::T0_MS + t0 / 1000}),
    )?;
    let snaps = Rc::new(RefCell::new(Vec::<u8>::new()));
    let snap_every = opts.snapshot_interval.max(100) * 1000;
    let stop_snaps = Rc::new(Cell::new(false));
    schedule_snapshots(&mut w, snaps.clone(), snap_every, stop_snaps.clone());

    let keys = any::keys(workload, opts.keys);
    let names: BTreeMap<_, _> = (0..n)
        .map(|i| (w.client_addr(i), w.nodes[i].name.clone()))
        .collect();
    let clients = Rc::new(Clients {
        workload,
        seed,
        keys,
        seeds: (0..n).map(|i| w.client_addr(i)).collect(),
        names,
        cfg: ClientConfig {
            op_timeout: Duration::from_millis(opts.op_timeout),
            ..ClientConfig::default()
        },
        read_fraction: opts.read_fraction,
        concurrency: opts.concurrency as u64,
        mean_gap_s: opts.concurrency as f64 / opts.rate,
        rec: w.rec.clone(),
        stop: Rc::new(Cell::new(false)),
        max_process: Rc::new(Cell::new(0)),
    });
    for wi in 0..opts.concurrency {
        let c = clients.clone();
        w.spawn(move |cell| Box::pin(client::worker(c, cell, wi as u64)));
    }
    let deadline = t0 + (opts.time_limit * 1e6) as u64;
    let nem = Rc::new(RefCell::new(Nemesis {
        planned: planned.clone(),
        started: vec![None; planned.len()],
        topo: BTreeMap::new(),
        aof: opts.appendonly == "yes",
        faults: 0,
    }));
    schedule_faults(&mut w, &nem, t0, deadline)?;
    w.run_until(deadline);
    clients.stop.set(true);
    // Workers finish their op in flight (bounded by the op timeout).
    let limit = (opts.op_timeout + 1000) * 1000 * 4;
    w.run_while(10_000, limit, |w| w.procs_running() == 0);
    heal_all(&mut w, &nem);
    // A clock stepped back leaves nodes blind for the step: recovery waits it
    // out on top of the timeout (the checkers' liveness bounds do the same).
    let blind = w.clock_blind_until.saturating_sub(w.now);
    let recovery = w.run_while(20_000, (opts.recovery_timeout * 1e6) as u64 + blind, |w| {
        agreed(w).is_ok()
    });
    let last = agreed(&w).err();
    w.rec.borrow_mut().record(
        Process::Nemesis,
        OpType::Info,
        "recovered",
        json!({"converged": recovery.is_some(), "ms": recovery.map(|us| us / 1000),
               "clock-step-allowance-ms": blind / 1000}),
        None,
        recovery.is_none().then(|| {
            format!(
                "timed out after {:.1}s waiting for all nodes to agree with cluster_state:ok; last: {}",
                opts.recovery_timeout,
                last.unwrap_or_default()
            )
        }),
    );
    let final_process = clients.max_process.get() + 1;
    let c = clients.clone();
    w.spawn(move |cell| Box::pin(client::final_reads(c, cell, final_process)));
    w.run_while(10_000, 3_600_000_000, |w| w.procs_running() == 0);
    stop_snaps.set(true);
    snapshot_round(&mut w, &snaps);
    let sim_end = w.now;
    let peak_kb = crate::rss_kb();
    let cpu_secs = crate::thread_cpu_secs() - cpu0;
    w.stop_all();

    // The folder, as a real run leaves it.
    let rec = w.rec.borrow();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).map_err(folder::io(format!("write {name}")))
    };
    write("history.jsonl", &rec.history)?;
    write("nemesis.jsonl", &rec.nemesis)?;
    write("snapshots.jsonl", &snaps.borrow())?;
    let mut parts: Vec<&[u8]> = vec![&rec.history];
    for nd in &w.nodes {
        let d = dir.join("nodes").join(&nd.name);
        std::fs::create_dir_all(&d).map_err(folder::io("create node dir"))?;
        std::fs::write(d.join("events.jsonl"), &nd.events).map_err(folder::io("write events"))?;
        let conf = match &nd.conf {
            Some(_) if nd.cfg.skip_config_text => Some(nd.core.config_text()),
            c => c.clone(),
        };
        if let Some(c) = conf {
            std::fs::write(d.join("nodes.conf"), c).map_err(folder::io("write nodes.conf"))?;
        }
        parts.push(&nd.events);
    }
    let digest = record::digest(parts);
    let bus: serde_json::Map<String, Value> = w
        .nodes
        .iter()
        .map(|nd| {
            (
                nd.name.clone(),
                if nd.alive {
                    crate::targets::cluster::parse_bus_counters(&nd.core.info_text())
                } else {
                    json!({"error": "not running at the end of the run"})
                },
            )
        })
        .collect();
    folder::write_json(
        &dir.join("bus-stats.json"),
        &json!({"source": "CLUSTER INFO cluster_stats_messages_* at the end of the simulated run", "nodes": bus}),
    )?;
    let sim_secs = (sim_end - t0) as f64 / 1e6;
    let ops = (rec.ok, rec.fail, rec.info);
    let info = json!({
        "simulated": true,
        "form-ms": form_ms,
        "recovery-ms": recovery.map(|us| us / 1000),
        "ops": {"ok": ops.0, "fail": ops.1, "info": ops.2},
        "faults": nem.borrow().faults,
        "digest": digest,
        "sim-seconds": sim_secs,
        "events": w.stats.events,
        "bus-messages": w.stats.bus_delivered,
        "full-syncs": w.stats.full_syncs,
        "partial-syncs": w.stats.partial_syncs,
    });
    folder::write_json(&dir.join("run-info.json"), &info)?;
    drop(rec);
    let (valid, broken, unknown) = if sim.no_check {
        (Valid::Unknown, vec![], vec![])
    } else {
        let checked = run::check_dir(&dir)?;
        let (b, u) = broken_rules(&checked.results);
        (checked.valid, b, u)
    };
    Ok(SimRun {
        seed,
        dir,
        valid,
        digest,
        broken,
        unknown,
        sim_secs,
        wall_secs: wall.elapsed().as_secs_f64(),
        cpu_secs,
        form_sim_secs,
        form_cpu_secs,
        stats: w.stats.clone(),
        ops,
        peak_kb,
    })
}

/// The rules a judged folder says were broken, and why it is unknown.
pub fn broken_rules(results: &Value) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    if let Some(cov) = results["protocol"]["coverage"].as_array() {
        for r in cov {
            if r["status"] == "violated" {
                out.push(format!("protocol:{}", r["rule"].as_str().unwrap_or("?")));
            }
        }
    }
    for name in ["set", "linearizable", "counter", "list-append"] {
        if let Some(r) = results.get(name) {
            let explained = results["claims"]["valid"].as_bool() == Some(true);
            if r["valid"] == json!(false) && !explained {
                out.push(format!("data:{name} (unexplained)"));
            }
        }
    }
    if results["claims"]["valid"] == json!(false) {
        out.push("claims".into());
    }
    if results["claims"]["unexplained"].as_u64().unwrap_or(0) > 0 {
        out.push("claims:unexplained".into());
    }
    if results["convergence"]["valid"] == json!(false) {
        out.push("convergence".into());
    }
    if results["crashes"].as_array().is_some_and(|c| !c.is_empty()) {
        out.push("crash".into());
    }
    out.sort();
    out.dedup();
    let unknown = results["unknown-because"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (out, unknown)
}

// ---- formation (targets/form.rs's steps, on the cores) ----

fn form_cluster(w: &mut World, replicas: usize, set_epochs: bool) -> Result<u64, String> {
    // Every pair, as targets/form.rs does; above 30 nodes every node meets the
    // first only (redis-cli --cluster create's way) and gossip does the rest:
    // n^2/2 handshakes at once would be most of a large run's cost.
    let star = w.n() > 30;
    form_cluster_with(w, replicas, set_epochs, star)
}

/// Formation with every node meeting the first (`star`, as `hearsay scale` and
/// redis-cli do) or meeting every other; the simulated ms to agreement.
pub(super) fn form_cluster_with(
    w: &mut World,
    replicas: usize,
    set_epochs: bool,
    star: bool,
) -> Result<u64, String> {
    let start = w.now;
    let n = w.n();
    let masters = (n / (replicas + 1)).max(1);
    let ids: Vec<String> = (0..n)
        .map(|i| w.nodes[i].core.myself().to_string())
        .collect();
    let ok = |r: hearsay_node::resp::Frame, what: &str| match r {
        hearsay_node::resp::Frame::Error(e) => Err(format!("{what}: {e}")),
        _ => Ok(()),
    };
    for i in 0..n {
        if set_epochs {
            let r = w.cluster_cmd(i, &["SET-CONFIG-EPOCH", &(i + 1).to_string()]);
            ok(r, "SET-CONFIG-EPOCH")?;
        }
    }
    for (i, (s, e)) in form::slot_ranges(masters).into_iter().enumerate() {
        let r = w.cluster_cmd(i, &["ADDSLOTSRANGE", &s.to_string(), &e.to_string()]);
        ok(r, "ADDSLOTSRANGE")?;
    }
    for i in 0..n {
        let peers: Vec<usize> = if star {
            if i == 0 {
                vec![]
            } else {
                vec![0]
            }
        } else {
            (i + 1..n).collect()
        };
        for j in peers {
            let (ip, port) = (w.nodes[j].ip.clone(), w.nodes[j].port.to_string());
            let r = w.cluster_cmd(i, &["MEET", &ip, &port]);
            ok(r, "MEET")?;
        }
        // A few µs per command, as an admin client's round trip.
        let t = w.now + 200;
        w.run_until(t);
    }
    // A replica's new role reaches a peer only in the header of a message one
    // of the two sends the other (redis 7.0: gossip carries no roles), and
    // gossiped pong times hold off the half-timeout ping, so agreement on every
    // role waits for random pings: 3-4.5 x node_timeout at 60-100 nodes.
    let timeout_us = w.nodes.first().map_or(0, |nd| nd.cfg.node_timeout) * 1000;
    let limit = 30_000_000.max(8 * timeout_us) + n as u64 * 200_000;
    for j in masters..n {
        let mid = ids[j % masters].clone();
        let mut tries = 0;
        while !w.nodes[j].core.is_replica() {
            let r = w.cluster_cmd(j, &["REPLICATE", &mid]);
            if !matches!(r, hearsay_node::resp::Frame::Error(_)) {
                break;
            }
            tries += 1;
            if tries > limit / 25_000 {
                return Err(format!("n{} never accepted REPLICATE", j + 1));
            }
            let t = w.now + 25_000;
            w.run_until(t);
        }
    }
    // Agreement reads every node's CLUSTER NODES (n^2 lines): poll a large
    // cluster less often.
    let poll = 100_000.max(n as u64 * 5_000);
    if w.run_while(poll, limit, |w| agreed(w).is_ok()).is_none() {
        return Err(format!(
            "the cluster did not agree: {}",
            agreed(w).err().unwrap_or_default()
        ));
    }
    let form_ms = (w.now - start) / 1000;
    // Every replica's first sync (the diskless delay is part of it).
    if w.run_while(100_000, limit, |w| (masters..n).all(|j| w.link_up(j)))
        .is_none()
    {
        return Err("a replica never finished its first sync".into());
    }
    Ok(form_ms)
}

/// `form::check_agreed` on the cores: every live node ok, all seeing every
/// node, none failing or in handshake, one topology.
pub fn agreed(w: &World) -> Result<(), String> {
    let n = w.n();
    // The cheap checks of every node first: CLUSTER NODES texts cost n^2.
    for (i, nd) in w.nodes.iter().enumerate().filter(|(_, nd)| nd.alive) {
        if nd.paused {
            return Err(format!("n{}: paused", i + 1));
        }
        if !nd.core.state_ok() {
            return Err(format!("n{}: cluster_state not ok", i + 1));
        }
        if nd.core.node_count() != n {
            return Err(format!(
                "n{}: knows {} nodes, want {n}",
                i + 1,
                nd.core.node_count()
            ));
        }
    }
    let mut first: Option<form::Topology> = None;
    for (i, nd) in w.nodes.iter().enumerate() {
        if !nd.alive {
            continue;
        }
        let lines = form::parse_nodes(&nd.core.nodes_text());
        if let Some(l) = lines
            .iter()
            .find(|l| l.failing() || l.flags.iter().any(|f| f == "handshake"))
        {
            return Err(format!("n{}: sees {} as {:?}", i + 1, l.id, l.flags));
        }
        let topo = form::topology(&lines);
        match &first {
            None => first = Some(topo),
            Some(f) if *f != topo => {
                let diff = f
                    .iter()
                    .find(|(k, v)| topo.get(*k) != Some(v))
                    .map(|(k, v)| format!("{k}: {v:?} vs {:?}", topo.get(k)))
                    .unwrap_or_default();
                return Err(format!(
                    "n{}: topology differs from first node ({diff})",
                    i + 1
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

// ---- snapshots ----

fn schedule_snapshots(w: &mut World, out: Rc<RefCell<Vec<u8>>>, every: u64, stop: Rc<Cell<bool>>) {
    let t = w.now + every;
    w.call_at(
        t,
        Box::new(move |w| {
            if stop.get() {
                return;
            }
            snapshot_round(w, &out);
            schedule_snapshots(w, out.clone(), every, stop.clone());
        }),
    );
}

/// One round of CLUSTER NODES + INFO replication from every node, as the
/// real observer writes it.
fn snapshot_round(w: &mut World, out: &Rc<RefCell<Vec<u8>>>) {
    let time = w.rec.borrow().now_ns();
    let mut buf = out.borrow_mut();
    for i in 0..w.n() {
        let nd = &w.nodes[i];
        let line = if !nd.alive {
            json!({"time": time, "node": nd.name, "error": "connection-refused"})
        } else if nd.paused {
            json!({"time": time, "node": nd.name, "error": "timeout"})
        } else {
            let mut repl = w.replication_json(i);
            repl["time"] = json!(time);
            json!({"time": time, "node": nd.name, "nodes": nd.core.nodes_text(), "replication": repl})
        };
        // As serde_json::to_vec writes it, without its byte-by-byte escaping.
        record::write_value(&mut buf, &line);
        buf.push(b'\n');
    }
}

// ---- the nemesis (faults/nemesis.rs's recording, the world's effects) ----

struct Nemesis {
    planned: Vec<Planned>,
    started: Vec<Option<Fault>>,
    topo: BTreeMap<String, Topology>,
    aof: bool,
    faults: u64,
}

fn schedule_faults(
    w: &mut World,
    nem: &Rc<RefCell<Nemesis>>,
    t0: u64,
    deadline: u64,
) -> Result<(), RunError> {
    let steps = schedule::timeline(&nem.borrow().planned).map_err(RunError::BadOption)?;
    for step in steps {
        let at = t0 + step.at_ms() * 1000;
        // Stops are always delivered before the deadline's heal-all; starts
        // past the time limit never happen (as drive_faults).
        let at = match step {
            Step::Start { .. } if at >= deadline => continue,
            // A fault still held at the time limit stops then (drive_faults).
            Step::Stop { .. } => at.min(deadline),
            Step::Start { .. } => at,
        };
        let nem = nem.clone();
        w.call_at(
            at,
            Box::new(move |w| match step {
                Step::Start { index, .. } => start_fault(w, &nem, index, deadline),
                Step::Stop { index, .. } => {
                    let f = nem
                        .borrow_mut()
                        .started
                        .get_mut(index)
                        .and_then(Option::take);
                    if let Some(f) = f {
                        let aof = nem.borrow().aof;
                        stop_fault(w, &f, aof);
                    }
                }
            }),
        );
    }
    Ok(())
}

/// The topology as the first running node sees it (targets/cluster.rs's `topology`).
fn topology(w: &World) -> Topology {
    for nd in w.nodes.iter().filter(|n| n.alive && !n.paused) {
        let lines = form::parse_nodes(&nd.core.nodes_text());
        let topo = form::topology_of(&lines, |addr| {
            (0..w.n()).find(|&i| w.client_addr(i).to_string() == addr)
        });
        if !topo.primaries.is_empty() {
            return topo;
        }
    }
    Topology::default()
}

fn names(w: &World, idx: &[usize]) -> Vec<String> {
    idx.iter()
        .filter_map(|i| w.nodes.get(*i).map(|n| n.name.clone()))
        .collect()
}

fn targets_of(f: &Fault) -> Vec<usize> {
    match f.targets() {
        Some(schedule::TargetSpec::Nodes { nodes }) => nodes.clone(),
        _ => vec![],
    }
}

fn start_fault(w: &mut World, nem: &Rc<RefCell<Nemesis>>, index: usize, deadline: u64) {
    let Some(p) = nem.borrow().planned.get(index).cloned() else {
        return;
    };
    let cached = p
        .package
        .as_ref()
        .and_then(|k| nem.borrow().topo.get(k).cloned());
    let topo = match cached {
        Some(t) => t,
        None if schedule::needs_topology(&p.fault) || p.package.is_some() => topology(w),
        None => Topology::default(),
    };
    if let Some(k) = &p.package {
        nem.borrow_mut().topo.insert(k.clone(), topo.clone());
    }
    let f = schedule::resolve(&p, w.n(), &topo);
    let fname = format!("start-{}", f.kind().name());
    w.rec.borrow_mut().record(
        Process::Nemesis,
        OpType::Info,
        &fname,
        json!({"planned": p, "primaries": names(w, &topo.primaries)}),
        None,
        None,
    );
    let nodes = schedule::node_indices(&f);
    let (evidence, verified, error) = if nodes.is_empty() {
        (
            Value::Null,
            false,
            Some("the fault resolved to no node (nothing was done)".to_string()),
        )
    } else {
        (apply(w, &f), true, None)
    };
    let described = match &f {
        Fault::Partition {
            partition: PartitionSpec::Grudge { grudge },
        } => {
            let g: serde_json::Map<String, Value> = grudge
                .iter()
                .map(|(k, v)| (names(w, &[*k]).join(""), Value::from(names(w, v))))
                .collect();
            json!({"refuses-from": g})
        }
        _ => Value::from(names(w, &targets_of(&f))),
    };
    w.rec.borrow_mut().record(
        Process::Nemesis,
        OpType::Info,
        &fname,
        json!({"planned": p, "resolved": f, "targets": described, "evidence": evidence, "verified": verified}),
        None,
        error,
    );
    nem.borrow_mut().faults += 1;
    if let Fault::ClockStrobe {
        delta_s, period_ms, ..
    } = &f
    {
        let stop = (w.rec.borrow().t0_us + p.stop_ms * 1000).min(deadline);
        strobe(
            w,
            targets_of(&f),
            *delta_s,
            (*period_ms).max(50) * 1000,
            stop,
            true,
            1,
        );
    }
    nem.borrow_mut().started[index] = Some(f);
}

#[allow(clippy::too_many_arguments)]
fn strobe(
    w: &mut World,
    t: Vec<usize>,
    delta_s: i64,
    period: u64,
    stop: u64,
    on: bool,
    flips: u64,
) {
    for i in &t {
        w.set_clock(*i, if on { delta_s * 1000 } else { 0 });
    }
    let next = w.now + period;
    if next >= stop {
        w.rec.borrow_mut().record(
            Process::Nemesis,
            OpType::Info,
            "strobe-clock",
            json!({"flips": flips, "targets": names(w, &t)}),
            None,
            None,
        );
        return;
    }
    w.call_at(
        next,
        Box::new(move |w| strobe(w, t.clone(), delta_s, period, stop, !on, flips + 1)),
    );
}

/// The fault's effect on the world; returns its evidence.
fn apply(w: &mut World, f: &Fault) -> Value {
    let t = targets_of(f);
    match f {
        Fault::Partition {
            partition: PartitionSpec::Grudge { grudge },
        } => {
            w.set_grudge(grudge);
            json!({"sim": "grudge in force", "pairs": crate::env::net::grudge::cut_pairs(grudge).len()})
        }
        Fault::Partition { .. } => Value::Null,
        Fault::Pause { .. } => {
            for i in &t {
                w.pause(*i);
            }
            json!({"sim": "paused"})
        }
        Fault::Kill { .. } => {
            for i in &t {
                w.kill(*i);
            }
            json!({"sim": "killed"})
        }
        Fault::ClockBump { delta_s, .. } | Fault::ClockStrobe { delta_s, .. } => {
            let mut offsets = serde_json::Map::new();
            for i in &t {
                w.set_clock(*i, delta_s * 1000);
                offsets.insert(w.nodes[*i].name.clone(), json!(delta_s * 1000));
            }
            json!({"delta-s": delta_s, "offsets-ms": offsets})
        }
        Fault::Loss { pct, .. } => {
            for i in &t {
                w.set_loss(*i, *pct);
            }
            json!({"pct": pct})
        }
        Fault::Delay { ms, .. } => {
            for i in &t {
                w.delay_ms[*i] = *ms;
            }
            json!({"ms": ms})
        }
        // Refused before the run starts (see `run_seed`).
        Fault::Reshard { .. } | Fault::Member { .. } => json!({"sim": "not modelled"}),
    }
}

fn stop_fault(w: &mut World, f: &Fault, aof: bool) {
    let fname = format!("stop-{}", f.kind().name());
    w.rec.borrow_mut().record(
        Process::Nemesis,
        OpType::Info,
        &fname,
        json!({"resolved": f}),
        None,
        None,
    );
    let t = targets_of(f);
    match f {
        Fault::Partition { .. } => w.set_grudge(&BTreeMap::new()),
        Fault::Pause { .. } => t.iter().for_each(|i| w.resume(*i)),
        Fault::Kill { .. } => t.iter().for_each(|i| w.restart(*i, aof)),
        Fault::ClockBump { .. } | Fault::ClockStrobe { .. } => {
            t.iter().for_each(|i| w.set_clock(*i, 0))
        }
        Fault::Loss { .. } => t.iter().for_each(|i| w.set_loss(*i, 0)),
        Fault::Delay { .. } => t.iter().for_each(|i| w.delay_ms[*i] = 0),
        Fault::Reshard { .. } | Fault::Member { .. } => {}
    }
    w.rec.borrow_mut().record(
        Process::Nemesis,
        OpType::Info,
        &fname,
        json!({"resolved": f, "evidence": {"sim": "healed"}, "verified": true}),
        None,
        None,
    );
}

fn heal_all(w: &mut World, nem: &Rc<RefCell<Nemesis>>) {
    w.rec.borrow_mut().record(
        Process::Nemesis,
        OpType::Info,
        "heal-all",
        Value::Null,
        None,
        None,
    );
    w.set_grudge(&BTreeMap::new());
    let aof = nem.borrow().aof;
    for i in 0..w.n() {
        w.set_loss(i, 0);
        w.delay_ms[i] = 0;
        w.set_clock(i, 0);
        w.resume(i);
        w.restart(i, aof);
    }
    w.rec.borrow_mut().record(
        Process::Nemesis,
        OpType::Info,
        "heal-all",
        json!({"evidence": {"sim": "everything healed"}, "verified": true}),
        None,
        None,
    );
}
