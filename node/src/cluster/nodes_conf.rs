//! The CLUSTER NODES text and nodes.conf, which share one line format
//! (reference 6.2, 6.8), and loading nodes.conf back.

use std::fmt::Write as _;

use crate::events::SlotChangeReason;
use crate::wire::node_flags::*;
use crate::wire::NodeName;

use super::node::{flags_text, Ms, Node, NodeRef};
use super::{Cluster, LoadError, LogLevel, PORT_INCR};

/// A node name as `Display` writes it (lossy UTF-8 of its 40 bytes).
fn push_name(s: &mut String, name: &NodeName) {
    match std::str::from_utf8(&name.0) {
        Ok(t) => s.push_str(t),
        Err(_) => s.push_str(&name.as_str()),
    }
}

/// `n` in decimal, as `{}` writes it.
fn push_int(s: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        s.push('-');
    }
    for &d in &buf[i..] {
        s.push(char::from(d));
    }
}

impl Cluster {
    /// One CLUSTER NODES line, without the newline (`clusterGenNodeDescription`).
    pub(super) fn describe_node(&self, r: NodeRef) -> String {
        let Some(n) = self.node(r) else {
            return String::new();
        };
        // Pieces pushed without the formatting machinery: snapshots and
        // nodes.conf saves render every line again and again.
        let mut s = String::with_capacity(160);
        push_name(&mut s, &n.name);
        s.push(' ');
        s.push_str(&n.ip);
        s.push(':');
        push_int(&mut s, i64::from(n.port));
        s.push('@');
        push_int(&mut s, i64::from(n.cport));
        if !n.hostname.is_empty() {
            s.push(',');
            s.push_str(&n.hostname);
        }
        s.push(' ');
        s.push_str(&flags_text(n.flags));
        s.push(' ');
        let master = n.replica_of.and_then(|m| self.node(m));
        match master {
            Some(m) => push_name(&mut s, &m.name),
            None => s.push('-'),
        }
        // A replica shows its master's configEpoch.
        let epoch = match master {
            Some(m) if n.is_replica() => m.config_epoch,
            _ => n.config_epoch,
        };
        let link_state = if n.link.is_some() || n.has(MYSELF) {
            "connected"
        } else {
            "disconnected"
        };
        s.push(' ');
        push_int(&mut s, n.ping_sent);
        s.push(' ');
        push_int(&mut s, n.pong_received);
        s.push(' ');
        s.push_str(&epoch.to_string());
        s.push(' ');
        s.push_str(link_state);
        for (a, b) in n.slots.ranges() {
            s.push(' ');
            push_int(&mut s, i64::from(a));
            if a != b {
                s.push('-');
                push_int(&mut s, i64::from(b));
            }
        }
        // Open slots are only shown on our own line. (The quick looks first:
        // whether a slot was ever opened, then whether one is open now; the
        // pairwise walk of both 16384-entry tables costs several times more.)
        // (A fold without early exit: it vectorises.)
        let any_open = || {
            self.migrating_to
                .iter()
                .chain(&self.importing_from)
                .fold(false, |a, o| a | o.is_some())
        };
        if n.has(MYSELF) && self.slots_ever_opened && any_open() {
            for (j, (m, i)) in self
                .migrating_to
                .iter()
                .zip(&self.importing_from)
                .enumerate()
            {
                if let Some(t) = m {
                    let _ = write!(s, " [{j}->-{}]", self.name_of(*t));
                } else if let Some(f) = i {
                    let _ = write!(s, " [{j}-<-{}]", self.name_of(*f));
                }
            }
        }
        s
    }

    /// All node lines except nodes having any flag of `filter`.
    pub(super) fn nodes_description(&self, filter: u16) -> String {
        let mut out = String::new();
        for (&r, n) in &self.nodes {
            if n.flags & filter != 0 {
                continue;
            }
            out.push_str(&self.describe_node(r));
            out.push('\n');
        }
        out
    }

    /// nodes.conf: every non-handshake node, then the `vars` line.
    pub(super) fn config_file_contents(&self) -> String {
        let mut s = self.nodes_description(HANDSHAKE);
        let _ = writeln!(
            s,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        );
        s
    }

    fn load_or_create(&mut self, name: NodeName, now: Ms) -> NodeRef {
        match self.by_name.get(&name) {
            Some(&r) => r,
            None => self.add_node(Node::new(name, 0, now)),
        }
    }

    /// `clusterLoadConfig`. The caller logs "Node configuration loaded".
    pub(super) fn load_config(&mut self, text: &str, now: Ms) -> Result<(), LoadError> {
        let mut myself: Option<NodeRef> = None;
        let mut line_no = 0;
        for (i, line) in text.split('\n').enumerate() {
            line_no = i + 1;
            let argv: Vec<&str> = line.split_ascii_whitespace().collect();
            // Blank lines come from the newline padding of in-place rewrites.
            let Some(&first) = argv.first() else { continue };
            let err = |reason: String| LoadError::Corrupt {
                line: line_no,
                reason,
            };
            if first.eq_ignore_ascii_case("vars") {
                self.load_vars(&argv).map_err(err)?;
                continue;
            }
            if argv.len() < 8 {
                return Err(err(format!(
                    "expected at least 8 fields, got {}",
                    argv.len()
                )));
            }
            let name = parse_id(first).ok_or_else(|| err(format!("invalid node ID '{first}'")))?;
            let r = self.load_or_create(name, now);
            let node_myself = self.load_node_line(r, &argv, now).map_err(err)?;
            if node_myself {
                if myself.is_some() {
                    return Err(err("a second 'myself' node".to_string()));
                }
                myself = Some(r);
            }
        }
        let Some(me) = myself else {
            return Err(LoadError::Corrupt {
                line: line_no,
                reason: "no 'myself' node".to_string(),
            });
        };
        self.myself = me;
        // Protection against hand edits: currentEpoch covers every configEpoch.
        let max = self.max_epoch();
        if max > self.current_epoch {
            self.current_epoch = max;
        }
        Ok(())
    }

    fn load_vars(&mut self, argv: &[&str]) -> Result<(), String> {
        if argv.len().is_multiple_of(2) {
            return Err("the vars line needs name/value pairs".to_string());
        }
        for pair in argv.get(1..).unwrap_or(&[]).chunks(2) {
            let [name, value] = pair else { continue };
            let parse = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad value '{value}' for {name}"))
            };
            if name.eq_ignore_ascii_case("currentEpoch") {
                self.current_epoch = parse()?;
            } else if name.eq_ignore_ascii_case("lastVoteEpoch") {
                self.last_vote_epoch = parse()?;
            } else {
                self.log(
                    LogLevel::Warning,
                    format!("Skipping unknown cluster config variable '{name}'"),
                );
            }
        }
        Ok(())
    }

    /// Applies one node line to node `r`; returns whether it is `myself`.
    fn load_node_line(&mut self, r: NodeRef, argv: &[&str], now: Ms) -> Result<bool, String> {
        let field = |i: usize| argv.get(i).copied().unwrap_or("");
        // ip:port[@cport][,hostname], the IP split at the last ':'.
        let (addr, hostname) = match field(1).split_once(',') {
            Some((a, h)) => (a, h.to_string()),
            None => (field(1), String::new()),
        };
        let (ip, ports) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("bad address '{addr}'"))?;
        let (port_text, cport_text) = match ports.split_once('@') {
            Some((p, c)) => (p, Some(c)),
            None => (ports, None),
        };
        let port: u16 = port_text
            .parse()
            .map_err(|_| format!("bad port '{port_text}'"))?;
        let cport: u16 = match cport_text {
            Some(c) => c.parse().map_err(|_| format!("bad bus port '{c}'"))?,
            // Old files have no @cport: the default offset applies.
            None => u16::try_from(u32::from(port) + PORT_INCR)
                .map_err(|_| format!("bad port '{port_text}'"))?,
        };

        let mut flags = 0u16;
        let mut is_myself = false;
        let mut fail = false;
        for f in field(2).split(',') {
            match f.to_ascii_lowercase().as_str() {
                "myself" => {
                    flags |= MYSELF;
                    is_myself = true;
                }
                "master" => flags |= MASTER,
                "slave" => flags |= SLAVE,
                "fail?" => flags |= PFAIL,
                "fail" => {
                    flags |= FAIL;
                    fail = true;
                }
                "handshake" => flags |= HANDSHAKE,
                "noaddr" => flags |= NOADDR,
                "nofailover" => flags |= NOFAILOVER,
                "noflags" => {}
                other => return Err(format!("unknown flag '{other}'")),
            }
        }

        let master = match field(3) {
            m if m.starts_with('-') => None,
            m => {
                let name = parse_id(m).ok_or_else(|| format!("invalid master ID '{m}'"))?;
                Some(self.load_or_create(name, now))
            }
        };
        let ping_sent: i64 = field(4)
            .parse()
            .map_err(|_| format!("bad ping_sent '{}'", field(4)))?;
        let pong_received: i64 = field(5)
            .parse()
            .map_err(|_| format!("bad pong_received '{}'", field(5)))?;
        let epoch: u64 = field(6)
            .parse()
            .map_err(|_| format!("bad configEpoch '{}'", field(6)))?;

        let n = self.node_mut(r).ok_or("node vanished")?;
        n.hostname = hostname;
        n.ip = ip.to_string();
        n.port = port;
        n.cport = cport;
        n.flags |= flags;
        if fail {
            n.fail_time = now;
        }
        // Stored times only say "there was one": they become now.
        if ping_sent != 0 {
            n.ping_sent = now;
        }
        if pong_received != 0 {
            n.pong_received = now;
        }
        if let Some(m) = master.filter(|&m| m != r) {
            n.replica_of = Some(m);
            self.add_replica(m, r);
        }
        let n = self.node_mut(r).ok_or("node vanished")?;
        // Replicas load configEpoch 0 (7.0.3+): they learn their master's.
        n.config_epoch = if n.is_replica() && n.replica_of.is_some() {
            0
        } else {
            epoch
        };

        for tok in argv.get(8..).unwrap_or(&[]) {
            self.load_slot_token(r, tok, now)?;
        }
        Ok(is_myself)
    }

    fn load_slot_token(&mut self, r: NodeRef, tok: &str, now: Ms) -> Result<(), String> {
        let bad = || format!("bad slot '{tok}'");
        let parse_slot = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|&s| usize::from(s) < crate::slots::CLUSTER_SLOTS)
        };
        if let Some(open) = tok.strip_prefix('[') {
            // [slot->-id] migrating, [slot-<-id] importing.
            let (slot_text, rest) = open.split_once('-').ok_or_else(bad)?;
            let slot = parse_slot(slot_text).ok_or_else(bad)?;
            let (migrating, rest) = match rest.as_bytes() {
                [b'>', b'-', ..] => (true, rest.get(2..).unwrap_or("")),
                [b'<', b'-', ..] => (false, rest.get(2..).unwrap_or("")),
                _ => return Err(bad()),
            };
            let id = rest.strip_suffix(']').ok_or_else(bad)?;
            let name = parse_id(id).ok_or_else(bad)?;
            let other = self.load_or_create(name, now);
            let table = if migrating {
                &mut self.migrating_to
            } else {
                &mut self.importing_from
            };
            if let Some(e) = table.get_mut(usize::from(slot)) {
                *e = Some(other);
                self.slots_ever_opened = true;
            }
            return Ok(());
        }
        let (start, stop) = match tok.split_once('-') {
            Some((a, b)) => (
                parse_slot(a).ok_or_else(bad)?,
                parse_slot(b).ok_or_else(bad)?,
            ),
            None => {
                let s = parse_slot(tok).ok_or_else(bad)?;
                (s, s)
            }
        };
        for s in start..=stop {
            // A slot already taken by an earlier line stays with it, as in redis.
            self.add_slot(r, s, SlotChangeReason::AddSlots);
        }
        Ok(())
    }
}

/// A valid 40-character `[a-z0-9]` node ID.
fn parse_id(s: &str) -> Option<NodeName> {
    NodeName::parse(s).filter(NodeName::is_valid)
}
