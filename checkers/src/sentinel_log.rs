//! Reads a redis-sentinel 7.0 log into the events the Sentinel rules judge. The
//! formats are 7.0.15's `sentinelEvent` lines (`<type> <role> <name> <ip> <port>`,
//! `@ <master> <ip> <port>` for instances that are not masters) and the few plain
//! log lines around them ("Sentinel ID is", "voted for", "ready to exit").
//!
//! Line shape: `<pid>:X <dd> <Mon> <yyyy> <HH:MM:SS.mmm> <level> <message>`; the
//! signal handler writes `<pid>:signal-handler (<secs>) <message>`. Anything else is
//! damage: a cut line, bytes that are not UTF-8, a line of another shape, or a log
//! that does not end with the sentinel's clean exit. A damaged log is reported, and
//! the rules that need it say `unknown`; what parses is still returned.

use serde::Serialize;

/// One Sentinel decision or state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SEv {
    /// `Redis is starting`: a new process (restart after a kill, or the first).
    ProcessStart,
    /// `Sentinel ID is <id>`.
    Id {
        id: String,
    },
    /// `Sentinel is now ready to exit`.
    Stopped,
    /// `+sdown` / `-sdown` about an instance (`role` master, slave or sentinel).
    Sdown {
        role: String,
        addr: String,
        on: bool,
    },
    /// `+odown master <name> <ip> <port> #quorum <agree>/<quorum>` (and `-odown`).
    Odown {
        addr: String,
        agree: Option<u32>,
        quorum: Option<u32>,
        on: bool,
    },
    NewEpoch {
        epoch: u64,
    },
    TryFailover {
        addr: String,
    },
    /// `+vote-for-leader <runid> <epoch>`: this sentinel's vote.
    VoteForLeader {
        leader: String,
        epoch: u64,
    },
    /// `<voter> voted for <leader> <epoch>`: a reply this sentinel received.
    VotedFor {
        voter: String,
        leader: String,
        epoch: u64,
    },
    ElectedLeader {
        addr: String,
    },
    /// A step of a failover this sentinel carries out: `+failover-state-*`,
    /// `+selected-slave`, `+promoted-slave`, `+failover-end`, ...
    FailoverStep {
        step: String,
    },
    /// `+failover-abort-*`, `-failover-abort-*`.
    FailoverAbort {
        why: String,
    },
    /// `+switch-master <name> <old ip> <old port> <new ip> <new port>`.
    SwitchMaster {
        from: String,
        to: String,
    },
    /// `+config-update-from sentinel <runid> ...`: a newer config learned from a peer.
    ConfigUpdateFrom {
        from: String,
    },
    /// `+tilt` / `-tilt`: the sentinel's clock jumped; it stops acting for 30 s.
    Tilt {
        on: bool,
    },
    /// `+convert-to-slave`: a returning old master reconfigured as a replica.
    ConvertToSlave {
        addr: String,
    },
}

/// One parsed line.
#[derive(Clone, Debug, Serialize)]
pub struct SLine {
    /// 1-based line number in the log.
    pub line: usize,
    /// The sentinel's wall clock (under the clock nemesis, its faked clock).
    pub wall_ms: i64,
    pub ev: SEv,
}

/// A parsed log: its events and, if it is damaged, why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SLog {
    pub events: Vec<SLine>,
    pub damage: Option<String>,
}

fn epoch_ms(day: &str, mon: &str, year: &str, time: &str) -> Option<i64> {
    // Days from civil (H. Hinnant), as in redis_log.
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = names.iter().position(|n| *n == mon)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let (hms, frac) = time.split_once('.')?;
    let mut p = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (p.next()??, p.next()??, p.next()??);
    let ms: i64 = frac.parse().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

/// `<role> <name> <ip> <port> [@ ...]` -> the instance's `ip:port`.
fn instance_addr(rest: &str) -> Option<(String, String)> {
    let w: Vec<&str> = rest.split_whitespace().collect();
    let role = (*w.first()?).to_string();
    // Masters: `master <name> <ip> <port>`; slaves: `slave <ip:port> <ip> <port> @ ...`;
    // sentinels: `sentinel <runid> <ip> <port> @ ...`.
    let ip = w.get(2)?;
    let port = w.get(3)?;
    Some((role, format!("{ip}:{port}")))
}

/// Classifies one message; None for lines that decide nothing.
pub fn classify(msg: &str) -> Option<SEv> {
    if msg.contains("Redis is starting") {
        return Some(SEv::ProcessStart);
    }
    if let Some(id) = msg.strip_prefix("Sentinel ID is ") {
        return Some(SEv::Id {
            id: id.trim().to_string(),
        });
    }
    if msg.starts_with("Sentinel is now ready to exit") {
        return Some(SEv::Stopped);
    }
    let (kind, rest) = msg.split_once(' ').unwrap_or((msg, ""));
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match kind {
        "+sdown" | "-sdown" => {
            let (role, addr) = instance_addr(rest)?;
            Some(SEv::Sdown {
                role,
                addr,
                on: kind == "+sdown",
            })
        }
        "+odown" | "-odown" => {
            let (_, addr) = instance_addr(rest)?;
            let (agree, quorum) = match rest.split_once("#quorum ") {
                Some((_, q)) => {
                    let (a, b) = q.trim().split_once('/')?;
                    (a.parse().ok(), b.parse().ok())
                }
                None => (None, None),
            };
            Some(SEv::Odown {
                addr,
                agree,
                quorum,
                on: kind == "+odown",
            })
        }
        "+new-epoch" => Some(SEv::NewEpoch { epoch: num(rest)? }),
        "+try-failover" => Some(SEv::TryFailover {
            addr: instance_addr(rest)?.1,
        }),
        "+vote-for-leader" => {
            let (leader, epoch) = rest.trim().split_once(' ')?;
            Some(SEv::VoteForLeader {
                leader: leader.to_string(),
                epoch: num(epoch)?,
            })
        }
        "+elected-leader" => Some(SEv::ElectedLeader {
            addr: instance_addr(rest)?.1,
        }),
        "+selected-slave"
        | "+promoted-slave"
        | "+failover-end"
        | "+failover-end-for-timeout"
        | "+slave-reconf-sent"
        | "+slave-reconf-inprog"
        | "+slave-reconf-done" => Some(SEv::FailoverStep {
            step: kind.to_string(),
        }),
        k if k.starts_with("+failover-state-") => Some(SEv::FailoverStep {
            step: k.to_string(),
        }),
        k if k.starts_with("-failover-abort") || k.starts_with("+failover-abort") => {
            Some(SEv::FailoverAbort { why: k.to_string() })
        }
        "+switch-master" => {
            let w: Vec<&str> = rest.split_whitespace().collect();
            Some(SEv::SwitchMaster {
                from: format!("{}:{}", w.get(1)?, w.get(2)?),
                to: format!("{}:{}", w.get(3)?, w.get(4)?),
            })
        }
        "+config-update-from" => {
            let w: Vec<&str> = rest.split_whitespace().collect();
            Some(SEv::ConfigUpdateFrom {
                from: (*w.get(1)?).to_string(),
            })
        }
        "+tilt" | "-tilt" => Some(SEv::Tilt {
            on: kind == "+tilt",
        }),
        "+convert-to-slave" => Some(SEv::ConvertToSlave {
            addr: instance_addr(rest)?.1,
        }),
        voter if voter.len() == 40 && voter.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let r = rest.strip_prefix("voted for ")?;
            let (leader, epoch) = r.trim().split_once(' ')?;
            Some(SEv::VotedFor {
                voter: voter.to_string(),
                leader: leader.to_string(),
                epoch: num(epoch)?,
            })
        }
        _ => None,
    }
}

/// Parses a sentinel log's bytes.
pub fn parse(bytes: &[u8]) -> SLog {
    let mut out = SLog::default();
    let mut damage: Vec<String> = Vec::new();
    if bytes.is_empty() {
        out.damage = Some("empty".into());
        return out;
    }
    if !bytes.ends_with(b"\n") {
        damage.push("the last line is cut (no newline at the end)".into());
    }
    let mut last_msg = String::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        if raw.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            damage.push(format!("line {line} is not UTF-8"));
            continue;
        };
        let Some((_pid, rest)) = text.split_once(':') else {
            damage.push(format!("line {line} is not a redis log line: {text:.80}"));
            continue;
        };
        if rest.starts_with("signal-handler ") {
            continue;
        }
        let w: Vec<&str> = rest.splitn(7, ' ').collect();
        let parsed = match w.as_slice() {
            [_role, d, mon, y, t, _lvl, msg] => epoch_ms(d, mon, y, t).map(|ms| (ms, *msg)),
            _ => None,
        };
        let Some((wall_ms, msg)) = parsed else {
            damage.push(format!("line {line} is not a redis log line: {text:.80}"));
            continue;
        };
        last_msg = msg.to_string();
        if let Some(ev) = classify(msg) {
            out.events.push(SLine { line, wall_ms, ev });
        }
    }
    if damage.is_empty() && !last_msg.starts_with("Sentinel is now ready to exit") {
        damage.push(
            "does not end with `Sentinel is now ready to exit` (cut, or the sentinel did not shut down cleanly)"
                .into(),
        );
    }
    if !damage.is_empty() {
        let n = damage.len();
        let mut d = damage.into_iter().take(3).collect::<Vec<_>>().join("; ");
        if n > 3 {
            d.push_str(&format!(" (and {} more)", n - 3));
        }
        out.damage = Some(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
27598:X 06 Dec 2026 02:35:59.838 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo
27598:X 06 Dec 2026 02:35:59.909 # Sentinel ID is def30a97b21cd11e345b9a4eab95399d43ddb07e
27598:X 06 Dec 2026 02:36:05.143 # +sdown master hearsay 10.1.1.1 7001
27598:X 06 Dec 2026 02:36:05.201 # +odown master hearsay 10.1.1.1 7001 #quorum 3/2
27598:X 06 Dec 2026 02:36:05.201 # +new-epoch 1
27598:X 06 Dec 2026 02:36:05.201 # +try-failover master hearsay 10.1.1.1 7001
27598:X 06 Dec 2026 02:36:05.230 # +vote-for-leader def30a97b21cd11e345b9a4eab95399d43ddb07e 1
27598:X 06 Dec 2026 02:36:05.261 # 97f0548a001ecccb4e784bbd2c52c7245e539e28 voted for def30a97b21cd11e345b9a4eab95399d43ddb07e 1
27598:X 06 Dec 2026 02:36:05.303 # +elected-leader master hearsay 10.1.1.1 7001
27598:X 06 Dec 2026 02:36:05.303 # +failover-state-select-slave master hearsay 10.1.1.1 7001
27598:X 06 Dec 2026 02:36:05.362 # +selected-slave slave 10.1.1.3:7003 10.1.1.3 7003 @ hearsay 10.1.1.1 7001
27598:X 06 Dec 2026 02:36:07.422 # +switch-master hearsay 10.1.1.1 7001 10.1.1.3 7003
27598:signal-handler (1796524577) Received SIGTERM scheduling shutdown...
27598:X 06 Dec 2026 02:36:17.239 # Sentinel is now ready to exit, bye bye...
";

    #[test]
    fn parses_the_events_of_a_failover() {
        let log = parse(LOG.as_bytes());
        assert_eq!(log.damage, None);
        let evs: Vec<&SEv> = log.events.iter().map(|l| &l.ev).collect();
        assert!(evs.contains(&&SEv::Odown {
            addr: "10.1.1.1:7001".into(),
            agree: Some(3),
            quorum: Some(2),
            on: true
        }));
        assert!(evs.contains(&&SEv::VoteForLeader {
            leader: "def30a97b21cd11e345b9a4eab95399d43ddb07e".into(),
            epoch: 1
        }));
        assert!(evs.contains(&&SEv::VotedFor {
            voter: "97f0548a001ecccb4e784bbd2c52c7245e539e28".into(),
            leader: "def30a97b21cd11e345b9a4eab95399d43ddb07e".into(),
            epoch: 1
        }));
        assert!(evs.contains(&&SEv::SwitchMaster {
            from: "10.1.1.1:7001".into(),
            to: "10.1.1.3:7003".into()
        }));
        assert_eq!(evs.last(), Some(&&SEv::Stopped));
    }

    #[test]
    fn damage_is_named() {
        let cut = &LOG[..LOG.len() - 10];
        assert!(parse(cut.as_bytes()).damage.unwrap().contains("cut"));
        let no_exit: String = LOG.lines().take(12).map(|l| format!("{l}\n")).collect();
        assert!(parse(no_exit.as_bytes())
            .damage
            .unwrap()
            .contains("ready to exit"));
        let mut bad = LOG.as_bytes().to_vec();
        bad.splice(0..0, b"\xff\xfe garbage\n".iter().copied());
        assert!(parse(&bad).damage.unwrap().contains("UTF-8"));
        assert!(parse(b"").damage.is_some());
    }
}
