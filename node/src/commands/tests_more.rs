//! Tests of the command layer's later families (what redis-server cannot
//! be compared with byte for byte in `tests/resp_differential.rs`): SCAN's
//! guarantee under writes, blocking XREAD, scripts under cluster routing and
//! their replication, DEBUG DIGEST.

use std::collections::HashSet;

use bytes::Bytes;

use super::tests::TestHost;
use super::*;
use crate::cluster::SlotRoute;
use crate::resp::{encode_to_vec, split_args};
use crate::slots::key_slot;
use crate::wire::NodeName;

struct Session {
    host: TestHost,
    db: Db,
    client: ClientState,
}

impl Session {
    fn new(host: TestHost) -> Session {
        Session {
            host,
            db: Db::new(),
            client: ClientState::new(9),
        }
    }

    fn outcome(&mut self, line: &str) -> Outcome {
        let args = split_args(line.as_bytes()).expect("test line quoting");
        execute(&mut self.host, &mut self.db, &mut self.client, args)
    }

    fn run(&mut self, line: &str) -> String {
        let out = self.outcome(line);
        String::from_utf8_lossy(&encode_to_vec(&out.reply, self.client.resp3)).into_owned()
    }
}

fn scan_all(
    s: &mut Session,
    count: usize,
    during: &mut dyn FnMut(&mut Session, usize),
) -> HashSet<Bytes> {
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let out = s.outcome(&format!("scan {cursor} count {count}"));
        let Frame::Array(parts) = out.reply else {
            panic!("scan reply {:?}", out.reply)
        };
        let (Frame::Bulk(c), Frame::Array(keys)) = (&parts[0], &parts[1]) else {
            panic!("scan parts {parts:?}")
        };
        for k in keys {
            if let Frame::Bulk(k) = k {
                seen.insert(k.clone());
            }
        }
        cursor = String::from_utf8_lossy(c).into_owned();
        during(s, round);
        round += 1;
        if cursor == "0" {
            return seen;
        }
        assert!(round < 100_000, "scan does not end");
    }
}

#[test]
fn scan_returns_every_key_present_throughout_despite_writes() {
    let mut s = Session::new(TestHost::standalone());
    for i in 0..2000 {
        s.run(&format!("set k{i} v"));
    }
    // Keys added and deleted while the scan runs must not hide the others.
    let seen = scan_all(&mut s, 7, &mut |s, round| {
        s.run(&format!("set new{round} v"));
        s.run(&format!("del k{}", 1000 + round % 500));
    });
    for i in 0..1000 {
        assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
    }
    // One hash tag: every key in one slot, still iterated in several calls.
    let mut t = Session::new(TestHost::standalone());
    for i in 0..3000 {
        t.run(&format!("set {{tag}}{i} v"));
    }
    let mut calls = 0;
    let seen = scan_all(&mut t, 10, &mut |_, _| calls += 1);
    assert_eq!(seen.len(), 3000);
    assert!(calls > 1 && calls < 100, "{calls} calls for one big slot");
    assert_eq!(t.run("scan 0 match {tag}1 count 100000"), {
        let out = t.outcome("scan 0 match {tag}1 count 100000");
        String::from_utf8_lossy(&encode_to_vec(&out.reply, false)).into_owned()
    });
}

#[test]
fn xread_block_asks_the_shell_to_wait_and_resolves_dollar() {
    let mut s = Session::new(TestHost::standalone());
    s.run("xadd s 5-0 f v");
    let out = s.outcome("xread block 100 streams s $");
    assert_eq!(out.reply, Frame::NullArray);
    let block = out.block.expect("blocks");
    assert_eq!(block.keys, vec![Bytes::from_static(b"s")]);
    assert_eq!(block.timeout_ms, 100);
    // `$` became the ID it meant when the client blocked.
    assert_eq!(block.retry.last().map(|b| &b[..]), Some(&b"5-0"[..]));
    // Inside MULTI nothing blocks: the timeout reply at once.
    s.run("multi");
    s.run("xread block 0 streams s $");
    let out = s.outcome("exec");
    assert!(out.block.is_none());
    assert_eq!(out.reply, Frame::Array(vec![Frame::NullArray]));
    // The retry sees what was added since.
    s.run("xadd s 6-0 g w");
    let retry = block
        .retry
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        s.run(&retry),
        "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\ng\r\n$1\r\nw\r\n"
    );
}

fn foreign(port: u16) -> SlotRoute {
    SlotRoute {
        owner: Some((NodeName([b'b'; 40]), "127.0.0.1".into(), port)),
        owner_is_me: false,
        owner_is_my_master: false,
        migrating_to: None,
        importing: false,
    }
}

#[test]
fn scripts_in_cluster_mode_check_keys_like_redis() {
    let mut host = TestHost::new();
    host.routes.insert(key_slot(b"elsewhere"), foreign(30002));
    let mut s = Session::new(host);
    // Declared keys are routed like any command's.
    assert_eq!(
        s.run("eval 'return 1' 1 elsewhere"),
        format!("-MOVED {} 127.0.0.1:30002\r\n", key_slot(b"elsewhere"))
    );
    // Undeclared keys are checked inside the script.
    let r = s.run("eval \"return redis.call('get', 'elsewhere')\" 0");
    assert!(
        r.starts_with("-ERR Script attempted to access a non local key in a cluster node script: "),
        "{r}"
    );
    // Compat mode (no shebang) allows it, as redis does.
    assert_eq!(
        s.run("eval \"redis.call('set', KEYS[1], 1) return redis.call('get', 'b')\" 1 a"),
        "$-1\r\n"
    );
    let r =
        s.run("eval \"#!lua\nredis.call('set', KEYS[1], 1) return redis.call('get', 'b')\" 1 a");
    assert!(
        r.starts_with("-ERR Script attempted to access keys that do not hash to the same slot"),
        "{r}"
    );
    // With allow-cross-slot-keys, keys of several local slots are fine.
    assert_eq!(
        s.run("eval \"#!lua flags=allow-cross-slot-keys\nredis.call('set', 'a', 1) return redis.call('set', 'b', 2)\" 0"),
        "+OK\r\n"
    );
    assert_eq!(
        s.run("eval \"#!lua flags=no-cluster\nreturn 1\" 0"),
        "-ERR Can not run script on cluster, 'no-cluster' flag is set.\r\n"
    );
}

#[test]
fn a_script_replicates_its_effects() {
    let mut s = Session::new(TestHost::standalone());
    let out = s.outcome("eval \"redis.call('incr', KEYS[1]) redis.call('hset', KEYS[2], 'f', 'v') return redis.call('get', KEYS[1])\" 2 {x}a {x}b");
    assert_eq!(out.reply, Frame::Bulk(Bytes::from_static(b"1")));
    let writes: Vec<String> = out
        .applied_writes
        .iter()
        .map(|w| {
            w.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(writes, ["incr {x}a", "hset {x}b f v"]);
    // A read-only script replicates nothing.
    let out = s.outcome("eval \"return redis.call('get', KEYS[1])\" 1 {x}a");
    assert!(out.applied_writes.is_empty());
    // A replica refuses a script that may write (routing sees it as a write).
    let mut host = TestHost::standalone();
    host.replica = true;
    let mut r = Session::new(host);
    assert_eq!(
        r.run("eval \"#!lua\nreturn 1\" 0"),
        "-READONLY You can't write against a read only replica.\r\n"
    );
    assert_eq!(
        r.run("eval \"#!lua flags=no-writes\nreturn 1\" 0"),
        ":1\r\n"
    );
}

#[test]
fn debug_digest_depends_on_content_not_insertion_order() {
    let mut a = Session::new(TestHost::standalone());
    let mut b = Session::new(TestHost::standalone());
    assert_eq!(a.run("debug digest"), format!("+{}\r\n", "0".repeat(40)));
    for line in [
        "sadd s x y z",
        "hset h a 1 b 2",
        "zadd z 1 m 2 n",
        "rpush l 1 2 3",
        "set k v",
    ] {
        a.run(line);
    }
    for line in [
        "set k v",
        "rpush l 1 2 3",
        "zadd z 2 n 1 m",
        "hset h b 2 a 1",
        "sadd s z y x",
    ] {
        b.run(line);
    }
    assert_eq!(a.run("debug digest"), b.run("debug digest"));
    b.run("rpush l 4");
    assert_ne!(a.run("debug digest"), b.run("debug digest"));
    a.run("debug populate 10 p 3");
    assert_eq!(a.run("get p:7"), "$3\r\nval\r\n");
    assert_eq!(a.run("dbsize"), ":15\r\n");
}

#[test]
fn hostile_scripts_get_errors_not_a_crash() {
    let mut s = Session::new(TestHost::standalone());
    // A table that contains itself.
    let r = s.run("eval 'local t = {} t[1] = t return t' 0");
    assert!(r.contains("ERR reached lua stack limit"), "{r}");
    // The sandbox has no loadfile, dofile or os.
    assert!(s
        .run("eval 'return loadfile(\"/etc/passwd\")' 0")
        .starts_with("-ERR user_script:1:"));
    assert_eq!(s.run("eval 'return dofile' 0"), "$-1\r\n");
    assert!(s
        .run("eval 'os.exit(1)' 0")
        .starts_with("-ERR user_script:1:"));
    assert_eq!(s.run("fcall nofunc 0"), "-ERR Function not found\r\n");
    assert!(s
        .run("function restore garbage")
        .starts_with("-ERR payload version or checksum are wrong"));
    // FUNCTION DUMP / RESTORE round trip.
    s.run("function load '#!lua name=l\nredis.register_function(\"f\", function() return 7 end)'");
    let Frame::Bulk(dump) = s.outcome("function dump").reply else {
        panic!("dump")
    };
    assert_eq!(s.run("function flush"), "+OK\r\n");
    assert_eq!(s.run("fcall f 0"), "-ERR Function not found\r\n");
    let args = vec![
        Bytes::from_static(b"function"),
        Bytes::from_static(b"restore"),
        dump,
    ];
    let out = execute(&mut s.host, &mut s.db, &mut s.client, args);
    assert_eq!(out.reply, Frame::ok());
    assert_eq!(s.run("fcall f 0"), ":7\r\n");
}
