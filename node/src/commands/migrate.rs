//! MIGRATE (redis `migrateCommand`): keys move to another node as
//! `RESTORE-ASKING` commands carrying DUMP payloads; each key the target
//! acknowledged is deleted here (unless COPY) and replicated as `DEL`.
//!
//! The decisions (which keys, their TTLs, the payloads, what to delete and
//! reply) are here; the exchange with the target, over a cached connection,
//! is the host's ([`super::Host::migrate`]). redis runs that exchange
//! synchronously on its only thread, and the shell does the same under the
//! node lock: no command can touch a key between its copy and its delete.

use bytes::Bytes;

use super::{err, parse_i64, Ctx};
use crate::rdb;
use crate::replication::protocol::encode_command;
use crate::resp::Frame;

/// One MIGRATE exchange, for the host to run.
#[derive(Debug)]
pub struct MigrateExchange<'a> {
    pub host: &'a [u8],
    pub port: &'a [u8],
    /// For connecting and for every read and write (redis: ms, 1000 if <= 0).
    pub timeout_ms: u64,
    pub dbid: i64,
    /// `AUTH [user] pass` first, when given.
    pub auth: Option<(Option<&'a [u8]>, &'a [u8])>,
    /// The RESTORE commands, encoded, in key order.
    pub restores: &'a [u8],
    pub count: usize,
}

/// What came back from the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrateOutcome {
    /// Reply lines: to AUTH and SELECT when they were sent, then one per
    /// RESTORE as far as they came; `socket_error` if the rest did not.
    Replies {
        auth: Option<String>,
        select: Option<String>,
        restores: Vec<String>,
        socket_error: bool,
    },
    /// Could not connect in time.
    ConnectFailed,
    /// Writing or reading failed before any reply (after the one retry).
    Io { writing: bool },
}

/// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw]
/// [AUTH2 user pw] [KEYS key ...].
pub(crate) fn migrate(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (mut copy, mut replace) = (false, false);
    let mut auth: Option<(Option<&[u8]>, &[u8])> = None;
    let (mut first_key, mut num_keys) = (3usize, 1usize);
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args[j].to_ascii_lowercase();
        match &opt[..] {
            b"copy" => copy = true,
            b"replace" => replace = true,
            b"auth" => {
                if more < 1 {
                    return err::syntax();
                }
                j += 1;
                auth = Some((None, &args[j][..]));
            }
            b"auth2" => {
                if more < 2 {
                    return err::syntax();
                }
                auth = Some((Some(&args[j + 1][..]), &args[j + 2][..]));
                j += 2;
            }
            b"keys" => {
                if !args[3].is_empty() {
                    return Frame::error(
                        "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                    );
                }
                first_key = j + 1;
                num_keys = args.len() - j - 1;
                break;
            }
            _ => return err::syntax(),
        }
        j += 1;
    }
    let (Some(timeout), Some(dbid)) = (parse_i64(&args[5]), parse_i64(&args[4])) else {
        return err::not_integer();
    };
    let timeout_ms = if timeout <= 0 { 1000 } else { timeout as u64 };

    // The keys that are here (redis `lookupKeyRead`); none: NOKEY.
    let keys: Vec<Bytes> = args[first_key..first_key + num_keys]
        .iter()
        .filter(|k| ctx.db.get(k, ctx.expire_now).is_some())
        .cloned()
        .collect();
    if keys.is_empty() {
        return Frame::Simple("NOKEY".into());
    }

    // RESTORE(-ASKING) key ttl payload [REPLACE], skipping keys that
    // expired since the lookup.
    let opts = ctx.host.rdb_options();
    let name: &'static [u8] = if ctx.host.cluster_enabled() {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    let mut restores = Vec::new();
    let mut sent: Vec<Bytes> = Vec::new();
    for key in keys {
        let Some(entry) = ctx.db.get(&key, ctx.expire_now) else {
            continue;
        };
        let ttl = match entry.expire_at() {
            None => 0,
            Some(at) if at < ctx.now => continue,
            Some(at) => (at - ctx.now).max(1),
        };
        let payload = rdb::dump(&entry.value, opts);
        let mut cmd = vec![
            Bytes::from_static(name),
            key.clone(),
            Bytes::from(ttl.to_string()),
            Bytes::from(payload),
        ];
        if replace {
            cmd.push(Bytes::from_static(b"REPLACE"));
        }
        encode_command(&cmd, &mut restores);
        sent.push(key);
    }

    // The planted defect: the keys go before the target acknowledged them
    // (a target that refuses or never answers then loses them).
    let early_delete = !copy && ctx.host.bug("migrate-delete-before-ack");
    if early_delete {
        delete_and_propagate(ctx, &sent);
    }

    let outcome = ctx.host.migrate(MigrateExchange {
        host: &args[1],
        port: &args[2],
        timeout_ms,
        dbid,
        auth,
        restores: &restores,
        count: sent.len(),
    });
    let (auth_reply, select_reply, replies, socket_error) = match outcome {
        MigrateOutcome::ConnectFailed => {
            return Frame::error("IOERR error or timeout connecting to the client")
        }
        MigrateOutcome::Io { writing } => {
            return Frame::Error(format!(
                "IOERR error or timeout {} to target instance",
                if writing { "writing" } else { "reading" }
            ))
        }
        MigrateOutcome::Replies {
            auth,
            select,
            restores,
            socket_error,
        } => (auth, select, restores, socket_error),
    };
    let failed = |l: &Option<String>| l.as_deref().is_some_and(|l| l.starts_with('-'));
    let mut error_from_target: Option<String> = None;
    let mut acked = Vec::new();
    for (key, reply) in sent.iter().zip(&replies) {
        if failed(&auth_reply) || failed(&select_reply) || reply.starts_with('-') {
            if error_from_target.is_none() {
                let line = [&auth_reply, &select_reply]
                    .into_iter()
                    .flatten()
                    .find(|l| l.starts_with('-'))
                    .unwrap_or(reply);
                error_from_target = Some(line[1..].to_string());
            }
        } else if !copy {
            acked.push(key.clone());
        }
    }
    if !early_delete {
        delete_and_propagate(ctx, &acked);
    }
    if let Some(e) = error_from_target {
        return Frame::Error(format!("ERR Target instance replied with error: {e}"));
    }
    if socket_error {
        return Frame::error("IOERR error or timeout reading to target instance");
    }
    Frame::ok()
}

/// Deletes the moved keys and replicates them as one `DEL` (redis rewrites
/// MIGRATE as `DEL` of the acknowledged keys).
fn delete_and_propagate(ctx: &mut Ctx<'_>, keys: &[Bytes]) {
    if keys.is_empty() {
        return;
    }
    let mut del = vec![Bytes::from_static(b"DEL")];
    for k in keys {
        if ctx.db.remove(k, ctx.expire_now) {
            del.push(k.clone());
        }
    }
    if del.len() > 1 {
        ctx.propagate(del);
    }
}

/// The key arguments of a MIGRATE request (redis `migrateGetKeys`): the
/// `key` argument, or those after `KEYS` (skipping AUTH/AUTH2 values).
pub fn key_positions(args: &[Bytes]) -> Vec<usize> {
    let (mut first, mut num) = (3usize, 1usize);
    if args.len() > 6 {
        let mut i = 6;
        while i < args.len() {
            let a = args[i].to_ascii_lowercase();
            match &a[..] {
                b"keys" => {
                    if !args[3].is_empty() {
                        return Vec::new();
                    }
                    first = i + 1;
                    num = args.len() - first;
                    break;
                }
                b"auth" => i += 1,
                b"auth2" => i += 2,
                _ => {}
            }
            i += 1;
        }
    }
    (first..first + num).filter(|&p| p < args.len()).collect()
}
