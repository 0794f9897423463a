//! The append-only file end to end: acknowledged writes survive SIGKILL and
//! restart with `appendonly yes` (and are gone without it, which shows the
//! test can fail); a cut tail loads with redis's warning; garbage refuses to
//! start; a master and its replica killed together come back with the data
//! and in sync; a replica's full resync rewrites its AOF.
//!
//! Ports 21500-21549 (bus ports +10000). Every process is killed by its PID
//! when its `Server` is dropped, pass or fail.

mod common;
mod replication_support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{hearsay_bin, wait_until, Kind, Server};
use replication_support::*;

const TIMEOUT: u64 = 2000;
const AOF: &[&str] = &["--appendonly", "yes", "--appendfsync", "everysec"];
const NO_AOF: &[&str] = &["--appendonly", "no"];

fn must(what: &str, limit: Duration, f: impl FnMut() -> bool) {
    assert!(
        wait_until(limit, f).is_some(),
        "timed out waiting for {what}"
    );
}

fn aof_path(server: &Server) -> PathBuf {
    server.dir.join("appendonlydir").join("appendonly.aof")
}

/// SIGKILL (no shutdown code runs) and wait until the port is free.
fn kill9(server: &mut Server) {
    forget(server.port);
    server.kill9();
    must("the process to die", Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", server.port)).is_err()
    });
}

fn restart(server: &mut Server) {
    kill9(server);
    server.restart(TIMEOUT);
    forget(server.port);
    must(
        "cluster state ok after restart",
        Duration::from_secs(10),
        || state_ok(server.port),
    );
}

/// A one-node cluster owning every slot.
fn single(root: &Path, port: u16, extra: &[&str]) -> Server {
    let s = Server::start_with(Kind::Hearsay, port, root, TIMEOUT, extra);
    assert_eq!(
        query(port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        Reply::ok()
    );
    must("cluster state ok", Duration::from_secs(10), || {
        state_ok(port)
    });
    s
}

const STRINGS: usize = 4000;
const PUSHES: usize = 3000;
const INCRS: usize = 3000;

/// 10k acknowledged writes (SET, RPUSH, INCR), optionally with a
/// BGREWRITEAOF running in the middle of them.
fn write_10k(port: u16, rewrite_midway: bool) {
    let mut c = Conn::open(port);
    for i in 0..STRINGS.max(PUSHES).max(INCRS) {
        if rewrite_midway && i == 1500 {
            assert_eq!(
                c.call(&["BGREWRITEAOF"]),
                Reply::Simple("Background append only file rewriting started".into())
            );
        }
        if i < STRINGS {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            assert_eq!(c.call(&["SET", &k, &v]), Reply::ok());
        }
        if i < PUSHES {
            let e = format!("e{i}");
            assert_eq!(c.call(&["RPUSH", "list", &e]), Reply::Int(i as i64 + 1));
        }
        if i < INCRS {
            assert_eq!(c.call(&["INCR", "ctr"]), Reply::Int(i as i64 + 1));
        }
    }
}

fn assert_10k_present(port: u16) {
    let mut c = Conn::open(port);
    assert_eq!(
        c.call(&["DBSIZE"]),
        Reply::Int(STRINGS as i64 + 2),
        "every key is back"
    );
    for i in 0..STRINGS {
        let k = format!("k{i}");
        assert_eq!(c.call(&["GET", &k]).text(), format!("v{i}"), "{k}");
    }
    let want: Vec<String> = (0..PUSHES).map(|i| format!("e{i}")).collect();
    assert_eq!(
        c.call(&["LRANGE", "list", "0", "-1"]).text(),
        want.join(",")
    );
    assert_eq!(c.call(&["GET", "ctr"]).text(), INCRS.to_string());
}

#[test]
fn acknowledged_writes_survive_sigkill_with_appendonly_yes() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut s = single(root.path(), 21501, AOF);
    write_10k(s.port, true);
    must("the rewrite to finish", Duration::from_secs(20), || {
        info_field(s.port, "persistence", "aof_rewrite_in_progress") == "0"
    });
    assert_eq!(info_field(s.port, "persistence", "aof_rewrites"), "1");
    assert_eq!(
        info_field(s.port, "persistence", "aof_last_bgrewrite_status"),
        "ok"
    );
    // SIGKILL right after the last acknowledged write: no fsync needed,
    // the page cache keeps what write(2) took.
    restart(&mut s);
    assert_10k_present(s.port);
    let log = s.log();
    assert!(
        log.contains("DB loaded from append only file:"),
        "log:\n{log}"
    );
    assert!(log.contains("Background AOF rewrite terminated with success"));
    assert_eq!(info_field(s.port, "persistence", "aof_enabled"), "1");
    assert_eq!(
        info_field(s.port, "persistence", "aof_last_write_status"),
        "ok"
    );
    let size: u64 = info_field(s.port, "persistence", "aof_current_size")
        .parse()
        .expect("aof_current_size");
    assert_eq!(size, std::fs::metadata(aof_path(&s)).expect("aof").len());

    // Writes after the restart append to the same file and survive too.
    assert_eq!(query(s.port, &["SET", "after", "restart"]), Reply::ok());
    assert_eq!(query(s.port, &["DEL", "k0"]), Reply::Int(1));
    restart(&mut s);
    assert_eq!(query(s.port, &["GET", "after"]).text(), "restart");
    assert_eq!(query(s.port, &["GET", "k0"]), Reply::Bulk(None));
    assert_eq!(query(s.port, &["GET", "ctr"]).text(), INCRS.to_string());
}

#[test]
fn without_appendonly_a_sigkill_loses_everything() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut s = single(root.path(), 21502, NO_AOF);
    write_10k(s.port, false);
    assert_eq!(query(s.port, &["DBSIZE"]), Reply::Int(STRINGS as i64 + 2));
    restart(&mut s);
    assert_eq!(query(s.port, &["DBSIZE"]), Reply::Int(0));
    assert_eq!(info_field(s.port, "persistence", "aof_enabled"), "0");
    assert!(!aof_path(&s).exists());
}

#[test]
fn appendfsync_always_and_custom_file_names() {
    let root = tempfile::tempdir().expect("tempdir");
    let extra = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--appenddirname",
        "aofs",
        "--appendfilename",
        "mine.aof",
    ];
    let mut s = single(root.path(), 21503, &extra);
    let mut c = Conn::open(s.port);
    c.call(&["MULTI"]);
    c.call(&["SET", "a", "1"]);
    c.call(&["INCR", "a"]);
    assert_eq!(c.call(&["EXEC"]).text(), "OK,2");
    assert_eq!(c.call(&["SADD", "s", "x", "y"]), Reply::Int(2));
    assert_eq!(c.call(&["SET", "t", "v", "PX", "600000"]), Reply::ok());
    drop(c);
    assert!(s.dir.join("aofs").join("mine.aof").exists());
    restart(&mut s);
    assert_eq!(query(s.port, &["GET", "a"]).text(), "2");
    assert_eq!(query(s.port, &["SCARD", "s"]), Reply::Int(2));
    let ttl = query(s.port, &["PTTL", "t"]);
    assert!(
        matches!(ttl, Reply::Int(ms) if ms > 500_000 && ms <= 600_000),
        "the TTL is kept as an absolute time: {ttl:?}"
    );
}

#[test]
fn a_truncated_tail_loads_with_a_warning_and_is_cut_off() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut s = single(root.path(), 21504, AOF);
    assert_eq!(query(s.port, &["SET", "a", "1"]), Reply::ok());
    assert_eq!(query(s.port, &["SET", "b", "2"]), Reply::ok());
    kill9(&mut s);
    let path = aof_path(&s);
    let good = std::fs::metadata(&path).expect("aof").len();
    // A write cut short by a crash: half of `SET c 3`.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open aof");
    f.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1")
        .expect("append");
    drop(f);
    s.restart(TIMEOUT);
    forget(s.port);
    must("state ok", Duration::from_secs(10), || state_ok(s.port));
    assert_eq!(query(s.port, &["GET", "a"]).text(), "1");
    assert_eq!(query(s.port, &["GET", "b"]).text(), "2");
    assert_eq!(query(s.port, &["GET", "c"]), Reply::Bulk(None));
    let log = s.log();
    assert!(
        log.contains(
            "!!! Warning: short read while loading the AOF file appendonlydir/appendonly.aof!!!"
        ),
        "log:\n{log}"
    );
    assert!(log.contains("loaded anyway because aof-load-truncated is enabled"));
    // The cut part is gone from the file, so new appends follow whole commands.
    assert_eq!(std::fs::metadata(&path).expect("aof").len(), good);
    assert_eq!(query(s.port, &["SET", "c", "3"]), Reply::ok());
    restart(&mut s);
    assert_eq!(query(s.port, &["GET", "c"]).text(), "3");
    assert_eq!(query(s.port, &["DBSIZE"]), Reply::Int(3));
}

#[test]
fn garbage_in_the_middle_refuses_to_start() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut s = single(root.path(), 21505, AOF);
    assert_eq!(query(s.port, &["SET", "a", "1"]), Reply::ok());
    kill9(&mut s);
    let path = aof_path(&s);
    let mut data = std::fs::read(&path).expect("read aof");
    let tail = data.split_off(data.len() / 2);
    data.extend_from_slice(b"this is not RESP\r\n");
    data.extend_from_slice(&tail);
    std::fs::write(&path, &data).expect("write aof");
    let mut child = Command::new(hearsay_bin())
        .args(["--port", "21505", "--bind", "127.0.0.1"])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .arg("--dir")
        .arg(&s.dir)
        .args(["--logfile", "log.txt", "--appendonly", "yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let exited = wait_until(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the node started on a corrupt AOF");
    }
    let status = child.wait().expect("status");
    assert!(!status.success());
    let log = s.log();
    assert!(
        log.contains("Bad file format reading the append only file"),
        "log:\n{log}"
    );
    // The file is left as it was for the operator to inspect.
    assert_eq!(std::fs::read(&path).expect("read aof"), data);
}

/// A master with all slots and a replica of it (no automatic failover:
/// these tests kill the master on purpose). Both with the given options.
fn pair(root: &Path, mport: u16, rport: u16, extra: &[&str]) -> (Server, Server, String) {
    let master = single(root, mport, extra);
    let mut rextra = extra.to_vec();
    rextra.extend(["--cluster-replica-no-failover", "yes"]);
    let replica = Server::start_with(Kind::Hearsay, rport, root, TIMEOUT, &rextra);
    assert_eq!(
        query(rport, &["CLUSTER", "MEET", "127.0.0.1", &mport.to_string()]),
        Reply::ok()
    );
    let mid = q(mport, &["CLUSTER", "MYID"]);
    must("the handshake", Duration::from_secs(10), || {
        flags_of(rport, &mid).contains("master")
    });
    assert_eq!(query(rport, &["CLUSTER", "REPLICATE", &mid]), Reply::ok());
    must("master_link_status:up", Duration::from_secs(10), || {
        info_field(rport, "replication", "master_link_status") == "up"
    });
    (master, replica, mid)
}

#[test]
fn master_and_replica_killed_together_come_back_with_the_data_in_sync() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut master, mut replica, _) = pair(root.path(), 21511, 21512, AOF);
    let (mport, rport) = (master.port, replica.port);
    let mut c = Conn::open(mport);
    for i in 0..2000 {
        let k = format!("k{i}");
        assert_eq!(c.call(&["SET", &k, &i.to_string()]), Reply::ok());
        assert_eq!(c.call(&["RPUSH", "l", &k]), Reply::Int(i + 1));
    }
    assert_eq!(c.call(&["WAIT", "1", "5000"]), Reply::Int(1));
    drop(c);
    kill9(&mut master);
    kill9(&mut replica);

    // The replica alone first: it serves what its own AOF holds.
    replica.restart(TIMEOUT);
    forget(rport);
    must(
        "the replica to serve reads",
        Duration::from_secs(10),
        || readonly(rport, &["GET", "k1999"]).text() == "1999",
    );
    assert_eq!(readonly(rport, &["LLEN", "l"]), Reply::Int(2000));

    restart(&mut master);
    assert_eq!(query(mport, &["DBSIZE"]), Reply::Int(2001));
    assert_eq!(query(mport, &["GET", "k0"]).text(), "0");
    must("the replica's link", Duration::from_secs(15), || {
        info_field(rport, "replication", "master_link_status") == "up"
    });
    let mut c = Conn::open(mport);
    assert_eq!(c.call(&["SET", "new", "x"]), Reply::ok());
    assert_eq!(c.call(&["WAIT", "1", "5000"]), Reply::Int(1));
    drop(c);
    assert_eq!(readonly(rport, &["GET", "new"]).text(), "x");
    assert_eq!(readonly(rport, &["DBSIZE"]), Reply::Int(2002));
    assert_eq!(
        readonly(rport, &["LRANGE", "l", "1998", "-1"]).text(),
        "k1998,k1999"
    );
}

#[test]
fn a_replicas_full_resync_rewrites_its_aof() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut master, mut replica, _) = pair(root.path(), 21521, 21522, AOF);
    let (mport, rport) = (master.port, replica.port);
    let mut c = Conn::open(mport);
    for i in 0..200 {
        let k = format!("old{i}");
        assert_eq!(c.call(&["SET", &k, "x"]), Reply::ok());
    }
    assert_eq!(c.call(&["WAIT", "1", "5000"]), Reply::Int(1));
    drop(c);
    let rewrites = |port| -> u64 {
        info_field(port, "persistence", "aof_rewrites")
            .parse()
            .unwrap_or(0)
    };
    must(
        "the replica's first rewrite",
        Duration::from_secs(10),
        || rewrites(rport) >= 1,
    );
    let before = rewrites(rport);

    // The master comes back without its data (its AOF removed): the
    // replica's full resync replaces its data set, and its AOF with it.
    kill9(&mut master);
    std::fs::remove_file(aof_path(&master)).expect("remove master aof");
    restart(&mut master);
    assert_eq!(query(mport, &["DBSIZE"]), Reply::Int(0));
    assert_eq!(query(mport, &["SET", "fresh", "1"]), Reply::ok());
    must("the replica to resync", Duration::from_secs(15), || {
        readonly(rport, &["GET", "fresh"]).text() == "1"
    });
    must("the replica's rewrite", Duration::from_secs(10), || {
        rewrites(rport) > before
            && info_field(rport, "persistence", "aof_rewrite_in_progress") == "0"
    });
    let aof = std::fs::read(aof_path(&replica)).expect("replica aof");
    let text = String::from_utf8_lossy(&aof);
    assert!(!text.contains("old1"), "the old data set is gone: {text}");
    assert!(text.contains("fresh"), "{text}");

    // And a restart of the replica alone loads just the new data.
    kill9(&mut master);
    replica.restart(TIMEOUT);
    forget(rport);
    must(
        "the replica to serve reads",
        Duration::from_secs(10),
        || readonly(rport, &["GET", "fresh"]).text() == "1",
    );
    assert_eq!(readonly(rport, &["DBSIZE"]), Reply::Int(1));
}

#[test]
fn config_set_appendonly_yes_starts_the_file_from_the_data_set() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut s = single(root.path(), 21531, NO_AOF);
    assert_eq!(query(s.port, &["SET", "before", "1"]), Reply::ok());
    assert_eq!(query(s.port, &["RPUSH", "l", "a", "b"]), Reply::Int(2));
    assert_eq!(
        query(s.port, &["CONFIG", "SET", "appendonly", "yes"]),
        Reply::ok()
    );
    must("the initial rewrite", Duration::from_secs(10), || {
        info_field(s.port, "persistence", "aof_enabled") == "1"
            && info_field(s.port, "persistence", "aof_rewrites") == "1"
    });
    assert_eq!(query(s.port, &["SET", "after", "2"]), Reply::ok());
    kill9(&mut s);
    drop(s);
    // Started again with appendonly yes (CONFIG SET alone is not kept
    // across restarts, as in redis without CONFIG REWRITE).
    let s = Server::start_with(Kind::Hearsay, 21531, root.path(), TIMEOUT, AOF);
    forget(s.port);
    must("state ok", Duration::from_secs(10), || state_ok(s.port));
    assert_eq!(query(s.port, &["GET", "before"]).text(), "1");
    assert_eq!(query(s.port, &["GET", "after"]).text(), "2");
    assert_eq!(query(s.port, &["LRANGE", "l", "0", "-1"]).text(), "a,b");
}
