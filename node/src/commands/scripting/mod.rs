//! Lua scripting as redis 7.0 does it (`eval.c`, `script.c`, `script_lua.c`,
//! `functions.c`, `function_lua.c`): EVAL, EVALSHA, EVAL_RO, EVALSHA_RO,
//! SCRIPT LOAD|EXISTS|FLUSH|KILL, FUNCTION LOAD|DELETE|LIST|FLUSH|DUMP|RESTORE|
//! STATS, FCALL, FCALL_RO, on an embedded Lua 5.1 (mlua, vendored, the
//! version redis embeds).
//!
//! A script's `redis.call` runs the command through the same path as a
//! client's (`super::call`), after redis's script checks: arity, no
//! `noscript` commands, no writes from a read-only script or on a replica,
//! and in cluster mode every key must be served here and all keys of one run
//! must share a slot (unless `allow-cross-slot-keys`). The writes it applies
//! are what replicas and the AOF get (redis 7.0's effects replication; the
//! shell wraps several in MULTI/EXEC).
//!
//! Not done: script timeouts (SCRIPT KILL answers NOTBUSY), the `bit`,
//! `cjson`, `cmsgpack` and `struct` libraries, LZF-compressed FUNCTION
//! RESTORE payloads.

mod convert;
mod engine;

use bytes::Bytes;

pub use engine::Engine;

use super::{err, parse_i64, Ctx, Id};
use crate::resp::Frame;
use engine::ScriptFlags;

/// The engine from the host, or a fresh one (a host that keeps none).
fn take_engine(ctx: &mut Ctx<'_>) -> Result<Box<Engine>, Frame> {
    match ctx.host.take_scripts() {
        Some(e) => Ok(e),
        None => Engine::new()
            .map(Box::new)
            .map_err(|e| Frame::Error(format!("ERR Lua engine: {e}"))),
    }
}

/// `numkeys key... arg...` after the script/function name.
fn split_keys(args: &[Bytes]) -> Result<(Vec<Bytes>, Vec<Bytes>), Frame> {
    let Some(n) = parse_i64(&args[2]) else {
        return Err(err::not_integer());
    };
    if n < 0 {
        return Err(Frame::error("ERR Number of keys can't be negative"));
    }
    let n = n as usize;
    if n > args.len() - 3 {
        return Err(Frame::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok((args[3..3 + n].to_vec(), args[3 + n..].to_vec()))
}

/// EVAL / EVALSHA / EVAL_RO / EVALSHA_RO script|sha numkeys key... arg...
pub(crate) fn eval(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (keys, argv) = match split_keys(args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let by_sha = matches!(ctx.spec.id, Id::Evalsha | Id::EvalshaRo);
    let ro = matches!(ctx.spec.id, Id::EvalRo | Id::EvalshaRo);
    let mut engine = match take_engine(ctx) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let reply = engine.eval(ctx, &args[1], by_sha, ro, keys, argv);
    ctx.host.put_scripts(engine);
    reply
}

/// FCALL / FCALL_RO function numkeys key... arg...
pub(crate) fn fcall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (keys, argv) = match split_keys(args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let ro = ctx.spec.id == Id::FcallRo;
    let mut engine = match take_engine(ctx) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let reply = engine.fcall(ctx, &args[1], ro, keys, argv);
    ctx.host.put_scripts(engine);
    reply
}

/// SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP (DEBUG is not supported).
pub(crate) fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut engine = match take_engine(ctx) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let reply = match ctx.spec.id {
        Id::ScriptLoad => match engine.load_script(&args[2]) {
            Ok(sha) => {
                // Replicated so that replicas can serve EVALSHA too.
                ctx.propagate_as_is = true;
                Frame::Bulk(Bytes::from(sha))
            }
            Err(e) => e,
        },
        Id::ScriptExists => Frame::Array(
            args[2..]
                .iter()
                .map(|sha| Frame::Integer(i64::from(engine.script_exists(sha))))
                .collect(),
        ),
        Id::ScriptFlush => {
            if args.len() > 3
                || args.get(2).is_some_and(|a| {
                    !a.eq_ignore_ascii_case(b"sync") && !a.eq_ignore_ascii_case(b"async")
                })
            {
                Frame::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
            } else {
                match Engine::new() {
                    Ok(mut fresh) => {
                        // Functions survive SCRIPT FLUSH.
                        engine.move_functions_to(&mut fresh);
                        *engine = fresh;
                        Frame::ok()
                    }
                    Err(e) => Frame::Error(format!("ERR Lua engine: {e}")),
                }
            }
        }
        Id::ScriptKill => Frame::error("NOTBUSY No scripts in execution right now."),
        Id::ScriptHelp => help(&[
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "HELP",
            "    Prints this help.",
        ]),
        _ => Frame::error("ERR SCRIPT DEBUG is not supported by hearsay-node"),
    };
    ctx.host.put_scripts(engine);
    reply
}

fn help(lines: &[&str]) -> Frame {
    Frame::Array(lines.iter().map(|l| Frame::Simple((*l).into())).collect())
}

/// FUNCTION LOAD|DELETE|LIST|FLUSH|DUMP|RESTORE|STATS|KILL|HELP
pub(crate) fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut engine = match take_engine(ctx) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let reply = match ctx.spec.id {
        Id::FunctionLoad => {
            let (replace, code) = match args.len() {
                3 => (false, &args[2]),
                4 if args[2].eq_ignore_ascii_case(b"replace") => (true, &args[3]),
                4 => {
                    ctx.host.put_scripts(engine);
                    return Frame::Error(format!(
                        "ERR Unknown option given: {}",
                        String::from_utf8_lossy(&args[2])
                    ));
                }
                _ => {
                    ctx.host.put_scripts(engine);
                    return Frame::wrong_arity("function|load");
                }
            };
            match engine.load_library(code, replace) {
                Ok(name) => {
                    ctx.propagate_as_is = true;
                    Frame::Bulk(Bytes::from(name))
                }
                Err(e) => e,
            }
        }
        Id::FunctionDelete => match engine.delete_library(&args[2]) {
            Ok(()) => {
                ctx.propagate_as_is = true;
                Frame::ok()
            }
            Err(e) => e,
        },
        Id::FunctionFlush => {
            if args.len() > 3
                || args.get(2).is_some_and(|a| {
                    !a.eq_ignore_ascii_case(b"sync") && !a.eq_ignore_ascii_case(b"async")
                })
            {
                Frame::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
            } else {
                engine.flush_functions();
                ctx.propagate_as_is = true;
                Frame::ok()
            }
        }
        Id::FunctionList => engine.list(&args[2..]),
        Id::FunctionDump => Frame::Bulk(Bytes::from(engine.dump())),
        Id::FunctionRestore => {
            let policy = args.get(3).map(|a| a.to_ascii_lowercase());
            match policy.as_deref() {
                None | Some(b"append") | Some(b"replace") | Some(b"flush") if args.len() <= 4 => {
                    match engine.restore(&args[2], policy.as_deref().unwrap_or(b"append")) {
                        Ok(()) => {
                            ctx.propagate_as_is = true;
                            Frame::ok()
                        }
                        Err(e) => e,
                    }
                }
                _ => Frame::error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."),
            }
        }
        Id::FunctionStats => engine.stats(),
        Id::FunctionKill => Frame::error("NOTBUSY No scripts in execution right now."),
        _ => help(&[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "DELETE <LIBRARY NAME>",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "FCALL <FUNCTION NAME> <NUMKEYS> <KEY1> .. <KEYN> <ARG1> .. <ARGN>",
            "FCALL_RO <FUNCTION NAME> <NUMKEYS> <KEY1> .. <KEYN> <ARG1> .. <ARGN>",
            "FLUSH [ASYNC|SYNC]",
            "STATS",
            "KILL",
            "DUMP",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "HELP",
            "    Prints this help.",
        ]),
    };
    ctx.host.put_scripts(engine);
    reply
}

/// The command flags a script command runs with, for routing (redis
/// `evalGetCommandFlags` / `fcallGetCommandFlags`): a script with a shebang
/// and without `no-writes` is a write, `no-writes` makes it a read.
pub fn command_flags(host: &mut dyn super::Host, id: Id, args: &[Bytes], flags: u32) -> u32 {
    use super::table::flag;
    let script_flags = match id {
        Id::Eval | Id::EvalRo => args.get(1).and_then(|b| ScriptFlags::from_shebang(b).ok()),
        Id::Evalsha | Id::EvalshaRo | Id::Fcall | Id::FcallRo => {
            let Some(engine) = host.take_scripts() else {
                return flags;
            };
            let f = args.get(1).and_then(|name| {
                if matches!(id, Id::Fcall | Id::FcallRo) {
                    engine.function_flags(name)
                } else {
                    engine.script_flags(name)
                }
            });
            host.put_scripts(engine);
            f
        }
        _ => None,
    };
    match script_flags {
        Some(f) if !f.compat => {
            let mut out = flags;
            if f.no_writes {
                out |= flag::READONLY;
            } else {
                out |= flag::WRITE;
            }
            if f.allow_stale {
                out |= flag::STALE;
            }
            out
        }
        _ => flags,
    }
}
