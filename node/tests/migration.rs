//! Slot migration end to end: MIGRATE itself (single key and KEYS, COPY,
//! REPLACE, AUTH/AUTH2 against a redis-server with a password, timeouts,
//! errors from the target, the cached connection), keys moving between
//! hearsay-node and redis-server both ways, and `redis-cli --cluster
//! reshard`, `rebalance`, `fix` (an open slot with keys) and `del-node` on a
//! hearsay cluster and on a mixed one, 10k keys, none lost. The planted
//! `--bug migrate-delete-before-ack` loses a key a refusing target never took.
//!
//! Ports 21800-21899 (bus ports +10000). Every process is killed by its PID
//! when its `Server` is dropped, pass or fail.

mod common;
mod replication_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{have, redis_cli, wait_until, Kind, Server};
use hearsay_node::slots::key_slot;
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

/// One node owning every slot (a target or a source for MIGRATE tests).
fn single(kind: Kind, port: u16, root: &std::path::Path, extra: &[&str]) -> Server {
    let s = Server::start_with(kind, port, root, TIMEOUT, extra);
    assert_eq!(
        query(port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        Reply::ok()
    );
    must("cluster state ok", Duration::from_secs(10), || {
        state_ok(port)
    });
    s
}

fn is_err(r: &Reply, prefix: &str) -> bool {
    matches!(r, Reply::Error(e) if e.starts_with(prefix))
}

fn total_connections(port: u16) -> u64 {
    info_field(port, "stats", "total_connections_received")
        .parse()
        .unwrap_or(0)
}

#[test]
fn migrate_moves_copies_replaces_and_reports_like_redis() {
    if !have("redis-server") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    // Sources and targets of both kinds; the redis target wants a password.
    let h = single(Kind::Hearsay, 21801, root.path(), &[]);
    let r = single(Kind::Redis, 21802, root.path(), &[]);
    // The cached test connection stays authenticated; MIGRATE's won't be.
    assert_eq!(
        query(r.port, &["CONFIG", "SET", "requirepass", "sekret"]),
        Reply::ok()
    );
    let h2 = single(Kind::Hearsay, 21803, root.path(), &[]);
    let rport = r.port.to_string();
    let h2port = h2.port.to_string();
    let mut c = Conn::open(h.port);

    // Nothing to move.
    assert_eq!(
        c.call(&["MIGRATE", "127.0.0.1", &h2port, "nokey", "0", "1000"]),
        Reply::Simple("NOKEY".into())
    );
    // Argument errors, with redis's texts.
    assert!(is_err(
        &c.call(&[
            "MIGRATE",
            "127.0.0.1",
            &h2port,
            "k",
            "0",
            "1000",
            "KEYS",
            "a"
        ]),
        "ERR When using MIGRATE KEYS option"
    ));
    assert!(is_err(
        &c.call(&["MIGRATE", "127.0.0.1", &h2port, "k", "0", "1000", "AUTH"]),
        "ERR syntax error"
    ));
    assert!(is_err(
        &c.call(&["MIGRATE", "127.0.0.1", &h2port, "k", "x", "1000"]),
        "ERR value is not an integer"
    ));

    // A single key with a TTL, hearsay -> hearsay.
    assert_eq!(c.call(&["SET", "k1", "v1", "PX", "100000"]), Reply::ok());
    assert_eq!(
        c.call(&["MIGRATE", "127.0.0.1", &h2port, "k1", "0", "1000"]),
        Reply::ok()
    );
    assert_eq!(
        c.call(&["EXISTS", "k1"]),
        Reply::Int(0),
        "moved, not copied"
    );
    assert_eq!(q(h2.port, &["GET", "k1"]), "v1");
    let Reply::Int(ttl) = query(h2.port, &["PTTL", "k1"]) else {
        panic!("pttl");
    };
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");

    // COPY keeps the source; a second copy hits BUSYKEY, REPLACE overwrites.
    assert_eq!(c.call(&["RPUSH", "l", "a", "b"]), Reply::Int(2));
    assert_eq!(
        c.call(&["MIGRATE", "127.0.0.1", &h2port, "l", "0", "1000", "COPY"]),
        Reply::ok()
    );
    assert_eq!(c.call(&["LLEN", "l"]), Reply::Int(2));
    let busy = c.call(&["MIGRATE", "127.0.0.1", &h2port, "l", "0", "1000", "COPY"]);
    assert_eq!(
        busy,
        Reply::Error(
            "ERR Target instance replied with error: BUSYKEY Target key name already exists."
                .into()
        )
    );
    assert_eq!(c.call(&["RPUSH", "l", "c"]), Reply::Int(3));
    assert_eq!(
        c.call(&["MIGRATE", "127.0.0.1", &h2port, "l", "0", "1000", "REPLACE"]),
        Reply::ok()
    );
    assert_eq!(q(h2.port, &["LRANGE", "l", "0", "-1"]), "a,b,c");

    // Several keys (one slot: cluster mode), hearsay -> redis-server with
    // AUTH, then AUTH2.
    for k in ["{t}a", "{t}b", "{t}c"] {
        assert_eq!(c.call(&["SET", k, k]), Reply::ok());
    }
    assert_eq!(c.call(&["SADD", "{t}s", "1", "2", "x"]), Reply::Int(3));
    let noauth = c.call(&[
        "MIGRATE",
        "127.0.0.1",
        &rport,
        "",
        "0",
        "1000",
        "KEYS",
        "{t}a",
    ]);
    assert!(
        is_err(&noauth, "ERR Target instance replied with error: NOAUTH"),
        "{noauth:?}"
    );
    assert_eq!(
        c.call(&["EXISTS", "{t}a"]),
        Reply::Int(1),
        "a refused key stays"
    );
    assert_eq!(
        c.call(&[
            "MIGRATE",
            "127.0.0.1",
            &rport,
            "",
            "0",
            "1000",
            "AUTH",
            "sekret",
            "KEYS",
            "{t}a",
            "{t}b",
            "{t}s",
            "{t}missing"
        ]),
        Reply::ok()
    );
    assert_eq!(
        c.call(&[
            "MIGRATE",
            "127.0.0.1",
            &rport,
            "",
            "0",
            "1000",
            "AUTH2",
            "default",
            "sekret",
            "KEYS",
            "{t}c"
        ]),
        Reply::ok()
    );
    assert_eq!(
        c.call(&["EXISTS", "{t}a", "{t}b", "{t}c", "{t}s"]),
        Reply::Int(0)
    );
    let mut rc = Conn::open(r.port);
    assert_eq!(rc.call(&["AUTH", "sekret"]), Reply::ok());
    assert_eq!(
        rc.call(&["MGET", "{t}a", "{t}b", "{t}c"]).text(),
        "{t}a,{t}b,{t}c"
    );
    assert_eq!(rc.call(&["SCARD", "{t}s"]), Reply::Int(3));

    // redis-server -> hearsay: the payloads redis writes restore here.
    assert_eq!(
        rc.call(&["RPUSH", "{r}l", "x", "1", "-70000"]),
        Reply::Int(3)
    );
    assert_eq!(
        rc.call(&["SET", "{r}s", "from-redis", "EX", "500"]),
        Reply::ok()
    );
    assert_eq!(
        rc.call(&[
            "MIGRATE",
            "127.0.0.1",
            &h2port,
            "",
            "0",
            "1000",
            "KEYS",
            "{r}l",
            "{r}s"
        ]),
        Reply::ok()
    );
    assert_eq!(q(h2.port, &["LRANGE", "{r}l", "0", "-1"]), "x,1,-70000");
    assert_eq!(q(h2.port, &["GET", "{r}s"]), "from-redis");

    // The connection to a target is cached: more MIGRATEs, no new connection.
    let before = total_connections(h2.port);
    for i in 0..5 {
        let k = format!("cached{i}");
        assert_eq!(c.call(&["SET", &k, "v"]), Reply::ok());
        assert_eq!(
            c.call(&["MIGRATE", "127.0.0.1", &h2port, &k, "0", "1000"]),
            Reply::ok()
        );
    }
    assert_eq!(
        total_connections(h2.port),
        before,
        "one cached connection served every MIGRATE"
    );

    // A target that never answers: the timeout, and the key stays.
    let silent = TcpListener::bind("127.0.0.1:21809").expect("bind");
    let hold = std::thread::spawn(move || {
        let (mut s, _) = silent.accept().expect("accept");
        let mut buf = [0u8; 65536];
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    assert_eq!(c.call(&["SET", "stuck", "v"]), Reply::ok());
    let start = Instant::now();
    let r = c.call(&["MIGRATE", "127.0.0.1", "21809", "stuck", "0", "300"]);
    assert_eq!(
        r,
        Reply::Error("IOERR error or timeout reading to target instance".into())
    );
    assert!(
        start.elapsed() >= Duration::from_millis(290),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(c.call(&["EXISTS", "stuck"]), Reply::Int(1));
    let _ = hold.join();
    // Nobody listening at all.
    let r = c.call(&["MIGRATE", "127.0.0.1", "21808", "stuck", "0", "300"]);
    assert!(is_err(&r, "IOERR error or timeout"), "{r:?}");
    assert_eq!(c.call(&["EXISTS", "stuck"]), Reply::Int(1));
}

#[test]
fn a_planted_early_delete_loses_keys_the_target_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let bad = single(
        Kind::Hearsay,
        21811,
        root.path(),
        &["--bug", "migrate-delete-before-ack"],
    );
    let good = single(Kind::Hearsay, 21812, root.path(), &[]);
    let target = single(Kind::Hearsay, 21813, root.path(), &[]);
    let tport = target.port.to_string();
    assert_eq!(query(target.port, &["SET", "k", "theirs"]), Reply::ok());
    for source in [&good, &bad] {
        assert_eq!(query(source.port, &["SET", "k", "mine"]), Reply::ok());
        let r = query(
            source.port,
            &["MIGRATE", "127.0.0.1", &tport, "k", "0", "1000"],
        );
        assert!(
            is_err(&r, "ERR Target instance replied with error: BUSYKEY"),
            "{r:?}"
        );
    }
    assert_eq!(
        q(good.port, &["GET", "k"]),
        "mine",
        "without the bug the refused key stays"
    );
    assert_eq!(
        query(bad.port, &["GET", "k"]),
        Reply::Bulk(None),
        "the bug deleted it before the ack"
    );
}

// ------------------------------------------------------------ redis-cli

/// slot -> master port, from CLUSTER SLOTS.
fn slot_map(port: u16) -> BTreeMap<u16, u16> {
    let mut map = BTreeMap::new();
    if let Reply::Array(ranges) = query(port, &["CLUSTER", "SLOTS"]) {
        for r in ranges {
            let Reply::Array(f) = r else { continue };
            let (Some(Reply::Int(a)), Some(Reply::Int(b)), Some(Reply::Array(m))) =
                (f.first(), f.get(1), f.get(2))
            else {
                continue;
            };
            let Some(Reply::Int(p)) = m.get(1) else {
                continue;
            };
            for s in *a..=*b {
                map.insert(s as u16, *p as u16);
            }
        }
    }
    map
}

const KEYS: usize = 10_000;

fn write_keys(port: u16) {
    let map = slot_map(port);
    let mut conns: BTreeMap<u16, Conn> = BTreeMap::new();
    for i in 0..KEYS {
        let key = format!("key:{i}");
        let owner = map[&key_slot(key.as_bytes())];
        let c = conns.entry(owner).or_insert_with(|| Conn::open(owner));
        let r = if i % 5 == 0 {
            c.call(&["RPUSH", &key, "a", &i.to_string()])
        } else {
            c.call(&["SET", &key, &i.to_string()])
        };
        assert!(!matches!(r, Reply::Error(_)), "{key}: {r:?}");
    }
}

/// Every key reads back from the node that owns its slot now.
fn all_keys_present(port: u16) {
    let map = slot_map(port);
    let total: u64 = map
        .values()
        .collect::<std::collections::BTreeSet<_>>()
        .iter()
        .map(|&&p| q(p, &["DBSIZE"]).parse::<u64>().unwrap_or(0))
        .sum();
    assert_eq!(total, KEYS as u64, "keys across the masters");
    let mut conns: BTreeMap<u16, Conn> = BTreeMap::new();
    for i in 0..KEYS {
        let key = format!("key:{i}");
        let owner = map[&key_slot(key.as_bytes())];
        let c = conns.entry(owner).or_insert_with(|| Conn::open(owner));
        let got = if i % 5 == 0 {
            c.call(&["LRANGE", &key, "0", "-1"]).text()
        } else {
            c.call(&["GET", &key]).text()
        };
        let want = if i % 5 == 0 {
            format!("a,{i}")
        } else {
            i.to_string()
        };
        assert_eq!(got, want, "{key} on {owner}");
    }
}

fn cli_ok(args: &[&str]) -> String {
    let (ok, out) = redis_cli(args);
    assert!(ok, "redis-cli {args:?} failed:\n{out}");
    out
}

fn check_ok(port: u16) {
    let out = cli_ok(&["--cluster", "check", &format!("127.0.0.1:{port}")]);
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(
        !out.contains("[WARNING]") && !out.contains("[ERR]"),
        "{out}"
    );
}

fn slots_of(port: u16) -> usize {
    let map = slot_map(port);
    map.values().filter(|&&p| p == port).count()
}

/// reshard, rebalance (onto an empty master), fix (an open slot holding
/// keys) and del-node (after its slots were resharded away), 10k keys.
fn redis_cli_workflows(kinds: [Kind; 4], ports: [u16; 4], label: &str) {
    let root = tempfile::tempdir().expect("tempdir");
    let _servers: Vec<Server> = kinds
        .into_iter()
        .zip(ports)
        .map(|(k, p)| Server::start(k, p, root.path(), TIMEOUT))
        .collect();
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let first = addr(ports[0]);
    cli_ok(&[
        "--cluster",
        "create",
        &addr(ports[0]),
        &addr(ports[1]),
        &addr(ports[2]),
        "--cluster-yes",
    ]);
    must("state ok", Duration::from_secs(20), || {
        ports[..3].iter().all(|&p| state_ok(p))
    });
    write_keys(ports[0]);

    // reshard: 1000 slots from the first master to the second.
    let t = Instant::now();
    cli_ok(&[
        "--cluster",
        "reshard",
        &first,
        "--cluster-from",
        &myid(ports[0]),
        "--cluster-to",
        &myid(ports[1]),
        "--cluster-slots",
        "1000",
        "--cluster-yes",
    ]);
    eprintln!("{label}: reshard of 1000 slots took {:?}", t.elapsed());
    check_ok(ports[0]);
    all_keys_present(ports[0]);

    // rebalance onto a new, empty master.
    cli_ok(&["--cluster", "add-node", &addr(ports[3]), &first]);
    must("the new node joined", Duration::from_secs(20), || {
        ports
            .iter()
            .all(|&p| q(p, &["CLUSTER", "NODES"]).lines().count() == 4 && state_ok(p))
    });
    let t = Instant::now();
    // A small weight keeps the move to about a thousand slots (the test
    // binary is a debug build).
    let weight = format!("{}=0.25", myid(ports[3]));
    cli_ok(&[
        "--cluster",
        "rebalance",
        &first,
        "--cluster-use-empty-masters",
        "--cluster-weight",
        &weight,
        "--cluster-yes",
    ]);
    eprintln!("{label}: rebalance took {:?}", t.elapsed());
    assert!(slots_of(ports[3]) > 900, "the empty master got slots");
    check_ok(ports[0]);
    all_keys_present(ports[0]);

    // fix: a slot left open (importing/migrating) with keys on both sides.
    let map = slot_map(ports[0]);
    let (key, slot, owner) = (0..KEYS)
        .map(|i| format!("key:{i}"))
        .map(|k| {
            let s = key_slot(k.as_bytes());
            (k, s, map[&s])
        })
        .find(|(_, s, _)| {
            q(map[s], &["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()])
                .parse::<u64>()
                .unwrap_or(0)
                >= 2
        })
        .expect("a slot with two keys");
    let other = ports
        .iter()
        .copied()
        .find(|&p| p != owner)
        .expect("another master");
    let s = slot.to_string();
    assert_eq!(
        query(
            other,
            &["CLUSTER", "SETSLOT", &s, "IMPORTING", &myid(owner)]
        ),
        Reply::ok()
    );
    assert_eq!(
        query(
            owner,
            &["CLUSTER", "SETSLOT", &s, "MIGRATING", &myid(other)]
        ),
        Reply::ok()
    );
    let r = query(
        owner,
        &[
            "MIGRATE",
            "127.0.0.1",
            &other.to_string(),
            &key,
            "0",
            "5000",
        ],
    );
    assert_eq!(r, Reply::ok(), "{key} half-way");
    let (ok, out) = redis_cli(&["--cluster", "check", &first]);
    assert!(
        !ok || out.contains("open slot"),
        "the open slot is reported:\n{out}"
    );
    cli_ok(&["--cluster", "fix", &first, "--cluster-yes"]);
    check_ok(ports[0]);
    all_keys_present(ports[0]);

    // del-node of a master holding keys: its slots go first, then the node.
    let leaving = ports[3];
    let n = slots_of(leaving);
    cli_ok(&[
        "--cluster",
        "reshard",
        &first,
        "--cluster-from",
        &myid(leaving),
        "--cluster-to",
        &myid(ports[0]),
        "--cluster-slots",
        &n.to_string(),
        "--cluster-yes",
    ]);
    assert_eq!(slots_of(leaving), 0);
    assert_eq!(q(leaving, &["DBSIZE"]), "0");
    cli_ok(&["--cluster", "del-node", &first, &myid(leaving)]);
    must("the node is forgotten", Duration::from_secs(20), || {
        ports[..3]
            .iter()
            .all(|&p| q(p, &["CLUSTER", "NODES"]).lines().count() == 3)
    });
    check_ok(ports[0]);
    all_keys_present(ports[0]);
}

#[test]
fn redis_cli_reshard_rebalance_fix_and_del_node_on_a_hearsay_cluster() {
    if !have("redis-cli") {
        return;
    }
    redis_cli_workflows(
        [Kind::Hearsay, Kind::Hearsay, Kind::Hearsay, Kind::Hearsay],
        [21821, 21822, 21823, 21824],
        "hearsay",
    );
}

#[test]
fn redis_cli_reshard_rebalance_fix_and_del_node_on_a_mixed_cluster() {
    if !have("redis-cli") || !have("redis-server") {
        return;
    }
    redis_cli_workflows(
        [Kind::Hearsay, Kind::Redis, Kind::Hearsay, Kind::Redis],
        [21831, 21832, 21833, 21834],
        "mixed",
    );
}

/// `[slot->-id]` / `[slot-<-id]` on the `myself` line of CLUSTER NODES.
fn open_slots(port: u16) -> String {
    q(port, &["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.contains("myself"))
        .map(|l| {
            l.split(' ')
                .filter(|w| w.starts_with('[') && (w.contains("->-") || w.contains("-<-")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// MIGRATING/IMPORTING survive a restart (they are in nodes.conf) and do
/// not follow a failover (a replica never learns its master's), the same
/// on hearsay-node and on redis-server.
fn open_slots_through_restart_and_failover(kind: fn() -> Kind, ports: [u16; 3]) {
    let root = tempfile::tempdir().expect("tempdir");
    let mut a = Server::start(kind(), ports[0], root.path(), TIMEOUT);
    let mut b = Server::start(kind(), ports[1], root.path(), TIMEOUT);
    let _r = Server::start(kind(), ports[2], root.path(), TIMEOUT);
    assert_eq!(
        query(a.port, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]),
        Reply::ok()
    );
    assert_eq!(
        query(b.port, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]),
        Reply::ok()
    );
    for &p in &ports[1..] {
        assert_eq!(
            query(p, &["CLUSTER", "MEET", "127.0.0.1", &a.port.to_string()]),
            Reply::ok()
        );
    }
    let (aid, bid) = (myid(a.port), myid(b.port));
    must("three nodes, state ok", Duration::from_secs(20), || {
        ports
            .iter()
            .all(|&p| q(p, &["CLUSTER", "NODES"]).lines().count() == 3 && state_ok(p))
    });
    assert_eq!(
        query(ports[2], &["CLUSTER", "REPLICATE", &aid]),
        Reply::ok()
    );
    must("the replica's link", Duration::from_secs(20), || {
        info_field(ports[2], "replication", "master_link_status") == "up"
    });
    assert_eq!(
        query(b.port, &["CLUSTER", "SETSLOT", "100", "IMPORTING", &aid]),
        Reply::ok()
    );
    assert_eq!(
        query(a.port, &["CLUSTER", "SETSLOT", "100", "MIGRATING", &bid]),
        Reply::ok()
    );
    assert_eq!(open_slots(a.port), format!("[100->-{bid}]"));
    assert_eq!(open_slots(b.port), format!("[100-<-{aid}]"));
    for s in [&mut a, &mut b] {
        forget(s.port);
        s.restart(TIMEOUT);
        forget(s.port);
    }
    must("state ok after restarts", Duration::from_secs(20), || {
        ports.iter().all(|&p| state_ok(p))
    });
    assert_eq!(
        open_slots(a.port),
        format!("[100->-{bid}]"),
        "kept through a restart"
    );
    assert_eq!(
        open_slots(b.port),
        format!("[100-<-{aid}]"),
        "kept through a restart"
    );
    assert_eq!(
        open_slots(ports[2]),
        "",
        "a replica holds none of its master's"
    );
    must("the replica's link again", Duration::from_secs(20), || {
        info_field(ports[2], "replication", "master_link_status") == "up"
    });
    assert_eq!(query(ports[2], &["CLUSTER", "FAILOVER"]), Reply::ok());
    must("the replica promoted", Duration::from_secs(20), || {
        info_field(ports[2], "replication", "role") == "master"
    });
    assert_eq!(
        open_slots(ports[2]),
        "",
        "the new master has no migrating slot"
    );
    assert_eq!(
        open_slots(b.port),
        format!("[100-<-{aid}]"),
        "the importing side keeps its state"
    );
}

#[test]
fn migrating_and_importing_states_through_restart_and_failover() {
    open_slots_through_restart_and_failover(|| Kind::Hearsay, [21841, 21842, 21843]);
    if have("redis-server") {
        open_slots_through_restart_and_failover(|| Kind::Redis, [21844, 21845, 21846]);
    }
}
