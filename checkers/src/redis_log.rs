//! Turns redis-server 7.0 cluster log lines into protocol events (JSON objects), so
//! that runs against real redis have an event log like hearsay-node's `events-file`.
//! The patterns are the verbatim 7.0.15 formats; "possibly failing" needs
//! `loglevel debug`, "reported ... as not reachable" needs `verbose` or lower.
//!
//! Line shape: `<pid>:<role> <dd> <Mon> <yyyy> <HH:MM:SS.mmm> <level> <message>`.

use serde_json::{json, Value};

/// Milliseconds since the epoch of a civil UTC date-time.
fn epoch_ms(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64, ms: i64) -> i64 {
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
}

fn month(m: &str) -> Option<i64> {
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    names.iter().position(|n| *n == m).map(|i| i as i64 + 1)
}

/// Parses the wall-clock stamp of a log line (the log's local time; UTC on the
/// machines this runs on) into epoch ms.
fn stamp(day: &str, mon: &str, year: &str, time: &str) -> Option<i64> {
    let (hms, frac) = time.split_once('.')?;
    let mut p = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (p.next()??, p.next()??, p.next()??);
    Some(epoch_ms(
        year.parse().ok()?,
        month(mon)?,
        day.parse().ok()?,
        hh,
        mm,
        ss,
        frac.parse().ok()?,
    ))
}

fn between<'a>(s: &'a str, pre: &str, post: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(pre)?;
    match post {
        "" => Some(rest),
        _ => rest.find(post).and_then(|i| rest.get(..i)),
    }
}

/// Classifies one message; None for lines that are not protocol decisions.
fn classify(msg: &str) -> Option<Value> {
    // A process start names its ID once nodes.conf is read (created or loaded).
    for pre in [
        "No cluster configuration found, I'm ",
        "Node configuration loaded, I'm ",
    ] {
        if let Some(id) = msg.strip_prefix(pre) {
            return Some(json!({"event": "started", "id": id.trim()}));
        }
    }
    if msg.starts_with("Redis is now ready to exit, bye bye") {
        return Some(json!({"event": "stopped"}));
    }
    let word = |s: &str| {
        s.split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(['.', ':'])
            .to_string()
    };
    if let Some(id) = between(msg, "*** NODE ", " possibly failing") {
        return Some(json!({"event": "pfail_set", "about": id}));
    }
    if let Some(rest) = msg.strip_prefix("Node ") {
        if let Some((reporter, about)) = rest.split_once(" reported node ") {
            if let Some(id) = about.strip_suffix(" as not reachable.") {
                return Some(json!({"event": "failure_report", "reporter": reporter, "about": id}));
            }
            if let Some(id) = about.strip_suffix(" is back online.") {
                return Some(
                    json!({"event": "failure_report_cleared", "reporter": reporter, "about": id}),
                );
            }
        }
    }
    if let Some(id) = between(msg, "Marking node ", " as failing (quorum reached).") {
        return Some(json!({"event": "fail_marked", "about": id}));
    }
    if let Some(rest) = msg.strip_prefix("FAIL message received from ") {
        let (from, about) = rest.split_once(" about ")?;
        return Some(json!({"event": "fail_received", "from": from, "about": about.trim()}));
    }
    if let Some(rest) = msg.strip_prefix("Clear FAIL state for node ") {
        let (id, reason) = rest.split_once(": ").unwrap_or((rest, ""));
        return Some(json!({"event": "fail_cleared", "about": id, "reason": reason}));
    }
    // A replica's link to its master (replication.c): up once a full sync loaded or
    // a partial one was accepted, down when the master client is freed.
    if msg.starts_with("MASTER <-> REPLICA sync: Finished with success")
        || msg.starts_with("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization")
    {
        return Some(json!({"event": "replication_link_up"}));
    }
    if msg.starts_with("Connection with master lost") {
        return Some(json!({"event": "replication_link_down"}));
    }
    if let Some(state) = msg.strip_prefix("Cluster state changed: ") {
        return Some(json!({"event": "cluster_state", "state": state.trim()}));
    }
    if let Some(rest) = msg.strip_prefix("Start of election delayed for ") {
        // "<ms> milliseconds (rank #<r>, offset <o>)."
        let offset = rest
            .split_once("offset ")
            .and_then(|(_, o)| o.trim_end_matches([')', '.']).parse::<u64>().ok());
        let rank = rest
            .split_once("rank #")
            .and_then(|(_, r)| word(r).trim_end_matches(',').parse::<u64>().ok());
        return Some(
            json!({"event": "election_scheduled", "delay_ms": word(rest).parse::<i64>().ok(), "rank": rank, "offset": offset, "detail": rest}),
        );
    }
    if let Some(rest) = msg.strip_prefix("Starting a failover election for epoch ") {
        return Some(json!({"event": "failover_started", "epoch": word(rest).parse::<u64>().ok()}));
    }
    if msg.starts_with("Failover election won") {
        return Some(json!({"event": "failover_won"}));
    }
    if let Some(rest) = msg.strip_prefix("Failover auth granted to ") {
        let (to, epoch) = rest.split_once(" for epoch ")?;
        return Some(
            json!({"event": "vote_granted", "to": to, "epoch": word(epoch).parse::<u64>().ok()}),
        );
    }
    if let Some(rest) = msg.strip_prefix("Failover auth denied to ") {
        let (to, reason) = rest.split_once(": ").unwrap_or((rest, ""));
        return Some(json!({"event": "vote_refused", "to": to, "reason": reason}));
    }
    if let Some(rest) = msg.strip_prefix("configEpoch set to ") {
        let (n, how) = rest.split_once(' ').unwrap_or((rest, ""));
        return Some(
            json!({"event": "config_epoch_set", "epoch": n.parse::<u64>().ok(), "how": how}),
        );
    }
    if let Some(rest) = msg.strip_prefix("New configEpoch set to ") {
        return Some(
            json!({"event": "config_epoch_set", "epoch": word(rest).parse::<u64>().ok(), "how": "bump"}),
        );
    }
    if let Some(rest) = msg.strip_prefix("WARNING: configEpoch collision with node ") {
        let (id, tail) = rest.split_once('.').unwrap_or((rest, ""));
        return Some(json!({"event": "epoch_collision", "with": id, "detail": tail.trim()}));
    }
    if let Some(id) =
        msg.strip_prefix("Configuration change detected. Reconfiguring myself as a replica of ")
    {
        return Some(json!({"event": "became_replica", "of": id.trim()}));
    }
    None
}

/// Converts a whole log into events, in log order. Each event has `event`, `pid`,
/// `role` (M/S/C), `wall` (the log's stamp), `wall_ms` and `seq` (0 at each process
/// start, as hearsay-node numbers its lines), plus its own fields. The log is read
/// as bytes, line by line: a line that is not UTF-8 is read with replacement
/// characters, so one bad byte never hides the rest of the log.
pub fn events(log: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seq = 0u64;
    for raw in log.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(raw);
        let mut f = line.splitn(7, ' ');
        let (Some(pidrole), Some(day), Some(mon), Some(year), Some(time), Some(_level), Some(msg)) = (
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
        ) else {
            continue;
        };
        let Some((pid, role)) = pidrole.split_once(':') else {
            continue;
        };
        let Some(mut ev) = classify(msg) else {
            continue;
        };
        if ev["event"] == "started" {
            seq = 0;
        }
        if let Some(o) = ev.as_object_mut() {
            o.insert("source".into(), json!("redis-log"));
            o.insert("pid".into(), json!(pid.parse::<u64>().ok()));
            o.insert("role".into(), json!(role));
            o.insert("wall".into(), json!(format!("{day} {mon} {year} {time}")));
            o.insert("wall_ms".into(), json!(stamp(day, mon, year, time)));
            o.insert("seq".into(), json!(seq));
        }
        seq += 1;
        out.push(ev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verbatim lines from redis 7.0.15 (see the project's reference notes).
    const LOG: &str = "\
12047:M 22 Nov 2026 18:58:09.131 . *** NODE 448976372524079d70084a72227b3957d5e13fb0 possibly failing
12047:M 22 Nov 2026 18:58:10.038 - Node 36fceebdad8418ef82f65c1046b128778bf0b0cc reported node 448976372524079d70084a72227b3957d5e13fb0 as not reachable.
12047:M 22 Nov 2026 18:58:10.038 * Marking node 448976372524079d70084a72227b3957d5e13fb0 as failing (quorum reached).
12047:M 22 Nov 2026 18:58:10.038 # Cluster state changed: fail
12086:S 22 Nov 2026 18:58:10.038 * FAIL message received from d02621987c2ee79e9809c8b0208c218f44c5f01b about 448976372524079d70084a72227b3957d5e13fb0
12112:S 22 Nov 2026 18:58:10.132 # Start of election delayed for 735 milliseconds (rank #0, offset 70).
12112:S 22 Nov 2026 18:58:10.935 # Starting a failover election for epoch 7.
12047:M 22 Nov 2026 18:58:10.939 # Failover auth granted to d02621987c2ee79e9809c8b0208c218f44c5f01b for epoch 7
12112:S 22 Nov 2026 18:58:10.940 # Failover election won: I'm the new master.
12112:S 22 Nov 2026 18:58:10.940 # configEpoch set to 7 after successful failover
12047:M 22 Nov 2026 18:58:22.043 * Clear FAIL state for node 448976372524079d70084a72227b3957d5e13fb0: master without slots is reachable again.
12060:M 22 Nov 2026 18:58:22.041 # Failover auth denied to d02621987c2ee79e9809c8b0208c218f44c5f01b: its master is up
12060:M 22 Nov 2026 18:58:22.041 # Configuration change detected. Reconfiguring myself as a replica of d02621987c2ee79e9809c8b0208c218f44c5f01b
12047:M 22 Nov 2026 18:58:22.042 - Node 448976372524079d70084a72227b3957d5e13fb0 has old slots configuration, sending an UPDATE message about d0262198
garbage line
";

    #[test]
    fn classifies_failure_detection_and_failover() {
        let ev = events(LOG.as_bytes());
        let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            vec![
                "pfail_set",
                "failure_report",
                "fail_marked",
                "cluster_state",
                "fail_received",
                "election_scheduled",
                "failover_started",
                "vote_granted",
                "failover_won",
                "config_epoch_set",
                "fail_cleared",
                "vote_refused",
                "became_replica"
            ]
        );
        assert_eq!(
            ev[1]["reporter"],
            "36fceebdad8418ef82f65c1046b128778bf0b0cc"
        );
        assert_eq!(ev[3]["state"], "fail");
        assert_eq!(ev[5]["delay_ms"], 735);
        assert_eq!(
            (ev[5]["rank"].as_u64(), ev[5]["offset"].as_u64()),
            (Some(0), Some(70))
        );
        assert_eq!(ev[6]["epoch"], 7);
        assert_eq!(ev[7]["epoch"], 7);
        assert_eq!(ev[11]["reason"], "its master is up");
        assert_eq!(ev[0]["role"], "M");
        assert_eq!(ev[0]["pid"], 12047);
    }

    #[test]
    fn replication_link_up_and_down() {
        let log = "\
7:S 22 Nov 2026 18:58:01.000 * MASTER <-> REPLICA sync: Finished with success
7:S 22 Nov 2026 18:58:02.000 * Connection with master lost.
7:S 22 Nov 2026 18:58:03.000 * MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.
7:S 22 Nov 2026 18:58:04.000 * MASTER <-> REPLICA sync started
";
        let kinds: Vec<String> = events(log.as_bytes())
            .iter()
            .map(|e| e["event"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "replication_link_up",
                "replication_link_down",
                "replication_link_up"
            ]
        );
    }

    #[test]
    fn process_start_and_clean_exit_frame_each_log_segment() {
        let log = "\
8071:C 05 Dec 2026 23:20:00.495 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo
8071:M 05 Dec 2026 23:20:00.497 * No cluster configuration found, I'm bf6fac862186d5cc50928ec4a706161b728c89cc
8071:M 05 Dec 2026 23:20:01.000 # Cluster state changed: ok
8071:M 05 Dec 2026 23:20:01.453 # Redis is now ready to exit, bye bye...
8081:M 05 Dec 2026 23:20:01.540 * Node configuration loaded, I'm bf6fac862186d5cc50928ec4a706161b728c89cc
8081:M 05 Dec 2026 23:20:02.000 # Cluster state changed: ok
";
        let mut bytes = log.as_bytes().to_vec();
        // A byte that is not UTF-8 in the middle hides nothing after it.
        bytes.splice(0..0, [0xff, b'\n']);
        let ev = events(&bytes);
        let seq: Vec<(String, u64)> = ev
            .iter()
            .map(|e| {
                (
                    e["event"].as_str().unwrap().to_string(),
                    e["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seq,
            [
                ("started".to_string(), 0),
                ("cluster_state".to_string(), 1),
                ("stopped".to_string(), 2),
                ("started".to_string(), 0),
                ("cluster_state".to_string(), 1),
            ]
        );
        assert_eq!(ev[0]["id"], "bf6fac862186d5cc50928ec4a706161b728c89cc");
    }

    #[test]
    fn wall_clock_stamp() {
        // 2026-11-22T18:58:09.131Z
        assert_eq!(
            stamp("22", "Nov", "2026", "18:58:09.131"),
            Some(1_795_373_889_131)
        );
        assert_eq!(stamp("01", "Jan", "1970", "00:00:00.000"), Some(0));
        assert_eq!(
            stamp("29", "Feb", "2024", "00:00:00.000"),
            Some(1_709_164_800_000)
        );
        assert_eq!(stamp("22", "Foo", "2026", "18:58:09.131"), None);
    }
}
