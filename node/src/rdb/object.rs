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

// ---- hashes and sorted sets ----
//
// The store holds no hashes or sorted sets yet; their encodings are ready
// here, both ways, so that adding the value types is wiring an arm in
// `write` and `read` to these.

/// redis `hash-max-listpack-entries` / `hash-max-listpack-value`.
const HASH_MAX_LISTPACK_ENTRIES: usize = 128;
const HASH_MAX_LISTPACK_VALUE: usize = 64;
/// redis `zset-max-listpack-entries` / `zset-max-listpack-value`.
const ZSET_MAX_LISTPACK_ENTRIES: usize = 128;
const ZSET_MAX_LISTPACK_VALUE: usize = 64;

/// A hash as redis 7.0 writes it: a listpack of field, value, ... while
/// small, else `HASH` (count, then field and value strings).
pub fn write_hash(w: &mut Writer, key: Option<&[u8]>, pairs: &[(&[u8], &[u8])]) {
    let small = pairs.len() <= HASH_MAX_LISTPACK_ENTRIES
        && pairs
            .iter()
            .all(|(f, v)| f.len() <= HASH_MAX_LISTPACK_VALUE && v.len() <= HASH_MAX_LISTPACK_VALUE);
    if small {
        let mut lp = listpack::Builder::new();
        for (f, v) in pairs {
            lp.push(f);
            lp.push(v);
        }
        head(w, types::HASH_LISTPACK, key);
        w.string(&lp.finish());
        return;
    }
    head(w, types::HASH, key);
    w.len(pairs.len() as u64);
    for (f, v) in pairs {
        w.string(f);
        w.string(v);
    }
}

/// A hash of any encoding redis 7.0 loads; duplicate fields are corruption.
pub fn read_hash(r: &mut Reader<'_>, rdb_type: u8) -> Result<Vec<(Bytes, Bytes)>, RdbError> {
    let pairs: Vec<(Bytes, Bytes)> = match rdb_type {
        types::HASH => {
            let n = r.count("hash length", 2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push((r.string("hash field")?, r.string("hash value")?));
            }
            out
        }
        types::HASH_ZIPMAP => {
            let blob = r.string("hash zipmap")?;
            ziplist::decode_zipmap(&blob)?
                .into_iter()
                .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)))
                .collect()
        }
        types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let blob = r.string("hash listpack")?;
            let entries = if rdb_type == types::HASH_LISTPACK {
                listpack::decode(&blob)?
            } else {
                ziplist::decode(&blob)?
            };
            if entries.len() % 2 != 0 {
                return Err(RdbError::Corrupt("hash listpack with an odd count".into()));
            }
            entries
                .chunks_exact(2)
                .map(|p| (p[0].to_bytes(), p[1].to_bytes()))
                .collect()
        }
        t => return Err(RdbError::Corrupt(format!("{t} is not a hash type"))),
    };
    let mut seen = HashSet::with_capacity(pairs.len());
    if !pairs.iter().all(|(f, _)| seen.insert(f.clone())) {
        return Err(RdbError::Corrupt("Duplicate hash fields detected".into()));
    }
    Ok(pairs)
}

/// A sorted set as redis 7.0 writes it: a listpack of member, score, ...
/// in (score, member) order while small, else `ZSET_2` (count, then member
/// and binary score, highest first).
pub fn write_zset(w: &mut Writer, key: Option<&[u8]>, members: &[(&[u8], f64)]) {
    let mut sorted: Vec<(&[u8], f64)> = members.to_vec();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    let small = sorted.len() <= ZSET_MAX_LISTPACK_ENTRIES
        && sorted
            .iter()
            .all(|(m, _)| m.len() <= ZSET_MAX_LISTPACK_VALUE);
    if small {
        let mut lp = listpack::Builder::new();
        for (m, score) in &sorted {
            lp.push_entry(Entry::Str(m));
            // redis `zzlInsertAt`: an integral score is stored as an integer.
            match exact_int(*score) {
                Some(i) => lp.push_entry(Entry::Int(i)),
                None => lp.push(crate::resp::format_double(*score).as_bytes()),
            }
        }
        head(w, types::ZSET_LISTPACK, key);
        w.string(&lp.finish());
        return;
    }
    head(w, types::ZSET_2, key);
    w.len(sorted.len() as u64);
    for (m, score) in sorted.iter().rev() {
        w.string(m);
        w.binary_double(*score);
    }
}

/// redis `double2ll`: the integer a double is exactly, within +-2^62.
fn exact_int(d: f64) -> Option<i64> {
    let limit = (i64::MAX / 2) as f64;
    if !(-limit..=limit).contains(&d) {
        return None;
    }
    let i = d as i64;
    (i as f64 == d).then_some(i)
}

/// A sorted set of any encoding redis 7.0 loads. NaN scores and duplicate
/// members are corruption.
pub fn read_zset(r: &mut Reader<'_>, rdb_type: u8) -> Result<Vec<(Bytes, f64)>, RdbError> {
    let members: Vec<(Bytes, f64)> = match rdb_type {
        types::ZSET | types::ZSET_2 => {
            let n = r.count("zset length", 2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let m = r.string("zset member")?;
                let score = if rdb_type == types::ZSET_2 {
                    r.binary_double("zset score")?
                } else {
                    r.text_double("zset score")?
                };
                out.push((m, score));
            }
            out
        }
        types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            let blob = r.string("zset listpack")?;
            let entries = if rdb_type == types::ZSET_LISTPACK {
                listpack::decode(&blob)?
            } else {
                ziplist::decode(&blob)?
            };
            if entries.len() % 2 != 0 {
                return Err(RdbError::Corrupt("zset listpack with an odd count".into()));
            }
            let mut out = Vec::with_capacity(entries.len() / 2);
            for p in entries.chunks_exact(2) {
                let score = match p[1] {
                    Entry::Int(i) => i as f64,
                    Entry::Str(s) => std::str::from_utf8(s)
                        .ok()
                        .and_then(|t| t.parse::<f64>().ok())
                        .ok_or_else(|| RdbError::Corrupt("bad zset score".into()))?,
                };
                out.push((p[0].to_bytes(), score));
            }
            out
        }
        t => return Err(RdbError::Corrupt(format!("{t} is not a zset type"))),
    };
    if members.iter().any(|(_, s)| s.is_nan()) {
        return Err(RdbError::Corrupt("Zset with NAN score detected".into()));
    }
    let mut seen = HashSet::with_capacity(members.len());
    if !members.iter().all(|(m, _)| seen.insert(m.clone())) {
        return Err(RdbError::Corrupt("Duplicate zset fields detected".into()));
    }
    Ok(members)
}
