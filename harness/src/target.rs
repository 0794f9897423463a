//! Targets: how to configure, start, stop, kill, pause and restart one node.
//!
//! Both targets take the same redis-style config file (hearsay-node mirrors
//! redis-server's option names and adds `events-file`), so one template serves both;
//! `mixed` alternates them by node index. Each node runs inside its namespace
//! (setns before exec), in its own process group, with PDEATHSIG so a killed harness
//! takes its nodes along; its PID is in the run registry before we use it.

use crate::registry::Registry;
use crate::sys;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Which server a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Redis,
    Hearsay,
}

/// The `--target` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetChoice {
    Redis,
    Hearsay,
    Mixed,
}

impl TargetChoice {
    /// The server of node `i`: mixed puts redis on even and hearsay on odd indices.
    pub fn kind_of(self, i: usize) -> Kind {
        match self {
            TargetChoice::Redis => Kind::Redis,
            TargetChoice::Hearsay => Kind::Hearsay,
            TargetChoice::Mixed if i.is_multiple_of(2) => Kind::Redis,
            TargetChoice::Mixed => Kind::Hearsay,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TargetChoice::Redis => "redis",
            TargetChoice::Hearsay => "hearsay",
            TargetChoice::Mixed => "mixed",
        }
    }
}

/// Target errors.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("node {node}: {what}: {source}")]
    Io {
        node: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("node {node}: {source}")]
    Registry {
        node: String,
        #[source]
        source: crate::registry::RegistryError,
    },
    #[error("node {0} is not running")]
    NotRunning(String),
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
    /// (shim, libfaketime) prepared: nodes run with a per-node offset file.
    pub faketime_shim: Option<PathBuf>,
    pub base_port: u16,
    /// Planted bugs for hearsay-node (`--bug NAME` each).
    pub bugs: Vec<String>,
    /// hearsay-node's hidden `--test-election-delay-ms` (redis-server has no such knob).
    pub election_delay_ms: Option<u64>,
}

/// One node of the run.
pub struct Node {
    pub index: usize,
    pub name: String,
    pub kind: Kind,
    pub ns: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub dir: PathBuf,
    pub clock_file: Option<PathBuf>,
    settings: NodeSettings,
    child: Option<tokio::process::Child>,
    pid: Option<u32>,
    reg: Arc<Registry>,
    pub restarts: u32,
}

impl Node {
    pub fn new(
        index: usize,
        kind: Kind,
        ns: &str,
        ip: Ipv4Addr,
        run_dir: &Path,
        settings: &NodeSettings,
        reg: Arc<Registry>,
    ) -> Node {
        let name = format!("n{}", index + 1);
        let dir = run_dir.join("nodes").join(&name);
        let clock_file = settings.faketime_shim.as_ref().map(|_| dir.join("clock"));
        Node {
            index,
            port: settings.base_port + index as u16 + 1,
            name,
            kind,
            ns: ns.to_string(),
            ip,
            dir,
            clock_file,
            settings: settings.clone(),
            child: None,
            pid: None,
            reg,
            restarts: 0,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.into(), self.port)
    }

    /// The cluster bus address (port + 10000).
    pub fn bus_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.into(), self.port + 10000)
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("node.conf")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    fn io(&self, what: &str, source: std::io::Error) -> TargetError {
        TargetError::Io {
            node: self.name.clone(),
            what: what.to_string(),
            source,
        }
    }

    /// The config file text (redis.conf syntax).
    pub fn config_text(&self) -> String {
        let d = self.dir.display();
        let mut c = format!(
            "port {port}\nbind {ip} 127.0.0.1\nprotected-mode no\ncluster-enabled yes\n\
             cluster-config-file {d}/nodes.conf\ncluster-node-timeout {nt}\nappendonly {aof}\nappendfsync everysec\n\
             save \"\"\ndir {d}\nloglevel {ll}\nlogfile {d}/log\ndaemonize no\n",
            port = self.port,
            ip = self.ip,
            nt = self.settings.node_timeout_ms,
            ll = self.settings.loglevel,
            aof = if self.settings.appendonly { "yes" } else { "no" },
        );
        if self.kind == Kind::Hearsay {
            c.push_str(&format!("events-file {d}/events.jsonl\n"));
        }
        c
    }

    /// Writes the node's directory and config file.
    pub fn write_config(&self) -> Result<(), TargetError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io("create dir", e))?;
        std::fs::write(self.config_path(), self.config_text())
            .map_err(|e| self.io("write config", e))?;
        if let Some(f) = &self.clock_file {
            if !f.exists() {
                crate::faketime::write_offset(f, 0).map_err(|e| {
                    self.io("write clock file", std::io::Error::other(e.to_string()))
                })?;
            }
        }
        Ok(())
    }

    /// Starts the server inside its namespace.
    pub fn start(&mut self) -> Result<u32, TargetError> {
        if self.child.is_some() {
            return self
                .pid
                .ok_or_else(|| TargetError::NotRunning(self.name.clone()));
        }
        let bin = match self.kind {
            Kind::Redis => &self.settings.redis_server,
            Kind::Hearsay => &self.settings.hearsay_node,
        };
        let ns_file = std::fs::File::open(format!("/run/netns/{}", self.ns))
            .map_err(|e| self.io("open netns", e))?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stdout.log"))
            .map_err(|e| self.io("open stdout.log", e))?;
        let err = out.try_clone().map_err(|e| self.io("dup stdout.log", e))?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg(self.config_path());
        if self.kind == Kind::Hearsay {
            for b in &self.settings.bugs {
                cmd.arg("--bug").arg(b);
            }
            if let Some(ms) = self.settings.election_delay_ms {
                cmd.arg("--test-election-delay-ms").arg(ms.to_string());
            }
        }
        cmd.current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        if let (Some(shim), Some(file)) = (&self.settings.faketime_shim, &self.clock_file) {
            for (k, v) in crate::faketime::env(shim, file) {
                cmd.env(k, v);
            }
        }
        crate::sys::enter_netns_on_exec(&mut cmd, &ns_file);
        let mut child = cmd.spawn().map_err(|e| self.io("spawn", e))?;
        drop(ns_file);
        let pid = child
            .id()
            .ok_or_else(|| TargetError::NotRunning(self.name.clone()))?;
        if let Err(source) = self
            .reg
            .add_proc(pid, &format!("{} {}", self.name, bin.display()))
        {
            // Never leave a process running that no teardown knows about.
            let _ = child.start_kill();
            return Err(TargetError::Registry {
                node: self.name.clone(),
                source,
            });
        }
        self.child = Some(child);
        self.pid = Some(pid);
        Ok(pid)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// If the process has exited on its own: its status (and it is reaped).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        if let Some(pid) = self.pid.take() {
            let _ = self.reg.remove_proc(pid);
        }
        self.child = None;
        Some(status)
    }

    /// The last `n` lines of the node's log and stdout, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let mut out = String::new();
        for f in [self.log_path(), self.dir.join("stdout.log")] {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for l in lines.iter().skip(lines.len().saturating_sub(n)) {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    fn signal(&self, sig: Signal) -> Result<(), TargetError> {
        let pid = self
            .pid
            .ok_or_else(|| TargetError::NotRunning(self.name.clone()))?;
        let raw = i32::try_from(pid).map_err(|_| TargetError::NotRunning(self.name.clone()))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig)
            .map_err(|e| self.io(&format!("kill -{sig}"), std::io::Error::from(e)))
    }

    /// SIGSTOP.
    pub fn pause(&self) -> Result<(), TargetError> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(&self) -> Result<(), TargetError> {
        self.signal(Signal::SIGCONT)
    }

    /// The /proc state letter of the node's process (T = stopped).
    pub fn proc_state(&self) -> Option<char> {
        self.pid.and_then(sys::proc_state)
    }

    async fn reap(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let status = tokio::time::timeout(wait, child.wait()).await.ok()?.ok();
        if let Some(pid) = self.pid.take() {
            let _ = self.reg.remove_proc(pid);
        }
        self.child = None;
        status
    }

    /// SIGKILL and reap. Returns the exit status text as evidence.
    pub async fn kill(&mut self) -> Result<String, TargetError> {
        if self.child.is_none() {
            return Err(TargetError::NotRunning(self.name.clone()));
        }
        let _ = self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGKILL)?;
        match self.reap(Duration::from_secs(5)).await {
            Some(s) => Ok(s.to_string()),
            None => Err(TargetError::NotRunning(format!(
                "{} did not exit after SIGKILL",
                self.name
            ))),
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) -> Result<(), TargetError> {
        if self.child.is_none() {
            return Ok(());
        }
        let _ = self.signal(Signal::SIGCONT);
        let _ = self.signal(Signal::SIGTERM);
        if self.reap(grace).await.is_none() && self.child.is_some() {
            self.kill().await?;
        }
        Ok(())
    }

    /// Starts again with the same directory and config (nodes.conf is reloaded).
    pub fn restart(&mut self) -> Result<u32, TargetError> {
        self.restarts += 1;
        self.start()
    }

    /// Writes the clock offset (seconds) for this node.
    pub fn set_clock_offset(&self, secs: i64) -> Result<(), TargetError> {
        let f = self.clock_file.as_ref().ok_or_else(|| {
            TargetError::NotRunning(format!("{} runs without libfaketime", self.name))
        })?;
        crate::faketime::write_offset(f, secs)
            .map_err(|e| self.io("write clock offset", std::io::Error::other(e.to_string())))
    }

    /// Version string of the binary, for test.json.
    pub fn binary_version(kind: Kind, settings: &NodeSettings) -> String {
        let bin = match kind {
            Kind::Redis => &settings.redis_server,
            Kind::Hearsay => &settings.hearsay_node,
        };
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
}
