//! One entry of the node table (redis `clusterNode`).

use crate::slots::SlotSet;
use crate::wire::node_flags::*;
use crate::wire::NodeName;

use super::LinkId;

/// Internal handle of a node-table entry. Never reused, so a stale handle
/// simply finds nothing (entries are renamed in place on handshake, so the
/// handle, not the name, is the identity).
pub(crate) type NodeRef = u64;

/// Internal time: signed ms, as redis's `mstime_t`, so that a clock that
/// jumps backwards gives negative deltas instead of underflows.
pub(crate) type Ms = i64;

/// One failure report: `reporter` (a master) said the node was PFAIL/FAIL at `time`.
#[derive(Clone, Debug)]
pub(crate) struct FailReport {
    pub reporter: NodeRef,
    pub time: Ms,
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub name: NodeName,
    /// Creation time (handshake timeout, NOADDR log).
    pub ctime: Ms,
    pub flags: u16,
    /// Last configEpoch observed for this node.
    pub config_epoch: u64,
    /// Slots this node serves, mirrored by `Cluster::slot_owner`.
    pub slots: SlotSet,
    pub numslots: usize,
    /// Replicas, if a master (kept for failover ranking and SHARDS).
    pub replicas: Vec<NodeRef>,
    /// Its master, if a replica and the master is known.
    pub replica_of: Option<NodeRef>,
    /// Time of the oldest unanswered PING on our outbound link, 0 if none.
    pub ping_sent: Ms,
    pub pong_received: Ms,
    /// Last time any packet from this node arrived.
    pub data_received: Ms,
    pub fail_time: Ms,
    /// Last time we voted for a replica of this master.
    #[allow(dead_code)] // vote rules: next issue
    pub voted_time: Ms,
    pub repl_offset_time: Ms,
    /// Start of the orphaned-master condition (replica migration, next issue).
    #[allow(dead_code)]
    pub orphaned_time: Ms,
    pub repl_offset: u64,
    /// Text IP ("" when unknown).
    pub ip: String,
    pub hostname: String,
    pub port: u16,
    pub cport: u16,
    pub pport: u16,
    /// Outbound link (we connected), may still be connecting.
    pub link: Option<LinkId>,
    /// Inbound link (the peer connected), tied on its first packet.
    pub inbound_link: Option<LinkId>,
    pub fail_reports: Vec<FailReport>,
}

impl Node {
    pub fn new(name: NodeName, flags: u16, now: Ms) -> Node {
        Node {
            name,
            ctime: now,
            flags,
            config_epoch: 0,
            slots: SlotSet::new(),
            numslots: 0,
            replicas: Vec::new(),
            replica_of: None,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset_time: 0,
            orphaned_time: 0,
            repl_offset: 0,
            ip: String::new(),
            hostname: String::new(),
            port: 0,
            cport: 0,
            pport: 0,
            link: None,
            inbound_link: None,
            fail_reports: Vec::new(),
        }
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    pub fn is_master(&self) -> bool {
        self.has(MASTER)
    }

    pub fn is_replica(&self) -> bool {
        self.has(SLAVE)
    }

    pub fn in_handshake(&self) -> bool {
        self.has(HANDSHAKE)
    }

    /// PFAIL (redis `nodeTimedOut`).
    pub fn timed_out(&self) -> bool {
        self.has(PFAIL)
    }

    pub fn failed(&self) -> bool {
        self.has(FAIL)
    }

    pub fn id(&self) -> String {
        self.name.to_string()
    }
}

/// The CLUSTER NODES / nodes.conf flags text: fixed order, comma separated,
/// `noflags` when none apply (MEET and MIGRATE_TO are never printed).
pub(crate) fn flags_text(flags: u16) -> String {
    const TABLE: [(u16, &str); 8] = [
        (MYSELF, "myself"),
        (MASTER, "master"),
        (SLAVE, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];
    let parts: Vec<&str> = TABLE
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if parts.is_empty() {
        "noflags".to_string()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_text_order_and_noflags() {
        assert_eq!(flags_text(MASTER | MYSELF | MIGRATE_TO), "myself,master");
        assert_eq!(
            flags_text(SLAVE | FAIL | NOFAILOVER),
            "slave,fail,nofailover"
        );
        assert_eq!(flags_text(MASTER | PFAIL), "master,fail?");
        assert_eq!(flags_text(HANDSHAKE | MEET), "handshake");
        assert_eq!(flags_text(0), "noflags");
        assert_eq!(flags_text(MEET), "noflags");
    }
}
