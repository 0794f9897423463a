//! A replica refuses a bad full-sync payload as a whole: a flipped byte
//! (checksum), a payload cut short, a value type hearsay does not store.
//! Each time the link drops with a clear log line, the replica keeps the
//! data it had (readable, same slot map), retries, and syncs once the
//! payload is good again.
//!
//! The master announces a proxy's port as its client port, so the replica
//! reaches it through the proxy, which can spoil what the master sends.
//!
//! Ports 21650-21669 (bus ports +10000).

mod common;
mod replication_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Kind, Server};
use hearsay_node::rdb;
use replication_support::*;

const TIMEOUT: u64 = 2000;

fn must(what: &str, limit: Duration, f: impl FnMut() -> bool) {
    assert!(
        wait_until(limit, f).is_some(),
        "timed out waiting for {what}"
    );
}

/// What the proxy does to a full-sync payload.
const CLEAN: u8 = 0;
const FLIP: u8 = 1;
const CUT: u8 = 2;
const MODULE: u8 = 3;

/// Forwards replica <-> master; in the master's direction, after
/// `+FULLRESYNC`, rewrites the `$<len>` payload per `mode`.
fn proxy(listen: u16, master: u16, mode: Arc<AtomicU8>) {
    let l = TcpListener::bind(("127.0.0.1", listen)).expect("bind proxy");
    std::thread::spawn(move || {
        for client in l.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", master)) else {
                continue;
            };
            let (c2, s2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            std::thread::spawn(move || pipe(c2, s2));
            let mode = mode.clone();
            std::thread::spawn(move || spoil(server, client, mode));
        }
    });
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 65536];
    loop {
        match from.read(&mut buf) {
            Ok(n) if n > 0 => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            _ => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// A payload holding one key of a module type (a type hearsay can't store).
fn module_payload() -> Vec<u8> {
    let mut p = b"REDIS0010".to_vec();
    p.extend_from_slice(&[0xFE, 0x00, 0x07, 0x01, b'k', 0x01, 0x02]);
    p.push(0xFF);
    let crc = rdb::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn spoil(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut more = |from: &mut TcpStream, buf: &mut Vec<u8>| match from.read(&mut chunk) {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    };
    // The handshake's reply lines, forwarded as they come, up to the PSYNC reply.
    loop {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if !more(&mut from, &mut buf) {
                return;
            }
            continue;
        };
        let line: Vec<u8> = buf.drain(..=nl).collect();
        if to.write_all(&line).is_err() {
            return;
        }
        if line.starts_with(b"+FULLRESYNC") {
            break;
        }
        if line.starts_with(b"+CONTINUE") {
            let _ = to.write_all(&buf);
            return pipe(from, to);
        }
    }
    // `$<len>\r\n` (after keep-alive newlines), then the payload.
    let (len, body) = loop {
        while buf.first() == Some(&b'\n') {
            let _ = to.write_all(b"\n");
            buf.remove(0);
        }
        if let Some(end) = find(&buf, b"\r\n") {
            let Some(len) = std::str::from_utf8(&buf[1..end])
                .ok()
                .and_then(|t| t.parse::<usize>().ok())
            else {
                return;
            };
            break (len, end + 2);
        }
        if !more(&mut from, &mut buf) {
            return;
        }
    };
    while buf.len() < body + len {
        if !more(&mut from, &mut buf) {
            return;
        }
    }
    let payload: Vec<u8> = buf[body..body + len].to_vec();
    let rest: Vec<u8> = buf[body + len..].to_vec();
    let send = |to: &mut TcpStream, p: &[u8], rest: &[u8]| {
        let _ = to.write_all(format!("${}\r\n", p.len()).as_bytes());
        let _ = to.write_all(p);
        let _ = to.write_all(rest);
    };
    match mode.load(Ordering::SeqCst) {
        FLIP => {
            let mut p = payload;
            let i = p.len() / 2;
            p[i] ^= 0x20;
            send(&mut to, &p, &rest);
        }
        CUT => {
            let _ = to.write_all(format!("${}\r\n", payload.len()).as_bytes());
            let _ = to.write_all(&payload[..payload.len() / 2]);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        MODULE => send(&mut to, &module_payload(), &rest),
        _ => send(&mut to, &payload, &rest),
    }
    pipe(from, to);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_bad_full_sync_payload_is_refused_whole_and_the_old_data_kept() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mport, rport, pport) = (21651u16, 21652u16, 21653u16);
    let mode = Arc::new(AtomicU8::new(CLEAN));
    proxy(pport, mport, mode.clone());
    let _master = Server::start_with(
        Kind::Hearsay,
        mport,
        root.path(),
        TIMEOUT,
        &[
            "--cluster-announce-port",
            &pport.to_string(),
            "--repl-diskless-sync-delay",
            "0",
            "--repl-backlog-size",
            "1024",
            // Raw strings: a flipped byte then only breaks the checksum.
            "--rdbcompression",
            "no",
        ],
    );
    let replica = Server::start_with(
        Kind::Hearsay,
        rport,
        root.path(),
        TIMEOUT,
        &["--cluster-replica-no-failover", "yes"],
    );
    assert_eq!(
        query(mport, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        Reply::ok()
    );
    assert_eq!(
        query(rport, &["CLUSTER", "MEET", "127.0.0.1", &mport.to_string()]),
        Reply::ok()
    );
    let mid = q(mport, &["CLUSTER", "MYID"]);
    must("the handshake", Duration::from_secs(15), || {
        q(rport, &["CLUSTER", "NODES"]).contains(&mid) && state_ok(rport)
    });
    assert_eq!(query(mport, &["SET", "06S", "old"]), Reply::ok());
    assert_eq!(query(mport, &["RPUSH", "list", "a", "b"]), Reply::Int(2));
    assert_eq!(query(rport, &["CLUSTER", "REPLICATE", &mid]), Reply::ok());
    must("the first sync", Duration::from_secs(20), || {
        info_field(rport, "replication", "master_link_status") == "up"
            && readonly(rport, &["GET", "06S"]).text() == "old"
    });

    for (m, expect) in [
        (FLIP, "Wrong RDB checksum"),
        (CUT, "connection closed by the master"),
        (MODULE, "a type hearsay-node does not store"),
    ] {
        mode.store(m, Ordering::SeqCst);
        // Break the link: the replica gives up on a master that pings once
        // in 1000 s when its repl-timeout is 1 s.
        assert_eq!(
            query(
                mport,
                &["CONFIG", "SET", "repl-ping-replica-period", "1000"]
            ),
            Reply::ok()
        );
        assert_eq!(
            query(rport, &["CONFIG", "SET", "repl-timeout", "1"]),
            Reply::ok()
        );
        must("the link down", Duration::from_secs(20), || {
            info_field(rport, "replication", "master_link_status") == "down"
        });
        // The master moves on: more than its backlog holds, so the replica
        // needs a full sync when it comes back.
        assert_eq!(query(mport, &["SET", "06S", "new"]), Reply::ok());
        for i in 0..50 {
            assert_eq!(
                query(mport, &["SET", &format!("k{i}"), &"x".repeat(64)]),
                Reply::ok()
            );
        }
        if wait_until(Duration::from_secs(30), || replica.log().contains(expect)).is_none() {
            let log = replica.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{expect}: not refused; replica log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        assert_eq!(
            query(rport, &["CONFIG", "SET", "repl-timeout", "60"]),
            Reply::ok()
        );
        assert_eq!(
            query(mport, &["CONFIG", "SET", "repl-ping-replica-period", "10"]),
            Reply::ok()
        );
        // The old data set, whole, still served.
        assert_eq!(readonly(rport, &["GET", "06S"]).text(), "old", "{expect}");
        assert_eq!(
            readonly(rport, &["LRANGE", "list", "0", "-1"]).text(),
            "a,b",
            "{expect}"
        );
        assert_eq!(q(rport, &["DBSIZE"]), "2", "{expect}: nothing half-loaded");
        assert_eq!(
            q(rport, &["CLUSTER", "GETKEYSINSLOT", "0", "1"]),
            "06S",
            "{expect}"
        );
        assert_ne!(
            info_field(rport, "replication", "master_link_status"),
            "up",
            "{expect}"
        );
        // A good payload again: the retry syncs.
        mode.store(CLEAN, Ordering::SeqCst);
        must(
            &format!("{expect}: the retry syncs"),
            Duration::from_secs(30),
            || {
                info_field(rport, "replication", "master_link_status") == "up"
                    && readonly(rport, &["GET", "06S"]).text() == "new"
            },
        );
        assert_eq!(query(mport, &["SET", "06S", "old"]), Reply::ok());
        must("caught up", Duration::from_secs(10), || {
            readonly(rport, &["GET", "06S"]).text() == "old"
        });
        for i in 0..50 {
            assert_eq!(query(mport, &["DEL", &format!("k{i}")]), Reply::Int(1));
        }
    }
}
