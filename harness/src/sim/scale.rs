//! The simulator as a `hearsay scale` target: the same steps as a measured
//! cluster (form with every node meeting the first, settle, an idle window,
//! stop a master, cut another off and heal), on the cores in simulated time.
//! The caller (`cli/scale.rs`) turns the figures into a row and reads the
//! failure chain from the event lines with the same code as for real nodes.
//!
//! Bytes are modelled, not counted on a link: each message's encoded length
//! plus 66 bytes of Ethernet, IPv4 and TCP (with timestamps) headers, one
//! packet per message (the veth counts GSO packets), plus a bare 66-byte ACK
//! for every message received. That is what the veth counters of real
//! clusters show: packets are twice the messages and bytes within 1 % of the
//! model at 6 and 30 nodes (hearsay-node and redis-server alike).

use super::world::World;
use hearsay_node::cluster::ClusterConfig;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Ethernet (14) + IPv4 (20) + TCP with the timestamp option (32).
const HEADERS: u64 = 66;

/// One point of the curve.
#[derive(Clone, Debug)]
pub struct ScalePoint {
    pub nodes: usize,
    pub replicas: usize,
    pub node_timeout_ms: u64,
    pub seed: u64,
    pub gossip_divisor: u64,
    pub ping_age_divisor: u64,
    pub settle_s: u64,
    pub window_s: u64,
    pub form_only: bool,
    pub failover_only: bool,
    pub skip_partition: bool,
}

/// What the simulation measured; times in simulated ms.
#[derive(Clone, Debug, Default)]
pub struct ScaleFigures {
    pub form_ms: Option<f64>,
    pub msgs_per_node_s: Option<f64>,
    pub bytes_per_node_s: Option<f64>,
    pub packets_per_node_s: Option<f64>,
    pub msgs_by_type_per_node_s: BTreeMap<String, f64>,
    /// The simulator's resident memory grown per simulated node (KB), once formed.
    pub kb_per_node: Option<f64>,
    /// The stopped master's failure: event lines of every node from the stop on
    /// (observer index, line), the stop's wall ms, the victim's ID, live nodes.
    pub chain_events: Vec<(usize, Value)>,
    pub stop_wall_ms: f64,
    pub victim: String,
    pub live: usize,
    pub heal_agree_ms: Option<f64>,
    pub notes: Vec<String>,
    pub sim_secs: f64,
    pub cpu_secs: f64,
}

fn cfgs(p: &ScalePoint) -> Vec<ClusterConfig> {
    (0..p.nodes)
        .map(|_| ClusterConfig {
            gossip_divisor: p.gossip_divisor,
            ping_age_divisor: p.ping_age_divisor,
            ..super::node_cfg(p.node_timeout_ms)
        })
        .collect()
}

/// The event lines each node writes from a byte offset on, read as they come
/// (each poll parses only what was written since the last).
struct EventTail {
    offsets: Vec<usize>,
    events: Vec<(usize, Value)>,
}

impl EventTail {
    fn from_now(w: &World) -> EventTail {
        EventTail {
            offsets: w.nodes.iter().map(|nd| nd.events.len()).collect(),
            events: Vec::new(),
        }
    }

    fn read(&mut self, w: &World) -> &[(usize, Value)] {
        for (i, nd) in w.nodes.iter().enumerate() {
            let from = self.offsets[i];
            // Only whole lines: a partial one is read next time.
            let Some(end) = nd.events[from..].iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            for line in nd.events[from..from + end].split(|b| *b == b'\n') {
                if let Ok(v) = serde_json::from_slice::<Value>(line) {
                    self.events.push((i, v));
                }
            }
            self.offsets[i] = from + end + 1;
        }
        &self.events
    }
}

/// Whether every live node knows `about` FAIL and, with a replica, one was
/// promoted (the same end as the real measurement's).
fn chain_done(events: &[(usize, Value)], about: &str, live: usize, want_promotion: bool) -> bool {
    let mut known = BTreeSet::new();
    let mut promoted = false;
    for (i, ev) in events {
        let subject = ev["node"].as_str().or_else(|| ev["about"].as_str());
        match ev["event"].as_str().unwrap_or("") {
            "fail_marked" | "fail_received" if subject == Some(about) => {
                known.insert(*i);
            }
            "role_changed" if ev["role"] == "master" && ev["previous"] == "replica" => {
                promoted = true;
            }
            _ => {}
        }
    }
    known.len() >= live && (!want_promotion || promoted)
}

/// Each node's CLUSTER INFO counters as `cluster_stats_messages_<name>`.
fn bus_counters(w: &mut World) -> Vec<BTreeMap<String, u64>> {
    (0..w.n())
        .map(|i| {
            let text = match w.cluster_cmd(i, &["INFO"]) {
                hearsay_node::resp::Frame::Verbatim(t) => t,
                hearsay_node::resp::Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                _ => String::new(),
            };
            let v = crate::targets::cluster::parse_bus_counters(&text);
            let mut out = BTreeMap::new();
            for k in ["sent", "received"] {
                if let Some(n) = v[k].as_u64() {
                    out.insert(format!("cluster_stats_messages_{k}"), n);
                }
            }
            for (k, n) in v["by_type"].as_object().into_iter().flatten() {
                if let Some(n) = n.as_u64() {
                    out.insert(format!("cluster_stats_messages_{k}"), n);
                }
            }
            out
        })
        .collect()
}

/// Runs one point. Deterministic for a seed (the simulator's own rule).
pub fn measure(p: &ScalePoint) -> Result<ScaleFigures, String> {
    let cpu0 = crate::thread_cpu_secs();
    let rss0 = crate::rss_kb();
    let mut f = ScaleFigures::default();
    let mut w = World::new(p.seed, cfgs(p));
    let masters = (p.nodes / (p.replicas + 1)).max(1);
    let form_ms = super::form_cluster_with(&mut w, p.replicas, true, true)
        .map_err(|e| format!("sim formation: {e}"))?;
    f.form_ms = Some(form_ms as f64);
    f.kb_per_node = Some(crate::rss_kb().saturating_sub(rss0) as f64 / p.nodes.max(1) as f64);
    let nt = p.node_timeout_ms;
    let step = 100_000;
    if p.form_only {
        return Ok(finish(f, &w, cpu0));
    }

    if !p.failover_only {
        let t = w.now + p.settle_s * 1_000_000;
        w.run_until(t);
        let c0 = bus_counters(&mut w);
        w.count_bus = true;
        w.bus_sent.iter_mut().for_each(|s| *s = (0, 0));
        let t = w.now + p.window_s * 1_000_000;
        w.run_until(t);
        w.count_bus = false;
        let c1 = bus_counters(&mut w);
        let secs = p.window_s.max(1) as f64;
        let n = p.nodes.max(1) as f64;
        let (mut msgs, mut bytes, mut pkts) = (0.0, 0.0, 0.0);
        for (i, (sent, sent_bytes)) in w.bus_sent.iter().enumerate() {
            let delta = |k: &str| {
                let a = c0.get(i).and_then(|c| c.get(k)).copied().unwrap_or(0);
                let b = c1.get(i).and_then(|c| c.get(k)).copied().unwrap_or(0);
                b.saturating_sub(a)
            };
            let acks = delta("cluster_stats_messages_received");
            msgs += *sent as f64;
            bytes += (*sent_bytes + (*sent + acks) * HEADERS) as f64;
            pkts += (*sent + acks) as f64;
            for (k, v) in c1.get(i).into_iter().flatten() {
                if let Some(kind) = k
                    .strip_prefix("cluster_stats_messages_")
                    .filter(|k| k.ends_with("_sent") && *k != "sent")
                {
                    let d = v.saturating_sub(c0[i].get(k).copied().unwrap_or(0)) as f64;
                    *f.msgs_by_type_per_node_s
                        .entry(kind.to_string())
                        .or_insert(0.0) += d / secs / n;
                }
            }
        }
        f.msgs_by_type_per_node_s.retain(|_, v| *v > 0.0);
        f.msgs_per_node_s = Some(msgs / secs / n);
        f.bytes_per_node_s = Some(bytes / secs / n);
        f.packets_per_node_s = Some(pkts / secs / n);
    }

    // The failure chain: the last master stops (SIGSTOP).
    let victim = masters - 1;
    let has_replica = p.replicas > 0 && p.nodes > masters;
    let ids: Vec<String> = (0..p.nodes)
        .map(|i| w.nodes[i].core.myself().to_string())
        .collect();
    f.victim = ids[victim].clone();
    f.live = p.nodes - 1;
    let limit = (nt * 6 + 10_000) * 1000;
    let mut tail = EventTail::from_now(&w);
    f.stop_wall_ms = w.nodes[0].clock(w.now) as f64;
    w.pause(victim);
    let about = f.victim.clone();
    let live = f.live;
    let done = w.run_while(step, limit, |w| {
        chain_done(tail.read(w), &about, live, has_replica)
    });
    f.chain_events = tail.read(&w).to_vec();
    if done.is_none() {
        f.notes.push(format!(
            "the failure chain did not end within {} simulated s",
            limit / 1_000_000
        ));
    }
    w.resume(victim);

    if !p.failover_only && !p.skip_partition && masters >= 2 {
        let agree_limit = (nt * 4 + 30_000) * 1000;
        if w.run_while(step, agree_limit, |w| super::agreed(w).is_ok())
            .is_none()
        {
            f.notes
                .push("no agreement after the stopped master resumed".to_string());
            return Ok(finish(f, &w, cpu0));
        }
        let cut = masters - 2;
        let others: Vec<usize> = (0..p.nodes).filter(|i| *i != cut).collect();
        let mut grudge: BTreeMap<usize, Vec<usize>> =
            others.iter().map(|o| (*o, vec![cut])).collect();
        grudge.insert(cut, others);
        let mut tail = EventTail::from_now(&w);
        w.set_grudge(&grudge);
        let about = ids[cut].clone();
        if w.run_while(step, limit, |w| {
            chain_done(tail.read(w), &about, live, has_replica)
        })
        .is_none()
        {
            f.notes
                .push("partition: FAIL not known by every node before the heal".to_string());
        }
        w.set_grudge(&BTreeMap::new());
        let healed = w.now;
        match w.run_while(step, agree_limit, |w| super::agreed(w).is_ok()) {
            Some(_) => f.heal_agree_ms = Some((w.now - healed) as f64 / 1000.0),
            None => f.notes.push("no agreement after the heal".to_string()),
        }
    }
    Ok(finish(f, &w, cpu0))
}

fn finish(mut f: ScaleFigures, w: &World, cpu0: f64) -> ScaleFigures {
    f.sim_secs = w.now as f64 / 1e6;
    f.cpu_secs = crate::thread_cpu_secs() - cpu0;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_cluster_gives_every_figure() {
        let p = ScalePoint {
            nodes: 6,
            replicas: 1,
            node_timeout_ms: 1000,
            seed: 1,
            gossip_divisor: 10,
            ping_age_divisor: 2,
            settle_s: 1,
            window_s: 5,
            form_only: false,
            failover_only: false,
            skip_partition: false,
        };
        let f = measure(&p).expect("measure");
        assert!(f.form_ms.is_some());
        let msgs = f.msgs_per_node_s.expect("msgs");
        assert!(msgs > 1.0 && msgs < 20.0, "{msgs}");
        let bytes = f.bytes_per_node_s.expect("bytes");
        // A PING with 3 gossip entries is 2256 + 3 x 104 bytes.
        assert!(bytes > msgs * 2500.0, "{bytes} for {msgs} msgs/s");
        assert!(f
            .chain_events
            .iter()
            .any(|(_, e)| e["event"] == "fail_marked"));
        assert!(f.heal_agree_ms.is_some(), "{:?}", f.notes);
        // Every message received is ACKed: about twice the packets.
        let pkts = f.packets_per_node_s.expect("packets");
        assert!(pkts > msgs * 1.5, "{pkts} packets for {msgs} messages");
        assert!(f.msgs_by_type_per_node_s.contains_key("ping_sent"));
        // The same seed, the same figures.
        let g = measure(&p).expect("measure");
        assert_eq!(f.bytes_per_node_s, g.bytes_per_node_s);
        assert_eq!(f.heal_agree_ms, g.heal_agree_ms);
    }
}
