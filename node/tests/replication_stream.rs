//! Replication between hearsay nodes, end to end: two (or six) real
//! processes, CLUSTER MEET, slots on the master, CLUSTER REPLICATE on the
//! replica; then the stream, READONLY reads, ROLE / INFO replication, WAIT,
//! resync after the master or the replica restarts, and redis-cli's
//! `--cluster create --cluster-replicas 1`.
//!
//! Ports 21300-21329 (bus ports +10000). Every process is killed by its PID
//! when its `Server` is dropped, pass or fail.

mod common;
mod replication_support;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{have, redis_cli, redis_cli_create, wait_until, Kind, Server};
use replication_support::*;

const TIMEOUT: u64 = 2000;

fn must(what: &str, limit: Duration, f: impl FnMut() -> bool) {
    assert!(
        wait_until(limit, f).is_some(),
        "timed out waiting for {what}"
    );
}

fn myid(port: u16) -> String {
    q(port, &["CLUSTER", "MYID"])
}

/// No automatic failover: these tests stop and restart the master on purpose.
const NO_FAILOVER: &[&str] = &["--cluster-replica-no-failover", "yes"];

/// Two nodes, slots on the first, the second knowing it. Returns
/// (master, replica, master id, replica id).
fn pair(root: &Path, mport: u16, rport: u16) -> (Server, Server, String, String) {
    let master = Server::start(Kind::Hearsay, mport, root, TIMEOUT);
    let replica = Server::start_with(Kind::Hearsay, rport, root, TIMEOUT, NO_FAILOVER);
    assert_eq!(
        query(mport, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        Reply::ok()
    );
    assert_eq!(
        query(rport, &["CLUSTER", "MEET", "127.0.0.1", &mport.to_string()]),
        Reply::ok()
    );
    let (mid, rid) = (myid(mport), myid(rport));
    must("the handshake", Duration::from_secs(10), || {
        flags_of(rport, &mid).contains("master") && flags_of(mport, &rid).contains("master")
    });
    must("cluster state ok", Duration::from_secs(10), || {
        state_ok(mport) && state_ok(rport)
    });
    (master, replica, mid, rid)
}

fn replicate(rport: u16, mid: &str) {
    assert_eq!(query(rport, &["CLUSTER", "REPLICATE", mid]), Reply::ok());
    must("master_link_status:up", Duration::from_secs(10), || {
        info_field(rport, "replication", "master_link_status") == "up"
    });
}

fn event_count(server: &Server, kind: &str) -> usize {
    server
        .events()
        .iter()
        .filter(|e| e["event"] == kind)
        .count()
}

fn is_error(r: &Reply, text: &str) -> bool {
    matches!(r, Reply::Error(e) if e.starts_with(text))
}

#[test]
fn replica_follows_the_stream_and_reports_roles_offsets_and_acks() {
    let root = tempfile::tempdir().expect("tempdir");
    let (master, replica, mid, rid) = pair(root.path(), 21301, 21302);
    let (mport, rport) = (master.port, replica.port);
    // Each start is marked first in the event log (checkers tell restarts by it).
    let first = master.events().into_iter().next().unwrap_or_default();
    assert_eq!(
        (&first["event"], &first["id"]),
        (&"started".into(), &mid.as_str().into())
    );
    assert_eq!(event_count(&replica, "started"), 1);

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
    replicate(rport, &mid);
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
    assert_eq!(w.call(&["MULTI"]), Reply::ok());
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
    assert_eq!(w.call(&["MULTI"]), Reply::ok());
    assert_eq!(w.call(&["WAIT", "5", "0"]), Reply::Simple("QUEUED".into()));
    assert_eq!(w.call(&["EXEC"]), Reply::Array(vec![Reply::Int(1)]));
    assert!(is_error(
        &w.call(&["WAIT", "x", "1"]),
        "ERR value is not an integer or out of range"
    ));
    assert!(is_error(
        &w.call(&["WAIT", "1", "-1"]),
        "ERR timeout is negative"
    ));

    // READONLY reads on the replica see all of it.
    let mut r = Conn::open(rport);
    assert_eq!(r.call(&["READONLY"]), Reply::ok());
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
        is_error(&moved, &format!("MOVED 7629 127.0.0.1:{mport}")),
        "{moved:?}"
    );
    assert_eq!(
        r.call(&["FLUSHALL"]),
        Reply::Error("READONLY You can't write against a read only replica.".into())
    );
    let mut plain = Conn::open(rport);
    assert!(is_error(&plain.call(&["GET", "k"]), "MOVED"));
    assert!(is_error(
        &plain.call(&["WAIT", "0", "0"]),
        "ERR WAIT cannot be used with replica instances."
    ));
    for port in [mport, rport] {
        for args in [
            &["REPLICAOF", "127.0.0.1", "1"][..],
            &["SLAVEOF", "no", "one"],
        ] {
            assert_eq!(
                query(port, args),
                Reply::Error("ERR REPLICAOF not allowed in cluster mode.".into())
            );
        }
    }

    // The expiring key: the master's expiry DEL reaches the replica, whose
    // DBSIZE (which counts logically expired keys) then matches.
    must(
        "the replica to drop the expired key",
        Duration::from_secs(10),
        || q(rport, &["DBSIZE"]) == "10" && q(mport, &["DBSIZE"]) == "10",
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

    // INFO replication, both sides. The master learns the replica's offset
    // from its once-a-second ACK (redis replicas ack every second and on
    // GETACK, not after each write).
    must(
        "the master to see the replica's ack",
        Duration::from_secs(5),
        || q(mport, &["INFO", "replication"]).contains(&format!("state=online,offset={moff},")),
    );
    let minfo = q(mport, &["INFO", "replication"]);
    for want in [
        "role:master\r\n".to_string(),
        "connected_slaves:1\r\n".to_string(),
        format!("slave0:ip=127.0.0.1,port={rport},state=online,offset={moff},lag="),
        format!("master_repl_offset:{moff}\r\n"),
    ] {
        assert!(minfo.contains(&want), "{want:?} not in\n{minfo}");
    }
    let rinfo = q(rport, &["INFO", "replication"]);
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
        query(mport, &["ROLE"]),
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
        query(rport, &["ROLE"]),
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
            q(mport, &["CLUSTER", "SHARDS"]).contains(&format!(
            "{rid},port,{rport},ip,127.0.0.1,endpoint,127.0.0.1,role,replica,replication-offset,{moff},health,online"
        ))
        },
    );
    assert!(q(mport, &["CLUSTER", "SLOTS"]).contains(&rid));

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
    forget(server.port);
    let pid = server.pid();
    assert!(pid > 0);
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    // A refused connect leaves no TIME_WAIT behind.
    must("the process to die", Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", server.port)).is_err()
    });
}

#[test]
fn replica_resyncs_after_the_master_restarts_and_after_its_own_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let (master, replica, mid, rid) = pair(root.path(), 21311, 21312);
    let (mport, rport) = (master.port, replica.port);
    replicate(rport, &mid);
    assert_eq!(query(mport, &["SET", "k1", "one"]), Reply::ok());
    must("k1 on the replica", Duration::from_secs(5), || {
        readonly(rport, &["GET", "k1"]).text() == "one"
    });

    // SIGKILL the master and start it again from its nodes.conf (no data).
    kill9(&master);
    must(
        "the replica to see the link down",
        Duration::from_secs(5),
        || info_field(rport, "replication", "master_link_status") == "down",
    );
    let down_since: i64 = info_field(rport, "replication", "master_link_down_since_seconds")
        .parse()
        .expect("down since");
    assert!(down_since >= 0);
    let master2 = Server::start(Kind::Hearsay, mport, root.path(), TIMEOUT);
    assert_eq!(myid(mport), mid, "the master kept its ID");
    must(
        "cluster state ok after the restart",
        Duration::from_secs(10),
        || state_ok(mport),
    );
    must("the link to come back", Duration::from_secs(10), || {
        info_field(rport, "replication", "master_link_status") == "up"
    });
    assert_eq!(query(mport, &["SET", "k2", "two"]), Reply::ok());
    must("k2 on the replica", Duration::from_secs(5), || {
        readonly(rport, &["GET", "k2"]).text() == "two"
    });
    // A full resync from an empty master empties the replica too, as redis
    // does when a master without persistence restarts.
    assert_eq!(readonly(rport, &["GET", "k1"]), Reply::Bulk(None));
    assert_eq!(event_count(&replica, "full_sync"), 2);
    assert_eq!(event_count(&replica, "replication_link_down"), 1);
    assert_eq!(event_count(&replica, "replication_link_up"), 2);

    // SIGKILL the replica and restart it: it comes back as a replica of the
    // same master and syncs again.
    assert_eq!(query(mport, &["RPUSH", "k3", "a", "b"]), Reply::Int(2));
    kill9(&replica);
    must(
        "the master to drop the replica",
        Duration::from_secs(5),
        || info_field(mport, "replication", "connected_slaves") == "0",
    );
    let replica2 = Server::start_with(Kind::Hearsay, rport, root.path(), TIMEOUT, NO_FAILOVER);
    assert_eq!(myid(rport), rid);
    must(
        "the restarted replica's link",
        Duration::from_secs(10),
        || info_field(rport, "replication", "master_link_status") == "up",
    );
    assert_eq!(readonly(rport, &["LRANGE", "k3", "0", "-1"]).text(), "a,b");
    assert_eq!(readonly(rport, &["GET", "k2"]).text(), "two");
    must(
        "the master to list the replica online",
        Duration::from_secs(5),
        || {
            q(mport, &["INFO", "replication"])
                .contains(&format!("slave0:ip=127.0.0.1,port={rport},state=online"))
        },
    );
    let mut w = Conn::open(mport);
    assert_eq!(w.call(&["SET", "k4", "four"]), Reply::ok());
    assert_eq!(w.call(&["WAIT", "1", "5000"]), Reply::Int(1));
    assert_eq!(readonly(rport, &["GET", "k4"]).text(), "four");
    drop((master, master2, replica, replica2));
}

#[test]
fn redis_cli_creates_a_cluster_with_replicas_that_replicate() {
    if !have("redis-cli") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (21321..=21326).collect();
    let nodes: Vec<Server> = ports
        .iter()
        .map(|&p| Server::start(Kind::Hearsay, p, root.path(), TIMEOUT))
        .collect();
    redis_cli_create(&ports, 1);
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
    let (ok, out) = redis_cli(&["--cluster", "check", "127.0.0.1:21321"]);
    assert!(ok, "redis-cli --cluster check failed:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    // A write through a cluster client lands on a master and reaches its replica.
    let (ok, out) = redis_cli(&["-c", "-p", "21321", "set", "foo", "bar"]);
    assert!(ok && out.trim() == "OK", "{out}");
    let owner = ports
        .iter()
        .copied()
        .find(|&p| q(p, &["GET", "foo"]) == "bar")
        .expect("a master serves foo");
    let owner_id = myid(owner);
    let replica = ports
        .iter()
        .copied()
        .find(|&p| {
            p != owner
                && q(p, &["CLUSTER", "NODES"])
                    .lines()
                    .any(|l| l.contains("myself") && l.contains(&owner_id))
        })
        .expect("the owner has a replica");
    must("foo on the replica", Duration::from_secs(5), || {
        readonly(replica, &["GET", "foo"]).text() == "bar"
    });
    drop(nodes);
}
