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
            // Only the `default` user exists.
            if !check_password(ctx, &args[j + 1], &args[j + 2]) {
                return Frame::error(WRONGPASS);
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
    if !ctx.client.authenticated && ctx.host.requirepass().is_some() {
        return Frame::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
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

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks `user`/`password` against the `default` user, the only one, and
/// marks the client authenticated when they match (redis `ACLAuthenticateUser`).
fn check_password(ctx: &mut Ctx<'_>, user: &[u8], password: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    // Without requirepass the default user is `nopass`: any password works.
    let ok = match ctx.host.requirepass() {
        None => true,
        Some(p) => p.as_bytes() == password,
    };
    if ok {
        ctx.client.authenticated = true;
    }
    ok
}

/// AUTH [username] password (redis `authCommand`).
pub(crate) fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match args.len() {
        2 if ctx.host.requirepass().is_none() => Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. \
Are you sure your configuration is correct?",
        ),
        2 | 3 => {
            let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
                (b"default", &args[1])
            } else {
                (&args[1], &args[2])
            };
            if check_password(ctx, user, pass) {
                Frame::ok()
            } else {
                Frame::error(WRONGPASS)
            }
        }
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
    // redis `clientSetDefaultAuth`.
    ctx.client.authenticated = ctx.host.requirepass().is_none();
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
