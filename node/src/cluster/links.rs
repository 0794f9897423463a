//! Bus links: two per peer (outbound `node.link`, inbound `node.inbound_link`),
//! plus inbound links not yet tied to a node. The core allocates every
//! `LinkId`; the shell owns the sockets.

use std::net::SocketAddr;

use crate::events::{EventKind, LinkDirection};
use crate::wire::{msg_type, node_flags, Message};

use super::node::{Ms, NodeRef};
use super::{Action, Cluster, LinkId, LogLevel};

#[derive(Debug)]
pub(crate) struct Link {
    /// The node this link belongs to: set at creation for outbound links,
    /// on the first packet naming a known sender for inbound ones.
    pub node: Option<NodeRef>,
    pub inbound: bool,
    /// Creation time (CLUSTER LINKS create-time, staleness rule).
    pub ctime: Ms,
    /// Outbound links start unconnected; messages queue in `pending` meanwhile,
    /// as redis buffers them in the link's send buffer before the connect completes.
    pub connected: bool,
    /// The address we dialled (outbound) or the peer's address (inbound).
    pub peer_ip: String,
    #[allow(dead_code)] // kept for diagnostics
    pub peer_port: u16,
    /// Our side of the socket, once known: how we learn our own IP.
    pub local_ip: Option<String>,
    pub pending: Vec<Message>,
}

impl Link {
    pub fn direction(&self) -> LinkDirection {
        if self.inbound {
            LinkDirection::From
        } else {
            LinkDirection::To
        }
    }
}

impl Cluster {
    fn alloc_link_id(&mut self) -> LinkId {
        let id = self.next_link_id;
        self.next_link_id += 1;
        id
    }

    pub(super) fn accept_link(&mut self, now: Ms, peer: SocketAddr, local: SocketAddr) -> LinkId {
        let id = self.alloc_link_id();
        self.links.insert(
            id,
            Link {
                node: None,
                inbound: true,
                ctime: now,
                connected: true,
                peer_ip: peer.ip().to_string(),
                peer_port: peer.port(),
                local_ip: Some(local.ip().to_string()),
                pending: Vec::new(),
            },
        );
        self.log(
            LogLevel::Verbose,
            format!(
                "Accepting cluster node connection from {}:{}",
                peer.ip(),
                peer.port()
            ),
        );
        self.event(EventKind::LinkConnected {
            link: id,
            node: None,
            direction: LinkDirection::From,
        });
        id
    }

    /// Creates the outbound link of `node` and asks the shell to connect
    /// (the cron's reconnect step). Returns false on a "synchronous" failure:
    /// an address that cannot be dialled at all.
    pub(super) fn connect_node(&mut self, now: Ms, node: NodeRef) -> bool {
        let Some(n) = self.node(node) else {
            return false;
        };
        let (ip, cport) = (n.ip.clone(), n.cport);
        if ip.parse::<std::net::IpAddr>().is_err() {
            // connConnect fails before any I/O: keep failure detection running
            // by pretending a ping went out now.
            if let Some(n) = self.node_mut(node) {
                if n.ping_sent == 0 {
                    n.ping_sent = now;
                }
            }
            self.log(
                LogLevel::Debug,
                format!("Unable to connect to Cluster Node [{ip}]:{cport} -> Invalid argument"),
            );
            return false;
        }
        let id = self.alloc_link_id();
        self.links.insert(
            id,
            Link {
                node: Some(node),
                inbound: false,
                ctime: now,
                connected: false,
                peer_ip: ip.clone(),
                peer_port: cport,
                local_ip: None,
                pending: Vec::new(),
            },
        );
        if let Some(n) = self.node_mut(node) {
            n.link = Some(id);
        }
        self.actions.push_back(Action::Connect {
            link: id,
            ip,
            port: cport,
        });
        true
    }

    /// `clusterLinkConnectHandler` on success.
    pub(super) fn link_connected(&mut self, now: Ms, id: LinkId, local: SocketAddr) {
        let Some(link) = self.links.get_mut(&id) else {
            // We dropped the link while it was connecting.
            self.actions.push_back(Action::Close { link: id });
            return;
        };
        if link.inbound || link.connected {
            return;
        }
        link.connected = true;
        link.local_ip = Some(local.ip().to_string());
        let pending = std::mem::take(&mut link.pending);
        let node = link.node;
        let node_id = node.map(|r| self.id_of(r));
        self.event(EventKind::LinkConnected {
            link: id,
            node: node_id,
            direction: LinkDirection::To,
        });
        for msg in pending {
            self.actions.push_back(Action::Send { link: id, msg });
        }
        let Some(node) = node else { return };
        let Some(n) = self.node(node) else { return };
        let old_ping_sent = n.ping_sent;
        let t = if n.has(node_flags::MEET) {
            msg_type::MEET
        } else {
            msg_type::PING
        };
        self.send_ping(now, id, t);
        if let Some(n) = self.node_mut(node) {
            // A reconnect must not reset the failure-detection clock.
            if old_ping_sent != 0 {
                n.ping_sent = old_ping_sent;
            }
            n.flags &= !node_flags::MEET;
            let text = format!("Connecting with Node {} at {}:{}", n.name, n.ip, n.cport);
            self.log(LogLevel::Debug, text);
        }
    }

    pub(super) fn link_connect_failed(&mut self, _now: Ms, id: LinkId, error: &str) {
        let Some(link) = self.links.get(&id) else {
            return;
        };
        if link.inbound || link.connected {
            // Not a connect in progress: treat as an ordinary close.
            self.link_closed_by_peer(id);
            return;
        }
        if let Some(n) = link.node.and_then(|r| self.node(r)) {
            let text = format!(
                "Connection with Node {} at {}:{} failed: {}",
                n.name, n.ip, n.cport, error
            );
            self.log(LogLevel::Verbose, text);
        }
        self.unlink(id, "connect_failed");
    }

    pub(super) fn link_closed_by_peer(&mut self, id: LinkId) {
        if !self.links.contains_key(&id) {
            return;
        }
        self.log(
            LogLevel::Debug,
            "I/O error reading from node link: connection closed".to_string(),
        );
        self.unlink(id, "closed");
    }

    /// `freeClusterLink` decided by the core: the shell must close the socket.
    pub(super) fn free_link(&mut self, id: LinkId, reason: &str) {
        if self.unlink(id, reason) {
            self.actions.push_back(Action::Close { link: id });
        }
    }

    /// Removes a link from the tables; returns whether it existed.
    fn unlink(&mut self, id: LinkId, reason: &str) -> bool {
        let Some(link) = self.links.remove(&id) else {
            return false;
        };
        let mut node_id = None;
        if let Some(n) = link.node.and_then(|r| self.node_mut(r)) {
            if n.link == Some(id) {
                n.link = None;
            } else if n.inbound_link == Some(id) {
                n.inbound_link = None;
            }
            node_id = Some(n.id());
        }
        self.event(EventKind::LinkClosed {
            link: id,
            node: node_id,
            direction: link.direction(),
            reason: reason.to_string(),
        });
        true
    }

    /// `setClusterNodeToInboundClusterLink`: ties an inbound link to its node;
    /// an older inbound link from the same node is closed.
    pub(super) fn set_inbound_link(&mut self, node: NodeRef, id: LinkId) {
        let Some(n) = self.node(node) else { return };
        if n.inbound_link == Some(id) {
            return;
        }
        if let Some(old) = n.inbound_link {
            let text = format!(
                "Replacing inbound link fd {old} from node {} with fd {id}",
                n.name
            );
            self.log(LogLevel::Debug, text);
            self.free_link(old, "replaced");
        }
        if let Some(n) = self.node_mut(node) {
            n.inbound_link = Some(id);
        }
        if let Some(l) = self.links.get_mut(&id) {
            l.node = Some(node);
        }
    }

    /// `clusterSendMessage`: counts the message type and queues it on the link.
    pub(super) fn send(&mut self, id: LinkId, msg: Message) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let t = usize::from(msg.header.msg_type);
        if let Some(c) = self.stats_sent.get_mut(t) {
            *c += 1;
        }
        if link.connected {
            self.actions.push_back(Action::Send { link: id, msg });
        } else {
            link.pending.push(msg);
        }
    }

    /// `clusterBroadcastMessage`: every known node's outbound link except
    /// ourselves and handshake nodes.
    pub(super) fn broadcast(&mut self, msg: &Message) {
        let targets: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| !n.has(node_flags::MYSELF | node_flags::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for l in targets {
            self.send(l, msg.clone());
        }
    }
}
