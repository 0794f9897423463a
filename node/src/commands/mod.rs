//! The command layer: what one client request does, as redis 7.0's
//! `processCommand` + `call` do it.
//!
//! [`execute`] takes a parsed request and returns the reply. In order, as
//! redis: command lookup (unknown command / subcommand), arity, MULTI
//! restrictions, cluster redirection ([`route`]), replica read-only check,
//! then either queuing (inside MULTI) or running the command. Errors found
//! before running a command inside MULTI flag the transaction, so that EXEC
//! fails with EXECABORT.
//!
//! Everything the layer needs from the rest of the node comes through the
//! [`Host`] trait: cluster routing facts, the time, and the server-level
//! commands it does not implement itself (CLUSTER, INFO, CONFIG...).
//!
//! Writes that changed the dataset are returned in [`Outcome::applied_writes`]
//! in a form that a replica can re-apply with [`apply_replicated`]: relative
//! expiries are rewritten to absolute ones (`SET .. PXAT`, `PEXPIREAT`) and
//! keys deleted by lazy expiry appear as `DEL key` before the command that
//! noticed them.

mod client;
mod connection;
mod debug;
mod dump;
mod hashes;
mod keys;
mod lists;
pub mod migrate;
mod multi;
mod pubsub;
pub mod route;
mod scan;
pub mod scripting;
mod server;
mod sets;
pub mod stats;
mod streams;
mod strings;
pub mod table;
mod zsets;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_more;

use bytes::Bytes;

pub use client::ClientState;
pub use table::{lookup, lookup_fullname, CommandSpec, Id, Lookup};

use crate::cluster::SlotRoute;
use crate::pubsub::PubSub;
use crate::resp::Frame;
use crate::store::{Db, ExpireMode};

pub use client::{
    admin_alone as client_admin_alone, kill_reply, ClientAdmin, ClientKind, ConnInfo, KillFilter,
};
pub use pubsub::drop_shard_channel;
pub use stats::CallStats;

/// How far a pause holds client commands (redis `client_pause_type`): CLIENT
/// PAUSE WRITE (and a manual failover) holds writes and commands that may
/// replicate; CLIENT PAUSE ALL holds everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    Off,
    Write,
    All,
}

/// What the command layer needs from the node around it.
pub trait Host {
    fn cluster_enabled(&self) -> bool;
    fn route(&self, slot: u16) -> SlotRoute;
    /// This node owns `slot` and it is neither migrating nor importing: the
    /// common case, which routing answers without building a [`SlotRoute`].
    fn slot_is_local(&self, slot: u16) -> bool {
        let r = self.route(slot);
        r.owner_is_me && r.migrating_to.is_none() && !r.importing
    }
    fn cluster_state_ok(&self) -> bool;
    fn allow_reads_when_down(&self) -> bool;
    /// Wall-clock time, Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// Wall-clock time, Unix microseconds (TIME). Defaults to `now_ms` precision.
    fn now_us(&self) -> u64 {
        self.now_ms().saturating_mul(1000)
    }
    /// This node replicates a master: HELLO reports `role replica`, and
    /// keyless writes are refused with `-READONLY` (redis `replica-read-only`).
    fn is_replica(&self) -> bool {
        false
    }
    /// `rdbcompression` / `rdbchecksum`, for DUMP payloads.
    fn rdb_options(&self) -> crate::rdb::Options {
        crate::rdb::Options::default()
    }
    /// A planted defect is on (`--bug NAME`).
    fn bug(&self, _name: &str) -> bool {
        false
    }
    /// MIGRATE's exchange with its target (see [`migrate`]).
    fn migrate(&mut self, _x: migrate::MigrateExchange<'_>) -> migrate::MigrateOutcome {
        migrate::MigrateOutcome::ConnectFailed
    }
    /// SHUTDOWN: stop the server once this pass is over. `save`: SAVE
    /// (`Some(true)`), NOSAVE (`Some(false)`), or as configured.
    fn request_shutdown(&mut self, save: Option<bool>) -> Result<(), String> {
        let _ = save;
        Err("ERR Errors trying to SHUTDOWN. Check logs.".into())
    }
    /// DEBUG subcommands that act on the server rather than the dataset
    /// (DROP-CLUSTER-PACKET-FILTER, SET-ACTIVE-EXPIRE, CLUSTERLINK...), and
    /// the `enable-debug-command` gate. `None`: the command layer serves it.
    fn debug(&mut self, args: &[Bytes], client: &ClientState) -> Option<Frame> {
        let _ = (args, client);
        None
    }
    /// The Lua engine (scripts and functions), lent to a script command for
    /// its run and given back with [`Host::put_scripts`]. `None`: the host
    /// keeps none, and each script command gets a fresh one.
    fn take_scripts(&mut self) -> Option<Box<scripting::Engine>> {
        None
    }
    #[allow(clippy::boxed_local)]
    fn put_scripts(&mut self, engine: Box<scripting::Engine>) {
        let _ = engine;
    }
    /// `requirepass`, when set: clients must AUTH before other commands.
    fn requirepass(&self) -> Option<String> {
        None
    }
    /// Server-level commands this layer does not implement itself: CLUSTER, INFO,
    /// CONFIG (and later REPLICAOF/ROLE/WAIT...). `name` is lowercase; `args`
    /// excludes the command name. `None` means "unknown command".
    fn server_command(
        &mut self,
        name: &str,
        args: &[Bytes],
        db: &mut Db,
        client: &ClientState,
    ) -> Option<Frame>;
    /// Counters for INFO commandstats/errorstats, if this host keeps them.
    fn call_stats(&mut self) -> Option<&mut CallStats> {
        None
    }
    /// The pause in force (CLIENT PAUSE, or a manual failover's write pause).
    fn pause_kind(&self) -> PauseKind {
        PauseKind::Off
    }
    /// `cluster-allow-pubsubshard-when-down`.
    fn allow_pubsubshard_when_down(&self) -> bool {
        true
    }
    /// The node's Pub/Sub subscriptions, if this host has them.
    fn pubsub(&mut self) -> Option<&mut PubSub> {
        None
    }
    /// PUBLISH / SPUBLISH: delivers to local subscribers (`me` is the
    /// publishing client, whose own subscriptions count too) and propagates
    /// over the cluster bus. Returns the number of local receivers.
    fn publish(&mut self, channel: &Bytes, message: &Bytes, shard: bool, me: &ClientState) -> i64 {
        let _ = (channel, message, shard, me);
        0
    }
    /// CLIENT LIST / KILL / PAUSE / UNPAUSE / UNBLOCK, which see or change
    /// other connections. The default knows only the calling client.
    fn client_admin(&mut self, req: ClientAdmin, me: &mut ClientState, now_ms: u64) -> Frame {
        client::admin_alone(req, me, now_ms)
    }
}

/// The result of one request.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub reply: Frame,
    /// The connection must be closed after the reply (QUIT).
    pub close: bool,
    /// Write commands that were applied, in order (for replication).
    pub applied_writes: Vec<Vec<Bytes>>,
    /// The command has to wait for data (XREAD BLOCK): the reply is a
    /// placeholder, and the shell runs `retry` again when a key is written,
    /// until it returns data or the timeout passes.
    pub block: Option<BlockRequest>,
    /// The reply is not sent (CLIENT REPLY OFF / SKIP).
    pub silent: bool,
    /// A pause holds the request: it did not run, and is handed back to be
    /// run again once the pause ends (redis `blockPostponeClient`).
    pub postponed: Option<Vec<Bytes>>,
    /// The request was a plain keyspace or connection command (reads,
    /// writes, fast commands; not admin, not EXEC): whatever it left for the
    /// shell to do (cluster actions, the AOF flush) may wait for the end of
    /// the event-loop turn. Admin commands (REPLICAOF, CLUSTER ..., CLIENT
    /// PAUSE) take effect before the next client runs.
    pub keyspace_only: bool,
}

/// A blocking command's wait (redis `blockForKeys`).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockRequest {
    /// Keys whose writes wake the client.
    pub keys: Vec<Bytes>,
    /// Milliseconds; 0 waits forever.
    pub timeout_ms: u64,
    /// The request to run again, in a form that means the same later
    /// (XREAD's `$` replaced by the IDs it stood for).
    pub retry: Vec<Bytes>,
}

/// Error replies shared by several commands, with redis's exact texts.
pub mod err {
    use crate::resp::Frame;

    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const SYNTAX: &str = "ERR syntax error";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
    pub const READONLY_REPLICA: &str = "READONLY You can't write against a read only replica.";

    pub fn wrongtype() -> Frame {
        Frame::error(WRONGTYPE)
    }

    pub fn not_integer() -> Frame {
        Frame::error(NOT_INTEGER)
    }

    pub fn syntax() -> Frame {
        Frame::error(SYNTAX)
    }
}

/// What a command handler sees.
pub(crate) struct Ctx<'a> {
    pub host: &'a mut dyn Host,
    pub db: &'a mut Db,
    pub client: &'a mut ClientState,
    /// Wall-clock time of this request (TTLs, TIME).
    pub now: u64,
    /// Time used for expiry checks. Commands from our master see no key as
    /// expired (redis `expireIfNeeded` for the master client), hence 0.
    pub expire_now: u64,
    pub spec: &'static CommandSpec,
    /// Applied writes, in order.
    pub writes: Vec<Vec<Bytes>>,
    /// Set by handlers whose request is to be replicated unchanged.
    pub propagate_as_is: bool,
    pub close: bool,
    /// Set by a command that has to wait (see [`Outcome::block`]).
    pub block: Option<BlockRequest>,
    /// Running inside EXEC or a script: nothing may block there.
    pub nested: bool,
}

impl Ctx<'_> {
    /// Whether a blocking command may wait here (not inside EXEC or a
    /// script, not on the replication link).
    pub fn can_block(&self) -> bool {
        !self.nested && !self.client.is_master_link
    }

    /// Records a write to replicate, after any lazy-expiry deletions seen so far.
    pub fn propagate(&mut self, args: Vec<Bytes>) {
        self.drain_expired();
        self.writes.push(args);
    }

    fn drain_expired(&mut self) {
        if self.db.has_expired() {
            for key in self.db.take_expired() {
                self.writes.push(vec![Bytes::from_static(b"DEL"), key]);
            }
        }
    }
}

/// Runs one client request. `args` is non-empty (see `resp::parse_request`).
pub fn execute(
    host: &mut dyn Host,
    db: &mut Db,
    client: &mut ClientState,
    args: Vec<Bytes>,
) -> Outcome {
    let now = host.now_ms();
    let expire_now = if client.is_master_link { 0 } else { now };
    let p = process(host, db, client, args, now, expire_now);
    if p.postponed.is_some() {
        // Nothing ran: the request will be processed again from the start.
        return Outcome {
            reply: Frame::Null,
            close: false,
            applied_writes: Vec::new(),
            block: None,
            silent: true,
            postponed: p.postponed,
            keyspace_only: false,
        };
    }
    // redis resetClient: ASKING lasts for one command, or for a whole MULTI.
    if client.multi.is_none() && p.spec.map(|s| s.id) != Some(Id::Asking) {
        client.asking = false;
    }
    if let Some(spec) = p.spec {
        client.last_command = spec.name;
    }
    // CLIENT REPLY: OFF and SKIP act on the replies added after them.
    let silent = client.reply_off || client.reply_skip;
    client.reply_skip = std::mem::take(&mut client.reply_skip_next);
    let close = p.close || std::mem::take(&mut client.close_after_reply);
    let keyspace_only = p.spec.is_some_and(|s| {
        s.flags & table::flag::ADMIN == 0
            && s.flags & (table::flag::WRITE | table::flag::READONLY | table::flag::FAST) != 0
            && s.id != Id::Exec
    });
    Outcome {
        reply: p.reply,
        close,
        applied_writes: p.writes,
        block: p.block,
        silent,
        postponed: None,
        keyspace_only,
    }
}

/// Re-applies a write from `Outcome::applied_writes` on a replica: no
/// redirection, no MULTI, no expiry of existing keys (the master decides).
/// Returns the reply (an error reply means the streams diverged).
pub fn apply_replicated(host: &mut dyn Host, db: &mut Db, args: Vec<Bytes>) -> Frame {
    let mut client = ClientState::master_link();
    execute(host, db, &mut client, args).reply
}

/// Ends an open MULTI without running it (a rejected EXEC).
pub fn discard_transaction(db: &mut Db, client: &mut ClientState) {
    multi::discard(db, client);
}

/// Cleans up after a connection closes: drops its WATCHes and, given the
/// node's Pub/Sub, its subscriptions.
pub fn disconnect(db: &mut Db, client: &mut ClientState, pubsub: Option<&mut PubSub>) {
    multi::unwatch_all(db, client);
    client.multi = None;
    if let Some(ps) = pubsub {
        pubsub::forget_client(ps, client);
    }
}

struct Processed {
    reply: Frame,
    spec: Option<&'static CommandSpec>,
    writes: Vec<Vec<Bytes>>,
    close: bool,
    block: Option<BlockRequest>,
    postponed: Option<Vec<Bytes>>,
}

impl Processed {
    fn reply(reply: Frame, spec: Option<&'static CommandSpec>) -> Processed {
        Processed {
            reply,
            spec,
            writes: Vec::new(),
            close: false,
            block: None,
            postponed: None,
        }
    }
}

/// Replies with an error found before running a known command: counted as a
/// rejected call and an error reply (redis `rejectCommand`).
/// The cluster check of EXEC: its queued commands together (redis checks
/// them as one), served locally without MULTI (where it fails).
#[cold]
#[inline(never)]
fn route_exec(
    host: &dyn Host,
    db: &Db,
    client: &ClientState,
    spec: &'static CommandSpec,
    run_flags: u32,
    expire_now: u64,
) -> Result<(), route::Redirect> {
    let Some(m) = client.multi.as_ref() else {
        return Ok(());
    };
    let queue: Vec<(&'static CommandSpec, &[Bytes])> =
        m.queue.iter().map(|q| (q.spec, &q.args[..])).collect();
    let query = route::Query {
        commands: &queue,
        command_flags: run_flags,
        is_write: run_flags & table::flag::WRITE != 0 || m.flags & table::flag::WRITE != 0,
        asking: client.asking || spec.flags & table::flag::ASKING != 0,
        readonly: client.readonly,
        pubsubshard: false,
        migrate: false,
    };
    route::check(&query, host, db, expire_now)
}

#[cold]
#[inline(never)]
fn queue_in_multi(
    client: &mut ClientState,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
) -> Processed {
    multi::queue(client, spec, args);
    Processed::reply(Frame::Simple("QUEUED".into()), Some(spec))
}

#[cold]
#[inline(never)]
fn unknown_command(
    host: &mut dyn Host,
    client: &mut ClientState,
    args: &[Bytes],
    lookup: table::Lookup,
) -> Processed {
    let text = match lookup {
        table::Lookup::UnknownSubcommand => format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            truncated(&args[1], 128),
            String::from_utf8_lossy(&args[0]).to_uppercase()
        ),
        _ => unknown_command_text(args),
    };
    if let Some(stats) = host.call_stats() {
        stats.record_error(&text);
    }
    Processed::reply(reject(client, text), None)
}

#[cold]
#[inline(never)]
fn wrong_arity(
    host: &mut dyn Host,
    db: &mut Db,
    client: &mut ClientState,
    spec: &'static CommandSpec,
) -> Processed {
    let text = format!("ERR wrong number of arguments for '{}' command", spec.name);
    refuse_command(host, db, client, spec, text)
}

/// A refusal before the command is looked at further (NOAUTH, not in MULTI).
#[cold]
#[inline(never)]
fn refuse(
    host: &mut dyn Host,
    client: &mut ClientState,
    spec: &'static CommandSpec,
    text: &str,
) -> Processed {
    let reply = reject(client, text.to_string());
    rejected(host, spec, reply)
}

/// A refusal of the command (see `reject_command`).
#[cold]
#[inline(never)]
fn refuse_command(
    host: &mut dyn Host,
    db: &mut Db,
    client: &mut ClientState,
    spec: &'static CommandSpec,
    text: String,
) -> Processed {
    let reply = reject_command(db, client, spec, text);
    rejected(host, spec, reply)
}

/// A cluster redirect (MOVED, ASK, CROSSSLOT, TRYAGAIN, CLUSTERDOWN).
#[cold]
#[inline(never)]
fn redirected(
    host: &mut dyn Host,
    db: &mut Db,
    client: &mut ClientState,
    spec: &'static CommandSpec,
    redirect: route::Redirect,
) -> Processed {
    if spec.id == Id::Exec {
        multi::discard(db, client);
    } else {
        flag_transaction(client);
    }
    rejected(host, spec, redirect.to_frame())
}

fn rejected(host: &mut dyn Host, spec: &'static CommandSpec, reply: Frame) -> Processed {
    if let Some(stats) = host.call_stats() {
        stats.record_rejected(spec);
        stats.record_errors_in(&reply);
    }
    Processed::reply(reply, Some(spec))
}

fn process(
    host: &mut dyn Host,
    db: &mut Db,
    client: &mut ClientState,
    args: Vec<Bytes>,
    now: u64,
    expire_now: u64,
) -> Processed {
    // The refusals below build their replies in cold functions: this runs
    // for every request, and its hot code stays dense (instruction cache).
    let spec = match table::lookup(&args) {
        table::Lookup::Found(spec) => spec,
        lookup => return unknown_command(host, client, &args, lookup),
    };
    if !spec.arity_ok(args.len()) {
        return wrong_arity(host, db, client, spec);
    }
    // redis `authRequired`: only NO_AUTH commands (AUTH, HELLO, QUIT, RESET)
    // before a client authenticates.
    if !client.authenticated
        && !client.is_master_link
        && spec.flags & table::flag::NO_AUTH == 0
        && host.requirepass().is_some()
    {
        return refuse(host, client, spec, "NOAUTH Authentication required.");
    }
    let in_multi = client.multi.is_some();
    if in_multi && spec.flags & table::flag::NO_MULTI != 0 {
        return refuse(
            host,
            client,
            spec,
            "ERR Command not allowed inside a transaction",
        );
    }
    let is_pubsubshard = matches!(spec.id, Id::Ssubscribe | Id::Sunsubscribe | Id::Spublish);

    let obey = client.is_master_link;
    // Scripts declare whether they write (redis `evalGetCommandFlags`).
    let run_flags = match spec.id {
        Id::Eval | Id::EvalRo | Id::Evalsha | Id::EvalshaRo | Id::Fcall | Id::FcallRo => {
            scripting::command_flags(host, spec.id, &args, spec.flags)
        }
        _ => spec.flags,
    };
    if host.cluster_enabled() && !obey && (spec.has_keys() || spec.id == Id::Exec) {
        let verdict = if spec.id == Id::Exec {
            route_exec(&*host, db, client, spec, run_flags, expire_now)
        } else {
            let query = route::Query {
                commands: &[(spec, &args[..])],
                command_flags: run_flags,
                is_write: run_flags & table::flag::WRITE != 0,
                asking: client.asking || spec.flags & table::flag::ASKING != 0,
                // Shard channels are served by the slot's replicas too.
                readonly: client.readonly || is_pubsubshard,
                pubsubshard: is_pubsubshard,
                migrate: spec.id == Id::Migrate,
            };
            route::check(&query, &*host, db, expire_now)
        };
        if let Err(redirect) = verdict {
            return redirected(host, db, client, spec, redirect);
        }
    }

    // redis `replica-read-only`: keyed writes were redirected above; this
    // catches keyless ones (FLUSHALL) and everything when cluster is off.
    let exec_writes = client
        .multi
        .as_ref()
        .is_some_and(|m| m.flags & table::flag::WRITE != 0);
    if host.is_replica()
        && !obey
        && (run_flags & table::flag::WRITE != 0 || (spec.id == Id::Exec && exec_writes))
    {
        return refuse_command(host, db, client, spec, err::READONLY_REPLICA.into());
    }

    // In RESP2 a subscribed connection only takes (un)subscriptions and a few
    // connection commands; RESP3 has no such limit.
    if client.in_pubsub_context()
        && !client.resp3
        && !matches!(
            spec.id,
            Id::Ping
                | Id::Subscribe
                | Id::Ssubscribe
                | Id::Unsubscribe
                | Id::Sunsubscribe
                | Id::Psubscribe
                | Id::Punsubscribe
                | Id::Quit
                | Id::Reset
        )
    {
        let text = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        );
        return refuse_command(host, db, client, spec, text);
    }

    // A pause holds the request before it is queued or run; our master's
    // stream is never held.
    if !obey {
        let hold = match host.pause_kind() {
            PauseKind::Off => false,
            PauseKind::All => true,
            PauseKind::Write => {
                spec.may_replicate()
                    || (spec.id == Id::Exec
                        && client.multi.as_ref().is_some_and(|m| {
                            m.flags & (table::flag::WRITE | table::flag::MAY_REPLICATE) != 0
                        }))
            }
        };
        if hold {
            return Processed {
                postponed: Some(args),
                ..Processed::reply(Frame::Null, Some(spec))
            };
        }
    }

    if in_multi
        && !matches!(
            spec.id,
            Id::Exec | Id::Discard | Id::Multi | Id::Watch | Id::Quit | Id::Reset
        )
    {
        return queue_in_multi(client, spec, args);
    }

    let mut ctx = Ctx {
        host,
        db,
        client,
        now,
        expire_now,
        spec,
        writes: Vec::new(),
        propagate_as_is: false,
        close: false,
        block: None,
        nested: false,
    };
    let reply = call(&mut ctx, args);
    ctx.drain_expired();
    Processed {
        reply,
        spec: Some(spec),
        writes: ctx.writes,
        close: ctx.close,
        block: ctx.block,
        postponed: None,
    }
}

/// Runs a command that passed all checks (also used for each command of
/// EXEC), and counts it as redis's `call()` does: calls, time, and a failed
/// call plus an error reply when it answers with an error. (An EXEC's array
/// is not an error of its own; its commands counted theirs here.)
pub(crate) fn call(ctx: &mut Ctx<'_>, args: Vec<Bytes>) -> Frame {
    ctx.propagate_as_is = false;
    let started = clock_us();
    let reply = dispatch(ctx, &args);
    let usec = clock_us().saturating_sub(started);
    if ctx.propagate_as_is {
        ctx.propagate_as_is = false;
        ctx.propagate(args);
    }
    let spec = ctx.spec;
    if let Some(stats) = ctx.host.call_stats() {
        let failed = matches!(reply, Frame::Error(_));
        stats.record_call(spec, usec, failed);
        if let Frame::Error(e) = &reply {
            stats.record_error(e);
        }
    }
    reply
}

/// CLOCK_MONOTONIC in µs, for the call timer (`Instant::elapsed` and its
/// `Duration` arithmetic cost about 100 instructions a call more).
fn clock_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

fn dispatch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    use Id::*;
    match ctx.spec.id {
        Ping => connection::ping(ctx, args),
        Echo => connection::echo(args),
        Hello => connection::hello(ctx, args),
        Select => connection::select(ctx, args),
        Quit => connection::quit(ctx),
        Auth => connection::auth(ctx, args),
        Reset => connection::reset(ctx),
        Asking => connection::asking(ctx),
        Readonly => connection::readonly(ctx, true),
        Readwrite => connection::readonly(ctx, false),
        Client => Frame::wrong_arity("client"),
        ClientGetname | ClientSetname | ClientId | ClientInfo | ClientList | ClientHelp
        | ClientSetinfo | ClientGetredir | ClientKill | ClientNoEvict | ClientPause
        | ClientReply | ClientTrackinginfo | ClientUnblock | ClientUnpause => {
            client::command(ctx, args)
        }
        Subscribe | Psubscribe | Ssubscribe => pubsub::subscribe(ctx, args),
        Unsubscribe | Punsubscribe | Sunsubscribe => pubsub::unsubscribe(ctx, args),
        Publish | Spublish => pubsub::publish(ctx, args),
        Pubsub => Frame::wrong_arity("pubsub"),
        PubsubChannels | PubsubHelp | PubsubNumpat | PubsubNumsub | PubsubShardchannels
        | PubsubShardnumsub => pubsub::pubsub_command(ctx, args),
        Command
        | CommandCount
        | CommandDocs
        | CommandGetkeys
        | CommandGetkeysandflags
        | CommandHelp
        | CommandInfo
        | CommandList => server::command(ctx, args),
        Time => server::time(ctx),
        Dbsize => Frame::Integer(ctx.db.len() as i64),
        Flushall | Flushdb => server::flush(ctx, args),
        Type => keys::type_(ctx, args),
        Exists => keys::exists(ctx, args),
        Del | Unlink => keys::del(ctx, args),
        Expire | Pexpire | Expireat | Pexpireat => keys::expire(ctx, args),
        Ttl | Pttl => keys::ttl(ctx, args),
        Persist => keys::persist(ctx, args),
        Dump => dump::dump(ctx, args),
        Migrate => migrate::migrate(ctx, args),
        Restore | RestoreAsking => dump::restore(ctx, args),
        Get => strings::get(ctx, args),
        Set => strings::set(ctx, args),
        Setnx => strings::setnx(ctx, args),
        Setex | Psetex => strings::setex(ctx, args),
        Getset => strings::getset(ctx, args),
        Getdel => strings::getdel(ctx, args),
        Incr | Decr | Incrby | Decrby => strings::incr(ctx, args),
        Append => strings::append(ctx, args),
        Strlen => strings::strlen(ctx, args),
        Mget => strings::mget(ctx, args),
        Mset | Msetnx => strings::mset(ctx, args),
        Rpush | Lpush => lists::push(ctx, args),
        Lrange => lists::lrange(ctx, args),
        Llen => lists::llen(ctx, args),
        Lpop | Rpop => lists::pop(ctx, args),
        Sadd => sets::sadd(ctx, args),
        Srem => sets::srem(ctx, args),
        Smembers => sets::smembers(ctx, args),
        Scard => sets::scard(ctx, args),
        Sismember => sets::sismember(ctx, args),
        Hset | Hmset => hashes::hset(ctx, args),
        Hsetnx => hashes::hsetnx(ctx, args),
        Hget => hashes::hget(ctx, args),
        Hmget => hashes::hmget(ctx, args),
        Hdel => hashes::hdel(ctx, args),
        Hlen => hashes::hlen(ctx, args),
        Hexists => hashes::hexists(ctx, args),
        Hstrlen => hashes::hstrlen(ctx, args),
        Hgetall | Hkeys | Hvals => hashes::hgetall(ctx, args),
        Hincrby => hashes::hincrby(ctx, args),
        Hincrbyfloat => hashes::hincrbyfloat(ctx, args),
        Hrandfield => hashes::hrandfield(ctx, args),
        Hscan => hashes::hscan(ctx, args),
        Zadd | Zincrby => zsets::zadd(ctx, args),
        Zrem => zsets::zrem(ctx, args),
        Zcard => zsets::zcard(ctx, args),
        Zscore => zsets::zscore(ctx, args),
        Zmscore => zsets::zmscore(ctx, args),
        Zrank | Zrevrank => zsets::zrank(ctx, args),
        Zcount => zsets::zcount(ctx, args),
        Zlexcount => zsets::zlexcount(ctx, args),
        Zrange | Zrangebyscore | Zrevrangebyscore | Zrevrange | Zrangebylex | Zrevrangebylex => {
            zsets::zrange(ctx, args)
        }
        Zpopmin | Zpopmax => zsets::zpop(ctx, args),
        Zremrangebyrank | Zremrangebyscore | Zremrangebylex => zsets::zremrange(ctx, args),
        Zrandmember => zsets::zrandmember(ctx, args),
        Zscan => zsets::zscan(ctx, args),
        Xadd => streams::xadd(ctx, args),
        Xlen => streams::xlen(ctx, args),
        Xrange | Xrevrange => streams::xrange(ctx, args),
        Xread => streams::xread(ctx, args),
        Xdel => streams::xdel(ctx, args),
        Xtrim => streams::xtrim(ctx, args),
        Xsetid => streams::xsetid(ctx, args),
        Scan => scan::scan(ctx, args),
        Keys => scan::keys(ctx, args),
        Randomkey => scan::randomkey(ctx, args),
        Rename | Renamenx => keys::rename(ctx, args),
        Touch => keys::touch(ctx, args),
        Object => Frame::wrong_arity("object"),
        ObjectEncoding | ObjectFreq | ObjectHelp | ObjectIdletime | ObjectRefcount => {
            keys::object(ctx, args)
        }
        Incrbyfloat => strings::incrbyfloat(ctx, args),
        Debug => debug::debug(ctx, args),
        Shutdown => server::shutdown(ctx, args),
        Eval | EvalRo | Evalsha | EvalshaRo => scripting::eval(ctx, args),
        Fcall | FcallRo => scripting::fcall(ctx, args),
        Script => Frame::wrong_arity("script"),
        ScriptDebug | ScriptExists | ScriptFlush | ScriptHelp | ScriptKill | ScriptLoad => {
            scripting::script(ctx, args)
        }
        Function => Frame::wrong_arity("function"),
        FunctionDelete | FunctionDump | FunctionFlush | FunctionHelp | FunctionKill
        | FunctionList | FunctionLoad | FunctionRestore | FunctionStats => {
            scripting::function(ctx, args)
        }
        Multi => multi::multi(ctx),
        Exec => multi::exec(ctx),
        Discard => multi::discard_command(ctx),
        Watch => multi::watch(ctx, args),
        Unwatch => multi::unwatch(ctx),
        Delegate => delegate(ctx, args),
    }
}

/// CLUSTER, INFO, CONFIG...: handed to the host.
fn delegate(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let name = ctx.spec.top_name();
    let rest = args.get(1..).unwrap_or(&[]);
    match ctx.host.server_command(name, rest, ctx.db, ctx.client) {
        Some(reply) => reply,
        None => Frame::Error(unknown_command_text(args)),
    }
}

/// An error found before running the command: inside MULTI it also makes
/// the transaction fail at EXEC (redis `rejectCommand` + `flagTransaction`).
fn reject(client: &mut ClientState, text: String) -> Frame {
    flag_transaction(client);
    Frame::Error(text)
}

/// [`reject`] once the command is known: a rejected EXEC ends the
/// transaction with `EXECABORT` and the reason (redis `execCommandAbort`).
fn reject_command(
    db: &mut Db,
    client: &mut ClientState,
    spec: &CommandSpec,
    text: String,
) -> Frame {
    if spec.id != Id::Exec {
        return reject(client, text);
    }
    multi::discard(db, client);
    let reason = text.strip_prefix("ERR ").unwrap_or(&text);
    Frame::Error(format!(
        "EXECABORT Transaction discarded because of: {reason}"
    ))
}

fn flag_transaction(client: &mut ClientState) {
    if let Some(m) = client.multi.as_mut() {
        m.dirty_exec = true;
    }
}

/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' `
fn unknown_command_text(args: &[Bytes]) -> String {
    let mut list = String::new();
    for arg in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push('\'');
        list.push_str(&truncated(arg, room));
        list.push_str("' ");
    }
    let name = args.first().map(|a| truncated(a, 128)).unwrap_or_default();
    format!("ERR unknown command '{name}', with args beginning with: {list}")
}

/// At most `max` bytes of `b` as text (C `%.*s`: a NUL also ends it).
fn truncated(b: &[u8], max: usize) -> String {
    let end = b
        .iter()
        .take(max)
        .position(|&c| c == 0)
        .unwrap_or(b.len().min(max));
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// redis `getDoubleFromObject`: a float argument (`inf` and `-inf` allowed,
/// no spaces, never NaN).
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(b).ok()?;
    if text.is_empty()
        || text.starts_with(|c: char| c.is_whitespace())
        || text.ends_with(|c: char| c.is_whitespace())
    {
        return None;
    }
    let v: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        t if t.contains("nan") || t.contains("inf") => return None,
        t => t.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// INCRBYFLOAT's and HINCRBYFLOAT's result text (redis `ld2string` in human
/// mode: no exponent, no trailing zeros). redis computes in long double; the
/// shortest text that reads back as the same double is what it prints for
/// the values clients use.
pub(crate) fn format_long_double(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mut s = format!("{v}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// redis `getLongLongFromObject`: strict integer parsing of an argument.
pub(crate) fn parse_i64(b: &[u8]) -> Option<i64> {
    crate::resp::string2ll(b)
}

/// Keeps `ExpireMode` reachable for hosts that switch a node to replica.
pub fn set_replica_mode(db: &mut Db, replica: bool) {
    db.set_expire_mode(if replica {
        ExpireMode::Hide
    } else {
        ExpireMode::Delete
    });
}
