//! Generic keyspace commands: TYPE, EXISTS, DEL, UNLINK, EXPIRE, PEXPIRE,
//! EXPIREAT, PEXPIREAT, TTL, PTTL, PERSIST.

use bytes::Bytes;

use super::{err, parse_i64, Ctx, Id};
use crate::resp::Frame;
use crate::store::ExpireMode;

pub(crate) fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let name = ctx
        .db
        .get(&args[1], ctx.expire_now)
        .map_or("none", |e| e.value.type_name());
    Frame::Simple(name.into())
}

pub(crate) fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let now = ctx.expire_now;
    let n = args[1..]
        .iter()
        .filter(|k| ctx.db.get(k, now).is_some())
        .count();
    Frame::Integer(n as i64)
}

/// DEL and UNLINK (this store frees memory synchronously either way).
pub(crate) fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let now = ctx.expire_now;
    let n = args[1..].iter().filter(|k| ctx.db.remove(k, now)).count();
    ctx.propagate_as_is = n > 0;
    Frame::Integer(n as i64)
}

const NX: u8 = 1;
const XX: u8 = 2;
const GT: u8 = 4;
const LT: u8 = 8;

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT]
/// (redis `expireGenericCommand`).
pub(crate) fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let id = ctx.spec.id;
    let mut opts = 0u8;
    for opt in &args[3..] {
        opts |= match &opt.to_ascii_lowercase()[..] {
            b"nx" => NX,
            b"xx" => XX,
            b"gt" => GT,
            b"lt" => LT,
            _ => {
                return Frame::Error(format!(
                    "ERR Unsupported option {}",
                    super::truncated(opt, usize::MAX)
                ));
            }
        };
    }
    if opts & NX != 0 && opts & (XX | GT | LT) != 0 {
        return Frame::error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if opts & GT != 0 && opts & LT != 0 {
        return Frame::error("ERR GT and LT options at the same time are not compatible");
    }
    let Some(mut when) = parse_i64(&args[2]) else {
        return err::not_integer();
    };
    let invalid = || {
        Frame::Error(format!(
            "ERR invalid expire time in '{}' command",
            ctx.spec.name
        ))
    };
    if matches!(id, Id::Expire | Id::Expireat) {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return invalid(),
        }
    }
    let base = if matches!(id, Id::Expire | Id::Pexpire) {
        ctx.now as i64
    } else {
        0
    };
    match when.checked_add(base) {
        Some(w) => when = w,
        None => return invalid(),
    }

    let key = &args[1];
    let current = match ctx.db.get(key, ctx.expire_now) {
        None => return Frame::Integer(0),
        Some(e) => e.expire_at(),
    };
    if opts != 0 {
        let cur = current.map(|c| c as i64);
        let refused = (opts & NX != 0 && cur.is_some())
            || (opts & XX != 0 && cur.is_none())
            || (opts & GT != 0 && cur.is_none_or(|c| when <= c))
            || (opts & LT != 0 && cur.is_some_and(|c| when >= c));
        if refused {
            return Frame::Integer(0);
        }
    }

    // A time in the past deletes the key at once, except where the master
    // decides about expiry (replicas, the replication link).
    let masterless = ctx.db.expire_mode() == ExpireMode::Delete && !ctx.client.is_master_link;
    if masterless && when <= ctx.now as i64 {
        ctx.db.remove(key, ctx.expire_now);
        ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        return Frame::Integer(1);
    }
    let at = when.max(0) as u64;
    ctx.db.set_expire(key, at, ctx.expire_now);
    ctx.propagate(vec![
        Bytes::from_static(b"PEXPIREAT"),
        key.clone(),
        Bytes::from(at.to_string()),
    ]);
    Frame::Integer(1)
}

/// TTL / PTTL: -2 no key, -1 no expiry, else the remaining time.
pub(crate) fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(entry) = ctx.db.get(&args[1], ctx.expire_now) else {
        return Frame::Integer(-2);
    };
    let Some(at) = entry.expire_at() else {
        return Frame::Integer(-1);
    };
    let ms = at.saturating_sub(ctx.now) as i64;
    Frame::Integer(if ctx.spec.id == Id::Pttl {
        ms
    } else {
        (ms + 500) / 1000
    })
}

pub(crate) fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let removed = ctx.db.persist(&args[1], ctx.expire_now);
    ctx.propagate_as_is = removed;
    Frame::Integer(i64::from(removed))
}
