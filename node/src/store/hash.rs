//! A hash value (redis `t_hash.c`'s object).
//!
//! redis keeps a small hash as a listpack, in insertion order, and turns it
//! into a hash table once it has more than `hash-max-listpack-entries` fields
//! or a field or value longer than `hash-max-listpack-value` bytes, never back.
//! HGETALL of a small hash therefore lists fields in insertion order; an
//! `IndexMap` keeps that order (deleting with `shift_remove` while small).

use bytes::Bytes;
use indexmap::IndexMap;

/// redis 7.0's defaults for the listpack encoding.
pub const LISTPACK_ENTRIES: usize = 512;
pub const LISTPACK_VALUE: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hash {
    map: IndexMap<Bytes, Bytes>,
    /// Hash-table encoded (redis `OBJ_ENCODING_HT`): order is no longer kept.
    big: bool,
}

impl Hash {
    pub fn new() -> Hash {
        Hash::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.map.get(field)
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.map.contains_key(field)
    }

    /// Sets a field; true if it is new.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        if field.len() > LISTPACK_VALUE || value.len() > LISTPACK_VALUE {
            self.big = true;
        }
        let new = self.map.insert(field, value).is_none();
        if self.map.len() > LISTPACK_ENTRIES {
            self.big = true;
        }
        new
    }

    /// Removes a field; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if self.big {
            self.map.swap_remove(field).is_some()
        } else {
            self.map.shift_remove(field).is_some()
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.map.iter()
    }

    /// The `index`-th field in iteration order (HRANDFIELD).
    pub fn get_index(&self, index: usize) -> Option<(&Bytes, &Bytes)> {
        self.map.get_index(index)
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        if self.big {
            "hashtable"
        } else {
            "listpack"
        }
    }
}
