//! What the targets that are not a Redis Cluster share (`sentinel`, `twemproxy`):
//! plain redis-server data nodes (no cluster mode), launching any process of the run
//! in its namespace under the run's clock shim, the fault plumbing (the nemesis owns
//! network and processes, a package's faults share one topology), and INFO
//! replication samples for the snapshots.

use super::cluster::replication_fields;
use super::server::NodeSettings;
use super::TargetError;
use crate::env::process::{Launch, Node};
use crate::faults::nemesis::Nemesis;
use crate::faults::schedule::{Fault, Planned, Topology};
use hearsay_workloads::conn::oneshot;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config of a plain redis-server (redis.conf syntax). As the cluster nodes:
/// AOF per `--appendonly`, `shutdown-timeout 0`; diskless sync without its 5 s
/// delay, so that a replica reconfigured by a failover resyncs at once.
pub fn data_config(
    node: &Node,
    settings: &NodeSettings,
    replicaof: Option<SocketAddr>,
    min_replicas_to_write: u32,
) -> String {
    let d = node.dir.display();
    let mut c = format!(
        "port {port}\nbind {ip} 127.0.0.1\nprotected-mode no\nappendonly {aof}\nappendfsync everysec\n\
         save \"\"\ndir {d}\nloglevel {ll}\nlogfile {d}/log\ndaemonize no\nshutdown-timeout 0\n\
         repl-diskless-sync-delay 0\n",
        port = node.port,
        ip = node.ip,
        ll = settings.loglevel,
        aof = if settings.appendonly { "yes" } else { "no" },
    );
    if min_replicas_to_write > 0 {
        c.push_str(&format!(
            "min-replicas-to-write {min_replicas_to_write}\nmin-replicas-max-lag 10\n"
        ));
    }
    if let Some(m) = replicaof {
        c.push_str(&format!("replicaof {} {}\n", m.ip(), m.port()));
    }
    c
}

/// How a process of the run is launched: `program args`, under the clock shim when
/// the run skews clocks.
pub fn launch(node: &Node, settings: &NodeSettings, program: PathBuf, args: Vec<String>) -> Launch {
    let env = match (&settings.faketime_shim, &node.clock_file) {
        (Some(shim), Some(file)) => crate::faults::clock::env(shim, file),
        _ => vec![],
    };
    Launch { program, args, env }
}

/// A binary's `--version` line (or why not), for test.json.
pub fn version_of(bin: &Path) -> String {
    match std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_string()
        }
        Err(e) => format!("{} ({e})", bin.display()),
    }
}

/// The run's processes under the nemesis, and the topology each package resolved
/// against.
#[derive(Default)]
pub struct Procs {
    pub nemesis: Option<Nemesis>,
    package_topology: BTreeMap<String, Topology>,
}

impl Procs {
    pub fn nodes(&self) -> &[Node] {
        self.nemesis.as_ref().map_or(&[], |n| &n.nodes)
    }

    pub fn nemesis(&mut self) -> Result<&mut Nemesis, TargetError> {
        self.nemesis
            .as_mut()
            .ok_or_else(|| TargetError::Other("the target is not started".into()))
    }

    /// The topology a package's fault resolves against, once its first fault read
    /// it (None: read it now).
    pub fn package_topology(&self, p: &Planned) -> Option<Topology> {
        p.package
            .as_ref()
            .and_then(|k| self.package_topology.get(k).cloned())
    }

    pub async fn start_fault(&mut self, p: &Planned, topo: Topology) -> (Fault, bool) {
        if let Some(k) = &p.package {
            self.package_topology.insert(k.clone(), topo.clone());
        }
        match self.nemesis() {
            Ok(n) => n.start(p, &topo).await,
            Err(_) => (p.fault.clone(), false),
        }
    }

    pub async fn hold_fault(
        &mut self,
        f: &Fault,
        until: tokio::time::Instant,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) {
        if let Ok(n) = self.nemesis() {
            n.hold(f, until, stop).await;
        }
    }

    pub async fn stop_fault(&mut self, f: &Fault) -> bool {
        match self.nemesis() {
            Ok(n) => n.stop(f).await,
            Err(_) => false,
        }
    }

    pub async fn heal_all(&mut self) -> bool {
        match self.nemesis() {
            Ok(n) => n.heal_all().await,
            Err(_) => false,
        }
    }

    /// Stops every process (SIGTERM, 10 s grace); the restarts per node.
    pub async fn stop_all(&mut self) -> Result<BTreeMap<String, u32>, TargetError> {
        let nemesis = self.nemesis()?;
        for n in nemesis.nodes.iter_mut() {
            let _ = n.stop(Duration::from_secs(10)).await;
        }
        Ok(nemesis
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.restarts))
            .collect())
    }
}

/// A data node's INFO replication fields (role, offset, replid, link, master), or
/// the error, as one snapshot line's `replication`.
pub async fn replication_sample(addr: SocketAddr, time: u64) -> Result<Value, String> {
    let r = oneshot(addr, &[b"INFO", b"replication"], Duration::from_millis(300)).await;
    match r {
        Ok(v) => match v.as_text() {
            Some(text) => {
                let mut out = replication_fields(&text);
                out["time"] = json!(time);
                Ok(out)
            }
            None => Err(format!("{v:?}")),
        },
        Err(e) => Err(e.tag()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::registry::Registry;
    use std::sync::Arc;

    #[test]
    fn data_config_sets_replication_and_write_guard() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::create_in(dir.path(), "hsdeadbe").unwrap();
        let node = Node::new(
            1,
            "redis",
            "ns",
            "10.1.2.2".parse().unwrap(),
            7002,
            dir.path(),
            false,
            Arc::clone(&reg),
        );
        let settings = NodeSettings {
            redis_server: "redis-server".into(),
            hearsay_node: "hearsay-node".into(),
            node_timeout_ms: 2000,
            loglevel: "notice".into(),
            appendonly: true,
            faketime_shim: None,
            base_port: 7000,
            bugs: vec![],
            election_delay_ms: None,
            experiment: vec![],
        };
        let c = data_config(&node, &settings, Some("10.1.2.1:7001".parse().unwrap()), 1);
        assert!(c.contains("replicaof 10.1.2.1 7001\n"), "{c}");
        assert!(c.contains("min-replicas-to-write 1\n"), "{c}");
        assert!(!c.contains("cluster-enabled"), "{c}");
        let c = data_config(&node, &settings, None, 0);
        assert!(
            !c.contains("replicaof") && !c.contains("min-replicas"),
            "{c}"
        );
    }
}
