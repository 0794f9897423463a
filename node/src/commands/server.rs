//! Server commands served here: COMMAND (and its subcommands), TIME,
//! FLUSHALL, FLUSHDB.

use bytes::Bytes;

use super::table::{self, key, CommandSpec, Id, KeySpec};
use super::{client, err, Ctx};
use crate::glob::glob_match;
use crate::resp::Frame;

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

/// COMMAND and its subcommands.
pub(crate) fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match ctx.spec.id {
        Id::Command => all_info(),
        Id::CommandCount => Frame::Integer(table::commands().len() as i64),
        Id::CommandInfo if args.len() == 2 => all_info(),
        Id::CommandInfo => Frame::Array(
            args[2..]
                .iter()
                .map(|name| {
                    table::lookup_fullname(name).map_or(Frame::Null, CommandSpec::info_frame)
                })
                .collect(),
        ),
        // Documentation is optional for clients: redis-cli falls back to its
        // built-in help when it gets no entries.
        Id::CommandDocs => Frame::Map(Vec::new()),
        Id::CommandList => list(args),
        Id::CommandGetkeys => getkeys(args, false),
        Id::CommandGetkeysandflags => getkeys(args, true),
        _ => client::help(COMMAND_HELP),
    }
}

fn all_info() -> Frame {
    Frame::Array(
        table::commands()
            .iter()
            .map(CommandSpec::info_frame)
            .collect(),
    )
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]
fn list(args: &[Bytes]) -> Frame {
    enum Filter<'a> {
        All,
        None,
        Acl(u32),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let kind = &args[3];
            if kind.eq_ignore_ascii_case(b"module") {
                Filter::None
            } else if kind.eq_ignore_ascii_case(b"aclcat") {
                match acl_category(&args[4]) {
                    Some(bit) => Filter::Acl(bit),
                    None => Filter::None,
                }
            } else if kind.eq_ignore_ascii_case(b"pattern") {
                Filter::Pattern(&args[4])
            } else {
                return err::syntax();
            }
        }
        _ => return err::syntax(),
    };
    let mut out = Vec::new();
    fn walk(
        specs: &'static [CommandSpec],
        keep: &dyn Fn(&CommandSpec) -> bool,
        out: &mut Vec<Frame>,
    ) {
        for spec in specs {
            if keep(spec) {
                out.push(Frame::bulk_str(spec.name));
            }
            walk(spec.subcommands, keep, out);
        }
    }
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match filter {
        Filter::All => Box::new(|_| true),
        Filter::None => Box::new(|_| false),
        Filter::Acl(bit) => Box::new(move |s| s.acl & bit != 0),
        Filter::Pattern(p) => Box::new(move |s| glob_match(p, s.name.as_bytes(), true)),
    };
    walk(table::commands(), &*keep, &mut out);
    Frame::Array(out)
}

fn acl_category(name: &[u8]) -> Option<u32> {
    use table::acl::*;
    let all = [
        ("keyspace", KEYSPACE),
        ("read", READ),
        ("write", WRITE),
        ("set", SET),
        ("list", LIST),
        ("string", STRING),
        ("admin", ADMIN),
        ("fast", FAST),
        ("slow", SLOW),
        ("dangerous", DANGEROUS),
        ("connection", CONNECTION),
        ("transaction", TRANSACTION),
    ];
    all.iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(_, b)| *b)
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS <full command>
fn getkeys(args: &[Bytes], with_flags: bool) -> Frame {
    let request = &args[2..];
    let spec = match table::lookup(request) {
        table::Lookup::Found(spec) => spec,
        _ => return Frame::error("ERR Invalid command specified"),
    };
    if !spec.has_keys() {
        return Frame::error("ERR The command has no key arguments");
    }
    if !spec.arity_ok(request.len()) {
        return Frame::error("ERR Invalid number of arguments specified for command");
    }
    let mut keys = spec.key_positions(request);
    if spec.id == Id::Set {
        // SET's key flags depend on GET (redis `setGetKeys`).
        let get = request
            .iter()
            .skip(3)
            .any(|a| a.eq_ignore_ascii_case(b"get"));
        for (_, flags) in keys.iter_mut() {
            *flags = if get {
                key::RW | key::ACCESS | key::UPDATE
            } else {
                key::OW | key::UPDATE
            };
        }
    }
    if keys.is_empty() {
        return Frame::error("ERR Invalid arguments specified for command");
    }
    Frame::Array(
        keys.into_iter()
            .map(|(pos, flags)| {
                let key = Frame::Bulk(request[pos].clone());
                if with_flags {
                    Frame::Array(vec![key, KeySpec::flags_frame(flags)])
                } else {
                    key
                }
            })
            .collect(),
    )
}

pub(crate) fn time(ctx: &mut Ctx<'_>) -> Frame {
    let us = ctx.host.now_us();
    Frame::Array(vec![
        Frame::bulk((us / 1_000_000).to_string()),
        Frame::bulk((us % 1_000_000).to_string()),
    ])
}

/// FLUSHALL / FLUSHDB [ASYNC|SYNC]: one db, so both empty it.
pub(crate) fn flush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    match args.len() {
        1 => {}
        2 if args[1].eq_ignore_ascii_case(b"sync") || args[1].eq_ignore_ascii_case(b"async") => {}
        _ => return err::syntax(),
    }
    ctx.db.flush_all(ctx.expire_now);
    ctx.propagate_as_is = true;
    Frame::ok()
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] (redis `shutdownCommand`):
/// the host stops the server after this pass; the client gets no reply.
pub(crate) fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut save = None;
    let mut abort = false;
    for a in &args[1..] {
        match &a.to_ascii_lowercase()[..] {
            b"nosave" if save.is_none() => save = Some(false),
            b"save" if save.is_none() => save = Some(true),
            b"now" | b"force" => {}
            b"abort" => abort = true,
            _ => return err::syntax(),
        }
    }
    if abort {
        if args.len() > 2 {
            return err::syntax();
        }
        return Frame::error("ERR No shutdown in progress.");
    }
    match ctx.host.request_shutdown(save) {
        Ok(()) => {
            ctx.close = true;
            // Never sent: the connection closes with the server.
            Frame::ok()
        }
        Err(e) => Frame::Error(e),
    }
}
