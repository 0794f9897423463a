//! The command layer's view of the server: routing facts from the cluster core
//! and the server-level commands (CLUSTER, INFO, CONFIG).

use bytes::Bytes;

use super::blocking::WaitRequest;
use super::clients::Clients;
use super::info::{self, InfoSources};
use super::log::{parse_level, Logger};
use super::migrate::MigrateSockets;
use super::{now_ms, Node, Stats};
use crate::cluster::{Cluster, LogLevel, SlotRoute};
use crate::commands::{self, CallStats, ClientAdmin, ClientKind, ClientState, Host, PauseKind};
use crate::config::Config;
use crate::pubsub::PubSub;
use crate::replication::Replication;
use crate::resp::Frame;
use crate::store::Db;

impl Node {
    /// Applies one command as redis's master client does (a replica's
    /// stream, an AOF being loaded): no redirection, no expiry of existing
    /// keys. Returns the error reply's text if the command failed.
    pub(super) fn apply_from_master(&mut self, args: Vec<Bytes>) -> Option<String> {
        let mut host = HostCtx::new(
            &mut self.cluster,
            &mut self.config,
            &mut self.stats,
            &mut self.logger,
            &mut self.repl.state,
            &mut self.migrate,
        );
        match commands::apply_replicated(&mut host, &mut self.db, args) {
            Frame::Error(e) => Some(e),
            _ => None,
        }
    }

    /// [`Node::apply_from_master`] for the replication stream: a failed
    /// command is logged as redis logs it.
    pub(super) fn apply_stream_command(&mut self, args: Vec<Bytes>) {
        let name =
            String::from_utf8_lossy(args.first().map(|a| &a[..]).unwrap_or_default()).into_owned();
        if let Some(e) = self.apply_from_master(args) {
            let text = format!(
                "== CRITICAL == This replica is sending an error to its master: '{e}' after processing the command '{name}'"
            );
            self.log(LogLevel::Warning, &text);
        }
    }
}

/// Borrowed pieces of the node that commands may touch.
pub(super) struct HostCtx<'a> {
    cluster: &'a mut Option<Cluster>,
    config: &'a mut Config,
    stats: &'a mut Stats,
    logger: &'a mut Logger,
    repl: &'a mut Replication,
    migrate: &'a mut MigrateSockets,
    /// The client's last write offset (redis `c->woff`), for WAIT.
    woff: u64,
    /// WAIT may block: the request is a top-level WAIT (not inside EXEC).
    may_block: bool,
    /// Set by WAIT when it has to block; the client task serves it unlocked.
    pending_wait: Option<WaitRequest>,
    /// The client registry, for requests from a client connection.
    clients: Option<&'a mut Clients>,
    /// The time of this pass (redis caches `mstime` per event loop pass);
    /// `None` reads the clock.
    now: Option<u64>,
}

impl<'a> HostCtx<'a> {
    pub(super) fn new(
        cluster: &'a mut Option<Cluster>,
        config: &'a mut Config,
        stats: &'a mut Stats,
        logger: &'a mut Logger,
        repl: &'a mut Replication,
        migrate: &'a mut MigrateSockets,
    ) -> Self {
        HostCtx {
            cluster,
            config,
            stats,
            logger,
            repl,
            migrate,
            woff: 0,
            may_block: false,
            pending_wait: None,
            clients: None,
            now: None,
        }
    }

    /// Uses `now` (Unix ms) as the time of every request of this pass.
    pub(super) fn at(mut self, now: u64) -> Self {
        self.now = Some(now);
        self
    }

    fn clock(&self) -> u64 {
        self.now.unwrap_or_else(now_ms)
    }

    /// For a client connection: CLIENT LIST/KILL, Pub/Sub and pauses reach
    /// the other connections through the registry.
    pub(super) fn with_clients(mut self, clients: &'a mut Clients, slot: usize) -> Self {
        let _ = slot;
        self.clients = Some(clients);
        self
    }

    /// For a client's request: its write offset, and whether a WAIT may block.
    pub(super) fn for_client(mut self, woff: u64, may_block: bool) -> Self {
        self.woff = woff;
        self.may_block = may_block;
        self
    }

    /// The WAIT the command asked to block in, if any (its reply is then a
    /// placeholder to discard).
    pub(super) fn take_pending_wait(&mut self) -> Option<WaitRequest> {
        self.pending_wait.take()
    }

    fn is_replica_node(&self) -> bool {
        self.repl.is_replica() || self.cluster.as_ref().is_some_and(|c| c.is_replica())
    }

    /// BGREWRITEAOF: the shell starts the rewrite at the end of this pass
    /// (it needs the whole node, which commands don't see).
    fn bgrewriteaof(&mut self) -> Frame {
        if !self.stats.aof.enabled {
            return Frame::error("ERR hearsay-node rewrites the AOF only with appendonly yes");
        }
        if self.stats.aof.rewrite_in_progress {
            return Frame::error("ERR Background append only file rewriting already in progress");
        }
        self.stats.aof_rewrite_requested = true;
        Frame::Simple("Background append only file rewriting started".into())
    }

    /// INFO's `async_loading`: a full sync under `repl-diskless-load
    /// swapdb` is under way while the old data keeps being served (hearsay
    /// always works that way; redis says so only in that mode).
    fn async_loading(&self) -> bool {
        self.config.get("repl-diskless-load") == Some("swapdb")
            && self
                .repl
                .upstream()
                .is_some_and(|u| u.state == crate::replication::LinkState::Transfer)
    }

    /// BGSAVE [SCHEDULE]: the shell starts it at the end of the pass.
    fn bgsave(&mut self, args: &[Bytes]) -> Frame {
        match args {
            [] => {}
            [s] if s.eq_ignore_ascii_case(b"schedule") => {}
            _ => return Frame::error(crate::commands::err::SYNTAX),
        }
        if self.stats.rdb.bgsave_in_progress || self.stats.rdb.bgsave_requested {
            return Frame::error("ERR Background save already in progress");
        }
        self.stats.rdb.bgsave_requested = true;
        Frame::Simple("Background saving started".into())
    }

    /// WAIT numreplicas timeout (redis `waitCommand`, same checks and texts).
    /// REPLICAOF host port | NO ONE on a standalone node (redis
    /// `replicaofCommand`); the link follows at the end of the pass.
    fn replicaof(&mut self, args: &[Bytes], client: &ClientState) -> Frame {
        let [host, port] = args else {
            return Frame::wrong_arity("replicaof");
        };
        let who = format!("id={} addr={}", client.id, client.addr);
        if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
            if self.repl.standalone_target().is_some() {
                self.repl.set_standalone_master(None);
                self.logger.log(
                    LogLevel::Notice,
                    false,
                    &format!("MASTER MODE enabled (user request from '{who}')"),
                );
            }
            return Frame::ok();
        }
        let Some(port) = crate::resp::string2ll(port).and_then(|p| u16::try_from(p).ok()) else {
            return Frame::error("ERR Invalid master port");
        };
        let host = String::from_utf8_lossy(host).into_owned();
        if self
            .repl
            .standalone_target()
            .is_some_and(|(_, h, p)| h.eq_ignore_ascii_case(&host) && p == port)
        {
            self.logger.log(
                LogLevel::Notice,
                true,
                "REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.",
            );
            return Frame::Simple("OK Already connected to specified master".into());
        }
        self.logger.log(
            LogLevel::Notice,
            true,
            &format!("REPLICAOF {host}:{port} enabled (user request from '{who}')"),
        );
        self.repl.set_standalone_master(Some((host, port)));
        Frame::ok()
    }

    fn wait(&mut self, args: &[Bytes]) -> Frame {
        if self.is_replica_node() {
            return Frame::error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
        }
        let (Some(num), Some(timeout)) = (args.first(), args.get(1)) else {
            return Frame::wrong_arity("wait");
        };
        let Some(numreplicas) = crate::resp::string2ll(num) else {
            return Frame::error("ERR value is not an integer or out of range");
        };
        let Some(timeout_ms) = crate::resp::string2ll(timeout) else {
            return Frame::error("ERR timeout is not an integer or out of range");
        };
        if timeout_ms < 0 {
            return Frame::error("ERR timeout is negative");
        }
        if timeout_ms > 0 && timeout_ms > i64::MAX - now_ms() as i64 {
            return Frame::error("ERR timeout is out of range");
        }
        let acks = self.repl.count_acks(self.woff);
        if acks as i64 >= numreplicas || !self.may_block {
            return Frame::Integer(acks as i64);
        }
        self.pending_wait = Some(WaitRequest {
            offset: self.woff,
            numreplicas,
            timeout_ms: timeout_ms as u64,
        });
        Frame::Null
    }

    /// REPLCONF inside a transaction (outside one, the client task keeps the
    /// options on the connection): the handshake options are answered OK.
    fn replconf(args: &[Bytes]) -> Frame {
        if !args.len().is_multiple_of(2) {
            return Frame::error(crate::commands::err::SYNTAX);
        }
        for pair in args.chunks(2) {
            let opt = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            if !matches!(
                opt.as_str(),
                "listening-port"
                    | "ip-address"
                    | "capa"
                    | "ack"
                    | "getack"
                    | "rdb-only"
                    | "rdb-filter-only"
            ) {
                return Frame::Error(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(&pair[0])
                ));
            }
        }
        Frame::ok()
    }

    fn info(&self, args: &[Bytes], db: &Db) -> Frame {
        let args: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let src = InfoSources {
            stats: self.stats,
            config: self.config,
            clients: self.clients.as_deref(),
            cluster: self.cluster.as_ref(),
            repl: self.repl,
            db,
            async_loading: self.async_loading(),
            loading: blocking_load(self.config, self.repl),
        };
        Frame::Verbatim(info::render(&src, &args))
    }

    fn config_command(&mut self, args: &[Bytes], resp3: bool) -> Frame {
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        let Some(sub) = args.first().map(|a| text(a).to_ascii_lowercase()) else {
            return Frame::wrong_arity("config");
        };
        match sub.as_str() {
            "get" if args.len() >= 2 => {
                let mut pairs = Vec::new();
                for pat in &args[1..] {
                    for (name, value) in self.config.get_matching(&text(pat)) {
                        if !pairs.iter().any(|(n, _): &(String, String)| n == name) {
                            pairs.push((name.to_string(), value));
                        }
                    }
                }
                let _ = resp3;
                Frame::Map(
                    pairs
                        .into_iter()
                        .map(|(n, v)| (Frame::bulk_str(&n), Frame::bulk_str(&v)))
                        .collect(),
                )
            }
            "set" if args.len() >= 3 && args.len() % 2 == 1 => {
                // Validate everything on a copy first, so a bad pair changes nothing.
                let mut next = self.config.clone();
                for pair in args[1..].chunks(2) {
                    if let Err(e) = next.set(&text(&pair[0]), &text(&pair[1])) {
                        return Frame::Error(e);
                    }
                }
                if let Some(c) = self.cluster.as_mut() {
                    match next.cluster_config() {
                        Ok(cc) => c.set_config(cc),
                        Err(e) => return Frame::Error(format!("ERR CONFIG SET failed - {e}")),
                    }
                }
                self.logger.level = parse_level(&next.loglevel());
                if let Some(c) = self.cluster.as_mut() {
                    c.set_log_level(self.logger.level);
                }
                if let Some(c) = self.clients.as_deref_mut() {
                    c.limits = super::clients::Limits::from_config(&next);
                }
                *self.config = next;
                Frame::ok()
            }
            "resetstat" if args.len() == 1 => {
                self.stats.reset();
                Frame::ok()
            }
            "rewrite" if args.len() == 1 => match self.config.rewrite_file() {
                Ok(()) => {
                    self.logger.log(
                        LogLevel::Notice,
                        false,
                        "CONFIG REWRITE executed with success.",
                    );
                    Frame::ok()
                }
                Err(e) => {
                    self.logger.log(
                        LogLevel::Warning,
                        false,
                        &format!("CONFIG REWRITE failed: {e}"),
                    );
                    Frame::Error(format!("ERR {e}"))
                }
            },
            "help" => Frame::Array(
                [
                    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GET <pattern>",
                    "SET <directive> <value>",
                    "RESETSTAT",
                    "REWRITE",
                    "HELP",
                ]
                .iter()
                .map(|s| Frame::Simple(s.to_string()))
                .collect(),
            ),
            "get" | "set" | "resetstat" | "rewrite" => Frame::wrong_arity(&format!("config|{sub}")),
            _ => Frame::Error(format!(
                "ERR unknown subcommand '{}'. Try CONFIG HELP.",
                args.first().map(text).unwrap_or_default()
            )),
        }
    }
}

impl Host for HostCtx<'_> {
    fn cluster_enabled(&self) -> bool {
        self.cluster.is_some()
    }

    fn slot_is_local(&self, slot: u16) -> bool {
        match self.cluster.as_ref() {
            Some(c) => c.slot_is_local(slot),
            None => true,
        }
    }

    fn route(&self, slot: u16) -> SlotRoute {
        match self.cluster.as_ref() {
            Some(c) => c.route(slot),
            None => SlotRoute {
                owner: None,
                owner_is_me: true,
                owner_is_my_master: false,
                migrating_to: None,
                importing: false,
            },
        }
    }

    fn cluster_state_ok(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.state_ok())
    }

    fn allow_reads_when_down(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.config().allow_reads_when_down)
    }

    fn now_ms(&self) -> u64 {
        self.clock()
    }

    fn is_replica(&self) -> bool {
        self.is_replica_node()
    }

    fn rdb_options(&self) -> crate::rdb::Options {
        self.config.rdb_options()
    }

    fn bug(&self, name: &str) -> bool {
        self.config.bugs.iter().any(|b| b == name)
    }

    fn migrate(
        &mut self,
        x: crate::commands::migrate::MigrateExchange<'_>,
    ) -> crate::commands::migrate::MigrateOutcome {
        self.migrate.exchange(&x, now_ms() / 1000)
    }

    fn take_scripts(&mut self) -> Option<Box<crate::commands::scripting::Engine>> {
        if self.stats.scripts.is_none() {
            match crate::commands::scripting::Engine::new() {
                Ok(e) => self.stats.scripts = Some(Box::new(e)),
                Err(e) => {
                    self.logger.log(
                        LogLevel::Warning,
                        false,
                        &format!("Failed creating the Lua engine: {e}"),
                    );
                    return None;
                }
            }
        }
        self.stats.scripts.take()
    }

    fn put_scripts(&mut self, engine: Box<crate::commands::scripting::Engine>) {
        self.stats.scripts = Some(engine);
    }

    fn request_shutdown(&mut self, save: Option<bool>) -> Result<(), String> {
        self.stats.shutdown = Some(save);
        Ok(())
    }

    fn debug(&mut self, args: &[Bytes], client: &ClientState) -> Option<Frame> {
        // redis `enable-debug-command`: yes, local (loopback clients), or no.
        let allowed = match self.config.get("enable-debug-command") {
            Some("yes") => true,
            Some("local") => {
                client.addr.starts_with("127.")
                    || client.addr.starts_with("[::1]")
                    || client.addr.is_empty()
            }
            _ => false,
        };
        if !allowed {
            return Some(Frame::error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."));
        }
        let sub = args.get(1)?.to_ascii_lowercase();
        match (&sub[..], args.len()) {
            (b"drop-cluster-packet-filter", 3) => {
                let Some(t) = crate::resp::string2ll(&args[2]) else {
                    return Some(Frame::error("ERR value is not an integer or out of range"));
                };
                if let Some(c) = self.cluster.as_mut() {
                    c.set_drop_packet_filter(u16::try_from(t).ok());
                }
                Some(Frame::ok())
            }
            (b"set-active-expire", 3) => {
                self.stats.active_expire_off = &args[2][..] == b"0";
                Some(Frame::ok())
            }
            (b"clusterlink", 5) if args[2].eq_ignore_ascii_case(b"kill") => {
                let Some(c) = self.cluster.as_mut() else {
                    return Some(Frame::error(
                        "ERR Debug option only available for cluster mode enabled setup!",
                    ));
                };
                Some(match c.debug_kill_link(&args[3], &args[4]) {
                    Ok(()) => Frame::ok(),
                    Err(e) => Frame::Error(format!("ERR {e}")),
                })
            }
            (b"log", 3) => {
                let text = format!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
                self.logger.log(LogLevel::Warning, false, &text);
                Some(Frame::ok())
            }
            _ => None,
        }
    }

    fn requirepass(&self) -> Option<String> {
        self.config
            .get("requirepass")
            .filter(|p| !p.is_empty())
            .map(str::to_string)
    }

    fn call_stats(&mut self) -> Option<&mut CallStats> {
        Some(&mut self.stats.calls)
    }

    fn pause_kind(&self) -> PauseKind {
        let failover = self.cluster.as_ref().and_then(|c| c.client_pause_until());
        match self.clients.as_deref() {
            Some(c) => c.pause_kind(self.clock(), failover),
            None if failover.is_some_and(|t| self.clock() < t) => PauseKind::Write,
            None => PauseKind::Off,
        }
    }

    fn allow_pubsubshard_when_down(&self) -> bool {
        self.config.get("cluster-allow-pubsubshard-when-down") != Some("no")
    }

    fn pubsub(&mut self) -> Option<&mut PubSub> {
        self.clients.as_deref_mut().map(|c| &mut c.pubsub)
    }

    fn publish(&mut self, channel: &Bytes, message: &Bytes, shard: bool, me: &ClientState) -> i64 {
        let _ = me;
        let now = self.clock();
        let mut receivers = 0;
        if let Some(clients) = self.clients.as_deref_mut() {
            let limits = clients.limits.obuf;
            let (n, logs) = clients.deliver(channel, message, shard, &limits, now);
            receivers = n;
            for log in logs {
                self.logger.log(LogLevel::Warning, false, &log);
            }
        }
        if let Some(c) = self.cluster.as_mut() {
            c.publish(now, channel, message, shard);
        }
        receivers as i64
    }

    fn client_admin(&mut self, req: ClientAdmin, me: &mut ClientState, now_ms: u64) -> Frame {
        // A replica's link to its master is a client too (redis's master
        // client): CLIENT KILL may match it, and the shell then drops the link.
        let master_killed = match (&req, self.repl.master_client_addr()) {
            (ClientAdmin::Kill { filter, .. }, Some(addr)) => {
                let mut link = ClientState::master_link();
                link.addr = addr;
                filter.matches(&link)
            }
            _ => false,
        };
        if master_killed {
            self.repl.request_master_link_kill();
        }
        // And so are our replicas' links (type replica).
        let replicas_killed: Vec<_> = match &req {
            ClientAdmin::Kill { filter, .. } => self
                .repl
                .replicas()
                .filter(|(_, r)| {
                    filter.matches_conn(
                        ClientKind::Replica,
                        &r.conn.addr,
                        &r.conn.laddr,
                        r.conn.client_id,
                    )
                })
                .map(|(id, _)| id)
                .collect(),
            _ => Vec::new(),
        };
        let others = usize::from(master_killed) + replicas_killed.len();
        for id in replicas_killed {
            self.repl.request_replica_kill(id);
        }
        let reply = match self.clients.as_deref_mut() {
            Some(c) => c.admin(req.clone(), me, now_ms),
            None => crate::commands::client_admin_alone(req.clone(), me, now_ms),
        };
        match (others, &req, reply) {
            (1.., ClientAdmin::Kill { old_style, .. }, Frame::Integer(n)) if !old_style => {
                Frame::Integer(n + others as i64)
            }
            (
                1..,
                ClientAdmin::Kill {
                    old_style: true, ..
                },
                _,
            ) => Frame::ok(),
            (_, _, reply) => reply,
        }
    }

    fn server_command(
        &mut self,
        name: &str,
        args: &[Bytes],
        db: &mut Db,
        client: &ClientState,
    ) -> Option<Frame> {
        match name {
            "cluster" => Some(match self.cluster.as_mut() {
                Some(c) => c.command(now_ms(), args, &*db, client.resp3),
                None => Frame::error("ERR This instance has cluster support disabled"),
            }),
            "info" => Some(self.info(args, db)),
            "config" => Some(self.config_command(args, client.resp3)),
            "role" => Some(self.repl.role_frame()),
            "bgrewriteaof" => Some(self.bgrewriteaof()),
            "bgsave" => Some(self.bgsave(args)),
            "lastsave" => Some(Frame::Integer(self.stats.rdb.last_save_s as i64)),
            // Outside MULTI the client task runs SAVE (it needs the node).
            "save" => Some(Frame::error("ERR Command not allowed inside a transaction")),
            "wait" => Some(self.wait(args)),
            "replicaof" | "slaveof" => Some(if self.cluster.is_some() {
                Frame::error("ERR REPLICAOF not allowed in cluster mode.")
            } else {
                self.replicaof(args, client)
            }),
            // Outside MULTI the client task takes these over; inside,
            // they are refused before they get here (no-multi).
            "sync" | "psync" => Some(Frame::error("ERR Command not allowed inside a transaction")),
            "replconf" => Some(Self::replconf(args)),
            _ => None,
        }
    }
}

/// redis `server.loading` (not `async_loading`): a full sync's snapshot is
/// being parsed and the mode is not `repl-diskless-load swapdb`. INFO says
/// `loading:1` and commands without the `loading` flag get `-LOADING`.
pub(super) fn blocking_load(config: &Config, repl: &Replication) -> bool {
    repl.is_loading() && config.get("repl-diskless-load") != Some("swapdb")
}
