//! `--target sentinel`: Redis Sentinel. Nodes n1..n3 are redis-server data nodes (n1
//! the first master, n2 and n3 its replicas), n4..n6 are `redis-sentinel` processes
//! (Debian's redis-sentinel 7.0; `redis-server --sentinel` when it is not installed,
//! the same binary), each in its own namespace. The sentinels monitor the master as
//! `hearsay` with quorum 2, `down-after-milliseconds` = `--node-timeout` and a
//! failover timeout of 3 x node_timeout. Clients ask the sentinels for the master
//! (workloads' `Routing::Sentinel`).
//!
//! Formation: replicas start with `replicaof`, sentinels with `sentinel monitor`;
//! formed when every sentinel knows both replicas and both other sentinels. Observed
//! through INFO replication (data nodes) and SENTINEL GET-MASTER-ADDR-BY-NAME /
//! SENTINEL MASTER (sentinels). `sentinel.json` in the run folder names who is who,
//! for the Sentinel checkers (`hearsay_checkers::sentinel`), which read the sentinels'
//! own logs.

use super::cluster::wait_nodes_up;
use super::server::NodeSettings;
use super::standalone::{self, Procs};
use super::{StartCtx, Started, Stopped, Target, TargetError};
use crate::env::net::Network;
use crate::env::process::Node;
use crate::env::recorder::{JsonLines, Recorder};
use crate::faults::delay::Delays;
use crate::faults::nemesis::Nemesis;
use crate::faults::schedule::{Fault, Planned, Topology};
use crate::opts::{DataServer, RunOpts};
use hearsay_workloads::cluster::{parse_master_addr, Routing};
use hearsay_workloads::conn::oneshot;
use hearsay_workloads::resp::Value as Resp;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name the sentinels monitor the master by.
pub const MASTER_NAME: &str = "hearsay";
/// Sentinels that must agree the master is down (ODOWN).
pub const QUORUM: usize = 2;
/// Data nodes (one master, two replicas) and sentinels.
pub const DATA: usize = 3;
pub const SENTINELS: usize = 3;
const SENTINEL_PORT: u16 = 26379;

/// The Sentinel target.
pub struct SentinelTarget {
    settings: NodeSettings,
    /// The data nodes' binary: redis-server, or hearsay-node (`--server hearsay`).
    data_bin: PathBuf,
    data_server: DataServer,
    sentinel_bin: PathBuf,
    /// Extra arguments of the sentinel binary (`--sentinel` for redis-server).
    sentinel_args: Vec<String>,
    min_replicas_to_write: u32,
    failover_timeout_ms: u64,
    procs: Procs,
}

pub fn target(opts: &RunOpts) -> SentinelTarget {
    let redis_server = crate::env::sys::which(&opts.redis_server.to_string_lossy())
        .unwrap_or(opts.redis_server.clone());
    let (sentinel_bin, sentinel_args) = match crate::env::sys::which("redis-sentinel") {
        Some(p) => (p, vec![]),
        None => (redis_server.clone(), vec!["--sentinel".to_string()]),
    };
    let hearsay_node = match opts.server {
        DataServer::Hearsay => super::server::find_hearsay_node(opts.hearsay_node.as_deref()),
        DataServer::Redis => PathBuf::new(),
    };
    let data_bin = match opts.server {
        DataServer::Hearsay => hearsay_node.clone(),
        DataServer::Redis => redis_server.clone(),
    };
    SentinelTarget {
        data_bin,
        data_server: opts.server,
        settings: NodeSettings {
            redis_server,
            hearsay_node,
            node_timeout_ms: opts.node_timeout,
            loglevel: opts.loglevel.clone(),
            appendonly: opts.appendonly == "yes",
            faketime_shim: None,
            base_port: 7000,
            bugs: vec![],
            election_delay_ms: None,
            experiment: vec![],
        },
        sentinel_bin,
        sentinel_args,
        min_replicas_to_write: opts.min_replicas_to_write,
        failover_timeout_ms: 3 * opts.node_timeout,
        procs: Procs::default(),
    }
}

/// The sentinel config: monitor the first master; every rule the checkers judge is
/// logged at notice or above.
fn sentinel_config(
    node: &Node,
    master: SocketAddr,
    down_after_ms: u64,
    failover_ms: u64,
) -> String {
    let d = node.dir.display();
    format!(
        "port {port}\nbind {ip} 127.0.0.1\nprotected-mode no\ndaemonize no\ndir {d}\n\
         logfile {d}/log\nloglevel notice\n\
         sentinel monitor {MASTER_NAME} {mip} {mport} {QUORUM}\n\
         sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
         sentinel failover-timeout {MASTER_NAME} {failover_ms}\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        port = node.port,
        ip = node.ip,
        mip = master.ip(),
        mport = master.port(),
    )
}

fn is_sentinel(index: usize) -> bool {
    index >= DATA
}

impl SentinelTarget {
    fn nodes(&self) -> &[Node] {
        self.procs.nodes()
    }

    fn data(&self) -> impl Iterator<Item = &Node> {
        self.nodes().iter().filter(|n| !is_sentinel(n.index))
    }

    fn sentinels(&self) -> impl Iterator<Item = &Node> {
        self.nodes().iter().filter(|n| is_sentinel(n.index))
    }

    fn describe(&self) -> Value {
        let addrs = |it: &mut dyn Iterator<Item = &Node>| -> serde_json::Map<String, Value> {
            it.map(|n| (n.name.clone(), json!(n.addr().to_string())))
                .collect()
        };
        json!({
            "master_name": MASTER_NAME,
            "quorum": QUORUM,
            "down_after_ms": self.settings.node_timeout_ms,
            "failover_timeout_ms": self.failover_timeout_ms,
            "min_replicas_to_write": self.min_replicas_to_write,
            "data": addrs(&mut self.data()),
            "sentinels": addrs(&mut self.sentinels()),
        })
    }

    /// What each running sentinel names as the master (None: no answer).
    async fn named_masters(&self) -> Vec<(String, Option<SocketAddr>)> {
        let mut out = Vec::new();
        for s in self.sentinels().filter(|n| n.is_running()) {
            out.push((s.name.clone(), sentinel_master(s.addr()).await));
        }
        out
    }

    /// The current topology: the master is what most sentinels name (else the data
    /// node that reports role master), its replicas the other data nodes; the
    /// sentinels vote.
    async fn topology(&self) -> Topology {
        let named = self.named_masters().await;
        let mut votes: BTreeMap<SocketAddr, usize> = BTreeMap::new();
        for a in named.iter().filter_map(|(_, a)| *a) {
            *votes.entry(a).or_default() += 1;
        }
        let by_sentinels = votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .and_then(|(a, _)| self.data().find(|n| n.addr() == a).map(|n| n.index));
        let master = match by_sentinels {
            Some(m) => Some(m),
            None => {
                let mut found = None;
                for n in self.data().filter(|n| n.is_running()) {
                    if role_of(n.addr()).await.as_deref() == Some("master") {
                        found = Some(n.index);
                        break;
                    }
                }
                found
            }
        };
        let mut topo = Topology {
            voters: self.sentinels().map(|n| n.index).collect(),
            ..Topology::default()
        };
        if let Some(m) = master {
            topo.primaries = vec![m];
            topo.replicas_of.insert(
                m,
                self.data().map(|n| n.index).filter(|i| *i != m).collect(),
            );
        }
        topo
    }

    /// Whether the live processes agree: every running sentinel names one master,
    /// that node reports role master, every other running data node follows it
    /// with its link up. Err says what is still off.
    async fn agreed(&self) -> Result<(), String> {
        let named = self.named_masters().await;
        let masters: Vec<Option<SocketAddr>> = named.iter().map(|(_, a)| *a).collect();
        let Some(Some(m)) = masters.first().copied() else {
            return Err(format!("sentinels name no master: {named:?}"));
        };
        if masters.iter().any(|a| *a != Some(m)) {
            return Err(format!("sentinels disagree: {named:?}"));
        }
        for n in self.data().filter(|n| n.is_running()) {
            let info = standalone::replication_sample(n.addr(), 0)
                .await
                .map_err(|e| format!("{}: {e}", n.name))?;
            if n.addr() == m {
                if info["role"] != "master" {
                    return Err(format!(
                        "{} is named master but reports {}",
                        n.name, info["role"]
                    ));
                }
                continue;
            }
            let follows = info["role"] == "slave"
                && info["master_host"].as_str() == Some(&m.ip().to_string())
                && info["master_port"].as_u64() == Some(u64::from(m.port()))
                && info["link"] == "up";
            if !follows {
                return Err(format!("{} does not follow {m} yet: {info}", n.name));
            }
        }
        Ok(())
    }
}

/// A sentinel's answer to GET-MASTER-ADDR-BY-NAME.
async fn sentinel_master(addr: SocketAddr) -> Option<SocketAddr> {
    let v = oneshot(
        addr,
        &[
            b"SENTINEL",
            b"GET-MASTER-ADDR-BY-NAME",
            MASTER_NAME.as_bytes(),
        ],
        Duration::from_millis(300),
    )
    .await
    .ok()?;
    parse_master_addr(&v)
}

/// `SENTINEL MASTER <name>` as a field map.
async fn sentinel_state(addr: SocketAddr) -> Result<BTreeMap<String, String>, String> {
    let v = oneshot(
        addr,
        &[b"SENTINEL", b"MASTER", MASTER_NAME.as_bytes()],
        Duration::from_millis(300),
    )
    .await
    .map_err(|e| e.tag())?;
    let items = match &v {
        Resp::Array(Some(items)) => items,
        other => return Err(format!("{other:?}")),
    };
    Ok(items
        .chunks(2)
        .filter_map(|kv| Some((kv.first()?.as_text()?, kv.get(1)?.as_text()?)))
        .collect())
}

/// The first element of ROLE.
async fn role_of(addr: SocketAddr) -> Option<String> {
    let v = oneshot(addr, &[b"ROLE"], Duration::from_millis(300))
        .await
        .ok()?;
    v.as_array()?.first()?.as_text()
}

#[async_trait::async_trait]
impl Target for SentinelTarget {
    fn name(&self) -> &'static str {
        "sentinel"
    }

    fn versions(&self) -> serde_json::Map<String, Value> {
        let mut v = serde_json::Map::new();
        v.insert(
            "redis".into(),
            json!(standalone::version_of(&self.settings.redis_server)),
        );
        if self.data_server == DataServer::Hearsay {
            v.insert(
                "hearsay-node".into(),
                json!(standalone::version_of(&self.data_bin)),
            );
        }
        v.insert(
            "redis-sentinel".into(),
            json!(standalone::version_of(&self.sentinel_bin)),
        );
        v
    }

    fn binaries(&self) -> Value {
        json!({"redis-server": self.settings.redis_server, "data-server": self.data_bin,
               "redis-sentinel": self.sentinel_bin, "sentinel-args": self.sentinel_args})
    }

    async fn start(&mut self, ctx: StartCtx<'_>) -> Result<Started, TargetError> {
        let net = Network::create(&ctx.reg, DATA + SENTINELS)?;
        if ctx.with_clock {
            self.settings.faketime_shim = Some(crate::faults::clock::build_shim(
                &ctx.run_dir.join("faketime"),
            )?);
        }
        let clock = self.settings.faketime_shim.is_some();
        let master = net
            .nodes
            .first()
            .map(|n| SocketAddr::new(n.ip.into(), self.settings.base_port + 1))
            .ok_or_else(|| TargetError::Other("no network nodes".into()))?;
        let mut nodes = Vec::new();
        for (i, nn) in net.nodes.iter().enumerate() {
            let (kind, port) = if is_sentinel(i) {
                ("redis-sentinel", SENTINEL_PORT)
            } else {
                let kind = match self.data_server {
                    DataServer::Redis => "redis",
                    DataServer::Hearsay => "hearsay",
                };
                (kind, self.settings.base_port + i as u16 + 1)
            };
            let mut node = Node::new(
                i,
                kind,
                &nn.ns,
                nn.ip,
                port,
                ctx.run_dir,
                clock,
                ctx.reg.clone(),
            );
            let (text, program, mut args) = if is_sentinel(i) {
                (
                    sentinel_config(
                        &node,
                        master,
                        self.settings.node_timeout_ms,
                        self.failover_timeout_ms,
                    ),
                    self.sentinel_bin.clone(),
                    vec![],
                )
            } else {
                (
                    standalone::data_config(
                        &node,
                        &self.settings,
                        (i > 0).then_some(master),
                        self.min_replicas_to_write,
                    ),
                    self.data_bin.clone(),
                    vec![],
                )
            };
            args.insert(0, node.config_path().display().to_string());
            if is_sentinel(i) {
                args.extend(self.sentinel_args.iter().cloned());
            }
            node.set_launch(standalone::launch(&node, &self.settings, program, args));
            super::server::write_config(&node, &text)?;
            nodes.push(node);
        }
        let t_nodes = Instant::now();
        // Data nodes first: a sentinel that starts before its master answers marks
        // it down at once.
        for n in nodes.iter_mut().filter(|n| !is_sentinel(n.index)) {
            n.start()?;
        }
        wait_nodes_up(&mut nodes[..DATA], Duration::from_secs(15)).await?;
        for n in nodes.iter_mut().filter(|n| is_sentinel(n.index)) {
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
        self.procs.nemesis = Some(Nemesis::new(net, nodes, delays));
        let text = serde_json::to_string_pretty(&self.describe()).unwrap_or_default();
        std::fs::write(ctx.run_dir.join("sentinel.json"), text + "\n").map_err(|source| {
            TargetError::Io {
                what: "write sentinel.json".into(),
                source,
            }
        })?;
        Ok(started)
    }

    async fn form(&mut self) -> Result<u64, TargetError> {
        let t0 = Instant::now();
        let limit = Duration::from_secs(30);
        loop {
            let mut last = String::new();
            let mut ok = true;
            for s in self.sentinels() {
                match sentinel_state(s.addr()).await {
                    Ok(st) => {
                        let get = |k: &str| st.get(k).map(String::as_str).unwrap_or("");
                        if get("flags") != "master"
                            || get("num-slaves") != "2"
                            || get("num-other-sentinels") != "2"
                        {
                            ok = false;
                            last = format!("{}: {st:?}", s.name);
                        }
                    }
                    Err(e) => {
                        ok = false;
                        last = format!("{}: {e}", s.name);
                    }
                }
            }
            if ok {
                if let Err(e) = self.agreed().await {
                    ok = false;
                    last = e;
                }
            }
            if ok {
                return Ok(t0.elapsed().as_millis() as u64);
            }
            if t0.elapsed() > limit {
                return Err(TargetError::Other(format!(
                    "sentinels did not agree on one master with 2 replicas and 3 sentinels within {limit:?}; last: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        self.nodes()
            .iter()
            .map(|n| (n.name.clone(), n.addr()))
            .collect()
    }

    fn client_seeds(&self) -> Vec<SocketAddr> {
        self.sentinels().map(|n| n.addr()).collect()
    }

    fn routing(&self) -> Routing {
        Routing::Sentinel {
            master: MASTER_NAME.to_string(),
        }
    }

    fn record_faults(&mut self, rec: Arc<Recorder>) {
        if let Some(n) = self.procs.nemesis.as_mut() {
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
        let nodes: Vec<(String, SocketAddr, bool)> = self
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), n.addr(), is_sentinel(n.index)))
            .collect();
        tokio::spawn(snapshotter(nodes, out, rec, every, stop))
    }

    async fn start_fault(&mut self, p: &Planned) -> (Fault, bool) {
        // Read every time (a handful of local requests): the start record names
        // the primary, and "primaries" follow the sentinels' failovers.
        let topo = match self.procs.package_topology(p) {
            Some(t) => t,
            None => self.topology().await,
        };
        self.procs.start_fault(p, topo).await
    }

    async fn hold_fault(
        &mut self,
        f: &Fault,
        until: tokio::time::Instant,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) {
        self.procs.hold_fault(f, until, stop).await;
    }

    async fn stop_fault(&mut self, f: &Fault) -> bool {
        self.procs.stop_fault(f).await
    }

    async fn heal_all(&mut self) -> bool {
        self.procs.heal_all().await
    }

    async fn wait_recovered(&self, limit: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        loop {
            match self.agreed().await {
                Ok(()) => return Ok(t0.elapsed()),
                Err(e) if t0.elapsed() > limit => {
                    return Err(format!("not recovered within {limit:?}: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn stop(&mut self, _run_dir: &Path) -> Result<Stopped, TargetError> {
        Ok(Stopped {
            restarts: self.procs.stop_all().await?,
        })
    }
}

/// One snapshot round per period: every data node's INFO replication, every
/// sentinel's named master and its SENTINEL MASTER flags and config epoch.
async fn snapshotter(
    nodes: Vec<(String, SocketAddr, bool)>,
    out: JsonLines,
    rec: Arc<Recorder>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        for (name, addr, sentinel) in &nodes {
            let time = rec.now_ns();
            let line = if *sentinel {
                let master = sentinel_master(*addr).await;
                let state = sentinel_state(*addr).await;
                match state {
                    Ok(st) => json!({"time": time, "node": name, "kind": "sentinel",
                    "sentinel": {
                        "master": master.map(|m| m.to_string()),
                        "flags": st.get("flags"),
                        "config_epoch": st.get("config-epoch").and_then(|e| e.parse::<u64>().ok()),
                        "num_slaves": st.get("num-slaves"),
                        "num_other_sentinels": st.get("num-other-sentinels"),
                    }}),
                    Err(e) => json!({"time": time, "node": name, "kind": "sentinel", "error": e}),
                }
            } else {
                match standalone::replication_sample(*addr, time).await {
                    Ok(r) => json!({"time": time, "node": name, "kind": "data", "replication": r}),
                    Err(e) => json!({"time": time, "node": name, "kind": "data", "error": e}),
                }
            };
            let mut line = line;
            line["addr"] = json!(addr.to_string());
            let _ = out.write(&line);
        }
        if last {
            return;
        }
    }
}
