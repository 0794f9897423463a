//! The CLUSTER command (`clusterCommand`, reference section 6 and 4.4), with
//! redis 7.0's command-table arity checks and error texts.

use bytes::Bytes;

use crate::events::{
    AddedVia, EpochReason, EventKind, ManualFailoverMode, RemovedReason, SlotChangeReason,
};
use crate::resp::Frame;
use crate::slots::{key_slot, CLUSTER_SLOTS};
use crate::wire::{msg_type, node_flags::*};

use super::cron::{TODO_FSYNC_CONFIG, TODO_SAVE_CONFIG, TODO_UPDATE_STATE};
use super::node::{Ms, Node, NodeRef};
use super::slots::all_slots;
use super::{Action, Cluster, EndpointType, Keyspace, LogLevel, BLACKLIST_TTL_SECS, PORT_INCR};

/// Subcommands and their arity as in `src/commands/cluster-*.json` (7.0.15):
/// positive = exact argc, negative = minimum argc, argc counting "CLUSTER".
const SUBCOMMANDS: &[(&str, i64)] = &[
    ("addslots", -3),
    ("addslotsrange", -4),
    ("bumpepoch", 2),
    ("count-failure-reports", 3),
    ("countkeysinslot", 3),
    ("delslots", -3),
    ("delslotsrange", -4),
    ("failover", -2),
    ("flushslots", 2),
    ("forget", 3),
    ("getkeysinslot", 4),
    ("help", 2),
    ("info", 2),
    ("keyslot", 3),
    ("links", 2),
    ("meet", -4),
    ("myid", 2),
    ("nodes", 2),
    ("replicas", 3),
    ("replicate", 3),
    ("reset", -2),
    ("saveconfig", 2),
    ("set-config-epoch", 3),
    ("setslot", -4),
    ("shards", 2),
    ("slaves", 3),
    ("slots", 2),
];

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "HELP",
    "    Prints this help.",
];

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX_ERROR: &str = "ERR syntax error";

/// Argument text as redis's `%s` prints it: up to the first NUL, newlines
/// turned into spaces (error replies are one line).
fn text(arg: &[u8]) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    String::from_utf8_lossy(arg.get(..end).unwrap_or(arg)).replace(['\r', '\n'], " ")
}

/// `%.128s`.
fn text128(arg: &[u8]) -> String {
    text(arg.get(..128).unwrap_or(arg))
}

fn err(msg: impl AsRef<str>) -> Frame {
    Frame::Error(format!("ERR {}", msg.as_ref()))
}

/// redis `string2ll`: strict decimal, optional '-', no '+', spaces or leading zeros.
pub(crate) fn parse_ll(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// `getSlotOrReply`.
fn parse_slot(arg: &[u8]) -> Result<u16, Frame> {
    parse_ll(arg)
        .filter(|&s| (0..CLUSTER_SLOTS as i64).contains(&s))
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| err("Invalid or out of range slot"))
}

fn bulk_str(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn pair(k: &str, v: Frame) -> (Frame, Frame) {
    (bulk_str(k), v)
}

fn int(v: impl TryInto<i64>) -> Frame {
    Frame::Integer(v.try_into().unwrap_or(i64::MAX))
}

impl Cluster {
    pub(super) fn cluster_command(
        &mut self,
        now: Ms,
        args: &[Bytes],
        keys: &dyn Keyspace,
    ) -> Frame {
        let Some(sub) = args.first() else {
            return err("wrong number of arguments for 'cluster' command");
        };
        let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
        let Some(&(name, arity)) = SUBCOMMANDS.iter().find(|(n, _)| *n == lower) else {
            return err(format!(
                "unknown subcommand '{}'. Try CLUSTER HELP.",
                text128(sub)
            ));
        };
        let argc = args.len() as i64 + 1;
        if (arity > 0 && argc != arity) || argc < -arity {
            return err(format!(
                "wrong number of arguments for 'cluster|{name}' command"
            ));
        }
        // Reached for argument counts the table allows but the subcommand does not.
        let syntax = || {
            err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try CLUSTER HELP.",
                text128(sub)
            ))
        };
        let arg = |i: usize| args.get(i).map(|b| b.as_ref()).unwrap_or(&[]);

        match name {
            "help" => Frame::Array(
                HELP.iter()
                    .map(|l| Frame::Simple((*l).to_string()))
                    .collect(),
            ),
            "meet" if argc == 4 || argc == 5 => {
                self.cmd_meet(now, arg(1), arg(2), args.get(3).map(|b| b.as_ref()))
            }
            "meet" => syntax(),
            "nodes" => Frame::Verbatim(self.nodes_description(0)),
            "myid" => Frame::Bulk(Bytes::copy_from_slice(&self.me().name.0)),
            "slots" => self.slots_reply(),
            "shards" => self.shards_reply(),
            "flushslots" => {
                if keys.key_count() != 0 {
                    return err("DB must be empty to perform CLUSTER FLUSHSLOTS.");
                }
                self.del_node_slots(self.myself, SlotChangeReason::FlushSlots);
                self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
                Frame::ok()
            }
            "addslots" | "delslots" => {
                let mut slots = Vec::with_capacity(args.len());
                for a in args.iter().skip(1) {
                    match parse_slot(a) {
                        Ok(s) => slots.push((s, s)),
                        Err(e) => return e,
                    }
                }
                self.update_slots_cmd(&slots, name == "delslots")
            }
            "addslotsrange" | "delslotsrange" => {
                if argc % 2 == 1 {
                    return err(format!(
                        "wrong number of arguments for 'cluster|{name}' command"
                    ));
                }
                let mut ranges = Vec::new();
                for pair in args.get(1..).unwrap_or(&[]).chunks(2) {
                    let [a, b] = pair else { continue };
                    let start = match parse_slot(a) {
                        Ok(s) => s,
                        Err(e) => return e,
                    };
                    let end = match parse_slot(b) {
                        Ok(s) => s,
                        Err(e) => return e,
                    };
                    if start > end {
                        return err(format!(
                            "start slot number {start} is greater than end slot number {end}"
                        ));
                    }
                    ranges.push((start, end));
                }
                self.update_slots_cmd(&ranges, name == "delslotsrange")
            }
            "setslot" => self.cmd_setslot(now, args, keys),
            "bumpepoch" => {
                let bumped = self.bump_epoch_without_consensus(EpochReason::Bump);
                let word = if bumped { "BUMPED" } else { "STILL" };
                Frame::Simple(format!("{word} {}", self.me().config_epoch))
            }
            "info" => Frame::Verbatim(self.cluster_info_text()),
            "saveconfig" => {
                // The shell writes the file; a failure there is fatal, as in redis.
                self.save_config_now(true);
                Frame::ok()
            }
            "keyslot" => int(key_slot(arg(1))),
            "countkeysinslot" => match parse_ll(arg(1)) {
                None => Frame::Error(NOT_INTEGER.into()),
                Some(s) if !(0..CLUSTER_SLOTS as i64).contains(&s) => err("Invalid slot"),
                Some(s) => int(keys.count_keys_in_slot(u16::try_from(s).unwrap_or(0))),
            },
            "getkeysinslot" => {
                let (Some(slot), Some(max)) = (parse_ll(arg(1)), parse_ll(arg(2))) else {
                    return Frame::Error(NOT_INTEGER.into());
                };
                if !(0..CLUSTER_SLOTS as i64).contains(&slot) || max < 0 {
                    return err("Invalid slot or number of keys");
                }
                let slot = u16::try_from(slot).unwrap_or(0);
                let n = usize::try_from(max)
                    .unwrap_or(usize::MAX)
                    .min(keys.count_keys_in_slot(slot));
                Frame::Array(
                    keys.keys_in_slot(slot, n)
                        .into_iter()
                        .take(n)
                        .map(Frame::Bulk)
                        .collect(),
                )
            }
            "forget" => self.cmd_forget(now, arg(1)),
            "replicate" => self.cmd_replicate(now, arg(1), keys),
            "slaves" | "replicas" => {
                let Some(r) = self.lookup_arg(arg(1)) else {
                    return err(format!("Unknown node {}", text(arg(1))));
                };
                let Some(n) = self.node(r) else {
                    return err(format!("Unknown node {}", text(arg(1))));
                };
                if n.is_replica() {
                    return err("The specified node is not a master");
                }
                let reps = n.replicas.clone();
                Frame::Array(
                    reps.into_iter()
                        .map(|rep| bulk_str(&self.describe_node(rep)))
                        .collect(),
                )
            }
            "count-failure-reports" => match self.lookup_arg(arg(1)) {
                None => err(format!("Unknown node {}", text(arg(1)))),
                Some(r) => int(self.failure_reports_count(now, r)),
            },
            "failover" if argc == 2 || argc == 3 => {
                self.cmd_failover(now, args.get(1).map(|b| b.as_ref()))
            }
            "failover" => syntax(),
            "set-config-epoch" => self.cmd_set_config_epoch(arg(1)),
            "reset" if argc == 2 || argc == 3 => {
                let hard = match args.get(1) {
                    None => false,
                    Some(a) if a.eq_ignore_ascii_case(b"hard") => true,
                    Some(a) if a.eq_ignore_ascii_case(b"soft") => false,
                    Some(_) => return Frame::Error(SYNTAX_ERROR.into()),
                };
                if self.me().is_master() && keys.key_count() != 0 {
                    return err("CLUSTER RESET can't be called with master nodes containing keys");
                }
                self.reset(hard);
                Frame::ok()
            }
            "reset" => syntax(),
            "links" => self.links_reply(),
            _ => syntax(),
        }
    }

    /// CLUSTER INFO text.
    pub(super) fn cluster_info_text(&self) -> String {
        let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
        // Per owner (its bitmap mirrors `slot_owner`), not per slot: a node
        // lookup for each of 16384 slots was most of CLUSTER INFO.
        for n in self.nodes.values().filter(|n| n.numslots > 0) {
            assigned += n.numslots;
            if n.failed() {
                fail += n.numslots;
            } else if n.timed_out() {
                pfail += n.numslots;
            } else {
                ok += n.numslots;
            }
        }
        let mut s = format!(
            "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
            if self.state_ok { "ok" } else { "fail" },
            self.nodes.len(),
            self.size,
            self.current_epoch,
            self.my_epoch(),
        );
        for (dir, stats) in [
            ("sent", &self.stats_sent),
            ("received", &self.stats_received),
        ] {
            let mut total = 0;
            for (t, &count) in stats.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                total += count;
                let tname = msg_type::name(u16::try_from(t).unwrap_or(u16::MAX));
                s.push_str(&format!("cluster_stats_messages_{tname}_{dir}:{count}\r\n"));
            }
            s.push_str(&format!("cluster_stats_messages_{dir}:{total}\r\n"));
        }
        s.push_str(&format!(
            "total_cluster_links_buffer_limit_exceeded:{}\r\n",
            self.links_buffer_limit_exceeded
        ));
        s
    }

    /// CLUSTER MEET: `clusterStartHandshake`.
    fn cmd_meet(&mut self, now: Ms, ip: &[u8], port: &[u8], cport: Option<&[u8]>) -> Frame {
        let Some(p) = parse_ll(port) else {
            return err(format!("Invalid TCP base port specified: {}", text(port)));
        };
        let cp = match cport {
            Some(c) => match parse_ll(c) {
                Some(v) => v,
                None => return err(format!("Invalid TCP bus port specified: {}", text(c))),
            },
            None => p.saturating_add(i64::from(PORT_INCR)),
        };
        let invalid = || {
            err(format!(
                "Invalid node address specified: {}:{}",
                text(ip),
                text(port)
            ))
        };
        // inet_pton: a literal IPv4/IPv6 address, never a hostname.
        let Some(addr) = std::str::from_utf8(ip)
            .ok()
            .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        else {
            return invalid();
        };
        let (Ok(p), Ok(cp)) = (u16::try_from(p), u16::try_from(cp)) else {
            return invalid();
        };
        if p == 0 || cp == 0 {
            return invalid();
        }
        let norm = addr.to_string();
        let in_progress = self.nodes.values().any(|n| {
            n.in_handshake() && n.ip.eq_ignore_ascii_case(&norm) && n.port == p && n.cport == cp
        });
        if !in_progress {
            let name = self.random_name();
            let mut n = Node::new(name, HANDSHAKE | MEET, now);
            n.ip = norm;
            n.port = p;
            n.cport = cp;
            let ev = EventKind::NodeAdded {
                id: n.id(),
                via: AddedVia::Meet,
                ip: n.ip.clone(),
                port: p,
                cport: cp,
            };
            self.add_node(n);
            self.event(ev);
        }
        Frame::ok()
    }

    /// ADDSLOTS/DELSLOTS and their RANGE forms: validate everything, then apply.
    fn update_slots_cmd(&mut self, ranges: &[(u16, u16)], del: bool) -> Frame {
        let mut seen = vec![false; CLUSTER_SLOTS];
        for &(start, end) in ranges {
            for s in start..=end {
                let assigned = self.owner(s).is_some();
                if del && !assigned {
                    return err(format!("Slot {s} is already unassigned"));
                }
                if !del && assigned {
                    return err(format!("Slot {s} is already busy"));
                }
                let Some(flag) = seen.get_mut(usize::from(s)) else {
                    continue;
                };
                if *flag {
                    return err(format!("Slot {s} specified multiple times"));
                }
                *flag = true;
            }
        }
        for s in all_slots().filter(|&s| seen.get(usize::from(s)).copied().unwrap_or(false)) {
            // We are now the real owner: an import is over.
            if let Some(i) = self.importing_from.get_mut(usize::from(s)) {
                *i = None;
            }
            if del {
                self.del_slot(s, SlotChangeReason::DelSlots);
            } else {
                self.add_slot(self.myself, s, SlotChangeReason::AddSlots);
            }
        }
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Frame::ok()
    }

    fn cmd_setslot(&mut self, now: Ms, args: &[Bytes], keys: &dyn Keyspace) -> Frame {
        if self.me().is_replica() {
            return err("Please use SETSLOT only with masters.");
        }
        let arg = |i: usize| args.get(i).map(|b| b.as_ref()).unwrap_or(&[]);
        let slot = match parse_slot(arg(1)) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let i = usize::from(slot);
        let action = String::from_utf8_lossy(arg(2)).to_ascii_lowercase();
        let argc = args.len() + 1;
        let me = self.myself;
        match (action.as_str(), argc) {
            ("migrating", 5) => {
                if self.owner(slot) != Some(me) {
                    return err(format!("I'm not the owner of hash slot {slot}"));
                }
                let Some(n) = self.lookup_arg(arg(3)) else {
                    return err(format!("I don't know about node {}", text(arg(3))));
                };
                if self.node(n).is_some_and(|n| n.is_replica()) {
                    return err("Target node is not a master");
                }
                if let Some(e) = self.migrating_to.get_mut(i) {
                    *e = Some(n);
                    self.slots_ever_opened = true;
                }
            }
            ("importing", 5) => {
                if self.owner(slot) == Some(me) {
                    return err(format!("I'm already the owner of hash slot {slot}"));
                }
                let Some(n) = self.lookup_arg(arg(3)) else {
                    return err(format!("I don't know about node {}", text(arg(3))));
                };
                if self.node(n).is_some_and(|n| n.is_replica()) {
                    return err("Target node is not a master");
                }
                if let Some(e) = self.importing_from.get_mut(i) {
                    *e = Some(n);
                    self.slots_ever_opened = true;
                }
            }
            ("stable", 4) => {
                if let Some(e) = self.importing_from.get_mut(i) {
                    *e = None;
                }
                if let Some(e) = self.migrating_to.get_mut(i) {
                    *e = None;
                }
            }
            ("node", 5) => {
                let Some(n) = self.lookup_arg(arg(3)) else {
                    return err(format!("Unknown node {}", text(arg(3))));
                };
                if self.node(n).is_some_and(|n| n.is_replica()) {
                    return err("Target node is not a master");
                }
                let keys_in_slot = keys.count_keys_in_slot(slot);
                if self.owner(slot) == Some(me) && n != me && keys_in_slot != 0 {
                    return err(format!(
                        "Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    ));
                }
                if keys_in_slot == 0 {
                    if let Some(e) = self.migrating_to.get_mut(i) {
                        *e = None;
                    }
                }
                let slot_was_mine = self.owner(slot) == Some(me);
                self.rebind_slot(slot, n, SlotChangeReason::SetSlot);
                // A master left without slots follows the new owner.
                if slot_was_mine
                    && n != me
                    && self.me().numslots == 0
                    && self.cfg.allow_replica_migration
                {
                    let name = self.name_of(n);
                    self.log(
                        LogLevel::Warning,
                        format!("Configuration change detected. Reconfiguring myself as a replica of {name}"),
                    );
                    self.set_my_master(now, n);
                    self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
                }
                // Closing an import: take a new epoch so the claim wins, and tell everyone.
                if n == me && self.importing_from.get(i).copied().flatten().is_some() {
                    if self.bump_epoch_without_consensus(EpochReason::Bump) {
                        self.log(
                            LogLevel::Warning,
                            format!("configEpoch updated after importing slot {slot}"),
                        );
                    }
                    if let Some(e) = self.importing_from.get_mut(i) {
                        *e = None;
                    }
                    self.broadcast_pong_all(now);
                }
            }
            _ => {
                return err(
                    "Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP",
                )
            }
        }
        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        Frame::ok()
    }

    fn cmd_forget(&mut self, now: Ms, id: &[u8]) -> Frame {
        let Some(r) = self.lookup_arg(id) else {
            return err(format!("Unknown node {}", text(id)));
        };
        if r == self.myself {
            return err("I tried hard but I can't forget myself...");
        }
        if self.me().is_replica() && self.me().replica_of == Some(r) {
            return err("Can't forget my master!");
        }
        let name = self.name_of(r);
        let secs = now.div_euclid(1000);
        self.blacklist.retain(|_, expire| *expire >= secs);
        self.blacklist.insert(name, secs + BLACKLIST_TTL_SECS);
        self.del_node(r, RemovedReason::Forgotten);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Frame::ok()
    }

    fn cmd_replicate(&mut self, now: Ms, id: &[u8], keys: &dyn Keyspace) -> Frame {
        let Some(r) = self.lookup_arg(id) else {
            return err(format!("Unknown node {}", text(id)));
        };
        if r == self.myself {
            return err("Can't replicate myself");
        }
        if self.node(r).is_some_and(|n| n.is_replica()) {
            return err("I can only replicate a master, not a replica.");
        }
        let me = self.me();
        if me.is_master() && (me.numslots != 0 || keys.key_count() != 0) {
            return err("To set a master the node must be empty and without assigned slots.");
        }
        self.set_my_master(now, r);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Frame::ok()
    }

    fn cmd_failover(&mut self, now: Ms, option: Option<&[u8]>) -> Frame {
        let mode = match option {
            None => ManualFailoverMode::Default,
            Some(o) if o.eq_ignore_ascii_case(b"force") => ManualFailoverMode::Force,
            Some(o) if o.eq_ignore_ascii_case(b"takeover") => ManualFailoverMode::Takeover,
            Some(_) => return Frame::Error(SYNTAX_ERROR.into()),
        };
        match self.manual_failover_command(now, mode) {
            Ok(()) => Frame::ok(),
            Err(text) => err(text),
        }
    }

    fn cmd_set_config_epoch(&mut self, arg: &[u8]) -> Frame {
        let Some(epoch) = parse_ll(arg) else {
            return Frame::Error(NOT_INTEGER.into());
        };
        let Ok(epoch) = u64::try_from(epoch) else {
            return err(format!("Invalid config epoch specified: {epoch}"));
        };
        if self.nodes.len() > 1 {
            return err("The user can assign a config epoch only when the node does not know any other node.");
        }
        if self.me().config_epoch != 0 {
            return err("Node config epoch is already non-zero");
        }
        self.set_config_epoch(self.myself, epoch, EpochReason::SetConfigEpoch);
        self.log(
            LogLevel::Warning,
            format!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH"),
        );
        if self.current_epoch < epoch {
            self.set_current_epoch(epoch, EpochReason::SetConfigEpoch);
        }
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Frame::ok()
    }

    /// `clusterReset`.
    pub(super) fn reset(&mut self, hard: bool) {
        if self.me().is_replica() {
            self.set_node_as_master(self.myself);
            // replicationUnsetMaster + emptyData: the shell stops replicating
            // (replication_master() is None now) and flushes.
            self.actions.push_back(Action::FlushAll);
        }
        self.close_all_slots();
        self.reset_manual_failover();
        for s in all_slots() {
            self.del_slot(s, SlotChangeReason::Reset);
        }
        let others: Vec<NodeRef> = self
            .nodes
            .keys()
            .copied()
            .filter(|&r| r != self.myself)
            .collect();
        for r in others {
            self.del_node(r, RemovedReason::Reset);
        }
        if hard {
            self.set_current_epoch(0, EpochReason::ResetHard);
            self.last_vote_epoch = 0;
            self.set_config_epoch(self.myself, 0, EpochReason::ResetHard);
            self.log(
                LogLevel::Warning,
                "configEpoch set to 0 via CLUSTER RESET HARD".to_string(),
            );
            let old = self.me().name;
            let new = self.random_name();
            self.by_name.remove(&old);
            self.by_name.insert(new, self.myself);
            self.me_mut().name = new;
            self.dict_cache.forget();
            self.log(LogLevel::Notice, format!("Node hard reset, now I'm {new}"));
        }
        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
    }

    /// A node's address for clients (redis `getPreferredEndpoint`): its IP,
    /// its hostname (`?` when it has none), or empty.
    pub(super) fn preferred_endpoint(&self, n: &Node) -> String {
        match self.config().preferred_endpoint {
            EndpointType::Ip => n.ip.clone(),
            EndpointType::Hostname if n.hostname.is_empty() => "?".into(),
            EndpointType::Hostname => n.hostname.clone(),
            EndpointType::UnknownEndpoint => String::new(),
        }
    }

    /// A node as CLUSTER SLOTS lists it (redis `addNodeToNodeReply`): the
    /// preferred endpoint, port, id, and the other endpoints as metadata.
    fn slot_node_entry(&self, n: &Node) -> Frame {
        let pref = self.config().preferred_endpoint;
        let endpoint = match pref {
            EndpointType::Ip => bulk_str(&n.ip),
            EndpointType::Hostname if n.hostname.is_empty() => bulk_str("?"),
            EndpointType::Hostname => bulk_str(&n.hostname),
            EndpointType::UnknownEndpoint => Frame::Null,
        };
        let mut meta = Vec::new();
        if pref != EndpointType::Ip {
            meta.push(pair("ip", bulk_str(&n.ip)));
        }
        if pref != EndpointType::Hostname && !n.hostname.is_empty() {
            meta.push(pair("hostname", bulk_str(&n.hostname)));
        }
        Frame::Array(vec![
            endpoint,
            int(n.port),
            Frame::Bulk(Bytes::copy_from_slice(&n.name.0)),
            Frame::Map(meta),
        ])
    }

    /// Replicas shown by SLOTS: not FAIL and with a non-zero known offset
    /// (a loading or never-synced replica is hidden).
    fn replica_available(&self, r: NodeRef) -> bool {
        let Some(n) = self.node(r) else { return false };
        let offset = if r == self.myself {
            self.my_repl_offset
        } else {
            n.repl_offset
        };
        !n.failed() && offset != 0
    }

    fn slots_reply(&self) -> Frame {
        let mut out = Vec::new();
        let emit = |run: Option<(NodeRef, u16, u16)>, out: &mut Vec<Frame>| {
            let Some((r, start, end)) = run else { return };
            let Some(n) = self.node(r) else { return };
            let mut entry = vec![int(start), int(end), self.slot_node_entry(n)];
            for &rep in &n.replicas {
                if self.replica_available(rep) {
                    if let Some(rn) = self.node(rep) {
                        entry.push(self.slot_node_entry(rn));
                    }
                }
            }
            out.push(Frame::Array(entry));
        };
        // Each owner's runs from its own bitmap (which `slot_owner` mirrors),
        // in slot order: clients ask after every MOVED, and a walk of the
        // 16384-entry owner table cost most of the reply.
        let mut runs: Vec<(u16, u16, NodeRef)> = Vec::new();
        for (&r, n) in &self.nodes {
            if n.numslots == 0 {
                continue;
            }
            runs.extend(n.slots.ranges().into_iter().map(|(a, b)| (a, b, r)));
        }
        runs.sort_unstable();
        for (a, b, r) in runs {
            emit(Some((r, a, b)), &mut out);
        }
        Frame::Array(out)
    }

    fn shard_node_details(&self, r: NodeRef) -> Frame {
        let Some(n) = self.node(r) else {
            return Frame::Map(Vec::new());
        };
        let mut m = vec![pair("id", Frame::Bulk(Bytes::copy_from_slice(&n.name.0)))];
        if n.port != 0 {
            m.push(pair("port", int(n.port)));
        }
        m.push(pair("ip", bulk_str(&n.ip)));
        m.push(pair("endpoint", bulk_str(&self.preferred_endpoint(n))));
        if !n.hostname.is_empty() {
            m.push(pair("hostname", bulk_str(&n.hostname)));
        }
        let offset = if r == self.myself {
            self.my_repl_offset
        } else {
            n.repl_offset
        };
        m.push(pair(
            "role",
            bulk_str(if n.is_replica() { "replica" } else { "master" }),
        ));
        m.push(pair("replication-offset", int(offset)));
        let health = if n.failed() {
            "fail"
        } else if n.is_replica() && offset == 0 {
            "loading"
        } else {
            "online"
        };
        m.push(pair("health", bulk_str(health)));
        Frame::Map(m)
    }

    fn shards_reply(&self) -> Frame {
        let mut shards = Vec::new();
        for (&r, n) in &self.nodes {
            if !n.is_master() {
                continue;
            }
            let slots = n
                .slots
                .ranges()
                .into_iter()
                .flat_map(|(a, b)| [int(a), int(b)])
                .collect();
            let mut nodes = vec![self.shard_node_details(r)];
            nodes.extend(n.replicas.iter().map(|&rep| self.shard_node_details(rep)));
            shards.push(Frame::Map(vec![
                pair("slots", Frame::Array(slots)),
                pair("nodes", Frame::Array(nodes)),
            ]));
        }
        Frame::Array(shards)
    }

    fn links_reply(&self) -> Frame {
        let mut out = Vec::new();
        for n in self.nodes.values() {
            for id in [n.link, n.inbound_link].into_iter().flatten() {
                let Some(l) = self.links.get(&id) else {
                    continue;
                };
                let dir = if l.inbound { "from" } else { "to" };
                // Readable once connected; a pending connect waits to write.
                let events = if l.connected { "r" } else { "w" };
                out.push(Frame::Map(vec![
                    pair("direction", bulk_str(dir)),
                    pair("node", Frame::Bulk(Bytes::copy_from_slice(&n.name.0))),
                    pair("create-time", int(l.ctime)),
                    pair("events", bulk_str(events)),
                    pair("send-buffer-allocated", int(0)),
                    pair("send-buffer-used", int(0)),
                ]));
            }
        }
        Frame::Array(out)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ll;

    #[test]
    fn parse_ll_is_strict_like_string2ll() {
        assert_eq!(parse_ll(b"0"), Some(0));
        assert_eq!(parse_ll(b"16383"), Some(16383));
        assert_eq!(parse_ll(b"-5"), Some(-5));
        assert_eq!(parse_ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"-0",
            b"x",
            b"9223372036854775808",
            b"1.5",
            b"-",
        ] {
            assert_eq!(parse_ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
