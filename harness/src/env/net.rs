//! The run's network: one namespace per node, a veth each to one bridge, a private
//! /24 that exists only on the bridge and inside the namespaces. Faults are nft rules
//! in one `bridge`-family table on that bridge (forward hook), the single control
//! point: node-to-node traffic crosses it, while the harness's clients (root
//! namespace, bridge address) do not, as in Jepsen where the control node stays
//! connected.

use crate::env::registry::{NftTable, Registry};
use crate::env::sys::{self, SysError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Network errors.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network setup: {0}")]
    Sys(#[from] SysError),
    #[error("network registry: {0}")]
    Registry(#[from] crate::env::registry::RegistryError),
    #[error("no free 10.x.y.0/24 subnet found")]
    NoSubnet,
}

/// One node's place in the network.
#[derive(Clone, Debug, Serialize)]
pub struct NodeNet {
    pub ns: String,
    pub veth: String,
    pub ip: Ipv4Addr,
}

/// The built network.
#[derive(Clone, Debug, Serialize)]
pub struct Network {
    pub prefix: String,
    pub bridge: String,
    pub bridge_ip: Ipv4Addr,
    pub nodes: Vec<NodeNet>,
    pub table: String,
    /// Milliseconds the build took.
    pub build_ms: u64,
}

/// Who refuses traffic from whom: `grudge[a]` = nodes whose packets `a` never receives.
pub type Grudge = BTreeMap<usize, Vec<usize>>;

fn subnet_in_use(a: u8, b: u8) -> bool {
    let probe = format!("10.{a}.{b}.");
    let addrs = sys::run("ip", &["-4", "-o", "addr", "show"], None).unwrap_or_default();
    let routes = sys::run("ip", &["-4", "route", "show"], None).unwrap_or_default();
    addrs.contains(&probe) || routes.contains(&probe) || routes.contains(&format!("10.{a}.0.0/16"))
}

impl Network {
    /// Builds the network for `n` nodes, registering each resource before creating it.
    pub fn create(reg: &Registry, n: usize) -> Result<Network, NetError> {
        Network::build(reg, n, false)
    }

    /// [`Network::create`] with fixed MAC addresses and permanent neighbour entries
    /// for every node (and the bridge) in every namespace, and for every node on the
    /// bridge. With a hundred namespaces or more, ARP resolution becomes the
    /// bottleneck: the kernel's neighbour table is shared by all namespaces and
    /// garbage-collects dynamic entries above `gc_thresh3` (1024 by default), so
    /// resolutions stall and fail at random. Permanent entries are never collected
    /// and need no ARP at all.
    pub fn create_static(reg: &Registry, n: usize) -> Result<Network, NetError> {
        Network::build(reg, n, true)
    }

    /// MAC of node `i`'s `eth0` (locally administered, unicast; unique per subnet).
    fn node_mac(ip: Ipv4Addr) -> String {
        let [_, a, b, i] = ip.octets();
        format!("02:48:{a:02x}:{b:02x}:00:{i:02x}")
    }

    fn build(reg: &Registry, n: usize, static_neigh: bool) -> Result<Network, NetError> {
        let t0 = Instant::now();
        let prefix = reg.prefix();
        // The hex part of a run prefix, or (`hsscale?`) a hash of its bytes.
        let seed = u32::from_str_radix(prefix.get(2..).unwrap_or("0"), 16).unwrap_or_else(|_| {
            prefix.bytes().fold(2166136261u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(16777619)
            })
        });
        // 10.(100..227).(0..255): derived from the prefix, skipping subnets in use.
        let (mut a, mut b) = (100 + (seed % 128) as u8, ((seed >> 7) % 256) as u8);
        let mut tries = 0;
        while subnet_in_use(a, b) {
            tries += 1;
            if tries > 64 {
                return Err(NetError::NoSubnet);
            }
            b = b.wrapping_add(1);
            a = 100 + ((a as u32 - 100 + 1) % 128) as u8;
        }
        let bridge = format!("{prefix}-br");
        let bridge_ip = Ipv4Addr::new(10, a, b, 254);
        let nodes: Vec<NodeNet> = (0..n)
            .map(|i| NodeNet {
                ns: format!("{prefix}-n{}", i + 1),
                veth: format!("{prefix}-v{}", i + 1),
                ip: Ipv4Addr::new(10, a, b, (i + 1) as u8),
            })
            .collect();
        reg.add_link(&bridge)?;
        for nd in &nodes {
            reg.add_netns(&nd.ns)?;
            reg.add_link(&nd.veth)?;
        }
        let table = prefix.clone();
        reg.add_nft(NftTable {
            family: "bridge".into(),
            name: table.clone(),
            netns: None,
        })?;
        // Root-namespace part in one `ip -batch` (one fork instead of ~4n).
        let mut batch = format!(
            "link add {bridge} type bridge\nlink set {bridge} up\naddr add {bridge_ip}/24 dev {bridge}\n"
        );
        for nd in &nodes {
            batch.push_str(&format!(
                "netns add {ns}\nlink add {v} type veth peer name eth0 netns {ns}\nlink set {v} master {bridge} up\n",
                ns = nd.ns,
                v = nd.veth
            ));
        }
        if static_neigh {
            // A bridge takes its ports' lowest MAC unless told one: fix it.
            batch.push_str(&format!(
                "link set {bridge} address {}\n",
                Network::node_mac(bridge_ip)
            ));
            for nd in &nodes {
                batch.push_str(&format!(
                    "neigh replace {} lladdr {} dev {bridge} nud permanent\n",
                    nd.ip,
                    Network::node_mac(nd.ip)
                ));
            }
        }
        sys::run("ip", &["-batch", "-"], Some(&batch))?;
        for nd in &nodes {
            let mut inner = format!("addr add {}/24 dev eth0\n", nd.ip);
            if static_neigh {
                inner.push_str(&format!(
                    "link set eth0 address {}\nlink set eth0 up\nlink set lo up\n",
                    Network::node_mac(nd.ip)
                ));
                let peers = nodes.iter().map(|o| o.ip).chain([bridge_ip]);
                for ip in peers.filter(|ip| *ip != nd.ip) {
                    inner.push_str(&format!(
                        "neigh replace {ip} lladdr {} dev eth0 nud permanent\n",
                        Network::node_mac(ip)
                    ));
                }
            } else {
                inner.push_str("link set eth0 up\nlink set lo up\n");
            }
            sys::run("ip", &["-n", &nd.ns, "-batch", "-"], Some(&inner))?;
        }
        let script = format!(
            "add table bridge {table}\n\
             add chain bridge {table} part {{ type filter hook forward priority -10 ; policy accept ; }}\n\
             add chain bridge {table} loss {{ type filter hook forward priority -5 ; policy accept ; }}\n"
        );
        sys::run("nft", &["-f", "-"], Some(&script))?;
        Ok(Network {
            prefix,
            bridge,
            bridge_ip,
            nodes,
            table,
            build_ms: t0.elapsed().as_millis() as u64,
        })
    }

    fn veth(&self, i: usize) -> Option<&str> {
        self.nodes.get(i).map(|n| n.veth.as_str())
    }

    /// Replaces the partition rules with `grudge` (atomically, one nft transaction).
    pub async fn apply_grudge(&self, grudge: &Grudge) -> Result<usize, NetError> {
        let t = &self.table;
        let mut script = format!("flush chain bridge {t} part\n");
        let mut rules = 0;
        for (dst, srcs) in grudge {
            for src in srcs {
                if let (Some(vs), Some(vd)) = (self.veth(*src), self.veth(*dst)) {
                    script.push_str(&format!(
                        "add rule bridge {t} part iifname {vs} oifname {vd} counter drop\n"
                    ));
                    rules += 1;
                }
            }
        }
        sys::run_async("nft", &["-f", "-"], Some(&script)).await?;
        Ok(rules)
    }

    /// Removes every partition rule.
    pub async fn heal_partitions(&self) -> Result<(), NetError> {
        let t = &self.table;
        sys::run_async("nft", &["flush", "chain", "bridge", t, "part"], None).await?;
        Ok(())
    }

    /// Random loss of `pct` percent on every packet to or from the given nodes.
    pub async fn set_loss(&self, nodes: &[usize], pct: u32) -> Result<(), NetError> {
        let t = &self.table;
        let mut script = format!("flush chain bridge {t} loss\n");
        for i in nodes {
            if let Some(v) = self.veth(*i) {
                for dir in ["iifname", "oifname"] {
                    script.push_str(&format!(
                        "add rule bridge {t} loss {dir} {v} numgen random mod 100 < {pct} counter drop\n"
                    ));
                }
            }
        }
        sys::run_async("nft", &["-f", "-"], Some(&script)).await?;
        Ok(())
    }

    /// Sum of the packet counters in a chain (evidence that rules matched traffic).
    pub async fn chain_drops(&self, chain: &str) -> Result<u64, NetError> {
        let out = sys::run_async(
            "nft",
            &["list", "chain", "bridge", &self.table, chain],
            None,
        )
        .await?;
        Ok(out
            .split("counter packets ")
            .skip(1)
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum())
    }

    pub async fn clear_loss(&self) -> Result<(), NetError> {
        let t = &self.table;
        sys::run_async("nft", &["flush", "chain", "bridge", t, "loss"], None).await?;
        Ok(())
    }
}

/// Result of a TCP connect probe from inside a namespace.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Probe {
    Connected { ms: f64 },
    Refused,
    Timeout,
    Error { error: String },
}

impl Probe {
    /// Something answered (a SYN-ACK or a RST): the path is open.
    pub fn reachable(&self) -> bool {
        matches!(self, Probe::Connected { .. } | Probe::Refused)
    }
}

fn probe_blocking(ns: &str, addr: SocketAddr, timeout: Duration) -> Probe {
    let f = match std::fs::File::open(format!("/run/netns/{ns}")) {
        Ok(f) => f,
        Err(e) => {
            return Probe::Error {
                error: format!("open netns {ns}: {e}"),
            }
        }
    };
    // This is a fresh thread that exits after the probe, so its namespace switch
    // never leaks to other work.
    // SAFETY: setns on the calling thread with a valid open fd.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Probe::Error {
            error: format!("setns {ns}: {}", std::io::Error::last_os_error()),
        };
    }
    let t0 = Instant::now();
    match std::net::TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => Probe::Connected {
            ms: (t0.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        },
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        Err(e)
            if e.kind() == std::io::ErrorKind::TimedOut
                || e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            Probe::Timeout
        }
        Err(e) => Probe::Error {
            error: e.to_string(),
        },
    }
}

/// TCP connect from inside namespace `ns` to `addr`, on a dedicated thread.
pub async fn probe(ns: &str, addr: SocketAddr, timeout: Duration) -> Probe {
    let ns = ns.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("netns-probe".into())
        .spawn(move || {
            let _ = tx.send(probe_blocking(&ns, addr, timeout));
        });
    if let Err(e) = spawned {
        return Probe::Error {
            error: format!("spawn probe thread: {e}"),
        };
    }
    rx.await.unwrap_or(Probe::Error {
        error: "probe thread died".into(),
    })
}

/// Grudge builders (Jepsen's `complete-grudge`, `bridge`, `majorities-ring`).
pub mod grudge {
    use super::Grudge;

    /// Every component refuses traffic from every other component.
    pub fn complete(components: &[Vec<usize>]) -> Grudge {
        let mut g = Grudge::new();
        for (i, comp) in components.iter().enumerate() {
            let others: Vec<usize> = components
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, c)| c.iter().copied())
                .collect();
            for n in comp {
                if !others.is_empty() {
                    g.insert(*n, others.clone());
                }
            }
        }
        g
    }

    /// Two halves that cannot talk, plus the node `order[len/2]` that talks to both.
    pub fn bridge(order: &[usize]) -> Grudge {
        let mid = order.len() / 2;
        let (a, rest) = order.split_at(mid);
        let b = rest.get(1..).unwrap_or(&[]);
        let mut g = complete(&[a.to_vec(), b.to_vec()]);
        g.retain(|_, v| !v.is_empty());
        g
    }

    /// Every node sees a majority, but no two nodes the same majority: node at ring
    /// position i talks only to the `n/2` nearest ring neighbours.
    pub fn majorities_ring(order: &[usize]) -> Grudge {
        let n = order.len();
        let reach = n / 2; // itself plus n/2 neighbours (half each side) is a majority
        let mut g = Grudge::new();
        for (pos, node) in order.iter().enumerate() {
            let mut visible = vec![*node];
            for d in 1..=reach.div_ceil(2) {
                visible.push(order[(pos + d) % n]);
                visible.push(order[(pos + n - d) % n]);
            }
            let refused: Vec<usize> = order
                .iter()
                .copied()
                .filter(|x| !visible.contains(x))
                .collect();
            if !refused.is_empty() {
                g.insert(*node, refused);
            }
        }
        g
    }

    /// One-way: `to` nodes drop everything coming from `from` nodes (not vice versa).
    pub fn one_way(from: &[usize], to: &[usize]) -> Grudge {
        to.iter().map(|t| (*t, from.to_vec())).collect()
    }

    /// The pairs (a receives nothing from b).
    pub fn cut_pairs(g: &Grudge) -> Vec<(usize, usize)> {
        g.iter()
            .flat_map(|(a, bs)| bs.iter().map(move |b| (*a, *b)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::grudge::*;

    #[test]
    fn complete_grudge_is_symmetric_between_components() {
        let g = complete(&[vec![0, 1], vec![2, 3, 4]]);
        assert_eq!(g[&0], vec![2, 3, 4]);
        assert_eq!(g[&4], vec![0, 1]);
        assert_eq!(cut_pairs(&g).len(), 12);
    }

    #[test]
    fn bridge_node_talks_to_both_sides() {
        let g = bridge(&[0, 1, 2, 3, 4]);
        assert!(!g.contains_key(&2));
        assert_eq!(g[&0], vec![3, 4]);
        assert!(g.values().all(|v| !v.contains(&2)));
    }

    #[test]
    fn majorities_ring_gives_everyone_a_distinct_majority() {
        let order = [0, 1, 2, 3, 4];
        let g = majorities_ring(&order);
        let mut views = Vec::new();
        for n in order {
            let refused = g.get(&n).cloned().unwrap_or_default();
            let visible: Vec<usize> = order
                .iter()
                .copied()
                .filter(|x| !refused.contains(x))
                .collect();
            assert!(visible.len() * 2 > order.len(), "{n} sees {visible:?}");
            views.push(visible);
        }
        views.sort();
        views.dedup();
        assert_eq!(views.len(), 5);
    }

    #[test]
    fn one_way_only_blocks_one_direction() {
        let g = one_way(&[0], &[1, 2]);
        assert_eq!(cut_pairs(&g), vec![(1, 0), (2, 0)]);
    }
}
