//! A cluster-aware client with its own slot map, in the shape jepsen-io/redis uses.
//!
//! Every call ends in exactly one [`Outcome`]:
//! - `Ok`: the node replied with a non-error value.
//! - `Fail`: the command certainly did not execute: an error reply (CLUSTERDOWN,
//!   CROSSSLOT, TRYAGAIN, a MOVED we did not follow any further, ...), or the request
//!   never left (connection refused, connect timeout).
//! - `Info`: unknown (timeout or connection lost after the request was written).
//!
//! MOVED is followed (the op did not execute where it was refused, so re-sending it is
//! safe) up to `max_redirects`; ASK is answered with `ASKING` plus the command once.
//! No other retry happens: a retry after an unknown outcome could apply a write twice.

use crate::conn::{ConnError, Link, Tcp, Transport};
use crate::resp::Value;
use crate::slot::{key_slot, SLOTS};
use std::net::SocketAddr;
use std::time::Duration;

/// Client timeouts and limits.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    pub connect_timeout: Duration,
    pub op_timeout: Duration,
    pub max_redirects: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_millis(500),
            op_timeout: Duration::from_millis(1000),
            max_redirects: 2,
        }
    }
}

/// How one call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(Value),
    Fail(String),
    Info(String),
}

/// A call's outcome plus the node that gave it.
#[derive(Clone, Debug)]
pub struct Completion {
    pub outcome: Outcome,
    pub node: Option<SocketAddr>,
}

/// How a client finds the node that serves a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Redis Cluster: a slot map from CLUSTER SLOTS, MOVED/ASK followed.
    Cluster,
    /// Redis Sentinel: the master's address from the sentinels (`seeds`), asked in
    /// order with `SENTINEL GET-MASTER-ADDR-BY-NAME <master>` on connect and after
    /// every error, then confirmed with ROLE, as the Sentinel client guidelines say
    /// (the sentinel that answered moves to the front of the list).
    Sentinel { master: String },
    /// A proxy (twemproxy): every command goes to the first seed, which shards.
    Proxy,
}

/// The client. Not shared between processes: each process owns one, so that
/// an unknown outcome can retire the process together with its connections.
/// Generic over how it reaches nodes (TCP, or the simulator's network).
pub struct ClusterClient<T: Transport = Tcp> {
    transport: T,
    seeds: Vec<SocketAddr>,
    /// The owner of each slot: 0 none, else 1 + an index into `owners` (two
    /// bytes a slot: a refresh rewrites 32 KB, not half a megabyte).
    slots: Vec<u16>,
    owners: Vec<SocketAddr>,
    /// The CLUSTER SLOTS ranges `slots` and `owners` hold exactly (emptied
    /// when a MOVED edits the map): a refresh that reads the same ranges
    /// again leaves the map as it is instead of rewriting 32 KB.
    loaded: Vec<(u16, u16, SocketAddr)>,
    /// Open connections by address: a handful (one per node), so a list
    /// searched in order beats hashing the address.
    conns: Vec<(SocketAddr, T::Conn)>,
    cfg: ClientConfig,
    map_stale: bool,
    routing: Routing,
    /// Sentinel routing: the master the sentinels named and ROLE confirmed.
    master: Option<SocketAddr>,
}

/// Parses a CLUSTER SLOTS reply into (start, end, master address) ranges. An empty or
/// `?` IP means "the node you asked".
pub fn parse_cluster_slots(v: &Value, asked: SocketAddr) -> Option<Vec<(u16, u16, SocketAddr)>> {
    let mut out = Vec::new();
    for range in v.as_array()? {
        let r = range.as_array()?;
        let start = r.first()?.as_int()?;
        let end = r.get(1)?.as_int()?;
        let master = r.get(2)?.as_array()?;
        let ip = master.first()?.as_text()?;
        let port = master.get(1)?.as_int()?;
        if !(0..SLOTS as i64).contains(&start) || !(start..SLOTS as i64).contains(&end) {
            return None;
        }
        let port = u16::try_from(port).ok()?;
        let addr = if ip.is_empty() || ip == "?" {
            SocketAddr::new(asked.ip(), port)
        } else {
            SocketAddr::new(ip.parse().ok()?, port)
        };
        out.push((start as u16, end as u16, addr));
    }
    Some(out)
}

/// Parses `MOVED <slot> <ip:port>` / `ASK <slot> <ip:port>` into the target address.
fn redirect_target(msg: &str, prefix: &str, fallback_ip: std::net::IpAddr) -> Option<SocketAddr> {
    let rest = msg.strip_prefix(prefix)?;
    let mut parts = rest.split_whitespace();
    let _slot = parts.next()?;
    let hostport = parts.next()?;
    let (host, port) = hostport.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    // An empty host means "same IP as the node that answered" (preferred-endpoint unknown).
    let ip = if host.is_empty() || host == "?" {
        fallback_ip
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

impl ClusterClient<Tcp> {
    pub fn new(seeds: Vec<SocketAddr>, cfg: ClientConfig) -> ClusterClient {
        ClusterClient::with_routing(seeds, cfg, Routing::Cluster)
    }

    /// A client that routes by `routing`; `seeds` are the cluster nodes, the
    /// sentinels, or the proxy.
    pub fn with_routing(
        seeds: Vec<SocketAddr>,
        cfg: ClientConfig,
        routing: Routing,
    ) -> ClusterClient {
        ClusterClient::with_transport(seeds, cfg, routing, Tcp)
    }
}

impl<T: Transport> ClusterClient<T> {
    /// A client over another transport (the simulator's).
    pub fn with_transport(
        seeds: Vec<SocketAddr>,
        cfg: ClientConfig,
        routing: Routing,
        transport: T,
    ) -> ClusterClient<T> {
        ClusterClient {
            transport,
            seeds,
            slots: vec![0; SLOTS as usize],
            owners: Vec::new(),
            loaded: Vec::new(),
            conns: Vec::new(),
            cfg,
            map_stale: true,
            routing,
            master: None,
        }
    }

    /// The master this client currently believes owns `slot`.
    pub fn owner(&self, slot: u16) -> Option<SocketAddr> {
        match self.routing {
            Routing::Cluster => match self.slots.get(slot as usize) {
                Some(&k) if k > 0 => self.owners.get(usize::from(k - 1)).copied(),
                _ => None,
            },
            Routing::Sentinel { .. } => self.master,
            Routing::Proxy => self.seeds.first().copied(),
        }
    }

    /// The slot map's key of an owner address (added if new).
    fn owner_key(&mut self, a: SocketAddr) -> u16 {
        let i = match self.owners.iter().position(|x| *x == a) {
            Some(i) => i,
            None => {
                self.owners.push(a);
                self.owners.len() - 1
            }
        };
        u16::try_from(i + 1).unwrap_or(0)
    }

    /// Opens a connection of this client's transport (transactions use their own).
    pub async fn open(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<T::Conn, ConnError> {
        self.transport.connect(addr, timeout).await
    }

    async fn conn(&mut self, addr: SocketAddr) -> Result<&mut T::Conn, ConnError> {
        let i = match self.conns.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                let c = self
                    .transport
                    .connect(addr, self.cfg.connect_timeout)
                    .await?;
                self.conns.push((addr, c));
                self.conns.len() - 1
            }
        };
        self.conns
            .get_mut(i)
            .map(|(_, c)| c)
            .ok_or(ConnError::Closed { addr, sent: false })
    }

    async fn request(&mut self, addr: SocketAddr, args: &[&[u8]]) -> Result<Value, ConnError> {
        let timeout = self.cfg.op_timeout;
        let res = match self.conn(addr).await {
            Ok(c) => c.request(args, timeout).await,
            Err(e) => Err(e),
        };
        if res.is_err() {
            // Unknown stream position: never reuse.
            self.conns.retain(|(a, _)| *a != addr);
        }
        res
    }

    /// Drops every open connection (used when a process is retired).
    pub fn disconnect(&mut self) {
        self.conns.clear();
    }

    /// Reloads the slot map from the first seed (or known master) that answers
    /// CLUSTER SLOTS; under Sentinel asks the sentinels for the master. Returns
    /// whether a map (a master) was loaded.
    pub async fn refresh(&mut self) -> bool {
        match self.routing.clone() {
            Routing::Cluster => {}
            Routing::Sentinel { master } => return self.refresh_sentinel(&master).await,
            Routing::Proxy => {
                self.map_stale = false;
                return true;
            }
        }
        let mut candidates: Vec<SocketAddr> = self.seeds.clone();
        // Known owners in slot order (as a scan of the slot map finds them).
        // (Runs of one owner are skipped 16 slots at a time: a refresh
        // walks the whole 16384-slot map, and runs are thousands long.)
        let mut prev = 0u16;
        let mut i = 0;
        while let Some(&k) = self.slots.get(i) {
            if k != 0 && k != prev {
                if let Some(a) = self.owners.get(usize::from(k - 1)) {
                    if !candidates.contains(a) {
                        candidates.push(*a);
                    }
                }
            }
            prev = k;
            i += 1;
            while self
                .slots
                .get(i..i + 16)
                .is_some_and(|run| run.iter().fold(true, |all, &x| all & (x == k)))
            {
                i += 16;
            }
        }
        for addr in candidates {
            let Ok(v) = self.request(addr, &[b"CLUSTER", b"SLOTS"]).await else {
                continue;
            };
            let Some(ranges) = parse_cluster_slots(&v, addr) else {
                continue;
            };
            if ranges.is_empty() {
                continue;
            }
            if ranges != self.loaded {
                self.slots.fill(0);
                self.owners.clear();
                for &(start, end, a) in &ranges {
                    let k = self.owner_key(a);
                    if let Some(r) = self.slots.get_mut(start as usize..=end as usize) {
                        r.fill(k);
                    }
                }
                self.loaded = ranges;
            }
            self.map_stale = false;
            return true;
        }
        false
    }

    /// Asks the sentinels in order for `name`'s master and confirms it with ROLE; the
    /// sentinel that answered moves to the front. A sentinel that names a node which
    /// is not (or no longer) a master is skipped, as the client guidelines say.
    async fn refresh_sentinel(&mut self, name: &str) -> bool {
        self.master = None;
        for i in 0..self.seeds.len() {
            let Some(&sentinel) = self.seeds.get(i) else {
                break;
            };
            let reply = self
                .request(
                    sentinel,
                    &[b"SENTINEL", b"GET-MASTER-ADDR-BY-NAME", name.as_bytes()],
                )
                .await;
            let Some(addr) = reply.ok().as_ref().and_then(parse_master_addr) else {
                continue;
            };
            let role = self.request(addr, &[b"ROLE"]).await;
            let is_master = matches!(&role, Ok(Value::Array(Some(items)))
                if items.first().and_then(|r| r.as_text()).as_deref() == Some("master"));
            if !is_master {
                continue;
            }
            self.seeds.swap(0, i);
            self.master = Some(addr);
            self.map_stale = false;
            return true;
        }
        false
    }

    /// Runs one single-key command. `key` decides the slot.
    pub async fn call(&mut self, key: &[u8], args: &[&[u8]]) -> Completion {
        if self.map_stale {
            self.refresh().await;
        }
        if self.routing != Routing::Cluster {
            return self.call_direct(key, args).await;
        }
        let slot = key_slot(key);
        let Some(mut addr) = self.owner(slot).or_else(|| self.seeds.first().copied()) else {
            return Completion {
                outcome: Outcome::Fail("no-node-known".into()),
                node: None,
            };
        };
        let mut asking = false;
        let mut redirects = 0u32;
        loop {
            if asking {
                // ASKING and the command go to the importing node; if ASKING itself
                // fails the command was never sent.
                match self.request(addr, &[b"ASKING"]).await {
                    Ok(Value::Error(e)) => {
                        return Completion {
                            outcome: Outcome::Fail(format!("ASKING refused: {e}")),
                            node: Some(addr),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Completion {
                            outcome: Outcome::Fail(format!("ASKING: {}", e.tag())),
                            node: Some(addr),
                        }
                    }
                }
            }
            let reply = self.request(addr, args).await;
            let v = match reply {
                Ok(v) => v,
                Err(e) => {
                    if e.certainly_not_applied() {
                        // A refused connection also means our map may be outdated.
                        self.map_stale = true;
                        return Completion {
                            outcome: Outcome::Fail(e.tag()),
                            node: Some(addr),
                        };
                    }
                    return Completion {
                        outcome: Outcome::Info(e.tag()),
                        node: Some(addr),
                    };
                }
            };
            let Value::Error(msg) = v else {
                return Completion {
                    outcome: Outcome::Ok(v),
                    node: Some(addr),
                };
            };
            let can_redirect = redirects < self.cfg.max_redirects;
            if let Some(target) = redirect_target(&msg, "MOVED ", addr.ip()) {
                self.map_stale = true;
                let k = self.owner_key(target);
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    *s = k;
                }
                self.loaded.clear();
                if can_redirect {
                    redirects += 1;
                    addr = target;
                    asking = false;
                    continue;
                }
            } else if let Some(target) = redirect_target(&msg, "ASK ", addr.ip()) {
                if can_redirect {
                    redirects += 1;
                    addr = target;
                    asking = true;
                    continue;
                }
            } else if msg.starts_with("TRYAGAIN") && can_redirect {
                // A multi-key command during a slot move, its keys split between
                // source and target: not executed; retried after a short pause (as
                // redis-cli and cluster clients do), a failure once retries run out.
                redirects += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            } else if msg.starts_with("CLUSTERDOWN") {
                // The map may have changed under us (failover in progress).
                self.map_stale = true;
            }
            return Completion {
                outcome: Outcome::Fail(msg),
                node: Some(addr),
            };
        }
    }
}

impl<T: Transport> ClusterClient<T> {
    /// Sentinel and proxy routing: one node serves every key; no redirects. Under
    /// Sentinel every error (an error reply such as READONLY from a demoted master, a
    /// refused connection, a timeout) makes the next call ask the sentinels again.
    async fn call_direct(&mut self, key: &[u8], args: &[&[u8]]) -> Completion {
        let Some(addr) = self.owner(key_slot(key)) else {
            self.map_stale = true;
            return Completion {
                outcome: Outcome::Fail("no-master-known".into()),
                node: None,
            };
        };
        let outcome = match self.request(addr, args).await {
            Ok(Value::Error(e)) => Outcome::Fail(e),
            Ok(v) => Outcome::Ok(v),
            Err(e) if e.certainly_not_applied() => Outcome::Fail(e.tag()),
            Err(e) => Outcome::Info(e.tag()),
        };
        if !matches!(outcome, Outcome::Ok(_)) && matches!(self.routing, Routing::Sentinel { .. }) {
            self.map_stale = true;
        }
        Completion {
            outcome,
            node: Some(addr),
        }
    }
}

/// Parses a `SENTINEL GET-MASTER-ADDR-BY-NAME` reply: `[ip, port]` (nil when the
/// sentinel does not know the master).
pub fn parse_master_addr(v: &Value) -> Option<SocketAddr> {
    let items = v.as_array()?;
    let ip = items.first()?.as_text()?;
    let port: u16 = items.get(1)?.as_text()?.parse().ok()?;
    Some(SocketAddr::new(ip.parse().ok()?, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_master_addr() {
        let v = Value::Array(Some(vec![
            Value::Bulk(Some(b"10.1.2.3".to_vec().into())),
            Value::Bulk(Some(b"7001".to_vec().into())),
        ]));
        assert_eq!(
            parse_master_addr(&v),
            Some("10.1.2.3:7001".parse().unwrap())
        );
        assert_eq!(parse_master_addr(&Value::Array(None)), None);
        let bad = Value::Array(Some(vec![Value::Bulk(Some(b"x".to_vec().into()))]));
        assert_eq!(parse_master_addr(&bad), None);
    }

    #[test]
    fn parses_slots_reply() {
        let node = |ip: &str, port: i64| {
            Value::Array(Some(vec![
                Value::Bulk(Some(ip.as_bytes().to_vec().into())),
                Value::Int(port),
                Value::Bulk(Some(b"abc".to_vec().into())),
            ]))
        };
        let v = Value::Array(Some(vec![
            Value::Array(Some(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.1.1.1", 7000),
            ])),
            Value::Array(Some(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("", 7001),
            ])),
        ]));
        let asked: SocketAddr = "10.9.9.9:7005".parse().unwrap();
        let r = parse_cluster_slots(&v, asked).unwrap();
        assert_eq!(r[0], (0, 5460, "10.1.1.1:7000".parse().unwrap()));
        assert_eq!(r[1], (5461, 16383, "10.9.9.9:7001".parse().unwrap()));
        let bad = Value::Array(Some(vec![Value::Array(Some(vec![
            Value::Int(5),
            Value::Int(99999),
            node("10.1.1.1", 7000),
        ]))]));
        assert!(parse_cluster_slots(&bad, asked).is_none());
    }

    #[test]
    fn parses_redirects() {
        let ip = "10.0.0.1".parse().unwrap();
        assert_eq!(
            redirect_target("MOVED 3999 10.0.0.2:7001", "MOVED ", ip),
            Some("10.0.0.2:7001".parse().unwrap())
        );
        assert_eq!(
            redirect_target("ASK 1 :7002", "ASK ", ip),
            Some("10.0.0.1:7002".parse().unwrap())
        );
        assert_eq!(redirect_target("MOVED x", "MOVED ", ip), None);
        assert_eq!(
            redirect_target("CLUSTERDOWN The cluster is down", "MOVED ", ip),
            None
        );
    }
}
