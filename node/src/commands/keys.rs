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

/// RENAME / RENAMENX key newkey (redis `renameGenericCommand`): the value and
/// its TTL move; both names hash to one slot (routing checked it).
pub(crate) fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let nx = ctx.spec.id == Id::Renamenx;
    let (from, to) = (&args[1], &args[2]);
    let now = ctx.expire_now;
    if ctx.db.get(from, now).is_none() {
        return Frame::error("ERR no such key");
    }
    if from == to {
        return if nx { Frame::Integer(0) } else { Frame::ok() };
    }
    if ctx.db.get(to, now).is_some() {
        if nx {
            return Frame::Integer(0);
        }
        ctx.db.remove(to, now);
    }
    ctx.db.rename(from, to.clone(), now);
    ctx.propagate_as_is = true;
    if nx {
        Frame::Integer(1)
    } else {
        Frame::ok()
    }
}

/// TOUCH key [key ...]: how many exist.
pub(crate) fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let now = ctx.expire_now;
    let n = args[1..]
        .iter()
        .filter(|k| ctx.db.get(k, now).is_some())
        .count();
    Frame::Integer(n as i64)
}

/// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key, OBJECT HELP. Encodings are
/// the ones redis 7.0 would report for the same value.
pub(crate) fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if ctx.spec.id == Id::ObjectHelp {
        return Frame::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Frame::Simple((*l).to_string()))
            .collect(),
        );
    }
    let id = ctx.spec.id;
    let Some(entry) = ctx.db.get(&args[2], ctx.expire_now) else {
        return Frame::Null;
    };
    match id {
        Id::ObjectEncoding => Frame::bulk_str(encoding_name(&entry.value)),
        Id::ObjectFreq => Frame::error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        Id::ObjectIdletime => Frame::Integer(0),
        _ => {
            // Small integers are shared objects in redis.
            let shared = matches!(&entry.value, crate::store::Value::Str(v)
                if parse_i64(v).is_some_and(|n| (0..10000).contains(&n)));
            Frame::Integer(if shared { i64::from(i32::MAX) } else { 1 })
        }
    }
}

pub(crate) fn encoding_name(v: &crate::store::Value) -> &'static str {
    use crate::store::Value;
    match v {
        Value::Str(s) => {
            if s.len() <= 20 && parse_i64(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        Value::List(_) => "quicklist",
        Value::Set(s) => {
            if s.len() <= 512 && s.iter().all(|m| parse_i64(m).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::Hash(h) => h.encoding(),
        Value::ZSet(z) => z.encoding(),
        Value::Stream(_) => "stream",
    }
}
