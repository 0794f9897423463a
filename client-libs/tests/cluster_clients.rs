//! redis-py's `RedisCluster` and redis-rs's `cluster_async` against a 6-node
//! hearsay-node cluster (3 masters, 3 replicas) on 127.0.0.1:22401-22406.
//!
//! redis-py comes from PyPI into a venv this test creates once under
//! `target/client-libs-venv`; redis-rs is this crate's dev-dependency. Needs
//! python3 (with venv) and redis-cli (to create the cluster); without them
//! the test skips with a printed reason, and fails when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORTS: [u16; 6] = [22401, 22402, 22403, 22404, 22405, 22406];

fn skip_or_fail(why: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (CI=true: this is a failure, not a skip)");
    }
    eprintln!("SKIP: {why}");
    false
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found || skip_or_fail(&format!("`{tool}` is not installed"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The node binary: `HEARSAY_NODE_BIN`, else the workspace's debug build
/// (built here if needed: `cargo test` builds only this crate's targets).
fn node_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HEARSAY_NODE_BIN") {
        return PathBuf::from(p);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "hearsay-node"])
        .current_dir(workspace())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p hearsay-node failed");
    workspace().join("target/debug/hearsay-node")
}

/// The nodes, killed by PID when the test ends.
struct Cluster {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn redis_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn start_cluster() -> Cluster {
    let bin = node_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut children = Vec::new();
    for p in PORTS {
        let d = dir.path().join(format!("n{p}"));
        std::fs::create_dir_all(&d).expect("node dir");
        let child = Command::new(&bin)
            .args([
                "--port",
                &p.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--dir",
                &d.to_string_lossy(),
                "--logfile",
                "log.txt",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn hearsay-node");
        children.push(child);
    }
    let cluster = Cluster {
        children,
        _dir: dir,
    };
    for p in PORTS {
        let ok = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
        });
        assert!(ok, "node {p} did not start");
    }
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(PORTS.iter().map(|p| format!("127.0.0.1:{p}")));
    args.extend([
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-yes".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = redis_cli(&argv);
    assert!(ok, "redis-cli --cluster create failed:\n{out}");
    for p in PORTS {
        let ok = wait_until(Duration::from_secs(20), || {
            redis_cli(&["-p", &p.to_string(), "cluster", "info"])
                .1
                .contains("cluster_state:ok")
        });
        assert!(ok, "node {p} never reached cluster_state:ok");
    }
    cluster
}

/// A venv with redis-py, created once (outside a network namespace: pip
/// needs PyPI).
fn redis_py_venv() -> Option<PathBuf> {
    let venv = workspace().join("target/client-libs-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import redis"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv", &venv.to_string_lossy()])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "redis"])
            .status()
            .is_ok_and(|s| s.success());
    if made {
        Some(python)
    } else {
        skip_or_fail("could not create a venv with redis-py (python3 -m venv, pip install redis)");
        None
    }
}

#[test]
fn redis_py_and_redis_rs_cluster_clients() {
    if !have("redis-cli") || !have("python3") {
        return;
    }
    let python = redis_py_venv();
    let cluster = start_cluster();

    if let Some(python) = python {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/redis_py_cluster.py");
        let out = Command::new(python)
            .args([&script.to_string_lossy(), &PORTS[0].to_string()[..]])
            .output()
            .expect("run redis-py script");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        println!("{text}");
        assert!(out.status.success(), "redis-py checks failed:\n{text}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(redis_rs_checks());
    drop(cluster);
}

async fn redis_rs_checks() {
    use redis::AsyncCommands;
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", PORTS[0])])
            .expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .expect("cluster-async connection");
    for i in 0..100 {
        let _: () = con.set(format!("rs:{i}"), i).await.expect("SET");
    }
    for i in 0..100 {
        let v: i64 = con.get(format!("rs:{i}")).await.expect("GET");
        assert_eq!(v, i);
    }
    let _: () = con
        .hset_multiple("rs:h", &[("a", "1"), ("b", "2")])
        .await
        .expect("HSET");
    let all: std::collections::HashMap<String, String> =
        con.hgetall("rs:h").await.expect("HGETALL");
    assert_eq!(all.get("b").map(String::as_str), Some("2"));
    let n: i64 = con.hincr("rs:h", "a", 41).await.expect("HINCRBY");
    assert_eq!(n, 42);
    let script = redis::Script::new("return redis.call('incrby', KEYS[1], ARGV[1])");
    let v: i64 = script
        .key("rs:counter")
        .arg(5)
        .invoke_async(&mut con)
        .await
        .expect("EVALSHA/EVAL");
    assert_eq!(v, 5);
    let _: () = con.zadd("rs:z", "m", 2.5).await.expect("ZADD");
    let score: f64 = con.zscore("rs:z", "m").await.expect("ZSCORE");
    assert_eq!(score, 2.5);
    println!("redis-rs cluster-async: all checks passed");
}
