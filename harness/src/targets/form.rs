//! Cluster formation by the harness itself, the same steps for every target:
//! SET-CONFIG-EPOCH (distinct epochs, as redis-cli does), ADDSLOTSRANGE on the masters,
//! MEET between every pair, REPLICATE for replicas, then wait until
//! every node reports `cluster_state:ok` and all nodes agree on the topology.

use hearsay_workloads::conn::Conn;
use hearsay_workloads::resp::Value;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Formation errors.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("{node}: {cmd}: {error}")]
    Command {
        node: SocketAddr,
        cmd: String,
        error: String,
    },
    #[error("timed out after {secs:.1}s waiting for {what}; last: {last}")]
    Timeout {
        what: String,
        secs: f64,
        last: String,
    },
}

const T: Duration = Duration::from_millis(1000);

/// Admin connections, one per node, reused across commands (formation sends ~40
/// commands and polls agreement every 20 ms; a connect per command costs more than
/// the command). A connection that fails is dropped and reopened on next use.
#[derive(Default)]
pub struct Admin {
    conns: HashMap<SocketAddr, Conn>,
}

impl Admin {
    pub async fn request(&mut self, addr: SocketAddr, args: &[&[u8]]) -> Result<Value, String> {
        self.request_within(addr, args, T).await
    }

    /// A text reply (CLUSTER INFO, CLUSTER NODES), empty when the node does not
    /// answer: the formation trace counts such a node as not there yet.
    async fn text_or_empty(&mut self, addr: SocketAddr, args: &[&[u8]]) -> String {
        self.request(addr, args)
            .await
            .ok()
            .and_then(|v| v.as_text())
            .unwrap_or_default()
    }

    /// [`Admin::request`] with a reply timeout of its own (MIGRATE waits for its
    /// target).
    pub async fn request_within(
        &mut self,
        addr: SocketAddr,
        args: &[&[u8]],
        timeout: Duration,
    ) -> Result<Value, String> {
        let c = match self.conns.entry(addr) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Conn::connect(addr, T).await.map_err(|e| e.to_string())?)
            }
        };
        match c.request(args, timeout).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.conns.remove(&addr);
                Err(e.to_string())
            }
        }
    }

    async fn cmd(&mut self, addr: SocketAddr, args: &[&str]) -> Result<Value, FormError> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        let err = |error: String| FormError::Command {
            node: addr,
            cmd: args.join(" "),
            error,
        };
        match self.request(addr, &a).await {
            Ok(Value::Error(e)) => Err(err(e)),
            Ok(v) => Ok(v),
            Err(e) => Err(err(e)),
        }
    }

    async fn text(&mut self, addr: SocketAddr, args: &[&str]) -> Result<String, FormError> {
        let v = self.cmd(addr, args).await?;
        v.as_text().ok_or_else(|| FormError::Command {
            node: addr,
            cmd: args.join(" "),
            error: format!("unexpected reply {v:?}"),
        })
    }
}

/// One line of CLUSTER NODES.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeLine {
    pub id: String,
    pub addr: String,
    pub flags: Vec<String>,
    pub master: Option<String>,
    pub slots: Vec<String>,
}

impl NodeLine {
    pub fn is_master(&self) -> bool {
        self.flags.iter().any(|f| f == "master")
    }
    pub fn is_myself(&self) -> bool {
        self.flags.iter().any(|f| f == "myself")
    }
    pub fn failing(&self) -> bool {
        self.flags.iter().any(|f| f == "fail" || f == "fail?")
    }
    /// ip:port without the @cport and ,hostname parts.
    pub fn client_addr(&self) -> &str {
        self.addr.split(['@', ',']).next().unwrap_or("")
    }
}

/// Parses CLUSTER NODES text; malformed lines are skipped.
pub fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            Some(NodeLine {
                id: f.first()?.to_string(),
                addr: f.get(1)?.to_string(),
                flags: f.get(2)?.split(',').map(str::to_string).collect(),
                master: f.get(3).filter(|m| **m != "-").map(|m| m.to_string()),
                // Slot fields; open-slot markers "[..]" are kept, they matter for agreement.
                slots: f
                    .get(8..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            })
        })
        .collect()
}

/// Per node ID: (is master, its master, its slots).
pub type Topology = BTreeMap<String, (bool, Option<String>, Vec<String>)>;

/// The part of a node's view that all nodes must agree on: per node ID, its role,
/// master and slots.
pub fn topology(lines: &[NodeLine]) -> Topology {
    lines
        .iter()
        .map(|l| {
            (
                l.id.clone(),
                (l.is_master(), l.master.clone(), l.slots.clone()),
            )
        })
        .collect()
}

/// Even split of 16384 slots over `m` masters: (start, end) inclusive.
pub fn slot_ranges(m: usize) -> Vec<(u16, u16)> {
    let m = m.max(1);
    (0..m)
        .map(|i| ((i * 16384 / m) as u16, ((i + 1) * 16384 / m - 1) as u16))
        .collect()
}

/// What formation measured.
#[derive(Clone, Debug, Serialize)]
pub struct Formed {
    pub ids: Vec<String>,
    pub masters: Vec<usize>,
    pub form_ms: u64,
    /// From the first MEET to agreement (what `hearsay scale` compares).
    pub meet_ms: u64,
    /// How formation progressed, when [`FormSpec::trace`] asked for it.
    pub trace: Option<FormTrace>,
}

/// Formation's progress as every node's CLUSTER INFO showed it, polled from the
/// first MEET on; times in ms since the first MEET.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FormTrace {
    /// Per poll: (time, nodes knowing all N, nodes with all 16384 slots
    /// assigned, nodes with `cluster_state:ok`, fewest nodes any node knows).
    pub polls: Vec<(u64, usize, usize, usize, usize)>,
    /// Per poll: the bus messages all nodes had sent so far, by type
    /// (`cluster_stats_messages_<type>_sent`: ping, pong, meet, ...).
    pub sent: Vec<BTreeMap<String, u64>>,
    /// Per node (by index): the first poll at which it knew all N nodes.
    pub knows_all_ms: Vec<Option<u64>>,
    /// Per node: the first poll at which all 16384 slots were assigned in its view.
    pub all_slots_ms: Vec<Option<u64>>,
    /// Per node: the first poll at which it said `cluster_state:ok`.
    pub ok_ms: Vec<Option<u64>>,
    /// Per poll while it runs (the first [`MISSING_FOR_MS`] ms): each node that
    /// does not know every other node yet (by real ID, not in handshake), with
    /// the indices of the nodes it lacks: which nodes spread late, and to whom.
    pub missing: Vec<(u64, Vec<Lacking>)>,
    /// Per poll: the nodes whose slots the first node (the one every node
    /// met) does not know yet, as (index, ping_sent, pong_recv) from its
    /// CLUSTER NODES: when it pings them, and how gossip moves their pong times.
    pub first_lacks: Vec<(u64, Vec<PeerTimes>)>,
}

/// A node's index and the indices of the nodes it does not know yet.
pub type Lacking = (usize, Vec<usize>);

/// A peer's index and its `ping_sent` and `pong_recv` in a node's CLUSTER NODES.
pub type PeerTimes = (usize, u64, u64);

/// How long the trace reads every node's CLUSTER NODES at each poll (tens of KB
/// per node at 100 nodes: only formation's early phase).
const MISSING_FOR_MS: u64 = 20_000;

impl FormTrace {
    fn new(n: usize) -> FormTrace {
        FormTrace {
            polls: Vec::new(),
            sent: Vec::new(),
            knows_all_ms: vec![None; n],
            all_slots_ms: vec![None; n],
            ok_ms: vec![None; n],
            missing: Vec::new(),
            first_lacks: Vec::new(),
        }
    }

    /// One poll: every node's CLUSTER INFO (a node that does not answer counts
    /// as not there yet).
    async fn poll(&mut self, admin: &mut Admin, addrs: &[SocketAddr], ids: &[String], t_ms: u64) {
        if let Some(a) = addrs.first() {
            let text = admin.text_or_empty(*a, &[b"CLUSTER", b"NODES"]).await;
            let mut lacks = Vec::new();
            for l in text.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (Some(id), Some(flags), Some(ps), Some(pr)) =
                    (f.first(), f.get(2), f.get(4), f.get(5))
                else {
                    continue;
                };
                if f.len() > 8 || flags.contains("myself") || flags.contains("handshake") {
                    continue;
                }
                if let Some(j) = ids.iter().position(|x| x == id) {
                    lacks.push((j, ps.parse().unwrap_or(0), pr.parse().unwrap_or(0)));
                }
            }
            self.first_lacks.push((t_ms, lacks));
        }
        if t_ms < MISSING_FOR_MS {
            let mut lacking = Vec::new();
            for (i, a) in addrs.iter().enumerate() {
                let text = admin.text_or_empty(*a, &[b"CLUSTER", b"NODES"]).await;
                let known: std::collections::HashSet<String> = parse_nodes(&text)
                    .into_iter()
                    .filter(|l| !l.flags.iter().any(|f| f == "handshake"))
                    .map(|l| l.id)
                    .collect();
                let lacks: Vec<usize> = (0..ids.len())
                    .filter(|&j| ids.get(j).is_some_and(|id| !known.contains(id)))
                    .collect();
                if !lacks.is_empty() {
                    lacking.push((i, lacks));
                }
            }
            self.missing.push((t_ms, lacking));
        }
        let n = addrs.len();
        let (mut all, mut slots, mut ok, mut fewest) = (0, 0, 0, usize::MAX);
        let mut sent: BTreeMap<String, u64> = BTreeMap::new();
        for (i, a) in addrs.iter().enumerate() {
            let info = admin.text_or_empty(*a, &[b"CLUSTER", b"INFO"]).await;
            let field = |name: &str| -> Option<usize> {
                info.lines()
                    .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
                    .and_then(|v| v.parse().ok())
            };
            let known = field("cluster_known_nodes").unwrap_or(0);
            for l in info.lines() {
                let Some((k, v)) = l.trim().split_once(':') else {
                    continue;
                };
                let Some(t) = k
                    .strip_prefix("cluster_stats_messages_")
                    .and_then(|k| k.strip_suffix("_sent"))
                else {
                    continue;
                };
                *sent.entry(t.to_string()).or_default() += v.parse::<u64>().unwrap_or(0);
            }
            fewest = fewest.min(known);
            let marks = [
                (known == n, &mut self.knows_all_ms, &mut all),
                (
                    field("cluster_slots_assigned") == Some(16384),
                    &mut self.all_slots_ms,
                    &mut slots,
                ),
                (info.contains("cluster_state:ok"), &mut self.ok_ms, &mut ok),
            ];
            for (hit, first, count) in marks {
                if hit {
                    *count += 1;
                    if let Some(f) = first.get_mut(i) {
                        f.get_or_insert(t_ms);
                    }
                }
            }
        }
        self.polls.push((t_ms, all, slots, ok, fewest));
        self.sent.push(sent);
    }
}

/// Waits until every address answers PING.
pub async fn wait_ping(addrs: &[SocketAddr], limit: Duration) -> Result<(), FormError> {
    let t0 = Instant::now();
    let mut admin = Admin::default();
    for a in addrs {
        loop {
            match admin.cmd(*a, &["PING"]).await {
                Ok(_) => break,
                Err(e) if t0.elapsed() > limit => {
                    return Err(FormError::Timeout {
                        what: format!("{a} to answer PING"),
                        secs: t0.elapsed().as_secs_f64(),
                        last: e.to_string(),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    Ok(())
}

/// How the nodes are introduced to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meets {
    /// Every pair: each node learns every other directly (fast setup for runs).
    Mesh,
    /// Every node meets the first one, as `redis-cli --cluster create` does; gossip
    /// spreads the rest (what `hearsay scale` times).
    First,
}

/// How to form a cluster.
#[derive(Clone, Debug)]
pub struct FormSpec {
    pub replicas: usize,
    /// Give every node a distinct configEpoch first, as redis-cli does.
    pub set_epochs: bool,
    pub meets: Meets,
    /// How often agreement is polled.
    pub poll: Duration,
    pub limit: Duration,
    /// Poll every node's CLUSTER INFO at each round and record how formation
    /// progressed ([`Formed::trace`]); costs one small request per node per poll.
    pub trace: bool,
}

/// Forms the cluster. Node `i < masters` is a master; replica `j` follows master
/// `j % masters`.
/// `set_epochs` gives every node a distinct configEpoch first, as redis-cli does.
pub async fn form(
    addrs: &[SocketAddr],
    replicas: usize,
    set_epochs: bool,
    limit: Duration,
) -> Result<Formed, FormError> {
    let spec = FormSpec {
        replicas,
        set_epochs,
        meets: Meets::Mesh,
        poll: Duration::from_millis(20),
        limit,
        trace: false,
    };
    form_with(addrs, &spec).await
}

/// [`form`] as `spec` says.
pub async fn form_with(addrs: &[SocketAddr], spec: &FormSpec) -> Result<Formed, FormError> {
    let (replicas, set_epochs, limit) = (spec.replicas, spec.set_epochs, spec.limit);
    let t0 = Instant::now();
    let n = addrs.len();
    let masters = (n / (replicas + 1)).max(1);
    let mut admin = Admin::default();
    let mut ids = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        ids.push(admin.text(*a, &["CLUSTER", "MYID"]).await?);
        if set_epochs {
            admin
                .cmd(*a, &["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()])
                .await?;
        }
    }
    for (i, (s, e)) in slot_ranges(masters).into_iter().enumerate() {
        if let Some(a) = addrs.get(i) {
            admin
                .cmd(
                    *a,
                    &["CLUSTER", "ADDSLOTSRANGE", &s.to_string(), &e.to_string()],
                )
                .await?;
        }
    }
    // A full mesh of MEETs lets every node learn every other directly instead of
    // waiting for gossip to spread them, which roughly halves formation time.
    let t_meet = Instant::now();
    for (i, from) in addrs.iter().enumerate() {
        let peers: Vec<SocketAddr> = match spec.meets {
            Meets::Mesh => addrs.iter().skip(i + 1).copied().collect(),
            Meets::First if i > 0 => addrs.first().copied().into_iter().collect(),
            Meets::First => vec![],
        };
        for to in peers.iter() {
            admin
                .cmd(
                    *from,
                    &[
                        "CLUSTER",
                        "MEET",
                        &to.ip().to_string(),
                        &to.port().to_string(),
                    ],
                )
                .await?;
        }
    }
    // REPLICATE needs the master known (handshake done) on the replica.
    for j in masters..n {
        let (Some(a), Some(mid)) = (addrs.get(j), ids.get(j % masters)) else {
            continue;
        };
        loop {
            match admin.cmd(*a, &["CLUSTER", "REPLICATE", mid]).await {
                Ok(_) => break,
                Err(e) if t0.elapsed() > limit => {
                    return Err(FormError::Timeout {
                        what: format!("{a} to accept REPLICATE"),
                        secs: t0.elapsed().as_secs_f64(),
                        last: e.to_string(),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
    let mut trace = None;
    if spec.trace {
        let mut tr = FormTrace::new(n);
        // The traced polls run until every node says ok; agreement is checked below.
        loop {
            tr.poll(&mut admin, addrs, &ids, t_meet.elapsed().as_millis() as u64)
                .await;
            let done = tr.polls.last().is_some_and(|p| p.3 == n && p.1 == n);
            if done || t0.elapsed() > limit {
                break;
            }
            tokio::time::sleep(spec.poll).await;
        }
        trace = Some(tr);
    }
    wait_agreed_every(
        &mut admin,
        addrs,
        Some(n),
        limit.saturating_sub(t0.elapsed()),
        spec.poll,
    )
    .await?;
    // Formation time is to agreement; the wait for first syncs below is setup on
    // top of it.
    let form_ms = t0.elapsed().as_millis() as u64;
    let meet_ms = t_meet.elapsed().as_millis() as u64;
    // Faults start only once every replica holds its master's data: a replica
    // whose first sync has not finished (redis waits repl-diskless-sync-delay,
    // 5 s, before sending it) cannot fail over at all, which would make the
    // first fault test setup, not the cluster.
    for a in addrs.iter().skip(masters) {
        loop {
            let info = admin.text(*a, &["INFO", "replication"]).await;
            let up = info
                .as_ref()
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "master_link_status:up"));
            if up {
                break;
            }
            if t0.elapsed() > limit {
                return Err(FormError::Timeout {
                    what: format!("replica {a} to finish its first sync"),
                    secs: t0.elapsed().as_secs_f64(),
                    last: match info {
                        Ok(t) => t
                            .lines()
                            .find(|l| l.starts_with("master_link_status"))
                            .unwrap_or("no master_link_status")
                            .to_string(),
                        Err(e) => e.to_string(),
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(Formed {
        ids,
        masters: (0..masters).collect(),
        form_ms,
        meet_ms,
        trace,
    })
}

/// Agreement check on the live nodes: every one says `cluster_state:ok`, knows
/// `expect_nodes` nodes (if given), sees no failure flags, and all topologies match.
pub async fn check_agreed(addrs: &[SocketAddr], expect_nodes: Option<usize>) -> Result<(), String> {
    check_agreed_with(&mut Admin::default(), addrs, expect_nodes).await
}

async fn check_agreed_with(
    admin: &mut Admin,
    addrs: &[SocketAddr],
    expect_nodes: Option<usize>,
) -> Result<(), String> {
    let mut first: Option<Topology> = None;
    for a in addrs {
        let info = admin
            .request(*a, &[b"CLUSTER", b"INFO"])
            .await?
            .as_text()
            .unwrap_or_default();
        if !info.contains("cluster_state:ok") {
            return Err(format!("{a}: cluster_state not ok"));
        }
        let nodes = admin
            .request(*a, &[b"CLUSTER", b"NODES"])
            .await?
            .as_text()
            .unwrap_or_default();
        let lines = parse_nodes(&nodes);
        if let Some(n) = expect_nodes {
            if lines.len() != n {
                return Err(format!("{a}: knows {} nodes, want {n}", lines.len()));
            }
        }
        if let Some(l) = lines
            .iter()
            .find(|l| l.failing() || l.flags.iter().any(|f| f == "handshake"))
        {
            return Err(format!("{a}: sees {} as {:?}", l.id, l.flags));
        }
        let topo = topology(&lines);
        match &first {
            None => first = Some(topo),
            Some(f) if *f != topo => return Err(format!("{a}: topology differs from first node")),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Polls [`check_agreed`] until it passes or `limit` runs out.
pub async fn wait_agreed(
    addrs: &[SocketAddr],
    expect_nodes: Option<usize>,
    limit: Duration,
) -> Result<Duration, FormError> {
    wait_agreed_with(&mut Admin::default(), addrs, expect_nodes, limit).await
}

async fn wait_agreed_with(
    admin: &mut Admin,
    addrs: &[SocketAddr],
    expect_nodes: Option<usize>,
    limit: Duration,
) -> Result<Duration, FormError> {
    wait_agreed_every(admin, addrs, expect_nodes, limit, Duration::from_millis(20)).await
}

/// A cheap pass first: every node's CLUSTER INFO says `ok` and knows `n` nodes
/// (a few hundred bytes each, where CLUSTER NODES of a large cluster is tens of
/// KB: polling those every round would load the nodes being timed).
async fn info_says_formed(admin: &mut Admin, addrs: &[SocketAddr], n: usize) -> Result<(), String> {
    let want = format!("cluster_known_nodes:{n}");
    for a in addrs {
        let info = admin
            .request(*a, &[b"CLUSTER", b"INFO"])
            .await?
            .as_text()
            .unwrap_or_default();
        if !info.contains("cluster_state:ok") || !info.lines().any(|l| l.trim() == want) {
            return Err(format!("{a}: not ok or not {n} nodes known yet"));
        }
    }
    Ok(())
}

/// Polls agreement every `poll` until it holds or `limit` runs out.
pub async fn wait_agreed_every(
    admin: &mut Admin,
    addrs: &[SocketAddr],
    expect_nodes: Option<usize>,
    limit: Duration,
    poll: Duration,
) -> Result<Duration, FormError> {
    let t0 = Instant::now();
    loop {
        let cheap = match expect_nodes {
            Some(n) if poll > Duration::from_millis(20) => info_says_formed(admin, addrs, n).await,
            _ => Ok(()),
        };
        let checked = match cheap {
            Ok(()) => check_agreed_with(admin, addrs, expect_nodes).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(()) => return Ok(t0.elapsed()),
            Err(last) if t0.elapsed() > limit => {
                return Err(FormError::Timeout {
                    what: "all nodes to agree with cluster_state:ok".into(),
                    secs: t0.elapsed().as_secs_f64(),
                    last,
                })
            }
            Err(_) => tokio::time::sleep(poll).await,
        }
    }
}

/// The topology CLUSTER NODES lines describe: primaries (masters with slots, not
/// failed), the replicas of each, the members and the primaries' slot ranges, as
/// node indices (`index_of` maps a client address to one). Real runs and the
/// simulator read it the same way.
pub fn topology_of(
    lines: &[NodeLine],
    index_of: impl Fn(&str) -> Option<usize>,
) -> crate::faults::schedule::Topology {
    let mut topo = crate::faults::schedule::Topology::default();
    for l in lines {
        let failed = l.flags.iter().any(|f| f == "fail");
        if l.is_master() && !l.slots.is_empty() && !failed {
            if let Some(i) = index_of(l.client_addr()) {
                topo.primaries.push(i);
            }
        }
    }
    for l in lines {
        let Some(master_id) = &l.master else { continue };
        let (Some(m), Some(i)) = (
            lines
                .iter()
                .find(|x| &x.id == master_id)
                .and_then(|x| index_of(x.client_addr())),
            index_of(l.client_addr()),
        ) else {
            continue;
        };
        topo.replicas_of.entry(m).or_default().push(i);
    }
    for l in lines {
        if l.flags.iter().any(|f| f == "handshake" || f == "noaddr") {
            continue;
        }
        let Some(i) = index_of(l.client_addr()) else {
            continue;
        };
        topo.members.push(i);
        let ranges: Vec<(u16, u16)> = l
            .slots
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| {
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect();
        if l.is_master() && !ranges.is_empty() && topo.primaries.contains(&i) {
            topo.slots_of.insert(i, ranges);
        }
    }
    topo.members.sort_unstable();
    topo.primaries.sort_unstable();
    for r in topo.replicas_of.values_mut() {
        r.sort_unstable();
    }
    topo
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c3 10.1.1.2:7002@17002 master - 0 1 2 connected 5461-10922
67ed 10.1.1.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [93->-e7d1]
292f 10.1.1.4:7004@17004 slave 67ed 0 1 1 connected
bad line
";

    #[test]
    fn parses_cluster_nodes() {
        let l = parse_nodes(NODES);
        assert_eq!(l.len(), 3);
        assert!(l[1].is_myself() && l[1].is_master());
        assert_eq!(l[1].slots, vec!["0-5460", "[93->-e7d1]"]);
        assert_eq!(l[2].master.as_deref(), Some("67ed"));
        assert_eq!(l[0].client_addr(), "10.1.1.2:7002");
        let t = topology(&l);
        assert_eq!(t["292f"], (false, Some("67ed".into()), vec![]));
    }

    #[test]
    fn slot_ranges_cover_all_slots_once() {
        for m in 1..8 {
            let r = slot_ranges(m);
            assert_eq!(r.first().unwrap().0, 0);
            assert_eq!(r.last().unwrap().1, 16383);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
    }
}
