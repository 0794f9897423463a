//! Configuration with redis-server's option names, from a config file and/or
//! `--name value` arguments, so the harness can start either server from one
//! template. Values are validated once, here, against one table of options;
//! `CONFIG GET/SET` use the same table.

use std::collections::BTreeMap;

use crate::cluster::ClusterConfig;

mod redis_options;
mod rewrite;

/// What kind of value an option takes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Str,
    /// One or more words, stored joined by a space (bind, save).
    Words,
    Enum(&'static [&'static str]),
    /// A byte count with redis's units (`64mb`, `1gb`, `100k`), kept in bytes.
    Memory {
        min: i64,
        max: i64,
    },
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <seconds>`
    /// groups, merged into the current value class by class.
    ObufLimits,
}

/// One option: its name, aliases, kind, default, and whether CONFIG SET may change it.
struct Spec {
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    mutable: bool,
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// Every option the node accepts. Options that only matter to redis-server (RDB
/// persistence, tuning) are accepted so that one config template serves both servers, and
/// reported by CONFIG GET, but have no effect here. The AOF options (`appendonly`,
/// `appendfsync`, `appendfilename`, `appenddirname`, `auto-aof-rewrite-*`,
/// `aof-load-truncated`) do take effect: see the persist module.
const SPECS: &[Spec] = &[
    Spec {
        name: "port",
        aliases: &[],
        kind: int(0, 65535),
        default: "6379",
        mutable: false,
    },
    Spec {
        name: "bind",
        aliases: &[],
        kind: Kind::Words,
        default: "* -::*",
        mutable: false,
    },
    Spec {
        name: "dir",
        aliases: &[],
        kind: Kind::Str,
        default: ".",
        mutable: false,
    },
    Spec {
        name: "daemonize",
        aliases: &[],
        kind: Kind::Enum(&["no"]),
        default: "no",
        mutable: false,
    },
    Spec {
        name: "cluster-enabled",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
        mutable: false,
    },
    Spec {
        name: "cluster-config-file",
        aliases: &[],
        kind: Kind::Str,
        default: "nodes.conf",
        mutable: false,
    },
    Spec {
        name: "cluster-node-timeout",
        aliases: &[],
        kind: int(0, i64::MAX),
        default: "15000",
        mutable: true,
    },
    Spec {
        name: "cluster-port",
        aliases: &[],
        kind: int(0, 65535),
        default: "0",
        mutable: false,
    },
    Spec {
        name: "cluster-announce-ip",
        aliases: &[],
        kind: Kind::Str,
        default: "",
        mutable: true,
    },
    Spec {
        name: "cluster-announce-port",
        aliases: &[],
        kind: int(0, 65535),
        default: "0",
        mutable: true,
    },
    Spec {
        name: "cluster-announce-bus-port",
        aliases: &[],
        kind: int(0, 65535),
        default: "0",
        mutable: true,
    },
    Spec {
        name: "cluster-announce-tls-port",
        aliases: &[],
        kind: int(0, 65535),
        default: "0",
        mutable: true,
    },
    Spec {
        name: "cluster-announce-hostname",
        aliases: &[],
        kind: Kind::Str,
        default: "",
        mutable: true,
    },
    Spec {
        name: "cluster-require-full-coverage",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
        mutable: true,
    },
    Spec {
        name: "cluster-allow-reads-when-down",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
        mutable: true,
    },
    Spec {
        name: "cluster-allow-pubsubshard-when-down",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
        mutable: true,
    },
    Spec {
        name: "cluster-replica-validity-factor",
        aliases: &["cluster-slave-validity-factor"],
        kind: int(0, i32::MAX as i64),
        default: "10",
        mutable: true,
    },
    Spec {
        name: "cluster-migration-barrier",
        aliases: &[],
        kind: int(0, i32::MAX as i64),
        default: "1",
        mutable: true,
    },
    Spec {
        name: "cluster-allow-replica-migration",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
        mutable: true,
    },
    Spec {
        name: "cluster-replica-no-failover",
        aliases: &["cluster-slave-no-failover"],
        kind: Kind::Bool,
        default: "no",
        mutable: true,
    },
    Spec {
        name: "cluster-preferred-endpoint-type",
        aliases: &[],
        kind: Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        default: "ip",
        mutable: true,
    },
    Spec {
        name: "cluster-link-sendbuf-limit",
        aliases: &[],
        kind: int(0, i64::MAX),
        default: "0",
        mutable: true,
    },
    Spec {
        name: "loglevel",
        aliases: &[],
        kind: Kind::Enum(&["debug", "verbose", "notice", "warning"]),
        default: "notice",
        mutable: true,
    },
    Spec {
        name: "logfile",
        aliases: &[],
        kind: Kind::Str,
        default: "",
        mutable: false,
    },
    Spec {
        name: "events-file",
        aliases: &[],
        kind: Kind::Str,
        default: "",
        mutable: false,
    },
    Spec {
        name: "pidfile",
        aliases: &[],
        kind: Kind::Str,
        default: "",
        mutable: false,
    },
    // Accepted for compatibility with redis-server config templates; no effect here.
    Spec {
        name: "protected-mode",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
        mutable: true,
    },
    // The AOF options (see the persist module).
    Spec {
        name: "appendonly",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
        mutable: true,
    },
    Spec {
        name: "appendfsync",
        aliases: &[],
        kind: Kind::Enum(&["always", "everysec", "no"]),
        default: "everysec",
        mutable: true,
    },
    Spec {
        name: "appendfilename",
        aliases: &[],
        kind: Kind::Str,
        default: "appendonly.aof",
        mutable: false,
    },
    Spec {
        name: "appenddirname",
        aliases: &[],
        kind: Kind::Str,
        default: "appendonlydir",
        mutable: false,
    },
    Spec {
        name: "auto-aof-rewrite-percentage",
        aliases: &[],
        kind: int(0, i64::MAX),
        default: "100",
        mutable: true,
    },
    Spec {
        name: "auto-aof-rewrite-min-size",
        aliases: &[],
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        default: "64mb",
        mutable: true,
    },
    Spec {
        name: "aof-load-truncated",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
        mutable: true,
    },
    Spec {
        name: "save",
        aliases: &[],
        kind: Kind::Str,
        default: "3600 1 300 100 60 10000",
        mutable: true,
    },
    Spec {
        name: "enable-debug-command",
        aliases: &[],
        kind: Kind::Enum(&["yes", "no", "local"]),
        default: "no",
        mutable: false,
    },
    Spec {
        name: "enable-protected-configs",
        aliases: &[],
        kind: Kind::Enum(&["yes", "no", "local"]),
        default: "no",
        mutable: false,
    },
    Spec {
        name: "repl-diskless-sync-delay",
        aliases: &[],
        kind: int(0, i32::MAX as i64),
        default: "5",
        mutable: true,
    },
    Spec {
        name: "repl-ping-replica-period",
        aliases: &["repl-ping-slave-period"],
        kind: int(1, i32::MAX as i64),
        default: "10",
        mutable: true,
    },
    Spec {
        name: "maxclients",
        aliases: &[],
        kind: int(1, i32::MAX as i64),
        default: "10000",
        mutable: true,
    },
    Spec {
        name: "timeout",
        aliases: &[],
        kind: int(0, i32::MAX as i64),
        default: "0",
        mutable: true,
    },
    Spec {
        name: "tcp-keepalive",
        aliases: &[],
        kind: int(0, i32::MAX as i64),
        default: "300",
        mutable: true,
    },
    Spec {
        name: "hz",
        aliases: &[],
        kind: int(1, 500),
        default: "10",
        mutable: true,
    },
    Spec {
        name: "databases",
        aliases: &[],
        kind: int(1, i32::MAX as i64),
        default: "16",
        mutable: false,
    },
    Spec {
        name: "io-threads",
        aliases: &[],
        kind: int(1, 128),
        default: "1",
        mutable: false,
    },
    Spec {
        name: "maxmemory",
        aliases: &[],
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        default: "0",
        mutable: true,
    },
    Spec {
        name: "always-show-logo",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
        mutable: false,
    },
    Spec {
        name: "supervised",
        aliases: &[],
        kind: Kind::Enum(&["no", "auto", "systemd", "upstart"]),
        default: "no",
        mutable: false,
    },
];

fn find_spec(name: &str) -> Option<&'static Spec> {
    // Every name and alias, lowercase, built once: lookups happen on every
    // cron tick and CONFIG call, and a scan of ~400 options costs thousands
    // of instructions each time.
    static INDEX: std::sync::LazyLock<std::collections::HashMap<&'static str, &'static Spec>> =
        std::sync::LazyLock::new(|| {
            let mut index = std::collections::HashMap::new();
            for spec in all_specs() {
                index.entry(spec.name).or_insert(spec);
                for alias in spec.aliases {
                    index.entry(*alias).or_insert(spec);
                }
            }
            index
        });
    match INDEX.get(name) {
        Some(spec) => Some(spec),
        None if name.bytes().any(|b| b.is_ascii_uppercase()) => {
            INDEX.get(name.to_ascii_lowercase().as_str()).copied()
        }
        None => None,
    }
}

/// Every option: ours first, then the rest of redis's table (an option in both
/// is ours).
fn all_specs() -> impl Iterator<Item = &'static Spec> {
    SPECS.iter().chain(
        redis_options::SPECS
            .iter()
            .filter(|r| !SPECS.iter().any(|s| s.name == r.name)),
    )
}

/// A configuration error, reported the way redis reports a bad config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Reading the configuration file, at line {line}\n>>> '{text}'\n{reason}")]
    Line {
        line: usize,
        text: String,
        reason: String,
    },
    #[error("Fatal error, can't open config file '{path}': {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A validated configuration. Values are kept as redis prints them for CONFIG GET.
#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// Planted defects (`--bug NAME`, hidden from help), passed to the cluster core.
    pub bugs: Vec<String>,
    /// A `save` line was read: further ones add save points (redis reads
    /// `save 900 1` and `save 300 10` on two lines as one list).
    save_seen: bool,
    /// `--test-election-delay-ms N` (hidden, tests only): every election starts N ms
    /// (plus the rank's delay) after the master is seen failing, instead of redis's
    /// 500 ms + random 0..500 ms, so a test can time faults around elections.
    pub test_election_delay_ms: Option<u64>,
    /// The gossip experiment's knobs (hidden, `hearsay scale --gossip-divisor`,
    /// `--ping-age-divisor`): gossip entries per ping max(3, N / gossip_divisor),
    /// ping a peer whose pong is older than node_timeout / ping_age_divisor.
    /// Redis's values (10 and 2) unless set.
    pub gossip_divisor: u64,
    pub ping_age_divisor: u64,
    /// The config file named on the command line, if any (INFO server's config_file).
    pub config_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            values: all_specs().map(|s| (s.name, default_value(s))).collect(),
            bugs: Vec::new(),
            save_seen: false,
            test_election_delay_ms: None,
            gossip_divisor: 10,
            ping_age_divisor: 2,
            config_file: None,
        }
    }
}

/// Splits a config line into words the way redis's `sdssplitargs` does: spaces separate,
/// double quotes allow `\n`-style escapes and `\xHH`, single quotes are literal.
/// Returns `None` on unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(out);
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => word.push('\n'),
                        'r' => word.push('\r'),
                        't' => word.push('\t'),
                        'b' => word.push('\u{8}'),
                        'a' => word.push('\u{7}'),
                        'x' => {
                            let hi = chars.next()?.to_digit(16)?;
                            let lo = chars.next()?.to_digit(16)?;
                            word.push(char::from((hi * 16 + lo) as u8));
                        }
                        other => word.push(other),
                    },
                    c => word.push(c),
                }
            }
            // redis requires a space (or the end) after a closing quote.
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else if first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    '\'' => break,
                    c => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
}

impl Config {
    /// Parses `argv[1..]` the way redis-server does: an optional config file path
    /// first, then `--name value...` options that override it.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut rest = args;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first).map_err(|source| ConfigError::Open {
                    path: first.clone(),
                    source,
                })?;
                cfg.load_text(&text)?;
                // Absolute, as redis keeps it: the node chdirs to `dir` before
                // CONFIG REWRITE writes the file back.
                let path = std::path::Path::new(first);
                let abs = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    std::env::current_dir()
                        .map(|d| d.join(path))
                        .unwrap_or_else(|_| path.to_path_buf())
                };
                cfg.config_file = Some(abs.to_string_lossy().into_owned());
                rest = &args[1..];
            }
        }
        // Options on the command line become config lines; each `--name` starts a new one.
        let mut lines: Vec<Vec<String>> = Vec::new();
        for arg in rest {
            if let Some(name) = arg.strip_prefix("--") {
                lines.push(vec![name.to_string()]);
            } else if let Some(line) = lines.last_mut() {
                line.push(arg.clone());
            } else {
                return Err(ConfigError::Line {
                    line: 0,
                    text: arg.clone(),
                    reason: "Bad directive or wrong number of arguments".into(),
                });
            }
        }
        for words in lines {
            let text = words.join(" ");
            cfg.apply_words(&words)
                .map_err(|reason| ConfigError::Line {
                    line: 0,
                    text,
                    reason,
                })?;
        }
        Ok(cfg)
    }

    /// Applies the lines of a config file.
    pub fn load_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| ConfigError::Line {
                line: i + 1,
                text: line.to_string(),
                reason,
            };
            let words = split_args(line)
                .ok_or_else(|| err("Unbalanced quotes in configuration line".into()))?;
            self.apply_words(&words).map_err(err)?;
        }
        Ok(())
    }

    fn apply_words(&mut self, words: &[String]) -> Result<(), String> {
        let Some((name, values)) = words.split_first() else {
            return Ok(());
        };
        if name.eq_ignore_ascii_case("bug") {
            if values.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            self.bugs.push(values[0].clone());
            return Ok(());
        }
        for (option, field) in [
            ("experiment-gossip-divisor", &mut self.gossip_divisor),
            ("experiment-ping-age-divisor", &mut self.ping_age_divisor),
        ] {
            if name.eq_ignore_ascii_case(option) {
                let [n] = values else {
                    return Err("wrong number of arguments".into());
                };
                *field = n
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("{option}: '{n}' is not 1..=1000"))?;
                return Ok(());
            }
        }
        if name.eq_ignore_ascii_case("test-election-delay-ms") {
            let [ms] = values else {
                return Err("wrong number of arguments".into());
            };
            let ms = ms
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 3_600_000)
                .ok_or_else(|| format!("test-election-delay-ms: '{ms}' is not 0..=3600000"))?;
            self.test_election_delay_ms = Some(ms);
            return Ok(());
        }
        let spec = find_spec(name).ok_or_else(|| {
            format!("Bad directive or wrong number of arguments: unknown option '{name}'")
        })?;
        let value = match spec.kind {
            Kind::Words => {
                if values.is_empty() {
                    return Err(format!("wrong number of arguments for '{}'", spec.name));
                }
                values.join(" ")
            }
            // `save ""` and `save 3600 1 ...` are both valid; redis reads
            // several `save` lines as one list.
            Kind::Str if spec.name == "save" => {
                let joined = values.join(" ");
                match self.values.get("save") {
                    Some(prev) if self.save_seen && !prev.is_empty() && !joined.is_empty() => {
                        format!("{prev} {joined}")
                    }
                    _ => joined,
                }
            }
            Kind::ObufLimits => {
                let current = self.values.get(spec.name).cloned().unwrap_or_default();
                let merged = merge_obuf_limits(&current, &values.join(" "))
                    .map_err(|e| format!("{e} for '{}'", spec.name))?;
                self.values.insert(spec.name, merged);
                return Ok(());
            }
            _ => {
                if values.len() != 1 {
                    return Err(format!("wrong number of arguments for '{}'", spec.name));
                }
                values[0].clone()
            }
        };
        let normalized = validate(spec, &value).map_err(|e| format!("{e} for '{}'", spec.name))?;
        if spec.name == "save" {
            self.save_seen = true;
        }
        self.values.insert(spec.name, normalized);
        Ok(())
    }

    /// The value of an option as CONFIG GET prints it.
    pub fn get(&self, name: &str) -> Option<&str> {
        let spec = find_spec(name)?;
        self.values.get(spec.name).map(String::as_str)
    }

    /// CONFIG GET: every option whose name matches the glob, in table order.
    pub fn get_matching(&self, pattern: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let lower = pattern.to_ascii_lowercase();
        for spec in all_specs() {
            let names = std::iter::once(spec.name).chain(spec.aliases.iter().copied());
            for n in names {
                // Hidden (debug) options answer only to their exact name.
                let matched = if redis_options::HIDDEN.contains(&spec.name) {
                    lower == n
                } else {
                    crate::glob::glob_match(lower.as_bytes(), n.as_bytes(), true)
                };
                if matched {
                    let v = self.values.get(spec.name).cloned().unwrap_or_default();
                    out.push((n, v));
                }
            }
        }
        out
    }

    /// CONFIG SET of one option. The error text is redis's.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let spec = find_spec(name).ok_or_else(|| {
            format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
        })?;
        if !spec.mutable {
            return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"));
        }
        let normalized = match spec.kind {
            Kind::ObufLimits => {
                merge_obuf_limits(self.values.get(spec.name).map_or("", |v| v), value)
            }
            _ => validate(spec, value),
        }
        .map_err(|e| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
        })?;
        if spec.name == "cluster-announce-hostname" {
            validate_hostname(&normalized).map_err(|e| {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
            })?;
        }
        self.values.insert(spec.name, normalized);
        Ok(())
    }

    fn int(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("yes")
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_string()
    }

    pub fn port(&self) -> u16 {
        self.int("port") as u16
    }

    /// The bus listen port: cluster-port, else port + 10000.
    pub fn bus_port(&self) -> Result<u16, String> {
        let cp = self.int("cluster-port");
        if cp != 0 {
            return Ok(cp as u16);
        }
        let p = self.port() as u32 + 10000;
        if p > 65535 {
            return Err("Redis port number too high. Cluster communication port is 10,000 port numbers higher than your Redis port. Your Redis port number must be 55535 or less.".into());
        }
        Ok(p as u16)
    }

    /// Addresses to listen on, with `*` as all IPv4 and `-` prefixed entries optional.
    pub fn bind_addrs(&self) -> Vec<(String, bool)> {
        self.text("bind")
            .split_whitespace()
            .map(|w| {
                let (optional, addr) = match w.strip_prefix('-') {
                    Some(a) => (true, a),
                    None => (false, w),
                };
                let addr = match addr {
                    "*" => "0.0.0.0",
                    "::*" => "::",
                    a => a,
                };
                (addr.to_string(), optional)
            })
            .collect()
    }

    pub fn dir(&self) -> String {
        self.text("dir")
    }
    pub fn cluster_enabled(&self) -> bool {
        self.flag("cluster-enabled")
    }
    pub fn cluster_config_file(&self) -> String {
        self.text("cluster-config-file")
    }
    pub fn loglevel(&self) -> String {
        self.text("loglevel")
    }
    pub fn logfile(&self) -> String {
        self.text("logfile")
    }
    pub fn events_file(&self) -> String {
        self.text("events-file")
    }
    pub fn pidfile(&self) -> String {
        self.text("pidfile")
    }

    /// maxclients.
    pub fn maxclients(&self) -> usize {
        self.int("maxclients").max(1) as usize
    }
    /// timeout: idle seconds before a client is closed (0 = never).
    pub fn idle_timeout_s(&self) -> u64 {
        self.int("timeout").max(0) as u64
    }
    /// client-query-buffer-limit, bytes.
    pub fn query_buffer_limit(&self) -> usize {
        self.int("client-query-buffer-limit").max(0) as usize
    }
    /// proto-max-bulk-len, bytes.
    pub fn proto_max_bulk_len(&self) -> usize {
        self.int("proto-max-bulk-len").max(0) as usize
    }
    /// client-output-buffer-limit for normal, replica and pubsub clients.
    pub fn obuf_limits(&self) -> [ObufLimit; 3] {
        parse_obuf_limits(&self.text("client-output-buffer-limit"))
    }

    /// The cluster core's view of the options.
    /// The replication options (redis's names).
    pub fn repl_config(&self) -> crate::replication::ReplConfig {
        let u = |name: &str| self.int(name).max(0) as u64;
        crate::replication::ReplConfig {
            backlog_size: u("repl-backlog-size"),
            backlog_ttl_s: u("repl-backlog-ttl"),
            ping_period_s: u("repl-ping-replica-period").max(1),
            timeout_s: u("repl-timeout").max(1),
            min_replicas_to_write: u("min-replicas-to-write"),
            min_replicas_max_lag_s: u("min-replicas-max-lag"),
            diskless_sync: self.flag("repl-diskless-sync"),
            diskless_sync_delay_s: u("repl-diskless-sync-delay"),
            diskless_sync_max_replicas: u("repl-diskless-sync-max-replicas"),
        }
    }

    /// `rdbcompression` and `rdbchecksum`.
    pub fn rdb_options(&self) -> crate::rdb::Options {
        crate::rdb::Options {
            compression: self.flag("rdbcompression"),
            checksum: self.flag("rdbchecksum"),
        }
    }

    pub fn cluster_config(&self) -> Result<ClusterConfig, String> {
        let announce_port = match self.int("cluster-announce-port") {
            0 => self.port(),
            p => p as u16,
        };
        let announce_bus_port = match self.int("cluster-announce-bus-port") {
            0 => self.bus_port()?,
            p => p as u16,
        };
        let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
        Ok(ClusterConfig {
            node_timeout: self.int("cluster-node-timeout").max(0) as u64,
            announce_port,
            announce_bus_port,
            announce_ip: non_empty(self.text("cluster-announce-ip")),
            announce_hostname: non_empty(self.text("cluster-announce-hostname")),
            require_full_coverage: self.flag("cluster-require-full-coverage"),
            allow_reads_when_down: self.flag("cluster-allow-reads-when-down"),
            replica_validity_factor: self.int("cluster-replica-validity-factor") as u32,
            migration_barrier: self.int("cluster-migration-barrier") as u32,
            allow_replica_migration: self.flag("cluster-allow-replica-migration"),
            replica_no_failover: self.flag("cluster-replica-no-failover"),
            repl_ping_replica_period: self.int("repl-ping-replica-period").max(1) as u64,
            bugs: self.bugs.clone(),
            test_election_delay_ms: self.test_election_delay_ms,
            gossip_divisor: self.gossip_divisor,
            ping_age_divisor: self.ping_age_divisor,
            preferred_endpoint: crate::cluster::EndpointType::parse(
                &self.text("cluster-preferred-endpoint-type"),
            ),
            skip_config_text: false,
        })
    }
}

/// Checks a value against its option's kind; returns it as CONFIG GET will print it.
fn validate(spec: &Spec, value: &str) -> Result<String, String> {
    match spec.kind {
        Kind::Int { min, max } => {
            let n: i64 = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if n < min || n > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(n.to_string())
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(choices) => {
            let lower = value.to_ascii_lowercase();
            if choices.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    choices.join(", ")
                ))
            }
        }
        Kind::Memory { min, max } => {
            let n = parse_memory(value).ok_or("argument must be a memory value")?;
            if n < min || n > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(n.to_string())
        }
        Kind::ObufLimits => merge_obuf_limits(spec.default, value),
        Kind::Str | Kind::Words => Ok(value.to_string()),
    }
}

/// An option's default as CONFIG GET prints it (memory defaults in bytes).
fn default_value(spec: &Spec) -> String {
    match spec.kind {
        Kind::Memory { .. } => parse_memory(spec.default)
            .map(|n| n.to_string())
            .unwrap_or_else(|| spec.default.to_string()),
        _ => spec.default.to_string(),
    }
}

/// A memory option's value (redis `numericParseString` for MEMORY_CONFIG):
/// `memtoull`, or for a percent option (maxmemory-clients) `N%`, kept as
/// redis keeps it: a negative number. The unsigned product is read as signed,
/// as redis stores it in a long long, so an overflow fails the range check.
pub fn parse_memory(text: &str) -> Option<i64> {
    if let Some(n) = memtoull(text) {
        return Some(n as i64);
    }
    let pct = text.strip_suffix('%')?;
    let n: i64 = pct.parse().ok()?;
    (0..=100).contains(&n).then_some(-n)
}

/// redis `memtoull`: digits then an optional unit (`b`, `k`, `kb`, `m`, `mb`,
/// `g`, `gb`, any case); `None` for anything else.
pub fn memtoull(value: &str) -> Option<u64> {
    let digits_end = value
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // strtoull of no digits is 0 in redis too.
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(n.wrapping_mul(mul))
}

/// The output-buffer classes of `client-output-buffer-limit`, in redis's order.
pub const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// One class's output buffer limit (redis `clientBufferLimitsConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ObufLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_seconds: u64,
}

/// redis `updateClientOutputBufferLimit`: `value` holds groups of
/// `<class> <hard> <soft> <soft_seconds>`; all are checked before any is
/// applied, and classes not named keep their `current` limits.
fn merge_obuf_limits(current: &str, value: &str) -> Result<String, String> {
    let mut limits = parse_obuf_limits(current);
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut updates = Vec::new();
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = memtoull(group[1]).ok_or_else(bad)?;
        let soft = memtoull(group[2]).ok_or_else(bad)?;
        let seconds: u64 = group[3].parse().map_err(|_| bad())?;
        updates.push((
            class,
            ObufLimit {
                hard_bytes: hard,
                soft_bytes: soft,
                soft_seconds: seconds,
            },
        ));
    }
    for (class, limit) in updates {
        limits[class] = limit;
    }
    Ok(format_obuf_limits(&limits))
}

fn parse_obuf_limits(text: &str) -> [ObufLimit; 3] {
    let mut out = [ObufLimit::default(); 3];
    let words: Vec<&str> = text.split_whitespace().collect();
    for group in words.chunks(4) {
        if let (Some(i), [_, h, s, sec]) = (OBUF_CLASSES.iter().position(|c| *c == group[0]), group)
        {
            out[i] = ObufLimit {
                hard_bytes: h.parse().unwrap_or(0),
                soft_bytes: s.parse().unwrap_or(0),
                soft_seconds: sec.parse().unwrap_or(0),
            };
        }
    }
    out
}

fn format_obuf_limits(limits: &[ObufLimit; 3]) -> String {
    OBUF_CLASSES
        .iter()
        .zip(limits)
        .map(|(c, l)| format!("{c} {} {} {}", l.hard_bytes, l.soft_bytes, l.soft_seconds))
        .collect::<Vec<_>>()
        .join(" ")
}

/// redis's rule for cluster-announce-hostname.
fn validate_hostname(h: &str) -> Result<(), String> {
    if h.len() >= 256 {
        return Err("Hostnames must be less than 256 characters".into());
    }
    if !h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn arguments_override_defaults() {
        let c = Config::from_args(&args("--port 7000 --cluster-enabled yes --cluster-node-timeout 2000 --bind 127.0.0.1 127.0.0.2"))
            .unwrap();
        assert_eq!(c.port(), 7000);
        assert!(c.cluster_enabled());
        assert_eq!(c.bus_port().unwrap(), 17000);
        assert_eq!(c.get("bind"), Some("127.0.0.1 127.0.0.2"));
        let cc = c.cluster_config().unwrap();
        assert_eq!(cc.node_timeout, 2000);
        assert_eq!(cc.announce_bus_port, 17000);
    }

    #[test]
    fn hidden_test_options_reach_the_cluster_config() {
        let c = Config::from_args(&args(
            "--cluster-enabled yes --bug double-vote --test-election-delay-ms 6000",
        ))
        .unwrap();
        let cc = c.cluster_config().unwrap();
        assert_eq!(cc.bugs, ["double-vote"]);
        assert_eq!(cc.test_election_delay_ms, Some(6000));
        assert_eq!((cc.gossip_divisor, cc.ping_age_divisor), (10, 2));
        let c = Config::from_args(&args(
            "--cluster-enabled yes --experiment-gossip-divisor 3 --experiment-ping-age-divisor 4",
        ))
        .unwrap();
        let cc = c.cluster_config().unwrap();
        assert_eq!((cc.gossip_divisor, cc.ping_age_divisor), (3, 4));
        for bad in ["0", "1001", "x"] {
            let e = Config::from_args(&args(&format!("--experiment-gossip-divisor {bad}")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("experiment-gossip-divisor"), "{e}");
        }
        for bad in ["abc", "-1", "3600001"] {
            let e = Config::from_args(&args(&format!("--test-election-delay-ms {bad}")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("test-election-delay-ms"), "{e}");
        }
    }

    #[test]
    fn config_file_then_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("redis.conf");
        std::fs::write(&path, "# comment\nport 7001\ncluster-enabled yes\nsave \"\"\ncluster-slave-validity-factor 0\n").unwrap();
        let mut a = vec![path.to_string_lossy().into_owned()];
        a.extend(args("--port 7002"));
        let c = Config::from_args(&a).unwrap();
        assert_eq!(c.port(), 7002);
        assert_eq!(c.get("save"), Some(""));
        assert_eq!(c.get("cluster-replica-validity-factor"), Some("0"));
    }

    #[test]
    fn unknown_and_malformed_options_name_the_option() {
        let e = Config::from_args(&args("--no-such-option 1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-option"), "{e}");
        let e = Config::from_args(&args("--port abc"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'port'"), "{e}");
        let e = Config::from_args(&args("--cluster-enabled maybe"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster-enabled"), "{e}");
        let e = Config::from_args(&args("--port 70000"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 65535"), "{e}");
        assert!(Config::from_args(&args("stray")).is_err());
    }

    #[test]
    fn port_too_high_for_bus() {
        let c = Config::from_args(&args("--port 60000")).unwrap();
        assert!(c.bus_port().unwrap_err().contains("55535"));
        let c = Config::from_args(&args("--port 60000 --cluster-port 5000")).unwrap();
        assert_eq!(c.bus_port().unwrap(), 5000);
    }

    #[test]
    fn config_set_and_get() {
        let mut c = Config::default();
        c.set("cluster-node-timeout", "3000").unwrap();
        assert_eq!(
            c.get_matching("cluster-node-timeout"),
            vec![("cluster-node-timeout", "3000".to_string())]
        );
        assert!(c.set("port", "1").unwrap_err().contains("immutable"));
        assert!(c
            .set("cluster-announce-hostname", "bad_host")
            .unwrap_err()
            .contains("alphanumeric"));
        assert!(c.set("nope", "1").unwrap_err().contains("Unknown option"));
        let names: Vec<_> = c
            .get_matching("cluster-*-port")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(names.contains(&"cluster-announce-bus-port"));
    }

    #[test]
    fn split_args_quotes() {
        assert_eq!(split_args(r#"save """#).unwrap(), vec!["save", ""]);
        assert_eq!(
            split_args(r#"a "b c\n" 'd e'"#).unwrap(),
            vec!["a", "b c\n", "d e"]
        );
        assert!(split_args(r#"a "b"#).is_none());
    }

    #[test]
    fn memory_values_take_redis_units() {
        assert_eq!(memtoull("1gb"), Some(1 << 30));
        assert_eq!(memtoull("512MB"), Some(512 << 20));
        assert_eq!(memtoull("64k"), Some(64_000));
        assert_eq!(memtoull("17"), Some(17));
        assert_eq!(memtoull("-1"), None);
        assert_eq!(memtoull("1 mb"), None);
        let mut c = Config::default();
        assert_eq!(c.get("client-query-buffer-limit"), Some("1073741824"));
        c.set("client-query-buffer-limit", "2mb").unwrap();
        assert_eq!(c.query_buffer_limit(), 2 << 20);
        assert!(c
            .set("proto-max-bulk-len", "1k")
            .unwrap_err()
            .contains("between 1048576 and"));
        assert!(c
            .set("proto-max-bulk-len", "lots")
            .unwrap_err()
            .contains("memory value"));
    }

    #[test]
    fn output_buffer_limits_merge_by_class() {
        let mut c = Config::default();
        c.set("client-output-buffer-limit", "normal 33554432 16777216 60")
            .unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 33554432 16777216 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
        );
        c.set("client-output-buffer-limit", "replica 1mb 0 0 pubsub 0 0 0")
            .unwrap();
        assert_eq!(
            c.obuf_limits()[1],
            ObufLimit {
                hard_bytes: 1 << 20,
                soft_bytes: 0,
                soft_seconds: 0
            }
        );
        assert_eq!(c.obuf_limits()[2], ObufLimit::default());
        for (bad, why) in [
            ("normal 1 2", "Wrong number"),
            ("master 1 2 3", "Invalid client class"),
            ("normal x 2 3", "Error in hard"),
            ("normal 1 2 -3", "Error in hard"),
        ] {
            let e = c.set("client-output-buffer-limit", bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let f = Config::from_args(&args(
            "--client-output-buffer-limit pubsub 64mb 32mb 30 --client-output-buffer-limit normal 1 1 1",
        ))
        .unwrap();
        assert_eq!(f.obuf_limits()[2].hard_bytes, 64 << 20);
        assert_eq!(f.obuf_limits()[0].soft_seconds, 1);
    }
}
