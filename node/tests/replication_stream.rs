//! Replication between hearsay nodes, end to end: two (or six) real
//! processes, CLUSTER MEET, slots on the master, CLUSTER REPLICATE on the
//! replica; then the stream, READONLY reads, ROLE / INFO replication, WAIT,
//! resync after the master or the replica restarts, and redis-cli's
//! `--cluster create --cluster-replicas 1`.
//!
//! Ports 34300-34399 (bus ports +10000). Every process is killed by its PID
//! when its `Server` is dropped, pass or fail.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const TIMEOUT: u64 = 2000;

/// A parsed RESP reply, enough for ROLE and WAIT.
#[derive(Clone, Debug, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.clone(),
            Reply::Bulk(Some(s)) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(None) => String::new(),
            Reply::Array(items) => items.iter().map(Reply::text).collect::<Vec<_>>().join(","),
        }
    }
}

/// Parses one reply from the front of `b`: the reply and its length.
fn parse(b: &[u8]) -> Option<(Reply, usize)> {
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
            let text = String::from_utf8_lossy(body).into_owned();
            Some((Reply::Bulk(Some(text)), end + 2))
        }
        b'*' => {
            let n: i64 = head.parse().ok()?;
            let mut at = rest;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                let (item, used) = parse(&b[at..])?;
                items.push(item);
                at += used;
            }
            Some((Reply::Array(items), at))
        }
        _ => None,
    }
}

/// One client connection (WAIT needs the connection that wrote).
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Conn { s, buf: Vec::new() }
    }

    fn call(&mut self, args: &[&str]) -> Reply {
        self.s.write_all(&resp_command(args)).expect("write");
        loop {
            if let Some((reply, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return reply;
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read reply");
            assert!(n > 0, "connection closed while waiting for {args:?}");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `field:value` from an INFO text.
fn info_field(port: u16, section: &str, field: &str) -> String {
    let text = cmd(port, &["INFO", section]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// `field:value` from INFO on an open connection. While a node is down the
/// tests poll the other one this way: every fresh connection leaves a
/// TIME_WAIT on some ephemeral port, and this range (34300-34399, +10000)
/// lies inside the ephemeral range, so a fresh connection could take the
/// dead node's port and keep it from binding again.
fn info_on(c: &mut Conn, field: &str) -> String {
    c.call(&["INFO", "replication"])
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

fn must(what: &str, limit: Duration, f: impl FnMut() -> bool) {
    assert!(
        wait_until(limit, f).is_some(),
        "timed out waiting for {what}"
    );
}

/// Two nodes, slots on the first, the second replicating it. Returns
/// (master, replica, master id, replica id).
fn pair(root: &Path, mport: u16, rport: u16) -> (Server, Server, String, String) {
    let master = Server::start(Kind::Hearsay, mport, root, TIMEOUT);
    // No automatic failover: these tests restart the master on purpose.
    let replica = Server::start_with(
        Kind::Hearsay,
        rport,
        root,
        TIMEOUT,
        &["--cluster-replica-no-failover", "yes"],
    );
    assert_eq!(
        master.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        "OK"
    );
    assert_eq!(
        replica.cmd(&["CLUSTER", "MEET", "127.0.0.1", &mport.to_string()]),
        "OK"
    );
    let (mid, rid) = (master.myid(), replica.myid());
    must(
        "the replica to learn the master",
        Duration::from_secs(10),
        || flags_of(rport, &mid).contains("master") && flags_of(mport, &rid).contains("master"),
    );
    must("cluster state ok", Duration::from_secs(10), || {
        state_ok(mport) && state_ok(rport)
    });
    (master, replica, mid, rid)
}

fn replicate(replica: &Server, mid: &str) {
    assert_eq!(replica.cmd(&["CLUSTER", "REPLICATE", mid]), "OK");
    must("master_link_status:up", Duration::from_secs(10), || {
        info_field(replica.port, "replication", "master_link_status") == "up"
    });
}

fn event_count(server: &Server, kind: &str) -> usize {
    server
        .events()
        .iter()
        .filter(|e| e["event"] == kind)
        .count()
}

#[test]
fn replica_follows_the_stream_and_reports_roles_offsets_and_acks() {
    let root = tempfile::tempdir().expect("tempdir");
    let (master, replica, mid, rid) = pair(root.path(), 34301, 34302);
    let (mport, rport) = (master.port, replica.port);

    // Data before the sync travels in the snapshot.
    let mut w = Conn::open(mport);
    for args in [
        &["SET", "pre", "1"][..],
        &["RPUSH", "prelist", "a", "b", "c"],
        &["SADD", "preset", "x", "y"],
        &["SET", "prettl", "v", "PX", "100000"],
    ] {
        let r = w.call(args);
        assert!(!matches!(r, Reply::Error(_)), "{args:?}: {r:?}");
    }
    replicate(&replica, &mid);
    assert_eq!(event_count(&replica, "full_sync"), 1);

    // Writes after the sync travel in the stream.
    for args in [
        &["SET", "k", "v"][..],
        &["INCRBY", "counter", "5"],
        &["INCRBY", "counter", "7"],
        &["RPUSH", "list", "1", "2", "3"],
        &["LPOP", "list"],
        &["SADD", "set", "a", "b", "c"],
        &["SREM", "set", "b"],
        &["SET", "short", "v", "PX", "1500"],
        &["SET", "long", "v", "EX", "1000"],
        &["DEL", "pre"],
    ] {
        let r = w.call(args);
        assert!(!matches!(r, Reply::Error(_)), "{args:?}: {r:?}");
    }
    // A transaction travels as MULTI .. EXEC and is applied as one.
    assert_eq!(w.call(&["MULTI"]), Reply::Simple("OK".into()));
    assert_eq!(
        w.call(&["SET", "{t}1", "a"]),
        Reply::Simple("QUEUED".into())
    );
    assert_eq!(
        w.call(&["RPUSH", "{t}2", "b"]),
        Reply::Simple("QUEUED".into())
    );
    assert_eq!(w.call(&["EXEC"]).text(), "OK,1");
    // WAIT: the replica acks this connection's last write.
    assert_eq!(w.call(&["WAIT", "1", "5000"]), Reply::Int(1));
    // Asking for more replicas than exist blocks for the whole timeout.
    let start = Instant::now();
    assert_eq!(w.call(&["WAIT", "2", "300"]), Reply::Int(1));
    assert!(start.elapsed() >= Duration::from_millis(290));
    // Inside MULTI, WAIT never blocks.
    assert_eq!(w.call(&["MULTI"]), Reply::Simple("OK".into()));
    assert_eq!(w.call(&["WAIT", "5", "0"]), Reply::Simple("QUEUED".into()));
    assert_eq!(w.call(&["EXEC"]), Reply::Array(vec![Reply::Int(1)]));
    assert!(
        matches!(w.call(&["WAIT", "x", "1"]), Reply::Error(e) if e == "ERR value is not an integer or out of range")
    );
    assert!(
        matches!(w.call(&["WAIT", "1", "-1"]), Reply::Error(e) if e == "ERR timeout is negative")
    );

    // READONLY reads on the replica see all of it.
    let mut r = Conn::open(rport);
    assert_eq!(r.call(&["READONLY"]), Reply::Simple("OK".into()));
    let expect = [
        (&["GET", "k"][..], "v"),
        (&["GET", "counter"], "12"),
        (&["LRANGE", "list", "0", "-1"], "2,3"),
        (&["LRANGE", "prelist", "0", "-1"], "a,b,c"),
        (&["SISMEMBER", "set", "b"], "0"),
        (&["SCARD", "set"], "2"),
        (&["SCARD", "preset"], "2"),
        (&["EXISTS", "pre"], "0"),
        (&["GET", "long"], "v"),
        (&["GET", "{t}1"], "a"),
        (&["LRANGE", "{t}2", "0", "-1"], "b"),
    ];
    for (args, want) in expect {
        assert_eq!(r.call(args).text(), want, "{args:?}");
    }
    let Reply::Int(ttl) = r.call(&["PTTL", "prettl"]) else {
        panic!("PTTL is an integer");
    };
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");

    // The replica refuses writes as redis does.
    let moved = r.call(&["SET", "k", "x"]);
    assert!(
        matches!(&moved, Reply::Error(e) if e.starts_with(&format!("MOVED 7629 127.0.0.1:{mport}"))),
        "{moved:?}"
    );
    assert_eq!(
        r.call(&["FLUSHALL"]),
        Reply::Error("READONLY You can't write against a read only replica.".into())
    );
    let mut plain = Conn::open(rport);
    assert!(matches!(plain.call(&["GET", "k"]), Reply::Error(e) if e.starts_with("MOVED")));
    assert!(
        matches!(plain.call(&["WAIT", "0", "0"]), Reply::Error(e) if e.starts_with("ERR WAIT cannot be used with replica instances."))
    );
    for node in [mport, rport] {
        assert_eq!(
            cmd(node, &["REPLICAOF", "127.0.0.1", "1"]),
            "-ERR REPLICAOF not allowed in cluster mode.\r\n"
        );
        assert_eq!(
            cmd(node, &["SLAVEOF", "no", "one"]),
            "-ERR REPLICAOF not allowed in cluster mode.\r\n"
        );
    }

    // The expiring key: the master's expiry DEL reaches the replica, whose
    // DBSIZE (which counts logically expired keys) then matches.
    must(
        "the replica to drop the expired key",
        Duration::from_secs(10),
        || cmd(rport, &["DBSIZE"]) == "10" && cmd(mport, &["DBSIZE"]) == "10",
    );

    // Offsets agree once everything is acked.
    let moff: u64 = info_field(mport, "replication", "master_repl_offset")
        .parse()
        .expect("master offset");
    assert!(moff > 0);
    must(
        "the replica to reach the master's offset",
        Duration::from_secs(5),
        || info_field(rport, "replication", "slave_repl_offset") == moff.to_string(),
    );

    // INFO replication, both sides.
    let minfo = cmd(mport, &["INFO", "replication"]);
    for want in [
        "role:master\r\n".to_string(),
        "connected_slaves:1\r\n".to_string(),
        format!("slave0:ip=127.0.0.1,port={rport},state=online,offset={moff},lag="),
        format!("master_repl_offset:{moff}\r\n"),
    ] {
        assert!(minfo.contains(&want), "{want:?} not in\n{minfo}");
    }
    let rinfo = cmd(rport, &["INFO", "replication"]);
    for want in [
        "role:slave\r\n".to_string(),
        "master_host:127.0.0.1\r\n".to_string(),
        format!("master_port:{mport}\r\n"),
        "master_link_status:up\r\n".to_string(),
        "master_sync_in_progress:0\r\n".to_string(),
        format!("slave_read_repl_offset:{moff}\r\n"),
        format!("slave_repl_offset:{moff}\r\n"),
        format!("master_repl_offset:{moff}\r\n"),
        "connected_slaves:0\r\n".to_string(),
    ] {
        assert!(rinfo.contains(&want), "{want:?} not in\n{rinfo}");
    }
    let last_io: i64 = info_field(rport, "replication", "master_last_io_seconds_ago")
        .parse()
        .expect("last io");
    assert!((0..=11).contains(&last_io), "{last_io}");

    // ROLE, both sides.
    assert_eq!(
        Conn::open(mport).call(&["ROLE"]),
        Reply::Array(vec![
            Reply::Bulk(Some("master".into())),
            Reply::Int(moff as i64),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Bulk(Some("127.0.0.1".into())),
                Reply::Bulk(Some(rport.to_string())),
                Reply::Bulk(Some(moff.to_string())),
            ])]),
        ])
    );
    assert_eq!(
        Conn::open(rport).call(&["ROLE"]),
        Reply::Array(vec![
            Reply::Bulk(Some("slave".into())),
            Reply::Bulk(Some("127.0.0.1".into())),
            Reply::Int(i64::from(mport)),
            Reply::Bulk(Some("connected".into())),
            Reply::Int(moff as i64),
        ])
    );

    // The replica's offset reaches the master through the bus header: CLUSTER
    // SHARDS on the master shows it, and CLUSTER SLOTS lists the replica.
    must(
        "the master to see the replica's offset",
        Duration::from_secs(5),
        || {
            let shards = Conn::open(mport).call(&["CLUSTER", "SHARDS"]).text();
            shards.contains(&format!("{rid},port,{rport},ip,127.0.0.1,endpoint,127.0.0.1,role,replica,replication-offset,{moff},health,online"))
        },
    );
    let slots = Conn::open(mport).call(&["CLUSTER", "SLOTS"]).text();
    assert!(slots.contains(&rid), "{slots}");

    // The event logs record both ends of the sync.
    let synced: Vec<_> = master
        .events()
        .into_iter()
        .filter(|e| e["event"] == "replica_synced")
        .collect();
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(synced[0]["replica"], rid.as_str());
    let up: Vec<_> = replica
        .events()
        .into_iter()
        .filter(|e| e["event"] == "replication_link_up" || e["event"] == "full_sync")
        .collect();
    assert_eq!(up.len(), 2, "{up:?}");
    assert!(up.iter().all(|e| e["master"] == mid.as_str()), "{up:?}");
    assert_eq!(up[0]["keys"], 4, "the snapshot held the four early keys");
}

fn kill9(server: &Server) {
    let pid = server.pid();
    assert!(pid > 0);
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    must("the process to die", Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", server.port)).is_err()
    });
}

fn readonly_get(port: u16, key: &str) -> String {
    let mut c = Conn::open(port);
    c.call(&["READONLY"]);
    c.call(&["GET", key]).text()
}

#[test]
fn replica_resyncs_after_the_master_restarts_and_after_its_own_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let (master, replica, mid, rid) = pair(root.path(), 34311, 34312);
    let (mport, rport) = (master.port, replica.port);
    replicate(&replica, &mid);
    assert_eq!(cmd(mport, &["SET", "k1", "one"]), "OK");
    must("k1 on the replica", Duration::from_secs(5), || {
        readonly_get(rport, "k1") == "one"
    });

    // SIGKILL the master and start it again from its nodes.conf (no data).
    let mut on_replica = Conn::open(rport);
    kill9(&master);
    must(
        "the replica to see the link down",
        Duration::from_secs(5),
        || info_on(&mut on_replica, "master_link_status") == "down",
    );
    let down_since: i64 = info_on(&mut on_replica, "master_link_down_since_seconds")
        .parse()
        .expect("down since");
    assert!(down_since >= 0);
    let master2 = Server::start(Kind::Hearsay, mport, root.path(), TIMEOUT);
    assert_eq!(master2.myid(), mid, "the master kept its ID");
    must(
        "cluster state ok after the restart",
        Duration::from_secs(10),
        || state_ok(mport),
    );
    must("the link to come back", Duration::from_secs(10), || {
        info_field(rport, "replication", "master_link_status") == "up"
    });
    assert_eq!(cmd(mport, &["SET", "k2", "two"]), "OK");
    must("k2 on the replica", Duration::from_secs(5), || {
        readonly_get(rport, "k2") == "two"
    });
    // A full resync from an empty master empties the replica too, as redis
    // does when a master without persistence restarts.
    assert_eq!(readonly_get(rport, "k1"), "");
    assert_eq!(event_count(&replica, "full_sync"), 2);
    assert_eq!(event_count(&replica, "replication_link_down"), 1);
    assert_eq!(event_count(&replica, "replication_link_up"), 2);

    // SIGKILL the replica and restart it: it comes back as a replica of the
    // same master and syncs again.
    assert_eq!(cmd(mport, &["RPUSH", "k3", "a", "b"]), "2");
    let mut on_master = Conn::open(mport);
    kill9(&replica);
    must(
        "the master to drop the replica",
        Duration::from_secs(5),
        || info_on(&mut on_master, "connected_slaves") == "0",
    );
    let replica2 = Server::start_with(
        Kind::Hearsay,
        rport,
        root.path(),
        TIMEOUT,
        &["--cluster-replica-no-failover", "yes"],
    );
    assert_eq!(replica2.myid(), rid);
    must(
        "the restarted replica's link",
        Duration::from_secs(10),
        || info_field(rport, "replication", "master_link_status") == "up",
    );
    let mut c = Conn::open(rport);
    c.call(&["READONLY"]);
    assert_eq!(c.call(&["LRANGE", "k3", "0", "-1"]).text(), "a,b");
    assert_eq!(c.call(&["GET", "k2"]).text(), "two");
    must(
        "the master to list the replica online",
        Duration::from_secs(5),
        || {
            cmd(mport, &["INFO", "replication"])
                .contains(&format!("slave0:ip=127.0.0.1,port={rport},state=online"))
        },
    );
    let mut w = Conn::open(mport);
    w.call(&["SET", "k4", "four"]);
    assert_eq!(w.call(&["WAIT", "1", "5000"]), Reply::Int(1));
    assert_eq!(readonly_get(rport, "k4"), "four");
    drop((master, master2, replica, replica2));
}

#[test]
fn redis_cli_creates_a_cluster_with_replicas_that_replicate() {
    if !have("redis-cli") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (34321..=34326).collect();
    let nodes: Vec<Server> = ports
        .iter()
        .map(|&p| Server::start(Kind::Hearsay, p, root.path(), TIMEOUT))
        .collect();
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    args.extend([
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-yes".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = redis_cli(&argv);
    assert!(ok, "redis-cli --cluster create failed:\n{out}");
    must("state ok everywhere", Duration::from_secs(20), || {
        ports.iter().all(|&p| state_ok(p))
    });
    must("every replica's link up", Duration::from_secs(20), || {
        ports.iter().all(|&p| {
            let role = info_field(p, "replication", "role");
            role == "master" && info_field(p, "replication", "connected_slaves") == "1"
                || role == "slave" && info_field(p, "replication", "master_link_status") == "up"
        })
    });
    let (ok, out) = redis_cli(&["--cluster", "check", "127.0.0.1:34321"]);
    assert!(ok, "redis-cli --cluster check failed:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    // A write through a cluster client lands on a master and reaches its replica.
    let (ok, out) = redis_cli(&["-c", "-p", "34321", "set", "foo", "bar"]);
    assert!(ok && out.trim() == "OK", "{out}");
    let owner = ports
        .iter()
        .copied()
        .find(|&p| cmd(p, &["GET", "foo"]) == "bar")
        .expect("a master serves foo");
    let owner_id = cmd(owner, &["CLUSTER", "MYID"]);
    let replica = ports
        .iter()
        .copied()
        .filter(|&p| p != owner)
        .find(|&p| {
            cmd(p, &["CLUSTER", "NODES"])
                .lines()
                .any(|l| l.contains("myself") && l.contains(owner_id.trim()))
        })
        .expect("the owner has a replica");
    must("foo on the replica", Duration::from_secs(5), || {
        readonly_get(replica, "foo") == "bar"
    });
    drop(nodes);
}
