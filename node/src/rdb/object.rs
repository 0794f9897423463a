//! Stored values <-> RDB objects: **the one place** that knows how each
//! [`Value`] type is written (the encodings redis 7.0 picks for it) and read
//! back (every encoding redis 7.0 still loads). Adding a value type means
//! adding its arm to [`write`] and its RDB type codes to [`read`].
//!
//! | value  | written as (redis 7.0)                        | also read                   |
//! |--------|-----------------------------------------------|-----------------------------|
//! | string | `STRING` (int, LZF or raw)                     |                             |
//! | list   | `LIST_QUICKLIST_2` (listpack nodes <= 8 KB)   | `LIST`, `LIST_ZIPLIST`, `LIST_QUICKLIST` |
//! | set    | `SET_INTSET` (<= 512 integers), else `SET`     |                             |
//! | hash   | `HASH_LISTPACK` while small, else `HASH`       | `HASH_ZIPMAP`, `HASH_ZIPLIST` |
//! | zset   | `ZSET_LISTPACK` while small, else `ZSET_2`     | `ZSET`, `ZSET_ZIPLIST`      |
//! | stream | `STREAM_LISTPACKS_2` (no consumer groups)      | `STREAM_LISTPACKS`          |

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use super::codec::{int_bytes, Reader, Writer};
use super::listpack::{self, Entry};
use super::{intset, types, ziplist, RdbError};
use crate::store::{Hash, Stream, StreamId, Value, ZSet};

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
        Value::Hash(h) => {
            let pairs: Vec<(&[u8], &[u8])> = h.iter().map(|(f, v)| (&f[..], &v[..])).collect();
            write_hash(w, key, &pairs, h.encoding() == "listpack");
        }
        Value::ZSet(z) => {
            let members: Vec<(&[u8], f64)> = z.iter().map(|(m, s)| (&m[..], s)).collect();
            write_zset(w, key, &members, z.encoding() == "listpack");
        }
        Value::Stream(st) => write_stream(w, key, st),
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
            Value::Set(Box::new(members))
        }
        types::SET_INTSET => {
            let blob = r.string("intset")?;
            Value::Set(Box::new(
                intset::decode(&blob)?.into_iter().map(int_bytes).collect(),
            ))
        }
        types::HASH | types::HASH_ZIPMAP | types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let mut h = Hash::new();
            for (f, v) in read_hash(r, rdb_type)? {
                h.insert(f, v);
            }
            Value::Hash(Box::new(h))
        }
        types::ZSET | types::ZSET_2 | types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            let mut z = ZSet::new();
            for (m, score) in read_zset(r, rdb_type)? {
                z.insert(m, score);
            }
            Value::ZSet(Box::new(z))
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => {
            Value::Stream(Box::new(read_stream(r, rdb_type)?))
        }
        types::MODULE | types::MODULE_2 => return Err(RdbError::UnsupportedType("module")),
        t => return Err(RdbError::Corrupt(format!("Unknown RDB encoding type {t}"))),
    };
    let empty = match &value {
        // An empty stream is a value of its own (XADD .. MAXLEN 0).
        Value::Str(_) | Value::Stream(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::ZSet(z) => z.is_empty(),
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

/// A hash as redis 7.0 writes it: in its in-memory encoding, a listpack of
/// field, value, ... (`listpack`), else `HASH` (count, then field and value
/// strings).
pub fn write_hash(w: &mut Writer, key: Option<&[u8]>, pairs: &[(&[u8], &[u8])], listpack: bool) {
    if listpack {
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

/// A sorted set as redis 7.0 writes it: in its in-memory encoding, a
/// listpack of member, score, ... in (score, member) order (`listpack`),
/// else `ZSET_2` (count, then member and binary score, highest first).
pub fn write_zset(w: &mut Writer, key: Option<&[u8]>, members: &[(&[u8], f64)], listpack: bool) {
    let mut sorted: Vec<(&[u8], f64)> = members.to_vec();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    if listpack {
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

// ---- streams ----

/// redis `stream-node-max-bytes` / `stream-node-max-entries` defaults.
const STREAM_NODE_MAX_BYTES: usize = 4096;
const STREAM_NODE_MAX_ENTRIES: usize = 100;
/// Stream entry flags (redis `STREAM_ITEM_FLAG_*`).
const STREAM_ITEM_DELETED: i64 = 1;
const STREAM_ITEM_SAMEFIELDS: i64 = 2;

/// One radix-tree node of a stream: its master ID and listpack.
struct StreamNode {
    master: StreamId,
    fields: Vec<Bytes>,
    lp: listpack::Builder,
    count: usize,
}

/// A stream as redis 7.0 writes it (`STREAM_LISTPACKS_2`, redis
/// `streamAppendItem`'s node layout): listpack nodes of at most 100 entries
/// and about 4 KB, each led by a master entry whose fields later entries
/// share (delta-encoded IDs), then length, last ID, first ID, max deleted
/// ID, entries added, and no consumer groups.
pub fn write_stream(w: &mut Writer, key: Option<&[u8]>, st: &Stream) {
    let mut nodes: Vec<(StreamId, Vec<u8>)> = Vec::new();
    let mut cur: Option<StreamNode> = None;
    let close = |n: StreamNode, nodes: &mut Vec<(StreamId, Vec<u8>)>| {
        let mut lp = n.lp.finish();
        // The master entry's count, written as 1 when the node began: a
        // count of at most 100 is one byte (a 7-bit integer) either way.
        lp[6] = n.count as u8;
        nodes.push((n.master, lp));
    };
    for (&id, fv) in &st.entries {
        let fields: Vec<&Bytes> = fv.iter().step_by(2).collect();
        let values: Vec<&Bytes> = fv.iter().skip(1).step_by(2).collect();
        let total: usize = fv.iter().map(|b| b.len()).sum();
        if let Some(n) = &cur {
            if n.lp.bytes() + total >= STREAM_NODE_MAX_BYTES || n.count >= STREAM_NODE_MAX_ENTRIES {
                if let Some(n) = cur.take() {
                    close(n, &mut nodes);
                }
            }
        }
        let node = cur.get_or_insert_with(|| {
            let mut lp = listpack::Builder::new();
            lp.push_entry(Entry::Int(1));
            lp.push_entry(Entry::Int(0));
            lp.push_entry(Entry::Int(fields.len() as i64));
            for f in &fields {
                lp.push(f);
            }
            lp.push_entry(Entry::Int(0));
            StreamNode {
                master: id,
                fields: fields.iter().map(|f| (*f).clone()).collect(),
                lp,
                count: 0,
            }
        });
        let same = node.fields.len() == fields.len()
            && node.fields.iter().zip(&fields).all(|(a, b)| a == *b);
        let flags = if same { STREAM_ITEM_SAMEFIELDS } else { 0 };
        node.lp.push_entry(Entry::Int(flags));
        node.lp
            .push_entry(Entry::Int(id.ms.wrapping_sub(node.master.ms) as i64));
        node.lp
            .push_entry(Entry::Int(id.seq.wrapping_sub(node.master.seq) as i64));
        if !same {
            node.lp.push_entry(Entry::Int(fields.len() as i64));
        }
        for (f, v) in fields.iter().zip(&values) {
            if !same {
                node.lp.push(f);
            }
            node.lp.push(v);
        }
        let lp_count = fields.len() + 3 + if same { 0 } else { fields.len() + 1 };
        node.lp.push_entry(Entry::Int(lp_count as i64));
        node.count += 1;
    }
    if let Some(n) = cur.take() {
        close(n, &mut nodes);
    }
    head(w, types::STREAM_LISTPACKS_2, key);
    w.len(nodes.len() as u64);
    for (master, lp) in &nodes {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&master.ms.to_be_bytes());
        k[8..].copy_from_slice(&master.seq.to_be_bytes());
        w.string(&k);
        w.string(lp);
    }
    w.len(st.entries.len() as u64);
    w.len(st.last_id.ms);
    w.len(st.last_id.seq);
    let first = st.entries.keys().next().copied().unwrap_or_default();
    w.len(first.ms);
    w.len(first.seq);
    w.len(st.max_deleted_id.ms);
    w.len(st.max_deleted_id.seq);
    w.len(st.entries_added);
    w.len(0); // consumer groups
}

/// The next listpack element, which must be an integer.
fn next_int<'a>(it: &mut impl Iterator<Item = Entry<'a>>, what: &str) -> Result<i64, RdbError> {
    match it.next() {
        Some(Entry::Int(v)) => Ok(v),
        _ => Err(RdbError::Corrupt(format!(
            "Stream integrity check failed: {what}"
        ))),
    }
}

/// A stream of either format redis 7.0 loads. Deleted entries are skipped;
/// consumer groups can't be kept here, so a stream with any is refused
/// rather than loaded without them.
pub fn read_stream(r: &mut Reader<'_>, rdb_type: u8) -> Result<Stream, RdbError> {
    let bad = |why: &str| RdbError::Corrupt(format!("Stream integrity check failed: {why}"));
    let mut st = Stream::new();
    let nodes = r.count("stream nodes", 2)?;
    for _ in 0..nodes {
        let key = r.string("stream node key")?;
        if key.len() != 16 {
            return Err(bad("node key is not 16 bytes"));
        }
        let master = StreamId {
            ms: u64::from_be_bytes(key[..8].try_into().map_err(|_| bad("node key"))?),
            seq: u64::from_be_bytes(key[8..].try_into().map_err(|_| bad("node key"))?),
        };
        let blob = r.string("stream listpack")?;
        let entries = listpack::decode(&blob)?;
        let mut it = entries.into_iter();
        let count = next_int(&mut it, "count")?;
        let deleted = next_int(&mut it, "deleted")?;
        let nfields = next_int(&mut it, "master field count")?;
        if count < 0 || deleted < 0 || !(0..=1 << 20).contains(&nfields) {
            return Err(bad("bad master entry"));
        }
        let mut master_fields = Vec::with_capacity(nfields as usize);
        for _ in 0..nfields {
            master_fields.push(it.next().ok_or_else(|| bad("master field"))?.to_bytes());
        }
        if it.next() != Some(Entry::Int(0)) {
            return Err(bad("master entry terminator"));
        }
        for _ in 0..(count + deleted) {
            let flags = next_int(&mut it, "entry flags")?;
            let ms = next_int(&mut it, "entry ms")?;
            let seq = next_int(&mut it, "entry seq")?;
            let id = StreamId {
                ms: master.ms.wrapping_add(ms as u64),
                seq: master.seq.wrapping_add(seq as u64),
            };
            let same = flags & STREAM_ITEM_SAMEFIELDS != 0;
            let n = if same {
                master_fields.len() as i64
            } else {
                next_int(&mut it, "entry field count")?
            };
            if !(0..=1 << 20).contains(&n) {
                return Err(bad("entry field count"));
            }
            let mut fv = Vec::with_capacity(2 * n as usize);
            let mut shared_fields = master_fields.iter();
            for _ in 0..n {
                let field = if same {
                    shared_fields
                        .next()
                        .cloned()
                        .ok_or_else(|| bad("entry field"))?
                } else {
                    it.next().ok_or_else(|| bad("entry field"))?.to_bytes()
                };
                let value = it.next().ok_or_else(|| bad("entry value"))?.to_bytes();
                fv.push(field);
                fv.push(value);
            }
            next_int(&mut it, "entry lp-count")?;
            if flags & STREAM_ITEM_DELETED == 0 && st.entries.insert(id, fv).is_some() {
                return Err(bad("duplicate entry ID"));
            }
        }
        if it.next().is_some() {
            return Err(bad("bytes after the last entry"));
        }
    }
    let length = r.len("stream length")?;
    if length != st.entries.len() as u64 {
        return Err(bad("length does not match the entries"));
    }
    st.last_id = StreamId {
        ms: r.len("stream last id")?,
        seq: r.len("stream last id")?,
    };
    if rdb_type == types::STREAM_LISTPACKS_2 {
        r.len("stream first id")?;
        r.len("stream first id")?;
        st.max_deleted_id = StreamId {
            ms: r.len("stream max deleted id")?,
            seq: r.len("stream max deleted id")?,
        };
        st.entries_added = r.len("stream entries added")?;
    } else {
        st.entries_added = length;
    }
    if r.len("stream consumer groups")? > 0 {
        return Err(RdbError::UnsupportedType("stream with consumer groups"));
    }
    Ok(st)
}
