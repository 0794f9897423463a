//! RDB interchange with redis-server 7.0, both ways: DUMP payloads restore
//! on the other server with the same value and TTL; hearsay's dump.rdb
//! passes `redis-check-rdb` and loads in redis-server; redis-server's
//! dump.rdb loads in hearsay-node; a bad file stops hearsay-node instead of
//! starting it empty; SAVE at shutdown and the replication info a replica's
//! file carries.
//!
//! Ports 21700-21749 (bus ports +10000). Every process is killed by its PID
//! when the test ends, pass or fail.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{have, hearsay_bin, wait_until};

/// One standalone or cluster-mode server process, killed on drop.
struct Proc {
    child: Child,
    port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str, port: u16, dir: &Path, extra: &[&str]) -> Proc {
    std::fs::create_dir_all(dir).expect("dir");
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir.to_string_lossy(),
        "--logfile",
        "log.txt",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if bin == "redis-server" {
        args.extend(["--protected-mode".into(), "no".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(bin)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let p = Proc { child, port };
    wait_until(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .unwrap_or_else(|| panic!("{bin} on {port} did not start"));
    p
}

fn redis(port: u16, dir: &Path) -> Proc {
    start("redis-server", port, dir, &[])
}

fn hearsay(port: u16, dir: &Path, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
    ];
    args.extend_from_slice(extra);
    let p = start(hearsay_bin(), port, dir, &args);
    call(port, &[b"CLUSTER", b"ADDSLOTSRANGE", b"0", b"16383"]);
    wait_until(Duration::from_secs(10), || {
        String::from_utf8_lossy(&call(port, &[b"CLUSTER", b"INFO"])).contains("cluster_state:ok")
    })
    .expect("cluster state ok");
    p
}

/// A raw RESP reply: bulk payloads as bytes, arrays flattened with `\n`.
fn call(port: u16, args: &[&[u8]]) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return b"-CONNECT".to_vec();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    if s.write_all(&req).is_err() {
        return b"-WRITE".to_vec();
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some((v, _)) = parse(&buf) {
            return v;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return buf,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let nl = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&b[1..nl]).ok()?;
    let rest = nl + 2;
    match b[0] {
        b'$' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some((b"(nil)".to_vec(), rest));
            }
            let end = rest + n as usize;
            b.get(end + 1)?;
            Some((b[rest..end].to_vec(), end + 2))
        }
        b'*' => {
            let n: i64 = head.parse().ok()?;
            let mut at = rest;
            let mut items: Vec<Vec<u8>> = Vec::new();
            for _ in 0..n.max(0) {
                let (v, used) = parse(&b[at..])?;
                items.push(v);
                at += used;
            }
            items.sort();
            Some((items.join(&b'\n'), at))
        }
        _ => Some((b[..nl].to_vec(), rest)),
    }
}

fn text(port: u16, args: &[&str]) -> String {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    String::from_utf8_lossy(&call(port, &a)).into_owned()
}

/// Writes one key of every type (with a TTL on some) through commands.
fn fill(port: u16) {
    let long: String = "abc".repeat(400);
    let many: Vec<String> = (0..700).map(|i| (i * 7).to_string()).collect();
    let big_list: Vec<String> = (0..3000)
        .map(|i| format!("item-{i}-{}", "z".repeat(i % 40)))
        .collect();
    let cmds: Vec<Vec<String>> = vec![
        vec!["SET".into(), "str".into(), "hello".into()],
        vec!["SET".into(), "int".into(), "-12345".into()],
        vec!["SET".into(), "bigint".into(), "123456789012345".into()],
        vec!["SET".into(), "long".into(), long],
        vec!["SET".into(), "bin".into(), "a\u{0}b\r\nc".into()],
        vec![
            "SET".into(),
            "ttl".into(),
            "x".into(),
            "PX".into(),
            "600000".into(),
        ],
        vec![
            "RPUSH".into(),
            "list".into(),
            "a".into(),
            "1".into(),
            "-70000".into(),
            "".into(),
        ],
        [vec!["RPUSH".into(), "biglist".into()], big_list].concat(),
        vec![
            "SADD".into(),
            "intset".into(),
            "3".into(),
            "-1".into(),
            "99999999999".into(),
        ],
        vec![
            "SADD".into(),
            "set".into(),
            "x".into(),
            "y".into(),
            "12".into(),
        ],
        [vec!["SADD".into(), "manyints".into()], many].concat(),
        vec!["PEXPIRE".into(), "set".into(), "700000".into()],
        vec![
            "HSET".into(),
            "hash".into(),
            "f".into(),
            "v".into(),
            "n".into(),
            "12".into(),
        ],
        [
            vec!["HSET".into(), "bighash".into()],
            (0..300)
                .flat_map(|i| [format!("f{i}"), "x".repeat(i % 90)])
                .collect(),
        ]
        .concat(),
        vec![
            "ZADD".into(),
            "zset".into(),
            "1".into(),
            "a".into(),
            "2.5".into(),
            "b".into(),
            "-inf".into(),
            "c".into(),
        ],
        [
            vec!["ZADD".into(), "bigzset".into()],
            (0..300)
                .flat_map(|i| [format!("{}", f64::from(i) / 7.0), format!("m{i}")])
                .collect(),
        ]
        .concat(),
        vec![
            "XADD".into(),
            "stream".into(),
            "1-1".into(),
            "a".into(),
            "1".into(),
            "b".into(),
            "2".into(),
        ],
        vec![
            "XADD".into(),
            "stream".into(),
            "2-0".into(),
            "c".into(),
            "3".into(),
        ],
    ];
    for c in cmds {
        let a: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
        let r = call(port, &a);
        assert!(
            !r.starts_with(b"-"),
            "{:?}: {}",
            c.first(),
            String::from_utf8_lossy(&r)
        );
    }
}

const KEYS: &[&str] = &[
    "str", "int", "bigint", "long", "bin", "ttl", "list", "biglist", "intset", "set", "manyints",
    "hash", "bighash", "zset", "bigzset", "stream",
];

/// A key's value in a comparable form (collections sorted), and whether it
/// has a TTL.
fn value(port: u16, key: &str) -> (String, Vec<u8>, bool) {
    let kind = text(port, &["TYPE", key]);
    let v = match kind.as_str() {
        "+string" | "string" => call(port, &[b"GET", key.as_bytes()]),
        "+list" | "list" => call(port, &[b"LRANGE", key.as_bytes(), b"0", b"-1"]),
        "+set" | "set" => call(port, &[b"SMEMBERS", key.as_bytes()]),
        "+hash" | "hash" => call(port, &[b"HGETALL", key.as_bytes()]),
        "+zset" | "zset" => call(
            port,
            &[b"ZRANGE", key.as_bytes(), b"0", b"-1", b"WITHSCORES"],
        ),
        "+stream" | "stream" => call(port, &[b"XRANGE", key.as_bytes(), b"-", b"+"]),
        other => other.as_bytes().to_vec(),
    };
    let ttl: i64 = text(port, &["PTTL", key])
        .trim_start_matches(':')
        .parse()
        .unwrap_or(-3);
    (kind, v, ttl > 0)
}

fn same_data(a: u16, b: u16) {
    for key in KEYS {
        assert_eq!(value(a, key), value(b, key), "key {key}");
    }
}

#[test]
fn dump_payloads_restore_on_the_other_server_both_ways() {
    if !have("redis-server") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let r = redis(21701, &root.path().join("r"));
    let h = hearsay(21702, &root.path().join("h"), &[]);
    fill(r.port);
    fill(h.port);
    for (from, to) in [(r.port, h.port), (h.port, r.port)] {
        for key in KEYS {
            let payload = call(from, &[b"DUMP", key.as_bytes()]);
            let pttl = text(from, &["PTTL", key])
                .trim_start_matches(':')
                .to_string();
            let ttl = if pttl.starts_with('-') {
                "0".to_string()
            } else {
                pttl
            };
            let target = format!("copy:{key}");
            let reply = call(
                to,
                &[b"RESTORE", target.as_bytes(), ttl.as_bytes(), &payload],
            );
            assert_eq!(reply, b"+OK", "{key} from {from} to {to}");
            let (k1, v1, t1) = value(from, key);
            let (k2, v2, t2) = value(to, &target);
            assert_eq!((k1, v1, t1), (k2, v2, t2), "{key} from {from} to {to}");
            // And the error texts agree: BUSYKEY, then a corrupt payload.
            let busy = text(to, &["RESTORE", &target, "0", "x"]);
            assert_eq!(busy, "-BUSYKEY Target key name already exists.");
            let mut bad = payload.clone();
            let n = bad.len();
            bad[n / 2] ^= 0x55;
            let reply = call(to, &[b"RESTORE", b"bad", b"0", &bad, b"REPLACE"]);
            assert_eq!(
                String::from_utf8_lossy(&reply),
                "-ERR DUMP payload version or checksum are wrong",
                "{key}"
            );
        }
    }
    // Strings dump to the same bytes on both.
    for key in ["str", "int", "bigint", "bin"] {
        assert_eq!(
            call(r.port, &[b"DUMP", key.as_bytes()]),
            call(h.port, &[b"DUMP", key.as_bytes()]),
            "{key}"
        );
    }
}

#[test]
fn dump_rdb_moves_between_hearsay_and_redis_server_both_ways() {
    if !have("redis-server") || !have("redis-check-rdb") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    // hearsay -> redis-check-rdb -> redis-server.
    let hdir = root.path().join("h");
    let h = hearsay(21711, &hdir, &[]);
    fill(h.port);
    assert_eq!(text(h.port, &["SAVE"]), "+OK");
    let check = Command::new("redis-check-rdb")
        .arg(hdir.join("dump.rdb"))
        .output()
        .expect("redis-check-rdb");
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success() && out.contains("RDB looks OK!"),
        "{out}"
    );
    let rdir = root.path().join("r");
    std::fs::create_dir_all(&rdir).expect("dir");
    std::fs::copy(hdir.join("dump.rdb"), rdir.join("dump.rdb")).expect("copy");
    let r = redis(21712, &rdir);
    assert_eq!(text(r.port, &["DBSIZE"]), text(h.port, &["DBSIZE"]));
    same_data(h.port, r.port);

    // redis-server -> hearsay (a fresh node: keys in unassigned slots are
    // taken, as redis's verifyClusterConfigWithData does).
    let r2dir = root.path().join("r2");
    let r2 = redis(21713, &r2dir);
    fill(r2.port);
    assert_eq!(
        text(r2.port, &["SET", "volatile-gone", "x", "PX", "1"]),
        "+OK"
    );
    assert_eq!(text(r2.port, &["SAVE"]), "+OK");
    let h2dir = root.path().join("h2");
    std::fs::create_dir_all(&h2dir).expect("dir");
    std::fs::copy(r2dir.join("dump.rdb"), h2dir.join("dump.rdb")).expect("copy");
    let h2 = start(
        hearsay_bin(),
        21714,
        &h2dir,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-require-full-coverage",
            "no",
        ],
    );
    wait_until(Duration::from_secs(10), || {
        text(h2.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
    })
    .expect("the loaded keys' slots are taken, the cluster is ok");
    same_data(r2.port, h2.port);
    assert_eq!(
        text(h2.port, &["DBSIZE"]),
        ":16",
        "a key that expired is not loaded"
    );
    let log = std::fs::read_to_string(h2dir.join("log.txt")).unwrap_or_default();
    assert!(
        log.contains("Loading RDB produced by version 7.0.15"),
        "{log}"
    );
    assert!(
        log.contains("Done loading RDB, keys loaded: 16, keys expired: 1."),
        "{log}"
    );
}

#[test]
fn a_bad_dump_rdb_stops_the_node_instead_of_starting_it_empty() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("h");
    {
        let h = hearsay(21721, &dir, &[]);
        fill(h.port);
        assert_eq!(text(h.port, &["SAVE"]), "+OK");
    }
    let path = dir.join("dump.rdb");
    let good = std::fs::read(&path).expect("dump.rdb");
    for (what, bad) in [
        ("flipped byte", {
            let mut b = good.clone();
            let n = b.len() / 2;
            b[n] ^= 0x40;
            b
        }),
        ("cut short", good[..good.len() - 100].to_vec()),
    ] {
        std::fs::write(&path, &bad).expect("write");
        let status = Command::new(hearsay_bin())
            .args([
                "--port",
                "21722",
                "--bind",
                "127.0.0.1",
                "--dir",
                &dir.to_string_lossy(),
                "--cluster-enabled",
                "yes",
                "--logfile",
                "bad.txt",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run");
        assert!(!status.success(), "{what}: the node started");
        let log = std::fs::read_to_string(dir.join("bad.txt")).unwrap_or_default();
        assert!(log.contains("Fatal error loading the DB"), "{what}: {log}");
    }
}

#[test]
fn shutdown_saves_with_save_points_and_a_restart_loads_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("h");
    let mut h = hearsay(21731, &dir, &["--save", "3600 1"]);
    fill(h.port);
    let before: Vec<_> = KEYS.iter().map(|k| value(h.port, k)).collect();
    // SIGTERM: the final save.
    let _ = Command::new("kill").arg(h.child.id().to_string()).status();
    let _ = h.child.wait();
    drop(h);
    assert!(dir.join("dump.rdb").exists());
    let h = start(
        hearsay_bin(),
        21731,
        &dir,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ],
    );
    wait_until(Duration::from_secs(10), || {
        text(h.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
    })
    .expect("state ok");
    let after: Vec<_> = KEYS.iter().map(|k| value(h.port, k)).collect();
    assert_eq!(before, after);
    let info = text(h.port, &["INFO", "persistence"]);
    assert!(info.contains("rdb_last_load_keys_loaded:16\r\n"), "{info}");
    assert_eq!(text(h.port, &["BGSAVE"]), "+Background saving started");
    wait_until(Duration::from_secs(10), || {
        text(h.port, &["INFO", "persistence"])
            .contains("rdb_bgsave_in_progress:0\r\nrdb_last_save_time")
    })
    .expect("bgsave ends");
    let lastsave: u64 = text(h.port, &["LASTSAVE"])
        .trim_start_matches(':')
        .parse()
        .unwrap_or(0);
    assert!(lastsave > 1_700_000_000, "{lastsave}");
}
