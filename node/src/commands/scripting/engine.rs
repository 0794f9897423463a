//! The Lua state, the script cache and the function libraries.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Table, Value};
use sha1::{Digest, Sha1};

use super::convert::{error_table, frame_to_lua, lua_to_frame};
use crate::commands::table::{self, flag, Id, Lookup};
use crate::commands::{route, Ctx};
use crate::resp::Frame;
use crate::slots::key_slot;

/// Lua code run once per state: the error handler that turns an error into
/// redis's `{err, source, line}` table (skipping C frames and our own
/// wrappers, so the line is the user's), the `redis` library's Lua side,
/// and the runners that call a script under that handler.
const PRELUDE: &str = r#"
local dbg = debug
debug = nil
function __redis__err__handler(err)
  local lvl = 2
  local i = dbg.getinfo(lvl, 'nSl')
  while i and (i.what == 'C' or i.source == '=hearsay') do
    lvl = lvl + 1
    i = dbg.getinfo(lvl, 'nSl')
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
function __hs_call_impl(...)
  if __hs_raw == nil then
    return false, {err = 'ERR redis.call/pcall can only be called inside a script invocation'}
  end
  return __hs_raw(...)
end
redis = {}
redis.call = __hs_call_c
redis.pcall = __hs_pcall_c
function redis.error_reply(e)
  if type(e) ~= 'string' then error({err = 'ERR wrong number or type of arguments'}) end
  if string.sub(e, 1, 1) == '-' then e = string.sub(e, 2) end
  return {err = e}
end
function redis.status_reply(s)
  if type(s) ~= 'string' then error({err = 'ERR wrong number or type of arguments'}) end
  return {ok = s}
end
function redis.sha1hex(s) return __hs_sha1(s) end
function redis.log(level, ...) end
function redis.setresp(v) end
function redis.set_repl(v) end
function redis.replicate_commands() return true end
function redis.breakpoint() return false end
function redis.debug() end
redis.LOG_DEBUG = 0
redis.LOG_VERBOSE = 1
redis.LOG_NOTICE = 2
redis.LOG_WARNING = 3
redis.REPL_NONE = 0
redis.REPL_AOF = 1
redis.REPL_SLAVE = 2
redis.REPL_REPLICA = 2
redis.REPL_ALL = 3
redis.REDIS_VERSION = '7.0.15'
redis.REDIS_VERSION_NUM = 0x07000f
loadfile = nil
dofile = nil
function __hs_run(f)
  return xpcall(f, __redis__err__handler)
end
function __hs_run_fn(f, keys, args)
  return xpcall(function() return f(keys, args) end, __redis__err__handler)
end
"#;

/// A script's or function's flags (`#!lua flags=...`, `flags={...}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// An EVAL script without a shebang: redis's backwards-compatible mode.
    pub compat: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot: bool,
}

const FLAG_NAMES: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

impl ScriptFlags {
    fn set(&mut self, name: &str) -> bool {
        match name {
            "no-writes" => self.no_writes = true,
            "allow-oom" => self.allow_oom = true,
            "allow-stale" => self.allow_stale = true,
            "no-cluster" => self.no_cluster = true,
            "allow-cross-slot-keys" => self.allow_cross_slot = true,
            _ => return false,
        }
        true
    }

    fn names(&self) -> Vec<&'static str> {
        let on = [
            self.no_writes,
            self.allow_oom,
            self.allow_stale,
            self.no_cluster,
            self.allow_cross_slot,
        ];
        FLAG_NAMES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    /// redis `evalExtractShebangFlags`; the error is the reply text.
    pub fn from_shebang(body: &[u8]) -> Result<ScriptFlags, String> {
        if !body.starts_with(b"#!") {
            return Ok(ScriptFlags {
                compat: true,
                ..ScriptFlags::default()
            });
        }
        let Some(end) = body.iter().position(|&b| b == b'\n') else {
            return Err("ERR Invalid script shebang".into());
        };
        let line = String::from_utf8_lossy(&body[..end]);
        let parts = crate::config::split_args(&line).unwrap_or_default();
        let Some(engine) = parts.first() else {
            return Err("ERR Invalid engine in script shebang".into());
        };
        if engine != "#!lua" {
            return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
        }
        let mut flags = ScriptFlags::default();
        for part in &parts[1..] {
            let Some(list) = part.strip_prefix("flags=") else {
                return Err(format!("ERR Unknown lua shebang option: {part}"));
            };
            for f in list.split(',') {
                if !flags.set(f) {
                    return Err(format!("ERR Unexpected flag in script shebang: {f}"));
                }
            }
        }
        Ok(flags)
    }
}

struct Script {
    flags: ScriptFlags,
    func: RegistryKey,
}

struct FunctionDef {
    name: String,
    desc: Option<String>,
    flags: ScriptFlags,
    func: RegistryKey,
}

struct Library {
    code: Bytes,
    functions: Vec<FunctionDef>,
}

/// The scripting state of a node (redis's Lua interpreter, script cache and
/// function libraries).
pub struct Engine {
    lua: Lua,
    scripts: HashMap<String, Script>,
    libraries: BTreeMap<String, Library>,
    /// Function name -> library name.
    functions: HashMap<String, String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scripts", &self.scripts.len())
            .field("libraries", &self.libraries.len())
            .finish()
    }
}

fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a running script carries between its `redis.call`s.
struct Run {
    read_only: bool,
    allow_cross_slot: bool,
    /// The slot the script's keys are in, once one is known.
    slot: Option<u16>,
}

impl Engine {
    pub fn new() -> mlua::Result<Engine> {
        // `debug` is loaded for the error handler, which hides it again, as
        // redis does; `os` and `io` are not loaded.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::new(),
            )
        };
        let sha =
            lua.create_function(|lua, s: mlua::String| lua.create_string(sha1_hex(&s.as_bytes())))?;
        lua.globals().raw_set("__hs_sha1", sha)?;
        // redis.call and redis.pcall are C functions, as in redis: a Lua
        // wrapper would be tail-called away and hide the script's line from
        // the error report.
        // SAFETY: the functions follow the Lua C API contract (see below).
        unsafe {
            lua.globals()
                .raw_set("__hs_call_c", lua.create_c_function(redis_call_c)?)?;
            lua.globals()
                .raw_set("__hs_pcall_c", lua.create_c_function(redis_pcall_c)?)?;
        }
        lua.load(PRELUDE).set_name("=hearsay").exec()?;
        Ok(Engine {
            lua,
            scripts: HashMap::new(),
            libraries: BTreeMap::new(),
            functions: HashMap::new(),
        })
    }

    pub fn script_exists(&self, sha: &[u8]) -> bool {
        self.scripts
            .contains_key(&String::from_utf8_lossy(sha).to_ascii_lowercase())
    }

    pub fn script_flags(&self, sha: &[u8]) -> Option<ScriptFlags> {
        self.scripts
            .get(&String::from_utf8_lossy(sha).to_ascii_lowercase())
            .map(|s| s.flags)
    }

    pub fn function_flags(&self, name: &[u8]) -> Option<ScriptFlags> {
        let name = String::from_utf8_lossy(name);
        let lib = self.functions.get(name.as_ref())?;
        self.libraries
            .get(lib)?
            .functions
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.flags)
    }

    /// SCRIPT LOAD / EVAL: compiles and caches a script; its SHA1.
    pub fn load_script(&mut self, body: &[u8]) -> Result<String, Frame> {
        let sha = sha1_hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let flags = ScriptFlags::from_shebang(body).map_err(Frame::Error)?;
        // A shebang line is skipped, its line feed kept (line numbers).
        let code = if flags.compat {
            body
        } else {
            let nl = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
            &body[nl..]
        };
        let func = self
            .lua
            .load(code)
            .set_name("@user_script")
            .into_function()
            .map_err(|e| {
                Frame::Error(format!(
                    "ERR Error compiling script (new function): {}",
                    lua_error_text(&e)
                ))
            })?;
        let key = self
            .lua
            .create_registry_value(func)
            .map_err(|e| Frame::Error(format!("ERR {e}")))?;
        self.scripts
            .insert(sha.clone(), Script { flags, func: key });
        Ok(sha)
    }

    pub(crate) fn eval(
        &mut self,
        ctx: &mut Ctx<'_>,
        script: &[u8],
        by_sha: bool,
        ro: bool,
        keys: Vec<Bytes>,
        argv: Vec<Bytes>,
    ) -> Frame {
        let sha = if by_sha {
            let sha = String::from_utf8_lossy(script).to_ascii_lowercase();
            if !self.scripts.contains_key(&sha) {
                return Frame::error("NOSCRIPT No matching script. Please use EVAL.");
            }
            sha
        } else {
            match self.load_script(script) {
                Ok(sha) => sha,
                Err(e) => return e,
            }
        };
        let Some(s) = self.scripts.get(&sha) else {
            return Frame::error("NOSCRIPT No matching script. Please use EVAL.");
        };
        let flags = s.flags;
        let func: Function = match self.lua.registry_value(&s.func) {
            Ok(f) => f,
            Err(e) => return Frame::Error(format!("ERR {e}")),
        };
        if let Err(e) = prepare(ctx, flags, ro) {
            return e;
        }
        // Errors name the script by its SHA1 (redis passes `f_<sha>` + 2).
        self.run(ctx, &sha, func, flags, ro, keys, argv, true)
    }

    pub(crate) fn fcall(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &[u8],
        ro: bool,
        keys: Vec<Bytes>,
        argv: Vec<Bytes>,
    ) -> Frame {
        let name = String::from_utf8_lossy(name).into_owned();
        let Some(def) = self
            .functions
            .get(&name)
            .and_then(|lib| self.libraries.get(lib))
            .and_then(|l| l.functions.iter().find(|f| f.name == name))
        else {
            return Frame::error("ERR Function not found");
        };
        let flags = def.flags;
        let func: Function = match self.lua.registry_value(&def.func) {
            Ok(f) => f,
            Err(e) => return Frame::Error(format!("ERR {e}")),
        };
        if let Err(e) = prepare(ctx, flags, ro) {
            return e;
        }
        self.run(ctx, &name, func, flags, ro, keys, argv, false)
    }

    /// Runs a script or function with `redis.call` bound to `ctx`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &str,
        func: Function,
        flags: ScriptFlags,
        ro: bool,
        keys: Vec<Bytes>,
        argv: Vec<Bytes>,
        eval_mode: bool,
    ) -> Frame {
        let mut run = Run {
            read_only: ro || (!flags.compat && flags.no_writes),
            allow_cross_slot: flags.compat || flags.allow_cross_slot,
            slot: keys.first().map(|k| key_slot(k)),
        };
        let nested = std::mem::replace(&mut ctx.nested, true);
        let lua = &self.lua;
        let result = lua.scope(|scope| {
            let raw = scope.create_function_mut(|lua, args: MultiValue| {
                redis_call(lua, ctx, &mut run, args)
            })?;
            let globals = lua.globals();
            globals.raw_set("__hs_raw", raw)?;
            let keys_t = bytes_table(lua, &keys)?;
            let argv_t = bytes_table(lua, &argv)?;
            let out: (bool, Value) = if eval_mode {
                globals.raw_set("KEYS", keys_t)?;
                globals.raw_set("ARGV", argv_t)?;
                let runner: Function = globals.raw_get("__hs_run")?;
                runner.call(func)?
            } else {
                let runner: Function = globals.raw_get("__hs_run_fn")?;
                runner.call((func, keys_t, argv_t))?
            };
            globals.raw_set("__hs_raw", Value::Nil)?;
            Ok(match out {
                (true, v) => lua_to_frame(&v),
                (false, Value::Table(t)) => {
                    let msg: String = t
                        .raw_get("err")
                        .unwrap_or_else(|_| "ERR unknown error".into());
                    let source: Option<String> = t.raw_get("source").ok();
                    let line: Option<i64> = t.raw_get("line").ok();
                    match (source, line) {
                        (Some(src), Some(line)) => {
                            Frame::Error(format!("{msg} script: {name}, on {src}:{line}."))
                        }
                        _ => Frame::Error(msg),
                    }
                }
                (false, v) => Frame::Error(format!(
                    "ERR Error running script {name}, {:.100}",
                    lua.coerce_string(v)
                        .ok()
                        .flatten()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_else(|| "execution failure".into())
                )),
            })
        });
        ctx.nested = nested;
        let _ = self.lua.globals().raw_set("__hs_raw", Value::Nil);
        result.unwrap_or_else(|e| Frame::Error(format!("ERR Error running script {name}, {e}")))
    }

    /// FUNCTION LOAD [REPLACE] code: the library's name.
    pub fn load_library(&mut self, code: &Bytes, replace: bool) -> Result<String, Frame> {
        let (lib, engine) = parse_library_shebang(code)?;
        if engine != "lua" && !engine.eq_ignore_ascii_case("lua") {
            return Err(Frame::Error(format!("ERR Engine '{engine}' not found")));
        }
        if !valid_name(&lib) {
            return Err(Frame::error("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"));
        }
        if self.libraries.contains_key(&lib) && !replace {
            return Err(Frame::Error(format!("ERR Library '{lib}' already exists")));
        }
        let defs = self.compile_library(code)?;
        if defs.is_empty() {
            return Err(Frame::error("ERR No functions registered"));
        }
        for d in &defs {
            if let Some(owner) = self.functions.get(&d.name) {
                if owner != &lib {
                    return Err(Frame::Error(format!(
                        "ERR Function {} already exists",
                        d.name
                    )));
                }
            }
        }
        self.remove_library(&lib);
        for d in &defs {
            self.functions.insert(d.name.clone(), lib.clone());
        }
        self.libraries.insert(
            lib.clone(),
            Library {
                code: code.clone(),
                functions: defs,
            },
        );
        Ok(lib)
    }

    /// Runs a library's code with `redis.register_function` available.
    fn compile_library(&mut self, code: &[u8]) -> Result<Vec<FunctionDef>, Frame> {
        let lua = &self.lua;
        let mut defs: Vec<(String, Option<String>, ScriptFlags, Function)> = Vec::new();
        let mut reg_error: Option<String> = None;
        let body_start = code
            .iter()
            .position(|&b| b == b'\n')
            .map_or(code.len(), |p| p);
        let result = lua.scope(|scope| {
            let register = scope.create_function_mut(|_, args: MultiValue| {
                match read_register_args(args) {
                    Ok(def) => {
                        if !valid_name(&def.0) {
                            reg_error = Some("Function names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
                        } else if defs.iter().any(|d| d.0 == def.0) {
                            reg_error = Some("Function already exists in the library".to_string());
                        } else {
                            defs.push(def);
                            return Ok(());
                        }
                    }
                    Err(e) => reg_error = Some(e),
                }
                Err(mlua::Error::runtime(reg_error.clone().unwrap_or_default()))
            })?;
            // The library runs in its own environment, falling back to the
            // globals; its `redis` adds register_function to the shared one.
            let env = lua.create_table()?;
            let meta = lua.create_table()?;
            meta.raw_set("__index", lua.globals())?;
            env.set_metatable(Some(meta));
            let redis = lua.create_table()?;
            let rmeta = lua.create_table()?;
            rmeta.raw_set("__index", lua.globals().raw_get::<Table>("redis")?)?;
            redis.set_metatable(Some(rmeta));
            redis.raw_set("register_function", register)?;
            env.raw_set("redis", redis.clone())?;
            // Skip the shebang line but keep line numbers right.
            let mut src = b"\n".to_vec();
            src.extend_from_slice(&code[body_start.min(code.len())..]);
            let chunk = lua
                .load(&src[..])
                .set_name("@user_function")
                .set_environment(env)
                .into_function()?;
            let r = chunk.call::<()>(());
            // After loading, register_function only errors (redis).
            let late = lua.create_function(|_, ()| -> mlua::Result<()> {
                Err(mlua::Error::runtime(
                    "redis.register_function can only be called on FUNCTION LOAD command",
                ))
            })?;
            redis.raw_set("register_function", late)?;
            r
        });
        if let Err(e) = result {
            let text = reg_error.unwrap_or_else(|| lua_error_text(&e));
            return Err(Frame::Error(format!(
                "ERR Error registering functions: {text}"
            )));
        }
        let mut out = Vec::new();
        for (name, desc, flags, func) in defs {
            let key = self
                .lua
                .create_registry_value(func)
                .map_err(|e| Frame::Error(format!("ERR {e}")))?;
            out.push(FunctionDef {
                name,
                desc,
                flags,
                func: key,
            });
        }
        Ok(out)
    }

    fn remove_library(&mut self, lib: &str) -> bool {
        let Some(old) = self.libraries.remove(lib) else {
            return false;
        };
        for f in old.functions {
            self.functions.remove(&f.name);
            let _ = self.lua.remove_registry_value(f.func);
        }
        true
    }

    pub fn delete_library(&mut self, name: &[u8]) -> Result<(), Frame> {
        if self.remove_library(&String::from_utf8_lossy(name)) {
            Ok(())
        } else {
            Err(Frame::error("ERR Library not found"))
        }
    }

    pub fn flush_functions(&mut self) {
        let names: Vec<String> = self.libraries.keys().cloned().collect();
        for n in names {
            self.remove_library(&n);
        }
    }

    /// Reloads this engine's libraries into `other` (SCRIPT FLUSH keeps them).
    pub fn move_functions_to(&self, other: &mut Engine) {
        for lib in self.libraries.values() {
            let _ = other.load_library(&lib.code, true);
        }
    }

    /// FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern]
    pub fn list(&self, args: &[Bytes]) -> Frame {
        let mut withcode = false;
        let mut pattern: Option<Bytes> = None;
        let mut i = 0;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"withcode") && !withcode {
                withcode = true;
                i += 1;
            } else if args[i].eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
                let Some(p) = args.get(i + 1) else {
                    return Frame::error("ERR library name argument was not given");
                };
                pattern = Some(p.clone());
                i += 2;
            } else {
                return Frame::Error(format!(
                    "ERR Unknown argument {}",
                    String::from_utf8_lossy(&args[i])
                ));
            }
        }
        let kv = |k: &str, v: Frame| (Frame::bulk_str(k), v);
        let mut out = Vec::new();
        for (name, lib) in &self.libraries {
            if let Some(p) = &pattern {
                if !crate::glob::glob_match(p, name.as_bytes(), true) {
                    continue;
                }
            }
            let funcs = lib
                .functions
                .iter()
                .map(|f| {
                    Frame::Map(vec![
                        kv("name", Frame::bulk_str(&f.name)),
                        kv(
                            "description",
                            f.desc.as_deref().map_or(Frame::Null, Frame::bulk_str),
                        ),
                        kv(
                            "flags",
                            Frame::Set(
                                f.flags
                                    .names()
                                    .iter()
                                    .map(|n| Frame::Simple((*n).to_string()))
                                    .collect(),
                            ),
                        ),
                    ])
                })
                .collect();
            let mut m = vec![
                kv("library_name", Frame::bulk_str(name)),
                kv("engine", Frame::bulk_str("LUA")),
                kv("functions", Frame::Array(funcs)),
            ];
            if withcode {
                m.push(kv("library_code", Frame::Bulk(lib.code.clone())));
            }
            out.push(Frame::Map(m));
        }
        Frame::Array(out)
    }

    /// FUNCTION STATS
    pub fn stats(&self) -> Frame {
        let kv = |k: &str, v: Frame| (Frame::bulk_str(k), v);
        Frame::Map(vec![
            kv("running_script", Frame::Null),
            kv(
                "engines",
                Frame::Map(vec![kv(
                    "LUA",
                    Frame::Map(vec![
                        kv(
                            "libraries_count",
                            Frame::Integer(self.libraries.len() as i64),
                        ),
                        kv(
                            "functions_count",
                            Frame::Integer(self.functions.len() as i64),
                        ),
                    ]),
                )]),
            ),
        ])
    }

    /// FUNCTION DUMP: redis's payload (one `RDB_OPCODE_FUNCTION2` string per
    /// library, then the RDB version and a CRC64), strings stored plain.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for lib in self.libraries.values() {
            out.push(RDB_OPCODE_FUNCTION2);
            rdb_save_len(&mut out, lib.code.len() as u64);
            out.extend_from_slice(&lib.code);
        }
        out.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
    pub fn restore(&mut self, payload: &[u8], policy: &[u8]) -> Result<(), Frame> {
        let bad = || Frame::error("ERR payload version or checksum are wrong");
        if payload.len() < 10 {
            return Err(bad());
        }
        let (body, footer) = payload.split_at(payload.len() - 10);
        let version = u16::from_le_bytes([footer[0], footer[1]]);
        let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| bad())?);
        if version > RDB_VERSION || crc64(&payload[..payload.len() - 8]) != crc {
            return Err(bad());
        }
        let mut codes = Vec::new();
        let mut rest = body;
        while let Some((&op, tail)) = rest.split_first() {
            if op != RDB_OPCODE_FUNCTION2 {
                return Err(Frame::error("ERR given type is not a function"));
            }
            let (len, tail) = rdb_load_len(tail).ok_or_else(bad)?;
            let len = usize::try_from(len).map_err(|_| bad())?;
            if tail.len() < len {
                return Err(bad());
            }
            codes.push(Bytes::copy_from_slice(&tail[..len]));
            rest = &tail[len..];
        }
        match policy {
            b"flush" => self.flush_functions(),
            b"append" => {
                for code in &codes {
                    let (lib, _) = parse_library_shebang(code)?;
                    if self.libraries.contains_key(&lib) {
                        return Err(Frame::Error(format!("ERR Library {lib} already exists")));
                    }
                }
            }
            _ => {}
        }
        for code in codes {
            self.load_library(&code, true)?;
        }
        Ok(())
    }
}

const RDB_OPCODE_FUNCTION2: u8 = 245;
const RDB_VERSION: u16 = 10;

/// RDB length encoding (6, 14, 32 or 64 bits).
fn rdb_save_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

fn rdb_load_len(b: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = b.split_first()?;
    match first >> 6 {
        0 => Some((u64::from(first & 0x3f), rest)),
        1 => {
            let (&second, rest) = rest.split_first()?;
            Some(((u64::from(first & 0x3f) << 8) | u64::from(second), rest))
        }
        2 if first == 0x80 => {
            let bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            Some((u64::from(u32::from_be_bytes(bytes)), &rest[4..]))
        }
        2 if first == 0x81 => {
            let bytes: [u8; 8] = rest.get(..8)?.try_into().ok()?;
            Some((u64::from_be_bytes(bytes), &rest[8..]))
        }
        // 3: an encoded (integer or LZF) string: not produced by DUMP here.
        _ => None,
    }
}

/// redis's CRC64 (Jones polynomial, reflected), as in DUMP payloads.
fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // reflected 0xad93d23594c935a9
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `#!<engine> name=<lib>` (redis `functionExtractLibMetaData`).
fn parse_library_shebang(code: &[u8]) -> Result<(String, String), Frame> {
    if !code.starts_with(b"#!") {
        return Err(Frame::error("ERR Missing library metadata"));
    }
    let end = code
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| Frame::error("ERR Invalid library metadata"))?;
    let line = String::from_utf8_lossy(&code[2..end]);
    let parts = crate::config::split_args(&line).unwrap_or_default();
    let Some(engine) = parts.first() else {
        return Err(Frame::error("ERR Invalid library metadata"));
    };
    let mut name = None;
    for p in &parts[1..] {
        match p.strip_prefix("name=") {
            Some(n) if name.is_none() => name = Some(n.to_string()),
            Some(_) => {
                return Err(Frame::error(
                    "ERR Invalid metadata value, name argument was given multiple times",
                ))
            }
            None => {
                return Err(Frame::Error(format!(
                    "ERR Invalid metadata value given: {p}"
                )))
            }
        }
    }
    let name = name.ok_or_else(|| Frame::error("ERR Library name was not given"))?;
    Ok((name, engine.clone()))
}

/// `register_function(name, callback)` or `register_function{function_name=,
/// callback=, flags=, description=}`.
fn read_register_args(
    args: MultiValue,
) -> Result<(String, Option<String>, ScriptFlags, Function), String> {
    let args: Vec<Value> = args.into_iter().collect();
    match args.as_slice() {
        [Value::Table(t)] => {
            let (mut name, mut desc, mut cb, mut flags) = (None, None, None, ScriptFlags::default());
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let Value::String(k) = k else {
                    return Err("named argument key given to redis.register_function is not a string".into());
                };
                match k.to_string_lossy().to_ascii_lowercase().as_str() {
                    "function_name" => match v {
                        Value::String(s) => name = Some(s.to_string_lossy().to_string()),
                        _ => return Err("function_name argument given to redis.register_function must be a string".into()),
                    },
                    "description" => match v {
                        Value::String(s) => desc = Some(s.to_string_lossy().to_string()),
                        _ => return Err("description argument given to redis.register_function must be a string".into()),
                    },
                    "callback" => match v {
                        Value::Function(f) => cb = Some(f),
                        _ => return Err("callback argument given to redis.register_function must be a function".into()),
                    },
                    "flags" => {
                        let Value::Table(ft) = v else {
                            return Err("flags argument to redis.register_function must be a table representing function flags".into());
                        };
                        for f in ft.sequence_values::<Value>() {
                            let ok = match f {
                                Ok(Value::String(s)) => flags.set(&s.to_string_lossy()),
                                _ => false,
                            };
                            if !ok {
                                return Err("unknown flag given".into());
                            }
                        }
                    }
                    _ => return Err("unknown argument given to redis.register_function".into()),
                }
            }
            let name = name.ok_or("redis.register_function must get a function name argument")?;
            let cb = cb.ok_or("redis.register_function must get a callback argument")?;
            Ok((name, desc, flags, cb))
        }
        [_] => Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into()),
        [n, f] => {
            let Value::String(n) = n else {
                return Err("first argument to redis.register_function must be a string".into());
            };
            let Value::Function(f) = f else {
                return Err("second argument to redis.register_function must be a function".into());
            };
            Ok((n.to_string_lossy().to_string(), None, ScriptFlags::default(), f.clone()))
        }
        _ => Err("wrong number of arguments to redis.register_function".into()),
    }
}

/// redis.call: runs `__hs_call_impl(...)` (which returns `ok, reply`) and
/// raises the error table when `ok` is false.
unsafe extern "C-unwind" fn redis_call_c(state: *mut mlua::lua_State) -> std::ffi::c_int {
    call_c(state, true)
}

/// redis.pcall: the same, returning the error table instead of raising it.
unsafe extern "C-unwind" fn redis_pcall_c(state: *mut mlua::lua_State) -> std::ffi::c_int {
    call_c(state, false)
}

unsafe fn call_c(state: *mut mlua::lua_State, raise: bool) -> std::ffi::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(state);
    ffi::lua_getfield(state, ffi::LUA_GLOBALSINDEX, c"__hs_call_impl".as_ptr());
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, 2);
    let ok = ffi::lua_toboolean(state, -2) != 0;
    if !ok && raise {
        // Raises the error table at the top of the stack; nothing of ours
        // needs dropping on this frame.
        ffi::lua_error(state);
    }
    1
}

/// The text of a Lua error without mlua's decorations.
fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

fn bytes_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, b) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(&b[..])?)?;
    }
    Ok(t)
}

/// redis `scriptPrepareForRun`: the checks made before a script starts.
fn prepare(ctx: &mut Ctx<'_>, flags: ScriptFlags, ro: bool) -> Result<(), Frame> {
    if flags.compat {
        return Ok(());
    }
    if flags.no_cluster && ctx.host.cluster_enabled() {
        return Err(Frame::error(
            "ERR Can not run script on cluster, 'no-cluster' flag is set.",
        ));
    }
    if !flags.no_writes {
        if ctx.host.is_replica() && !ctx.client.is_master_link {
            return Err(Frame::error(
                "READONLY Can not run script with write flag on readonly replica",
            ));
        }
        if ro {
            return Err(Frame::error(
                "ERR Can not execute a script with write flag using *_ro command.",
            ));
        }
    }
    Ok(())
}

/// `redis.call` / `redis.pcall`: `(true, reply)` or `(false, {err=...})`.
fn redis_call(
    lua: &Lua,
    ctx: &mut Ctx<'_>,
    run: &mut Run,
    args: MultiValue,
) -> mlua::Result<(bool, Value)> {
    let fail = |lua: &Lua, text: &str| -> mlua::Result<(bool, Value)> {
        Ok((false, Value::Table(error_table(lua, text)?)))
    };
    if args.is_empty() {
        return fail(
            lua,
            "ERR Please specify at least one argument for this redis lib call",
        );
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args.iter() {
        match a {
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(_) | Value::Number(_) => match lua.coerce_string(a.clone())? {
                Some(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
                None => {
                    return fail(
                        lua,
                        "ERR Lua redis lib command arguments must be strings or integers",
                    )
                }
            },
            _ => {
                return fail(
                    lua,
                    "ERR Lua redis lib command arguments must be strings or integers",
                )
            }
        }
    }
    let reply = match check_and_call(ctx, run, argv) {
        Ok(f) => f,
        Err(text) => return fail(lua, &text),
    };
    match reply {
        Frame::Error(e) => fail(lua, &e),
        f => Ok((true, frame_to_lua(lua, f)?)),
    }
}

/// redis `scriptCall`: the checks, then the command.
fn check_and_call(ctx: &mut Ctx<'_>, run: &mut Run, argv: Vec<Bytes>) -> Result<Frame, String> {
    let spec = match table::lookup(&argv) {
        Lookup::Found(spec) => spec,
        _ => return Err("ERR Unknown Redis command called from script".into()),
    };
    if !spec.arity_ok(argv.len()) {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    if spec.flags & flag::NOSCRIPT != 0 {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    let writes = spec.flags & (flag::WRITE | flag::MAY_REPLICATE) != 0;
    if run.read_only && writes {
        return Err("ERR Write commands are not allowed from read-only scripts.".into());
    }
    let obey = ctx.client.is_master_link;
    if spec.is_write() && ctx.host.is_replica() && !obey {
        return Err(crate::commands::err::READONLY_REPLICA.into());
    }
    if ctx.host.cluster_enabled() && !obey && spec.has_keys() {
        let single = [(spec, &argv[..])];
        // SPUBLISH routes by its shard channel (redis `getNodeByQuery`).
        let pubsubshard = spec.id == Id::Spublish;
        let q = route::Query {
            commands: &single,
            command_flags: spec.flags,
            is_write: spec.is_write(),
            asking: ctx.client.asking,
            readonly: ctx.client.readonly || pubsubshard,
            pubsubshard,
            migrate: false,
        };
        if let Err(r) = route::check(&q, &*ctx.host, ctx.db, ctx.expire_now) {
            return Err(match r {
                route::Redirect::DownReadOnly => "ERR Script attempted to execute a write command while the cluster is down and readonly".into(),
                route::Redirect::Down => "ERR Script attempted to execute a command while the cluster is down".into(),
                _ => "ERR Script attempted to access a non local key in a cluster node".into(),
            });
        }
        let mut first = None;
        spec.for_each_key_in(&argv, argv.len(), |pos, _| {
            if first.is_none() {
                first = argv.get(pos).map(|k| key_slot(k));
            }
        });
        if let (Some(slot), false) = (first, run.allow_cross_slot) {
            match run.slot {
                None => run.slot = Some(slot),
                Some(s) if s != slot => {
                    return Err(
                        "ERR Script attempted to access keys that do not hash to the same slot"
                            .into(),
                    )
                }
                _ => {}
            }
        }
    }
    let saved = ctx.spec;
    ctx.spec = spec;
    let reply = crate::commands::call(ctx, argv);
    ctx.spec = saved;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        // redis's crc64 test vector: crc64(0, "123456789") = 0xe9c6d914c4b8d9ca.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn shebang_flags() {
        assert!(ScriptFlags::from_shebang(b"return 1").unwrap().compat);
        let f = ScriptFlags::from_shebang(b"#!lua flags=no-writes,no-cluster\nreturn 1").unwrap();
        assert!(f.no_writes && f.no_cluster && !f.compat);
        assert!(ScriptFlags::from_shebang(b"#!lua flags=bogus\n").is_err());
        assert!(ScriptFlags::from_shebang(b"#!py\n").is_err());
    }
}
