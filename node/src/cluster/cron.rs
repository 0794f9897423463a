//! `clusterCron` (every 100 ms), `clusterBeforeSleep` and `clusterUpdateState`.

use crate::events::{ClusterStateName, EventKind, RemovedReason};
use crate::wire::msg_type;
use crate::wire::node_flags::*;

use super::node::{Ms, NodeRef};
use super::{wall, Action, Cluster, LogLevel, MAX_REJOIN_DELAY, MIN_REJOIN_DELAY, WRITABLE_DELAY};

/// `CLUSTER_TODO_*`: work deferred to `before_sleep`, so that many changes in
/// one event-loop turn cost one state update and one config write.
pub(crate) const TODO_HANDLE_FAILOVER: u8 = 1 << 0;
pub(crate) const TODO_UPDATE_STATE: u8 = 1 << 1;
pub(crate) const TODO_SAVE_CONFIG: u8 = 1 << 2;
pub(crate) const TODO_FSYNC_CONFIG: u8 = 1 << 3;
pub(crate) const TODO_HANDLE_MANUALFAILOVER: u8 = 1 << 4;

impl Cluster {
    pub(super) fn cron(&mut self, now: Ms) {
        self.iteration += 1;
        let timeout = self.node_timeout();
        let handshake_timeout = timeout.max(1000);
        let mut update_state = false;

        // 1) Reconnect, expire handshakes, count PFAIL nodes.
        self.stats_pfail_nodes = 0;
        let refs: Vec<NodeRef> = self.nodes.keys().copied().collect();
        for &r in &refs {
            let Some(n) = self.node(r) else { continue };
            if n.has(MYSELF | NOADDR) {
                continue;
            }
            let (pfail, expired, no_link) = (
                n.timed_out(),
                n.in_handshake() && now - n.ctime > handshake_timeout,
                n.link.is_none(),
            );
            if pfail {
                self.stats_pfail_nodes += 1;
            }
            if expired {
                self.del_node(r, RemovedReason::HandshakeTimeout);
                continue;
            }
            if no_link {
                self.connect_node(now, r);
            }
        }

        // 2) Once a second, ping the node with the oldest pong among 5 random picks.
        if self.iteration.is_multiple_of(10) {
            let buckets = self.dict_buckets();
            let mut best: Option<(NodeRef, Ms)> = None;
            for _ in 0..5 {
                let Some(pick) = self.random_node_ref(&buckets) else {
                    continue;
                };
                let Some(n) = self.node(pick) else { continue };
                if n.link.is_none() || n.ping_sent != 0 || n.has(MYSELF | HANDSHAKE) {
                    continue;
                }
                if best.is_none_or(|(_, p)| p > n.pong_received) {
                    best = Some((pick, n.pong_received));
                }
            }
            if let Some((r, _)) = best {
                if let Some(n) = self.node(r) {
                    let (name, link) = (n.name, n.link);
                    self.log(LogLevel::Debug, format!("Pinging node {name}"));
                    if let Some(l) = link {
                        self.send_ping(now, l, msg_type::PING);
                    }
                }
            }
        }

        // 3) Per node: orphaned masters, stale links, half-timeout pings, PFAIL.
        let ping_age_divisor = self.cfg.ping_age_divisor as i64;
        let i_am_replica = self.me().is_replica();
        let my_master = self.me().replica_of;
        let mut orphaned_masters = 0usize;
        let mut max_replicas = 0usize;
        let mut this_replicas = 0usize;
        let refs: Vec<NodeRef> = self.nodes.keys().copied().collect();
        for &r in &refs {
            let Some(n) = self.node(r) else { continue };
            if n.has(MYSELF | NOADDR | HANDSHAKE) {
                continue;
            }
            // Replica migration needs: orphaned masters (slots, no working
            // replica, used to have one), the best replica count, and ours.
            if i_am_replica && n.is_master() && !n.failed() {
                let ok = self.non_failing_replicas(r);
                if ok == 0 && n.numslots > 0 && n.has(MIGRATE_TO) {
                    orphaned_masters += 1;
                }
                max_replicas = max_replicas.max(ok);
                if my_master == Some(r) {
                    this_replicas = ok;
                }
            }
            // The state the PFAIL decision below is taken in (and reports).
            let (ping_sent, data_received) = (n.ping_sent, n.data_received);
            let ping_delay = now - ping_sent;
            let data_delay = now - data_received;
            // A link with a long-pending ping and no traffic at all may be
            // wedged even though the node is alive: reconnect it.
            if let Some(l) = n.link {
                let link_age = self.links.get(&l).map_or(0, |l| now - l.ctime);
                if link_age > timeout
                    && n.ping_sent != 0
                    && ping_delay > timeout / 2
                    && data_delay > timeout / 2
                {
                    self.free_link(l, "stale");
                }
            }
            let Some(n) = self.node(r) else { continue };
            if let Some(l) = n.link {
                if n.ping_sent == 0 && now - n.pong_received > timeout / ping_age_divisor {
                    self.send_ping(now, l, msg_type::PING);
                    continue;
                }
            }
            if self.failover.mf_end != 0
                && self.me().is_master()
                && self.failover.mf_replica == Some(r)
            {
                if let Some(l) = n.link {
                    self.send_ping(now, l, msg_type::PING);
                    continue;
                }
            }
            if n.ping_sent == 0 {
                continue;
            }
            // Any data from the node counts as a sign of life.
            let node_delay = ping_delay.min(data_delay);
            // Planted bug `early-pfail`: suspicion after half the timeout.
            let limit = if self.cfg.bug("early-pfail") {
                timeout / 2
            } else {
                timeout
            };
            if node_delay > limit && !n.has(PFAIL | FAIL) {
                let name = n.name;
                if let Some(n) = self.node_mut(r) {
                    n.flags |= PFAIL;
                }
                self.log(LogLevel::Debug, format!("*** NODE {name} possibly failing"));
                self.event(EventKind::PfailSet {
                    node: name.to_string(),
                    ping_sent_ms: wall(ping_sent),
                    data_received_ms: wall(data_received),
                    now_ms: wall(now),
                    node_timeout_ms: self.cfg.node_timeout,
                });
                update_state = true;
            }
        }

        // 4) Manual failover timeout, then the replica's failover and migration.
        self.manual_failover_check_timeout(now);
        if self.me().is_replica() {
            self.handle_manual_failover();
            self.handle_replica_failover(now);
            // Migrating only makes sense if some master has two working replicas.
            if orphaned_masters > 0
                && max_replicas >= 2
                && this_replicas == max_replicas
                && self.cfg.allow_replica_migration
            {
                self.handle_replica_migration(now, max_replicas);
            }
        }

        if update_state || !self.state_ok {
            self.update_state(now);
        }
    }

    pub(super) fn do_before_sleep(&mut self, now: Ms) {
        let mut flags = self.todo;
        self.todo = 0;
        if flags & TODO_HANDLE_MANUALFAILOVER != 0 {
            // Without waiting for the next cron: a manual failover is fast.
            if self.me().is_replica() {
                self.handle_manual_failover();
                self.handle_replica_failover(now);
            }
        } else if flags & TODO_HANDLE_FAILOVER != 0 {
            // An ACK may have completed the quorum.
            self.handle_replica_failover(now);
        }
        // State and config changes made just above are applied now rather than
        // on the next call; the failover flags wait for the next call.
        let fresh = self.todo & (TODO_UPDATE_STATE | TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
        self.todo &= !fresh;
        flags |= fresh;
        if flags & TODO_UPDATE_STATE != 0 {
            self.update_state(now);
        }
        if flags & TODO_SAVE_CONFIG != 0 {
            self.save_config_now(flags & TODO_FSYNC_CONFIG != 0);
        }
    }

    /// `clusterSaveConfigOrDie`: hands the file content to the shell now.
    pub(super) fn save_config_now(&mut self, fsync: bool) {
        self.todo &= !TODO_SAVE_CONFIG;
        if fsync {
            self.todo &= !TODO_FSYNC_CONFIG;
        }
        let contents = if self.cfg.skip_config_text {
            String::new()
        } else {
            self.config_file_contents()
        };
        self.actions
            .push_back(Action::SaveConfig { contents, fsync });
        self.event(EventKind::ConfigSaved { fsync });
    }

    /// `clusterUpdateState` (reference 3.6).
    pub(super) fn update_state(&mut self, now: Ms) {
        self.todo &= !TODO_UPDATE_STATE;
        let first = *self.first_state_call.get_or_insert(now);
        // A restarted master waits before accepting writes, giving the
        // cluster a chance to reconfigure it.
        if self.me().is_master() && !self.state_ok && now - first < WRITABLE_DELAY {
            return;
        }
        let mut new_ok = true;
        if self.cfg.require_full_coverage {
            // A slot is unassigned or served by a failed node (redis walks
            // the table). Each node's bitmap mirrors the table (the
            // invariants test holds them to it), so a failed node serves a
            // slot exactly when its count is not zero: this runs at every
            // tick and the table has 16384 entries.
            let uncovered =
                self.unowned_slots > 0 || self.nodes.values().any(|n| n.failed() && n.numslots > 0);
            if uncovered {
                new_ok = false;
            }
        }
        let mut size = 0;
        let mut reachable = 0;
        for n in self.nodes.values() {
            if n.is_master() && n.numslots > 0 {
                size += 1;
                if !n.has(FAIL | PFAIL) {
                    reachable += 1;
                }
            }
        }
        self.size = size;
        // In a minority partition: refuse service. Planted bug
        // `minority-writes`: a master keeps `ok` (and takes writes) however
        // long it is cut off from the majority, writes that a failover on the
        // majority side will discard, long after node_timeout.
        if reachable < size / 2 + 1 {
            if !(self.cfg.bug("minority-writes") && self.me().is_master()) {
                new_ok = false;
            }
            self.among_minority_time = now;
        }
        if new_ok == self.state_ok {
            return;
        }
        let rejoin_delay = self
            .node_timeout()
            .clamp(MIN_REJOIN_DELAY, MAX_REJOIN_DELAY);
        if new_ok && self.me().is_master() && now - self.among_minority_time < rejoin_delay {
            return;
        }
        self.state_ok = new_ok;
        let (text, state) = if new_ok {
            ("ok", ClusterStateName::Ok)
        } else {
            ("fail", ClusterStateName::Fail)
        };
        self.log(LogLevel::Warning, format!("Cluster state changed: {text}"));
        self.event(EventKind::ClusterStateChanged { state });
    }
}
