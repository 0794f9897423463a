//! Node-table mutations: removal, renaming, and master/replica bookkeeping
//! (`clusterDelNode`, `clusterRenameNode`, `clusterSetNodeAsMaster`,
//! `clusterSetMaster`, `clusterNode{Add,Remove}Slave`).

use crate::events::{EventKind, RemovedReason, Role, SlotChangeReason};
use crate::wire::node_flags::*;
use crate::wire::NodeName;

use super::cron::{TODO_SAVE_CONFIG, TODO_UPDATE_STATE};
use super::node::{Ms, NodeRef};
use super::slots::all_slots;
use super::{Cluster, LinkId, LogLevel};

impl Cluster {
    /// `clusterDelNode`: unbinds its slots and open-slot marks, drops the
    /// reports it made, detaches its replicas and closes its links.
    pub(super) fn del_node(&mut self, r: NodeRef, reason: RemovedReason) {
        if r == self.myself || !self.nodes.contains_key(&r) {
            return;
        }
        for e in self
            .importing_from
            .iter_mut()
            .chain(self.migrating_to.iter_mut())
        {
            if *e == Some(r) {
                *e = None;
            }
        }
        for j in all_slots() {
            if self.owner(j) == Some(r) {
                self.del_slot(j, SlotChangeReason::NodeRemoved);
            }
        }
        self.del_reports_by(r);

        let links: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.node == Some(r))
            .map(|(&id, _)| id)
            .collect();
        for l in links {
            self.free_link(l, "node_removed");
        }
        let Some(n) = self.nodes.remove(&r) else {
            return;
        };
        self.dict_cache.forget();
        for rep in &n.replicas {
            if let Some(rn) = self.node_mut(*rep) {
                rn.replica_of = None;
            }
        }
        if let Some(m) = n.replica_of {
            self.remove_replica(m, r);
        }
        if self.by_name.get(&n.name) == Some(&r) {
            self.by_name.remove(&n.name);
        }
        if self.failover.mf_replica == Some(r) {
            self.failover.mf_replica = None;
        }
        self.event(EventKind::NodeRemoved { id: n.id(), reason });
    }

    /// `clusterRenameNode` (handshake completion).
    pub(super) fn rename_node(&mut self, r: NodeRef, new_name: NodeName) {
        let Some(n) = self.node_mut(r) else { return };
        let old = n.name;
        n.name = new_name;
        self.dict_cache.forget();
        if self.by_name.get(&old) == Some(&r) {
            self.by_name.remove(&old);
        }
        self.by_name.insert(new_name, r);
        self.log(
            LogLevel::Debug,
            format!("Renaming node {old} into {new_name}"),
        );
        self.event(EventKind::NodeRenamed {
            from: old.to_string(),
            to: new_name.to_string(),
        });
    }

    /// `clusterNodeAddSlave`.
    pub(super) fn add_replica(&mut self, master: NodeRef, replica: NodeRef) -> bool {
        let Some(m) = self.node_mut(master) else {
            return false;
        };
        if m.replicas.contains(&replica) {
            return false;
        }
        m.replicas.push(replica);
        m.flags |= MIGRATE_TO;
        true
    }

    /// `clusterNodeRemoveSlave`.
    pub(super) fn remove_replica(&mut self, master: NodeRef, replica: NodeRef) -> bool {
        let Some(m) = self.node_mut(master) else {
            return false;
        };
        let Some(pos) = m.replicas.iter().position(|&x| x == replica) else {
            return false;
        };
        m.replicas.remove(pos);
        if m.replicas.is_empty() {
            m.flags &= !MIGRATE_TO;
        }
        true
    }

    /// `role_changed` for `r`, whose role was `previous` before the change.
    pub(super) fn role_event(&mut self, r: NodeRef, previous: Role) {
        let Some(n) = self.node(r) else { return };
        let role = role_of(n.flags);
        let master = n.replica_of.map(|m| self.id_of(m));
        let node = n.id();
        self.event(EventKind::RoleChanged {
            node,
            previous,
            role,
            master,
        });
    }

    /// `clusterSetNodeAsMaster`: a node we believed a replica acts as a master.
    pub(super) fn set_node_as_master(&mut self, r: NodeRef) {
        let Some(n) = self.node(r) else { return };
        if n.is_master() {
            return;
        }
        let previous = role_of(n.flags);
        if let Some(m) = n.replica_of {
            self.remove_replica(m, r);
            if r != self.myself {
                if let Some(n) = self.node_mut(r) {
                    n.flags |= MIGRATE_TO;
                }
            }
        }
        if let Some(n) = self.node_mut(r) {
            n.flags &= !SLAVE;
            n.flags |= MASTER;
            n.replica_of = None;
        }
        if r == self.myself {
            self.forget_master_link();
        }
        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        self.role_event(r, previous);
    }

    /// `clusterSetMaster`: we become a replica of `master` (replication itself
    /// is the shell's: see `replication_master`).
    pub(super) fn set_my_master(&mut self, now: Ms, master: NodeRef) {
        if master == self.myself || !self.nodes.contains_key(&master) {
            return;
        }
        let me = self.me();
        let previous = role_of(me.flags);
        if me.replica_of != Some(master) {
            self.master_link_repointed(now);
        }
        let me = self.me();
        if me.is_master() {
            let me = self.me_mut();
            me.flags &= !(MASTER | MIGRATE_TO);
            me.flags |= SLAVE;
            self.close_all_slots();
        } else if let Some(old) = me.replica_of {
            self.remove_replica(old, self.myself);
        }
        self.me_mut().replica_of = Some(master);
        self.add_replica(master, self.myself);
        self.reset_manual_failover();
        self.role_event(self.myself, previous);
    }
}

/// The role a flags word describes (a node without either bit counts as a master).
pub(super) fn role_of(flags: u16) -> Role {
    if flags & SLAVE != 0 {
        Role::Replica
    } else {
        Role::Master
    }
}
