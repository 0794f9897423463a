//! Slot ownership: the slot table, and applying slot claims
//! (`clusterUpdateSlotsConfigWith`, reference 4.3).

use crate::events::{EventKind, SlotChangeReason};
use crate::slots::{SlotSet, CLUSTER_SLOTS};
use crate::wire::node_flags::*;
use crate::wire::NodeName;

use super::cron::{TODO_FSYNC_CONFIG, TODO_SAVE_CONFIG, TODO_UPDATE_STATE};
use super::node::{Ms, NodeRef};
use super::{Action, Cluster, LogLevel};

/// Slot ownership changes of one (from, to, reason), gathered as they are
/// made and turned into one `slot_owner_changed` event each at the end of the
/// input, in the order each key first occurred. (Grouped as recorded rather
/// than kept slot by slot: a claim moves thousands of slots at once.)
pub(crate) type SlotChangeGroup = (SlotChangeKey, SlotSet);
pub(crate) type SlotChangeKey = (Option<NodeName>, Option<NodeName>, SlotChangeReason);

/// The 64 slots `64 * w ..` of `set` as one word (bit i: slot `64 * w + i`).
fn word(set: &SlotSet, w: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&set.0[w * 8..w * 8 + 8]);
    u64::from_le_bytes(b)
}

fn set_word(set: &mut SlotSet, w: usize, v: u64) {
    set.0[w * 8..w * 8 + 8].copy_from_slice(&v.to_le_bytes());
}

/// Every slot number, for loops over the whole table.
pub(crate) fn all_slots() -> impl Iterator<Item = u16> {
    (0..CLUSTER_SLOTS).filter_map(|s| u16::try_from(s).ok())
}

impl Cluster {
    /// `clusterMastersHaveSlaves`.
    fn masters_have_replicas(&self) -> bool {
        self.nodes
            .values()
            .filter(|n| !n.is_replica())
            .any(|n| !n.replicas.is_empty())
    }

    /// `clusterAddSlot`: binds an unassigned slot; false if it is taken.
    pub(super) fn add_slot(&mut self, node: NodeRef, slot: u16, reason: SlotChangeReason) -> bool {
        match self.bind_slot(node, slot) {
            Some(to) => {
                self.record_slot_change(slot, None, Some(to), reason);
                true
            }
            None => false,
        }
    }

    /// [`Cluster::add_slot`] without the record: the name bound to, or None
    /// if the slot is taken or the node unknown (then nothing changed).
    fn bind_slot(&mut self, node: NodeRef, slot: u16) -> Option<NodeName> {
        if self.owner(slot).is_some() || usize::from(slot) >= CLUSTER_SLOTS {
            return None;
        }
        // Asked only for a master's first slot: it walks every node, and
        // claims bind thousands of slots one at a time.
        let first_slot = self
            .node(node)
            .is_some_and(|n| n.numslots == 0 && !n.slots.contains(slot));
        let have_replicas = first_slot && self.masters_have_replicas();
        let n = self.node_mut(node)?;
        if !n.slots.contains(slot) {
            n.slots.insert(slot);
            n.numslots += 1;
            // A master's first slot makes it a replica-migration target when
            // some master has replicas (redis issue #3043).
            if n.numslots == 1 && have_replicas {
                n.flags |= MIGRATE_TO;
            }
        }
        let to = n.name;
        if let Some(o) = self.slot_owner.get_mut(usize::from(slot)) {
            // Unowned until now (checked above).
            *o = Some(node);
            self.unowned_slots -= 1;
        }
        Some(to)
    }

    /// `clusterDelSlot`: unbinds a slot; false if it was unassigned.
    pub(super) fn del_slot(&mut self, slot: u16, reason: SlotChangeReason) -> bool {
        match self.unbind_slot(slot) {
            Some(from) => {
                self.record_slot_change(slot, from, None, reason);
                true
            }
            None => false,
        }
    }

    /// [`Cluster::del_slot`] without the record: None if the slot was
    /// unassigned, else the previous owner's name (None if not in the table).
    fn unbind_slot(&mut self, slot: u16) -> Option<Option<NodeName>> {
        let owner = self.owner(slot)?;
        // A slot our shard served: its shard channels go (redis 7.0
        // `clusterDelSlot` -> `removeChannelsInSlot`).
        if let Some(primary) = self.shard_primary(owner) {
            let me = self.me();
            if primary == self.myself || (me.is_replica() && me.replica_of == Some(primary)) {
                self.shard_slots_dropped.push(slot);
            }
        }
        let mut from = None;
        if let Some(n) = self.node_mut(owner) {
            if n.slots.contains(slot) {
                n.slots.remove(slot);
                n.numslots -= 1;
            }
            from = Some(n.name);
        }
        if let Some(o) = self.slot_owner.get_mut(usize::from(slot)) {
            // Owned until now (checked above).
            *o = None;
            self.unowned_slots += 1;
        }
        Some(from)
    }

    /// Unbind + bind, recorded as one change.
    pub(super) fn rebind_slot(&mut self, slot: u16, to: NodeRef, reason: SlotChangeReason) {
        let from = self.owner(slot).map(|o| self.name_of(o));
        self.unbind_slot(slot);
        self.bind_slot(to, slot);
        let to_name = Some(self.name_of(to));
        if from != to_name {
            self.record_slot_change(slot, from, to_name, reason);
        }
    }

    /// [`Cluster::rebind_slot`] for each of `slots` in slot order, to a node
    /// that owns none of them: the slots of each previous owner gathered into
    /// a bitmap, then the owners' and `to`'s bitmaps and the recorded changes
    /// updated a word at a time (a claim moves thousands of slots at once;
    /// a word of unowned slots is handled whole). The outcome is the same:
    /// bitmaps and counts, the MIGRATE_TO flag, shard channels dropped and
    /// the recorded changes, in slot order.
    pub(super) fn rebind_slots(&mut self, slots: &SlotSet, to: NodeRef, reason: SlotChangeReason) {
        // Per word: the slots asked for and, of those, the unowned ones; the
        // owned ones with their owners, in slot order.
        let mut words: Vec<(usize, u64, u64)> = Vec::new();
        let mut owned: Vec<(u16, NodeRef)> = Vec::new();
        for w in 0..CLUSTER_SLOTS / 64 {
            let m = word(slots, w);
            if m == 0 {
                continue;
            }
            let base = w * 64;
            let mut nones = 0u64;
            let mut bits = m;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                match self.slot_owner[base + i] {
                    None => nones |= 1 << i,
                    Some(o) => owned.push(((base + i) as u16, o)),
                }
            }
            words.push((w, m, nones));
        }
        if words.is_empty() {
            return;
        }
        // (Asked once per run of one owner: the answer is the owner's.)
        let mut prev = None;
        let odd = self.node(to).is_none()
            || owned.iter().any(|&(_, o)| {
                let changed = Some(o) != prev;
                prev = Some(o);
                changed && (o == to || self.node(o).is_none())
            });
        if odd {
            for w in 0..CLUSTER_SLOTS / 64 {
                let mut bits = word(slots, w);
                while bits != 0 {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    self.rebind_slot((w * 64 + i) as u16, to, reason);
                }
            }
            return;
        }
        // The previous owners: name, and whether their slots are our shard's.
        let me = self.me();
        let (me_replica, my_master) = (me.is_replica(), me.replica_of);
        let mut owners: Vec<(NodeRef, NodeName, bool)> = Vec::new();
        let mut prev = None;
        for &(_, o) in &owned {
            if prev == Some(o) {
                continue;
            }
            prev = Some(o);
            if owners.iter().any(|x| x.0 == o) {
                continue;
            }
            let ours = self
                .shard_primary(o)
                .is_some_and(|p| p == self.myself || (me_replica && my_master == Some(p)));
            owners.push((o, self.name_of(o), ours));
        }
        // Unbind (clusterDelSlot).
        if owners.iter().any(|x| x.2) {
            for &(j, o) in &owned {
                if owners.iter().any(|x| x.0 == o && x.2) {
                    self.shard_slots_dropped.push(j);
                }
            }
        }
        // The slots of each previous owner (None: unowned), in the order
        // each first occurs: the bitmaps then change a word at a time. A
        // word's unowned slots go in whole; the None group is created when
        // its first slot comes, before any owned slot that follows it.
        let mut by_from: Vec<(Option<NodeRef>, SlotSet)> = Vec::new();
        let mut none_g: Option<usize> = None;
        let mut unowned = 0usize;
        let mut owned_at = owned.iter();
        let mut last = usize::MAX;
        for &(w, m, nones) in &words {
            unowned += nones.count_ones() as usize;
            let first_none = if nones == 0 {
                64
            } else {
                nones.trailing_zeros()
            };
            let mut rest = m & !nones;
            while rest != 0 {
                let i = rest.trailing_zeros();
                rest &= rest - 1;
                if none_g.is_none() && first_none < i {
                    by_from.push((None, SlotSet::new()));
                    none_g = Some(by_from.len() - 1);
                }
                let Some(&(j, o)) = owned_at.next() else {
                    break;
                };
                if by_from.get(last).is_none_or(|x| x.0 != Some(o)) {
                    last = match by_from.iter().position(|x| x.0 == Some(o)) {
                        Some(g) => g,
                        None => {
                            by_from.push((Some(o), SlotSet::new()));
                            by_from.len() - 1
                        }
                    };
                }
                if let Some((_, set)) = by_from.get_mut(last) {
                    set.insert(j);
                }
            }
            if nones != 0 {
                let g = *none_g.get_or_insert_with(|| {
                    by_from.push((None, SlotSet::new()));
                    by_from.len() - 1
                });
                if let Some((_, set)) = by_from.get_mut(g) {
                    set_word(set, w, word(set, w) | nones);
                }
            }
        }
        for (f, m) in &by_from {
            let Some(n) = f.and_then(|o| self.nodes.get_mut(&o)) else {
                continue;
            };
            for w in 0..CLUSTER_SLOTS / 64 {
                let (mw, have) = (word(m, w), word(&n.slots, w));
                if mw & have != 0 {
                    n.numslots -= (mw & have).count_ones() as usize;
                    set_word(&mut n.slots, w, have & !mw);
                }
            }
        }
        // Bind (clusterAddSlot). Whether masters have replicas depends on no
        // slot, so it is asked once, and only when `to` has none yet.
        let have_replicas =
            self.node(to).is_some_and(|n| n.numslots == 0) && self.masters_have_replicas();
        if let Some(n) = self.nodes.get_mut(&to) {
            let was_empty = n.numslots == 0;
            let mut added = 0usize;
            for &(w, m, _) in &words {
                let have = word(&n.slots, w);
                if m & !have != 0 {
                    added += (m & !have).count_ones() as usize;
                    set_word(&mut n.slots, w, have | m);
                }
            }
            n.numslots += added;
            // Per slot, the flag is set when the count goes 0 -> 1 with a
            // slot the bitmap did not have: only if it started at 0.
            if was_empty && added > 0 && have_replicas {
                n.flags |= MIGRATE_TO;
            }
        }
        self.unowned_slots -= unowned;
        for &(w, m, _) in &words {
            let base = w * 64;
            for (i, o) in self.slot_owner[base..base + 64].iter_mut().enumerate() {
                if m & (1 << i) != 0 {
                    *o = Some(to);
                }
            }
        }
        // One group of changes per previous owner, created in the order the
        // owners first occur (as slot by slot).
        let to_name = self.name_of(to);
        for (f, m) in &by_from {
            let from = f
                .and_then(|o| owners.iter().find(|x| x.0 == o))
                .map(|x| x.1);
            if from == Some(to_name) {
                continue;
            }
            let g = self.slot_change_group((from, Some(to_name), reason));
            if let Some((_, set)) = self.slot_changes.get_mut(g) {
                for w in 0..CLUSTER_SLOTS / 64 {
                    let mw = word(m, w);
                    if mw != 0 {
                        let have = word(set, w);
                        set_word(set, w, have | mw);
                    }
                }
            }
        }
    }

    /// `clusterDelNodeSlots`.
    pub(super) fn del_node_slots(&mut self, node: NodeRef, reason: SlotChangeReason) -> usize {
        let slots: Vec<u16> = self
            .node(node)
            .map(|n| n.slots.iter().collect())
            .unwrap_or_default();
        for &s in &slots {
            if self.owner(s) == Some(node) {
                self.del_slot(s, reason);
            } else if let Some(n) = self.node_mut(node) {
                // Out of sync with the table (cannot happen): just drop the bit.
                n.slots.remove(s);
                n.numslots = n.numslots.saturating_sub(1);
            }
        }
        slots.len()
    }

    /// `clusterCloseAllSlots`: clears every migrating/importing mark.
    pub(super) fn close_all_slots(&mut self) {
        self.migrating_to.iter_mut().for_each(|s| *s = None);
        self.importing_from.iter_mut().for_each(|s| *s = None);
    }

    fn record_slot_change(
        &mut self,
        slot: u16,
        from: Option<NodeName>,
        to: Option<NodeName>,
        reason: SlotChangeReason,
    ) {
        let g = self.slot_change_group((from, to, reason));
        if let Some((_, set)) = self.slot_changes.get_mut(g) {
            set.insert(slot);
        }
    }

    /// The index of `key`'s group of recorded changes, a new one at the end
    /// if it has none yet (the last group is looked at first: changes come
    /// in runs of one key).
    fn slot_change_group(&mut self, key: SlotChangeKey) -> usize {
        if let Some(last) = self.slot_changes.len().checked_sub(1) {
            if self.slot_changes[last].0 == key {
                return last;
            }
        }
        match self.slot_changes.iter().position(|(k, _)| *k == key) {
            Some(g) => g,
            None => {
                self.slot_changes.push((key, SlotSet::new()));
                self.slot_changes.len() - 1
            }
        }
    }

    /// Turns recorded slot changes into events, one per (from, to, reason).
    pub(super) fn flush_slot_events(&mut self) {
        if !self.shard_slots_dropped.is_empty() {
            let mut slots = SlotSet::new();
            for s in std::mem::take(&mut self.shard_slots_dropped) {
                slots.insert(s);
            }
            self.actions.push_back(Action::DropShardChannels { slots });
        }
        if self.slot_changes.is_empty() {
            return;
        }
        for ((from, to, reason), set) in std::mem::take(&mut self.slot_changes) {
            let config_epoch = to
                .and_then(|t| self.lookup(&t))
                .and_then(|r| self.node(r))
                .map_or(0, |n| n.config_epoch);
            self.event(EventKind::SlotOwnerChanged {
                slots: set.ranges().into_iter().map(|(a, b)| [a, b]).collect(),
                from: from.map(|n| n.to_string()),
                to: to.map(|n| n.to_string()),
                config_epoch,
                reason,
            });
        }
    }

    /// `clusterUpdateSlotsConfigWith`: `sender` (a master, or the node an
    /// UPDATE is about) claims `claimed` at `epoch`.
    pub(super) fn update_slots_config_with(
        &mut self,
        now: Ms,
        sender: NodeRef,
        epoch: u64,
        claimed: &SlotSet,
        reason: SlotChangeReason,
    ) {
        if sender == self.myself {
            self.log(
                LogLevel::Warning,
                "Discarding UPDATE message about myself.".to_string(),
            );
            return;
        }
        let me = self.me();
        // The node whose slots we care about losing: us, or our master.
        let curmaster = if me.is_master() {
            Some(self.myself)
        } else {
            me.replica_of
        };
        // Slots we lose that may hold keys. Without a keyspace here every lost
        // slot of ours counts; deleting keys of an empty slot is a no-op.
        let mut dirty: Vec<u16> = Vec::new();
        let mut sender_slots = 0usize;
        let mut migrated_our_slots = 0usize;
        let mut new_master: Option<NodeRef> = None;
        let mut rebind = SlotSet::new();
        let mut rebinding = false;

        // A word of 64 slots at a time: slots the sender already owns only
        // update `owner_not_claiming` (claimed: it vouches again; not
        // claimed: it stopped), which is done for the whole word; the other
        // claimed slots are decided one by one, in slot order, except the
        // unowned ones: those are always taken (owner epoch 0, unclaimed)
        // unless importing, a word at a time. No decision reads what another
        // slot's decision changes (a slot's own `owner_not_claiming` bit is
        // read before it is written).
        let mut epoch_of: Option<(NodeRef, u64)> = None;
        for w in 0..CLUSTER_SLOTS / 64 {
            let base = w * 64;
            let c = word(claimed, w);
            let (mut senders, mut nones) = (0u64, 0u64);
            for (i, o) in self.slot_owner[base..base + 64].iter().enumerate() {
                match *o {
                    None => nones |= 1 << i,
                    Some(o) if o == sender => senders |= 1 << i,
                    Some(_) => {}
                }
            }
            sender_slots += c.count_ones() as usize;
            if senders != 0 {
                let onc = word(&self.owner_not_claiming, w);
                set_word(
                    &mut self.owner_not_claiming,
                    w,
                    (onc & !(c & senders)) | (!c & senders),
                );
            }
            let mut rest = c & !senders;
            let mut free = rest & nones;
            if self.slots_ever_opened {
                let mut b = free;
                while b != 0 {
                    let i = b.trailing_zeros() as usize;
                    b &= b - 1;
                    if self.importing_from[base + i].is_some() {
                        free &= !(1 << i);
                    }
                }
            }
            if free != 0 {
                set_word(&mut rebind, w, free);
                let onc = word(&self.owner_not_claiming, w);
                set_word(&mut self.owner_not_claiming, w, onc & !free);
                rebinding = true;
            }
            rest &= !nones;
            while rest != 0 {
                let i = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let j = (base + i) as u16;
                let owner = self.owner(j);
                // An open import is closed only by an admin. (None can be
                // open before a slot was ever opened.)
                if self.slots_ever_opened
                    && self
                        .importing_from
                        .get(usize::from(j))
                        .copied()
                        .flatten()
                        .is_some()
                {
                    continue;
                }
                let owner_epoch = match (owner, epoch_of) {
                    (None, _) => 0,
                    (Some(o), Some((p, e))) if o == p => e,
                    (Some(o), _) => {
                        let e = self.node(o).map_or(0, |n| n.config_epoch);
                        epoch_of = Some((o, e));
                        e
                    }
                };
                if self.slot_unclaimed(j) || owner_epoch < epoch {
                    if owner == Some(self.myself) {
                        dirty.push(j);
                    }
                    if owner.is_some() && owner == curmaster {
                        new_master = Some(sender);
                        migrated_our_slots += 1;
                    }
                    // Rebound after the walk, all at once: no decision of
                    // this loop reads what rebinding another slot changes
                    // (a slot's owner, its claim, the owners' epochs).
                    rebind.insert(j);
                    rebinding = true;
                    self.owner_not_claiming.remove(j);
                }
            }
        }
        if rebinding {
            self.rebind_slots(&rebind, sender, reason);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
        }

        let curmaster_slots = curmaster
            .and_then(|m| self.node(m))
            .map_or(usize::MAX, |n| n.numslots);
        let me = self.me();
        let grandmaster = me
            .replica_of
            .and_then(|m| self.node(m))
            .and_then(|m| m.replica_of);
        if new_master.is_some()
            && curmaster_slots == 0
            && (self.cfg.allow_replica_migration || sender_slots == migrated_our_slots)
        {
            let name = self.name_of(sender);
            self.log(
                LogLevel::Warning,
                format!(
                    "Configuration change detected. Reconfiguring myself as a replica of {name}"
                ),
            );
            self.set_my_master(now, sender);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
        } else if let Some(gm) = grandmaster.filter(|&gm| gm != self.myself) {
            // Our master became a replica: follow it to its master.
            let name = self.name_of(gm);
            self.log(
                LogLevel::Warning,
                format!(
                    "I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {name}"
                ),
            );
            self.set_my_master(now, gm);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
        } else if !dirty.is_empty() {
            self.actions
                .push_back(Action::DeleteKeysInSlots { slots: dirty });
        }
    }
}
