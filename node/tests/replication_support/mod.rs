//! Client helpers for the replication tests.
//!
//! The tests poll nodes a lot, over one cached connection per port
//! ([`query`]), reconnecting only when a node restarts: each fresh connection
//! the test closes would leave a TIME_WAIT on an ephemeral port, and enough of
//! them (machine-wide) can land on a port another test wants to listen on.
//! Test ports: client 21300-21349, bus +10000, below the ephemeral range
//! (see `common/mod.rs`).

#![allow(dead_code)]

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A parsed RESP reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

impl Reply {
    /// The payload as text; arrays joined with commas.
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.clone(),
            Reply::Bulk(Some(s)) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(None) => String::new(),
            Reply::Array(items) => items.iter().map(Reply::text).collect::<Vec<_>>().join(","),
        }
    }

    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }
}

/// Parses one reply from the front of `b`: the reply and its length.
pub fn parse(b: &[u8]) -> Option<(Reply, usize)> {
    let nl = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(b.get(1..nl)?).ok()?;
    let rest = nl + 2;
    match b.first()? {
        b'+' => Some((Reply::Simple(head.into()), rest)),
        b'-' => Some((Reply::Error(head.into()), rest)),
        b':' => Some((Reply::Int(head.parse().ok()?), rest)),
        b'$' | b'=' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some((Reply::Bulk(None), rest));
            }
            let end = rest + n as usize;
            let body = b.get(rest..end)?;
            b.get(end..end + 2)?;
            let mut text = String::from_utf8_lossy(body).into_owned();
            if b[0] == b'=' {
                text = text.strip_prefix("txt:").unwrap_or(&text).to_string();
            }
            Some((Reply::Bulk(Some(text)), end + 2))
        }
        b'*' => {
            let n: i64 = head.parse().ok()?;
            let mut at = rest;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                let (item, used) = parse(b.get(at..)?)?;
                items.push(item);
                at += used;
            }
            Some((Reply::Array(items), at))
        }
        _ => None,
    }
}

/// RESP encoding of a command.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One client connection (WAIT needs the connection that wrote).
pub struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Conn { s, buf: Vec::new() })
    }

    pub fn open(port: u16) -> Conn {
        Conn::connect(port).expect("connect")
    }

    pub fn try_call(&mut self, args: &[&str]) -> io::Result<Reply> {
        self.s.write_all(&encode(args))?;
        loop {
            if let Some((reply, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Ok(reply);
            }
            let mut chunk = [0u8; 65536];
            // A signal (a SIGSTOPped child's SIGCHLD) can interrupt the read.
            let n = match self.s.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn call(&mut self, args: &[&str]) -> Reply {
        self.try_call(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }
}

fn pool() -> &'static Mutex<HashMap<u16, Conn>> {
    static POOL: OnceLock<Mutex<HashMap<u16, Conn>>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs one command over the cached connection to `port`, reconnecting once
/// if the node restarted. A node that is down gives `Error("CONNECT")`.
pub fn query(port: u16, args: &[&str]) -> Reply {
    let mut pool = pool().lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..2 {
        let conn = match pool.entry(port) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => match Conn::connect(port) {
                Ok(c) => v.insert(c),
                Err(_) => return Reply::Error("CONNECT".into()),
            },
        };
        match conn.try_call(args) {
            Ok(reply) => return reply,
            Err(_) => {
                pool.remove(&port);
            }
        }
    }
    Reply::Error("CONNECT".into())
}

/// Drops the cached connection to `port` (before killing its node).
pub fn forget(port: u16) {
    pool()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&port);
}

/// [`query`] as text.
pub fn q(port: u16, args: &[&str]) -> String {
    query(port, args).text()
}

/// `field` of an INFO section.
pub fn info_field(port: u16, section: &str, field: &str) -> String {
    q(port, &["INFO", section])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// `cluster_state:ok`?
pub fn state_ok(port: u16) -> bool {
    q(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
}

/// The flags column of `id` in the CLUSTER NODES output of `port`.
pub fn flags_of(port: u16, id: &str) -> String {
    q(port, &["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.starts_with(id))
        .and_then(|l| l.split(' ').nth(2))
        .unwrap_or("")
        .to_string()
}

/// A read on a replica: READONLY, then the command, over the cached
/// connection (a reconnect in between only makes a poll try again).
pub fn readonly(port: u16, args: &[&str]) -> Reply {
    query(port, &["READONLY"]);
    query(port, args)
}
