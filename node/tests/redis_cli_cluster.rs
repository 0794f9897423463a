//! Acceptance: real tools treat hearsay nodes as a Redis Cluster.
//! `redis-cli --cluster create` over six hearsay nodes, `--cluster check`, and
//! `redis-cli -c` following MOVED.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn redis_cli_creates_and_checks_a_six_node_cluster() {
    if !have("redis-cli") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (21001..=21006).collect();
    let nodes: Vec<Server> = ports
        .iter()
        .map(|&p| Server::start(Kind::Hearsay, p, root.path(), 2000))
        .collect();

    let out = redis_cli_create(&ports, 0);
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    let agreed = wait_until(Duration::from_secs(20), || {
        ports.iter().all(|&p| state_ok(p))
    });
    assert!(agreed.is_some(), "cluster never reached state ok");

    let (ok, out) = redis_cli(&["--cluster", "check", "127.0.0.1:21001"]);
    assert!(ok, "redis-cli --cluster check failed:\n{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    // foo hashes to slot 12182, which the sixth node does not own: -c must follow MOVED.
    let (ok, out) = redis_cli(&["-c", "-p", "21001", "set", "foo", "bar"]);
    assert!(ok && out.trim() == "OK", "{out}");
    let (ok, out) = redis_cli(&["-c", "-p", "21002", "get", "foo"]);
    assert!(ok && out.trim() == "bar", "{out}");
    let raw = cmd(21001, &["GET", "foo"]);
    assert!(raw.starts_with("-MOVED 12182 127.0.0.1:"), "{raw}");

    // Every node sees the same membership and slot owners.
    let first = nodes_view(ports[0]);
    assert_eq!(first.len(), 6, "{first:?}");
    for &p in &ports[1..] {
        assert_eq!(nodes_view(p), first, "node {p} disagrees");
    }
    drop(nodes);
}
