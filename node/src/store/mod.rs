//! The keyspace of db 0, kept by hash slot.
//!
//! Each of the 16384 slots has its own hash map, so that the cluster questions
//! (`COUNTKEYSINSLOT`, `GETKEYSINSLOT`, dropping a lost slot) cost nothing
//! beyond the keys they touch. Values are strings, lists or sets of `Bytes`.
//!
//! Time is always passed in (`now` in Unix milliseconds): keys carry an
//! absolute expiry, checked lazily on access and swept by [`Db::active_expire`].
//! Nothing in here reads a clock.
//!
//! WATCH support follows redis `touchWatchedKey`: the db counts modifications
//! of watched keys only (a client's [`WatchToken`] remembers the count it saw),
//! so unwatched traffic pays one `is_empty` check per write.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use bytes::Bytes;

use crate::slots::{key_slot, CLUSTER_SLOTS};

mod hash;
mod key;
mod stream;
mod zset;

pub use hash::Hash;
pub use key::Key;
pub use stream::{Stream, StreamId};
pub use zset::{Score, ZSet};

/// A stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(Bytes),
    List(VecDeque<Bytes>),
    // The larger kinds are boxed: the keyspace's buckets hold a `Value`, and
    // every SET and GET reads its bucket (136 bytes, three cache lines, with
    // them inline; 88 boxed).
    Set(Box<HashSet<Bytes>>),
    Hash(Box<Hash>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// redis's type number (`OBJ_STRING`...), which DEBUG DIGEST mixes in.
    pub fn type_code(&self) -> u32 {
        match self {
            Value::Str(_) => 0,
            Value::List(_) => 1,
            Value::Set(_) => 2,
            Value::ZSet(_) => 3,
            Value::Hash(_) => 4,
            Value::Stream(_) => 6,
        }
    }
}

/// One key's value and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry, Unix ms.
    expire_at: Option<u64>,
}

impl Entry {
    pub fn expire_at(&self) -> Option<u64> {
        self.expire_at
    }

    fn is_expired(&self, now: u64) -> bool {
        matches!(self.expire_at, Some(at) if at <= now)
    }
}

/// What a key's expiry check does when the key is past its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExpireMode {
    /// A master: delete the key (and report it through [`Db::take_expired`],
    /// so that the deletion can be replicated).
    #[default]
    Delete,
    /// A replica: hide the key from lookups but keep it; its master sends
    /// the DEL. (redis `expireIfNeeded` with `masterhost` set.)
    Hide,
}

/// Per-key modification counter, kept only while some client watches the key.
#[derive(Debug)]
struct Watch {
    clients: usize,
    touches: u64,
    /// The value of `touches` right after the last deletion of this key for
    /// having expired (which redis does not count as a change for a client
    /// that started watching when the key was already expired).
    expired_delete_at: Option<u64>,
}

/// What a client remembers about a key it WATCHes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchToken {
    key: Bytes,
    touches: u64,
    /// The key existed but was already logically expired at WATCH time.
    expired: bool,
}

impl WatchToken {
    pub fn key(&self) -> &Bytes {
        &self.key
    }
}

/// The keyspace (db 0).
pub struct Db {
    slots: Box<[HashMap<Key, Entry>]>,
    len: usize,
    /// (expire_at, key) for every key with a TTL, soonest first.
    expires: BTreeSet<(u64, Bytes)>,
    watched: HashMap<Bytes, Watch>,
    mode: ExpireMode,
    /// Keys deleted by lazy expiry since the last `take_expired`.
    expired_log: Vec<Bytes>,
    /// Writes that changed the dataset (redis `server.dirty`).
    dirty: u64,
    /// Keys blocked clients wait on, with how many wait on each.
    blocking: HashMap<Bytes, usize>,
    /// One of `blocking`'s keys was modified since the last check.
    ready: bool,
    /// INFO stats counters about the keyspace.
    pub stats: KeyspaceStats,
}

/// keyspace_hits / keyspace_misses (lookups by reads) and expired_keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyspaceStats {
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
}

impl Default for Db {
    fn default() -> Self {
        Db::new()
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("len", &self.len)
            .field("expires", &self.expires.len())
            .finish()
    }
}

impl Db {
    pub fn new() -> Db {
        // One hasher seed for all slots: per-map seeds buy nothing here.
        let hasher = RandomState::new();
        let slots = (0..CLUSTER_SLOTS)
            .map(|_| HashMap::with_hasher(hasher.clone()))
            .collect();
        Db {
            slots,
            len: 0,
            expires: BTreeSet::new(),
            watched: HashMap::new(),
            mode: ExpireMode::Delete,
            expired_log: Vec::new(),
            dirty: 0,
            blocking: HashMap::new(),
            ready: false,
            stats: KeyspaceStats::default(),
        }
    }

    pub fn set_expire_mode(&mut self, mode: ExpireMode) {
        self.mode = mode;
    }

    pub fn expire_mode(&self) -> ExpireMode {
        self.mode
    }

    /// Number of keys, logically expired ones not yet deleted included (as DBSIZE).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of keys with a TTL.
    pub fn expires_count(&self) -> usize {
        self.expires.len()
    }

    /// Writes applied so far (redis `server.dirty`).
    pub fn dirty(&self) -> u64 {
        self.dirty
    }

    fn map(&self, key: &[u8]) -> &HashMap<Key, Entry> {
        &self.slots[slot_index(key)]
    }

    // ---- lookups ----

    /// The expiry rule for `key` (redis `expireIfNeeded`): true if the key
    /// exists but is past its time, i.e. absent for the caller. In `Delete`
    /// mode such a key is removed here.
    fn expired(&mut self, slot: usize, key: &[u8], now: u64) -> bool {
        // Most keyspaces have no TTLs at all: skip the extra lookup then.
        if self.expires.is_empty() {
            return false;
        }
        match self.slots[slot].get(key) {
            Some(e) if e.is_expired(now) => {}
            _ => return false,
        }
        if self.mode == ExpireMode::Delete && self.remove_entry_in(slot, key).is_some() {
            self.dirty += 1;
            self.stats.expired += 1;
            self.touch_expired(key);
            self.expired_log.push(Bytes::copy_from_slice(key));
        }
        true
    }

    /// A key's entry, after the expiry check (redis `lookupKeyRead`, which
    /// also counts keyspace hits and misses).
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        let slot = slot_index(key);
        if self.expired(slot, key, now) {
            self.stats.misses += 1;
            return None;
        }
        let found = self.slots[slot].get(key);
        if found.is_some() {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
        }
        found
    }

    /// A key's entry for modification, after the expiry check. The caller
    /// must call [`Db::modified`] if it changes anything.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let slot = slot_index(key);
        if self.expired(slot, key, now) {
            return None;
        }
        self.slots[slot].get_mut(key)
    }

    /// Whether the key exists and is not expired, without side effects
    /// (redis `LOOKUP_NOEXPIRE`: used by cluster routing).
    pub fn contains(&self, key: &[u8], now: u64) -> bool {
        matches!(self.map(key).get(key), Some(e) if !e.is_expired(now))
    }

    /// The key exists in the map but is past its expiry.
    pub fn is_logically_expired(&self, key: &[u8], now: u64) -> bool {
        matches!(self.map(key).get(key), Some(e) if e.is_expired(now))
    }

    // ---- writes ----

    /// Stores `value` under `key` (redis `setKey`): the old TTL is dropped
    /// unless `keep_ttl`. Counts as a modification.
    pub fn set(&mut self, key: Bytes, value: Value, keep_ttl: bool, now: u64) {
        let slot = slot_index(&key);
        // An expired key is deleted first so that WATCH sees both events,
        // as redis's lookupKeyWrite does.
        self.expired(slot, &key, now);
        // An overwrite (the usual SET) finds the entry without copying the
        // key; only a new key pays a second probe. The copy made up front and
        // dropped on an overwrite cost a write to a cold block per SET
        // (issue 18).
        let map = &mut self.slots[slot];
        let dropped_ttl = match map.get_mut(&key[..]) {
            Some(entry) => {
                entry.value = value;
                if keep_ttl {
                    None
                } else {
                    entry.expire_at.take()
                }
            }
            None => {
                map.insert(
                    Key::new(&key),
                    Entry {
                        value,
                        expire_at: None,
                    },
                );
                self.len += 1;
                None
            }
        };
        if let Some(at) = dropped_ttl {
            self.expires.remove(&(at, key.clone()));
        }
        self.modified(&key);
    }

    /// Inserts a value for a key the caller knows to be absent (after a
    /// `get`/`get_mut` returned `None`), e.g. the first LPUSH.
    pub fn insert_new(&mut self, key: Bytes, value: Value) {
        let slot = slot_index(&key);
        if self.slots[slot].contains_key(&key[..]) {
            // Not absent after all (the caller skipped the lookup): replace
            // it, keeping the expiry index consistent.
            self.remove_entry_in(slot, &key);
        }
        self.insert_in(slot, key, value);
    }

    fn insert_in(&mut self, slot: usize, key: Bytes, value: Value) {
        self.modified(&key);
        self.slots[slot].insert(
            Key::new(&key),
            Entry {
                value,
                expire_at: None,
            },
        );
        self.len += 1;
    }

    /// Deletes a key (after the expiry check). Returns whether it existed.
    pub fn remove(&mut self, key: &[u8], now: u64) -> bool {
        let slot = slot_index(key);
        if self.expired(slot, key, now) {
            return false;
        }
        match self.remove_entry_in(slot, key) {
            Some(_) => {
                self.modified(key);
                true
            }
            None => false,
        }
    }

    /// Removes a key whose list or set became empty. Counts as the same
    /// modification the caller already signalled, so no extra touch.
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        let slot = slot_index(key);
        let empty = match self.slots[slot].get(key).map(|e| &e.value) {
            Some(Value::List(l)) => l.is_empty(),
            Some(Value::Set(s)) => s.is_empty(),
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::ZSet(z)) => z.is_empty(),
            // An empty stream stays (redis keeps it, with its last ID).
            _ => false,
        };
        if empty {
            self.remove_entry_in(slot, key);
        }
    }

    fn remove_entry_in(&mut self, slot: usize, key: &[u8]) -> Option<Entry> {
        let entry = self.slots[slot].remove(key)?;
        self.len -= 1;
        if let Some(at) = entry.expire_at {
            self.expires.remove(&(at, Bytes::copy_from_slice(key)));
        }
        Some(entry)
    }

    /// Sets an absolute expiry on an existing key. Returns false if the key
    /// does not exist (after the expiry check).
    pub fn set_expire(&mut self, key: &[u8], at: u64, now: u64) -> bool {
        let slot = slot_index(key);
        if self.expired(slot, key, now) {
            return false;
        }
        let Some(entry) = self.slots[slot].get(key) else {
            return false;
        };
        let k = Bytes::copy_from_slice(key);
        if let Some(old) = entry.expire_at {
            self.expires.remove(&(old, k.clone()));
        }
        self.expires.insert((at, k.clone()));
        if let Some(entry) = self.slots[slot].get_mut(key) {
            entry.expire_at = Some(at);
        }
        self.modified(&k);
        true
    }

    /// Removes a key's TTL. Returns true if it had one.
    pub fn persist(&mut self, key: &[u8], now: u64) -> bool {
        let slot = slot_index(key);
        if self.expired(slot, key, now) {
            return false;
        }
        let Some(entry) = self.slots[slot].get(key) else {
            return false;
        };
        let Some(at) = entry.expire_at else {
            return false;
        };
        let k = Bytes::copy_from_slice(key);
        if let Some(entry) = self.slots[slot].get_mut(key) {
            entry.expire_at = None;
        }
        self.expires.remove(&(at, k.clone()));
        self.modified(&k);
        true
    }

    /// Records a change to `key`: bumps the dirty counter and the key's
    /// watch counter (redis `signalModifiedKey` + `server.dirty++`).
    pub fn modified(&mut self, key: &[u8]) {
        self.dirty += 1;
        if !self.blocking.is_empty() && self.blocking.contains_key(key) {
            self.ready = true;
        }
        if self.watched.is_empty() {
            return;
        }
        if let Some(w) = self.watched.get_mut(key) {
            w.touches += 1;
        }
    }

    fn touch_expired(&mut self, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(w) = self.watched.get_mut(key) {
            w.touches += 1;
            w.expired_delete_at = Some(w.touches);
        }
    }

    /// Deletes every key (FLUSHALL / FLUSHDB / cluster reset). Returns the
    /// number of keys removed.
    pub fn flush_all(&mut self, now: u64) -> usize {
        if !self.watched.is_empty() {
            // redis touchAllWatchedKeysInDb: only keys that exist are touched;
            // a key already expired is "deleted, no logical change".
            let keys: Vec<Bytes> = self.watched.keys().cloned().collect();
            for k in keys {
                match self.map(&k).get(&k[..]) {
                    Some(e) if e.is_expired(now) => self.touch_expired(&k),
                    Some(_) => {
                        if let Some(w) = self.watched.get_mut(&k[..]) {
                            w.touches += 1;
                        }
                    }
                    None => {}
                }
            }
        }
        let removed = self.len;
        for map in self.slots.iter_mut() {
            if !map.is_empty() {
                *map = HashMap::with_hasher(map.hasher().clone());
            }
        }
        self.len = 0;
        self.expires.clear();
        self.dirty += removed as u64;
        removed
    }

    /// Every key and its entry, slot by slot, expired-but-present keys
    /// included (an RDB takes the keys as they are, as redis's does).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.iter()
    }

    /// Adds a key while building a data set from a snapshot. Returns false
    /// (and changes nothing) if the key is already there.
    pub fn load_entry(&mut self, key: Bytes, value: Value, expire_at: Option<u64>) -> bool {
        let slot = slot_index(&key);
        if self.slots[slot].contains_key(&key[..]) {
            return false;
        }
        if let Some(at) = expire_at {
            self.expires.insert((at, key.clone()));
        }
        self.slots[slot].insert(Key::new(&key), Entry { value, expire_at });
        self.len += 1;
        true
    }

    /// Replaces the whole data set with `other`'s (a full sync), keeping
    /// this db's watchers, expiry mode and counters. Watched keys that
    /// exist on either side count as modified (redis `emptyData` then
    /// `touchAllWatchedKeysInDb`).
    /// Returns the old data, for the caller to drop where it costs nothing.
    pub fn replace_with(&mut self, mut other: Db, now: u64) -> Db {
        if !self.watched.is_empty() {
            let keys: Vec<Bytes> = self.watched.keys().cloned().collect();
            for k in keys {
                let old = self.map(&k).get(&k[..]).map(|e| e.is_expired(now));
                let new = other.map(&k).contains_key(&k[..]);
                match (old, new) {
                    (Some(true), false) => self.touch_expired(&k),
                    (Some(_), _) | (None, true) => {
                        if let Some(w) = self.watched.get_mut(&k[..]) {
                            w.touches += 1;
                        }
                    }
                    (None, false) => {}
                }
            }
        }
        self.dirty += (self.len + other.len) as u64;
        std::mem::swap(&mut self.slots, &mut other.slots);
        std::mem::swap(&mut self.expires, &mut other.expires);
        other.len = std::mem::replace(&mut self.len, other.len);
        self.expired_log.clear();
        other
    }

    /// Deletes every key in one slot (a slot this node lost). Like redis
    /// `delKeysInSlot`, watchers are not touched. Returns the count removed.
    pub fn delete_slot(&mut self, slot: u16) -> usize {
        let Some(map) = self.slots.get_mut(usize::from(slot)) else {
            return 0;
        };
        let old = std::mem::replace(map, HashMap::with_hasher(map.hasher().clone()));
        let n = old.len();
        for (k, e) in old {
            if let Some(at) = e.expire_at {
                self.expires.remove(&(at, k.to_bytes()));
            }
        }
        self.len -= n;
        self.dirty += n as u64;
        n
    }

    /// Deletes every key in these slots. Returns the count removed.
    pub fn delete_slots(&mut self, slots: &[u16]) -> usize {
        slots.iter().map(|&s| self.delete_slot(s)).sum()
    }

    // ---- expiry ----

    /// Deletes up to `budget` keys whose expiry is `<= now`, soonest first,
    /// and returns them (the shell replicates them as DELs). Does nothing in
    /// `Hide` mode: a replica waits for its master's DELs.
    pub fn active_expire(&mut self, now: u64, budget: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.mode == ExpireMode::Hide {
            return out;
        }
        while out.len() < budget {
            let Some((at, key)) = self.expires.first().cloned() else {
                break;
            };
            if at > now {
                break;
            }
            self.remove_entry_in(slot_index(&key), &key);
            self.dirty += 1;
            self.stats.expired += 1;
            self.touch_expired(&key);
            out.push(key);
        }
        out
    }

    /// The earliest expiry in the keyspace, for the shell's timer.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expires.first().map(|(at, _)| *at)
    }

    /// Keys deleted by lazy expiry since the last call (to replicate as DELs).
    pub fn take_expired(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.expired_log)
    }

    /// True if lazy expiry deleted something since the last `take_expired`.
    pub fn has_expired(&self) -> bool {
        !self.expired_log.is_empty()
    }

    // ---- blocked clients ----

    /// A client starts waiting for writes to `keys` (redis `blockForKeys`).
    pub fn block_on(&mut self, keys: &[Bytes]) {
        for k in keys {
            *self.blocking.entry(k.clone()).or_insert(0) += 1;
        }
    }

    /// The client stopped waiting.
    pub fn unblock(&mut self, keys: &[Bytes]) {
        for k in keys {
            if let Some(n) = self.blocking.get_mut(&k[..]) {
                *n -= 1;
                if *n == 0 {
                    self.blocking.remove(&k[..]);
                }
            }
        }
    }

    /// Whether a key someone waits on changed since the last call.
    pub fn take_ready_keys(&mut self) -> bool {
        std::mem::take(&mut self.ready)
    }

    // ---- WATCH ----

    /// Starts watching `key` for one client.
    pub fn watch(&mut self, key: Bytes, now: u64) -> WatchToken {
        let expired = self.is_logically_expired(&key, now);
        let w = self.watched.entry(key.clone()).or_insert(Watch {
            clients: 0,
            touches: 0,
            expired_delete_at: None,
        });
        w.clients += 1;
        WatchToken {
            key,
            touches: w.touches,
            expired,
        }
    }

    /// Stops one client's watch of a key.
    pub fn unwatch(&mut self, token: &WatchToken) {
        if let Some(w) = self.watched.get_mut(&token.key[..]) {
            w.clients = w.clients.saturating_sub(1);
            if w.clients == 0 {
                self.watched.remove(&token.key[..]);
            }
        }
    }

    /// Whether EXEC must fail because of this watched key: it was modified
    /// since WATCH, or it expired since (redis `touchWatchedKey` and
    /// `isWatchedKeyExpired`).
    pub fn watch_dirty(&self, token: &WatchToken, now: u64) -> bool {
        let Some(w) = self.watched.get(&token.key[..]) else {
            // Not registered (should not happen): be safe, abort the EXEC.
            return true;
        };
        if w.touches != token.touches {
            let only_expired_delete = token.expired
                && w.touches == token.touches + 1
                && w.expired_delete_at == Some(token.touches + 1);
            if !only_expired_delete {
                return true;
            }
        }
        !token.expired && self.is_logically_expired(&token.key, now)
    }

    /// Number of distinct watched keys (INFO's `watching_clients`-style stats, tests).
    pub fn watched_keys(&self) -> usize {
        self.watched.len()
    }

    // ---- slots ----

    pub fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.slots.get(usize::from(slot)).map_or(0, |m| m.len())
    }

    pub fn keys_in_slot(&self, slot: u16, count: usize) -> Vec<Bytes> {
        self.slots
            .get(usize::from(slot))
            .map(|m| m.keys().take(count).map(Key::to_bytes).collect())
            .unwrap_or_default()
    }

    /// Every entry, expired ones not yet deleted included, slot by slot.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.slots
            .iter()
            .flat_map(|m| m.iter().map(|(k, e)| (k.as_bytes(), e)))
    }

    /// The keys of one slot (for SCAN), unordered.
    pub fn slot_entries(&self, slot: u16) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.slots
            .get(usize::from(slot))
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, e)| (k.as_bytes(), e)))
    }

    /// Moves a key's value and TTL to a new name (RENAME), replacing what the
    /// new name held. Both names must exist / be checked by the caller.
    pub fn rename(&mut self, from: &[u8], to: Bytes, now: u64) -> bool {
        let slot = slot_index(from);
        if self.expired(slot, from, now) {
            return false;
        }
        let Some(entry) = self.remove_entry_in(slot, from) else {
            return false;
        };
        self.modified(from);
        let to_slot = slot_index(&to);
        self.expired(to_slot, &to, now);
        if self.remove_entry_in(to_slot, &to).is_some() {
            // Replaced: the new name's watchers see a change too.
        }
        let expire = entry.expire_at;
        self.insert_in(to_slot, to.clone(), entry.value);
        if let Some(at) = expire {
            self.set_expire(&to, at, now);
        }
        true
    }

    /// Slots that hold at least one key, ascending.
    pub fn slots_with_keys(&self) -> Vec<u16> {
        (0..CLUSTER_SLOTS)
            .filter(|&s| !self.slots[s].is_empty())
            .map(|s| s as u16)
            .collect()
    }
}

impl crate::cluster::Keyspace for Db {
    fn count_keys_in_slot(&self, slot: u16) -> usize {
        Db::count_keys_in_slot(self, slot)
    }

    fn keys_in_slot(&self, slot: u16, count: usize) -> Vec<Bytes> {
        Db::keys_in_slot(self, slot, count)
    }

    fn key_count(&self) -> usize {
        self.len
    }
}

/// Index of a key's slot map.
fn slot_index(key: &[u8]) -> usize {
    usize::from(key_slot(key))
}

#[cfg(test)]
mod tests;
