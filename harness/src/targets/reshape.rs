//! The shape-changing nemeses of Redis Cluster targets, and their repair at the final
//! heal:
//!
//! - `reshard`: a slot range moved from one master to another with the steps of
//!   `redis-cli --cluster reshard` (per slot: SETSLOT IMPORTING on the target,
//!   MIGRATING on the source, GETKEYSINSLOT + MIGRATE in batches of 10, SETSLOT NODE
//!   on the target, the source and the other masters). The fault's start moves the
//!   first half of the slots and half the keys of the next one, leaving it open; its
//!   stop finishes, so the faults in between interrupt a migration half-way.
//! - `member`: a node added (`CLUSTER MEET`, then `CLUSTER REPLICATE` for a replica,
//!   as `redis-cli --cluster add-node`) or removed (`CLUSTER FORGET` on every other
//!   node, then `CLUSTER RESET SOFT`, as `del-node`). Its stop checks that every live
//!   member agrees.
//! - [`repair`]: every node outside the cluster is added back (as a replica), then
//!   every open slot is finished or closed as `redis-cli --cluster fix` does.

use super::form::{parse_nodes, Admin, NodeLine};
use crate::env::process::Node;
use crate::faults::schedule::Fault;
use hearsay_workloads::resp::Value;
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// MIGRATE's own timeout. redis-cli's default is 60 s; a cut-off target would then
/// hold the source (single-threaded, like redis) for a minute.
const MIGRATE_TIMEOUT_MS: u64 = 2000;
/// Keys per MIGRATE (redis-cli's `--cluster-pipeline` default).
const PIPELINE: usize = 10;

async fn cmd(admin: &mut Admin, n: &Node, args: &[&str]) -> Result<Value, String> {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    let limit = Duration::from_millis(MIGRATE_TIMEOUT_MS + 1000);
    match admin.request_within(n.addr(), &a, limit).await {
        Ok(Value::Error(e)) => Err(format!("{}: {}: {e}", n.name, args.join(" "))),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("{}: {}: {e}", n.name, args.join(" "))),
    }
}

async fn myid(admin: &mut Admin, n: &Node) -> Result<String, String> {
    cmd(admin, n, &["CLUSTER", "MYID"])
        .await?
        .as_text()
        .ok_or_else(|| format!("{}: CLUSTER MYID: not text", n.name))
}

async fn view(admin: &mut Admin, n: &Node) -> Option<Vec<NodeLine>> {
    if !n.is_running() {
        return None;
    }
    let v = cmd(admin, n, &["CLUSTER", "NODES"]).await.ok()?;
    Some(parse_nodes(&v.as_text()?))
}

/// The open-slot markers of a node's own line: (migrating slot -> target id,
/// importing slot -> source id).
type Open = (BTreeMap<u16, String>, BTreeMap<u16, String>);

fn open_slots(me: &NodeLine) -> Open {
    let (mut mig, mut imp) = (BTreeMap::new(), BTreeMap::new());
    for s in &me.slots {
        let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) else {
            continue;
        };
        if let Some((slot, id)) = inner.split_once("->-") {
            if let Ok(slot) = slot.parse() {
                mig.insert(slot, id.to_string());
            }
        } else if let Some((slot, id)) = inner.split_once("-<-") {
            if let Ok(slot) = slot.parse() {
                imp.insert(slot, id.to_string());
            }
        }
    }
    (mig, imp)
}

fn owns(me: &NodeLine, slot: u16) -> bool {
    me.slots.iter().filter(|s| !s.starts_with('[')).any(|s| {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
    })
}

/// Moves the keys of `slot` from `src` to `dst` with MIGRATE, at most `limit` keys
/// (all when None); REPLACE when `replace` (the repair, as `fix` does). Returns the
/// keys moved.
async fn move_keys(
    admin: &mut Admin,
    src: &Node,
    dst: &Node,
    slot: u16,
    limit: Option<usize>,
    replace: bool,
) -> Result<Vec<String>, String> {
    let mut moved = Vec::new();
    let (ip, port) = (dst.ip.to_string(), dst.port.to_string());
    let timeout = MIGRATE_TIMEOUT_MS.to_string();
    loop {
        let want = limit.map_or(PIPELINE, |l| l.saturating_sub(moved.len()).min(PIPELINE));
        if want == 0 {
            break;
        }
        let keys: Vec<String> = cmd(
            admin,
            src,
            &[
                "CLUSTER",
                "GETKEYSINSLOT",
                &slot.to_string(),
                &want.to_string(),
            ],
        )
        .await?
        .as_array()
        .map(|a| a.iter().filter_map(|k| k.as_text()).collect())
        .unwrap_or_default();
        if keys.is_empty() {
            break;
        }
        let mut args = vec!["MIGRATE", &ip, &port, "", "0", &timeout];
        if replace {
            args.push("REPLACE");
        }
        args.push("KEYS");
        args.extend(keys.iter().map(String::as_str));
        cmd(admin, src, &args).await?;
        moved.extend(keys);
    }
    Ok(moved)
}

fn count_keys(v: &Value) -> u64 {
    match v {
        Value::Int(n) => (*n).max(0) as u64,
        _ => 0,
    }
}

/// A reshard in progress between a fault's start and stop.
pub struct Reshard {
    from: usize,
    to: usize,
    from_id: String,
    to_id: String,
    slots: Vec<u16>,
    /// Slots fully moved.
    done: usize,
    /// `slots[done]` has its IMPORTING/MIGRATING set.
    open: bool,
}

/// What one half of a reshard did, per slot.
#[derive(Default)]
struct Steps {
    opened: Vec<(u16, u64)>,
    closed: Vec<(u16, u64)>,
    keys: BTreeMap<u16, Vec<String>>,
    errors: Vec<String>,
}

impl Steps {
    fn json(&self, nodes: &[Node], r: &Reshard) -> J {
        let name = |i: usize| nodes.get(i).map_or("?".to_string(), |n| n.name.clone());
        let keys: usize = self.keys.values().map(Vec::len).sum();
        json!({
            "from": name(r.from),
            "to": name(r.to),
            "slots": [r.slots.first(), r.slots.last()],
            "opened": self.opened.iter().map(|(s, t)| json!({"slot": s, "ms": t})).collect::<Vec<_>>(),
            "closed": self.closed.iter().map(|(s, t)| json!({"slot": s, "ms": t})).collect::<Vec<_>>(),
            "moved": self.keys.iter().map(|(s, k)| (s.to_string(), json!(k))).collect::<serde_json::Map<_, _>>(),
            "keys-moved": keys,
            "slots-done": r.done,
            "left-open": r.open.then(|| r.slots.get(r.done)).flatten(),
        })
    }
}

/// The masters (by index) as `n` sees them, for SETSLOT NODE on "the other masters".
async fn masters(admin: &mut Admin, nodes: &[Node], n: &Node) -> Vec<usize> {
    let Some(v) = view(admin, n).await else {
        return vec![];
    };
    v.iter()
        .filter(|l| l.is_master() && !l.failing())
        .filter_map(|l| {
            nodes
                .iter()
                .position(|x| x.addr().to_string() == l.client_addr())
        })
        .collect()
}

impl Reshard {
    /// Resolves the node IDs of a resolved reshard fault.
    pub async fn new(admin: &mut Admin, nodes: &[Node], f: &Fault) -> Result<Reshard, String> {
        let Fault::Reshard {
            slots,
            from: Some(from),
            to: Some(to),
            first: Some(first),
        } = f
        else {
            return Err("the reshard resolved to no source and target".into());
        };
        let (Some(a), Some(b)) = (nodes.get(*from), nodes.get(*to)) else {
            return Err("reshard nodes out of range".into());
        };
        Ok(Reshard {
            from: *from,
            to: *to,
            from_id: myid(admin, a).await?,
            to_id: myid(admin, b).await?,
            slots: (0..*slots).map(|i| first.saturating_add(i)).collect(),
            done: 0,
            open: false,
        })
    }

    /// The first half: half the slots moved, the next one opened with half its keys
    /// moved. Returns (evidence, verified, error).
    pub async fn first_half(
        &mut self,
        admin: &mut Admin,
        nodes: &[Node],
        now_ms: &(dyn Fn() -> u64 + Sync),
    ) -> (J, bool, Option<String>) {
        let until = self.slots.len() / 2;
        self.advance(admin, nodes, until, true, now_ms).await
    }

    /// The rest, from wherever the first half stopped.
    pub async fn finish(
        &mut self,
        admin: &mut Admin,
        nodes: &[Node],
        now_ms: &(dyn Fn() -> u64 + Sync),
    ) -> (J, bool, Option<String>) {
        let until = self.slots.len();
        self.advance(admin, nodes, until, false, now_ms).await
    }

    async fn advance(
        &mut self,
        admin: &mut Admin,
        nodes: &[Node],
        until: usize,
        half_of_next: bool,
        now_ms: &(dyn Fn() -> u64 + Sync),
    ) -> (J, bool, Option<String>) {
        let mut st = Steps::default();
        let r = self
            .steps(admin, nodes, until, half_of_next, now_ms, &mut st)
            .await;
        if let Err(e) = r {
            st.errors.push(e);
        }
        let ev = st.json(nodes, self);
        let err = (!st.errors.is_empty()).then(|| st.errors.join("; "));
        (ev, err.is_none(), err)
    }

    async fn steps(
        &mut self,
        admin: &mut Admin,
        nodes: &[Node],
        until: usize,
        half_of_next: bool,
        now_ms: &(dyn Fn() -> u64 + Sync),
        st: &mut Steps,
    ) -> Result<(), String> {
        let (Some(src), Some(dst)) = (nodes.get(self.from), nodes.get(self.to)) else {
            return Err("reshard nodes out of range".into());
        };
        let others: Vec<usize> = masters(admin, nodes, dst)
            .await
            .into_iter()
            .filter(|i| *i != self.from && *i != self.to)
            .collect();
        while self.done < until.min(self.slots.len()) || (half_of_next && !self.open) {
            let Some(slot) = self.slots.get(self.done).copied() else {
                break;
            };
            let s = slot.to_string();
            if !self.open {
                cmd(
                    admin,
                    dst,
                    &["CLUSTER", "SETSLOT", &s, "IMPORTING", &self.from_id],
                )
                .await?;
                cmd(
                    admin,
                    src,
                    &["CLUSTER", "SETSLOT", &s, "MIGRATING", &self.to_id],
                )
                .await?;
                self.open = true;
                st.opened.push((slot, now_ms()));
            }
            if self.done >= until {
                // The slot left open half-way: half its keys moved.
                let n = count_keys(&cmd(admin, src, &["CLUSTER", "COUNTKEYSINSLOT", &s]).await?);
                let k = move_keys(admin, src, dst, slot, Some((n / 2) as usize), false).await?;
                st.keys.entry(slot).or_default().extend(k);
                break;
            }
            let k = move_keys(admin, src, dst, slot, None, false).await?;
            st.keys.entry(slot).or_default().extend(k);
            cmd(admin, dst, &["CLUSTER", "SETSLOT", &s, "NODE", &self.to_id]).await?;
            cmd(admin, src, &["CLUSTER", "SETSLOT", &s, "NODE", &self.to_id]).await?;
            for o in &others {
                if let Some(n) = nodes.get(*o) {
                    // As redis-cli: a master that cannot be told learns it by gossip.
                    let _ = cmd(admin, n, &["CLUSTER", "SETSLOT", &s, "NODE", &self.to_id]).await;
                }
            }
            self.open = false;
            self.done += 1;
            st.closed.push((slot, now_ms()));
        }
        Ok(())
    }
}

/// Adds or removes the node of a resolved `member` fault. Returns (evidence,
/// verified, error).
pub async fn member_change(
    admin: &mut Admin,
    nodes: &[Node],
    f: &Fault,
) -> (J, bool, Option<String>) {
    let Fault::Member {
        node: Some(x),
        add: Some(add),
        replica_of,
        ..
    } = f
    else {
        return (
            J::Null,
            false,
            Some("the member change resolved to no node".into()),
        );
    };
    let Some(n) = nodes.get(*x).filter(|n| n.is_running()) else {
        return (J::Null, false, Some("the node is not running".into()));
    };
    let r = if *add {
        add_node(admin, nodes, n, replica_of.and_then(|m| nodes.get(m))).await
    } else {
        remove_node(admin, nodes, n).await
    };
    match r {
        Ok(ev) => (ev, true, None),
        Err((ev, e)) => (ev, false, Some(e)),
    }
}

/// A live member other than `n` (one that knows more than itself).
async fn a_member<'a>(admin: &mut Admin, nodes: &'a [Node], n: &Node) -> Option<&'a Node> {
    let mut best: Option<(&Node, usize)> = None;
    for m in nodes
        .iter()
        .filter(|m| m.index != n.index && m.is_running())
    {
        if let Some(v) = view(admin, m).await {
            let known = v
                .iter()
                .filter(|l| !l.flags.iter().any(|f| f == "handshake"))
                .count();
            if known > 1 && best.is_none_or(|(_, k)| known > k) {
                best = Some((m, known));
            }
        }
    }
    best.map(|(m, _)| m)
}

type StepResult = Result<J, (J, String)>;

async fn add_node(
    admin: &mut Admin,
    nodes: &[Node],
    n: &Node,
    master: Option<&Node>,
) -> StepResult {
    let Some(m) = a_member(admin, nodes, n).await else {
        return Err((J::Null, "no live member to meet".into()));
    };
    let mut ev = json!({"node": n.name, "as": master.map_or("master".to_string(), |m| format!("replica of {}", m.name)), "met": m.name});
    cmd(
        admin,
        n,
        &["CLUSTER", "MEET", &m.ip.to_string(), &m.port.to_string()],
    )
    .await
    .map_err(|e| (ev.clone(), e))?;
    let Some(master) = master else {
        return Ok(ev);
    };
    let mid = myid(admin, master).await.map_err(|e| (ev.clone(), e))?;
    // REPLICATE needs the master known: the handshake takes a few bus round trips.
    let t0 = tokio::time::Instant::now();
    loop {
        match cmd(admin, n, &["CLUSTER", "REPLICATE", &mid]).await {
            Ok(_) => break,
            Err(e) if t0.elapsed() > Duration::from_secs(5) => return Err((ev, e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    ev["replicate-after-ms"] = json!(t0.elapsed().as_millis() as u64);
    Ok(ev)
}

async fn remove_node(admin: &mut Admin, nodes: &[Node], n: &Node) -> StepResult {
    let id = myid(admin, n).await.map_err(|e| (J::Null, e))?;
    let mut forget = serde_json::Map::new();
    // Every other node, within one pass (well inside the 60 s blacklist).
    for o in nodes.iter().filter(|o| o.index != n.index) {
        let r = if o.is_running() {
            match cmd(admin, o, &["CLUSTER", "FORGET", &id]).await {
                Ok(_) => "ok".to_string(),
                Err(e) => e,
            }
        } else {
            "not running".to_string()
        };
        forget.insert(o.name.clone(), J::from(r));
    }
    let mut ev = json!({"node": n.name, "id": id, "forget": forget});
    cmd(admin, n, &["CLUSTER", "RESET", "SOFT"])
        .await
        .map_err(|e| (ev.clone(), e))?;
    ev["reset"] = json!("ok");
    Ok(ev)
}

/// The end of a member change: whether every live member agrees on it (knows the
/// added node, or no longer knows the removed one), polled for up to 5 s.
pub async fn member_settled(
    admin: &mut Admin,
    nodes: &[Node],
    f: &Fault,
) -> (J, bool, Option<String>) {
    let Fault::Member {
        node: Some(x),
        add: Some(add),
        ..
    } = f
    else {
        return (
            J::Null,
            false,
            Some("the member change resolved to no node".into()),
        );
    };
    let Some(n) = nodes.get(*x) else {
        return (J::Null, false, Some("node out of range".into()));
    };
    let addr = n.addr().to_string();
    let t0 = tokio::time::Instant::now();
    loop {
        let mut disagree = Vec::new();
        for o in nodes
            .iter()
            .filter(|o| o.index != n.index && o.is_running())
        {
            let Some(v) = view(admin, o).await else {
                continue;
            };
            // Only the cluster's members count (a removed or spare node knows itself).
            if v.len() <= 1 {
                continue;
            }
            let knows = v
                .iter()
                .any(|l| l.client_addr() == addr && !l.flags.iter().any(|f| f == "handshake"));
            if knows != *add {
                disagree.push(o.name.clone());
            }
        }
        if disagree.is_empty() || t0.elapsed() > Duration::from_secs(5) {
            let ok = disagree.is_empty();
            return (
                json!({"node": n.name, "added": add, "disagree": disagree, "ms": t0.elapsed().as_millis() as u64}),
                ok,
                (!ok).then(|| format!("{} still disagree after 5 s", disagree.join(","))),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The final heal's repair: nodes outside the cluster added back as replicas, then
/// every open slot finished or closed as `redis-cli --cluster fix` does (case 1: one
/// node migrating to the one importing: finish the move; case 2: importing only:
/// the keys back to the owner, the slot stable; case 4: migrating only: the keys to
/// the owner, the slot stable). The owner is the node claiming the slot with the
/// highest configEpoch (what the cluster converges to). Returns (evidence, verified,
/// error).
pub async fn repair(admin: &mut Admin, nodes: &[Node]) -> (J, bool, Option<String>) {
    let mut errors = Vec::new();
    let members = repair_members(admin, nodes, &mut errors).await;
    let mut slots = Vec::new();
    for _pass in 0..3 {
        let fixed = repair_slots(admin, nodes, &mut errors).await;
        if fixed.is_empty() {
            break;
        }
        slots.extend(fixed);
        // Let the SETSLOTs spread before looking again.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ok = errors.is_empty();
    (
        json!({"members": members, "slots": slots}),
        ok,
        (!ok).then(|| errors.join("; ")),
    )
}

async fn repair_members(admin: &mut Admin, nodes: &[Node], errors: &mut Vec<String>) -> J {
    let mut views = Vec::new();
    for n in nodes {
        if let Some(v) = view(admin, n).await {
            views.push((n.index, v));
        }
    }
    let known = |v: &Vec<NodeLine>| {
        v.iter()
            .filter(|l| !l.flags.iter().any(|f| f == "handshake" || f == "noaddr"))
            .map(|l| l.client_addr().to_string())
            .collect::<BTreeSet<String>>()
    };
    let Some((ref_i, ref_view)) = views.iter().max_by_key(|(_, v)| known(v).len()).cloned() else {
        errors.push("no node answered CLUSTER NODES".into());
        return J::Null;
    };
    let Some(ref_node) = nodes.get(ref_i) else {
        return J::Null;
    };
    let members = known(&ref_view);
    let mut done = Vec::new();
    for (i, v) in &views {
        let Some(n) = nodes.get(*i) else { continue };
        let outside = !members.contains(&n.addr().to_string());
        if !outside && known(v) == members {
            continue;
        }
        if let Err(e) = cmd(
            admin,
            n,
            &[
                "CLUSTER",
                "MEET",
                &ref_node.ip.to_string(),
                &ref_node.port.to_string(),
            ],
        )
        .await
        {
            errors.push(e);
            continue;
        }
        let mut role = "met".to_string();
        // A node the cluster did not know joins as a replica of the master with the
        // fewest replicas (redis-cli add-node --cluster-slave's choice).
        if outside && v.len() <= 1 {
            let mut replicas: BTreeMap<&str, usize> = ref_view
                .iter()
                .filter(|l| l.is_master() && l.slots.iter().any(|s| !s.starts_with('[')))
                .map(|l| (l.id.as_str(), 0))
                .collect();
            for l in &ref_view {
                if let Some(m) = l.master.as_deref() {
                    if let Some(c) = replicas.get_mut(m) {
                        *c += 1;
                    }
                }
            }
            if let Some((mid, _)) = replicas.iter().min_by_key(|(_, c)| **c) {
                let mid = mid.to_string();
                let t0 = tokio::time::Instant::now();
                loop {
                    match cmd(admin, n, &["CLUSTER", "REPLICATE", &mid]).await {
                        Ok(_) => {
                            role = format!("replica of {}", name_of(nodes, &ref_view, &mid));
                            break;
                        }
                        Err(e) if t0.elapsed() > Duration::from_secs(10) => {
                            errors.push(e);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        }
        done.push(json!({"node": n.name, "outside": outside, "now": role}));
    }
    // Membership spreads by gossip: wait (bounded) until every live node knows all.
    let t0 = tokio::time::Instant::now();
    let want = nodes.iter().filter(|n| n.is_running()).count();
    let mut agreed = false;
    while t0.elapsed() < Duration::from_secs(15) {
        let mut sets = BTreeSet::new();
        let mut all = true;
        for n in nodes.iter().filter(|n| n.is_running()) {
            match view(admin, n).await {
                Some(v) => {
                    let k = known(&v);
                    all &= k.len() >= want;
                    sets.insert(k);
                }
                None => all = false,
            }
        }
        if all && sets.len() == 1 {
            agreed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !agreed {
        errors.push("the live nodes did not agree on the members within 15 s".into());
    }
    json!({"changed": done, "agreed": agreed, "ms": t0.elapsed().as_millis() as u64})
}

fn name_of(nodes: &[Node], view: &[NodeLine], id: &str) -> String {
    view.iter()
        .find(|l| l.id == id)
        .and_then(|l| {
            nodes
                .iter()
                .find(|n| n.addr().to_string() == l.client_addr())
        })
        .map_or_else(|| id.to_string(), |n| n.name.clone())
}

/// One master's own line: (node index, line, its open slots).
struct Master {
    i: usize,
    me: NodeLine,
    epoch: u64,
    open: Open,
}

async fn repair_slots(admin: &mut Admin, nodes: &[Node], errors: &mut Vec<String>) -> Vec<J> {
    let mut masters = Vec::new();
    for n in nodes {
        let Some(v) = view(admin, n).await else {
            continue;
        };
        let Some(me) = v.into_iter().find(|l| l.is_myself()) else {
            continue;
        };
        if !me.is_master() {
            continue;
        }
        let epoch = config_epoch(admin, n).await;
        masters.push(Master {
            i: n.index,
            open: open_slots(&me),
            me,
            epoch,
        });
    }
    let open: BTreeSet<u16> = masters
        .iter()
        .flat_map(|m| m.open.0.keys().chain(m.open.1.keys()).copied())
        .collect();
    let mut out = Vec::new();
    for slot in open {
        match fix_slot(admin, nodes, &masters, slot).await {
            Ok(ev) => out.push(ev),
            Err((ev, e)) => {
                errors.push(e);
                out.push(ev);
            }
        }
    }
    out
}

/// A node's configEpoch from its own CLUSTER NODES line (field 7).
async fn config_epoch(admin: &mut Admin, n: &Node) -> u64 {
    let Ok(v) = cmd(admin, n, &["CLUSTER", "NODES"]).await else {
        return 0;
    };
    v.as_text()
        .and_then(|t| {
            t.lines()
                .find(|l| l.contains("myself"))
                .and_then(|l| l.split_whitespace().nth(6))
                .and_then(|e| e.parse().ok())
        })
        .unwrap_or(0)
}

async fn fix_slot(admin: &mut Admin, nodes: &[Node], masters: &[Master], slot: u16) -> StepResult {
    let s = slot.to_string();
    let node = |i: usize| nodes.get(i);
    let mig: Vec<&Master> = masters
        .iter()
        .filter(|m| m.open.0.contains_key(&slot))
        .collect();
    let imp: Vec<&Master> = masters
        .iter()
        .filter(|m| m.open.1.contains_key(&slot))
        .collect();
    let mut keys = BTreeMap::new();
    for m in &mig.iter().chain(imp.iter()).copied().collect::<Vec<_>>() {
        if let Some(n) = node(m.i) {
            let c = cmd(admin, n, &["CLUSTER", "COUNTKEYSINSLOT", &s])
                .await
                .map(|v| count_keys(&v))
                .unwrap_or(0);
            keys.insert(m.i, c);
        }
    }
    let owner = masters
        .iter()
        .filter(|m| owns(&m.me, slot))
        .max_by_key(|m| m.epoch)
        .or_else(|| {
            mig.iter()
                .chain(imp.iter())
                .max_by_key(|m| keys.get(&m.i).copied().unwrap_or(0))
                .copied()
        });
    let names = |v: &[&Master]| {
        v.iter()
            .filter_map(|m| node(m.i).map(|n| n.name.clone()))
            .collect::<Vec<_>>()
    };
    let Some(owner) = owner else {
        return Err((
            json!({"slot": slot}),
            format!("slot {slot}: no owner to fix it to"),
        ));
    };
    let Some(own) = node(owner.i) else {
        return Err((json!({"slot": slot}), "owner out of range".into()));
    };
    let mut ev = json!({"slot": slot, "owner": own.name, "migrating": names(&mig), "importing": names(&imp)});
    let mut moved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let step = |e: String, ev: &J| (ev.clone(), e);
    // Case 1: one node migrating to the one importing: finish the move.
    let finish = match (mig.as_slice(), imp.as_slice()) {
        ([m], [i]) if m.open.0.get(&slot) == Some(&i.me.id) => Some((m, i)),
        _ => None,
    };
    if let Some((m, i)) = finish {
        let (Some(src), Some(dst)) = (node(m.i), node(i.i)) else {
            return Err((ev, "nodes out of range".into()));
        };
        let k = move_keys(admin, src, dst, slot, None, true)
            .await
            .map_err(|e| step(e, &ev))?;
        moved.insert(src.name.clone(), k);
        let dst_id = i.me.id.clone();
        cmd(admin, dst, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id])
            .await
            .map_err(|e| step(e, &ev))?;
        cmd(admin, src, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id])
            .await
            .map_err(|e| step(e, &ev))?;
        for o in masters.iter().filter(|o| o.i != m.i && o.i != i.i) {
            if let Some(n) = node(o.i) {
                let _ = cmd(admin, n, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).await;
            }
        }
        ev["action"] = json!(format!("finished the move to {}", dst.name));
    } else {
        // Cases 2 and 4 (and more nodes open than redis-cli handles): every open
        // node's keys to the owner, then the slot stable everywhere.
        for m in mig.iter().chain(imp.iter()).filter(|m| m.i != owner.i) {
            let Some(src) = node(m.i) else { continue };
            if keys.get(&m.i).copied().unwrap_or(0) > 0 {
                let k = move_keys(admin, src, own, slot, None, true)
                    .await
                    .map_err(|e| step(e, &ev))?;
                moved.insert(src.name.clone(), k);
            }
        }
        for m in mig.iter().chain(imp.iter()) {
            if let Some(n) = node(m.i) {
                cmd(admin, n, &["CLUSTER", "SETSLOT", &s, "STABLE"])
                    .await
                    .map_err(|e| step(e, &ev))?;
            }
        }
        if !owns(&owner.me, slot) {
            cmd(
                admin,
                own,
                &["CLUSTER", "SETSLOT", &s, "NODE", &owner.me.id],
            )
            .await
            .map_err(|e| step(e, &ev))?;
        }
        ev["action"] = json!(format!("closed, keys to {}", own.name));
    }
    ev["moved"] = json!(moved);
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_slot_markers_parse() {
        let l = parse_nodes("67ed 10.1.1.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [93->-e7d1] [6000-<-07c3]\n");
        let (m, i) = open_slots(&l[0]);
        assert_eq!(m.get(&93).map(String::as_str), Some("e7d1"));
        assert_eq!(i.get(&6000).map(String::as_str), Some("07c3"));
        assert!(owns(&l[0], 93) && owns(&l[0], 0) && !owns(&l[0], 6000));
    }
}
