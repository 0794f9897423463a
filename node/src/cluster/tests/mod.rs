//! In-crate tests of the cluster core: a reusable simulator (`sim`) and
//! scenario tests on top of it, plus hand-driven single-core tests.

pub mod sim;

mod commands;
mod conf;
mod epochs;
mod failure;
mod membership;

use crate::wire::NodeName;

use super::Cluster;

/// Test-side views into a core (the tests module may read private state).
impl Cluster {
    /// IDs of the non-handshake nodes this core knows, itself included.
    pub(crate) fn known_ids(&self) -> Vec<NodeName> {
        self.nodes
            .values()
            .filter(|n| !n.in_handshake())
            .map(|n| n.name)
            .collect()
    }

    pub(crate) fn handshake_count(&self) -> usize {
        self.nodes.values().filter(|n| n.in_handshake()).count()
    }

    /// Flags this core holds for `id`.
    pub(crate) fn flags_of(&self, id: &NodeName) -> Option<u16> {
        self.lookup(id).and_then(|r| self.node(r)).map(|n| n.flags)
    }

    pub(crate) fn has_flag(&self, id: &NodeName, flag: u16) -> bool {
        self.flags_of(id).is_some_and(|f| f & flag != 0)
    }

    /// Owner of `slot` in this core's table.
    pub(crate) fn owner_id(&self, slot: u16) -> Option<NodeName> {
        self.owner(slot).map(|r| self.name_of(r))
    }

    /// The configEpoch this core holds for `id`.
    pub(crate) fn config_epoch_of(&self, id: &NodeName) -> Option<u64> {
        self.lookup(id)
            .and_then(|r| self.node(r))
            .map(|n| n.config_epoch)
    }

    /// Number of links this core has (outbound + tied inbound) to node `id`.
    pub(crate) fn link_count(&self, id: &NodeName) -> usize {
        self.lookup(id).and_then(|r| self.node(r)).map_or(0, |n| {
            usize::from(n.link.is_some()) + usize::from(n.inbound_link.is_some())
        })
    }

    pub(crate) fn report_count(&self, id: &NodeName) -> usize {
        self.lookup(id)
            .and_then(|r| self.node(r))
            .map_or(0, |n| n.fail_reports.len())
    }

    pub(crate) fn cluster_size(&self) -> usize {
        self.size
    }
}

/// Node IDs for hand-written fixtures: 40 copies of one character.
pub(crate) fn fixed_id(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}
