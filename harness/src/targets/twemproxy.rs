//! `--target twemproxy`: Debian's nutcracker (twemproxy 0.5) in front of three
//! plain redis-server shards. n1..n3 are the shards, n4 the proxy, each in its own
//! namespace; clients send everything to the proxy (workloads' `Routing::Proxy`).
//! The proxy shards by ketama over fnv1a_64 with each shard named (`n1`...), so a
//! restarted shard keeps its place on the ring. `--auto-eject yes` sets
//! `auto_eject_hosts`: after 2 failed requests a shard leaves the ring for
//! node_timeout ms and its keys go to the others meanwhile.
//!
//! There is no replication and no failover protocol: the snapshots record which keys
//! each shard holds (the claims model reads where a key lived), and the protocol
//! section says there is nothing to judge.

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
use crate::opts::RunOpts;
use hearsay_workloads::cluster::Routing;
use hearsay_workloads::conn::oneshot;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shards behind the proxy.
pub const SHARDS: usize = 3;
const PROXY_PORT: u16 = 22121;
/// Requests that fail in a row before an auto-eject.
const FAILURE_LIMIT: u32 = 2;
/// At most this many keys per shard go into a snapshot.
const MAX_KEYS: usize = 2000;

/// The twemproxy target.
pub struct TwemproxyTarget {
    settings: NodeSettings,
    nutcracker: PathBuf,
    auto_eject: bool,
    procs: Procs,
}

pub fn target(opts: &RunOpts) -> TwemproxyTarget {
    TwemproxyTarget {
        settings: NodeSettings {
            redis_server: crate::env::sys::which(&opts.redis_server.to_string_lossy())
                .unwrap_or(opts.redis_server.clone()),
            hearsay_node: PathBuf::new(),
            node_timeout_ms: opts.node_timeout,
            loglevel: opts.loglevel.clone(),
            appendonly: opts.appendonly == "yes",
            faketime_shim: None,
            base_port: 7000,
            bugs: vec![],
            election_delay_ms: None,
            experiment: vec![],
        },
        nutcracker: crate::env::sys::which(&opts.nutcracker.to_string_lossy())
            .or_else(|| {
                let sbin = PathBuf::from("/usr/sbin").join(&opts.nutcracker);
                sbin.is_file().then_some(sbin)
            })
            .unwrap_or(opts.nutcracker.clone()),
        auto_eject: opts.auto_eject == "yes",
        procs: Procs::default(),
    }
}

/// nutcracker's YAML config: one pool `hearsay` on the proxy's address.
pub fn proxy_config(
    listen: SocketAddr,
    shards: &[(String, SocketAddr)],
    auto_eject: bool,
    retry_ms: u64,
) -> String {
    let mut c = format!(
        "hearsay:\n  listen: {listen}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  \
         preconnect: true\n  timeout: 1000\n  auto_eject_hosts: {auto_eject}\n  \
         server_retry_timeout: {retry_ms}\n  server_failure_limit: {FAILURE_LIMIT}\n  servers:\n"
    );
    for (name, a) in shards {
        c.push_str(&format!("   - {a}:1 {name}\n"));
    }
    c
}

impl TwemproxyTarget {
    fn nodes(&self) -> &[Node] {
        self.procs.nodes()
    }

    fn proxy(&self) -> Option<&Node> {
        self.nodes().get(SHARDS)
    }

    /// Every shard is a "primary" (it alone holds its keys); no replicas.
    fn topology(&self) -> Topology {
        Topology {
            primaries: (0..SHARDS).collect(),
            ..Topology::default()
        }
    }

    /// Whether every shard and the proxy answer PING (through the proxy: a PING the
    /// proxy answers itself; then a read of one key per shard is not possible
    /// without knowing the ring, so the proxy's stats say whether a shard is ejected).
    async fn agreed(&self) -> Result<(), String> {
        for n in self.nodes() {
            match oneshot(n.addr(), &[b"PING"], Duration::from_millis(300)).await {
                Ok(v) if !matches!(v, hearsay_workloads::resp::Value::Error(_)) => {}
                other => return Err(format!("{} does not answer PING: {other:?}", n.name)),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Target for TwemproxyTarget {
    fn name(&self) -> &'static str {
        "twemproxy"
    }

    fn versions(&self) -> serde_json::Map<String, Value> {
        let mut v = serde_json::Map::new();
        v.insert(
            "redis".into(),
            json!(standalone::version_of(&self.settings.redis_server)),
        );
        v.insert(
            "nutcracker".into(),
            json!(standalone::version_of(&self.nutcracker)),
        );
        v
    }

    fn binaries(&self) -> Value {
        json!({"redis-server": self.settings.redis_server, "nutcracker": self.nutcracker})
    }

    async fn start(&mut self, ctx: StartCtx<'_>) -> Result<Started, TargetError> {
        let net = Network::create(&ctx.reg, SHARDS + 1)?;
        if ctx.with_clock {
            self.settings.faketime_shim = Some(crate::faults::clock::build_shim(
                &ctx.run_dir.join("faketime"),
            )?);
        }
        let clock = self.settings.faketime_shim.is_some();
        let mut nodes = Vec::new();
        let mut shards = Vec::new();
        for (i, nn) in net.nodes.iter().enumerate() {
            if i < SHARDS {
                let mut node = Node::new(
                    i,
                    "redis",
                    &nn.ns,
                    nn.ip,
                    self.settings.base_port + i as u16 + 1,
                    ctx.run_dir,
                    clock,
                    ctx.reg.clone(),
                );
                let text = standalone::data_config(&node, &self.settings, None, 0);
                super::server::write_config(&node, &text)?;
                let args = vec![node.config_path().display().to_string()];
                let program = self.settings.redis_server.clone();
                node.set_launch(standalone::launch(&node, &self.settings, program, args));
                shards.push((node.name.clone(), node.addr()));
                nodes.push(node);
            } else {
                let mut node = Node::new(
                    i,
                    "nutcracker",
                    &nn.ns,
                    nn.ip,
                    PROXY_PORT,
                    ctx.run_dir,
                    clock,
                    ctx.reg.clone(),
                );
                let text = proxy_config(
                    node.addr(),
                    &shards,
                    self.auto_eject,
                    self.settings.node_timeout_ms,
                );
                super::server::write_config(&node, &text)?;
                let d = node.dir.clone();
                let args = vec![
                    "-c".into(),
                    node.config_path().display().to_string(),
                    "-o".into(),
                    d.join("log").display().to_string(),
                    // Notice: ejections and connection errors, not every request.
                    "-v".into(),
                    "5".into(),
                    "-s".into(),
                    "22222".into(),
                    "-a".into(),
                    nn.ip.to_string(),
                    "-p".into(),
                    d.join("nutcracker.pid").display().to_string(),
                ];
                node.set_launch(standalone::launch(
                    &node,
                    &self.settings,
                    self.nutcracker.clone(),
                    args,
                ));
                nodes.push(node);
            }
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
        self.procs.nemesis = Some(Nemesis::new(net, nodes, delays));
        let describe = json!({
            "proxy": self.proxy().map(|p| p.name.clone()),
            "shards": shards.iter().map(|(n, a)| (n.clone(), json!(a.to_string()))).collect::<serde_json::Map<_, _>>(),
            "auto_eject_hosts": self.auto_eject,
            "server_failure_limit": FAILURE_LIMIT,
            "server_retry_timeout_ms": self.settings.node_timeout_ms,
        });
        let text = serde_json::to_string_pretty(&describe).unwrap_or_default();
        std::fs::write(ctx.run_dir.join("twemproxy.json"), text + "\n").map_err(|source| {
            TargetError::Io {
                what: "write twemproxy.json".into(),
                source,
            }
        })?;
        Ok(started)
    }

    async fn form(&mut self) -> Result<u64, TargetError> {
        // Nothing to form: the proxy knows its shards from its config. One write
        // through the proxy proves the path.
        let t0 = Instant::now();
        let Some(proxy) = self.proxy().map(|p| p.addr()) else {
            return Err(TargetError::Other("no proxy".into()));
        };
        let mut last = String::new();
        while t0.elapsed() < Duration::from_secs(15) {
            match oneshot(
                proxy,
                &[b"SET", b"hearsay:formed", b"1"],
                Duration::from_millis(500),
            )
            .await
            {
                Ok(hearsay_workloads::resp::Value::Simple(_)) => {
                    return Ok(t0.elapsed().as_millis() as u64)
                }
                other => last = format!("{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(TargetError::Other(format!(
            "no write through the proxy within 15 s; last: {last}"
        )))
    }

    fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        self.nodes()
            .iter()
            .map(|n| (n.name.clone(), n.addr()))
            .collect()
    }

    fn client_seeds(&self) -> Vec<SocketAddr> {
        self.proxy().map(|p| p.addr()).into_iter().collect()
    }

    fn routing(&self) -> Routing {
        Routing::Proxy
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
        let shards: Vec<(String, SocketAddr)> = self
            .nodes()
            .iter()
            .take(SHARDS)
            .map(|n| (n.name.clone(), n.addr()))
            .collect();
        tokio::spawn(snapshotter(shards, out, rec, every, stop))
    }

    async fn start_fault(&mut self, p: &Planned) -> (Fault, bool) {
        let topo = self
            .procs
            .package_topology(p)
            .unwrap_or_else(|| self.topology());
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
                // An ejected shard rejoins the ring server_retry_timeout after its
                // ejection: wait that out, so the final reads see the whole ring.
                Ok(())
                    if !self.auto_eject
                        || t0.elapsed().as_millis() as u64
                            > self.settings.node_timeout_ms + 500 =>
                {
                    return Ok(t0.elapsed())
                }
                Ok(()) => tokio::time::sleep(Duration::from_millis(100)).await,
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

/// One round per period: every shard's INFO replication and the keys it holds.
async fn snapshotter(
    shards: Vec<(String, SocketAddr)>,
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
        for (name, addr) in &shards {
            let time = rec.now_ns();
            let keys = oneshot(
                *addr,
                &[b"SCAN", b"0", b"COUNT", b"100000"],
                Duration::from_millis(500),
            )
            .await;
            let mut line =
                json!({"time": time, "node": name, "kind": "shard", "addr": addr.to_string()});
            match keys {
                Ok(v) => {
                    let list: Vec<String> = v
                        .as_array()
                        .and_then(|a| a.get(1))
                        .and_then(|k| k.as_array())
                        .map(|ks| {
                            ks.iter()
                                .filter_map(|k| k.as_text())
                                .take(MAX_KEYS)
                                .collect()
                        })
                        .unwrap_or_default();
                    line["keys"] = json!(list);
                }
                Err(e) => line["error"] = json!(e.tag()),
            }
            if let Ok(r) = standalone::replication_sample(*addr, rec.now_ns()).await {
                line["replication"] = r;
            }
            let _ = out.write(&line);
        }
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_config_names_every_shard() {
        let shards = vec![
            ("n1".to_string(), "10.0.0.1:7001".parse().unwrap()),
            ("n2".to_string(), "10.0.0.2:7002".parse().unwrap()),
        ];
        let c = proxy_config("10.0.0.4:22121".parse().unwrap(), &shards, true, 2000);
        assert!(c.contains("listen: 10.0.0.4:22121"), "{c}");
        assert!(c.contains("auto_eject_hosts: true"), "{c}");
        assert!(c.contains("   - 10.0.0.1:7001:1 n1\n"), "{c}");
        assert!(c.contains("server_retry_timeout: 2000"), "{c}");
    }
}
