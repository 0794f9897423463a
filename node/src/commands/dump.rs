//! DUMP, RESTORE and RESTORE-ASKING: values as RDB objects (see
//! [`crate::rdb`]), interchangeable with redis-server 7.0's payloads.

use bytes::Bytes;

use super::{err, parse_i64, Ctx};
use crate::rdb::{self, RestoreError};
use crate::resp::Frame;
use crate::store::ExpireMode;

/// DUMP key: the serialized value, or nil.
pub(crate) fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let opts = ctx.host.rdb_options();
    match ctx.db.get(&args[1], ctx.expire_now) {
        None => Frame::Null,
        Some(e) => Frame::Bulk(Bytes::from(rdb::dump(&e.value, opts))),
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]
/// (redis `restoreCommand`, same checks in the same order).
pub(crate) fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None::<i64>, None::<i64>);
    let mut j = 4;
    while j < args.len() {
        let more = args.len() - j - 1;
        let opt = args[j].to_ascii_lowercase();
        match &opt[..] {
            b"replace" => replace = true,
            b"absttl" => absttl = true,
            b"idletime" if more >= 1 && freq.is_none() => {
                let Some(v) = parse_i64(&args[j + 1]) else {
                    return err::not_integer();
                };
                if v < 0 {
                    return Frame::error("ERR Invalid IDLETIME value, must be >= 0");
                }
                idle = Some(v);
                j += 1;
            }
            b"freq" if more >= 1 && idle.is_none() => {
                let Some(v) = parse_i64(&args[j + 1]) else {
                    return err::not_integer();
                };
                if !(0..=255).contains(&v) {
                    return Frame::error("ERR Invalid FREQ value, must be >= 0 and <= 255");
                }
                freq = Some(v);
                j += 1;
            }
            _ => return err::syntax(),
        }
        j += 1;
    }
    let key = &args[1];
    if !replace && ctx.db.get(key, ctx.expire_now).is_some() {
        return Frame::error("BUSYKEY Target key name already exists.");
    }
    let Some(mut ttl) = parse_i64(&args[2]) else {
        return err::not_integer();
    };
    if ttl < 0 {
        return Frame::error("ERR Invalid TTL value, must be >= 0");
    }
    let value = match rdb::restore(&args[3]) {
        Ok(v) => v,
        Err(RestoreError::VersionOrChecksum) => {
            return Frame::error("ERR DUMP payload version or checksum are wrong")
        }
        Err(RestoreError::BadFormat(_)) => return Frame::error("ERR Bad data format"),
    };
    let deleted = replace && ctx.db.remove(key, ctx.expire_now);
    if ttl > 0 && !absttl {
        ttl = ttl.saturating_add(ctx.now as i64);
    }
    // redis `checkAlreadyExpired`: where the master decides about expiry
    // (a replica, the replication link), nothing is already expired.
    let masterless = ctx.db.expire_mode() == ExpireMode::Delete && !ctx.client.is_master_link;
    if ttl > 0 && masterless && ttl <= ctx.now as i64 {
        if deleted {
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        }
        return Frame::ok();
    }
    ctx.db.set(key.clone(), value, false, ctx.expire_now);
    let mut out = args.to_vec();
    if ttl > 0 {
        ctx.db.set_expire(key, ttl as u64, ctx.expire_now);
        if !absttl {
            // Replicas get the absolute time (redis rewrites the argument).
            out[2] = Bytes::from(ttl.to_string());
            out.push(Bytes::from_static(b"ABSTTL"));
        }
    }
    ctx.propagate(out);
    Frame::ok()
}
