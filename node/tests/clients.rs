//! Client connections end to end, against hearsay-node and, where it says
//! so, redis-server side by side (same requests, same bytes expected):
//! maxclients, idle timeout, output and query buffer limits,
//! proto-max-bulk-len, CLIENT KILL/PAUSE/UNPAUSE/UNBLOCK/LIST, Pub/Sub across
//! a mixed cluster, sharded Pub/Sub with slot changes, and the INFO fields
//! and counters.
//!
//! Ports 22100-22199.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// A raw RESP connection that reads whole replies (pushes included).
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, args: &[&str]) {
        self.s.write_all(&resp_command(args)).expect("write");
    }

    fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes)
    }

    /// One whole reply, raw; empty on EOF or timeout.
    fn read(&mut self) -> String {
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(n) = reply_len(&self.buf) {
                let reply: Vec<u8> = self.buf.drain(..n).collect();
                return String::from_utf8_lossy(&reply).into_owned();
            }
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return String::new(),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.read()
    }

    /// True once the server closed the connection (EOF within `limit`).
    fn closed_within(&mut self, limit: Duration) -> bool {
        let _ = self.s.set_read_timeout(Some(Duration::from_millis(100)));
        let start = Instant::now();
        let mut chunk = [0u8; 65536];
        while start.elapsed() < limit {
            match self.s.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => {}
            }
        }
        false
    }
}

/// Starts a single-node cluster owning every slot, of each kind available.
fn single_nodes(root: &std::path::Path, base: u16, extra: &[&str]) -> Vec<Server> {
    let mut out = vec![Server::start_with(Kind::Hearsay, base, root, 2000, extra)];
    if have("redis-server") {
        out.push(Server::start_with(Kind::Redis, base + 1, root, 2000, extra));
    }
    for s in &out {
        assert_eq!(s.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "OK");
        assert!(
            wait_until(Duration::from_secs(10), || state_ok(s.port)).is_some(),
            "{} never got cluster_state:ok",
            s.port
        );
    }
    out
}

fn name(s: &Server) -> &'static str {
    match s.kind {
        Kind::Hearsay => "hearsay",
        Kind::Redis => "redis",
    }
}

#[test]
fn maxclients_refuses_with_redis_error() {
    let root = tempfile::tempdir().expect("tempdir");
    let servers = single_nodes(root.path(), 22100, &["--maxclients", "3"]);
    let mut seen = Vec::new();
    for s in &servers {
        let mut held: Vec<Client> = (0..3).map(|_| Client::connect(s.port)).collect();
        for c in held.iter_mut() {
            assert_eq!(c.call(&["PING"]), "+PONG\r\n");
        }
        let mut extra = Client::connect(s.port);
        let reply = extra.read();
        assert!(extra.closed_within(Duration::from_secs(2)), "{}", name(s));
        seen.push(reply);
    }
    assert_eq!(
        seen[0],
        "-ERR max number of clients + cluster connections reached\r\n"
    );
    if seen.len() > 1 {
        assert_eq!(seen[0], seen[1], "hearsay and redis-server differ");
    }
}

#[test]
fn rejected_connections_are_counted() {
    let root = tempfile::tempdir().expect("tempdir");
    let servers = single_nodes(root.path(), 22102, &["--maxclients", "1"]);
    for s in &servers {
        let mut held = Client::connect(s.port);
        assert_eq!(held.call(&["PING"]), "+PONG\r\n");
        let mut extra = Client::connect(s.port);
        let reply = extra.read();
        assert!(
            reply.starts_with("-ERR max number of clients"),
            "{}: {reply:?}",
            name(s)
        );
        assert!(extra.closed_within(Duration::from_secs(2)));
        let stats = held.call(&["INFO", "stats"]);
        assert!(
            stats.contains("\r\nrejected_connections:1\r\n"),
            "{}: {stats}",
            name(s)
        );
    }
}

#[test]
fn idle_clients_time_out_but_subscribers_and_busy_ones_do_not() {
    let root = tempfile::tempdir().expect("tempdir");
    let servers = single_nodes(root.path(), 22104, &["--timeout", "1"]);
    for s in &servers {
        let mut idle = Client::connect(s.port);
        assert_eq!(idle.call(&["PING"]), "+PONG\r\n");
        let mut sub = Client::connect(s.port);
        assert!(sub.call(&["SUBSCRIBE", "ch"]).contains("subscribe"));
        let mut busy = Client::connect(s.port);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(3500) {
            assert_eq!(busy.call(&["PING"]), "+PONG\r\n", "{}", name(s));
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            idle.closed_within(Duration::from_secs(3)),
            "{}: idle client kept",
            name(s)
        );
        assert_eq!(
            cmd(s.port, &["PUBLISH", "ch", "still-there"]),
            "1",
            "{}",
            name(s)
        );
        assert!(sub.read().contains("still-there"), "{}", name(s));
    }
}

#[test]
fn a_subscriber_that_does_not_read_is_closed_at_its_output_limit() {
    let root = tempfile::tempdir().expect("tempdir");
    let servers = single_nodes(root.path(), 22106, &[]);
    for s in &servers {
        assert_eq!(
            s.cmd(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 262144 0 0"
            ]),
            "OK"
        );
        let mut sub = Client::connect(s.port);
        assert!(sub.call(&["SUBSCRIBE", "flood"]).contains("subscribe"));
        let payload = "x".repeat(64 * 1024);
        let mut publisher = Client::connect(s.port);
        let mut receivers = Vec::new();
        for _ in 0..200 {
            receivers.push(publisher.call(&["PUBLISH", "flood", &payload]));
            if receivers.last().is_some_and(|r| r == ":0\r\n") {
                break;
            }
        }
        assert_eq!(
            receivers.last().map(String::as_str),
            Some(":0\r\n"),
            "{}: the subscriber was never dropped",
            name(s)
        );
        assert!(sub.closed_within(Duration::from_secs(5)), "{}", name(s));
        if matches!(s.kind, Kind::Hearsay) {
            assert!(s
                .log()
                .contains("scheduled to be closed ASAP for overcoming of output buffer limits."));
        }
    }
}

#[test]
fn query_buffer_and_bulk_length_limits() {
    let root = tempfile::tempdir().expect("tempdir");
    let servers = single_nodes(root.path(), 22108, &[]);
    let mut replies = Vec::new();
    for s in &servers {
        // proto-max-bulk-len: a longer argument is a protocol error.
        assert_eq!(s.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]), "OK");
        assert!(s
            .cmd(&["CONFIG", "GET", "proto-max-bulk-len"])
            .contains("1048576"));
        let mut c = Client::connect(s.port);
        c.send_raw(b"*2\r\n$3\r\nGET\r\n$2000000\r\n")
            .expect("write");
        let reply = c.read();
        assert!(c.closed_within(Duration::from_secs(2)), "{}", name(s));
        replies.push(reply);

        // client-query-buffer-limit: a request still growing past it closes.
        assert_eq!(
            s.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "512mb"]),
            "OK"
        );
        assert_eq!(
            s.cmd(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"]),
            "OK"
        );
        let mut c = Client::connect(s.port);
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n")
            .expect("write");
        let chunk = vec![b'v'; 64 * 1024];
        let mut sent = 0;
        while sent < 2_000_000 {
            if c.send_raw(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        assert!(
            c.closed_within(Duration::from_secs(5)),
            "{}: not closed at the query buffer limit",
            name(s)
        );
        if matches!(s.kind, Kind::Hearsay) {
            assert!(s
                .log()
                .contains("Closing client that reached max query buffer length"));
        }
        assert_eq!(s.cmd(&["PING"]), "PONG", "{} survives", name(s));
    }
    assert_eq!(replies[0], "-ERR Protocol error: invalid bulk length\r\n");
    if replies.len() > 1 {
        assert_eq!(replies[0], replies[1]);
    }
}

#[test]
fn client_kill_pause_unblock_as_redis() {
    let root = tempfile::tempdir().expect("tempdir");
    let servers = single_nodes(root.path(), 22110, &[]);
    let mut transcripts = Vec::new();
    for s in &servers {
        let mut t = Vec::new();
        let mut admin = Client::connect(s.port);
        let mut victim = Client::connect(s.port);
        let victim_id = victim.call(&["CLIENT", "ID"]);
        let victim_id = victim_id.trim_start_matches(':').trim().to_string();
        t.push(victim.call(&["CLIENT", "SETNAME", "victim"]));
        let list = admin.call(&["CLIENT", "LIST"]);
        assert!(list.contains(" name=victim "), "{}: {list}", name(s));
        // Field names and order, from one line.
        let line = list
            .lines()
            .find(|l| l.contains("name=victim"))
            .unwrap_or("");
        let fields: Vec<&str> = line
            .split(' ')
            .map(|f| f.split('=').next().unwrap_or(""))
            .collect();
        t.push(fields.join(","));
        t.push(admin.call(&["CLIENT", "KILL", "ID", &victim_id]));
        assert!(victim.closed_within(Duration::from_secs(2)), "{}", name(s));
        t.push(admin.call(&["CLIENT", "KILL", "ID", &victim_id]));
        t.push(admin.call(&["CLIENT", "KILL", "127.0.0.1:1"]));

        // PAUSE WRITE holds writes, not reads; UNPAUSE releases them.
        t.push(admin.call(&["CLIENT", "PAUSE", "5000", "WRITE"]));
        let mut writer = Client::connect(s.port);
        t.push(writer.call(&["GET", "k"]));
        writer.send(&["SET", "k", "v"]);
        writer
            .s
            .set_read_timeout(Some(Duration::from_millis(400)))
            .ok();
        t.push(format!("held:{}", writer.read().is_empty()));
        writer.s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        t.push(admin.call(&["CLIENT", "UNPAUSE"]));
        t.push(writer.read());
        // PAUSE ALL holds everything, until the timeout.
        t.push(admin.call(&["CLIENT", "PAUSE", "600"]));
        let start = Instant::now();
        t.push(writer.call(&["PING"]));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(300),
            "{}: PING not held ({waited:?})",
            name(s)
        );

        // WAIT blocks (no replicas); CLIENT UNBLOCK ends it, as a timeout or an error.
        let mut waiter = Client::connect(s.port);
        let waiter_id = waiter.call(&["CLIENT", "ID"]);
        let waiter_id = waiter_id.trim_start_matches(':').trim().to_string();
        waiter.send(&["WAIT", "1", "0"]);
        std::thread::sleep(Duration::from_millis(200));
        assert!(admin
            .call(&["CLIENT", "LIST", "ID", &waiter_id])
            .contains("flags=b "));
        t.push(admin.call(&["CLIENT", "UNBLOCK", &waiter_id]));
        t.push(waiter.read());
        waiter.send(&["WAIT", "1", "0"]);
        std::thread::sleep(Duration::from_millis(200));
        t.push(admin.call(&["CLIENT", "UNBLOCK", &waiter_id, "ERROR"]));
        t.push(waiter.read());
        t.push(admin.call(&["CLIENT", "UNBLOCK", &waiter_id]));

        // CLIENT REPLY OFF / SKIP.
        let mut quiet = Client::connect(s.port);
        quiet.send(&["CLIENT", "REPLY", "SKIP"]);
        quiet.send(&["PING", "skipped"]);
        quiet.send(&["PING", "seen"]);
        t.push(quiet.read());
        transcripts.push(t);
    }
    let h = &transcripts[0];
    assert_eq!(h[2], ":1\r\n");
    assert_eq!(h[3], ":0\r\n");
    assert_eq!(h[4], "-ERR No such client\r\n");
    if transcripts.len() > 1 {
        assert_eq!(transcripts[0], transcripts[1], "hearsay vs redis-server");
    }
}

/// The INFO field names of the sections hearsay counts for itself match
/// redis-server's, in order, and the counters agree after the same requests.
#[test]
fn info_fields_and_counters_as_redis() {
    if !have("redis-server") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let servers = single_nodes(root.path(), 22112, &[]);
    let mut texts = Vec::new();
    for s in &servers {
        assert_eq!(s.cmd(&["CONFIG", "RESETSTAT"]), "OK");
        let mut c = Client::connect(s.port);
        for args in [
            &["SET", "a", "1"][..],
            &["GET", "a"],
            &["GET", "nokey"],
            &["SET", "a"],
            &["NOSUCH", "x"],
            &["INCR", "a"],
            &["LPUSH", "a", "x"],
            &["MULTI"],
            &["SET", "b", "2"],
            &["GET"],
            &["EXEC"],
            &["CLIENT", "NOSUCH"],
        ] {
            c.call(args);
        }
        texts.push(cmd(s.port, &["INFO", "everything"]));
    }
    let names = |text: &str, section: &str| -> Vec<String> {
        let mut on = false;
        let mut out = Vec::new();
        for l in text.lines() {
            if let Some(h) = l.strip_prefix("# ") {
                on = h.eq_ignore_ascii_case(section);
                continue;
            }
            if on && !l.trim().is_empty() {
                out.push(l.split(':').next().unwrap_or("").to_string());
            }
        }
        out
    };
    for section in ["Clients", "Memory", "Stats", "CPU"] {
        let h = names(&texts[0], section);
        let r = names(&texts[1], section);
        let missing: Vec<&String> = r.iter().filter(|f| !h.contains(f)).collect();
        assert!(missing.is_empty(), "{section}: hearsay lacks {missing:?}");
        let extra: Vec<&String> = h.iter().filter(|f| !r.contains(f)).collect();
        assert!(extra.is_empty(), "{section}: hearsay has more: {extra:?}");
        assert_eq!(h, r, "{section}: field order");
    }
    let lines = |text: &str, prefix: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| {
                // usec and usec_per_call are timings: not compared.
                l.split(',')
                    .filter(|p| !p.starts_with("usec"))
                    .collect::<Vec<_>>()
                    .join(",")
                    .replace('\r', "")
            })
            .filter(|l| !l.starts_with("cmdstat_config|") && !l.starts_with("cmdstat_info"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(lines(&texts[0], "cmdstat_"), lines(&texts[1], "cmdstat_"));
    assert_eq!(
        lines(&texts[0], "errorstat_"),
        lines(&texts[1], "errorstat_")
    );
    for field in [
        "keyspace_hits",
        "keyspace_misses",
        "total_error_replies",
        "rejected_connections",
    ] {
        let get = |t: &str| {
            t.lines()
                .find_map(|l| l.strip_prefix(&format!("{field}:")))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        assert_eq!(get(&texts[0]), get(&texts[1]), "{field}");
    }
}

/// PUBLISH reaches subscribers on every node of a mixed cluster, over the
/// bus in both directions; SPUBLISH reaches the shard's subscribers, other
/// nodes redirect SSUBSCRIBE, and losing the slot unsubscribes them.
#[test]
fn pubsub_across_a_mixed_cluster() {
    let root = tempfile::tempdir().expect("tempdir");
    let redis = have("redis-server");
    let mut servers = vec![
        Server::start(Kind::Hearsay, 22120, root.path(), 2000),
        Server::start(Kind::Hearsay, 22121, root.path(), 2000),
    ];
    if redis {
        servers.push(Server::start(Kind::Redis, 22122, root.path(), 2000));
    } else {
        servers.push(Server::start(Kind::Hearsay, 22122, root.path(), 2000));
    }
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    join_and_assign_slots(&ports, &ports);
    assert!(
        wait_until(Duration::from_secs(30), || {
            ports.iter().all(|&p| state_ok(p))
                && ports.iter().all(|&p| nodes_view(p).len() == 3)
                && ports.iter().all(|&p| all_links_connected(p))
        })
        .is_some(),
        "cluster never formed"
    );

    // Every node subscribes; each node publishes in turn.
    let mut subs: Vec<Client> = ports.iter().map(|&p| Client::connect(p)).collect();
    for s in subs.iter_mut() {
        assert!(s.call(&["SUBSCRIBE", "news"]).contains("subscribe"));
    }
    let mut rsubs = Client::connect(ports[0]);
    rsubs.send(&["HELLO", "3"]);
    assert!(!rsubs.read().is_empty());
    assert!(rsubs.call(&["PSUBSCRIBE", "n*"]).starts_with(">3"));
    for (i, &p) in ports.iter().enumerate() {
        let text = format!("from-{i}");
        assert_eq!(
            cmd(p, &["PUBLISH", "news", &text]),
            if i == 0 { "2" } else { "1" }
        );
        for (j, s) in subs.iter_mut().enumerate() {
            let msg = s.read();
            assert_eq!(
                msg,
                format!(
                    "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n${}\r\n{text}\r\n",
                    text.len()
                ),
                "node {j} from node {i}"
            );
        }
        assert_eq!(
            rsubs.read(),
            format!(
                ">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n${}\r\n{text}\r\n",
                text.len()
            )
        );
    }

    // Sharded: only the owner (or its replicas) serve a shard channel.
    let channel = "{shard}ch";
    let slot = cmd(ports[0], &["CLUSTER", "KEYSLOT", channel]);
    let owner = ports
        .iter()
        .copied()
        .find(|&p| cmd(p, &["SSUBSCRIBE", channel]).contains("ssubscribe"))
        .expect("some node owns the slot");
    let other = ports.iter().copied().find(|&p| p != owner).unwrap_or(owner);
    assert!(cmd(other, &["SSUBSCRIBE", channel]).starts_with(&format!("-MOVED {slot} ")));
    assert!(cmd(other, &["SPUBLISH", channel, "x"]).starts_with("-MOVED"));
    let mut ssub = Client::connect(owner);
    assert!(ssub.call(&["SSUBSCRIBE", channel]).contains("ssubscribe"));
    assert!(Client::connect(owner)
        .call(&["SSUBSCRIBE", channel, "{other}x"])
        .starts_with("-CROSSSLOT"));
    assert_eq!(cmd(owner, &["SPUBLISH", channel, "hi"]), "1");
    assert_eq!(
        ssub.read(),
        format!(
            "*3\r\n$8\r\nsmessage\r\n${}\r\n{channel}\r\n$2\r\nhi\r\n",
            channel.len()
        )
    );
    // The owner gives the slot up: the subscriber is told.
    assert_eq!(cmd(owner, &["CLUSTER", "DELSLOTS", &slot]), "OK");
    assert_eq!(
        ssub.read(),
        format!(
            "*3\r\n$12\r\nsunsubscribe\r\n${}\r\n{channel}\r\n:0\r\n",
            channel.len()
        )
    );
}
