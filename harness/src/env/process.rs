//! Node processes: each runs inside its namespace (setns before exec), in its own
//! process group, with PDEATHSIG so a killed harness takes its nodes along; its PID is
//! in the run registry before we use it. What a process runs (program, arguments,
//! environment, config file) is the target's business; this file only starts, signals,
//! stops and reaps it.

use crate::env::registry::Registry;
use crate::env::sys;
use nix::sys::signal::Signal;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Process errors.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
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
        source: crate::env::registry::RegistryError,
    },
    #[error("node {0} is not running")]
    NotRunning(String),
}

/// What a node process runs.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// One node of the run.
pub struct Node {
    pub index: usize,
    pub name: String,
    /// What the process is ("redis", "hearsay", ...), for messages.
    pub kind: &'static str,
    pub ns: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub dir: PathBuf,
    pub clock_file: Option<PathBuf>,
    launch: Launch,
    child: Option<tokio::process::Child>,
    pid: Option<u32>,
    reg: Arc<Registry>,
    pub restarts: u32,
}

impl Node {
    /// A node process of the run (not started): its name is `n<index+1>`, its
    /// directory `<run>/nodes/<name>`, with a clock file there when `clock` is set.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        kind: &'static str,
        ns: &str,
        ip: Ipv4Addr,
        port: u16,
        run_dir: &Path,
        clock: bool,
        reg: Arc<Registry>,
    ) -> Node {
        let name = format!("n{}", index + 1);
        let dir = run_dir.join("nodes").join(&name);
        let clock_file = clock.then(|| dir.join("clock"));
        Node {
            index,
            port,
            name,
            kind,
            ns: ns.to_string(),
            ip,
            dir,
            clock_file,
            launch: Launch::default(),
            child: None,
            pid: None,
            reg,
            restarts: 0,
        }
    }

    /// Sets what `start` runs (the target decides: program, arguments, environment).
    pub fn set_launch(&mut self, launch: Launch) {
        self.launch = launch;
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

    pub fn io(&self, what: &str, source: std::io::Error) -> ProcessError {
        ProcessError::Io {
            node: self.name.clone(),
            what: what.to_string(),
            source,
        }
    }

    /// Starts the server inside its namespace.
    pub fn start(&mut self) -> Result<u32, ProcessError> {
        if self.child.is_some() {
            return self
                .pid
                .ok_or_else(|| ProcessError::NotRunning(self.name.clone()));
        }
        let bin = self.launch.program.clone();
        let ns_file = std::fs::File::open(format!("/run/netns/{}", self.ns))
            .map_err(|e| self.io("open netns", e))?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stdout.log"))
            .map_err(|e| self.io("open stdout.log", e))?;
        let err = out.try_clone().map_err(|e| self.io("dup stdout.log", e))?;
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.args(&self.launch.args);
        cmd.current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in &self.launch.env {
            cmd.env(k, v);
        }
        crate::env::sys::enter_netns_on_exec(&mut cmd, &ns_file);
        let mut child = cmd.spawn().map_err(|e| self.io("spawn", e))?;
        drop(ns_file);
        let pid = child
            .id()
            .ok_or_else(|| ProcessError::NotRunning(self.name.clone()))?;
        if let Err(source) = self
            .reg
            .add_proc(pid, &format!("{} {}", self.name, bin.display()))
        {
            // Never leave a process running that no teardown knows about.
            let _ = child.start_kill();
            return Err(ProcessError::Registry {
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

    fn signal(&self, sig: Signal) -> Result<(), ProcessError> {
        let pid = self
            .pid
            .ok_or_else(|| ProcessError::NotRunning(self.name.clone()))?;
        let raw = i32::try_from(pid).map_err(|_| ProcessError::NotRunning(self.name.clone()))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig)
            .map_err(|e| self.io(&format!("kill -{sig}"), std::io::Error::from(e)))
    }

    /// SIGSTOP.
    pub fn pause(&self) -> Result<(), ProcessError> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(&self) -> Result<(), ProcessError> {
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
    pub async fn kill(&mut self) -> Result<String, ProcessError> {
        if self.child.is_none() {
            return Err(ProcessError::NotRunning(self.name.clone()));
        }
        let _ = self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGKILL)?;
        match self.reap(Duration::from_secs(5)).await {
            Some(s) => Ok(s.to_string()),
            None => Err(ProcessError::NotRunning(format!(
                "{} did not exit after SIGKILL",
                self.name
            ))),
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. The SIGTERM is repeated every
    /// half second: redis-server refuses one while it writes its first AOF
    /// ("Writing initial AOF, can't exit.", after a replica's full sync) and
    /// tries again only on the next signal; a SIGKILL then would cut its log.
    pub async fn stop(&mut self, grace: Duration) -> Result<(), ProcessError> {
        if self.child.is_none() {
            return Ok(());
        }
        let _ = self.signal(Signal::SIGCONT);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let _ = self.signal(Signal::SIGTERM);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            if self
                .reap(left.min(Duration::from_millis(500)))
                .await
                .is_some()
                || self.child.is_none()
            {
                return Ok(());
            }
        }
        if self.child.is_some() {
            self.kill().await?;
        }
        Ok(())
    }

    /// Starts again with the same directory and config (nodes.conf is reloaded).
    pub fn restart(&mut self) -> Result<u32, ProcessError> {
        self.restarts += 1;
        self.start()
    }
}
