//! The command table: name, arity, flags, key positions, ACL categories,
//! tips, key specs and subcommands of every command this node knows, as
//! redis 7.0.15 declares them (checked against `COMMAND INFO` of the real
//! server). It drives arity checks, key extraction for cluster routing, MULTI
//! queuing rules and the COMMAND replies.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::resp::Frame;

/// Command flags (redis `CMD_*`), in the order COMMAND prints them.
pub mod flag {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const SKIP_SLOWLOG: u32 = 1 << 7;
    pub const ASKING: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const NO_ASYNC_LOADING: u32 = 1 << 11;
    pub const NO_MULTI: u32 = 1 << 12;
    pub const MOVABLEKEYS: u32 = 1 << 13;
    pub const ALLOW_BUSY: u32 = 1 << 14;
    pub const PUBSUB: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const SKIP_MONITOR: u32 = 1 << 17;
    pub const MAY_REPLICATE: u32 = 1 << 18;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 19;

    pub(super) const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        // MAY_REPLICATE is hidden from COMMAND, as in redis.
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// ACL categories, in redis's order (`ACLCommandCategories`).
pub mod acl {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const STRING: u32 = 1 << 5;
    pub const ADMIN: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    pub const SLOW: u32 = 1 << 8;
    pub const DANGEROUS: u32 = 1 << 9;
    pub const CONNECTION: u32 = 1 << 10;
    pub const TRANSACTION: u32 = 1 << 11;
    pub const SORTEDSET: u32 = 1 << 12;
    pub const HASH: u32 = 1 << 13;
    pub const BITMAP: u32 = 1 << 14;
    pub const HYPERLOGLOG: u32 = 1 << 15;
    pub const GEO: u32 = 1 << 16;
    pub const STREAM: u32 = 1 << 17;
    pub const PUBSUB: u32 = 1 << 18;
    pub const BLOCKING: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;

    pub(super) const NAMES: &[(u32, &str)] = &[
        (KEYSPACE, "@keyspace"),
        (READ, "@read"),
        (WRITE, "@write"),
        (SET, "@set"),
        (SORTEDSET, "@sortedset"),
        (LIST, "@list"),
        (HASH, "@hash"),
        (STRING, "@string"),
        (BITMAP, "@bitmap"),
        (HYPERLOGLOG, "@hyperloglog"),
        (GEO, "@geo"),
        (STREAM, "@stream"),
        (PUBSUB, "@pubsub"),
        (ADMIN, "@admin"),
        (FAST, "@fast"),
        (SLOW, "@slow"),
        (BLOCKING, "@blocking"),
        (DANGEROUS, "@dangerous"),
        (CONNECTION, "@connection"),
        (TRANSACTION, "@transaction"),
        (SCRIPTING, "@scripting"),
    ];
}

/// Key-spec flags (redis `CMD_KEY_*`), in the order COMMAND prints them.
pub mod key {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const VARIABLE_FLAGS: u32 = 1 << 8;
    pub const NOT_KEY: u32 = 1 << 9;
    pub const INCOMPLETE: u32 = 1 << 10;

    pub(super) const NAMES: &[(u32, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

/// What runs a command. `Delegate` goes to [`super::Host::server_command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    // Hashes, sorted sets, streams, keyspace, scripting, DEBUG (issue 17).,
    Append,
    Asking,
    Auth,
    Client,
    ClientGetname,
    ClientGetredir,
    ClientHelp,
    ClientId,
    ClientInfo,
    ClientKill,
    ClientList,
    ClientNoEvict,
    ClientPause,
    ClientReply,
    ClientSetinfo,
    ClientSetname,
    ClientTrackinginfo,
    ClientUnblock,
    ClientUnpause,
    Command,
    CommandCount,
    CommandDocs,
    CommandGetkeys,
    CommandGetkeysandflags,
    CommandHelp,
    CommandInfo,
    CommandList,
    Dbsize,
    Debug,
    Decr,
    Decrby,
    Del,
    Delegate,
    Discard,
    Dump,
    Echo,
    Exec,
    Exists,
    Expire,
    Expireat,
    Flushall,
    Flushdb,
    Get,
    Getdel,
    Getset,
    Hello,
    Incr,
    Incrby,
    Llen,
    Lpop,
    Lpush,
    Lrange,
    Mget,
    Mset,
    Msetnx,
    Multi,
    Persist,
    Pexpire,
    Pexpireat,
    Ping,
    Psetex,
    Psubscribe,
    Pttl,
    Publish,
    Pubsub,
    PubsubChannels,
    PubsubHelp,
    PubsubNumpat,
    PubsubNumsub,
    PubsubShardchannels,
    PubsubShardnumsub,
    Punsubscribe,
    Quit,
    Readonly,
    Readwrite,
    Reset,
    Rpop,
    Rpush,
    Sadd,
    Scard,
    Select,
    Set,
    Setex,
    Setnx,
    Sismember,
    Smembers,
    Spublish,
    Srem,
    Ssubscribe,
    Strlen,
    Subscribe,
    Sunsubscribe,
    Time,
    Ttl,
    Type,
    Unlink,
    Unsubscribe,
    Unwatch,
    Watch,
    Eval,
    EvalRo,
    Evalsha,
    EvalshaRo,
    Fcall,
    FcallRo,
    Function,
    FunctionDelete,
    FunctionDump,
    FunctionFlush,
    FunctionHelp,
    FunctionKill,
    FunctionList,
    FunctionLoad,
    FunctionRestore,
    FunctionStats,
    Hdel,
    Hexists,
    Hget,
    Hgetall,
    Hincrby,
    Hincrbyfloat,
    Hkeys,
    Hlen,
    Hmget,
    Hmset,
    Hrandfield,
    Hscan,
    Hset,
    Hsetnx,
    Hstrlen,
    Hvals,
    Incrbyfloat,
    Keys,
    Migrate,
    Object,
    ObjectEncoding,
    ObjectFreq,
    ObjectHelp,
    ObjectIdletime,
    ObjectRefcount,
    Randomkey,
    Rename,
    Renamenx,
    Restore,
    RestoreAsking,
    Scan,
    Script,
    ScriptDebug,
    ScriptExists,
    ScriptFlush,
    ScriptHelp,
    ScriptKill,
    ScriptLoad,
    Shutdown,
    Touch,
    Xadd,
    Xdel,
    Xlen,
    Xrange,
    Xread,
    Xrevrange,
    Xsetid,
    Xtrim,
    Zadd,
    Zcard,
    Zcount,
    Zincrby,
    Zlexcount,
    Zmscore,
    Zpopmax,
    Zpopmin,
    Zrandmember,
    Zrange,
    Zrangebylex,
    Zrangebyscore,
    Zrank,
    Zrem,
    Zremrangebylex,
    Zremrangebyrank,
    Zremrangebyscore,
    Zrevrange,
    Zrevrangebylex,
    Zrevrangebyscore,
    Zrevrank,
    Zscan,
    Zscore,
}

/// Where a key spec starts looking (redis `begin_search`).
#[derive(Debug)]
pub enum BeginSearch {
    /// At this argument.
    Index(i32),
    /// After the first `keyword` found scanning from `startfrom` (negative:
    /// from the end, backwards).
    Keyword {
        keyword: &'static str,
        startfrom: i32,
    },
}

/// Which arguments are keys from there (redis `find_keys`).
#[derive(Debug)]
pub enum FindKeys {
    /// Up to `lastkey` (relative when `>= 0`, else from the end; with `limit`,
    /// a fraction of what remains), every `keystep`.
    Range {
        lastkey: i32,
        keystep: i32,
        limit: i32,
    },
    /// The count is the argument at `keynumidx`; keys start `firstkey` after it.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        keystep: i32,
    },
}

/// One key spec.
#[derive(Debug)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    pub flags: u32,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// One command or subcommand.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lowercase full name (`get`, `client|setname`).
    pub name: &'static str,
    /// `N`: exactly N arguments (name included); `-N`: at least N.
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub acl: u32,
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub subcommands: &'static [CommandSpec],
    pub id: Id,
}

#[allow(clippy::too_many_arguments)]
const fn c(
    name: &'static str,
    arity: i32,
    flags: u32,
    first_key: i32,
    last_key: i32,
    step: i32,
    acl: u32,
    id: Id,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key,
        last_key,
        step,
        acl,
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        id,
    }
}

/// The common spec: keys from argument 1, `lastkey`/`keystep` as in `range`.
const fn ks(flags: u32, lastkey: i32, keystep: i32) -> KeySpec {
    ksb(flags, 1).range(lastkey, keystep, 0)
}

/// A spec beginning at argument `index` (finish it with `range` or `keynum`).
const fn ksb(flags: u32, index: i32) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: BeginSearch::Index(index),
        find: FindKeys::Range {
            lastkey: 0,
            keystep: 1,
            limit: 0,
        },
    }
}

/// A spec beginning after `keyword`.
const fn ksw(flags: u32, keyword: &'static str, startfrom: i32) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: BeginSearch::Keyword { keyword, startfrom },
        find: FindKeys::Range {
            lastkey: 0,
            keystep: 1,
            limit: 0,
        },
    }
}

impl KeySpec {
    const fn not_key(lastkey: i32) -> KeySpec {
        ks(key::NOT_KEY, lastkey, 1)
    }

    const fn notes(mut self, notes: &'static str) -> KeySpec {
        self.notes = Some(notes);
        self
    }

    const fn range(mut self, lastkey: i32, keystep: i32, limit: i32) -> KeySpec {
        self.find = FindKeys::Range {
            lastkey,
            keystep,
            limit,
        };
        self
    }

    const fn keynum(mut self, keynumidx: i32, firstkey: i32, keystep: i32) -> KeySpec {
        self.find = FindKeys::Keynum {
            keynumidx,
            firstkey,
            keystep,
        };
        self
    }
}

impl CommandSpec {
    const fn tips(mut self, tips: &'static [&'static str]) -> CommandSpec {
        self.tips = tips;
        self
    }

    const fn keys(mut self, key_specs: &'static [KeySpec]) -> CommandSpec {
        self.key_specs = key_specs;
        self
    }

    const fn subs(mut self, subcommands: &'static [CommandSpec]) -> CommandSpec {
        self.subcommands = subcommands;
        self
    }

    pub fn is_write(&self) -> bool {
        self.flags & flag::WRITE != 0
    }

    /// A write, or a command that may replicate (held by CLIENT PAUSE WRITE).
    pub fn may_replicate(&self) -> bool {
        self.flags & (flag::WRITE | flag::MAY_REPLICATE) != 0
    }

    /// This spec's index among all specs (top-level and subcommands), for
    /// per-command counters (INFO commandstats): found from where the spec
    /// sits in the static table, without a hash lookup. `usize::MAX` for a
    /// spec that is not in the table.
    pub fn stat_slot(&self) -> usize {
        let at = self as *const CommandSpec as usize;
        let size = std::mem::size_of::<CommandSpec>();
        for &(base, len, first) in spec_ranges() {
            if at >= base && at < base + len * size {
                return first + (at - base) / size;
            }
        }
        usize::MAX
    }

    /// Cluster routing applies to commands that declare keys (redis checks
    /// `key_specs_num`, so WATCH is routed too).
    pub fn has_keys(&self) -> bool {
        !self.key_specs.is_empty()
    }

    /// The top-level name (`client` for `client|setname`).
    pub fn top_name(&self) -> &'static str {
        match self.name.split_once('|') {
            Some((top, _)) => top,
            None => self.name,
        }
    }

    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity > 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Positions of the key arguments of a request (redis
    /// `getKeysUsingKeySpecs`), with each spec's flags.
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        self.for_each_key_in(args, args.len(), |pos, flags| out.push((pos, flags)));
        out
    }

    /// Calls `f(position, key_flags)` for every key argument, in order
    /// (redis `getKeysUsingKeySpecs`). A malformed request (a key count out of
    /// range, too few arguments) yields no keys: the command reports it.
    pub fn for_each_key(&self, argc: usize, f: impl FnMut(usize, u32)) {
        self.for_each_key_in(&[], argc, f)
    }

    /// [`CommandSpec::for_each_key`] for specs that read the arguments
    /// (keywords, key counts): `args` is the whole request.
    pub fn for_each_key_in(&self, args: &[Bytes], argc: usize, mut f: impl FnMut(usize, u32)) {
        if self.id == Id::Migrate && !args.is_empty() {
            // An incomplete spec: redis falls back to `migrateGetKeys`.
            let flags = self.key_specs.first().map_or(0, |s| s.flags);
            for pos in super::migrate::key_positions(args) {
                f(pos, flags);
            }
            return;
        }
        let argc = argc as i64;
        for spec in self.key_specs {
            let first = match spec.begin {
                BeginSearch::Index(i) => i64::from(i),
                BeginSearch::Keyword { keyword, startfrom } => {
                    let start = i64::from(startfrom);
                    let (mut i, end, step) = if start > 0 {
                        (start, argc - 1, 1)
                    } else {
                        (argc + start, 1, -1)
                    };
                    let mut found = None;
                    while i >= 1 && i < argc && (step > 0 && i <= end || step < 0 && i >= end) {
                        if args
                            .get(i as usize)
                            .is_some_and(|a| a.eq_ignore_ascii_case(keyword.as_bytes()))
                        {
                            found = Some(i + 1);
                            break;
                        }
                        i += step;
                    }
                    match found {
                        Some(i) => i,
                        None => continue,
                    }
                }
            };
            let (first, last, step) = match spec.find {
                FindKeys::Range {
                    lastkey,
                    keystep,
                    limit,
                } => {
                    let last = if lastkey >= 0 {
                        first + i64::from(lastkey)
                    } else if limit <= 1 {
                        argc + i64::from(lastkey)
                    } else {
                        first + ((argc - first) / i64::from(limit) + i64::from(lastkey))
                    };
                    (first, last, i64::from(keystep.max(1)))
                }
                FindKeys::Keynum {
                    keynumidx,
                    firstkey,
                    keystep,
                } => {
                    let idx = first + i64::from(keynumidx);
                    let Some(n) = args
                        .get(idx as usize)
                        .and_then(|a| crate::resp::string2ll(a))
                    else {
                        continue;
                    };
                    if n <= 0 {
                        continue;
                    }
                    let step = i64::from(keystep.max(1));
                    let first = first + i64::from(firstkey);
                    // A huge count is a malformed request, not an overflow.
                    let Some(last) = (n - 1).checked_mul(step).and_then(|x| x.checked_add(first))
                    else {
                        continue;
                    };
                    (first, last, step)
                }
            };
            // Out of bounds means a malformed request: no keys, and the
            // command reports the error itself.
            if last >= argc || last < first || first >= argc || first < 1 {
                continue;
            }
            let mut i = first;
            while i <= last {
                f(i as usize, spec.flags);
                i += step;
            }
        }
    }

    /// This command's entry in COMMAND / COMMAND INFO.
    pub fn info_frame(&self) -> Frame {
        let subcommands = if self.subcommands.is_empty() {
            Frame::Set(Vec::new())
        } else {
            Frame::Array(
                self.subcommands
                    .iter()
                    .map(CommandSpec::info_frame)
                    .collect(),
            )
        };
        Frame::Array(vec![
            Frame::bulk_str(self.name),
            Frame::Integer(i64::from(self.arity)),
            flag_set(self.flags, flag::NAMES),
            Frame::Integer(i64::from(self.first_key)),
            Frame::Integer(i64::from(self.last_key)),
            Frame::Integer(i64::from(self.step)),
            flag_set(self.acl, acl::NAMES),
            Frame::Set(self.tips.iter().map(|t| Frame::bulk_str(t)).collect()),
            Frame::Set(self.key_specs.iter().map(KeySpec::frame).collect()),
            subcommands,
        ])
    }
}

impl KeySpec {
    fn frame(&self) -> Frame {
        let kv = |k: &str, v: Frame| (Frame::bulk_str(k), v);
        let mut map = Vec::with_capacity(4);
        if let Some(notes) = self.notes {
            map.push(kv("notes", Frame::bulk_str(notes)));
        }
        map.push(kv("flags", flag_set(self.flags, key::NAMES)));
        let begin = match self.begin {
            BeginSearch::Index(i) => Frame::Map(vec![
                kv("type", Frame::bulk_str("index")),
                kv(
                    "spec",
                    Frame::Map(vec![kv("index", Frame::Integer(i64::from(i)))]),
                ),
            ]),
            BeginSearch::Keyword { keyword, startfrom } => Frame::Map(vec![
                kv("type", Frame::bulk_str("keyword")),
                kv(
                    "spec",
                    Frame::Map(vec![
                        kv("keyword", Frame::bulk_str(keyword)),
                        kv("startfrom", Frame::Integer(i64::from(startfrom))),
                    ]),
                ),
            ]),
        };
        map.push(kv("begin_search", begin));
        let find = match self.find {
            FindKeys::Range {
                lastkey,
                keystep,
                limit,
            } => Frame::Map(vec![
                kv("type", Frame::bulk_str("range")),
                kv(
                    "spec",
                    Frame::Map(vec![
                        kv("lastkey", Frame::Integer(i64::from(lastkey))),
                        kv("keystep", Frame::Integer(i64::from(keystep))),
                        kv("limit", Frame::Integer(i64::from(limit))),
                    ]),
                ),
            ]),
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => Frame::Map(vec![
                kv("type", Frame::bulk_str("keynum")),
                kv(
                    "spec",
                    Frame::Map(vec![
                        kv("keynumidx", Frame::Integer(i64::from(keynumidx))),
                        kv("firstkey", Frame::Integer(i64::from(firstkey))),
                        kv("keystep", Frame::Integer(i64::from(keystep))),
                    ]),
                ),
            ]),
        };
        map.push(kv("find_keys", find));
        Frame::Map(map)
    }

    /// The key flags as COMMAND GETKEYSANDFLAGS prints them.
    pub fn flags_frame(flags: u32) -> Frame {
        flag_set(flags, key::NAMES)
    }
}

fn flag_set(bits: u32, names: &[(u32, &'static str)]) -> Frame {
    Frame::Set(
        names
            .iter()
            .filter(|(b, _)| bits & b != 0)
            .map(|(_, n)| Frame::Simple((*n).to_string()))
            .collect(),
    )
}

/// Every top-level command.
pub fn commands() -> &'static [CommandSpec] {
    COMMANDS
}

/// Calls `f` on every spec, each top-level command followed by its subcommands.
pub fn for_each_spec(f: &mut dyn FnMut(&'static CommandSpec)) {
    for spec in COMMANDS {
        f(spec);
        for sub in spec.subcommands {
            f(sub);
        }
    }
}

/// (address, length, index of the first) of each static array of specs: the
/// top-level table, then each container's subcommands.
fn spec_ranges() -> &'static [(usize, usize, usize)] {
    static RANGES: OnceLock<Vec<(usize, usize, usize)>> = OnceLock::new();
    RANGES.get_or_init(|| {
        let mut out = vec![(COMMANDS.as_ptr() as usize, COMMANDS.len(), 0)];
        let mut next = COMMANDS.len();
        for spec in COMMANDS.iter().filter(|s| !s.subcommands.is_empty()) {
            out.push((
                spec.subcommands.as_ptr() as usize,
                spec.subcommands.len(),
                next,
            ));
            next += spec.subcommands.len();
        }
        out
    })
}

/// Number of specs, top-level and subcommands.
pub fn spec_count() -> usize {
    spec_ranges().iter().map(|r| r.1).sum()
}

/// The longest command name we know; longer names are unknown without a lookup.
const MAX_NAME: usize = 32;

/// Top-level commands by (length, first letter): a bucket holds a few names
/// at most, compared case-insensitively in place. (A hash map needed the
/// name lowercased into a buffer and hashed first: 180 instructions for
/// `GET`, and this runs for every request.)
struct Index {
    buckets: Vec<Vec<&'static CommandSpec>>,
}

impl Index {
    fn bucket(name: &[u8]) -> usize {
        let first = name.first().map_or(0, |b| b.to_ascii_lowercase() & 31);
        name.len() * 32 + usize::from(first)
    }
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut buckets = vec![Vec::new(); (MAX_NAME + 1) * 32];
        for c in COMMANDS {
            if let Some(b) = buckets.get_mut(Index::bucket(c.name.as_bytes())) {
                b.push(c);
            }
        }
        Index { buckets }
    })
}

/// A top-level command by name, case-insensitively.
pub fn lookup_name(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > MAX_NAME {
        return None;
    }
    index()
        .buckets
        .get(Index::bucket(name))?
        .iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
        .copied()
}

/// A subcommand of `parent` by name, case-insensitively.
pub fn lookup_sub(parent: &'static CommandSpec, sub: &[u8]) -> Option<&'static CommandSpec> {
    parent
        .subcommands
        .iter()
        .find(|s| match s.name.split_once('|') {
            Some((_, n)) => n.as_bytes().eq_ignore_ascii_case(sub),
            None => false,
        })
}

/// The outcome of resolving a request's command (redis `lookupCommand`).
#[derive(Debug)]
pub enum Lookup {
    Found(&'static CommandSpec),
    /// Neither a command nor a container with that subcommand.
    UnknownCommand,
    /// `argv[0]` is a container command but `argv[1]` is not one of its subcommands.
    UnknownSubcommand,
}

/// Resolves the command of a request: a container command with at least one
/// argument resolves to its subcommand.
pub fn lookup(args: &[Bytes]) -> Lookup {
    let Some(name) = args.first() else {
        return Lookup::UnknownCommand;
    };
    let Some(base) = lookup_name(name) else {
        return Lookup::UnknownCommand;
    };
    if base.subcommands.is_empty() || args.len() < 2 {
        return Lookup::Found(base);
    }
    match lookup_sub(base, &args[1]) {
        Some(sub) => Lookup::Found(sub),
        None => Lookup::UnknownSubcommand,
    }
}

/// A command by full name (`get`, `client|setname`), as COMMAND INFO takes it.
pub fn lookup_fullname(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        None => lookup_name(name),
        Some(bar) => {
            let base = lookup_name(&name[..bar])?;
            lookup_sub(base, &name[bar + 1..])
        }
    }
}

// Generated from `COMMAND INFO` of redis-server 7.0.15, keeping only the
// subcommands this node serves (or hands to its host).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    c("ping", -1, flag::FAST, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Ping).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    c("echo", 2, flag::LOADING | flag::STALE | flag::FAST, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Echo),
    c("hello", -1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Hello),
    c("select", 2, flag::LOADING | flag::STALE | flag::FAST, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Select),
    c("quit", -1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Quit),
    c("auth", -2, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Auth),
    c("reset", 1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Reset),
    c("command", -1, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::Command).tips(&["nondeterministic_output_order"]).subs(&[
        c("command|count", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::CommandCount),
        c("command|docs", -2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::CommandDocs).tips(&["nondeterministic_output_order"]),
        c("command|getkeys", -4, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::CommandGetkeys),
        c("command|getkeysandflags", -4, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::CommandGetkeysandflags),
        c("command|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::CommandHelp),
        c("command|info", -2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::CommandInfo).tips(&["nondeterministic_output_order"]),
        c("command|list", -2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::CommandList).tips(&["nondeterministic_output_order"]),
    ]),
    c("client", -2, 0, 0, 0, 0, acl::SLOW, Id::Client).subs(&[
        c("client|getname", 2, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientGetname),
        c("client|getredir", 2, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientGetredir),
        c("client|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientHelp),
        c("client|id", 2, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientId),
        c("client|info", 2, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientInfo).tips(&["nondeterministic_output"]),
        c("client|kill", -3, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS | acl::CONNECTION, Id::ClientKill),
        c("client|list", -2, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS | acl::CONNECTION, Id::ClientList).tips(&["nondeterministic_output"]),
        c("client|no-evict", 3, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS | acl::CONNECTION, Id::ClientNoEvict),
        c("client|pause", -3, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS | acl::CONNECTION, Id::ClientPause),
        c("client|reply", 3, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientReply),
        // Not in 7.0 (added in 7.2): accepted because current client libraries send it on connect.
        c("client|setinfo", 4, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientSetinfo).tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        c("client|setname", 3, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientSetname),
        c("client|trackinginfo", 2, flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::ClientTrackinginfo),
        c("client|unblock", -3, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS | acl::CONNECTION, Id::ClientUnblock),
        c("client|unpause", 2, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS | acl::CONNECTION, Id::ClientUnpause),
    ]),
    // Pub/Sub (commands/pubsub.rs).
    c("subscribe", -2, flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::Subscribe),
    c("unsubscribe", -1, flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::Unsubscribe),
    c("psubscribe", -2, flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::Psubscribe),
    c("punsubscribe", -1, flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::Punsubscribe),
    c("publish", 3, flag::PUBSUB | flag::LOADING | flag::STALE | flag::FAST | flag::MAY_REPLICATE, 0, 0, 0, acl::PUBSUB | acl::FAST, Id::Publish),
    c("pubsub", -2, 0, 0, 0, 0, acl::SLOW, Id::Pubsub).subs(&[
        c("pubsub|channels", -2, flag::PUBSUB | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::PubsubChannels),
        c("pubsub|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW, Id::PubsubHelp),
        c("pubsub|numpat", 2, flag::PUBSUB | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::PubsubNumpat),
        c("pubsub|numsub", -2, flag::PUBSUB | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::PubsubNumsub),
        c("pubsub|shardchannels", -2, flag::PUBSUB | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::PubsubShardchannels),
        c("pubsub|shardnumsub", -2, flag::PUBSUB | flag::LOADING | flag::STALE, 0, 0, 0, acl::PUBSUB | acl::SLOW, Id::PubsubShardnumsub),
    ]),
    c("ssubscribe", -2, flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE, 1, -1, 1, acl::PUBSUB | acl::SLOW, Id::Ssubscribe).keys(&[KeySpec::not_key(-1)]),
    c("sunsubscribe", -1, flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE, 1, -1, 1, acl::PUBSUB | acl::SLOW, Id::Sunsubscribe).keys(&[KeySpec::not_key(-1)]),
    c("spublish", 3, flag::PUBSUB | flag::LOADING | flag::STALE | flag::FAST | flag::MAY_REPLICATE, 1, 1, 1, acl::PUBSUB | acl::FAST, Id::Spublish).keys(&[KeySpec::not_key(0)]),
    c("time", 1, flag::LOADING | flag::STALE | flag::FAST, 0, 0, 0, acl::FAST, Id::Time).tips(&["nondeterministic_output"]),
    c("dbsize", 1, flag::READONLY | flag::FAST, 0, 0, 0, acl::KEYSPACE | acl::READ | acl::FAST, Id::Dbsize).tips(&["request_policy:all_shards", "response_policy:agg_sum"]),
    c("flushall", -1, flag::WRITE, 0, 0, 0, acl::KEYSPACE | acl::WRITE | acl::SLOW | acl::DANGEROUS, Id::Flushall).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    c("flushdb", -1, flag::WRITE, 0, 0, 0, acl::KEYSPACE | acl::WRITE | acl::SLOW | acl::DANGEROUS, Id::Flushdb).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    c("type", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::READ | acl::FAST, Id::Type).keys(&[ks(key::RO, 0, 1)]),
    c("exists", -2, flag::READONLY | flag::FAST, 1, -1, 1, acl::KEYSPACE | acl::READ | acl::FAST, Id::Exists).tips(&["request_policy:multi_shard", "response_policy:agg_sum"]).keys(&[ks(key::RO, -1, 1)]),
    c("del", -2, flag::WRITE, 1, -1, 1, acl::KEYSPACE | acl::WRITE | acl::SLOW, Id::Del).tips(&["request_policy:multi_shard", "response_policy:agg_sum"]).keys(&[ks(key::RM | key::DELETE, -1, 1)]),
    c("unlink", -2, flag::WRITE | flag::FAST, 1, -1, 1, acl::KEYSPACE | acl::WRITE | acl::FAST, Id::Unlink).tips(&["request_policy:multi_shard", "response_policy:agg_sum"]).keys(&[ks(key::RM | key::DELETE, -1, 1)]),
    c("get", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::STRING | acl::FAST, Id::Get).keys(&[ks(key::RO | key::ACCESS, 0, 1)]),
    c("set", -3, flag::WRITE | flag::DENYOOM, 1, 1, 1, acl::WRITE | acl::STRING | acl::SLOW, Id::Set).keys(&[ks(key::RW | key::ACCESS | key::UPDATE | key::VARIABLE_FLAGS, 0, 1).notes("RW and ACCESS due to the optional `GET` argument")]),
    c("setnx", 3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Setnx).keys(&[ks(key::OW | key::INSERT, 0, 1)]),
    c("setex", 4, flag::WRITE | flag::DENYOOM, 1, 1, 1, acl::WRITE | acl::STRING | acl::SLOW, Id::Setex).keys(&[ks(key::OW | key::UPDATE, 0, 1)]),
    c("psetex", 4, flag::WRITE | flag::DENYOOM, 1, 1, 1, acl::WRITE | acl::STRING | acl::SLOW, Id::Psetex).keys(&[ks(key::OW | key::UPDATE, 0, 1)]),
    c("getset", 3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Getset).keys(&[ks(key::RW | key::ACCESS | key::UPDATE, 0, 1)]),
    c("getdel", 2, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Getdel).keys(&[ks(key::RW | key::ACCESS | key::DELETE, 0, 1)]),
    c("incr", 2, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Incr).keys(&[ks(key::RW | key::ACCESS | key::UPDATE, 0, 1)]),
    c("incrby", 3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Incrby).keys(&[ks(key::RW | key::ACCESS | key::UPDATE, 0, 1)]),
    c("decr", 2, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Decr).keys(&[ks(key::RW | key::ACCESS | key::UPDATE, 0, 1)]),
    c("decrby", 3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Decrby).keys(&[ks(key::RW | key::ACCESS | key::UPDATE, 0, 1)]),
    c("append", 3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Append).keys(&[ks(key::RW | key::INSERT, 0, 1)]),
    c("strlen", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::STRING | acl::FAST, Id::Strlen).keys(&[ks(key::RO, 0, 1)]),
    c("mget", -2, flag::READONLY | flag::FAST, 1, -1, 1, acl::READ | acl::STRING | acl::FAST, Id::Mget).tips(&["request_policy:multi_shard"]).keys(&[ks(key::RO | key::ACCESS, -1, 1)]),
    c("mset", -3, flag::WRITE | flag::DENYOOM, 1, -1, 2, acl::WRITE | acl::STRING | acl::SLOW, Id::Mset).tips(&["request_policy:multi_shard", "response_policy:all_succeeded"]).keys(&[ks(key::OW | key::UPDATE, -1, 2)]),
    c("msetnx", -3, flag::WRITE | flag::DENYOOM, 1, -1, 2, acl::WRITE | acl::STRING | acl::SLOW, Id::Msetnx).tips(&["request_policy:multi_shard", "response_policy:agg_min"]).keys(&[ks(key::OW | key::INSERT, -1, 2)]),
    c("expire", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::WRITE | acl::FAST, Id::Expire).keys(&[ks(key::RW | key::UPDATE, 0, 1)]),
    c("pexpire", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::WRITE | acl::FAST, Id::Pexpire).keys(&[ks(key::RW | key::UPDATE, 0, 1)]),
    c("expireat", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::WRITE | acl::FAST, Id::Expireat).keys(&[ks(key::RW | key::UPDATE, 0, 1)]),
    c("pexpireat", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::WRITE | acl::FAST, Id::Pexpireat).keys(&[ks(key::RW | key::UPDATE, 0, 1)]),
    c("ttl", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::READ | acl::FAST, Id::Ttl).tips(&["nondeterministic_output"]).keys(&[ks(key::RO | key::ACCESS, 0, 1)]),
    c("pttl", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::READ | acl::FAST, Id::Pttl).tips(&["nondeterministic_output"]).keys(&[ks(key::RO | key::ACCESS, 0, 1)]),
    c("dump", 2, flag::READONLY, 1, 1, 1, acl::KEYSPACE | acl::READ | acl::SLOW, Id::Dump).tips(&["nondeterministic_output"]).keys(&[ks(key::RO | key::ACCESS, 0, 1)]),
    c("restore", -4, flag::WRITE | flag::DENYOOM, 1, 1, 1, acl::KEYSPACE | acl::WRITE | acl::SLOW | acl::DANGEROUS, Id::Restore).keys(&[ks(key::OW | key::UPDATE, 0, 1)]),
    c("restore-asking", -4, flag::WRITE | flag::DENYOOM | flag::ASKING, 1, 1, 1, acl::KEYSPACE | acl::WRITE | acl::SLOW | acl::DANGEROUS, Id::RestoreAsking).keys(&[ks(key::OW | key::UPDATE, 0, 1)]),
    c("migrate", -6, flag::WRITE | flag::MOVABLEKEYS, 3, 3, 1, acl::KEYSPACE | acl::WRITE | acl::SLOW | acl::DANGEROUS, Id::Migrate).tips(&["nondeterministic_output"]).keys(&[ksb(key::RW | key::ACCESS | key::DELETE, 3).range(0, 1, 0), ksw(key::RW | key::ACCESS | key::DELETE | key::INCOMPLETE, "KEYS", -2).range(-1, 1, 0)]),
    c("persist", 2, flag::WRITE | flag::FAST, 1, 1, 1, acl::KEYSPACE | acl::WRITE | acl::FAST, Id::Persist).keys(&[ks(key::RW | key::UPDATE, 0, 1)]),
    c("rpush", -3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::LIST | acl::FAST, Id::Rpush).keys(&[ks(key::RW | key::INSERT, 0, 1)]),
    c("lpush", -3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::LIST | acl::FAST, Id::Lpush).keys(&[ks(key::RW | key::INSERT, 0, 1)]),
    c("lrange", 4, flag::READONLY, 1, 1, 1, acl::READ | acl::LIST | acl::SLOW, Id::Lrange).keys(&[ks(key::RO | key::ACCESS, 0, 1)]),
    c("llen", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::LIST | acl::FAST, Id::Llen).keys(&[ks(key::RO, 0, 1)]),
    c("lpop", -2, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::LIST | acl::FAST, Id::Lpop).keys(&[ks(key::RW | key::ACCESS | key::DELETE, 0, 1)]),
    c("rpop", -2, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::LIST | acl::FAST, Id::Rpop).keys(&[ks(key::RW | key::ACCESS | key::DELETE, 0, 1)]),
    c("sadd", -3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::SET | acl::FAST, Id::Sadd).keys(&[ks(key::RW | key::INSERT, 0, 1)]),
    c("srem", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::SET | acl::FAST, Id::Srem).keys(&[ks(key::RW | key::DELETE, 0, 1)]),
    c("smembers", 2, flag::READONLY, 1, 1, 1, acl::READ | acl::SET | acl::SLOW, Id::Smembers).tips(&["nondeterministic_output_order"]).keys(&[ks(key::RO | key::ACCESS, 0, 1)]),
    c("scard", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SET | acl::FAST, Id::Scard).keys(&[ks(key::RO, 0, 1)]),
    c("sismember", 3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SET | acl::FAST, Id::Sismember).keys(&[ks(key::RO, 0, 1)]),
    c("multi", 1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::ALLOW_BUSY, 0, 0, 0, acl::FAST | acl::TRANSACTION, Id::Multi),
    c("exec", 1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::SKIP_SLOWLOG, 0, 0, 0, acl::SLOW | acl::TRANSACTION, Id::Exec),
    c("discard", 1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::ALLOW_BUSY, 0, 0, 0, acl::FAST | acl::TRANSACTION, Id::Discard),
    c("watch", -2, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::ALLOW_BUSY, 1, -1, 1, acl::FAST | acl::TRANSACTION, Id::Watch).keys(&[ks(key::RO, -1, 1)]),
    c("unwatch", 1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::ALLOW_BUSY, 0, 0, 0, acl::FAST | acl::TRANSACTION, Id::Unwatch),
    c("asking", 1, flag::FAST, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Asking),
    c("readonly", 1, flag::LOADING | flag::STALE | flag::FAST, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Readonly),
    c("readwrite", 1, flag::LOADING | flag::STALE | flag::FAST, 0, 0, 0, acl::FAST | acl::CONNECTION, Id::Readwrite),
    c("cluster", -2, 0, 0, 0, 0, acl::SLOW, Id::Delegate).subs(&[
        c("cluster|addslots", -3, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|addslotsrange", -4, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|bumpepoch", 2, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|count-failure-reports", 3, flag::ADMIN | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|countkeysinslot", 3, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate),
        c("cluster|delslots", -3, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|delslotsrange", -4, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|failover", -2, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|flushslots", 2, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|forget", 3, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|getkeysinslot", 4, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate),
        c("cluster|info", 2, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|keyslot", 3, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate),
        c("cluster|links", 2, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|meet", -4, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|myid", 2, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate),
        c("cluster|nodes", 2, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|replicas", 3, flag::ADMIN | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|replicate", 3, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|reset", -2, flag::ADMIN | flag::NOSCRIPT | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|saveconfig", 2, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|set-config-epoch", 3, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|setslot", -4, flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("cluster|shards", 2, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|slaves", 3, flag::ADMIN | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate).tips(&["nondeterministic_output"]),
        c("cluster|slots", 2, flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate).tips(&["nondeterministic_output"]),
    ]),
    c("info", -1, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::DANGEROUS, Id::Delegate).tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
    c("config", -2, 0, 0, 0, 0, acl::SLOW, Id::Delegate).subs(&[
        c("config|get", -3, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("config|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW, Id::Delegate),
        c("config|resetstat", 2, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("config|rewrite", 2, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
        c("config|set", -4, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate).tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    ]),
    c("replicaof", 3, flag::ADMIN | flag::NOSCRIPT | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    c("slaveof", 3, flag::ADMIN | flag::NOSCRIPT | flag::STALE | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    c("bgrewriteaof", 1, flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    c("save", 1, flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING | flag::NO_MULTI, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    c("bgsave", -1, flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    c("lastsave", 1, flag::LOADING | flag::STALE | flag::FAST, 0, 0, 0, acl::ADMIN | acl::FAST | acl::DANGEROUS, Id::Delegate).tips(&["nondeterministic_output"]),
    c("role", 1, flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST, 0, 0, 0, acl::ADMIN | acl::FAST | acl::DANGEROUS, Id::Delegate),
    c("wait", 3, flag::NOSCRIPT, 0, 0, 0, acl::SLOW | acl::CONNECTION, Id::Delegate).tips(&["request_policy:all_shards", "response_policy:agg_min"]),
    c("sync", 1, flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING | flag::NO_MULTI, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    c("psync", -3, flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING | flag::NO_MULTI, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    c("replconf", -1, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::ALLOW_BUSY, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Delegate),
    // Hashes, sorted sets, streams, keyspace, scripting, DEBUG: as redis 7.0.15 declares them.
    c("hset", -4, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::HASH | acl::FAST, Id::Hset).keys(&[ksb(key::RW | key::UPDATE, 1).range(0, 1, 0)]),
    c("hsetnx", 4, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::HASH | acl::FAST, Id::Hsetnx).keys(&[ksb(key::RW | key::INSERT, 1).range(0, 1, 0)]),
    c("hget", 3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::HASH | acl::FAST, Id::Hget).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("hmget", -3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::HASH | acl::FAST, Id::Hmget).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("hmset", -4, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::HASH | acl::FAST, Id::Hmset).keys(&[ksb(key::RW | key::UPDATE, 1).range(0, 1, 0)]),
    c("hdel", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::HASH | acl::FAST, Id::Hdel).keys(&[ksb(key::RW | key::DELETE, 1).range(0, 1, 0)]),
    c("hlen", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::HASH | acl::FAST, Id::Hlen).keys(&[ksb(key::RO, 1).range(0, 1, 0)]),
    c("hexists", 3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::HASH | acl::FAST, Id::Hexists).keys(&[ksb(key::RO, 1).range(0, 1, 0)]),
    c("hgetall", 2, flag::READONLY, 1, 1, 1, acl::READ | acl::HASH | acl::SLOW, Id::Hgetall).tips(&["nondeterministic_output_order"]).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("hkeys", 2, flag::READONLY, 1, 1, 1, acl::READ | acl::HASH | acl::SLOW, Id::Hkeys).tips(&["nondeterministic_output_order"]).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("hvals", 2, flag::READONLY, 1, 1, 1, acl::READ | acl::HASH | acl::SLOW, Id::Hvals).tips(&["nondeterministic_output_order"]).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("hincrby", 4, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::HASH | acl::FAST, Id::Hincrby).keys(&[ksb(key::RW | key::ACCESS | key::UPDATE, 1).range(0, 1, 0)]),
    c("hincrbyfloat", 4, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::HASH | acl::FAST, Id::Hincrbyfloat).keys(&[ksb(key::RW | key::ACCESS | key::UPDATE, 1).range(0, 1, 0)]),
    c("hstrlen", 3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::HASH | acl::FAST, Id::Hstrlen).keys(&[ksb(key::RO, 1).range(0, 1, 0)]),
    c("hrandfield", -2, flag::READONLY, 1, 1, 1, acl::READ | acl::HASH | acl::SLOW, Id::Hrandfield).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("hscan", -3, flag::READONLY, 1, 1, 1, acl::READ | acl::HASH | acl::SLOW, Id::Hscan).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zadd", -4, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::FAST, Id::Zadd).keys(&[ksb(key::RW | key::UPDATE, 1).range(0, 1, 0)]),
    c("zincrby", 4, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::FAST, Id::Zincrby).keys(&[ksb(key::RW | key::ACCESS | key::UPDATE, 1).range(0, 1, 0)]),
    c("zrem", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::FAST, Id::Zrem).keys(&[ksb(key::RW | key::DELETE, 1).range(0, 1, 0)]),
    c("zcard", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::FAST, Id::Zcard).keys(&[ksb(key::RO, 1).range(0, 1, 0)]),
    c("zscore", 3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::FAST, Id::Zscore).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zmscore", -3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::FAST, Id::Zmscore).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrank", 3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::FAST, Id::Zrank).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrevrank", 3, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::FAST, Id::Zrevrank).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zcount", 4, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::FAST, Id::Zcount).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrange", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zrange).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrangebyscore", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zrangebyscore).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrevrangebyscore", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zrevrangebyscore).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrevrange", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zrevrange).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrangebylex", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zrangebylex).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrevrangebylex", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zrevrangebylex).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zlexcount", 4, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::FAST, Id::Zlexcount).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zpopmin", -2, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::FAST, Id::Zpopmin).keys(&[ksb(key::RW | key::ACCESS | key::DELETE, 1).range(0, 1, 0)]),
    c("zpopmax", -2, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::FAST, Id::Zpopmax).keys(&[ksb(key::RW | key::ACCESS | key::DELETE, 1).range(0, 1, 0)]),
    c("zremrangebyrank", 4, flag::WRITE, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::SLOW, Id::Zremrangebyrank).keys(&[ksb(key::RW | key::DELETE, 1).range(0, 1, 0)]),
    c("zremrangebyscore", 4, flag::WRITE, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::SLOW, Id::Zremrangebyscore).keys(&[ksb(key::RW | key::DELETE, 1).range(0, 1, 0)]),
    c("zremrangebylex", 4, flag::WRITE, 1, 1, 1, acl::WRITE | acl::SORTEDSET | acl::SLOW, Id::Zremrangebylex).keys(&[ksb(key::RW | key::DELETE, 1).range(0, 1, 0)]),
    c("zscan", -3, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zscan).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("zrandmember", -2, flag::READONLY, 1, 1, 1, acl::READ | acl::SORTEDSET | acl::SLOW, Id::Zrandmember).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("xadd", -5, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STREAM | acl::FAST, Id::Xadd).tips(&["nondeterministic_output"]).keys(&[ksb(key::RW | key::UPDATE, 1).range(0, 1, 0).notes("UPDATE instead of INSERT because of the optional trimming feature")]),
    c("xlen", 2, flag::READONLY | flag::FAST, 1, 1, 1, acl::READ | acl::STREAM | acl::FAST, Id::Xlen).keys(&[ksb(key::RO, 1).range(0, 1, 0)]),
    c("xrange", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::STREAM | acl::SLOW, Id::Xrange).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("xrevrange", -4, flag::READONLY, 1, 1, 1, acl::READ | acl::STREAM | acl::SLOW, Id::Xrevrange).keys(&[ksb(key::RO | key::ACCESS, 1).range(0, 1, 0)]),
    c("xread", -4, flag::READONLY | flag::BLOCKING | flag::MOVABLEKEYS, 0, 0, 0, acl::READ | acl::STREAM | acl::SLOW | acl::BLOCKING, Id::Xread).keys(&[ksw(key::RO | key::ACCESS, "STREAMS", 1).range(-1, 1, 2)]),
    c("xdel", -3, flag::WRITE | flag::FAST, 1, 1, 1, acl::WRITE | acl::STREAM | acl::FAST, Id::Xdel).keys(&[ksb(key::RW | key::DELETE, 1).range(0, 1, 0)]),
    c("xtrim", -4, flag::WRITE, 1, 1, 1, acl::WRITE | acl::STREAM | acl::SLOW, Id::Xtrim).tips(&["nondeterministic_output"]).keys(&[ksb(key::RW | key::DELETE, 1).range(0, 1, 0)]),
    c("xsetid", -3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STREAM | acl::FAST, Id::Xsetid).keys(&[ksb(key::RW | key::UPDATE, 1).range(0, 1, 0)]),
    c("scan", -2, flag::READONLY, 0, 0, 0, acl::KEYSPACE | acl::READ | acl::SLOW, Id::Scan).tips(&["nondeterministic_output", "request_policy:special"]),
    c("keys", 2, flag::READONLY, 0, 0, 0, acl::KEYSPACE | acl::READ | acl::SLOW | acl::DANGEROUS, Id::Keys).tips(&["request_policy:all_shards", "nondeterministic_output_order"]),
    c("rename", 3, flag::WRITE, 1, 2, 1, acl::KEYSPACE | acl::WRITE | acl::SLOW, Id::Rename).keys(&[ksb(key::RW | key::ACCESS | key::DELETE, 1).range(0, 1, 0), ksb(key::OW | key::UPDATE, 2).range(0, 1, 0)]),
    c("renamenx", 3, flag::WRITE | flag::FAST, 1, 2, 1, acl::KEYSPACE | acl::WRITE | acl::FAST, Id::Renamenx).keys(&[ksb(key::RW | key::ACCESS | key::DELETE, 1).range(0, 1, 0), ksb(key::OW | key::INSERT, 2).range(0, 1, 0)]),
    c("randomkey", 1, flag::READONLY, 0, 0, 0, acl::KEYSPACE | acl::READ | acl::SLOW, Id::Randomkey).tips(&["request_policy:all_shards", "nondeterministic_output"]),
    c("object", -2, 0, 0, 0, 0, acl::SLOW, Id::Object).subs(&[
        c("object|encoding", 3, flag::READONLY, 2, 2, 1, acl::KEYSPACE | acl::READ | acl::SLOW, Id::ObjectEncoding).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO, 2).range(0, 1, 0)]),
        c("object|freq", 3, flag::READONLY, 2, 2, 1, acl::KEYSPACE | acl::READ | acl::SLOW, Id::ObjectFreq).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO, 2).range(0, 1, 0)]),
        c("object|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::KEYSPACE | acl::SLOW, Id::ObjectHelp),
        c("object|idletime", 3, flag::READONLY, 2, 2, 1, acl::KEYSPACE | acl::READ | acl::SLOW, Id::ObjectIdletime).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO, 2).range(0, 1, 0)]),
        c("object|refcount", 3, flag::READONLY, 2, 2, 1, acl::KEYSPACE | acl::READ | acl::SLOW, Id::ObjectRefcount).tips(&["nondeterministic_output"]).keys(&[ksb(key::RO, 2).range(0, 1, 0)]),
    ]),
    c("touch", -2, flag::READONLY | flag::FAST, 1, -1, 1, acl::KEYSPACE | acl::READ | acl::FAST, Id::Touch).tips(&["request_policy:multi_shard", "response_policy:agg_sum"]).keys(&[ksb(key::RO, 1).range(-1, 1, 0)]),
    c("debug", -2, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Debug),
    c("shutdown", -1, flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::NO_MULTI | flag::ALLOW_BUSY, 0, 0, 0, acl::ADMIN | acl::SLOW | acl::DANGEROUS, Id::Shutdown),
    c("eval", -3, flag::NOSCRIPT | flag::STALE | flag::SKIP_MONITOR | flag::MAY_REPLICATE | flag::NO_MANDATORY_KEYS | flag::MOVABLEKEYS, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::Eval).keys(&[ksb(key::RW | key::ACCESS | key::UPDATE, 2).keynum(0, 1, 1).notes("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")]),
    c("evalsha", -3, flag::NOSCRIPT | flag::STALE | flag::SKIP_MONITOR | flag::MAY_REPLICATE | flag::NO_MANDATORY_KEYS | flag::MOVABLEKEYS, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::Evalsha).keys(&[ksb(key::RW | key::ACCESS | key::UPDATE, 2).keynum(0, 1, 1)]),
    c("eval_ro", -3, flag::READONLY | flag::NOSCRIPT | flag::STALE | flag::SKIP_MONITOR | flag::NO_MANDATORY_KEYS | flag::MOVABLEKEYS, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::EvalRo).keys(&[ksb(key::RO | key::ACCESS, 2).keynum(0, 1, 1).notes("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")]),
    c("evalsha_ro", -3, flag::READONLY | flag::NOSCRIPT | flag::STALE | flag::SKIP_MONITOR | flag::NO_MANDATORY_KEYS | flag::MOVABLEKEYS, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::EvalshaRo).keys(&[ksb(key::RO | key::ACCESS, 2).keynum(0, 1, 1)]),
    c("script", -2, 0, 0, 0, 0, acl::SLOW, Id::Script).subs(&[
        c("script|debug", 3, flag::NOSCRIPT, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::ScriptDebug),
        c("script|exists", -3, flag::NOSCRIPT, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::ScriptExists).tips(&["request_policy:all_shards", "response_policy:agg_logical_and"]),
        c("script|flush", -2, flag::NOSCRIPT, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::ScriptFlush).tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        c("script|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::ScriptHelp),
        c("script|kill", 2, flag::NOSCRIPT | flag::ALLOW_BUSY, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::ScriptKill).tips(&["request_policy:all_shards", "response_policy:one_succeeded"]),
        c("script|load", 3, flag::NOSCRIPT | flag::STALE, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::ScriptLoad).tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    ]),
    c("function", -2, 0, 0, 0, 0, acl::SLOW, Id::Function).subs(&[
        c("function|delete", 3, flag::WRITE | flag::NOSCRIPT, 0, 0, 0, acl::WRITE | acl::SLOW | acl::SCRIPTING, Id::FunctionDelete).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        c("function|dump", 2, flag::NOSCRIPT, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::FunctionDump),
        c("function|flush", -2, flag::WRITE | flag::NOSCRIPT, 0, 0, 0, acl::WRITE | acl::SLOW | acl::SCRIPTING, Id::FunctionFlush).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        c("function|help", 2, flag::LOADING | flag::STALE, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::FunctionHelp),
        c("function|kill", 2, flag::NOSCRIPT | flag::ALLOW_BUSY, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::FunctionKill).tips(&["request_policy:all_shards", "response_policy:one_succeeded"]),
        c("function|list", -2, flag::NOSCRIPT, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::FunctionList).tips(&["nondeterministic_output_order"]),
        c("function|load", -3, flag::WRITE | flag::DENYOOM | flag::NOSCRIPT, 0, 0, 0, acl::WRITE | acl::SLOW | acl::SCRIPTING, Id::FunctionLoad).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        c("function|restore", -3, flag::WRITE | flag::DENYOOM | flag::NOSCRIPT, 0, 0, 0, acl::WRITE | acl::SLOW | acl::SCRIPTING, Id::FunctionRestore).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        c("function|stats", 2, flag::NOSCRIPT | flag::ALLOW_BUSY, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::FunctionStats).tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
    ]),
    c("fcall", -3, flag::NOSCRIPT | flag::STALE | flag::SKIP_MONITOR | flag::MAY_REPLICATE | flag::NO_MANDATORY_KEYS | flag::MOVABLEKEYS, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::Fcall).keys(&[ksb(key::RW | key::ACCESS | key::UPDATE, 2).keynum(0, 1, 1).notes("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")]),
    c("fcall_ro", -3, flag::READONLY | flag::NOSCRIPT | flag::STALE | flag::SKIP_MONITOR | flag::NO_MANDATORY_KEYS | flag::MOVABLEKEYS, 0, 0, 0, acl::SLOW | acl::SCRIPTING, Id::FcallRo).keys(&[ksb(key::RO | key::ACCESS, 2).keynum(0, 1, 1).notes("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")]),
    c("incrbyfloat", 3, flag::WRITE | flag::DENYOOM | flag::FAST, 1, 1, 1, acl::WRITE | acl::STRING | acl::FAST, Id::Incrbyfloat).keys(&[ksb(key::RW | key::ACCESS | key::UPDATE, 1).range(0, 1, 0)]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_found_by_its_name_in_any_case() {
        for c in COMMANDS {
            let upper = c.name.to_ascii_uppercase();
            assert!(lookup_name(c.name.as_bytes()).is_some_and(|f| std::ptr::eq(f, c)));
            assert!(lookup_name(upper.as_bytes()).is_some_and(|f| std::ptr::eq(f, c)));
        }
        for unknown in [&b""[..], b"gett", b"ge", b"{et", b"\xffet", &[b'g'; 40]] {
            assert!(lookup_name(unknown).is_none());
        }
    }
}
