//! Hash commands (redis `t_hash.c`): HSET, HSETNX, HMSET, HGET, HMGET, HDEL,
//! HLEN, HEXISTS, HGETALL, HKEYS, HVALS, HSTRLEN, HINCRBY, HINCRBYFLOAT,
//! HRANDFIELD, HSCAN.

use bytes::Bytes;

use super::{err, parse_f64, parse_i64, scan, Ctx, Id};
use crate::resp::Frame;
use crate::store::{Db, Hash, Value};

/// The hash at `key` for reading: `Ok(None)` if absent.
fn hash<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Hash>, Frame> {
    match ctx.db.get(key, ctx.expire_now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(err::wrongtype()),
    }
}

/// The hash at `key` for writing, created empty if absent (redis
/// `hashTypeLookupWriteOrCreate`).
fn hash_mut<'a>(db: &'a mut Db, key: &Bytes, now: u64) -> Result<&'a mut Hash, Frame> {
    match db.get(key, now).map(|e| &e.value) {
        None => db.insert_new(key.clone(), Value::Hash(Box::default())),
        Some(Value::Hash(_)) => {}
        Some(_) => return Err(err::wrongtype()),
    }
    match db.get_mut(key, now).map(|e| &mut e.value) {
        Some(Value::Hash(h)) => Ok(h),
        _ => Err(err::wrongtype()),
    }
}

/// HSET key field value [field value ...] / HMSET.
pub(crate) fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() % 2 == 1 {
        return Frame::wrong_arity(ctx.spec.name);
    }
    let key = &args[1];
    let h = match hash_mut(ctx.db, key, ctx.expire_now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let mut created = 0;
    for pair in args[2..].chunks(2) {
        if h.insert(pair[0].clone(), pair[1].clone()) {
            created += 1;
        }
    }
    ctx.db.modified(key);
    ctx.propagate_as_is = true;
    if ctx.spec.id == Id::Hmset {
        Frame::ok()
    } else {
        Frame::Integer(created)
    }
}

pub(crate) fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    match hash(ctx, key) {
        Err(e) => return e,
        Ok(Some(h)) if h.contains(&args[2]) => return Frame::Integer(0),
        Ok(_) => {}
    }
    let h = match hash_mut(ctx.db, key, ctx.expire_now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    h.insert(args[2].clone(), args[3].clone());
    ctx.db.modified(key);
    ctx.propagate_as_is = true;
    Frame::Integer(1)
}

pub(crate) fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match hash(ctx, &args[1]) {
        Ok(h) => h
            .and_then(|h| h.get(&args[2]))
            .map_or(Frame::Null, |v| Frame::Bulk(v.clone())),
        Err(e) => e,
    }
}

pub(crate) fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match hash(ctx, &args[1]) {
        Ok(h) => Frame::Array(
            args[2..]
                .iter()
                .map(|f| {
                    h.and_then(|h| h.get(f))
                        .map_or(Frame::Null, |v| Frame::Bulk(v.clone()))
                })
                .collect(),
        ),
        Err(e) => e,
    }
}

pub(crate) fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let removed = match ctx.db.get_mut(key, ctx.expire_now).map(|e| &mut e.value) {
        None => return Frame::Integer(0),
        Some(Value::Hash(h)) => args[2..].iter().filter(|f| h.remove(f)).count(),
        Some(_) => return err::wrongtype(),
    };
    if removed > 0 {
        ctx.db.modified(key);
        ctx.db.remove_if_empty(key);
        ctx.propagate_as_is = true;
    }
    Frame::Integer(removed as i64)
}

pub(crate) fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match hash(ctx, &args[1]) {
        Ok(h) => Frame::Integer(h.map_or(0, |h| h.len() as i64)),
        Err(e) => e,
    }
}

pub(crate) fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match hash(ctx, &args[1]) {
        Ok(h) => Frame::Integer(i64::from(h.is_some_and(|h| h.contains(&args[2])))),
        Err(e) => e,
    }
}

pub(crate) fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match hash(ctx, &args[1]) {
        Ok(h) => Frame::Integer(
            h.and_then(|h| h.get(&args[2]))
                .map_or(0, |v| v.len() as i64),
        ),
        Err(e) => e,
    }
}

/// HGETALL (a map in RESP3), HKEYS, HVALS.
pub(crate) fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let id = ctx.spec.id;
    let h = match hash(ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) if id == Id::Hgetall => return Frame::Map(Vec::new()),
        Ok(None) => return Frame::Array(Vec::new()),
        Err(e) => return e,
    };
    match id {
        Id::Hkeys => Frame::Array(h.iter().map(|(f, _)| Frame::Bulk(f.clone())).collect()),
        Id::Hvals => Frame::Array(h.iter().map(|(_, v)| Frame::Bulk(v.clone())).collect()),
        _ => Frame::Map(
            h.iter()
                .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                .collect(),
        ),
    }
}

pub(crate) fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(by) = parse_i64(&args[3]) else {
        return err::not_integer();
    };
    let key = &args[1];
    let h = match hash_mut(ctx.db, key, ctx.expire_now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let current = match h.get(&args[2]) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => return Frame::error("ERR hash value is not an integer"),
        },
    };
    let Some(value) = current.checked_add(by) else {
        return Frame::error(err::OVERFLOW);
    };
    h.insert(args[2].clone(), Bytes::from(value.to_string()));
    ctx.db.modified(key);
    ctx.propagate_as_is = true;
    Frame::Integer(value)
}

/// HINCRBYFLOAT: replicated as the HSET of the result, as redis does, so
/// replicas never redo float arithmetic.
pub(crate) fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(by) = parse_f64(&args[3]) else {
        return Frame::error("ERR value is not a valid float");
    };
    let key = &args[1];
    let h = match hash_mut(ctx.db, key, ctx.expire_now) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let current = match h.get(&args[2]) {
        None => 0.0,
        Some(v) => match parse_f64(v) {
            Some(n) => n,
            None => return Frame::error("ERR hash value is not a float"),
        },
    };
    let value = current + by;
    if !value.is_finite() {
        return Frame::error("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(super::format_long_double(value));
    h.insert(args[2].clone(), text.clone());
    ctx.db.modified(key);
    ctx.propagate(vec![
        Bytes::from_static(b"HSET"),
        key.clone(),
        args[2].clone(),
        text.clone(),
    ]);
    Frame::Bulk(text)
}

/// HRANDFIELD key [count [WITHVALUES]] (redis `hrandfieldWithCountCommand`:
/// a positive count gives distinct fields, a negative one may repeat).
pub(crate) fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (count, withvalues) = match args.len() {
        2 => (None, false),
        3 | 4 => {
            let Some(c) = parse_i64(&args[2]) else {
                return err::not_integer();
            };
            if args.len() == 4 && !args[3].eq_ignore_ascii_case(b"withvalues") {
                return err::syntax();
            }
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&c) {
                return Frame::error("ERR value is out of range");
            }
            (Some(c), args.len() == 4)
        }
        _ => return err::syntax(),
    };
    let resp3 = ctx.client.resp3;
    let h = match hash(ctx, &args[1]) {
        Ok(Some(h)) => h,
        Ok(None) => {
            return if count.is_some() {
                Frame::Array(Vec::new())
            } else {
                Frame::Null
            }
        }
        Err(e) => return e,
    };
    let len = h.len();
    let Some(count) = count else {
        let i = rand::random_range(0..len);
        return h
            .get_index(i)
            .map_or(Frame::Null, |(f, _)| Frame::Bulk(f.clone()));
    };
    let picks: Vec<usize> = if count >= 0 {
        let n = (count as usize).min(len);
        rand::seq::index::sample(&mut rand::rng(), len, n).into_vec()
    } else {
        (0..count.unsigned_abs())
            .map(|_| rand::random_range(0..len))
            .collect()
    };
    let mut out = Vec::new();
    for i in picks {
        if let Some((f, v)) = h.get_index(i) {
            if withvalues && resp3 {
                out.push(Frame::Array(vec![
                    Frame::Bulk(f.clone()),
                    Frame::Bulk(v.clone()),
                ]));
            } else {
                out.push(Frame::Bulk(f.clone()));
                if withvalues {
                    out.push(Frame::Bulk(v.clone()));
                }
            }
        }
    }
    Frame::Array(out)
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]: the whole hash in one
/// call (redis does so for listpack-encoded hashes; COUNT is only a hint).
pub(crate) fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let opts = match scan::parse_options(&args[2], &args[3..], false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let h = match hash(ctx, &args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    if let Some(h) = h {
        for (f, v) in h.iter() {
            if opts.matches(f) {
                items.push(Frame::Bulk(f.clone()));
                items.push(Frame::Bulk(v.clone()));
            }
        }
    }
    Frame::Array(vec![Frame::bulk_str("0"), Frame::Array(items)])
}
