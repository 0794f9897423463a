//! Acceptance for replica failover (issue 3): automatic failover under writes
//! with timings for hearsay and redis-server on the same node timeout, manual
//! failover without losing acknowledged writes, kill and restart, and a mixed
//! cluster whose elections take votes from both implementations.
//!
//! `cargo test -p hearsay-node --test failover -- --nocapture` prints the timings.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const NODE_TIMEOUT: u64 = 2000;

/// One line of CLUSTER NODES, parsed.
#[derive(Clone, Debug)]
struct NodeLine {
    id: String,
    port: u16,
    flags: String,
    master: String,
    slots: String,
}

fn parse_nodes(port: u16) -> Vec<NodeLine> {
    cmd(port, &["CLUSTER", "NODES"])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 8 {
                return None;
            }
            let port = f[1].split('@').next()?.rsplit(':').next()?.parse().ok()?;
            Some(NodeLine {
                id: f[0].to_string(),
                port,
                flags: f[2].to_string(),
                master: f[3].to_string(),
                slots: f[8..].join(" "),
            })
        })
        .collect()
}

fn is_master_by_itself(port: u16) -> bool {
    parse_nodes(port)
        .iter()
        .any(|n| n.flags.contains("myself") && n.flags.contains("master"))
}

fn is_replica_by_itself(port: u16) -> bool {
    parse_nodes(port)
        .iter()
        .any(|n| n.flags.contains("myself") && n.flags.contains("slave"))
}

/// Every replica among `ports` has finished its initial sync (`master_link_status:up`);
/// a replica that never synced may not fail over (its data age is unbounded).
fn replicas_synced(ports: &[u16]) -> bool {
    ports.iter().all(|&p| {
        let info = cmd(p, &["INFO", "replication"]);
        info.contains("role:master") || info.contains("master_link_status:up")
    })
}

fn has_flag(flags: &str, want: &str) -> bool {
    flags.split(',').any(|f| f == want)
}

/// Starts `ports.len()` servers of one kind and runs `redis-cli --cluster create`
/// with one replica per master; waits until every node reports ok.
fn create_cluster(kind: fn() -> Kind, ports: &[u16], root: &std::path::Path) -> Vec<Server> {
    let servers: Vec<Server> = ports
        .iter()
        .map(|&p| Server::start(kind(), p, root, NODE_TIMEOUT))
        .collect();
    redis_cli_create(ports, 1);
    let ready = wait_until(Duration::from_secs(30), || {
        ports.iter().all(|&p| state_ok(p))
            && ports.iter().all(|&p| {
                parse_nodes(p)
                    .iter()
                    .filter(|n| n.flags.contains("slave"))
                    .count()
                    == ports.len() / 2
            })
    });
    assert!(ready.is_some(), "cluster with replicas never became ok");
    assert!(
        wait_until(Duration::from_secs(20), || replicas_synced(ports)).is_some(),
        "replicas never synced"
    );
    servers
}

/// A master that has a replica, and that replica (ports).
fn pick_master_with_replica(view_port: u16) -> (NodeLine, NodeLine) {
    let nodes = parse_nodes(view_port);
    for r in nodes.iter().filter(|n| n.flags.contains("slave")) {
        if let Some(m) = nodes
            .iter()
            .find(|m| m.id == r.master && !m.slots.is_empty())
        {
            return (m.clone(), r.clone());
        }
    }
    panic!("no master with a replica in {nodes:?}");
}

/// A key (with a hash tag) whose slot is in the given slot spec (first range).
fn key_in_slots(slots: &str) -> String {
    let first = slots.split(' ').next().unwrap_or("0");
    let (a, b) = match first.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().unwrap_or(0), b.parse::<u16>().unwrap_or(0)),
        None => (first.parse().unwrap_or(0), first.parse().unwrap_or(0)),
    };
    (0u32..)
        .map(|i| format!("{{t{i}}}"))
        .find(|k| {
            let s = hearsay_node::slots::key_slot(k.as_bytes());
            s >= a && s <= b
        })
        .unwrap_or_default()
}

/// A writer that keeps SETting `<tag>:<n>` on whichever node owns the slot,
/// following MOVED, and remembers which writes were acknowledged with +OK.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(tag: String, first_port: u16) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acked.clone());
        let handle = std::thread::spawn(move || {
            let mut port = first_port;
            let mut n = 0u64;
            let mut conn: Option<TcpStream> = None;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("{tag}:{n}");
                if conn.is_none() {
                    conn = TcpStream::connect(("127.0.0.1", port)).ok();
                    if let Some(c) = conn.as_ref() {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(12)));
                    }
                }
                let Some(c) = conn.as_mut() else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let mut reply = [0u8; 256];
                let got = c
                    .write_all(&resp_command(&["SET", &key, "v"]))
                    .ok()
                    .and_then(|_| c.read(&mut reply).ok())
                    .filter(|&n| n > 0);
                let Some(len) = got else {
                    conn = None;
                    continue;
                };
                let text = String::from_utf8_lossy(&reply[..len]).to_string();
                if text.starts_with("+OK") {
                    a.lock().map(|mut v| v.push(key)).ok();
                } else if let Some(rest) = text.strip_prefix("-MOVED ") {
                    if let Some(p) = rest.trim().rsplit(':').next().and_then(|p| p.parse().ok()) {
                        port = p;
                        conn = None;
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Writer {
            stop,
            acked,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.acked.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// SIGSTOPs the master of a shard while a client writes, and measures when every
/// other node marks it `fail` and when its replica becomes master. Returns a report.
fn stop_master_and_time(servers: &mut [Server], ports: &[u16], label: &str) -> String {
    let (master, replica) = pick_master_with_replica(ports[0]);
    let writer = Writer::start(key_in_slots(&master.slots), master.port);
    std::thread::sleep(Duration::from_millis(500));
    let victim = servers
        .iter()
        .position(|s| s.port == master.port)
        .expect("victim server");
    let observers: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|&p| p != master.port)
        .collect();
    let start = Instant::now();
    servers[victim].stop_signal();
    let mut fail_at: Vec<Option<Duration>> = vec![None; observers.len()];
    let mut promoted_at = None;
    while start.elapsed() < Duration::from_secs(30)
        && (fail_at.iter().any(Option::is_none) || promoted_at.is_none())
    {
        for (i, &p) in observers.iter().enumerate() {
            if fail_at[i].is_none() && has_flag(&flags_of(p, &master.id), "fail") {
                fail_at[i] = Some(start.elapsed());
            }
        }
        if promoted_at.is_none() && is_master_by_itself(replica.port) {
            promoted_at = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = wait_until(Duration::from_secs(20), || {
        observers.iter().all(|&p| state_ok(p))
    });
    let mut report = format!(
        "{label}: SIGSTOP master :{} (node-timeout {NODE_TIMEOUT} ms)\n",
        master.port
    );
    for (p, t) in observers.iter().zip(&fail_at) {
        report.push_str(&format!(
            "  FAIL seen at :{p}  {:>6} ms\n",
            t.map(|d| d.as_millis().to_string()).unwrap_or("-".into())
        ));
    }
    report.push_str(&format!(
        "  replica :{} promoted {:>6} ms; cluster ok again: {}\n",
        replica.port,
        promoted_at
            .map(|d| d.as_millis().to_string())
            .unwrap_or("-".into()),
        ok.is_some()
    ));
    assert!(fail_at.iter().all(Option::is_some), "{report}");
    assert!(promoted_at.is_some(), "{report}");
    assert!(ok.is_some(), "{report}");

    // SIGCONT: the old master learns its slots moved and becomes a replica of the new one.
    servers[victim].cont_signal();
    let demoted = wait_until(Duration::from_secs(20), || {
        parse_nodes(master.port).iter().any(|n| {
            n.flags.contains("myself") && n.flags.contains("slave") && n.master == replica.id
        })
    });
    report.push_str(&format!(
        "  old master rejoined as replica of the new one after SIGCONT: {demoted:?}\n"
    ));
    assert!(demoted.is_some(), "{report}");
    let acked = writer.finish();
    report.push_str(&format!(
        "  writes acknowledged during the run: {}\n",
        acked.len()
    ));
    assert!(!acked.is_empty(), "{report}");
    report
}

#[test]
fn automatic_failover_timings_hearsay_and_redis_server() {
    if !have("redis-server") || !have("redis-cli") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let hs_ports: Vec<u16> = (21401..=21406).collect();
    let mut hs = create_cluster(|| Kind::Hearsay, &hs_ports, root.path());
    let (ok, out) = redis_cli(&["--cluster", "check", "127.0.0.1:21401"]);
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
    let hs_report = stop_master_and_time(&mut hs, &hs_ports, "hearsay-node");
    drop(hs);

    let rd_ports: Vec<u16> = (21411..=21416).collect();
    let mut rd = create_cluster(|| Kind::Redis, &rd_ports, root.path());
    let rd_report = stop_master_and_time(&mut rd, &rd_ports, "redis-server");
    eprintln!("\n{hs_report}\n{rd_report}");
}

#[test]
fn manual_failover_keeps_every_acknowledged_write() {
    if !have("redis-cli") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (21421..=21426).collect();
    let servers = create_cluster(|| Kind::Hearsay, &ports, root.path());
    let (master, replica) = pick_master_with_replica(ports[0]);
    let writer = Writer::start(key_in_slots(&master.slots), master.port);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(cmd(replica.port, &["CLUSTER", "FAILOVER"]), "OK");
    let promoted = wait_until(Duration::from_secs(15), || {
        is_master_by_itself(replica.port)
    });
    assert!(
        promoted.is_some(),
        "replica was not promoted by CLUSTER FAILOVER"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let acked = writer.finish();
    assert!(acked.len() > 10, "too few writes: {}", acked.len());
    let missing: Vec<&String> = acked
        .iter()
        .filter(|k| cmd(replica.port, &["GET", k]) != "v")
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes missing on the new master: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        wait_until(Duration::from_secs(10), || is_replica_by_itself(
            master.port
        ))
        .is_some(),
        "old master did not become a replica"
    );
    eprintln!(
        "manual failover: {} acknowledged writes all readable from the new master",
        acked.len()
    );
    drop(servers);
}

#[test]
fn killed_and_restarted_nodes_rejoin_with_their_ids() {
    if !have("redis-cli") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (21431..=21436).collect();
    let mut servers = create_cluster(|| Kind::Hearsay, &ports, root.path());
    let nodes = parse_nodes(ports[0]);
    let (master, its_replica) = pick_master_with_replica(ports[0]);
    let other_replica = nodes
        .iter()
        .find(|n| n.flags.contains("slave") && n.id != its_replica.id)
        .cloned()
        .expect("another replica");
    let ids_before: Vec<String> = ports
        .iter()
        .map(|&p| cmd(p, &["CLUSTER", "MYID"]))
        .collect();
    for victim in [master.port, other_replica.port] {
        let i = ports.iter().position(|&p| p == victim).expect("victim");
        servers[i].kill9();
    }
    // Long enough for the master's replica to take over.
    let took_over = wait_until(Duration::from_secs(20), || {
        is_master_by_itself(its_replica.port)
    });
    assert!(
        took_over.is_some(),
        "replica of the killed master did not take over"
    );
    for victim in [master.port, other_replica.port] {
        let i = ports.iter().position(|&p| p == victim).expect("victim");
        servers[i].restart(NODE_TIMEOUT);
    }
    let converged = wait_until(Duration::from_secs(30), || {
        ports.iter().all(|&p| state_ok(p)) && {
            let first = nodes_view(ports[0]);
            ports[1..].iter().all(|&p| nodes_view(p) == first)
        }
    });
    assert!(
        converged.is_some(),
        "cluster did not converge: {:#?}",
        ports.iter().map(|&p| nodes_view(p)).collect::<Vec<_>>()
    );
    let ids_after: Vec<String> = ports
        .iter()
        .map(|&p| cmd(p, &["CLUSTER", "MYID"]))
        .collect();
    assert_eq!(ids_before, ids_after, "a restarted node changed its ID");
    assert!(
        is_replica_by_itself(master.port),
        "the restarted old master is not a replica"
    );
    // One owner per slot: every slot appears exactly once among masters' slot specs.
    let owned: usize = parse_nodes(ports[0])
        .iter()
        .filter(|n| n.flags.contains("master"))
        .flat_map(|n| {
            n.slots
                .split(' ')
                .filter(|s| !s.is_empty() && !s.starts_with('['))
                .map(|s| match s.split_once('-') {
                    Some((a, b)) => {
                        b.parse::<usize>().unwrap_or(0) - a.parse::<usize>().unwrap_or(0) + 1
                    }
                    None => 1,
                })
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(owned, 16384);
    eprintln!("killed master and replica rejoined; converged after {converged:?}");
}

#[test]
fn mixed_cluster_elections_take_votes_from_both_implementations() {
    if !have("redis-server") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    // Three hearsay shards and three redis-server shards, each a master plus a replica of its kind.
    let hs_masters = [21441u16, 21442, 21443];
    let hs_replicas = [21444u16, 21445, 21446];
    let rd_masters = [21451u16, 21452, 21453];
    let rd_replicas = [21454u16, 21455, 21456];
    let mut servers: Vec<Server> = Vec::new();
    for &p in hs_masters.iter().chain(&hs_replicas) {
        servers.push(Server::start(Kind::Hearsay, p, root.path(), NODE_TIMEOUT));
    }
    for &p in rd_masters.iter().chain(&rd_replicas) {
        servers.push(Server::start(Kind::Redis, p, root.path(), NODE_TIMEOUT));
    }
    let masters: Vec<u16> = hs_masters.iter().chain(&rd_masters).copied().collect();
    let all: Vec<u16> = servers.iter().map(|s| s.port).collect();
    join_and_assign_slots(&all, &masters);
    assert!(
        wait_until(Duration::from_secs(20), || all
            .iter()
            .all(|&p| parse_nodes(p).len() == all.len()))
        .is_some(),
        "membership did not spread"
    );
    for (r, m) in hs_replicas
        .iter()
        .zip(&hs_masters)
        .chain(rd_replicas.iter().zip(&rd_masters))
    {
        let mid = cmd(*m, &["CLUSTER", "MYID"]);
        assert_eq!(
            cmd(*r, &["CLUSTER", "REPLICATE", &mid]),
            "OK",
            "replicate {r} -> {m}"
        );
    }
    let ready = wait_until(Duration::from_secs(30), || {
        all.iter().all(|&p| state_ok(p))
            && all.iter().all(|&p| {
                parse_nodes(p)
                    .iter()
                    .filter(|n| n.flags.contains("slave"))
                    .count()
                    == 6
            })
    });
    assert!(
        ready.is_some(),
        "mixed cluster with replicas never became ok"
    );
    assert!(
        wait_until(Duration::from_secs(20), || replicas_synced(&all)).is_some(),
        "replicas never synced"
    );

    // A redis-server master fails: its redis replica wins with votes that include hearsay masters.
    let rd_victim = servers
        .iter()
        .position(|s| s.port == rd_masters[0])
        .expect("redis master");
    let rd_victim_id = servers[rd_victim].myid();
    let rd_heir = rd_replicas[0];
    let rd_heir_id = cmd(rd_heir, &["CLUSTER", "MYID"]);
    servers[rd_victim].stop_signal();
    let won = wait_until(Duration::from_secs(30), || is_master_by_itself(rd_heir));
    assert!(won.is_some(), "redis replica was not promoted");
    let hearsay_grants = servers[..3]
        .iter()
        .filter(|s| {
            s.events()
                .iter()
                .any(|e| e["event"] == "vote_granted" && e["to"] == rd_heir_id.as_str())
        })
        .count();
    assert!(
        hearsay_grants > 0,
        "no hearsay master granted its vote to the redis replica"
    );
    eprintln!("redis replica promoted after {won:?} with {hearsay_grants} hearsay vote(s) (failed master {rd_victim_id})");
    servers[rd_victim].cont_signal();
    assert!(wait_until(Duration::from_secs(30), || all.iter().all(|&p| state_ok(p))).is_some());

    // A hearsay master fails: its hearsay replica wins with votes that include redis masters.
    let hs_victim = servers
        .iter()
        .position(|s| s.port == hs_masters[0])
        .expect("hearsay master");
    let hs_heir = hs_replicas[0];
    let hs_heir_id = cmd(hs_heir, &["CLUSTER", "MYID"]);
    servers[hs_victim].stop_signal();
    let won = wait_until(Duration::from_secs(30), || is_master_by_itself(hs_heir));
    assert!(won.is_some(), "hearsay replica was not promoted");
    let needle = format!("Failover auth granted to {hs_heir_id}");
    let redis_grants = servers[6..9]
        .iter()
        .filter(|s| s.log().contains(&needle))
        .count();
    assert!(redis_grants > 0, "no redis-server master logged `{needle}`");
    eprintln!("hearsay replica promoted after {won:?} with {redis_grants} redis-server vote(s)");
    servers[hs_victim].cont_signal();
}
