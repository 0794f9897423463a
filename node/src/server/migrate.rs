//! MIGRATE's connections (redis `migrateGetSocket` and friends): one cached
//! connection per `host:port`, at most 64, closed after 10 s unused, with
//! the last SELECTed db remembered so SELECT is sent only when it changes.
//!
//! The exchange is synchronous (std sockets with redis's timeouts) and runs
//! under the node lock, as redis runs MIGRATE on its only thread: nothing
//! else on this node runs until the target answered or the timeout passed,
//! so no write can land on a key between its copy and its delete. The
//! command logic is in [`crate::commands::migrate`].

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::commands::migrate::{MigrateExchange, MigrateOutcome};
use crate::replication::protocol::command;

/// redis `MIGRATE_SOCKET_CACHE_ITEMS` and `MIGRATE_SOCKET_CACHE_TTL`.
const CACHE_ITEMS: usize = 64;
const CACHE_TTL_S: u64 = 10;
/// redis reads reply lines into 1 KB buffers.
const MAX_LINE: usize = 1024;

struct Cached {
    stream: TcpStream,
    /// Bytes read past the last line.
    pending: Vec<u8>,
    /// The db SELECTed on this connection (-1: unknown, SELECT next time).
    last_dbid: i64,
    last_use_s: u64,
}

#[derive(Default)]
pub(super) struct MigrateSockets {
    cache: HashMap<String, Cached>,
}

/// Why an attempt failed.
enum Failure {
    Connect,
    Write {
        timeout: bool,
    },
    /// Nothing came back; `timeout` if it timed out.
    FirstRead {
        timeout: bool,
    },
}

impl MigrateSockets {
    /// Closes connections unused for more than 10 s (redis
    /// `migrateCloseTimedoutSockets`, from the cron).
    pub(super) fn close_idle(&mut self, now_s: u64) {
        self.cache
            .retain(|_, c| now_s.saturating_sub(c.last_use_s) <= CACHE_TTL_S);
    }

    /// Runs one exchange, retrying once on a fresh connection when a cached
    /// one turned out dead (a write failed, or no reply at all came, and it
    /// was not a timeout), as redis does.
    pub(super) fn exchange(&mut self, x: &MigrateExchange<'_>, now_s: u64) -> MigrateOutcome {
        let mut retried = false;
        loop {
            match self.attempt(x, now_s) {
                Ok(outcome) => return outcome,
                Err(f) => {
                    self.cache.remove(&name(x));
                    let timeout = matches!(
                        f,
                        Failure::Write { timeout: true } | Failure::FirstRead { timeout: true }
                    );
                    if !retried && !timeout && !matches!(f, Failure::Connect) {
                        retried = true;
                        continue;
                    }
                    return match f {
                        Failure::Connect => MigrateOutcome::ConnectFailed,
                        Failure::Write { .. } => MigrateOutcome::Io { writing: true },
                        Failure::FirstRead { .. } => MigrateOutcome::Io { writing: false },
                    };
                }
            }
        }
    }

    fn attempt(&mut self, x: &MigrateExchange<'_>, now_s: u64) -> Result<MigrateOutcome, Failure> {
        let key = name(x);
        let timeout = Duration::from_millis(x.timeout_ms.max(1));
        if !self.cache.contains_key(&key) {
            if self.cache.len() >= CACHE_ITEMS {
                if let Some(k) = self.cache.keys().next().cloned() {
                    self.cache.remove(&k);
                }
            }
            let stream = connect(x, timeout)?;
            self.cache.insert(
                key.clone(),
                Cached {
                    stream,
                    pending: Vec::new(),
                    last_dbid: -1,
                    last_use_s: now_s,
                },
            );
        }
        let Some(c) = self.cache.get_mut(&key) else {
            return Err(Failure::Connect);
        };
        c.last_use_s = now_s;
        let _ = c.stream.set_read_timeout(Some(timeout));
        let _ = c.stream.set_write_timeout(Some(timeout));

        let mut out = Vec::with_capacity(x.restores.len() + 64);
        if let Some((user, pass)) = x.auth {
            match user {
                Some(u) => out.extend(command(&[b"AUTH", u, pass])),
                None => out.extend(command(&[b"AUTH", pass])),
            }
        }
        let select = c.last_dbid != x.dbid;
        if select {
            out.extend(command(&[b"SELECT", x.dbid.to_string().as_bytes()]));
        }
        out.extend_from_slice(x.restores);
        for chunk in out.chunks(64 * 1024) {
            if let Err(e) = c.stream.write_all(chunk) {
                return Err(Failure::Write {
                    timeout: is_timeout(&e),
                });
            }
        }
        let next = |c: &mut Cached| read_line(&mut c.stream, &mut c.pending);
        let first = |e: std::io::Error| Failure::FirstRead {
            timeout: is_timeout(&e),
        };
        let auth = match x.auth {
            Some(_) => Some(next(c).map_err(first)?),
            None => None,
        };
        // A failed AUTH or SELECT read, or no first RESTORE reply, is a
        // socket error that may retry (redis `goto socket_err`, and its
        // `j == 0` test): nothing was processed yet.
        let select_reply = if select {
            Some(next(c).map_err(first)?)
        } else {
            None
        };
        let mut restores = Vec::with_capacity(x.count);
        let mut socket_error = false;
        for i in 0..x.count {
            match next(c) {
                Ok(l) => restores.push(l),
                Err(e) => {
                    if i == 0 {
                        return Err(first(e));
                    }
                    socket_error = true;
                    break;
                }
            }
        }
        let error = [&auth, &select_reply]
            .into_iter()
            .flatten()
            .chain(restores.iter())
            .any(|l| l.starts_with('-'));
        if socket_error {
            self.cache.remove(&key);
        } else if let Some(c) = self.cache.get_mut(&key) {
            // On an error from the target, SELECT again next time.
            c.last_dbid = if error { -1 } else { x.dbid };
        }
        Ok(MigrateOutcome::Replies {
            auth,
            select: select_reply,
            restores,
            socket_error,
        })
    }
}

fn name(x: &MigrateExchange<'_>) -> String {
    format!(
        "{}:{}",
        String::from_utf8_lossy(x.host),
        String::from_utf8_lossy(x.port)
    )
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A blocking connect within the timeout. A refused connection counts as a
/// failed write (redis's non-blocking connect "succeeds" and the write then
/// fails), a timeout as a failed connect.
fn connect(x: &MigrateExchange<'_>, timeout: Duration) -> Result<TcpStream, Failure> {
    let host = String::from_utf8_lossy(x.host).into_owned();
    let port: u16 = std::str::from_utf8(x.port)
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or(Failure::Connect)?;
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| Failure::Connect)?;
    let mut last = Failure::Connect;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                last = Failure::Write { timeout: false }
            }
            Err(_) => last = Failure::Connect,
        }
    }
    Err(last)
}

/// One reply line without its terminator (redis `connSyncReadLine`).
fn read_line(stream: &mut TcpStream, pending: &mut Vec<u8>) -> std::io::Result<String> {
    loop {
        if let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            return Ok(String::from_utf8_lossy(body).into_owned());
        }
        if pending.len() > MAX_LINE {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "reply line too long",
            ));
        }
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        pending.extend_from_slice(&buf[..n]);
    }
}
