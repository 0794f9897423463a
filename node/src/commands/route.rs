//! Cluster redirection: redis 7.0 `getNodeByQuery` + `clusterRedirectClient`
//! (reference section 4.5), as a pure function of the request's keys, the
//! host's slot routes and cluster state, the client's ASKING/READONLY flags,
//! and which keys exist locally.

use bytes::Bytes;

use super::table::CommandSpec;
use super::Host;
use crate::resp::Frame;
use crate::slots::key_slot;
use crate::store::Db;

/// Why a request is not served here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    Moved {
        slot: u16,
        ip: String,
        port: u16,
    },
    Ask {
        slot: u16,
        ip: String,
        port: u16,
    },
    CrossSlot,
    TryAgain,
    /// The cluster is down.
    Down,
    /// The cluster is down and only accepts reads (`cluster-allow-reads-when-down`).
    DownReadOnly,
    /// The key's slot has no owner.
    Unbound,
}

impl Redirect {
    pub fn to_frame(&self) -> Frame {
        Frame::Error(match self {
            Redirect::Moved { slot, ip, port } => format!("MOVED {slot} {ip}:{port}"),
            Redirect::Ask { slot, ip, port } => format!("ASK {slot} {ip}:{port}"),
            Redirect::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            Redirect::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
            Redirect::Down => "CLUSTERDOWN The cluster is down".into(),
            Redirect::DownReadOnly => {
                "CLUSTERDOWN The cluster is down and only accepts read commands".into()
            }
            Redirect::Unbound => "CLUSTERDOWN Hash slot not served".into(),
        })
    }
}

/// One request to route: a single command, or the queue of an EXEC.
pub struct Query<'a> {
    pub commands: &'a [(&'static CommandSpec, &'a [Bytes])],
    /// Flags of the command being run (EXEC's own for EXEC: redis checks
    /// `cmd->flags` for the cluster-down rule).
    pub command_flags: u32,
    /// Writes, counting the queued commands for EXEC (for the READONLY rule).
    pub is_write: bool,
    /// The client sent ASKING (or the command carries the ASKING flag).
    pub asking: bool,
    /// The client sent READONLY.
    pub readonly: bool,
    /// SSUBSCRIBE / SUNSUBSCRIBE / SPUBLISH: the "keys" are shard channels.
    pub pubsubshard: bool,
    /// The command is MIGRATE (not inside EXEC): it runs here whenever the
    /// slot is migrating or importing, so keys can move freely.
    pub migrate: bool,
}

/// `Ok(())` if this node serves the request, else the redirection.
/// `now` is the expiry clock used to decide which keys exist.
pub fn check(q: &Query<'_>, host: &dyn Host, db: &Db, now: u64) -> Result<(), Redirect> {
    let mut first: Option<(&[u8], u16)> = None;
    let mut route = None;
    // The first key's slot is ours, plainly (see `Host::slot_is_local`).
    let mut local = false;
    let mut multiple_keys = false;
    let (mut migrating, mut importing) = (false, false);
    let (mut missing, mut existing) = (0usize, 0usize);

    for (spec, args) in q.commands {
        let mut error = None;
        spec.for_each_key_in(args, args.len(), |pos, _| {
            if error.is_some() {
                return;
            }
            let Some(key) = args.get(pos) else { return };
            let key: &[u8] = key;
            match first {
                None => {
                    let slot = key_slot(key);
                    if host.slot_is_local(slot) {
                        first = Some((key, slot));
                        local = true;
                        return;
                    }
                    let r = host.route(slot);
                    if r.owner.is_none() {
                        error = Some(Redirect::Unbound);
                        return;
                    }
                    // redis checks migrating only for our own slots, importing
                    // whoever the owner is.
                    if r.owner_is_me && r.migrating_to.is_some() {
                        migrating = true;
                    } else if r.importing {
                        importing = true;
                    }
                    first = Some((key, slot));
                    route = Some(r);
                }
                Some((first_key, slot)) => {
                    if first_key != key {
                        if key_slot(key) != slot {
                            error = Some(Redirect::CrossSlot);
                            return;
                        }
                        multiple_keys = true;
                    }
                }
            }
            // Shard channels are no keys: during a migration the source keeps
            // serving them until SETSLOT NODE (redis `getNodeByQuery` skips the
            // lookup for pubsubshard commands).
            if (migrating || importing) && !q.pubsubshard {
                if db.contains(key, now) {
                    existing += 1;
                } else {
                    missing += 1;
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
    }

    // No keys at all: served here.
    let Some((_, slot)) = first else {
        return Ok(());
    };

    if !host.cluster_state_ok() {
        if q.pubsubshard {
            if !host.allow_pubsubshard_when_down() {
                return Err(Redirect::Down);
            }
        } else if !host.allow_reads_when_down() {
            return Err(Redirect::Down);
        }
        if q.command_flags & super::table::flag::WRITE != 0 {
            return Err(Redirect::DownReadOnly);
        }
    }

    if local {
        return Ok(());
    }
    let Some(route) = route else {
        return Ok(());
    };
    if q.migrate && (migrating || importing) {
        return Ok(());
    }

    if migrating && missing > 0 {
        if existing > 0 {
            return Err(Redirect::TryAgain);
        }
        if let Some((ip, port)) = route.migrating_to.clone() {
            return Err(Redirect::Ask { slot, ip, port });
        }
    }

    if importing && q.asking {
        if multiple_keys && missing > 0 {
            return Err(Redirect::TryAgain);
        }
        return Ok(());
    }

    if q.readonly && !q.is_write && route.owner_is_my_master {
        return Ok(());
    }

    if route.owner_is_me {
        return Ok(());
    }
    match route.owner {
        Some((_, ip, port)) => Err(Redirect::Moved { slot, ip, port }),
        None => Err(Redirect::Unbound),
    }
}
