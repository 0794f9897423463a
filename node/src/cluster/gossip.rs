//! Building headers and PING/PONG/MEET messages with their gossip section,
//! and processing received gossip (`clusterSendPing`,
//! `clusterProcessGossipSection`, `clusterProcessPingExtensions`).

use std::collections::HashSet;

use crate::events::{AddedVia, EventKind};
use crate::wire::node_flags::*;
use crate::wire::{
    ip_field, ip_field_str, msg_flags, msg_type, Body, GossipEntry, Header, Message, NodeName,
    PingExt,
};

use super::node::{Ms, Node, NodeRef};
use super::{Cluster, LinkId, LogLevel};

impl Cluster {
    /// `clusterBuildMessageHdr`.
    pub(super) fn build_header(&self, t: u16) -> Header {
        let me = self.me();
        // A replica advertises its master's slots and configEpoch.
        let master = match me.replica_of.and_then(|m| self.node(m)) {
            Some(m) if me.is_replica() => m,
            _ => me,
        };
        let mut h = Header::new(t, me.name);
        if let Some(ip) = self.cfg.announce_ip.as_deref().filter(|ip| !ip.is_empty()) {
            h.myip = ip_field(ip);
        }
        h.myslots = master.slots.clone();
        h.slaveof = me
            .replica_of
            .map(|m| self.name_of(m))
            .unwrap_or(NodeName::NULL);
        h.port = self.cfg.announce_port;
        h.pport = 0;
        h.cport = self.cfg.announce_bus_port;
        h.flags = me.flags;
        h.state = if self.state_ok { 0 } else { 1 };
        h.current_epoch = self.current_epoch;
        h.config_epoch = master.config_epoch;
        h.offset = self.my_repl_offset;
        if me.is_master() && self.failover.mf_end != 0 {
            h.mflags[0] |= msg_flags::PAUSED;
        }
        h
    }

    fn gossip_entry(n: &Node) -> GossipEntry {
        GossipEntry {
            nodename: n.name,
            // Seconds, truncated to 32 bits as redis's htonl does.
            ping_sent: (n.ping_sent / 1000) as u32,
            pong_received: (n.pong_received / 1000) as u32,
            ip: ip_field(&n.ip),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: n.pport,
        }
    }

    /// `clusterSendPing`: a PING, PONG or MEET with gossip on `link`.
    pub(super) fn send_ping(&mut self, now: Ms, link: LinkId, t: u16) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        if !l.inbound && t == msg_type::PING {
            if let Some(n) = l.node.and_then(|r| self.nodes.get_mut(&r)) {
                n.ping_sent = now;
            }
        }
        let total = self.nodes.len();
        // Nodes we can hope to gossip about: all but ourselves and the receiver.
        let mut freshnodes = total.saturating_sub(2);
        let wanted = (total / self.cfg.gossip_divisor as usize)
            .max(3)
            .min(freshnodes);
        let pfail_wanted = self.stats_pfail_nodes;
        let buckets = self.dict_buckets();

        let mut gossip = Vec::with_capacity(wanted + pfail_wanted);
        let mut added: HashSet<NodeRef> = HashSet::new();
        let mut iterations = wanted * 3;
        while freshnodes > 0 && gossip.len() < wanted && iterations > 0 {
            iterations -= 1;
            let Some(pick) = self.random_node_ref(&buckets) else {
                continue;
            };
            let Some(n) = self.node(pick) else { continue };
            if pick == self.myself || n.timed_out() {
                // PFAIL nodes are appended below.
                continue;
            }
            if n.has(HANDSHAKE | NOADDR) || (n.link.is_none() && n.numslots == 0) {
                freshnodes -= 1; // not exact, as in redis: saves draws
                continue;
            }
            if !added.insert(pick) {
                continue;
            }
            gossip.push(Self::gossip_entry(n));
            freshnodes -= 1;
        }
        // Every PFAIL node, so failure reports spread fast.
        let mut left = pfail_wanted;
        for n in self.nodes.values() {
            if left == 0 {
                break;
            }
            if n.has(HANDSHAKE | NOADDR) || !n.timed_out() {
                continue;
            }
            gossip.push(Self::gossip_entry(n));
            left -= 1;
        }

        let mut h = self.build_header(t);
        let mut extensions = Vec::new();
        let hostname = self.me().hostname.clone();
        if !hostname.is_empty() {
            h.mflags[0] |= msg_flags::EXT_DATA;
            extensions.push(PingExt::Hostname(hostname));
        }
        h.count = u16::try_from(gossip.len()).unwrap_or(u16::MAX);
        h.extensions = u16::try_from(extensions.len()).unwrap_or(u16::MAX);
        self.send(
            link,
            Message {
                header: h,
                body: Body::Ping { gossip, extensions },
            },
        );
    }

    /// `clusterBroadcastPong(CLUSTER_BROADCAST_ALL)`.
    pub(super) fn broadcast_pong_all(&mut self, now: Ms) {
        let targets: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| !n.has(MYSELF | HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for l in targets {
            self.send_ping(now, l, msg_type::PONG);
        }
    }

    /// `clusterSendFail`: broadcast that `about` is FAIL.
    pub(super) fn send_fail(&mut self, about: NodeName) {
        let msg = Message {
            header: self.build_header(msg_type::FAIL),
            body: Body::Fail { nodename: about },
        };
        self.broadcast(&msg);
    }

    /// `clusterSendUpdate`: tell the node behind `link` the slots of `about`
    /// (minus those its owner stopped claiming).
    pub(super) fn send_update(&mut self, link: Option<LinkId>, to: NodeRef, about: NodeRef) {
        let Some(link) = link else { return };
        let Some(n) = self.node(about) else { return };
        let mut slots = n.slots.clone();
        for (b, nc) in slots
            .0
            .iter_mut()
            .zip(self.owner_not_claiming.bitmap().iter())
        {
            *b &= !nc;
        }
        let (name, config_epoch) = (n.name, n.config_epoch);
        let msg = Message {
            header: self.build_header(msg_type::UPDATE),
            body: Body::Update {
                config_epoch,
                nodename: name,
                slots,
            },
        };
        self.send(link, msg);
        let to_id = self.id_of(to);
        self.event(EventKind::UpdateSent {
            to: to_id,
            about: name.to_string(),
            config_epoch,
        });
    }

    /// `clusterProcessGossipSection`. `gsender` is the link's node or the node
    /// named by the header (None for an unknown MEET sender).
    pub(super) fn process_gossip(
        &mut self,
        now: Ms,
        gsender: Option<NodeRef>,
        gossip: &[GossipEntry],
    ) {
        let gsender_is_master = gsender.is_some_and(|s| self.is_master_ref(s));
        for g in gossip {
            let flags = g.flags;
            let ip = ip_field_str(&g.ip);
            if self.log_enabled(LogLevel::Debug) {
                let text = format!(
                    "GOSSIP {} {}:{}@{} {}",
                    g.nodename,
                    ip,
                    g.port,
                    g.cport,
                    super::node::flags_text(flags)
                );
                self.log(LogLevel::Debug, text);
            }
            match self.lookup(&g.nodename) {
                Some(node) => {
                    self.gossip_about_known(now, gsender, gsender_is_master, node, g, &ip)
                }
                None => self.gossip_about_unknown(now, gsender, g, ip),
            }
        }
    }

    fn gossip_about_known(
        &mut self,
        now: Ms,
        gsender: Option<NodeRef>,
        gsender_is_master: bool,
        node: NodeRef,
        g: &GossipEntry,
        ip: &str,
    ) {
        let flags = g.flags;
        // Failure reports count only from masters (slots not required).
        let count_replicas = self.config().bug("count-replica-reports");
        if let Some(sender) = gsender.filter(|_| gsender_is_master || count_replicas) {
            if node != self.myself {
                if flags & (FAIL | PFAIL) != 0 {
                    if self.add_failure_report(now, node, sender) {
                        let text = format!(
                            "Node {} reported node {} as not reachable.",
                            self.name_of(sender),
                            self.name_of(node)
                        );
                        self.log(LogLevel::Verbose, text);
                    }
                    self.mark_failing_if_needed(now, node);
                } else if self.del_failure_report(now, node, sender) {
                    let text = format!(
                        "Node {} reported node {} is back online.",
                        self.name_of(sender),
                        self.name_of(node)
                    );
                    self.log(LogLevel::Verbose, text);
                }
            }
        }

        // Adopt a fresher pong time from peers while we see the node as healthy.
        // (Reports are counted, and so purged, only when the first two hold.)
        let idle = flags & (FAIL | PFAIL) == 0 && self.node(node).is_some_and(|n| n.ping_sent == 0);
        if idle && self.failure_reports_count(now, node) == 0 {
            if let Some(n) = self.node_mut(node) {
                let pongtime = i64::from(g.pong_received) * 1000;
                if pongtime <= now + 500 && pongtime > n.pong_received {
                    n.pong_received = pongtime;
                }
            }
        }

        // A node we cannot reach, gossiped as healthy at another address by
        // someone who can: try that address.
        let Some(n) = self.node(node) else { return };
        if n.has(FAIL | PFAIL)
            && flags & NOADDR == 0
            && flags & (FAIL | PFAIL) == 0
            && (!n.ip.eq_ignore_ascii_case(ip) || n.port != g.port || n.cport != g.cport)
        {
            if let Some(l) = n.link {
                self.free_link(l, "address_changed");
            }
            if let Some(n) = self.node_mut(node) {
                n.ip = ip.to_string();
                n.port = g.port;
                n.pport = g.pport;
                n.cport = g.cport;
                n.flags &= !NOADDR;
                let ev = EventKind::AddressUpdated {
                    node: n.id(),
                    ip: n.ip.clone(),
                    port: n.port,
                    cport: n.cport,
                };
                self.event(ev);
            }
        }
    }

    fn gossip_about_unknown(
        &mut self,
        now: Ms,
        gsender: Option<NodeRef>,
        g: &GossipEntry,
        ip: String,
    ) {
        // Only a known sender may introduce nodes, else we could join another
        // cluster; a malformed ID could never be looked up again (redis would
        // re-add it on every packet), so it is ignored.
        if gsender.is_none() || g.flags & NOADDR != 0 || !g.nodename.is_valid() {
            return;
        }
        if self.blacklisted(now, &g.nodename) {
            return;
        }
        // The gossiped flags are taken as they are, except MYSELF, which only
        // ever describes the sender's own entry.
        let mut n = Node::new(g.nodename, g.flags & !MYSELF, now);
        n.ip = ip;
        n.port = g.port;
        n.pport = g.pport;
        n.cport = g.cport;
        let ev = EventKind::NodeAdded {
            id: n.id(),
            via: AddedVia::Gossip,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
        };
        self.add_node(n);
        self.event(ev);
    }

    /// `clusterProcessPingExtensions`: a packet without a hostname extension
    /// clears the sender's hostname.
    pub(super) fn process_extensions(&mut self, sender: NodeRef, extensions: &[PingExt]) {
        let mut hostname: Option<String> = None;
        for ext in extensions {
            match ext {
                PingExt::Hostname(h) => hostname = Some(h.clone()),
                PingExt::Unknown { ext_type, .. } => {
                    self.log(
                        LogLevel::Warning,
                        format!("Received unknown extension type {ext_type}"),
                    );
                }
            }
        }
        if let Some(n) = self.node_mut(sender) {
            n.hostname = hostname.unwrap_or_default();
        }
    }

    /// FORGET blacklist lookup (expired entries are purged first, as redis does).
    pub(super) fn blacklisted(&mut self, now: Ms, name: &NodeName) -> bool {
        let secs = now.div_euclid(1000);
        self.blacklist.retain(|_, expire| *expire >= secs);
        self.blacklist.contains_key(name)
    }
}
