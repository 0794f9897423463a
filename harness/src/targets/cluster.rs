//! Redis Cluster targets: N nodes, each a redis-server or a hearsay-node in its own
//! namespace, formed with CLUSTER MEET / ADDSLOTSRANGE / REPLICATE, observed through
//! CLUSTER NODES, judged by the Redis Cluster protocol checkers. Which server runs at
//! which node index is the only thing the `redis`, `hearsay` and `mixed` targets
//! change.

use super::form;
use super::reshape::{self, Reshard};
use super::server::{self, Kind, NodeSettings};
use super::{StartCtx, Started, Stopped, Target, TargetError};
use crate::env::net::Network;
use crate::env::process::Node;
use crate::env::recorder::{JsonLines, Recorder};
use crate::faults::delay::Delays;
use crate::faults::nemesis::Nemesis;
use crate::faults::schedule::{self, Fault, Planned, Topology};
use crate::opts::RunOpts;
use hearsay_workloads::conn::oneshot;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which server node `i` runs.
pub type Layout = fn(usize) -> Kind;

/// A Redis Cluster of `nodes` processes.
pub struct ClusterTarget {
    name: &'static str,
    kinds: Vec<Kind>,
    replicas: usize,
    set_config_epochs: bool,
    settings: NodeSettings,
    /// Network and processes, once started (the nemesis owns them).
    nemesis: Option<Nemesis>,
    /// The topology each package's faults resolve against, read at its first fault.
    package_topology: BTreeMap<String, Topology>,
    layout: Layout,
    /// The schedule reshards or changes members: one spare node (the last index)
    /// starts outside the cluster, and the final heal repairs open slots and members.
    reshape: bool,
    /// Connections for the reshape steps.
    admin: form::Admin,
    /// The reshard between its fault's start and stop.
    reshard: Option<Reshard>,
}

impl ClusterTarget {
    pub fn new(name: &'static str, layout: Layout, opts: &RunOpts) -> ClusterTarget {
        let settings = NodeSettings {
            redis_server: crate::env::sys::which(&opts.redis_server.to_string_lossy())
                .unwrap_or(opts.redis_server.clone()),
            hearsay_node: server::find_hearsay_node(opts.hearsay_node.as_deref()),
            node_timeout_ms: opts.node_timeout,
            loglevel: opts.loglevel.clone(),
            appendonly: opts.appendonly == "yes",
            faketime_shim: None,
            base_port: 7000,
            bugs: opts.node_bug.clone(),
            election_delay_ms: opts.node_election_delay_ms,
            experiment: vec![],
        };
        ClusterTarget {
            name,
            kinds: (0..opts.nodes).map(layout).collect(),
            replicas: opts.replicas,
            set_config_epochs: !opts.skip_config_epochs,
            settings,
            nemesis: None,
            package_topology: BTreeMap::new(),
            layout,
            reshape: false,
            admin: form::Admin::default(),
            reshard: None,
        }
    }

    /// The nodes formed into the cluster at the start (the spare, if any, follows).
    fn cluster_nodes(&self) -> &[Node] {
        let n = self.kinds.len().min(self.nodes().len());
        self.nodes().get(..n).unwrap_or(&[])
    }

    /// Starts a `reshard` or `member` fault: resolved against the slot map and the
    /// members, carried out by `reshape`, recorded like every fault.
    async fn start_reshape(&mut self, p: &Planned) -> (Fault, bool) {
        let mut topo = topology(self.nodes()).await;
        if matches!(p.fault, Fault::Reshard { from: None, .. }) {
            for i in topo.primaries.clone() {
                if let Some(s) = self.nodes().get(i).map(|n| key_slot_on(n.addr())) {
                    if let Some(s) = s.await {
                        topo.key_slot_of.insert(i, s);
                    }
                }
            }
        }
        let Some(nem) = self.nemesis.as_mut() else {
            return (p.fault.clone(), false);
        };
        let f = schedule::resolve(p, nem.nodes.len(), &topo);
        let fname = format!("start-{}", f.kind().name());
        nem.record_info(
            &fname,
            json!({"planned": p, "primaries": nem.names_of(&topo.primaries)}),
            None,
        );
        let (ev, ok, err) = match &f {
            Fault::Reshard { .. } => match Reshard::new(&mut self.admin, &nem.nodes, &f).await {
                Ok(mut r) => {
                    let nem_ref = &*nem;
                    let now = || nem_ref.now_ms();
                    let out = r.first_half(&mut self.admin, &nem.nodes, &now).await;
                    self.reshard = Some(r);
                    out
                }
                Err(e) => (Value::Null, false, Some(e)),
            },
            _ => reshape::member_change(&mut self.admin, &nem.nodes, &f).await,
        };
        nem.record_info(
            &fname,
            json!({
                "planned": p,
                "resolved": f,
                "targets": nem.names_of(&schedule::node_indices(&f)),
                "evidence": ev,
                "verified": ok,
            }),
            err,
        );
        (f, ok)
    }

    /// The end of a `reshard` (the rest of its steps) or `member` fault (whether the
    /// members agree on it).
    async fn stop_reshape(&mut self, f: &Fault) -> bool {
        let Some(nem) = self.nemesis.as_mut() else {
            return false;
        };
        let fname = format!("stop-{}", f.kind().name());
        nem.record_info(&fname, json!({"resolved": f}), None);
        let (ev, ok, err) = match f {
            Fault::Reshard { .. } => match self.reshard.take() {
                Some(mut r) => {
                    let nem_ref = &*nem;
                    let now = || nem_ref.now_ms();
                    r.finish(&mut self.admin, &nem.nodes, &now).await
                }
                None => (Value::Null, false, Some("the reshard never started".into())),
            },
            _ => reshape::member_settled(&mut self.admin, &nem.nodes, f).await,
        };
        nem.record_info(
            &fname,
            json!({"resolved": f, "evidence": ev, "verified": ok}),
            err,
        );
        ok
    }

    /// The server of each node, by index.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    fn nodes(&self) -> &[Node] {
        self.nemesis.as_ref().map_or(&[], |n| &n.nodes)
    }

    fn nemesis(&mut self) -> Result<&mut Nemesis, TargetError> {
        self.nemesis
            .as_mut()
            .ok_or_else(|| TargetError::Other("the cluster is not started".into()))
    }
}

#[async_trait::async_trait]
impl Target for ClusterTarget {
    fn name(&self) -> &'static str {
        self.name
    }

    fn versions(&self) -> serde_json::Map<String, Value> {
        let mut versions = serde_json::Map::new();
        for kind in [Kind::Redis, Kind::Hearsay] {
            if self.kinds.contains(&kind) {
                versions.insert(
                    format!("{kind:?}").to_lowercase(),
                    json!(server::binary_version(kind, &self.settings)),
                );
            }
        }
        versions
    }

    fn binaries(&self) -> Value {
        json!({"redis-server": self.settings.redis_server, "hearsay-node": self.settings.hearsay_node})
    }

    async fn start(&mut self, ctx: StartCtx<'_>) -> Result<Started, TargetError> {
        self.reshape = ctx.reshape;
        let spares = usize::from(ctx.reshape);
        let net = Network::create(&ctx.reg, self.kinds.len() + spares)?;
        if ctx.with_clock {
            self.settings.faketime_shim = Some(crate::faults::clock::build_shim(
                &ctx.run_dir.join("faketime"),
            )?);
        }
        let mut nodes = Vec::new();
        for (i, nn) in net.nodes.iter().enumerate() {
            let kind = self.kinds.get(i).copied().unwrap_or((self.layout)(i));
            nodes.push(server::cluster_node(
                i,
                kind,
                &nn.ns,
                nn.ip,
                ctx.run_dir,
                &self.settings,
                ctx.reg.clone(),
            )?);
        }
        let t_nodes = Instant::now();
        for n in nodes.iter_mut() {
            n.start()?;
        }
        wait_nodes_up(&mut nodes, Duration::from_secs(15)).await?;
        let started = Started {
            network: net.bridge.clone(),
            namespaces: net.nodes.len(),
            network_build_ms: net.build_ms,
            nodes_start_ms: t_nodes.elapsed().as_millis() as u64,
        };
        let delays = Delays::new(ctx.reg.clone(), ctx.exe);
        self.nemesis = Some(Nemesis::new(net, nodes, delays));
        Ok(started)
    }

    async fn form(&mut self) -> Result<u64, TargetError> {
        let addrs: Vec<SocketAddr> = self.cluster_nodes().iter().map(|n| n.addr()).collect();
        let formed = form::form(
            &addrs,
            self.replicas,
            self.set_config_epochs,
            Duration::from_secs(30),
        )
        .await?;
        Ok(formed.form_ms)
    }

    fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        self.nodes()
            .iter()
            .map(|n| (n.name.clone(), n.addr()))
            .collect()
    }

    /// Clients start at the cluster's nodes, not at the spare (it knows no slots).
    fn client_seeds(&self) -> Vec<SocketAddr> {
        self.cluster_nodes().iter().map(|n| n.addr()).collect()
    }

    fn record_faults(&mut self, rec: Arc<Recorder>) {
        if let Some(n) = self.nemesis.as_mut() {
            n.set_recorder(rec);
        }
    }

    fn spawn_observer(
        &self,
        out: JsonLines,
        rec: Arc<Recorder>,
        every: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(snapshotter(self.endpoints(), out, rec, every, stop))
    }

    async fn start_fault(&mut self, p: &Planned) -> (Fault, bool) {
        if p.fault.kind().is_reshape() {
            return self.start_reshape(p).await;
        }
        let cached = p
            .package
            .as_ref()
            .and_then(|k| self.package_topology.get(k).cloned());
        let topo = match cached {
            Some(t) => t,
            None if schedule::needs_topology(&p.fault) || p.package.is_some() => {
                topology(self.nodes()).await
            }
            None => Topology::default(),
        };
        if let Some(k) = &p.package {
            self.package_topology.insert(k.clone(), topo.clone());
        }
        match self.nemesis() {
            Ok(n) => n.start(p, &topo).await,
            Err(_) => (p.fault.clone(), false),
        }
    }

    async fn hold_fault(
        &mut self,
        f: &Fault,
        until: tokio::time::Instant,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) {
        if let Ok(n) = self.nemesis() {
            n.hold(f, until, stop).await;
        }
    }

    async fn stop_fault(&mut self, f: &Fault) -> bool {
        if f.kind().is_reshape() {
            return self.stop_reshape(f).await;
        }
        match self.nemesis() {
            Ok(n) => n.stop(f).await,
            Err(_) => false,
        }
    }

    async fn heal_all(&mut self) -> bool {
        let healed = match self.nemesis() {
            Ok(n) => n.heal_all().await,
            Err(_) => false,
        };
        if !self.reshape {
            return healed;
        }
        // Open slots and members are repaired once every node is back.
        self.reshard = None;
        let Some(nem) = self.nemesis.as_mut() else {
            return false;
        };
        let live: Vec<SocketAddr> = nem
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.addr())
            .collect();
        let _ = form::wait_ping(&live, Duration::from_secs(10)).await;
        nem.record_info("repair-cluster", json!({}), None);
        let (ev, ok, err) = reshape::repair(&mut self.admin, &nem.nodes).await;
        nem.record_info(
            "repair-cluster",
            json!({"evidence": ev, "verified": ok}),
            err,
        );
        healed && ok
    }

    async fn wait_recovered(&self, limit: Duration) -> Result<Duration, String> {
        let live: Vec<SocketAddr> = self
            .nodes()
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.addr())
            .collect();
        form::wait_agreed(&live, Some(self.nodes().len()), limit)
            .await
            .map_err(|e| e.to_string())
    }

    async fn stop(&mut self, run_dir: &Path) -> Result<Stopped, TargetError> {
        // The spare's server follows the layout like the others'.
        let layout = self.layout;
        let kinds: Vec<Kind> = (0..self.nodes().len())
            .map(|i| self.kinds.get(i).copied().unwrap_or(layout(i)))
            .collect();
        let nemesis = self.nemesis()?;
        // Cluster-bus message counters of every node, for `hearsay compare` (secondary:
        // a failed write does not fail the run).
        let bus_nodes: Vec<_> = nemesis
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.addr(), n.is_running()))
            .collect();
        if let Ok(text) = serde_json::to_string_pretty(&bus_stats(&bus_nodes).await) {
            let _ = std::fs::write(run_dir.join("bus-stats.json"), text + "\n");
        }
        // A clean stop ends each log with its "ready to exit" line, which the
        // evidence checks need; redis may need a few seconds to finish an AOF
        // rewrite first (see `Node::stop`).
        for n in nemesis.nodes.iter_mut() {
            let _ = n.stop(Duration::from_secs(10)).await;
        }
        // redis-server has no event log: derive one from its log lines.
        for (n, _) in nemesis
            .nodes
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| **k == Kind::Redis)
        {
            // Bytes: one invalid UTF-8 byte must not hide the rest of the log.
            let log = std::fs::read(n.log_path()).unwrap_or_default();
            let mut text = String::new();
            for ev in hearsay_checkers::redis_log::events(&log) {
                text.push_str(&ev.to_string());
                text.push('\n');
            }
            std::fs::write(n.events_path(), text).map_err(|source| TargetError::Io {
                what: format!("write {}", n.events_path().display()),
                source,
            })?;
        }
        Ok(Stopped {
            restarts: nemesis
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.restarts))
                .collect(),
        })
    }
}

/// The current topology, as the first answering node sees it: primaries (masters
/// with slots, not failed) and the replicas of each (node indices).
pub async fn topology(nodes: &[Node]) -> Topology {
    for n in nodes.iter().filter(|n| n.is_running()) {
        let Ok(v) = oneshot(
            n.addr(),
            &[b"CLUSTER", b"NODES"],
            Duration::from_millis(500),
        )
        .await
        else {
            continue;
        };
        let Some(text) = v.as_text() else { continue };
        let lines = form::parse_nodes(&text);
        let topo = form::topology_of(&lines, |addr| {
            nodes.iter().position(|nd| nd.addr().to_string() == addr)
        });
        if !topo.primaries.is_empty() {
            return topo;
        }
    }
    Topology::default()
}

/// The slot of a random key on a node (RANDOMKEY, then CLUSTER KEYSLOT).
async fn key_slot_on(addr: SocketAddr) -> Option<u16> {
    let t = Duration::from_millis(500);
    let key = oneshot(addr, &[b"RANDOMKEY"], t)
        .await
        .ok()?
        .as_bytes()?
        .to_vec();
    match oneshot(addr, &[b"CLUSTER", b"KEYSLOT", &key], t)
        .await
        .ok()?
    {
        hearsay_workloads::resp::Value::Int(s) => u16::try_from(s).ok(),
        _ => None,
    }
}

/// Waits until every node answers PING; fails at once, with the log tail, if a node
/// process exits (e.g. a binary that does not accept the redis-style config).
pub async fn wait_nodes_up(nodes: &mut [Node], limit: Duration) -> Result<(), TargetError> {
    let t0 = Instant::now();
    for n in nodes.iter_mut() {
        loop {
            if let Some(status) = n.exited() {
                return Err(TargetError::Other(format!(
                    "node {} ({}) exited during startup with {status}; log tail:\n{}",
                    n.name,
                    n.kind,
                    n.log_tail(15)
                )));
            }
            if form::wait_ping(&[n.addr()], Duration::ZERO).await.is_ok() {
                break;
            }
            if t0.elapsed() > limit {
                return Err(TargetError::Other(format!(
                    "node {} did not answer PING within {limit:?}; log tail:\n{}",
                    n.name,
                    n.log_tail(15)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Polls every node's CLUSTER NODES into snapshots.jsonl.
async fn snapshotter(
    nodes: Vec<(String, SocketAddr)>,
    out: JsonLines,
    rec: Arc<Recorder>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // On stop, one last round: the convergence checker judges the final state.
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        for (name, addr) in &nodes {
            let time = rec.now_ns();
            let r = oneshot(*addr, &[b"CLUSTER", b"NODES"], Duration::from_millis(300)).await;
            let mut line = match r {
                Ok(v) => match v.as_text() {
                    Some(t) => json!({"time": time, "node": name, "nodes": t}),
                    None => json!({"time": time, "node": name, "error": format!("{v:?}")}),
                },
                Err(e) => json!({"time": time, "node": name, "error": e.tag()}),
            };
            // Replication offsets beside the slot map: the claims model needs them to
            // tell whether a promoted replica had a write its master acknowledged.
            let repl_time = rec.now_ns();
            let r = oneshot(
                *addr,
                &[b"INFO", b"replication"],
                Duration::from_millis(300),
            )
            .await;
            if let Some(text) = r.ok().and_then(|v| v.as_text()) {
                line["replication"] = replication_fields(&text);
                line["replication"]["time"] = json!(repl_time);
            }
            let _ = out.write(&line);
        }
        if last {
            return;
        }
    }
}

/// The fields of INFO replication the checkers use: role, offset (a master's
/// master_repl_offset; a replica's processed offset, which redis also reports as
/// master_repl_offset), replication ID, and for replicas the link status.
pub fn replication_fields(text: &str) -> Value {
    let mut out = serde_json::Map::new();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        match k {
            "role" => {
                out.insert("role".into(), json!(v));
            }
            "master_repl_offset" => {
                out.insert("offset".into(), json!(v.parse::<u64>().ok()));
            }
            "master_replid" => {
                out.insert("replid".into(), json!(v));
            }
            "master_link_status" => {
                out.insert("link".into(), json!(v));
            }
            // A replica's master (Sentinel: whom the replicas follow after a heal).
            "master_host" => {
                out.insert("master_host".into(), json!(v));
            }
            "master_port" => {
                out.insert("master_port".into(), json!(v.parse::<u16>().ok()));
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// Reads `CLUSTER INFO` from every node and keeps its cluster-bus message counters
/// (redis-server and hearsay-node both answer `cluster_stats_messages_*`). Counters
/// start at zero when a node starts, so a restarted node counts from its restart.
pub async fn bus_stats(nodes: &[(String, SocketAddr, bool)]) -> Value {
    let mut out = serde_json::Map::new();
    for (name, addr, running) in nodes {
        let v = if !running {
            json!({"error": "not running at the end of the run"})
        } else {
            match oneshot(*addr, &[b"CLUSTER", b"INFO"], Duration::from_millis(1000)).await {
                Ok(v) => match v.as_text() {
                    Some(text) => parse_bus_counters(&text),
                    None => json!({"error": format!("unexpected reply {v:?}")}),
                },
                Err(e) => json!({"error": e.tag()}),
            }
        };
        out.insert(name.clone(), v);
    }
    json!({
        "source": "CLUSTER INFO cluster_stats_messages_* at the end of the run (since each node's last start)",
        "nodes": out,
    })
}

/// `{sent, received, by_type: {ping_sent: n, ...}}` from CLUSTER INFO text.
pub fn parse_bus_counters(text: &str) -> Value {
    let mut by_type = BTreeMap::new();
    let (mut sent, mut received) = (None, None);
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        let Some(name) = k.strip_prefix("cluster_stats_messages_") else {
            continue;
        };
        let Ok(n) = v.trim().parse::<u64>() else {
            continue;
        };
        match name {
            "sent" => sent = Some(n),
            "received" => received = Some(n),
            other => {
                by_type.insert(other.to_string(), n);
            }
        }
    }
    if sent.is_none() && received.is_none() {
        return json!({"error": "CLUSTER INFO has no cluster_stats_messages_sent/received"});
    }
    json!({"sent": sent, "received": received, "by_type": by_type})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_fields_from_info() {
        let v = replication_fields("# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nslave_repl_offset:90\r\nmaster_replid:abc\r\nmaster_repl_offset:90\r\n");
        assert_eq!(v["role"], "slave");
        assert_eq!(v["offset"], 90);
        assert_eq!(v["replid"], "abc");
        assert_eq!(v["link"], "up");
    }

    #[test]
    fn bus_counters_parse_from_cluster_info() {
        let v = parse_bus_counters(
            "cluster_state:ok\r\ncluster_stats_messages_ping_sent:10\r\ncluster_stats_messages_sent:25\r\ncluster_stats_messages_received:24\r\n",
        );
        assert_eq!(v["sent"], 25);
        assert_eq!(v["received"], 24);
        assert_eq!(v["by_type"]["ping_sent"], 10);
        assert!(parse_bus_counters("cluster_state:ok\r\n")["error"].is_string());
    }
}
