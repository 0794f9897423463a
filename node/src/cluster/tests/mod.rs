//! In-crate tests of the cluster core: a reusable simulator (`sim`) and
//! scenario tests on top of it, plus hand-driven single-core tests.

pub mod sim;

mod bugs;
mod commands;
mod conf;
mod epochs;
mod failover;
mod failure;
mod hostile;
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

    /// What nodes.conf would contain now.
    pub(crate) fn config_text_for_tests(&self) -> String {
        self.config_file_contents()
    }
}

/// Node IDs for hand-written fixtures: 40 copies of one character.
pub(crate) fn fixed_id(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

impl Cluster {
    /// Structural invariants that no input may break; returns the first violation.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        if !self.nodes.contains_key(&self.myself) {
            return Err("myself missing".into());
        }
        for (name, r) in &self.by_name {
            match self.nodes.get(r) {
                Some(n) if n.name == *name => {}
                _ => return Err(format!("by_name {name} -> {r} is stale")),
            }
        }
        for (j, owner) in self.slot_owner.iter().enumerate() {
            let slot = u16::try_from(j).map_err(|e| e.to_string())?;
            if let Some(o) = owner {
                let n = self
                    .nodes
                    .get(o)
                    .ok_or(format!("slot {j} owned by a missing node"))?;
                if !n.slots.contains(slot) {
                    return Err(format!("slot {j}: owner's bitmap lacks it"));
                }
            }
            for (what, t) in [
                ("migrating", &self.migrating_to),
                ("importing", &self.importing_from),
            ] {
                if let Some(Some(r)) = t.get(j) {
                    if !self.nodes.contains_key(r) {
                        return Err(format!("{what} slot {j} names a missing node"));
                    }
                }
            }
        }
        let unowned = self.slot_owner.iter().filter(|o| o.is_none()).count();
        if unowned != self.unowned_slots {
            return Err(format!(
                "unowned_slots {} != table {unowned}",
                self.unowned_slots
            ));
        }
        for (&r, n) in &self.nodes {
            if n.numslots != n.slots.count() {
                return Err(format!(
                    "{}: numslots {} != bitmap {}",
                    n.name,
                    n.numslots,
                    n.slots.count()
                ));
            }
            if n.slots.iter().any(|s| self.owner(s) != Some(r)) {
                return Err(format!(
                    "{}: bitmap has a slot the table gives elsewhere",
                    n.name
                ));
            }
            if let Some(m) = n.replica_of {
                let mn = self
                    .nodes
                    .get(&m)
                    .ok_or(format!("{}: master missing", n.name))?;
                if n.is_replica() && !mn.replicas.contains(&r) {
                    return Err(format!("{}: not in its master's replica list", n.name));
                }
            }
            for rep in &n.replicas {
                if self.nodes.get(rep).and_then(|x| x.replica_of) != Some(r) {
                    return Err(format!(
                        "{}: replica list entry does not point back",
                        n.name
                    ));
                }
            }
            for fr in &n.fail_reports {
                if !self.nodes.contains_key(&fr.reporter) {
                    return Err(format!("{}: report from a missing node", n.name));
                }
            }
            for (dir, l) in [("out", n.link), ("in", n.inbound_link)] {
                if let Some(id) = l {
                    let link = self
                        .links
                        .get(&id)
                        .ok_or(format!("{}: {dir} link {id} missing", n.name))?;
                    if link.node != Some(r) || link.inbound != (dir == "in") {
                        return Err(format!("{}: {dir} link {id} does not point back", n.name));
                    }
                }
            }
        }
        for (id, l) in &self.links {
            if let Some(r) = l.node {
                let n = self
                    .nodes
                    .get(&r)
                    .ok_or(format!("link {id} of a missing node"))?;
                if n.link != Some(*id) && n.inbound_link != Some(*id) {
                    return Err(format!("link {id} not referenced by its node"));
                }
            }
        }
        Ok(())
    }
}
