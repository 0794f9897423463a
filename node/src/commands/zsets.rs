//! Sorted-set commands (redis `t_zset.c`): ZADD, ZINCRBY, ZREM, ZCARD,
//! ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT, ZRANGE (BYSCORE, BYLEX,
//! REV, LIMIT, WITHSCORES), ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZREVRANGE,
//! ZRANGEBYLEX, ZREVRANGEBYLEX, ZPOPMIN, ZPOPMAX, ZREMRANGEBYRANK,
//! ZREMRANGEBYSCORE, ZREMRANGEBYLEX, ZRANDMEMBER, ZSCAN.

use std::ops::Bound;

use bytes::Bytes;

use super::{err, parse_f64, parse_i64, scan, Ctx, Id};
use crate::resp::{format_double, Frame};
use crate::store::{Db, Value, ZSet};

const NOT_FLOAT: &str = "ERR value is not a valid float";
const MINMAX_FLOAT: &str = "ERR min or max is not a float";
const MINMAX_LEX: &str = "ERR min or max not valid string range item";

fn zset<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a ZSet>, Frame> {
    match ctx.db.get(key, ctx.expire_now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(err::wrongtype()),
    }
}

fn zset_mut<'a>(db: &'a mut Db, key: &[u8], now: u64) -> Result<Option<&'a mut ZSet>, Frame> {
    match db.get_mut(key, now).map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(err::wrongtype()),
    }
}

/// A member and its score as RESP3 pairs or a RESP2 flat list.
fn push_scored(out: &mut Vec<Frame>, member: &Bytes, score: f64, withscores: bool, resp3: bool) {
    if !withscores {
        out.push(Frame::Bulk(member.clone()));
    } else if resp3 {
        out.push(Frame::Array(vec![
            Frame::Bulk(member.clone()),
            Frame::Double(score),
        ]));
    } else {
        out.push(Frame::Bulk(member.clone()));
        out.push(Frame::Double(score));
    }
}

const NX: u8 = 1;
const XX: u8 = 2;
const GT: u8 = 4;
const LT: u8 = 8;

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
/// (redis `zaddGenericCommand`); ZINCRBY is ZADD INCR.
pub(crate) fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let incrby = ctx.spec.id == Id::Zincrby;
    let (mut flags, mut ch, mut incr) = (0u8, false, incrby);
    let mut i = 2;
    if !incrby {
        while i < args.len() {
            let a = args[i].to_ascii_lowercase();
            match &a[..] {
                b"nx" => flags |= NX,
                b"xx" => flags |= XX,
                b"gt" => flags |= GT,
                b"lt" => flags |= LT,
                b"ch" => ch = true,
                b"incr" => incr = true,
                _ => break,
            }
            i += 1;
        }
    }
    let rest = &args[i..];
    if rest.is_empty() || rest.len() % 2 == 1 {
        return err::syntax();
    }
    if flags & NX != 0 && flags & XX != 0 {
        return Frame::error("ERR XX and NX options at the same time are not compatible");
    }
    let (nx, gt, lt) = (flags & NX != 0, flags & GT != 0, flags & LT != 0);
    if (nx && (gt || lt)) || (gt && lt) {
        return Frame::error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && rest.len() > 2 {
        return Frame::error("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        let Some(score) = parse_f64(&pair[0]) else {
            return Frame::error(NOT_FLOAT);
        };
        pairs.push((score, pair[1].clone()));
    }
    let now = ctx.expire_now;
    let exists = match ctx.db.get(key, now).map(|e| &e.value) {
        None => false,
        Some(Value::ZSet(_)) => true,
        Some(_) => return err::wrongtype(),
    };
    if !exists {
        if flags & XX != 0 {
            return if incr { Frame::Null } else { Frame::Integer(0) };
        }
        ctx.db
            .insert_new(key.clone(), Value::ZSet(Box::new(ZSet::new())));
    }
    let Ok(Some(z)) = zset_mut(ctx.db, key, now) else {
        return err::wrongtype();
    };
    let (mut added, mut updated) = (0i64, 0i64);
    let mut result = None;
    for (score, member) in pairs {
        match z.score(&member) {
            Some(cur) => {
                if flags & NX != 0 {
                    continue;
                }
                let new = if incr { cur + score } else { score };
                if new.is_nan() {
                    if z.is_empty() {
                        ctx.db.remove_if_empty(key);
                    }
                    return Frame::error("ERR resulting score is not a number (NaN)");
                }
                if (flags & GT != 0 && new <= cur) || (flags & LT != 0 && new >= cur) {
                    continue;
                }
                result = Some(new);
                if new != cur {
                    z.insert(member, new);
                    updated += 1;
                }
            }
            None => {
                if flags & XX != 0 {
                    continue;
                }
                z.insert(member, score);
                added += 1;
                result = Some(score);
            }
        }
    }
    let changed = added + updated > 0;
    let empty = z.is_empty();
    if changed {
        ctx.db.modified(key);
        ctx.propagate_as_is = true;
    } else if empty {
        ctx.db.remove_if_empty(key);
    }
    if incr {
        return result.map_or(Frame::Null, Frame::Double);
    }
    Frame::Integer(if ch { added + updated } else { added })
}

pub(crate) fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let removed = match zset_mut(ctx.db, key, ctx.expire_now) {
        Ok(Some(z)) => args[2..].iter().filter(|m| z.remove(m).is_some()).count(),
        Ok(None) => 0,
        Err(e) => return e,
    };
    if removed > 0 {
        ctx.db.modified(key);
        ctx.db.remove_if_empty(key);
        ctx.propagate_as_is = true;
    }
    Frame::Integer(removed as i64)
}

pub(crate) fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match zset(ctx, &args[1]) {
        Ok(z) => Frame::Integer(z.map_or(0, |z| z.len() as i64)),
        Err(e) => e,
    }
}

pub(crate) fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match zset(ctx, &args[1]) {
        Ok(z) => z
            .and_then(|z| z.score(&args[2]))
            .map_or(Frame::Null, Frame::Double),
        Err(e) => e,
    }
}

pub(crate) fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match zset(ctx, &args[1]) {
        Ok(z) => Frame::Array(
            args[2..]
                .iter()
                .map(|m| {
                    z.and_then(|z| z.score(m))
                        .map_or(Frame::Null, Frame::Double)
                })
                .collect(),
        ),
        Err(e) => e,
    }
}

/// ZRANK / ZREVRANK
pub(crate) fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let rev = ctx.spec.id == Id::Zrevrank;
    match zset(ctx, &args[1]) {
        Ok(Some(z)) => match z.rank(&args[2]) {
            Some(r) if rev => Frame::Integer((z.len() - 1 - r) as i64),
            Some(r) => Frame::Integer(r as i64),
            None => Frame::Null,
        },
        Ok(None) => Frame::Null,
        Err(e) => e,
    }
}

/// A score bound: `1.5`, `(1.5`, `-inf`, `+inf` (redis `zslParseRange`).
fn parse_score_bound(arg: &[u8]) -> Option<Bound<f64>> {
    let (excl, num) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    let v = parse_f64(num)?;
    Some(if excl {
        Bound::Excluded(v)
    } else {
        Bound::Included(v)
    })
}

/// A lex bound: `[a`, `(a`, `-`, `+` (redis `zslParseLexRangeItem`).
#[derive(Clone)]
enum Lex {
    Min,
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

fn parse_lex_bound(arg: &Bytes) -> Option<Lex> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Some(Lex::Min),
        Some(b'+') if arg.len() == 1 => Some(Lex::Max),
        Some(b'[') => Some(Lex::Incl(arg.slice(1..))),
        Some(b'(') => Some(Lex::Excl(arg.slice(1..))),
        _ => None,
    }
}

fn lex_gte_min(m: &[u8], min: &Lex) -> bool {
    match min {
        Lex::Min => true,
        Lex::Max => false,
        Lex::Incl(v) => m >= &v[..],
        Lex::Excl(v) => m > &v[..],
    }
}

fn lex_lte_max(m: &[u8], max: &Lex) -> bool {
    match max {
        Lex::Min => false,
        Lex::Max => true,
        Lex::Incl(v) => m <= &v[..],
        Lex::Excl(v) => m < &v[..],
    }
}

fn score_in(s: f64, min: Bound<f64>, max: Bound<f64>) -> bool {
    let lo = match min {
        Bound::Included(m) => s >= m,
        Bound::Excluded(m) => s > m,
        Bound::Unbounded => true,
    };
    let hi = match max {
        Bound::Included(m) => s <= m,
        Bound::Excluded(m) => s < m,
        Bound::Unbounded => true,
    };
    lo && hi
}

pub(crate) fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(min), Some(max)) = (parse_score_bound(&args[2]), parse_score_bound(&args[3])) else {
        return Frame::error(MINMAX_FLOAT);
    };
    match zset(ctx, &args[1]) {
        Ok(z) => Frame::Integer(z.map_or(0, |z| z.range_by_score(min, max).count() as i64)),
        Err(e) => e,
    }
}

pub(crate) fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(min), Some(max)) = (parse_lex_bound(&args[2]), parse_lex_bound(&args[3])) else {
        return Frame::error(MINMAX_LEX);
    };
    match zset(ctx, &args[1]) {
        Ok(z) => Frame::Integer(z.map_or(0, |z| {
            z.iter()
                .filter(|(m, _)| lex_gte_min(m, &min) && lex_lte_max(m, &max))
                .count() as i64
        })),
        Err(e) => e,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// What a range command asked for.
struct RangeQuery {
    by: By,
    rev: bool,
    withscores: bool,
    /// LIMIT offset count (count < 0: all).
    limit: Option<(i64, i64)>,
}

/// Selects the members of a range query, in reply order.
fn select(
    z: &ZSet,
    q: &RangeQuery,
    start: &Bytes,
    stop: &Bytes,
) -> Result<Vec<(Bytes, f64)>, Frame> {
    let len = z.len() as i64;
    let mut items: Vec<(Bytes, f64)> = match q.by {
        By::Rank => {
            let (Some(mut s), Some(mut e)) = (parse_i64(start), parse_i64(stop)) else {
                return Err(err::not_integer());
            };
            if s < 0 {
                s += len;
            }
            if e < 0 {
                e += len;
            }
            s = s.max(0);
            if s > e || s >= len {
                return Ok(Vec::new());
            }
            e = e.min(len - 1);
            let take = (e - s + 1) as usize;
            if q.rev {
                z.iter()
                    .rev()
                    .skip(s as usize)
                    .take(take)
                    .map(|(m, sc)| (m.clone(), sc))
                    .collect()
            } else {
                z.iter()
                    .skip(s as usize)
                    .take(take)
                    .map(|(m, sc)| (m.clone(), sc))
                    .collect()
            }
        }
        By::Score => {
            // With REV the arguments are max then min.
            let (a, b) = if q.rev { (stop, start) } else { (start, stop) };
            let (Some(min), Some(max)) = (parse_score_bound(a), parse_score_bound(b)) else {
                return Err(Frame::error(MINMAX_FLOAT));
            };
            let mut v: Vec<(Bytes, f64)> = z
                .iter()
                .filter(|(_, s)| score_in(*s, min, max))
                .map(|(m, s)| (m.clone(), s))
                .collect();
            if q.rev {
                v.reverse();
            }
            v
        }
        By::Lex => {
            let (a, b) = if q.rev { (stop, start) } else { (start, stop) };
            let (Some(min), Some(max)) = (parse_lex_bound(a), parse_lex_bound(b)) else {
                return Err(Frame::error(MINMAX_LEX));
            };
            let mut v: Vec<(Bytes, f64)> = z
                .iter()
                .filter(|(m, _)| lex_gte_min(m, &min) && lex_lte_max(m, &max))
                .map(|(m, s)| (m.clone(), s))
                .collect();
            if q.rev {
                v.reverse();
            }
            v
        }
    };
    if let Some((offset, count)) = q.limit {
        if offset < 0 {
            return Ok(Vec::new());
        }
        let skip = (offset as usize).min(items.len());
        items.drain(..skip);
        if count >= 0 {
            items.truncate(count as usize);
        }
    }
    Ok(items)
}

/// ZRANGE and its older forms (redis `zrangeGenericCommand`).
pub(crate) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let id = ctx.spec.id;
    let mut q = RangeQuery {
        by: match id {
            Id::Zrangebyscore | Id::Zrevrangebyscore => By::Score,
            Id::Zrangebylex | Id::Zrevrangebylex => By::Lex,
            _ => By::Rank,
        },
        rev: matches!(
            id,
            Id::Zrevrange | Id::Zrevrangebyscore | Id::Zrevrangebylex
        ),
        withscores: false,
        limit: None,
    };
    let mut i = 4;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let more = args.len() - i - 1;
        match &a[..] {
            b"withscores" if id != Id::Zrangebylex && id != Id::Zrevrangebylex => {
                q.withscores = true
            }
            b"limit" if more >= 2 && id != Id::Zrevrange => {
                let (Some(o), Some(c)) = (parse_i64(&args[i + 1]), parse_i64(&args[i + 2])) else {
                    return err::not_integer();
                };
                q.limit = Some((o, c));
                i += 2;
            }
            b"byscore" if id == Id::Zrange && q.by == By::Rank => q.by = By::Score,
            b"bylex" if id == Id::Zrange && q.by == By::Rank => q.by = By::Lex,
            b"rev" if id == Id::Zrange => q.rev = true,
            _ => return err::syntax(),
        }
        i += 1;
    }
    if q.limit.is_some() && q.by == By::Rank {
        return Frame::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if q.withscores && q.by == By::Lex {
        return Frame::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        );
    }
    let resp3 = ctx.client.resp3;
    let z = match zset(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => {
            // Arguments are still validated on a missing key.
            let empty = ZSet::new();
            return match select(&empty, &q, &args[2], &args[3]) {
                Ok(_) => Frame::Array(Vec::new()),
                Err(e) => e,
            };
        }
        Err(e) => return e,
    };
    match select(z, &q, &args[2], &args[3]) {
        Ok(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (m, s) in &items {
                push_scored(&mut out, m, *s, q.withscores, resp3);
            }
            Frame::Array(out)
        }
        Err(e) => e,
    }
}

/// ZPOPMIN / ZPOPMAX key [count]
pub(crate) fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let max = ctx.spec.id == Id::Zpopmax;
    let count = match args.get(2) {
        None => None,
        Some(c) => match parse_i64(c) {
            None => return err::not_integer(),
            Some(n) if n < 0 => return Frame::error("ERR value is out of range, must be positive"),
            Some(n) => Some(n as usize),
        },
    };
    let resp3 = ctx.client.resp3;
    let key = &args[1];
    let z = match zset_mut(ctx.db, key, ctx.expire_now) {
        Ok(Some(z)) => z,
        Ok(None) => return Frame::Array(Vec::new()),
        Err(e) => return e,
    };
    let n = count.unwrap_or(1).min(z.len());
    let picked: Vec<(Bytes, f64)> = if max {
        z.iter()
            .rev()
            .take(n)
            .map(|(m, s)| (m.clone(), s))
            .collect()
    } else {
        z.iter().take(n).map(|(m, s)| (m.clone(), s)).collect()
    };
    for (m, _) in &picked {
        z.remove(m);
    }
    if !picked.is_empty() {
        ctx.db.modified(key);
        ctx.db.remove_if_empty(key);
        ctx.propagate_as_is = true;
    }
    let mut out = Vec::new();
    for (m, s) in &picked {
        // RESP3 pairs only when a count was given (redis `genericZpopCommand`).
        push_scored(&mut out, m, *s, true, resp3 && count.is_some());
    }
    Frame::Array(out)
}

/// ZREMRANGEBYRANK / ZREMRANGEBYSCORE / ZREMRANGEBYLEX
pub(crate) fn zremrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let q = RangeQuery {
        by: match ctx.spec.id {
            Id::Zremrangebyscore => By::Score,
            Id::Zremrangebylex => By::Lex,
            _ => By::Rank,
        },
        rev: false,
        withscores: false,
        limit: None,
    };
    let key = &args[1];
    let z = match zset_mut(ctx.db, key, ctx.expire_now) {
        Ok(Some(z)) => z,
        Ok(None) => {
            return match select(&ZSet::new(), &q, &args[2], &args[3]) {
                Ok(_) => Frame::Integer(0),
                Err(e) => e,
            }
        }
        Err(e) => return e,
    };
    let items = match select(z, &q, &args[2], &args[3]) {
        Ok(i) => i,
        Err(e) => return e,
    };
    for (m, _) in &items {
        z.remove(m);
    }
    if !items.is_empty() {
        ctx.db.modified(key);
        ctx.db.remove_if_empty(key);
        ctx.propagate_as_is = true;
    }
    Frame::Integer(items.len() as i64)
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub(crate) fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (count, withscores) = match args.len() {
        2 => (None, false),
        3 | 4 => {
            let Some(c) = parse_i64(&args[2]) else {
                return err::not_integer();
            };
            if args.len() == 4 && !args[3].eq_ignore_ascii_case(b"withscores") {
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
    let z = match zset(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => {
            return if count.is_some() {
                Frame::Array(Vec::new())
            } else {
                Frame::Null
            }
        }
        Err(e) => return e,
    };
    let all: Vec<(&Bytes, f64)> = z.iter().collect();
    let Some(count) = count else {
        return Frame::Bulk(all[rand::random_range(0..all.len())].0.clone());
    };
    let picks: Vec<usize> = if count >= 0 {
        let n = (count as usize).min(all.len());
        rand::seq::index::sample(&mut rand::rng(), all.len(), n).into_vec()
    } else {
        (0..count.unsigned_abs())
            .map(|_| rand::random_range(0..all.len()))
            .collect()
    };
    let mut out = Vec::new();
    for i in picks {
        let (m, s) = all[i];
        push_scored(&mut out, m, s, withscores, resp3);
    }
    Frame::Array(out)
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: the whole set in one call.
pub(crate) fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let opts = match scan::parse_options(&args[2], &args[3..], false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let z = match zset(ctx, &args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let mut items = Vec::new();
    if let Some(z) = z {
        for (m, s) in z.iter() {
            if opts.matches(m) {
                items.push(Frame::Bulk(m.clone()));
                items.push(Frame::Bulk(Bytes::from(format_double(s))));
            }
        }
    }
    Frame::Array(vec![Frame::bulk_str("0"), Frame::Array(items)])
}
