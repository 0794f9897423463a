//! Stored values <-> RDB objects: **the one place** that knows how each
//! [`Value`] type is written (the encodings redis 7.0 picks for it) and read
//! back (every encoding redis 7.0 still loads). Adding a value type means
//! adding its arm to [`write`] and its RDB type codes to [`read`].
//!
//! | value  | written as (redis 7.0)                      | also read                   |
//! |--------|---------------------------------------------|-----------------------------|
//! | string | `STRING` (int, LZF or raw)                   |                             |
//! | list   | `LIST_QUICKLIST_2` (listpack nodes <= 8 KB) | `LIST`, `LIST_ZIPLIST`, `LIST_QUICKLIST` |
//! | set    | `SET_INTSET` (<= 512 integers), else `SET`   |                             |

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use super::codec::{int_bytes, Reader, Writer};
use super::listpack::{self, Entry};
use super::{intset, types, ziplist, RdbError};
use crate::store::Value;

/// redis `list-max-listpack-size -2`: quicklist nodes of at most 8 KB.
const LIST_NODE_BYTES: usize = 8192;
/// redis `packed_threshold`: a list element this big gets a node of its own
/// stored as is (a "plain" node).
const LIST_PLAIN_THRESHOLD: usize = 1 << 30;
/// Quicklist node containers.
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;
/// redis `set-max-intset-entries`.
const SET_MAX_INTSET_ENTRIES: usize = 512;

/// Writes the value's type byte, then `key` if given (a file entry; a DUMP
/// payload has none), then the body (redis `rdbSaveObjectType`, the key,
/// `rdbSaveObject`).
pub fn write(w: &mut Writer, key: Option<&[u8]>, value: &Value) {
    match value {
        Value::Str(s) => {
            head(w, types::STRING, key);
            w.string(s);
        }
        Value::List(items) => write_list(w, key, items),
        Value::Set(members) => write_set(w, key, members),
    }
}

fn head(w: &mut Writer, rdb_type: u8, key: Option<&[u8]>) {
    w.byte(rdb_type);
    if let Some(k) = key {
        w.string(k);
    }
}

/// Reads the body of an object of RDB type `rdb_type`. `Ok(None)` is an
/// empty collection, which redis skips with a warning rather than fail.
pub fn read(r: &mut Reader<'_>, rdb_type: u8) -> Result<Option<Value>, RdbError> {
    let value = match rdb_type {
        types::STRING => Value::Str(r.string("string value")?),
        types::LIST => {
            let n = r.count("list length", 1)?;
            let mut items = VecDeque::with_capacity(n);
            for _ in 0..n {
                items.push_back(r.string("list element")?);
            }
            Value::List(items)
        }
        types::LIST_ZIPLIST => {
            let blob = r.string("list ziplist")?;
            Value::List(
                ziplist::decode(&blob)?
                    .into_iter()
                    .map(Entry::to_bytes)
                    .collect(),
            )
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => read_quicklist(r, rdb_type)?,
        types::SET => {
            let n = r.count("set length", 1)?;
            let mut members = HashSet::with_capacity(n);
            for _ in 0..n {
                if !members.insert(r.string("set member")?) {
                    return Err(RdbError::Corrupt("Duplicate set members detected".into()));
                }
            }
            Value::Set(members)
        }
        types::SET_INTSET => {
            let blob = r.string("intset")?;
            Value::Set(intset::decode(&blob)?.into_iter().map(int_bytes).collect())
        }
        types::HASH | types::HASH_ZIPMAP | types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            return Err(RdbError::UnsupportedType("hash"))
        }
        types::ZSET | types::ZSET_2 | types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            return Err(RdbError::UnsupportedType("zset"))
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => {
            return Err(RdbError::UnsupportedType("stream"))
        }
        types::MODULE | types::MODULE_2 => return Err(RdbError::UnsupportedType("module")),
        t => return Err(RdbError::Corrupt(format!("Unknown RDB encoding type {t}"))),
    };
    let empty = match &value {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
    };
    Ok((!empty).then_some(value))
}

// ---- lists ----

fn write_list(w: &mut Writer, key: Option<&[u8]>, items: &VecDeque<Bytes>) {
    enum Node<'a> {
        Packed(Vec<u8>),
        Plain(&'a Bytes),
    }
    let mut nodes = Vec::new();
    let mut lp = listpack::Builder::new();
    for item in items {
        if item.len() >= LIST_PLAIN_THRESHOLD {
            if lp.count() > 0 {
                nodes.push(Node::Packed(std::mem::take(&mut lp).finish()));
            }
            nodes.push(Node::Plain(item));
            continue;
        }
        if lp.count() > 0 && lp.bytes() + listpack::Builder::entry_size(item) > LIST_NODE_BYTES {
            nodes.push(Node::Packed(std::mem::take(&mut lp).finish()));
        }
        lp.push(item);
    }
    if lp.count() > 0 {
        nodes.push(Node::Packed(lp.finish()));
    }
    head(w, types::LIST_QUICKLIST_2, key);
    w.len(nodes.len() as u64);
    for node in &nodes {
        match node {
            Node::Packed(bytes) => {
                w.len(CONTAINER_PACKED);
                w.string(bytes);
            }
            Node::Plain(item) => {
                w.len(CONTAINER_PLAIN);
                w.string(item);
            }
        }
    }
}

fn read_quicklist(r: &mut Reader<'_>, rdb_type: u8) -> Result<Value, RdbError> {
    let nodes = r.count("quicklist length", 2)?;
    let mut items = VecDeque::new();
    for _ in 0..nodes {
        let container = if rdb_type == types::LIST_QUICKLIST_2 {
            r.len("quicklist container")?
        } else {
            CONTAINER_PACKED
        };
        if container != CONTAINER_PACKED && container != CONTAINER_PLAIN {
            return Err(RdbError::Corrupt(
                "Quicklist integrity check failed.".into(),
            ));
        }
        let blob = r.string("quicklist node")?;
        if blob.is_empty() {
            return Err(RdbError::Corrupt("empty quicklist node".into()));
        }
        if container == CONTAINER_PLAIN {
            items.push_back(blob);
            continue;
        }
        let entries = if rdb_type == types::LIST_QUICKLIST_2 {
            listpack::decode(&blob)?
        } else {
            ziplist::decode(&blob)?
        };
        items.extend(entries.into_iter().map(Entry::to_bytes));
    }
    Ok(Value::List(items))
}

// ---- sets ----

fn write_set(w: &mut Writer, key: Option<&[u8]>, members: &HashSet<Bytes>) {
    if members.len() <= SET_MAX_INTSET_ENTRIES {
        let ints: Option<Vec<i64>> = members.iter().map(|m| crate::resp::string2ll(m)).collect();
        if let Some(mut ints) = ints {
            head(w, types::SET_INTSET, key);
            w.string(&intset::encode(&mut ints));
            return;
        }
    }
    head(w, types::SET, key);
    w.len(members.len() as u64);
    for m in members {
        w.string(m);
    }
}
