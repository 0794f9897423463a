//! Connection commands: PING, ECHO, HELLO, SELECT, QUIT, AUTH, RESET,
//! ASKING, READONLY, READWRITE.

use bytes::Bytes;

use super::{client, err, multi, parse_i64, Ctx};
use crate::resp::Frame;

/// The version HELLO announces: clients key features off it.
pub const REDIS_VERSION: &str = "7.0.15";

const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

pub(crate) fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len() > 2 {
        return Frame::wrong_arity("ping");
    }
    // A subscribed RESP2 connection gets a two-element array.
    if ctx.client.in_pubsub_context() && !ctx.client.resp3 {
        return Frame::Array(vec![
            Frame::bulk_str("pong"),
            Frame::Bulk(args.get(1).cloned().unwrap_or_default()),
        ]);
    }
    match args.len() {
        1 => Frame::Simple("PONG".into()),
        _ => Frame::Bulk(args[1].clone()),
    }
}

pub(crate) fn echo(args: &[Bytes]) -> Frame {
    Frame::Bulk(args[1].clone())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub(crate) fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut ver = None;
    if let Some(v) = args.get(1) {
        let Some(v) = parse_i64(v) else {
            return Frame::error("ERR Protocol version is not an integer or out of range");
        };
        if !(2..=3).contains(&v) {
            return Frame::error("NOPROTO unsupported protocol version");
        }
        ver = Some(v);
    }
    let mut j = 2;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            // Only the passwordless `default` user exists.
            if &args[j + 1][..] != b"default" {
                return Frame::error(
                    "WRONGPASS invalid username-password pair or user is disabled.",
                );
            }
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            if let Frame::Error(e) = client::set_name(ctx.client, &args[j + 1]) {
                return Frame::Error(e);
            }
            j += 2;
        } else {
            return Frame::Error(format!(
                "ERR Syntax error in HELLO option '{}'",
                super::truncated(opt, usize::MAX)
            ));
        }
    }
    if let Some(v) = ver {
        ctx.client.resp3 = v == 3;
    }
    let kv = |k: &str, v: Frame| (Frame::bulk_str(k), v);
    let mode = if ctx.host.cluster_enabled() {
        "cluster"
    } else {
        "standalone"
    };
    let role = if ctx.host.is_replica() {
        "replica"
    } else {
        "master"
    };
    Frame::Map(vec![
        kv("server", Frame::bulk_str("redis")),
        kv("version", Frame::bulk_str(REDIS_VERSION)),
        kv(
            "proto",
            Frame::Integer(if ctx.client.resp3 { 3 } else { 2 }),
        ),
        kv("id", Frame::Integer(ctx.client.id as i64)),
        kv("mode", Frame::bulk_str(mode)),
        kv("role", Frame::bulk_str(role)),
        kv("modules", Frame::Array(Vec::new())),
    ])
}

/// SELECT index: only db 0 exists on this node.
pub(crate) fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(id) = parse_i64(&args[1]).filter(|v| i32::try_from(*v).is_ok()) else {
        return err::not_integer();
    };
    if ctx.host.cluster_enabled() && id != 0 {
        return Frame::error("ERR SELECT is not allowed in cluster mode");
    }
    if id != 0 {
        // Standalone redis has 16 dbs; this node keeps only db 0.
        return Frame::error("ERR DB index is out of range");
    }
    Frame::ok()
}

pub(crate) fn quit(ctx: &mut Ctx<'_>) -> Frame {
    ctx.close = true;
    Frame::ok()
}

/// AUTH [username] password, with no password configured (redis defaults).
pub(crate) fn auth(args: &[Bytes]) -> Frame {
    match args.len() {
        2 => Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. \
Are you sure your configuration is correct?",
        ),
        3 if &args[1][..] == b"default" => Frame::ok(),
        3 => Frame::error("WRONGPASS invalid username-password pair or user is disabled."),
        _ => err::syntax(),
    }
}

/// RESET: back to a freshly connected client's state (redis
/// `clearClientConnectionState`).
pub(crate) fn reset(ctx: &mut Ctx<'_>) -> Frame {
    multi::discard(ctx.db, ctx.client);
    ctx.client.resp3 = false;
    ctx.client.name = None;
    ctx.client.asking = false;
    ctx.client.readonly = false;
    ctx.client.reply_off = false;
    ctx.client.reply_skip = false;
    ctx.client.reply_skip_next = false;
    ctx.client.no_evict = false;
    if let Some(ps) = ctx.host.pubsub() {
        super::pubsub::forget_client(ps, ctx.client);
    }
    Frame::Simple("RESET".into())
}

pub(crate) fn asking(ctx: &mut Ctx<'_>) -> Frame {
    if !ctx.host.cluster_enabled() {
        return Frame::error(CLUSTER_DISABLED);
    }
    ctx.client.asking = true;
    Frame::ok()
}

/// READONLY (`on`) / READWRITE.
pub(crate) fn readonly(ctx: &mut Ctx<'_>, on: bool) -> Frame {
    if !ctx.host.cluster_enabled() {
        return Frame::error(CLUSTER_DISABLED);
    }
    ctx.client.readonly = on;
    Frame::ok()
}
