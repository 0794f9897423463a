//! SCAN, KEYS, RANDOMKEY, and the option parsing HSCAN/ZSCAN share.
//!
//! The cursor follows redis's cluster-mode layout (7.2's per-slot
//! dictionaries): the low 14 bits are the slot, the rest a position inside
//! it. Inside a slot, keys are visited in the order of a hash that does not
//! change while the process runs, so a key present for a whole iteration is
//! returned at least once however the keyspace grows or shrinks meanwhile,
//! which is SCAN's guarantee; 0 starts and ends an iteration.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

use bytes::Bytes;

use super::{err, Ctx};
use crate::glob::glob_match;
use crate::resp::Frame;
use crate::slots::CLUSTER_SLOTS;

const SLOT_BITS: u32 = 14;

/// Parsed `cursor [MATCH pattern] [COUNT n] [TYPE t]`.
pub(crate) struct ScanOptions {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub type_name: Option<String>,
}

impl ScanOptions {
    pub fn matches(&self, key: &[u8]) -> bool {
        match &self.pattern {
            None => true,
            Some(p) => glob_match(p, key, false),
        }
    }
}

/// redis `parseScanCursorOrReply` + the option loop of `scanGenericCommand`.
pub(crate) fn parse_options(
    cursor: &[u8],
    rest: &[Bytes],
    allow_type: bool,
) -> Result<ScanOptions, Frame> {
    let cursor = std::str::from_utf8(cursor)
        .ok()
        .filter(|c| !c.is_empty() && !c.starts_with('+') && !c.starts_with('-'))
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| Frame::error("ERR invalid cursor"))?;
    let mut opts = ScanOptions {
        cursor,
        pattern: None,
        count: 10,
        type_name: None,
    };
    let mut i = 0;
    while i < rest.len() {
        let more = rest.len() - i - 1;
        let opt = &rest[i];
        if opt.eq_ignore_ascii_case(b"count") && more >= 1 {
            match super::parse_i64(&rest[i + 1]) {
                None => return Err(err::not_integer()),
                Some(n) if n < 1 => return Err(err::syntax()),
                Some(n) => opts.count = n as usize,
            }
            i += 2;
        } else if opt.eq_ignore_ascii_case(b"match") && more >= 1 {
            // `*` matches everything: skip the matching (redis does too).
            opts.pattern = (&rest[i + 1][..] != b"*").then(|| rest[i + 1].clone());
            i += 2;
        } else if allow_type && opt.eq_ignore_ascii_case(b"type") && more >= 1 {
            opts.type_name = Some(String::from_utf8_lossy(&rest[i + 1]).to_ascii_lowercase());
            i += 2;
        } else {
            return Err(err::syntax());
        }
    }
    Ok(opts)
}

/// The position of a key inside its slot (50 bits of a fixed hash).
fn position(key: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(key);
    h.finish() >> SLOT_BITS
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub(crate) fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let opts = match parse_options(&args[1], &args[2..], true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let now = ctx.expire_now;
    let mut slot = (opts.cursor & ((1 << SLOT_BITS) - 1)) as usize;
    let mut pos = opts.cursor >> SLOT_BITS;
    let mut visited = 0usize;
    let mut out = Vec::new();
    let mut next = 0u64;
    while slot < CLUSTER_SLOTS {
        let mut keys: Vec<(u64, &[u8], &crate::store::Entry)> = ctx
            .db
            .slot_entries(slot as u16)
            .map(|(k, e)| (position(k), k, e))
            .filter(|(p, _, _)| *p >= pos)
            .collect();
        keys.sort_unstable_by_key(|(p, _, _)| *p);
        // A huge slot (one hash tag) is still done in a few calls.
        let budget = opts.count.max(keys.len() / 16);
        let mut stopped_at = None;
        let mut i = 0;
        while i < keys.len() {
            if visited >= budget {
                stopped_at = Some(keys[i].0);
                break;
            }
            // Keys sharing a position are emitted together.
            let p = keys[i].0;
            while i < keys.len() && keys[i].0 == p {
                let (_, key, entry) = keys[i];
                visited += 1;
                let expired = entry.expire_at().is_some_and(|at| at <= now && now != 0);
                let type_ok = opts
                    .type_name
                    .as_deref()
                    .is_none_or(|t| entry.value.type_name() == t);
                if !expired && type_ok && opts.matches(key) {
                    out.push(Frame::Bulk(Bytes::copy_from_slice(key)));
                }
                i += 1;
            }
        }
        if let Some(p) = stopped_at {
            next = (p << SLOT_BITS) | slot as u64;
            break;
        }
        slot += 1;
        pos = 0;
        if visited >= opts.count && slot < CLUSTER_SLOTS {
            next = slot as u64;
            break;
        }
    }
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ])
}

/// KEYS pattern
pub(crate) fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let now = ctx.expire_now;
    let all = &args[1][..] == b"*";
    Frame::Array(
        ctx.db
            .iter()
            .filter(|(k, e)| {
                !e.expire_at().is_some_and(|at| at <= now && now != 0)
                    && (all || glob_match(&args[1], k, false))
            })
            .map(|(k, _)| Frame::Bulk(Bytes::copy_from_slice(k)))
            .collect(),
    )
}

/// RANDOMKEY
pub(crate) fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let now = ctx.expire_now;
    let live: Vec<&[u8]> = ctx
        .db
        .iter()
        .filter(|(_, e)| !e.expire_at().is_some_and(|at| at <= now && now != 0))
        .map(|(k, _)| k)
        .collect();
    if live.is_empty() {
        return Frame::Null;
    }
    Frame::Bulk(Bytes::copy_from_slice(
        live[rand::random_range(0..live.len())],
    ))
}
