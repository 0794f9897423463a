//! Set commands (redis `t_set.c`): SADD, SREM, SMEMBERS, SCARD, SISMEMBER.

use std::collections::HashSet;

use bytes::Bytes;

use super::{err, parse_i64, Ctx};
use crate::resp::Frame;
use crate::store::Value;

/// redis keeps small all-integer sets as a sorted intset, so SMEMBERS lists
/// them in numeric order; larger or mixed sets come in hash order.
const INTSET_MAX: usize = 512;

fn get_set<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a HashSet<Bytes>>, Frame> {
    match ctx.db.get(key, ctx.expire_now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(err::wrongtype()),
    }
}

pub(crate) fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let added = match ctx.db.get_mut(key, ctx.expire_now) {
        Some(entry) => match &mut entry.value {
            Value::Set(set) => args[2..]
                .iter()
                .filter(|m| set.insert((*m).clone()))
                .count(),
            _ => return err::wrongtype(),
        },
        None => {
            let set: HashSet<Bytes> = args[2..].iter().cloned().collect();
            let n = set.len();
            ctx.db.insert_new(key.clone(), Value::Set(Box::new(set)));
            // insert_new already counted the change.
            ctx.propagate_as_is = true;
            return Frame::Integer(n as i64);
        }
    };
    if added > 0 {
        ctx.db.modified(key);
        ctx.propagate_as_is = true;
    }
    Frame::Integer(added as i64)
}

pub(crate) fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let removed = match ctx.db.get_mut(key, ctx.expire_now) {
        None => return Frame::Integer(0),
        Some(entry) => match &mut entry.value {
            Value::Set(set) => args[2..].iter().filter(|m| set.remove(&m[..])).count(),
            _ => return err::wrongtype(),
        },
    };
    if removed > 0 {
        ctx.db.modified(key);
        ctx.db.remove_if_empty(key);
        ctx.propagate_as_is = true;
    }
    Frame::Integer(removed as i64)
}

pub(crate) fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let set = match get_set(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Set(Vec::new()),
        Err(e) => return e,
    };
    if set.len() <= INTSET_MAX {
        // Sized up front: collecting into an Option<Vec> grows it step by step.
        let mut ints: Vec<(i64, &Bytes)> = Vec::with_capacity(set.len());
        for m in set {
            match parse_i64(m) {
                Some(n) => ints.push((n, m)),
                None => break,
            }
        }
        if ints.len() == set.len() {
            // Members are distinct, so their values are too: an unstable sort
            // gives the one order.
            ints.sort_unstable_by_key(|(n, _)| *n);
            return Frame::Set(
                ints.into_iter()
                    .map(|(_, m)| Frame::Bulk(m.clone()))
                    .collect(),
            );
        }
    }
    Frame::Set(set.iter().map(|m| Frame::Bulk(m.clone())).collect())
}

pub(crate) fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match get_set(ctx, &args[1]) {
        Ok(s) => Frame::Integer(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

pub(crate) fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match get_set(ctx, &args[1]) {
        Ok(s) => Frame::Integer(i64::from(s.is_some_and(|s| s.contains(&args[2][..])))),
        Err(e) => e,
    }
}
