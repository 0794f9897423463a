//! The servers a Redis Cluster target runs, and how each is configured and launched.
//!
//! Both take the same redis-style config file (hearsay-node mirrors redis-server's
//! option names and adds `events-file`), so one template serves both.

use crate::env::process::{Launch, Node, ProcessError};
use crate::env::registry::Registry;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which server a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Redis,
    Hearsay,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Hearsay => "hearsay",
        }
    }
}

/// Settings shared by all nodes.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub redis_server: PathBuf,
    pub hearsay_node: PathBuf,
    pub node_timeout_ms: u64,
    pub loglevel: String,
    /// AOF with fsync every second (Jepsen's redis setup): a SIGKILLed node restarts
    /// with its data, so kill faults test the cluster, not a missing disk.
    pub appendonly: bool,
    /// The libfaketime shim, when the run skews clocks: nodes run with a per-node
    /// offset file.
    pub faketime_shim: Option<PathBuf>,
    pub base_port: u16,
    /// Planted bugs for hearsay-node (`--bug NAME` each).
    pub bugs: Vec<String>,
    /// hearsay-node's hidden `--test-election-delay-ms` (redis-server has no such knob).
    pub election_delay_ms: Option<u64>,
    /// hearsay-node's hidden experiment options (`hearsay scale --gossip-divisor`):
    /// (name without `--`, value) pairs.
    pub experiment: Vec<(String, String)>,
}

impl NodeSettings {
    pub fn binary(&self, kind: Kind) -> &Path {
        match kind {
            Kind::Redis => &self.redis_server,
            Kind::Hearsay => &self.hearsay_node,
        }
    }
}

/// A cluster node of `kind` (not started): its process, with config written and
/// launch set.
pub fn cluster_node(
    index: usize,
    kind: Kind,
    ns: &str,
    ip: Ipv4Addr,
    run_dir: &Path,
    settings: &NodeSettings,
    reg: Arc<Registry>,
) -> Result<Node, ProcessError> {
    let mut node = Node::new(
        index,
        kind.name(),
        ns,
        ip,
        settings.base_port + index as u16 + 1,
        run_dir,
        settings.faketime_shim.is_some(),
        reg,
    );
    node.set_launch(launch(&node, kind, settings));
    write_config(&node, &config_text(&node, kind, settings))?;
    Ok(node)
}

/// The config file text (redis.conf syntax). `shutdown-timeout 0`: at the end of a
/// run a master must not wait for lagging replicas (redis 7's default waits up to
/// 10 s, past the harness's 3 s grace, and a SIGKILLed node leaves no clean end in
/// its log, which the checkers then cannot tell from a cut log).
pub fn config_text(node: &Node, kind: Kind, settings: &NodeSettings) -> String {
    let d = node.dir.display();
    let mut c = format!(
        "port {port}\nbind {ip} 127.0.0.1\nprotected-mode no\ncluster-enabled yes\n\
         cluster-config-file {d}/nodes.conf\ncluster-node-timeout {nt}\nappendonly {aof}\nappendfsync everysec\n\
         save \"\"\ndir {d}\nloglevel {ll}\nlogfile {d}/log\ndaemonize no\n\
         shutdown-timeout 0\n",
        port = node.port,
        ip = node.ip,
        nt = settings.node_timeout_ms,
        ll = settings.loglevel,
        aof = if settings.appendonly { "yes" } else { "no" },
    );
    if kind == Kind::Hearsay {
        c.push_str(&format!("events-file {d}/events.jsonl\n"));
    }
    c
}

fn launch(node: &Node, kind: Kind, settings: &NodeSettings) -> Launch {
    let mut args = vec![node.config_path().display().to_string()];
    if kind == Kind::Hearsay {
        for b in &settings.bugs {
            args.extend(["--bug".to_string(), b.clone()]);
        }
        if let Some(ms) = settings.election_delay_ms {
            args.extend(["--test-election-delay-ms".to_string(), ms.to_string()]);
        }
        for (name, value) in &settings.experiment {
            args.extend([format!("--{name}"), value.clone()]);
        }
    }
    let env = match (&settings.faketime_shim, &node.clock_file) {
        (Some(shim), Some(file)) => crate::faults::clock::env(shim, file),
        _ => vec![],
    };
    Launch {
        program: settings.binary(kind).to_path_buf(),
        args,
        env,
    }
}

/// Writes the node's directory, config file and (clock skew) its clock file.
pub fn write_config(node: &Node, text: &str) -> Result<(), ProcessError> {
    std::fs::create_dir_all(&node.dir).map_err(|e| node.io("create dir", e))?;
    std::fs::write(node.config_path(), text).map_err(|e| node.io("write config", e))?;
    if let Some(f) = &node.clock_file {
        if !f.exists() {
            crate::faults::clock::write_offset(f, 0)
                .map_err(|e| node.io("write clock file", std::io::Error::other(e.to_string())))?;
        }
    }
    Ok(())
}

/// Version string of a server binary, for test.json.
pub fn binary_version(kind: Kind, settings: &NodeSettings) -> String {
    let bin = settings.binary(kind);
    let out = std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => format!("{} (--version exited {})", bin.display(), o.status),
        Err(e) => format!("{} ({e})", bin.display()),
    }
}

/// Finds hearsay-node: explicit option, next to our own binary, then the workspace's
/// target/release and target/debug.
pub fn find_hearsay_node(opt: Option<&Path>) -> PathBuf {
    if let Some(p) = opt {
        return p.to_path_buf();
    }
    let mut candidates = Vec::new();
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            candidates.push(dir.join("hearsay-node"));
            if let Some(up) = dir.parent() {
                candidates.push(up.join("hearsay-node"));
            }
        }
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(ws.join("target/release/hearsay-node"));
    candidates.push(ws.join("target/debug/hearsay-node"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("hearsay-node"))
}
