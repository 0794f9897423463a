//! Per-connection state and the CLIENT command.

use bytes::Bytes;

use super::table::CommandSpec;
use super::{err, Ctx};
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

    /// The `CLIENT INFO` line (without the trailing newline), in redis 7.0's
    /// field order. Buffer and memory fields are not tracked and print as 0.
    pub fn info_line(&self, now_ms: u64) -> String {
        let mut flags = String::new();
        if self.is_master_link {
            flags.push('M');
        }
        if self.multi.is_some() {
            flags.push('x');
        }
        if self.readonly {
            flags.push('r');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let multi = self.multi.as_ref().map_or(-1, |m| m.queue.len() as i64);
        let name = self
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let age = now_ms.saturating_sub(self.created_ms) / 1000;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle=0 flags={} db=0 sub=0 psub=0 ssub=0 multi={} \
qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} \
user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            age,
            flags,
            multi,
            self.last_command,
            if self.resp3 { 3 } else { 2 },
        )
    }
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Set client library name or version (accepted for newer clients).",
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

/// CLIENT GETNAME / SETNAME / ID / INFO / LIST / SETINFO / HELP.
pub(crate) fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    use super::Id;
    match ctx.spec.id {
        Id::ClientId => Frame::Integer(ctx.client.id as i64),
        Id::ClientGetname => match &ctx.client.name {
            Some(n) => Frame::Bulk(n.clone()),
            None => Frame::Null,
        },
        Id::ClientSetname => set_name(ctx.client, &args[2]),
        Id::ClientInfo => {
            ctx.client.last_command = ctx.spec.name;
            Frame::Verbatim(format!("{}\n", ctx.client.info_line(ctx.now)))
        }
        Id::ClientList => list(ctx, args),
        Id::ClientSetinfo => setinfo(ctx.client, &args[2], &args[3]),
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

/// CLIENT LIST [TYPE type] [ID id ...]: this layer knows only the calling
/// connection, so the list has at most that one line.
fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    ctx.client.last_command = ctx.spec.name;
    let mut include = true;
    match args.len() {
        2 => {}
        4 if args[2].eq_ignore_ascii_case(b"type") => {
            let t = args[3].to_ascii_lowercase();
            match &t[..] {
                b"normal" => include = !ctx.client.is_master_link,
                b"master" => include = ctx.client.is_master_link,
                b"replica" | b"slave" | b"pubsub" => include = false,
                _ => {
                    return Frame::Error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(&args[3])
                    ))
                }
            }
        }
        n if n >= 4 && args[2].eq_ignore_ascii_case(b"id") => {
            let mut found = false;
            for id in &args[3..] {
                match super::parse_i64(id) {
                    Some(v) => found |= u64::try_from(v).is_ok_and(|v| v == ctx.client.id),
                    None => return Frame::error("ERR Invalid client ID"),
                }
            }
            include = found;
        }
        _ => return err::syntax(),
    }
    let text = if include {
        format!("{}\n", ctx.client.info_line(ctx.now))
    } else {
        String::new()
    };
    Frame::Verbatim(text)
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
