//! Stream commands (redis `t_stream.c`): XADD, XLEN, XRANGE, XREVRANGE,
//! XREAD (BLOCK included), XDEL, XTRIM, XSETID. Consumer groups are not
//! implemented: XGROUP, XREADGROUP, XACK... answer as unknown commands.

use bytes::Bytes;

use super::{err, parse_i64, BlockRequest, Ctx};
use crate::resp::Frame;
use crate::store::{Db, Stream, StreamId, Value};

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn stream<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Stream>, Frame> {
    match ctx.db.get(key, ctx.expire_now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(err::wrongtype()),
    }
}

fn stream_mut<'a>(db: &'a mut Db, key: &[u8], now: u64) -> Result<Option<&'a mut Stream>, Frame> {
    match db.get_mut(key, now).map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(err::wrongtype()),
    }
}

/// `ms-seq` or `ms` (seq = `missing_seq`), redis `streamParseID`.
fn parse_id(arg: &[u8], missing_seq: u64) -> Option<StreamId> {
    let text = std::str::from_utf8(arg).ok()?;
    let (ms, seq) = match text.split_once('-') {
        Some((ms, seq)) => (ms.parse().ok()?, seq.parse().ok()?),
        None => (text.parse().ok()?, missing_seq),
    };
    if text.starts_with('+') || text.contains(' ') {
        return None;
    }
    Some(StreamId { ms, seq })
}

/// A range bound of XRANGE: `-`, `+`, `(id` (exclusive), `id`, `ms`.
fn parse_range_bound(arg: &[u8], start: bool) -> Result<StreamId, Frame> {
    match arg {
        b"-" => return Ok(StreamId::MIN),
        b"+" => return Ok(StreamId::MAX),
        _ => {}
    }
    let (excl, rest) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    let id =
        parse_id(rest, if start { 0 } else { u64::MAX }).ok_or_else(|| Frame::error(INVALID_ID))?;
    if !excl {
        return Ok(id);
    }
    let moved = if start { id.next() } else { id.prev() };
    moved.ok_or_else(|| Frame::error("ERR invalid start ID for the interval"))
}

fn entry_frame(id: &StreamId, fields: &[Bytes]) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(id.to_string())),
        Frame::Array(fields.iter().map(|f| Frame::Bulk(f.clone())).collect()),
    ])
}

/// How XADD and XTRIM trim: MAXLEN or MINID (always exactly: `~` allows
/// trimming less, and exact trimming keeps replicas identical).
enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// Parses `[MAXLEN|MINID [=|~] threshold [LIMIT count]]` at `args[*i]`.
fn parse_trim(args: &[Bytes], i: &mut usize) -> Result<Option<Trim>, Frame> {
    let Some(opt) = args.get(*i) else {
        return Ok(None);
    };
    let maxlen = opt.eq_ignore_ascii_case(b"maxlen");
    if !maxlen && !opt.eq_ignore_ascii_case(b"minid") {
        return Ok(None);
    }
    *i += 1;
    let mut approx = false;
    if let Some(a) = args.get(*i) {
        if &a[..] == b"~" || &a[..] == b"=" {
            approx = &a[..] == b"~";
            *i += 1;
        }
    }
    let Some(th) = args.get(*i) else {
        return Err(err::syntax());
    };
    *i += 1;
    let trim = if maxlen {
        match parse_i64(th) {
            Some(n) if n >= 0 => Trim::MaxLen(n as u64),
            Some(_) => return Err(Frame::error("ERR The MAXLEN argument must be >= 0.")),
            None => return Err(err::not_integer()),
        }
    } else {
        Trim::MinId(parse_id(th, 0).ok_or_else(|| Frame::error(INVALID_ID))?)
    };
    if args
        .get(*i)
        .is_some_and(|a| a.eq_ignore_ascii_case(b"limit"))
    {
        let Some(n) = args.get(*i + 1).and_then(|a| parse_i64(a)) else {
            return Err(err::not_integer());
        };
        if n < 0 {
            return Err(Frame::error("ERR The LIMIT argument must be >= 0."));
        }
        if !approx {
            return Err(Frame::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        *i += 2;
    }
    Ok(Some(trim))
}

fn apply_trim(s: &mut Stream, trim: &Trim) -> usize {
    let mut removed = 0;
    match trim {
        Trim::MaxLen(n) => {
            while s.entries.len() as u64 > *n {
                s.entries.pop_first();
                removed += 1;
            }
        }
        Trim::MinId(min) => {
            while s.first_id().is_some_and(|f| f < *min) {
                s.entries.pop_first();
                removed += 1;
            }
        }
    }
    removed
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub(crate) fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = &args[1];
    let mut i = 2;
    let mut nomkstream = false;
    let mut trim = None;
    loop {
        match args.get(i) {
            Some(a) if a.eq_ignore_ascii_case(b"nomkstream") => {
                nomkstream = true;
                i += 1;
            }
            Some(a) if a.eq_ignore_ascii_case(b"maxlen") || a.eq_ignore_ascii_case(b"minid") => {
                match parse_trim(args, &mut i) {
                    Ok(t) => trim = t,
                    Err(e) => return e,
                }
            }
            _ => break,
        }
    }
    let id_pos = i;
    let Some(id_arg) = args.get(id_pos) else {
        return err::syntax();
    };
    let fields = &args[id_pos + 1..];
    if fields.is_empty() || fields.len() % 2 == 1 {
        return Frame::wrong_arity("xadd");
    }
    // `*`, `ms-*` or `ms-seq`.
    let wanted: Option<(u64, Option<u64>)> = if &id_arg[..] == b"*" {
        None
    } else {
        let text = String::from_utf8_lossy(id_arg);
        match text.split_once('-') {
            Some((ms, "*")) => match ms.parse() {
                Ok(ms) => Some((ms, None)),
                Err(_) => return Frame::error(INVALID_ID),
            },
            _ => match parse_id(id_arg, 0) {
                Some(id) => Some((id.ms, Some(id.seq))),
                None => return Frame::error(INVALID_ID),
            },
        }
    };
    if wanted == Some((0, Some(0))) {
        return Frame::error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let now = ctx.now;
    let exists = match stream(ctx, key) {
        Ok(s) => s.is_some(),
        Err(e) => return e,
    };
    if !exists {
        if nomkstream {
            return Frame::Null;
        }
        ctx.db
            .insert_new(key.clone(), Value::Stream(Box::new(Stream::new())));
    }
    let Ok(Some(s)) = stream_mut(ctx.db, key, ctx.expire_now) else {
        return err::wrongtype();
    };
    let last = s.last_id;
    let id = match wanted {
        None => {
            if now > last.ms {
                StreamId { ms: now, seq: 0 }
            } else {
                match last.next() {
                    Some(id) => id,
                    None => {
                        return Frame::error(
                            "ERR The stream has exhausted the last possible ID, unable to add more items",
                        )
                    }
                }
            }
        }
        Some((ms, None)) => {
            if ms == last.ms {
                match last.seq.checked_add(1) {
                    Some(seq) => StreamId { ms, seq },
                    None => return Frame::error("ERR The ID specified in XADD is equal or smaller than the target stream top item"),
                }
            } else {
                StreamId { ms, seq: 0 }
            }
        }
        Some((ms, Some(seq))) => StreamId { ms, seq },
    };
    if id <= last {
        if !exists {
            ctx.db.remove_if_empty(key);
        }
        return Frame::error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        );
    }
    s.entries.insert(id, fields.to_vec());
    s.last_id = id;
    s.entries_added += 1;
    if let Some(t) = &trim {
        apply_trim(s, t);
    }
    ctx.db.modified(key);
    // Replicated with the ID this node chose.
    let mut repl = args.to_vec();
    repl[id_pos] = Bytes::from(id.to_string());
    ctx.propagate(repl);
    Frame::Bulk(Bytes::from(id.to_string()))
}

pub(crate) fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match stream(ctx, &args[1]) {
        Ok(s) => Frame::Integer(s.map_or(0, |s| s.len() as i64)),
        Err(e) => e,
    }
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n]
pub(crate) fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let rev = ctx.spec.id == super::Id::Xrevrange;
    let (a, b) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = match parse_range_bound(a, true) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let end = match parse_range_bound(b, false) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let mut count = None;
    match args.len() {
        4 => {}
        6 if args[4].eq_ignore_ascii_case(b"count") => match parse_i64(&args[5]) {
            Some(n) => count = Some(n.max(0) as usize),
            None => return err::not_integer(),
        },
        _ => return err::syntax(),
    }
    let s = match stream(ctx, &args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Array(Vec::new()),
        Err(e) => return e,
    };
    if start > end || count == Some(0) {
        return Frame::Array(Vec::new());
    }
    let range = s.entries.range(start..=end);
    let limit = count.unwrap_or(usize::MAX);
    let items: Vec<Frame> = if rev {
        range
            .rev()
            .take(limit)
            .map(|(id, f)| entry_frame(id, f))
            .collect()
    } else {
        range
            .take(limit)
            .map(|(id, f)| entry_frame(id, f))
            .collect()
    };
    Frame::Array(items)
}

pub(crate) fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut ids = Vec::new();
    for a in &args[2..] {
        match parse_id(a, 0) {
            Some(id) => ids.push(id),
            None => return Frame::error(INVALID_ID),
        }
    }
    let key = &args[1];
    let s = match stream_mut(ctx.db, key, ctx.expire_now) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Integer(0),
        Err(e) => return e,
    };
    let mut deleted = 0;
    for id in ids {
        if s.entries.remove(&id).is_some() {
            deleted += 1;
            if id > s.max_deleted_id {
                s.max_deleted_id = id;
            }
        }
    }
    if deleted > 0 {
        ctx.db.modified(key);
        ctx.propagate_as_is = true;
    }
    Frame::Integer(deleted)
}

pub(crate) fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut i = 2;
    let trim = match parse_trim(args, &mut i) {
        Ok(Some(t)) => t,
        Ok(None) => return err::syntax(),
        Err(e) => return e,
    };
    if i != args.len() {
        return err::syntax();
    }
    let key = &args[1];
    let s = match stream_mut(ctx.db, key, ctx.expire_now) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::Integer(0),
        Err(e) => return e,
    };
    let removed = apply_trim(s, &trim);
    if removed > 0 {
        ctx.db.modified(key);
        ctx.propagate_as_is = true;
    }
    Frame::Integer(removed as i64)
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]
pub(crate) fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(id) = parse_id(&args[2], 0) else {
        return Frame::error(INVALID_ID);
    };
    let (mut added, mut maxdel) = (None, None);
    let mut i = 3;
    while i < args.len() {
        let Some(v) = args.get(i + 1) else {
            return err::syntax();
        };
        if args[i].eq_ignore_ascii_case(b"entriesadded") {
            match parse_i64(v) {
                Some(n) if n >= 0 => added = Some(n as u64),
                Some(_) => return Frame::error("ERR entries_added must be positive"),
                None => return err::not_integer(),
            }
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") {
            match parse_id(v, 0) {
                Some(m) => maxdel = Some(m),
                None => return Frame::error(INVALID_ID),
            }
        } else {
            return err::syntax();
        }
        i += 2;
    }
    let key = &args[1];
    let s = match stream_mut(ctx.db, key, ctx.expire_now) {
        Ok(Some(s)) => s,
        Ok(None) => return Frame::error("ERR no such key"),
        Err(e) => return e,
    };
    if let Some(m) = maxdel {
        if id < m {
            return Frame::error(
                "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
            );
        }
    }
    if let Some(a) = added {
        if (s.len() as u64) > a {
            return Frame::error("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    if s.last_entry_id().is_some_and(|top| id < top) {
        return Frame::error(
            "ERR The ID specified in XSETID is smaller than the target stream top item",
        );
    }
    s.last_id = id;
    if let Some(a) = added {
        s.entries_added = a;
    }
    if let Some(m) = maxdel {
        s.max_deleted_id = m;
    }
    ctx.db.modified(key);
    ctx.propagate_as_is = true;
    Frame::ok()
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub(crate) fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut count = None;
    let mut block = None;
    let mut i = 1;
    let streams_at = loop {
        let Some(a) = args.get(i) else {
            return err::syntax();
        };
        let more = args.len() - i - 1;
        if a.eq_ignore_ascii_case(b"count") && more >= 1 {
            match parse_i64(&args[i + 1]) {
                Some(n) => count = Some(n.max(0) as usize),
                None => return err::not_integer(),
            }
            i += 2;
        } else if a.eq_ignore_ascii_case(b"block") && more >= 1 {
            match parse_i64(&args[i + 1]) {
                Some(n) if n < 0 => return Frame::error("ERR timeout is negative"),
                Some(n) => block = Some(n as u64),
                None => return Frame::error("ERR timeout is not an integer or out of range"),
            }
            i += 2;
        } else if a.eq_ignore_ascii_case(b"streams") {
            break i + 1;
        } else {
            return err::syntax();
        }
    };
    let rest = &args[streams_at..];
    if rest.is_empty() || rest.len() % 2 == 1 {
        return Frame::error("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.");
    }
    let n = rest.len() / 2;
    let (keys, ids) = rest.split_at(n);
    let mut from = Vec::with_capacity(n);
    for (key, id) in keys.iter().zip(ids) {
        let after = if &id[..] == b"$" {
            match stream(ctx, key) {
                Ok(s) => s.map_or(StreamId::MIN, |s| s.last_id),
                Err(e) => return e,
            }
        } else if &id[..] == b">" {
            return Frame::error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
        } else {
            match parse_id(id, 0) {
                Some(x) => x,
                None => return Frame::error(INVALID_ID),
            }
        };
        from.push(after);
    }
    let resp3 = ctx.client.resp3;
    let mut results = Vec::new();
    for (key, after) in keys.iter().zip(&from) {
        let s = match stream(ctx, key) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => return e,
        };
        let Some(start) = after.next() else { continue };
        let entries: Vec<Frame> = s
            .entries
            .range(start..)
            .take(count.filter(|c| *c > 0).unwrap_or(usize::MAX))
            .map(|(id, f)| entry_frame(id, f))
            .collect();
        if !entries.is_empty() {
            results.push((Frame::Bulk(key.clone()), Frame::Array(entries)));
        }
    }
    if !results.is_empty() {
        return if resp3 {
            Frame::Map(results)
        } else {
            Frame::Array(
                results
                    .into_iter()
                    .map(|(k, v)| Frame::Array(vec![k, v]))
                    .collect(),
            )
        };
    }
    // Nothing yet: block unless inside MULTI or a script (redis answers as
    // on a timeout there).
    if let Some(timeout) = block {
        if ctx.can_block() {
            // Retried later with `$` resolved to what it meant now.
            let mut retry = args.to_vec();
            for (j, after) in from.iter().enumerate() {
                retry[streams_at + n + j] = Bytes::from(after.to_string());
            }
            ctx.block = Some(BlockRequest {
                keys: keys.to_vec(),
                timeout_ms: timeout,
                retry,
            });
        }
    }
    Frame::NullArray
}
