//! String commands (redis `t_string.c`).

use bytes::{Bytes, BytesMut};

use super::{err, parse_i64, Ctx, Id};
use crate::resp::{self, Frame};
use crate::store::Value;

/// proto-max-bulk-len: the largest string a command may build.
const MAX_STRING: usize = 512 * 1024 * 1024;

/// The string at `key`: `Ok(None)` if absent, `Err(WRONGTYPE)` if not a string.
fn get_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Frame> {
    match ctx.db.get(key, ctx.expire_now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Str(v)) => Ok(Some(v.clone())),
        Some(_) => Err(err::wrongtype()),
    }
}

pub(crate) fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match get_string(ctx, &args[1]) {
        Ok(Some(v)) => Frame::Bulk(v),
        Ok(None) => Frame::Null,
        Err(e) => e,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// EX / PX: relative seconds / ms.
    Relative { secs: bool },
    /// EXAT / PXAT: absolute seconds / ms.
    Absolute { secs: bool },
}

/// Validates an expiry argument and turns it into absolute ms
/// (redis `getExpireMillisecondsOrReply`).
fn expire_at(ctx: &Ctx<'_>, arg: &[u8], kind: Expiry) -> Result<u64, Frame> {
    let invalid = || {
        Frame::Error(format!(
            "ERR invalid expire time in '{}' command",
            ctx.spec.name
        ))
    };
    let Some(v) = parse_i64(arg) else {
        return Err(err::not_integer());
    };
    let secs = matches!(
        kind,
        Expiry::Relative { secs: true } | Expiry::Absolute { secs: true }
    );
    if v <= 0 {
        return Err(invalid());
    }
    let mut ms = if secs {
        v.checked_mul(1000).ok_or_else(invalid)?
    } else {
        v
    };
    if let Expiry::Relative { .. } = kind {
        ms = ms.checked_add(ctx.now as i64).ok_or_else(invalid)?;
    }
    Ok(ms as u64)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]
pub(crate) fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expiry: Option<(Expiry, &Bytes)> = None;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let next = args.get(j + 1);
        let is = |s: &[u8]| opt.eq_ignore_ascii_case(s);
        if is(b"nx") && !xx {
            nx = true;
        } else if is(b"xx") && !nx {
            xx = true;
        } else if is(b"get") {
            get = true;
        } else if is(b"keepttl") && expiry.is_none() {
            keepttl = true;
        } else if let (Some(kind), Some(next), false) = (expiry_kind(opt), next, keepttl) {
            // Repeating the same option is allowed (the last one wins), mixing is not.
            if expiry.is_some_and(|(k, _)| k != kind) {
                return err::syntax();
            }
            expiry = Some((kind, next));
            j += 1;
        } else {
            return err::syntax();
        }
        j += 1;
    }
    let at = match expiry {
        Some((kind, arg)) => match expire_at(ctx, arg, kind) {
            Ok(at) => Some(at),
            Err(e) => return e,
        },
        None => None,
    };
    let key = &args[1];
    // A plain SET needs no lookup before writing (the hot path).
    let (mut old, mut found) = (None, false);
    if get || nx || xx {
        match ctx.db.get(key, ctx.expire_now).map(|e| &e.value) {
            None => {}
            Some(Value::Str(v)) => (old, found) = (Some(v.clone()), true),
            // Only GET cares about the old value's type.
            Some(_) if get => return err::wrongtype(),
            Some(_) => found = true,
        }
    }
    let old_reply = || old.clone().map_or(Frame::Null, Frame::Bulk);
    if (nx && found) || (xx && !found) {
        return if get { old_reply() } else { Frame::Null };
    }
    ctx.db.set(
        key.clone(),
        Value::Str(resp::keep(&args[2])),
        keepttl,
        ctx.expire_now,
    );
    if let Some(at) = at {
        ctx.db.set_expire(key, at, ctx.expire_now);
        ctx.propagate(vec![
            Bytes::from_static(b"SET"),
            key.clone(),
            args[2].clone(),
            Bytes::from_static(b"PXAT"),
            Bytes::from(at.to_string()),
        ]);
    } else if get {
        let plain = args
            .iter()
            .enumerate()
            .filter(|(i, a)| *i < 3 || !a.eq_ignore_ascii_case(b"get"));
        ctx.propagate(plain.map(|(_, a)| a.clone()).collect());
    } else {
        ctx.propagate_as_is = true;
    }
    if get {
        old_reply()
    } else {
        Frame::ok()
    }
}

fn expiry_kind(opt: &[u8]) -> Option<Expiry> {
    let lower = opt.to_ascii_lowercase();
    match &lower[..] {
        b"ex" => Some(Expiry::Relative { secs: true }),
        b"px" => Some(Expiry::Relative { secs: false }),
        b"exat" => Some(Expiry::Absolute { secs: true }),
        b"pxat" => Some(Expiry::Absolute { secs: false }),
        _ => None,
    }
}

pub(crate) fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if ctx.db.get(&args[1], ctx.expire_now).is_some() {
        return Frame::Integer(0);
    }
    ctx.db.set(
        args[1].clone(),
        Value::Str(resp::keep(&args[2])),
        false,
        ctx.expire_now,
    );
    ctx.propagate_as_is = true;
    Frame::Integer(1)
}

/// SETEX key seconds value / PSETEX key ms value
pub(crate) fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let kind = Expiry::Relative {
        secs: ctx.spec.id == Id::Setex,
    };
    let at = match expire_at(ctx, &args[2], kind) {
        Ok(at) => at,
        Err(e) => return e,
    };
    let (key, value) = (&args[1], &args[3]);
    ctx.db.set(
        key.clone(),
        Value::Str(resp::keep(value)),
        false,
        ctx.expire_now,
    );
    ctx.db.set_expire(key, at, ctx.expire_now);
    ctx.propagate(vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        value.clone(),
        Bytes::from_static(b"PXAT"),
        Bytes::from(at.to_string()),
    ]);
    Frame::ok()
}

pub(crate) fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let old = match get_string(ctx, &args[1]) {
        Ok(old) => old,
        Err(e) => return e,
    };
    ctx.db.set(
        args[1].clone(),
        Value::Str(resp::keep(&args[2])),
        false,
        ctx.expire_now,
    );
    ctx.propagate(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        args[2].clone(),
    ]);
    old.map_or(Frame::Null, Frame::Bulk)
}

pub(crate) fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match get_string(ctx, &args[1]) {
        Ok(Some(v)) => {
            ctx.db.remove(&args[1], ctx.expire_now);
            ctx.propagate(vec![Bytes::from_static(b"DEL"), args[1].clone()]);
            Frame::Bulk(v)
        }
        Ok(None) => Frame::Null,
        Err(e) => e,
    }
}

/// INCR / DECR / INCRBY / DECRBY (redis `incrDecrCommand`).
pub(crate) fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let by = match ctx.spec.id {
        Id::Incr => 1,
        Id::Decr => -1,
        id => {
            let Some(n) = parse_i64(&args[2]) else {
                return err::not_integer();
            };
            if id == Id::Incrby {
                n
            } else if n == i64::MIN {
                return Frame::error("ERR decrement would overflow");
            } else {
                -n
            }
        }
    };
    let key = &args[1];
    // Updated in place: one lookup, and the TTL survives (redis `dbOverwrite`).
    let value = match ctx.db.get_mut(key, ctx.expire_now) {
        Some(entry) => {
            let Value::Str(v) = &mut entry.value else {
                return err::wrongtype();
            };
            let Some(current) = parse_i64(v) else {
                return err::not_integer();
            };
            let Some(value) = current.checked_add(by) else {
                return Frame::error(err::OVERFLOW);
            };
            *v = Bytes::from(value.to_string());
            ctx.db.modified(key);
            value
        }
        None => {
            ctx.db
                .insert_new(key.clone(), Value::Str(Bytes::from(by.to_string())));
            by
        }
    };
    ctx.propagate_as_is = true;
    Frame::Integer(value)
}

pub(crate) fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let len = match ctx.db.get_mut(key, ctx.expire_now) {
        Some(entry) => {
            let Value::Str(v) = &mut entry.value else {
                return err::wrongtype();
            };
            if v.len() + args[2].len() > MAX_STRING {
                return Frame::error(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                );
            }
            let mut buf = BytesMut::with_capacity(v.len() + args[2].len());
            buf.extend_from_slice(v);
            buf.extend_from_slice(&args[2]);
            *v = buf.freeze();
            let len = v.len();
            ctx.db.modified(key);
            len
        }
        None => {
            if args[2].len() > MAX_STRING {
                return Frame::error(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                );
            }
            ctx.db
                .insert_new(key.clone(), Value::Str(resp::keep(&args[2])));
            args[2].len()
        }
    };
    ctx.propagate_as_is = true;
    Frame::Integer(len as i64)
}

pub(crate) fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match get_string(ctx, &args[1]) {
        Ok(v) => Frame::Integer(v.map_or(0, |v| v.len() as i64)),
        Err(e) => e,
    }
}

pub(crate) fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let now = ctx.expire_now;
    Frame::Array(
        args[1..]
            .iter()
            .map(|k| match ctx.db.get(k, now).map(|e| &e.value) {
                Some(Value::Str(v)) => Frame::Bulk(v.clone()),
                _ => Frame::Null,
            })
            .collect(),
    )
}

/// MSET / MSETNX key value [key value ...]
pub(crate) fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() & 1 == 0 {
        return Frame::wrong_arity(ctx.spec.name);
    }
    let nx = ctx.spec.id == Id::Msetnx;
    let now = ctx.expire_now;
    if nx
        && args[1..]
            .chunks(2)
            .any(|kv| ctx.db.get(&kv[0], now).is_some())
    {
        return Frame::Integer(0);
    }
    for kv in args[1..].chunks(2) {
        ctx.db
            .set(kv[0].clone(), Value::Str(resp::keep(&kv[1])), false, now);
    }
    ctx.propagate_as_is = true;
    if nx {
        Frame::Integer(1)
    } else {
        Frame::ok()
    }
}

/// INCRBYFLOAT key increment: replicated as `SET key result KEEPTTL`, as
/// redis does, so replicas never redo float arithmetic.
pub(crate) fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let Some(by) = super::parse_f64(&args[2]) else {
        return Frame::error("ERR value is not a valid float");
    };
    let current = match get_string(ctx, key) {
        Ok(None) => 0.0,
        Ok(Some(v)) => match super::parse_f64(&v) {
            Some(n) => n,
            None => return Frame::error("ERR value is not a valid float"),
        },
        Err(e) => return e,
    };
    let value = current + by;
    if !value.is_finite() {
        return Frame::error("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(super::format_long_double(value));
    ctx.db
        .set(key.clone(), Value::Str(text.clone()), true, ctx.expire_now);
    ctx.propagate(vec![
        Bytes::from_static(b"SET"),
        key.clone(),
        text.clone(),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Frame::Bulk(text)
}
