//! DEBUG (redis `debug.c`): the subcommands redis's test suites use. The
//! server-level ones (DROP-CLUSTER-PACKET-FILTER, SET-ACTIVE-EXPIRE,
//! CLUSTERLINK, LOG) and the `enable-debug-command` gate are the host's; the
//! dataset ones are here: SLEEP, POPULATE, DIGEST, DIGEST-VALUE, OBJECT.

use std::time::Duration;

use bytes::Bytes;
use sha1::{Digest, Sha1};

use super::{parse_i64, Ctx};
use crate::resp::{format_double, Frame};
use crate::store::{Entry, Value};

const HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about the `key` and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "CLUSTERLINK KILL <to|from|all> <node-id>",
    "    Kills the link based on the direction to/from (both) with the provided node.",
];

pub(crate) fn debug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if let Some(reply) = ctx.host.debug(args, ctx.client) {
        return reply;
    }
    let sub = args[1].to_ascii_lowercase();
    match (&sub[..], args.len()) {
        (b"help", 2) => Frame::Array(HELP.iter().map(|l| Frame::Simple((*l).into())).collect()),
        (b"sleep", 3) => {
            // Blocks the whole server, as in redis: everything waits on the
            // node lock this thread holds.
            let secs = super::parse_f64(&args[2]).unwrap_or(0.0);
            if secs > 0.0 && secs.is_finite() {
                std::thread::sleep(Duration::from_secs_f64(secs));
            }
            Frame::ok()
        }
        (b"populate", 3..=5) => populate(ctx, args),
        (b"digest", 2) => {
            let d = dataset_digest(ctx);
            Frame::Simple(hex(&d))
        }
        (b"digest-value", _) => {
            let now = ctx.expire_now;
            let mut out = Vec::new();
            for key in &args[2..] {
                let mut d = [0u8; 20];
                if let Some(e) = ctx.db.get(key, now) {
                    value_digest(&mut d, e);
                }
                out.push(Frame::Simple(hex(&d)));
            }
            Frame::Array(out)
        }
        (b"object", 3) => {
            let Some(e) = ctx.db.get(&args[2], ctx.expire_now) else {
                return Frame::error("ERR no such key");
            };
            Frame::Simple(format!(
                "Value at:0x0 refcount:1 encoding:{} serializedlength:0 lru:0 lru_seconds_idle:0",
                super::keys::encoding_name(&e.value)
            ))
        }
        _ => Frame::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            super::truncated(&args[1], 128)
        )),
    }
}

/// DEBUG POPULATE count [prefix] [size]: string keys `prefix:N` with values
/// `value:N` (padded or cut to `size`), skipping keys that exist. Not
/// replicated, and slots are not checked, as in redis.
fn populate(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(count) = parse_i64(&args[2]).filter(|n| *n >= 0) else {
        return Frame::error("ERR value is out of range, must be positive");
    };
    let prefix = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| Bytes::from_static(b"key"));
    let size = match args.get(4) {
        None => None,
        Some(s) => match parse_i64(s).filter(|n| *n >= 0) {
            Some(n) => Some(n as usize),
            None => return Frame::error("ERR value is out of range, must be positive"),
        },
    };
    let now = ctx.expire_now;
    for j in 0..count {
        let mut key = prefix.to_vec();
        key.extend_from_slice(format!(":{j}").as_bytes());
        if ctx.db.get(&key, now).is_some() {
            continue;
        }
        let text = format!("value:{j}").into_bytes();
        let value = match size {
            None | Some(0) => text,
            Some(n) => {
                let mut v = vec![0u8; n];
                let m = n.min(text.len());
                v[..m].copy_from_slice(&text[..m]);
                v
            }
        };
        ctx.db
            .insert_new(Bytes::from(key), Value::Str(Bytes::from(value)));
    }
    Frame::ok()
}

fn hex(d: &[u8; 20]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// redis `xorDigest`: digest ^= SHA1(data).
fn xor_digest(digest: &mut [u8; 20], data: &[u8]) {
    let h = Sha1::digest(data);
    for (d, x) in digest.iter_mut().zip(h.iter()) {
        *d ^= x;
    }
}

/// redis `mixDigest`: digest = SHA1(digest ^ SHA1(data)), order-sensitive.
fn mix_digest(digest: &mut [u8; 20], data: &[u8]) {
    xor_digest(digest, data);
    let h = Sha1::digest(&digest[..]);
    digest.copy_from_slice(&h);
}

/// redis `xorObjectDigest`: a value's digest mixed into `digest`.
fn value_digest(digest: &mut [u8; 20], entry: &Entry) {
    mix_digest(digest, &entry.value.type_code().to_be_bytes());
    match &entry.value {
        Value::Str(s) => mix_digest(digest, s),
        Value::List(l) => {
            for e in l {
                mix_digest(digest, e);
            }
        }
        Value::Set(s) => {
            for m in s.iter() {
                xor_digest(digest, m);
            }
        }
        Value::ZSet(z) => {
            for (m, score) in z.iter() {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, m);
                mix_digest(&mut ele, format_double(score).as_bytes());
                xor_digest(digest, &ele);
            }
        }
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, f);
                mix_digest(&mut ele, v);
                xor_digest(digest, &ele);
            }
        }
        Value::Stream(st) => {
            for (id, fields) in &st.entries {
                mix_digest(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for f in fields {
                    mix_digest(digest, f);
                }
            }
        }
    }
    if entry.expire_at().is_some() {
        xor_digest(digest, b"!!expire!!");
    }
}

/// redis `computeDatasetDigest` (db 0 only: the only one here). All zeros
/// for an empty dataset.
fn dataset_digest(ctx: &mut Ctx<'_>) -> [u8; 20] {
    let mut out = [0u8; 20];
    if ctx.db.is_empty() {
        return out;
    }
    mix_digest(&mut out, &0u32.to_be_bytes());
    for (key, entry) in ctx.db.iter() {
        let mut d = [0u8; 20];
        mix_digest(&mut d, key);
        value_digest(&mut d, entry);
        xor_digest(&mut out, &d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_helpers_match_redis_definitions() {
        let mut a = [0u8; 20];
        xor_digest(&mut a, b"abc");
        assert_eq!(hex(&a), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let mut b = [0u8; 20];
        mix_digest(&mut b, b"abc");
        let again = Sha1::digest(a);
        assert_eq!(&b[..], &again[..]);
    }
}
