//! Helpers for end-to-end tests that start real processes: hearsay-node (this
//! crate's binary) and, where a test needs it, redis-server and redis-cli.
//! Every process is killed by its PID when the test ends, pass or fail.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Returns false (after printing why) when a prerequisite is missing, so the
/// test can skip; under `CI=true` a missing prerequisite is a failure instead.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("prerequisite `{tool}` is missing (CI=true: this is a failure, not a skip)");
        }
        eprintln!("SKIP: `{tool}` is not installed");
    }
    found
}

pub enum Kind {
    Hearsay,
    Redis,
}

/// One server process in cluster mode on 127.0.0.1.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

pub fn hearsay_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hearsay-node")
}

impl Server {
    pub fn start(kind: Kind, port: u16, root: &Path, node_timeout: u64) -> Server {
        Self::start_with(kind, port, root, node_timeout, &[])
    }

    pub fn start_with(
        kind: Kind,
        port: u16,
        root: &Path,
        node_timeout: u64,
        extra: &[&str],
    ) -> Server {
        let dir = root.join(format!("n{port}"));
        std::fs::create_dir_all(&dir).expect("create node dir");
        let mut s = Server {
            kind,
            port,
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn(node_timeout);
        s
    }

    fn spawn(&mut self, node_timeout: u64) {
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            &node_timeout.to_string(),
            "--cluster-config-file",
            "nodes.conf",
            "--dir",
            &self.dir.to_string_lossy(),
            "--logfile",
            "log.txt",
            "--loglevel",
            "verbose",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let bin = match self.kind {
            Kind::Hearsay => {
                args.extend(["--events-file".to_string(), "events.jsonl".to_string()]);
                hearsay_bin().to_string()
            }
            Kind::Redis => {
                args.extend(["--protected-mode".to_string(), "no".to_string()]);
                "redis-server".to_string()
            }
        };
        args.extend(self.extra.iter().cloned());
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        self.child = Some(child);
        wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        })
        .unwrap_or_else(|| panic!("server on port {} did not start", self.port));
    }

    /// SIGKILL the process and wait for it (nodes.conf and the dir stay).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the process and wait (up to 10 s) for it to exit by itself.
    /// Returns whether it did; if not, it is killed.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        unsafe_kill(c.id() as i32, "TERM");
        let exited = wait_until(Duration::from_secs(10), || {
            matches!(c.try_wait(), Ok(Some(_)))
        })
        .is_some();
        if !exited {
            let _ = c.kill();
        }
        let _ = c.wait();
        exited
    }

    /// Starts the process again with the same dir and options.
    pub fn restart(&mut self, node_timeout: u64) {
        self.kill9();
        self.spawn(node_timeout);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn stop_signal(&self) {
        unsafe_kill(self.pid(), "STOP");
    }

    pub fn cont_signal(&self) {
        unsafe_kill(self.pid(), "CONT");
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends one command and returns the raw reply bytes (one read round until idle).
    pub fn cmd(&self, args: &[&str]) -> String {
        cmd(self.port, args)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log.txt")).unwrap_or_default()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn myid(&self) -> String {
        self.cmd(&["CLUSTER", "MYID"]).trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id() as i32, "CONT");
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unsafe_kill(pid: i32, sig: &str) {
    if pid > 0 {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status();
    }
}

/// Polls `f` every 50 ms until it holds or `limit` passes; returns the time it took.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Encodes a command as RESP.
pub fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one command on a fresh connection and returns the reply as text
/// (bulk and verbatim payloads unwrapped, errors as `-ERR...`).
pub fn cmd(port: u16, args: &[&str]) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::from("-CONNECT");
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(&resp_command(args)).is_err() {
        return String::from("-WRITE");
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if reply_complete(&buf) {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    match text.as_bytes().first() {
        Some(b'$') | Some(b'=') => {
            let body = text.split_once("\r\n").map(|x| x.1).unwrap_or("");
            let body = body.strip_suffix("\r\n").unwrap_or(body);
            body.strip_prefix("txt:").unwrap_or(body).to_string()
        }
        Some(b'+') | Some(b':') => text[1..].trim_end().to_string(),
        _ => text,
    }
}

/// True once `buf` holds one whole RESP reply (enough for the replies tests read).
fn reply_complete(buf: &[u8]) -> bool {
    reply_len(buf).is_some()
}

/// Length of the first whole RESP2/RESP3 reply in `b` (pushes included), if
/// complete.
pub fn reply_len(b: &[u8]) -> Option<usize> {
    let line_end = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&b[1..line_end]).ok()?;
    let rest = line_end + 2;
    match b.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' => Some(rest),
        b'$' | b'=' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(rest);
            }
            let end = rest + n as usize + 2;
            (b.len() >= end).then_some(end)
        }
        b'*' | b'%' | b'~' | b'>' => {
            let n: i64 = head.parse().ok()?;
            let items = if b[0] == b'%' { n * 2 } else { n };
            let mut at = rest;
            for _ in 0..items.max(0) {
                at += reply_len(&b[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// Runs redis-cli with the given args and returns (success, stdout+stderr).
pub fn redis_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `cluster_state:ok` on this port?
pub fn state_ok(port: u16) -> bool {
    cmd(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
}

/// Does this node hold an outbound bus link to every node it knows? Redis
/// sends a bus message (PUBLISH, FAIL) only on outbound links, so a test
/// that expects one delivered must wait for them, not just for state ok.
pub fn all_links_connected(port: u16) -> bool {
    let text = cmd(port, &["CLUSTER", "NODES"]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    !lines.is_empty()
        && lines
            .iter()
            .all(|l| l.split(' ').nth(7) == Some("connected"))
}

/// The CLUSTER NODES view of one node, normalized for comparison across nodes:
/// sorted lines of (id, ip:port, role, master, slots), without myself/link/epoch columns.
pub fn nodes_view(port: u16) -> Vec<String> {
    let text = cmd(port, &["CLUSTER", "NODES"]);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let addr = f
                .get(1)
                .map(|a| a.split('@').next().unwrap_or(""))
                .unwrap_or("");
            let flags = f.get(2).copied().unwrap_or("");
            let role = if flags.contains("master") {
                "master"
            } else if flags.contains("slave") {
                "slave"
            } else {
                "?"
            };
            let slots = if f.len() > 8 {
                f[8..].join(" ")
            } else {
                String::new()
            };
            format!(
                "{} {} {} {} {}",
                f.first().copied().unwrap_or(""),
                addr,
                role,
                f.get(3).copied().unwrap_or(""),
                slots
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The flags column of `id` in the CLUSTER NODES output of `port`.
pub fn flags_of(port: u16, id: &str) -> String {
    cmd(port, &["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.starts_with(id))
        .and_then(|l| l.split(' ').nth(2))
        .unwrap_or("")
        .to_string()
}

// Port plan: tests use client ports 21000-22999, so bus ports (+10000) stay in
// 31000-32767, below Linux's ephemeral range (32768-60999) where an outgoing
// connection could hold the port a test wants to listen on.

/// Joins `all` into one cluster the way redis-cli does by hand: distinct config
/// epochs first, MEET everyone from the first node, then the 16384 slots split
/// evenly over `masters` (in order, the last range taking the remainder).
pub fn join_and_assign_slots(all: &[u16], masters: &[u16]) {
    for (i, &p) in all.iter().enumerate() {
        let epoch = (i + 1).to_string();
        assert_eq!(cmd(p, &["CLUSTER", "SET-CONFIG-EPOCH", &epoch]), "OK");
    }
    for &p in &all[1..] {
        let port = p.to_string();
        assert_eq!(cmd(all[0], &["CLUSTER", "MEET", "127.0.0.1", &port]), "OK");
    }
    let per = 16384 / masters.len();
    for (i, &p) in masters.iter().enumerate() {
        let start = i * per;
        let end = if i == masters.len() - 1 {
            16383
        } else {
            start + per - 1
        };
        let (a, b) = (start.to_string(), end.to_string());
        assert_eq!(cmd(p, &["CLUSTER", "ADDSLOTSRANGE", &a, &b]), "OK");
    }
}

/// `redis-cli --cluster create` over `ports` on 127.0.0.1 with `replicas` replicas
/// per master; fails the test with redis-cli's output if it fails. Returns the output.
pub fn redis_cli_create(ports: &[u16], replicas: usize) -> String {
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    args.extend([
        "--cluster-replicas".into(),
        replicas.to_string(),
        "--cluster-yes".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = redis_cli(&argv);
    assert!(ok, "redis-cli --cluster create failed:\n{out}");
    out
}
