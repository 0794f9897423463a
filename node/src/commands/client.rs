//! Per-connection state and the CLIENT command (redis `clientCommand`).
//!
//! Subcommands about the calling connection alone (ID, GETNAME, SETNAME,
//! INFO, REPLY, NO-EVICT...) are served here. Those that see or change other
//! connections (LIST, KILL, PAUSE, UNPAUSE, UNBLOCK) are parsed and checked
//! here, with redis's error texts, and carried out by the host, which owns
//! the registry of connections ([`super::Host::client_admin`]).

use std::collections::HashSet;

use bytes::Bytes;

use super::table::CommandSpec;
use super::{err, parse_i64, Ctx, Id};
use crate::resp::Frame;
use crate::store::WatchToken;

/// One queued command of a MULTI block.
#[derive(Debug)]
pub struct Queued {
    pub spec: &'static CommandSpec,
    pub args: Vec<Bytes>,
}

/// An open MULTI block.
#[derive(Debug, Default)]
pub struct MultiState {
    pub queue: Vec<Queued>,
    /// A command was rejected while queuing: EXEC fails with EXECABORT
    /// (redis `CLIENT_DIRTY_EXEC`).
    pub dirty_exec: bool,
    /// Union of the queued commands' flags.
    pub flags: u32,
    /// Union of their inverted flags (redis `cmd_inv_flags`): a bit set
    /// here means some queued command lacks that flag.
    pub inv_flags: u32,
}

/// What one connection is subscribed to (redis `c->pubsub_channels`,
/// `c->pubsub_patterns`, `c->pubsubshard_channels`). Hash sets iterate in no
/// particular order, as redis's dicts; patterns keep their order (a list there).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: HashSet<Bytes>,
    pub patterns: Vec<Bytes>,
    pub shard: HashSet<Bytes>,
}

impl Subscriptions {
    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty()
    }
}

/// The state of one client connection.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub name: Option<Bytes>,
    /// The connection speaks RESP3 (HELLO 3).
    pub resp3: bool,
    /// ASKING was sent: the next command (or MULTI block) may touch an importing slot.
    pub asking: bool,
    /// READONLY was sent: reads of our master's slots are served here.
    pub readonly: bool,
    /// `Some` between MULTI and EXEC/DISCARD.
    pub multi: Option<MultiState>,
    /// Keys this client WATCHes.
    pub watched: Vec<WatchToken>,
    /// The connection is our master's replication link: its commands are
    /// applied without redirection and without expiring keys.
    pub is_master_link: bool,
    /// Peer and local address (`ip:port`) for CLIENT INFO/LIST; set by the shell.
    pub addr: String,
    pub laddr: String,
    /// The socket's file descriptor, for CLIENT INFO (-1 if none).
    pub fd: i64,
    /// When the connection was accepted, Unix ms (for `age=`).
    pub created_ms: u64,
    /// Full name of the last command run (`cmd=` in CLIENT INFO).
    pub last_command: &'static str,
    /// AUTH succeeded (or none is required): redis `c->authenticated`.
    pub authenticated: bool,
    /// CLIENT SETINFO values.
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    /// Pub/Sub subscriptions; `None` until the first one (most clients never
    /// subscribe, and an idle connection should cost little).
    pub subscriptions: Option<Box<Subscriptions>>,
    /// CLIENT REPLY OFF.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: this command's reply is dropped...
    pub reply_skip: bool,
    /// ...set by the SKIP command itself for the one after it.
    pub reply_skip_next: bool,
    /// CLIENT NO-EVICT ON (flag `e`; hearsay evicts no clients).
    pub no_evict: bool,
    /// Close the connection once this command's reply is written (CLIENT
    /// KILL of oneself).
    pub close_after_reply: bool,
}

impl ClientState {
    pub fn new(id: u64) -> ClientState {
        ClientState {
            id,
            name: None,
            resp3: false,
            asking: false,
            readonly: false,
            multi: None,
            watched: Vec::new(),
            is_master_link: false,
            addr: String::new(),
            laddr: String::new(),
            fd: -1,
            created_ms: 0,
            last_command: "NULL",
            authenticated: false,
            lib_name: None,
            lib_ver: None,
            subscriptions: None,
            reply_off: false,
            reply_skip: false,
            reply_skip_next: false,
            no_evict: false,
            close_after_reply: false,
        }
    }

    /// The pseudo-client that applies the replication stream.
    pub fn master_link() -> ClientState {
        ClientState {
            is_master_link: true,
            ..ClientState::new(0)
        }
    }

    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Subscribed to anything (redis `CLIENT_PUBSUB`).
    pub fn in_pubsub_context(&self) -> bool {
        self.subscriptions.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// Channels + patterns (what SUBSCRIBE/PSUBSCRIBE replies count).
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
            .as_ref()
            .map_or(0, |s| s.channels.len() + s.patterns.len())
    }

    /// Shard channels (what SSUBSCRIBE replies count).
    pub fn shard_subscription_count(&self) -> usize {
        self.subscriptions.as_ref().map_or(0, |s| s.shard.len())
    }

    /// redis `getClientType`.
    pub fn kind(&self) -> ClientKind {
        if self.is_master_link {
            ClientKind::Master
        } else if self.in_pubsub_context() {
            ClientKind::Pubsub
        } else {
            ClientKind::Normal
        }
    }

    /// The `CLIENT INFO` / `CLIENT LIST` line (without the trailing newline),
    /// in redis 7.0's field order (`catClientInfoString`). `conn` holds what
    /// the shell knows of the connection: buffers, idle time, events.
    pub fn info_line(&self, now_ms: u64, conn: &ConnInfo) -> String {
        let mut flags = String::new();
        if self.is_master_link {
            flags.push('M');
        }
        if self.in_pubsub_context() {
            flags.push('P');
        }
        if self.multi.is_some() {
            flags.push('x');
        }
        if conn.blocked {
            flags.push('b');
        }
        if self.close_after_reply || conn.close_after_reply {
            flags.push('c');
        }
        if conn.close_asap {
            flags.push('A');
        }
        if self.readonly {
            flags.push('r');
        }
        if self.no_evict {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let multi = self.multi.as_ref().map_or(-1, |m| m.queue.len() as i64);
        let multi_mem: usize = self.multi.as_ref().map_or(0, |m| {
            m.queue
                .iter()
                .map(|q| q.args.iter().map(Bytes::len).sum::<usize>())
                .sum()
        });
        let name = self
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let age = now_ms.saturating_sub(self.created_ms) / 1000;
        let (sub, psub, ssub) = self.subscriptions.as_ref().map_or((0, 0, 0), |s| {
            (s.channels.len(), s.patterns.len(), s.shard.len())
        });
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} ssub={} multi={} \
qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events={} cmd={} \
user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            age,
            conn.idle_s,
            flags,
            sub,
            psub,
            ssub,
            multi,
            conn.qbuf,
            conn.qbuf_free,
            conn.argv_mem,
            multi_mem,
            conn.rbs,
            conn.rbp,
            conn.obl,
            conn.oll,
            conn.omem,
            conn.tot_mem,
            conn.events,
            self.last_command,
            if self.resp3 { 3 } else { 2 },
        )
    }
}

/// What the shell knows of a connection, for CLIENT INFO/LIST (redis's
/// names). Memory figures are hearsay's own allocations.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub idle_s: u64,
    pub qbuf: usize,
    pub qbuf_free: usize,
    /// Bytes of the arguments of the command being run.
    pub argv_mem: usize,
    /// Reply buffer size and recent peak.
    pub rbs: usize,
    pub rbp: usize,
    /// Bytes pending in the reply buffer, pending reply blocks, their memory.
    pub obl: usize,
    pub oll: usize,
    pub omem: usize,
    pub tot_mem: usize,
    /// `r`, `rw` (waiting to write), or empty.
    pub events: &'static str,
    /// Blocked in WAIT or held by a pause.
    pub blocked: bool,
    pub close_asap: bool,
    pub close_after_reply: bool,
}

impl Default for ConnInfo {
    fn default() -> Self {
        ConnInfo {
            idle_s: 0,
            qbuf: 0,
            qbuf_free: 0,
            argv_mem: 0,
            rbs: 0,
            rbp: 0,
            obl: 0,
            oll: 0,
            omem: 0,
            tot_mem: 0,
            events: "r",
            blocked: false,
            close_asap: false,
            close_after_reply: false,
        }
    }
}

/// redis's client types (`getClientTypeByName`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Normal,
    Replica,
    Pubsub,
    Master,
}

impl ClientKind {
    pub fn parse(name: &[u8]) -> Option<ClientKind> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Some(ClientKind::Normal),
            b"slave" | b"replica" => Some(ClientKind::Replica),
            b"pubsub" => Some(ClientKind::Pubsub),
            b"master" => Some(ClientKind::Master),
            _ => None,
        }
    }
}

/// CLIENT KILL's filters (all given ones must match).
#[derive(Clone, Debug, Default)]
pub struct KillFilter {
    pub addr: Option<String>,
    pub laddr: Option<String>,
    pub kind: Option<ClientKind>,
    pub id: Option<u64>,
    /// Skip the calling connection (new syntax default; the old
    /// `CLIENT KILL addr` form may kill oneself).
    pub skipme: bool,
}

impl KillFilter {
    pub fn matches(&self, c: &ClientState) -> bool {
        self.matches_conn(c.kind(), &c.addr, &c.laddr, c.id)
    }

    /// The same test for a connection that is no client entry (a replica's
    /// link on its master).
    pub fn matches_conn(&self, kind: ClientKind, addr: &str, laddr: &str, id: u64) -> bool {
        self.addr.as_ref().is_none_or(|a| a == addr)
            && self.laddr.as_ref().is_none_or(|a| a == laddr)
            && self.kind.is_none_or(|k| k == kind)
            && self.id.is_none_or(|i| i == id)
    }
}

/// A CLIENT subcommand about other connections, parsed and checked.
#[derive(Clone, Debug)]
pub enum ClientAdmin {
    /// LIST [TYPE t] or LIST ID id...: the text of the matching lines.
    List {
        kind: Option<ClientKind>,
        ids: Option<Vec<u64>>,
        /// Bytes of the LIST command's arguments (the caller's `argv-mem`).
        argv_mem: usize,
    },
    /// KILL: `old_style` is `CLIENT KILL addr` (replies OK / "No such client").
    Kill {
        filter: KillFilter,
        old_style: bool,
    },
    /// PAUSE until (Unix ms), ALL or WRITE.
    Pause {
        until_ms: u64,
        all: bool,
    },
    Unpause,
    /// UNBLOCK id [TIMEOUT|ERROR].
    Unblock {
        id: u64,
        error: bool,
    },
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

pub(crate) fn help(lines: &[&str]) -> Frame {
    Frame::Array(
        lines
            .iter()
            .map(|l| Frame::Simple((*l).to_string()))
            .collect(),
    )
}

/// Names may only hold printable ASCII without spaces ('!'..='~', redis `clientSetName`).
pub(crate) fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// CLIENT <subcommand>.
pub(crate) fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    // CLIENT INFO / LIST show the command being run.
    ctx.client.last_command = ctx.spec.name;
    match ctx.spec.id {
        Id::ClientId => Frame::Integer(ctx.client.id as i64),
        Id::ClientGetname => match &ctx.client.name {
            Some(n) => Frame::Bulk(n.clone()),
            None => Frame::Null,
        },
        Id::ClientSetname => set_name(ctx.client, &args[2]),
        Id::ClientInfo => {
            let conn = ConnInfo {
                argv_mem: args.iter().map(Bytes::len).sum(),
                ..ConnInfo::default()
            };
            let line = ctx.client.info_line(ctx.now, &conn);
            match ctx.host.client_admin(
                ClientAdmin::List {
                    kind: None,
                    ids: Some(vec![ctx.client.id]),
                    argv_mem: conn.argv_mem,
                },
                ctx.client,
                ctx.now,
            ) {
                // The host knows the connection's buffers; fall back to
                // the command layer's view.
                Frame::Verbatim(text) if !text.is_empty() => Frame::Verbatim(text),
                _ => Frame::Verbatim(format!("{line}\n")),
            }
        }
        Id::ClientList => match parse_list(args) {
            Ok(req) => ctx.host.client_admin(req, ctx.client, ctx.now),
            Err(e) => e,
        },
        Id::ClientSetinfo => setinfo(ctx.client, &args[2], &args[3]),
        Id::ClientReply => reply(ctx.client, &args[2]),
        Id::ClientNoEvict => {
            let v = &args[2];
            if v.eq_ignore_ascii_case(b"on") {
                ctx.client.no_evict = true;
            } else if v.eq_ignore_ascii_case(b"off") {
                ctx.client.no_evict = false;
            } else {
                return err::syntax();
            }
            Frame::ok()
        }
        Id::ClientGetredir => Frame::Integer(-1),
        Id::ClientTrackinginfo => Frame::Map(vec![
            (
                Frame::bulk_str("flags"),
                Frame::Set(vec![Frame::Simple("off".into())]),
            ),
            (Frame::bulk_str("redirect"), Frame::Integer(-1)),
            (Frame::bulk_str("prefixes"), Frame::Array(Vec::new())),
        ]),
        Id::ClientKill => match parse_kill(args) {
            Ok(req) => ctx.host.client_admin(req, ctx.client, ctx.now),
            Err(e) => e,
        },
        Id::ClientPause | Id::ClientUnblock if args.len() > 4 => sub_syntax(&args[1]),
        Id::ClientPause => match parse_pause(args, ctx.now) {
            Ok(req) => ctx.host.client_admin(req, ctx.client, ctx.now),
            Err(e) => e,
        },
        Id::ClientUnpause => ctx
            .host
            .client_admin(ClientAdmin::Unpause, ctx.client, ctx.now),
        Id::ClientUnblock => match parse_unblock(args) {
            Ok(req) => ctx.host.client_admin(req, ctx.client, ctx.now),
            Err(e) => e,
        },
        _ => help(HELP),
    }
}

/// Sets or clears (empty name) the connection name.
pub(crate) fn set_name(client: &mut ClientState, name: &Bytes) -> Frame {
    if !valid_name(name) {
        return Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        );
    }
    client.name = if name.is_empty() {
        None
    } else {
        Some(name.clone())
    };
    Frame::ok()
}

/// CLIENT REPLY ON|OFF|SKIP. OFF and SKIP get no reply themselves.
fn reply(client: &mut ClientState, mode: &[u8]) -> Frame {
    if mode.eq_ignore_ascii_case(b"on") {
        client.reply_off = false;
        client.reply_skip = false;
        client.reply_skip_next = false;
        Frame::ok()
    } else if mode.eq_ignore_ascii_case(b"off") {
        client.reply_off = true;
        Frame::ok()
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if !client.reply_off {
            client.reply_skip_next = true;
            // The SKIP command's own reply is dropped too.
            client.reply_skip = true;
        }
        Frame::ok()
    } else {
        err::syntax()
    }
}

/// CLIENT LIST [TYPE type] | [ID id ...]
fn parse_list(args: &[Bytes]) -> Result<ClientAdmin, Frame> {
    let argv_mem = args.iter().map(Bytes::len).sum();
    if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
        let Some(kind) = ClientKind::parse(&args[3]) else {
            return Err(Frame::Error(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(&args[3])
            )));
        };
        return Ok(ClientAdmin::List {
            kind: Some(kind),
            ids: None,
            argv_mem,
        });
    }
    if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
        let mut ids = Vec::new();
        for id in &args[3..] {
            match parse_i64(id) {
                Some(v) => ids.push(v as u64),
                None => return Err(Frame::error("ERR Invalid client ID")),
            }
        }
        return Ok(ClientAdmin::List {
            kind: None,
            ids: Some(ids),
            argv_mem,
        });
    }
    if args.len() != 2 {
        return Err(err::syntax());
    }
    Ok(ClientAdmin::List {
        kind: None,
        ids: None,
        argv_mem,
    })
}

/// CLIENT KILL addr | CLIENT KILL <option> <value> ...
fn parse_kill(args: &[Bytes]) -> Result<ClientAdmin, Frame> {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    if args.len() == 3 {
        return Ok(ClientAdmin::Kill {
            filter: KillFilter {
                addr: Some(text(&args[2])),
                skipme: false,
                ..KillFilter::default()
            },
            old_style: true,
        });
    }
    let mut filter = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        let Some(value) = args.get(i + 1) else {
            return Err(err::syntax());
        };
        if opt.eq_ignore_ascii_case(b"id") {
            match parse_i64(value) {
                Some(v) if v >= 1 => filter.id = Some(v as u64),
                _ => return Err(Frame::error("ERR client-id should be greater than 0")),
            }
        } else if opt.eq_ignore_ascii_case(b"type") {
            match ClientKind::parse(value) {
                Some(k) => filter.kind = Some(k),
                None => {
                    return Err(Frame::Error(format!(
                        "ERR Unknown client type '{}'",
                        text(value)
                    )))
                }
            }
        } else if opt.eq_ignore_ascii_case(b"addr") {
            filter.addr = Some(text(value));
        } else if opt.eq_ignore_ascii_case(b"laddr") {
            filter.laddr = Some(text(value));
        } else if opt.eq_ignore_ascii_case(b"user") {
            // Only the default user exists.
            if &value[..] != b"default" {
                return Err(Frame::Error(format!("ERR No such user '{}'", text(value))));
            }
        } else if opt.eq_ignore_ascii_case(b"skipme") {
            if value.eq_ignore_ascii_case(b"yes") {
                filter.skipme = true;
            } else if value.eq_ignore_ascii_case(b"no") {
                filter.skipme = false;
            } else {
                return Err(err::syntax());
            }
        } else {
            return Err(err::syntax());
        }
        i += 2;
    }
    Ok(ClientAdmin::Kill {
        filter,
        old_style: false,
    })
}

/// redis `addReplySubcommandSyntaxError`.
fn sub_syntax(sub: &[u8]) -> Frame {
    Frame::Error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
        super::truncated(sub, 128)
    ))
}

/// CLIENT PAUSE timeout [WRITE|ALL] (redis `getTimeoutFromObjectOrReply`).
fn parse_pause(args: &[Bytes], now: u64) -> Result<ClientAdmin, Frame> {
    let mut all = true;
    if let Some(mode) = args.get(3) {
        if mode.eq_ignore_ascii_case(b"write") {
            all = false;
        } else if !mode.eq_ignore_ascii_case(b"all") {
            return Err(Frame::error("ERR CLIENT PAUSE mode must be WRITE or ALL"));
        }
    }
    let Some(ms) = parse_i64(&args[2]) else {
        return Err(Frame::error(
            "ERR timeout is not an integer or out of range",
        ));
    };
    if ms < 0 {
        return Err(Frame::error("ERR timeout is negative"));
    }
    let Some(until_ms) = now.checked_add(ms as u64).filter(|t| *t <= i64::MAX as u64) else {
        return Err(Frame::error("ERR timeout is out of range"));
    };
    Ok(ClientAdmin::Pause { until_ms, all })
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]
fn parse_unblock(args: &[Bytes]) -> Result<ClientAdmin, Frame> {
    let mut error = false;
    if let Some(how) = args.get(3) {
        if how.eq_ignore_ascii_case(b"error") {
            error = true;
        } else if !how.eq_ignore_ascii_case(b"timeout") {
            return Err(Frame::error(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    }
    let Some(id) = parse_i64(&args[2]) else {
        return Err(err::not_integer());
    };
    Ok(ClientAdmin::Unblock {
        id: id as u64,
        error,
    })
}

/// [`ClientAdmin`] for a host that knows no other connection than `me`.
pub fn admin_alone(req: ClientAdmin, me: &mut ClientState, now: u64) -> Frame {
    match req {
        ClientAdmin::List {
            kind,
            ids,
            argv_mem,
        } => {
            let include = match (&kind, &ids) {
                (Some(k), _) => *k == me.kind(),
                (None, Some(ids)) => ids.contains(&me.id),
                (None, None) => true,
            };
            let conn = ConnInfo {
                argv_mem,
                ..ConnInfo::default()
            };
            Frame::Verbatim(if include {
                format!("{}\n", me.info_line(now, &conn))
            } else {
                String::new()
            })
        }
        ClientAdmin::Kill { filter, old_style } => {
            let killed = !filter.skipme && filter.matches(me);
            if killed {
                me.close_after_reply = true;
            }
            kill_reply(usize::from(killed), old_style)
        }
        ClientAdmin::Pause { .. } | ClientAdmin::Unpause => Frame::ok(),
        ClientAdmin::Unblock { .. } => Frame::Integer(0),
    }
}

/// CLIENT KILL's reply: the count, or OK / "No such client" for the old form.
pub fn kill_reply(killed: usize, old_style: bool) -> Frame {
    match (old_style, killed) {
        (true, 0) => Frame::error("ERR No such client"),
        (true, _) => Frame::ok(),
        (false, n) => Frame::Integer(n as i64),
    }
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (redis 7.2 semantics).
fn setinfo(client: &mut ClientState, attr: &Bytes, value: &Bytes) -> Frame {
    let is_name = attr.eq_ignore_ascii_case(b"lib-name");
    if !is_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
        return Frame::Error(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        ));
    }
    if !valid_name(value) {
        let what = if is_name { "lib-name" } else { "lib-ver" };
        return Frame::Error(format!(
            "ERR {what} cannot contain spaces, newlines or special characters."
        ));
    }
    let v = if value.is_empty() {
        None
    } else {
        Some(value.clone())
    };
    if is_name {
        client.lib_name = v;
    } else {
        client.lib_ver = v;
    }
    Frame::ok()
}
