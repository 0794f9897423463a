//! Processing one received bus message (`clusterProcessPacket`, reference 1.11).

use bytes::Bytes;

use crate::events::{AddedVia, EpochReason, EventKind, SlotChangeReason};
use crate::slots::SlotSet;
use crate::wire::node_flags::*;
use crate::wire::{ip_field_str, msg_flags, msg_type, Body, Header, Message, PingExt, PROTO_VER};

use super::cron::{TODO_FSYNC_CONFIG, TODO_SAVE_CONFIG, TODO_UPDATE_STATE};
use super::node::{Ms, Node, NodeRef};
use super::{Action, Cluster, LinkId, LogLevel};

/// Size of the header without payload (`CLUSTERMSG_MIN_LEN`).
const H: u64 = crate::wire::HEADER_LEN as u64;

/// The `totlen` this message has on the wire (for the DEBUG log line).
pub(crate) fn wire_len(msg: &Message) -> u64 {
    match &msg.body {
        Body::Ping { gossip, extensions } => {
            let ext: u64 = extensions
                .iter()
                .map(|e| match e {
                    PingExt::Hostname(h) => 8 + (h.len() as u64 + 1).div_ceil(8) * 8,
                    PingExt::Unknown { body, .. } => 8 + body.len() as u64,
                })
                .sum();
            H + 104 * gossip.len() as u64 + ext
        }
        Body::Fail { .. } => H + 40,
        Body::Publish { channel, message } => H + 8 + channel.len() as u64 + message.len() as u64,
        Body::Empty => H,
        Body::Update { .. } => H + 2096,
        Body::Module { payload, .. } => H + 13 + payload.len() as u64,
        Body::Unknown { payload } => H + payload.len() as u64,
    }
}

impl Cluster {
    /// `getNodeFromLinkAndMsg`: the link's node unless it is in handshake,
    /// else the node the header names (tying an inbound link to it).
    fn packet_sender(&mut self, link: LinkId, h: &Header) -> Option<NodeRef> {
        let link_node = self.links.get(&link).and_then(|l| l.node);
        if let Some(n) = link_node {
            if self.node(n).is_some_and(|n| !n.in_handshake()) {
                return Some(n);
            }
        }
        let sender = self.lookup(&h.sender)?;
        if link_node.is_none() && self.links.get(&link).is_some_and(|l| l.inbound) {
            self.set_inbound_link(sender, link);
        }
        Some(sender)
    }

    /// The sender as `clusterProcessGossipSection` sees it.
    fn gossip_sender(&self, link: LinkId, h: &Header) -> Option<NodeRef> {
        self.links
            .get(&link)
            .and_then(|l| l.node)
            .or_else(|| self.lookup(&h.sender))
    }

    pub(super) fn process_packet(&mut self, now: Ms, link: LinkId, msg: Message) {
        if !self.links.contains_key(&link) {
            return; // closed by us meanwhile
        }
        let t = msg.header.msg_type;
        if let Some(c) = self.stats_received.get_mut(usize::from(t)) {
            *c += 1;
        }
        if self.log_enabled(LogLevel::Debug) {
            let text = format!(
                "--- Processing packet of type {}, {} bytes",
                msg_type::name(t),
                wire_len(&msg)
            );
            self.log(LogLevel::Debug, text);
        }
        if msg.header.ver != PROTO_VER {
            return; // silently ignored, the link stays up
        }
        if self.drop_packet_filter == Some(t) {
            self.log(
                LogLevel::Warning,
                "Dropping packet that matches debug drop filter".to_string(),
            );
            return;
        }

        let h = &msg.header;
        let sender = self.packet_sender(link, h);
        if let Some(n) = sender.and_then(|s| self.node_mut(s)) {
            n.data_received = now;
        }
        let mut sender_config_epoch = 0;
        if let Some(s) = sender.filter(|&s| self.node(s).is_some_and(|n| !n.in_handshake())) {
            sender_config_epoch = h.config_epoch;
            if h.current_epoch > self.current_epoch {
                self.set_current_epoch(h.current_epoch, EpochReason::Header);
            }
            if self
                .node(s)
                .is_some_and(|n| h.config_epoch > n.config_epoch)
            {
                self.set_config_epoch(s, h.config_epoch, EpochReason::Header);
                self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
            }
            if let Some(n) = self.node_mut(s) {
                n.repl_offset = h.offset;
                n.repl_offset_time = now;
            }
            let me = self.me();
            if self.failover.mf_end != 0
                && me.is_replica()
                && me.replica_of == Some(s)
                && h.mflags[0] & msg_flags::PAUSED != 0
                && self.failover.mf_master_offset.is_none()
            {
                self.failover.mf_master_offset = Some(h.offset);
                self.log(
                    LogLevel::Warning,
                    format!(
                        "Received replication offset for paused master manual failover: {}",
                        h.offset
                    ),
                );
            }
        }

        match t {
            msg_type::PING | msg_type::PONG | msg_type::MEET => {
                self.process_ping_like(now, link, sender, sender_config_epoch, &msg)
            }
            msg_type::FAIL => self.process_fail(now, sender, &msg),
            msg_type::PUBLISH | msg_type::PUBLISHSHARD => {
                // Only from known nodes; the shell delivers it locally.
                if sender.is_some() {
                    if let Body::Publish { channel, message } = msg.body {
                        self.actions.push_back(Action::Publish {
                            channel: Bytes::from(channel),
                            message: Bytes::from(message),
                            shard: t == msg_type::PUBLISHSHARD,
                        });
                    }
                }
            }
            msg_type::FAILOVER_AUTH_REQUEST => {
                if let Some(s) = sender {
                    self.on_auth_request(now, s, &msg);
                }
            }
            msg_type::FAILOVER_AUTH_ACK => {
                if let Some(s) = sender {
                    self.on_auth_ack(now, s, &msg);
                }
            }
            msg_type::MFSTART => {
                // Only from one of our replicas.
                if let Some(s) = sender.filter(|&s| {
                    self.node(s)
                        .is_some_and(|n| n.replica_of == Some(self.myself))
                }) {
                    self.on_mfstart(now, s, link);
                }
            }
            msg_type::UPDATE => self.process_update(now, sender, &msg),
            msg_type::MODULE => {
                if sender.is_some() {
                    self.log(
                        LogLevel::Debug,
                        "Ignoring module message (no module receivers)".to_string(),
                    );
                }
            }
            _ => self.log(
                LogLevel::Warning,
                format!("Received unknown packet type: {t}"),
            ),
        }
    }

    fn process_ping_like(
        &mut self,
        now: Ms,
        link: LinkId,
        sender: Option<NodeRef>,
        sender_config_epoch: u64,
        msg: &Message,
    ) {
        let h = &msg.header;
        let t = h.msg_type;
        let (gossip, extensions) = match &msg.body {
            Body::Ping { gossip, extensions } => (gossip.as_slice(), extensions.as_slice()),
            _ => (&[][..], &[][..]),
        };

        if t == msg_type::PING || t == msg_type::MEET {
            self.learn_my_ip(link, t);
            if sender.is_none() && t == msg_type::MEET {
                self.add_handshake_node_from_meet(now, link, h);
                let gs = self.gossip_sender(link, h);
                self.process_gossip(now, gs, gossip);
            }
            // Always answer, even unknown senders, on the link the request came in on.
            self.send_ping(now, link, msg_type::PONG);
        }

        let (inbound, link_node) = match self.links.get(&link) {
            Some(l) => (l.inbound, l.node),
            None => return,
        };
        if self.log_enabled(LogLevel::Debug) {
            let who = link_node.map_or_else(|| "NULL".to_string(), |n| self.id_of(n));
            self.log(
                LogLevel::Debug,
                format!("{} packet received: {who}", msg_type::name(t)),
            );
        }

        if !inbound {
            let Some(ln) = link_node else { return };
            let Some(lnode) = self.node(ln) else { return };
            if lnode.in_handshake() {
                if let Some(s) = sender {
                    // We already know this node under its real ID: keep that entry.
                    let name = self.name_of(s);
                    self.log(
                        LogLevel::Verbose,
                        format!("Handshake: we already know node {name}, updating the address if needed."),
                    );
                    if self.update_address(s, link, h) {
                        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
                    }
                    self.del_node(ln, crate::events::RemovedReason::HandshakeMerged);
                    return;
                }
                self.rename_node(ln, h.sender);
                self.log(
                    LogLevel::Debug,
                    format!("Handshake with node {} completed.", h.sender),
                );
                if let Some(n) = self.node_mut(ln) {
                    n.flags &= !HANDSHAKE;
                    n.flags |= h.flags & (MASTER | SLAVE);
                }
                self.todo(TODO_SAVE_CONFIG);
                self.event(EventKind::HandshakeCompleted {
                    id: h.sender.to_string(),
                });
            } else if lnode.name != h.sender {
                // Someone else answers at this address: forget the address.
                let text = format!(
                    "PONG contains mismatching sender ID. About node {} added {} ms ago, having flags {}",
                    lnode.name,
                    now - lnode.ctime,
                    lnode.flags
                );
                self.log(LogLevel::Debug, text);
                if let Some(n) = self.node_mut(ln) {
                    n.flags |= NOADDR;
                    n.ip.clear();
                    n.port = 0;
                    n.pport = 0;
                    n.cport = 0;
                }
                self.free_link(link, "noaddr");
                self.todo(TODO_SAVE_CONFIG);
                let node = self.id_of(ln);
                self.event(EventKind::NodeNoaddr {
                    node,
                    sender: h.sender.to_string(),
                });
                return;
            }
        }

        // NOFAILOVER is dynamic: always trust the sender's latest value.
        if let Some(n) = sender.and_then(|s| self.node_mut(s)) {
            n.flags = (n.flags & !NOFAILOVER) | (h.flags & NOFAILOVER);
        }

        if let Some(s) = sender {
            if t == msg_type::PING
                && self.node(s).is_some_and(|n| !n.in_handshake())
                && self.update_address(s, link, h)
            {
                self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
            }
        }

        // Only a PONG on our own outbound link proves liveness.
        if !inbound && t == msg_type::PONG {
            if let Some(ln) = link_node {
                self.pong_received(now, ln);
            }
        }

        let Some(s) = sender else { return };
        self.apply_role(s, h);
        self.apply_slot_claims(now, s, sender_config_epoch, h);

        if self.me().is_master()
            && self.is_master_ref(s)
            && sender_config_epoch == self.me().config_epoch
        {
            self.handle_epoch_collision(s);
        }

        let gs = self.gossip_sender(link, h);
        self.process_gossip(now, gs, gossip);
        self.process_extensions(s, extensions);
    }

    /// Our own IP comes from the local address of the connection a MEET (or,
    /// while we have none, any PING) arrived on, unless announce-ip is set.
    fn learn_my_ip(&mut self, link: LinkId, t: u16) {
        if self
            .cfg
            .announce_ip
            .as_deref()
            .is_some_and(|ip| !ip.is_empty())
        {
            return;
        }
        if t != msg_type::MEET && !self.me().ip.is_empty() {
            return;
        }
        let Some(local) = self.links.get(&link).and_then(|l| l.local_ip.clone()) else {
            return;
        };
        if local == self.me().ip {
            return;
        }
        self.me_mut().ip = local.clone();
        self.log(
            LogLevel::Warning,
            format!("IP address for this node updated to {local}"),
        );
        self.todo(TODO_SAVE_CONFIG);
        self.event(EventKind::MyselfIpUpdated { ip: local });
    }

    /// A MEET from an unknown node: a HANDSHAKE entry with a random ID; our
    /// cron then connects to it and the PONG tells us its real ID.
    fn add_handshake_node_from_meet(&mut self, now: Ms, link: LinkId, h: &Header) {
        let ip = self.announced_or_peer_ip(link, h);
        let name = self.random_name();
        let mut n = Node::new(name, HANDSHAKE, now);
        n.ip = ip;
        n.port = h.port;
        n.pport = h.pport;
        n.cport = h.cport;
        let ev = EventKind::NodeAdded {
            id: n.id(),
            via: AddedVia::Handshake,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
        };
        self.add_node(n);
        self.todo(TODO_SAVE_CONFIG);
        self.event(ev);
    }

    /// redis `nodeIp2String`: the announced IP if any, else the peer address.
    fn announced_or_peer_ip(&self, link: LinkId, h: &Header) -> String {
        let announced = ip_field_str(&h.myip);
        if !announced.is_empty() {
            return announced;
        }
        self.links
            .get(&link)
            .map(|l| l.peer_ip.clone())
            .unwrap_or_default()
    }

    /// `nodeUpdateAddressIfNeeded`: a PING arriving on a link other than our
    /// outbound one tells us where the node really is.
    fn update_address(&mut self, node: NodeRef, link: LinkId, h: &Header) -> bool {
        let Some(n) = self.node(node) else {
            return false;
        };
        if n.link == Some(link) || !self.links.contains_key(&link) {
            return false;
        }
        let ip = self.announced_or_peer_ip(link, h);
        if n.port == h.port && n.cport == h.cport && n.pport == h.pport && n.ip == ip {
            return false;
        }
        let old_link = n.link;
        if let Some(n) = self.node_mut(node) {
            n.ip = ip;
            n.port = h.port;
            n.pport = h.pport;
            n.cport = h.cport;
        }
        if let Some(l) = old_link {
            self.free_link(l, "address_changed");
        }
        let Some(n) = self.node_mut(node) else {
            return true;
        };
        n.flags &= !NOADDR;
        let (name, ip, port, cport) = (n.name, n.ip.clone(), n.port, n.cport);
        self.log(
            LogLevel::Warning,
            format!("Address updated for node {name}, now {ip}:{port}"),
        );
        self.event(EventKind::AddressUpdated {
            node: name.to_string(),
            ip,
            port,
            cport,
        });
        true
    }

    /// A PONG on our outbound link to `node`.
    fn pong_received(&mut self, now: Ms, node: NodeRef) {
        let Some(n) = self.node_mut(node) else { return };
        n.pong_received = now;
        n.ping_sent = 0;
        if n.timed_out() {
            // A momentary PFAIL reverts by itself (not logged by redis).
            n.flags &= !PFAIL;
            let id = n.id();
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
            self.event(EventKind::PfailCleared { node: id });
        } else if n.failed() {
            self.clear_failure_if_needed(now, node);
        }
    }

    /// Role from the header's `slaveof`: all zeros means master.
    fn apply_role(&mut self, s: NodeRef, h: &Header) {
        if h.slaveof.is_null() {
            self.set_node_as_master(s);
            return;
        }
        let master = self.lookup(&h.slaveof);
        let mut changed = false;
        let previous = super::table::role_of(self.node(s).map_or(0, |n| n.flags));
        if self.is_master_ref(s) {
            // A master turned replica: it serves nothing now.
            self.del_node_slots(s, SlotChangeReason::RoleChange);
            if let Some(n) = self.node_mut(s) {
                n.flags &= !(MASTER | MIGRATE_TO);
                n.flags |= SLAVE;
            }
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
            changed = true;
        }
        if let Some(m) = master {
            let old = self.node(s).and_then(|n| n.replica_of);
            if old != Some(m) {
                if let Some(old) = old {
                    self.remove_replica(old, s);
                }
                self.add_replica(m, s);
                if let Some(n) = self.node_mut(s) {
                    n.replica_of = Some(m);
                }
                self.todo(TODO_SAVE_CONFIG);
                changed = true;
            }
        }
        if changed {
            self.role_event(s, previous);
        }
    }

    /// Slot claims of the header (4.3), and one UPDATE if the sender claims
    /// slots whose owner has a newer configEpoch.
    fn apply_slot_claims(&mut self, now: Ms, s: NodeRef, sender_config_epoch: u64, h: &Header) {
        let Some(sn) = self.node(s) else { return };
        let sender_is_master = sn.is_master();
        let sender_master = if sender_is_master {
            Some(s)
        } else {
            sn.replica_of
        };
        let dirty = sender_master
            .and_then(|m| self.node(m))
            .is_some_and(|m| m.slots != h.myslots);
        if !dirty {
            return;
        }
        // Planted bug: ignore claims that would take slots from another owner
        // (the walk over the claim only when the bug is planted).
        let takeover = || {
            h.myslots
                .iter()
                .any(|j| self.owner(j).is_some_and(|o| o != s))
        };
        if sender_is_master && !(self.config().bug("no-update") && takeover()) {
            self.update_slots_config_with(
                now,
                s,
                sender_config_epoch,
                &h.myslots,
                SlotChangeReason::Gossip,
            );
        }
        let stale = h.myslots.iter().find_map(|j| {
            let owner = self.owner(j)?;
            if owner == s || self.slot_unclaimed(j) {
                return None;
            }
            let epoch = self.node(owner)?.config_epoch;
            (epoch > sender_config_epoch).then_some(owner)
        });
        if let Some(owner) = stale {
            let text = format!(
                "Node {} has old slots configuration, sending an UPDATE message about {}",
                self.name_of(s),
                self.name_of(owner)
            );
            self.log(LogLevel::Verbose, text);
            let link = self.node(s).and_then(|n| n.link);
            self.send_update(link, s, owner);
        }
    }

    fn process_fail(&mut self, now: Ms, sender: Option<NodeRef>, msg: &Message) {
        let Body::Fail { nodename } = &msg.body else {
            return;
        };
        let from = msg.header.sender;
        if sender.is_none() {
            self.log(
                LogLevel::Notice,
                format!("Ignoring FAIL message from unknown node {from} about {nodename}"),
            );
            return;
        }
        // No quorum check: any known node's word is enough.
        let Some(failing) = self.lookup(nodename) else {
            return;
        };
        let Some(n) = self.node_mut(failing) else {
            return;
        };
        if n.has(FAIL | MYSELF) {
            return;
        }
        n.flags |= FAIL;
        n.fail_time = now;
        n.flags &= !PFAIL;
        self.log(
            LogLevel::Notice,
            format!("FAIL message received from {from} about {nodename}"),
        );
        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        self.event(EventKind::FailReceived {
            from: from.to_string(),
            about: nodename.to_string(),
        });
    }

    fn process_update(&mut self, now: Ms, sender: Option<NodeRef>, msg: &Message) {
        let Body::Update {
            config_epoch,
            nodename,
            slots,
        } = &msg.body
        else {
            return;
        };
        let Some(s) = sender else { return };
        let Some(n) = self.lookup(nodename) else {
            return;
        };
        let from = self.id_of(s);
        let about = nodename.to_string();
        if self.config().bug("no-update")
            || self
                .node(n)
                .is_some_and(|nd| nd.config_epoch >= *config_epoch)
        {
            self.event(EventKind::UpdateReceived {
                from,
                about,
                config_epoch: *config_epoch,
                applied: false,
            });
            return;
        }
        if self.node(n).is_some_and(|nd| nd.is_replica()) {
            self.set_node_as_master(n);
        }
        self.set_config_epoch(n, *config_epoch, EpochReason::UpdateMessage);
        self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
        self.event(EventKind::UpdateReceived {
            from,
            about,
            config_epoch: *config_epoch,
            applied: true,
        });
        let slots: SlotSet = slots.clone();
        self.update_slots_config_with(now, n, *config_epoch, &slots, SlotChangeReason::Update);
    }
}
