//! Shared helpers for the harness's integration tests.
#![allow(dead_code)]

use hearsay_harness::skip_or_fail;
use std::path::Path;
use std::process::Command;

/// Runs the `hearsay` binary with a private registry; (exit code, stdout, stderr).
pub fn hearsay(args: &[&str], reg: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearsay"))
        .args(args)
        .env("HEARSAY_REGISTRY_DIR", reg)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// True if the process may create namespaces, bridges and nft tables.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Checks prerequisites; on a miss prints why and returns false (or panics under CI=true).
pub fn require(root: bool, redis: bool, faketime: bool) -> bool {
    if root && !is_root() {
        skip_or_fail("needs root (network namespaces, nft)");
        return false;
    }
    if root && hearsay_harness::env::sys::which("nft").is_none() {
        skip_or_fail("needs nft (apt-get install nftables)");
        return false;
    }
    if redis && hearsay_harness::env::sys::which("redis-server").is_none() {
        skip_or_fail("needs redis-server on PATH (apt-get install redis-server)");
        return false;
    }
    if faketime
        && (hearsay_harness::faults::clock::libfaketime().is_none()
            || hearsay_harness::env::sys::which("cc").is_none())
    {
        skip_or_fail("needs libfaketime and cc");
        return false;
    }
    true
}

/// The workspace's hearsay-node binary must exist and answer `--version` (build it
/// with `cargo build -p hearsay-node`; `cargo test -p hearsay` alone does not).
pub fn require_hearsay_node() -> bool {
    let bin = hearsay_harness::targets::server::find_hearsay_node(None);
    let ok = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail(&format!(
            "needs a built hearsay-node ({}): cargo build -p hearsay-node",
            bin.display()
        ));
    }
    ok
}

/// Names of namespaces, links and nft tables on the machine that carry `prefix`.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let run = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    for (what, text) in [
        ("netns", run(&["ip", "netns", "list"])),
        ("link", run(&["ip", "-o", "link", "show"])),
        ("nft", run(&["nft", "list", "tables"])),
    ] {
        for line in text.lines().filter(|l| l.contains(prefix)) {
            out.push(format!("{what}: {line}"));
        }
    }
    out
}

use hearsay_harness::env::net::Network;
use hearsay_harness::env::process::Node;
use hearsay_harness::env::registry::{new_prefix, Registry};
use hearsay_harness::opts::TargetChoice;
use hearsay_harness::targets::form;
use hearsay_harness::targets::server::{cluster_node, NodeSettings};
use hearsay_harness::targets::{cluster::Layout, hearsay, mixed, redis};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Guard(pub Arc<Registry>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.teardown();
    }
}

pub struct Bed {
    pub guard: Guard,
    pub prefix: String,
    pub nodes: Vec<Node>,
    pub net: Network,
    pub form_total_ms: u128,
    pub _reg_dir: tempfile::TempDir,
    pub run_dir: tempfile::TempDir,
}

pub async fn bed(target: TargetChoice, faketime: bool) -> Bed {
    let reg_dir = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let prefix = new_prefix();
    let reg = Registry::create_in(reg_dir.path(), &prefix).unwrap();
    let guard = Guard(reg.clone());
    let t0 = Instant::now();
    let net = Network::create(&reg, 6).unwrap();
    let settings = NodeSettings {
        redis_server: hearsay_harness::env::sys::which("redis-server").unwrap_or_default(),
        hearsay_node: hearsay_harness::targets::server::find_hearsay_node(None),
        node_timeout_ms: 2000,
        loglevel: "notice".into(),
        appendonly: true,
        faketime_shim: faketime.then(|| {
            hearsay_harness::faults::clock::build_shim(&run_dir.path().join("faketime")).unwrap()
        }),
        base_port: 7000,
        bugs: vec![],
        election_delay_ms: None,
        experiment: vec![],
    };
    let layout: Layout = match target {
        TargetChoice::Redis => redis::layout,
        TargetChoice::Hearsay => hearsay::layout,
        TargetChoice::Mixed => mixed::layout,
        other => panic!("a Redis Cluster of {} nodes is not a thing", other.name()),
    };
    let mut nodes = Vec::new();
    for (i, nn) in net.nodes.iter().enumerate() {
        let n = cluster_node(
            i,
            layout(i),
            &nn.ns,
            nn.ip,
            run_dir.path(),
            &settings,
            reg.clone(),
        )
        .unwrap();
        nodes.push(n);
    }
    for n in nodes.iter_mut() {
        n.start().unwrap();
    }
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    form::wait_ping(&addrs, Duration::from_secs(10))
        .await
        .unwrap();
    let before_form = t0.elapsed().as_millis();
    let formed = form::form(&addrs, 1, true, Duration::from_secs(20))
        .await
        .unwrap();
    // Up and agreed: the wait for the replicas' first sync that `form` adds after
    // agreement (redis-server holds it back 5 s, repl-diskless-sync-delay) is setup,
    // not formation.
    let form_total_ms = before_form + u128::from(formed.form_ms);
    Bed {
        guard,
        prefix,
        nodes,
        net,
        form_total_ms,
        _reg_dir: reg_dir,
        run_dir,
    }
}
