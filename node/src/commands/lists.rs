//! List commands (redis `t_list.c`): LPUSH, RPUSH, LRANGE, LLEN, LPOP, RPOP.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{err, parse_i64, Ctx, Id};
use crate::resp::Frame;
use crate::store::Value;

/// LPUSH / RPUSH key element [element ...]
pub(crate) fn push(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let left = ctx.spec.id == Id::Lpush;
    let key = &args[1];
    let len = match ctx.db.get_mut(key, ctx.expire_now) {
        Some(entry) => match &mut entry.value {
            Value::List(list) => {
                for v in &args[2..] {
                    if left {
                        list.push_front(v.clone());
                    } else {
                        list.push_back(v.clone());
                    }
                }
                let len = list.len();
                ctx.db.modified(key);
                len
            }
            _ => return err::wrongtype(),
        },
        None => {
            let mut list = VecDeque::with_capacity(args.len() - 2);
            for v in &args[2..] {
                if left {
                    list.push_front(v.clone());
                } else {
                    list.push_back(v.clone());
                }
            }
            let len = list.len();
            ctx.db.insert_new(key.clone(), Value::List(list));
            len
        }
    };
    ctx.propagate_as_is = true;
    Frame::Integer(len as i64)
}

fn list_len(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<usize>, Frame> {
    match ctx.db.get(key, ctx.expire_now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l.len())),
        Some(_) => Err(err::wrongtype()),
    }
}

pub(crate) fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match list_len(ctx, &args[1]) {
        Ok(n) => Frame::Integer(n.unwrap_or(0) as i64),
        Err(e) => e,
    }
}

/// LRANGE key start stop (negative indexes count from the end).
pub(crate) fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(mut start), Some(mut end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return err::not_integer();
    };
    let list = match ctx.db.get(&args[1], ctx.expire_now).map(|e| &e.value) {
        None => return Frame::Array(Vec::new()),
        Some(Value::List(l)) => l,
        Some(_) => return err::wrongtype(),
    };
    let len = list.len() as i64;
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    if start > end || start >= len {
        return Frame::Array(Vec::new());
    }
    end = end.min(len - 1);
    let (start, end) = (start as usize, end as usize);
    Frame::Array(
        list.range(start..=end)
            .map(|v| Frame::Bulk(v.clone()))
            .collect(),
    )
}

/// LPOP / RPOP key [count]
pub(crate) fn pop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() > 3 {
        return Frame::wrong_arity(ctx.spec.name);
    }
    let left = ctx.spec.id == Id::Lpop;
    let count = match args.get(2) {
        None => None,
        Some(c) => match parse_i64(c) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Frame::error("ERR value is out of range, must be positive"),
        },
    };
    let key = &args[1];
    let list = match ctx.db.get_mut(key, ctx.expire_now) {
        None => {
            return if count.is_some() {
                Frame::NullArray
            } else {
                Frame::Null
            }
        }
        Some(entry) => match &mut entry.value {
            Value::List(l) => l,
            _ => return err::wrongtype(),
        },
    };
    let reply = match count {
        Some(0) => return Frame::Array(Vec::new()),
        Some(n) => {
            let n = n.min(list.len());
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let v = if left {
                    list.pop_front()
                } else {
                    list.pop_back()
                };
                if let Some(v) = v {
                    out.push(Frame::Bulk(v));
                }
            }
            Frame::Array(out)
        }
        None => {
            let v = if left {
                list.pop_front()
            } else {
                list.pop_back()
            };
            v.map_or(Frame::Null, Frame::Bulk)
        }
    };
    ctx.db.modified(key);
    ctx.db.remove_if_empty(key);
    ctx.propagate_as_is = true;
    reply
}
