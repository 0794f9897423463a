//! Unit tests: the wire format (exact bytes, any split of the input), a
//! snapshot plus the stream rebuilding the master, and the decisions of
//! [`Replication`]: offsets, the backlog, PSYNC (continue or full), replid2
//! after a promotion, acks, INFO and ROLE.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::protocol::{self, Item, MasterReader, ProtocolError, PsyncReply};
use super::*;
use crate::cluster::SlotRoute;
use crate::commands::{self, ClientState, Host};
use crate::persist::snapshot;
use crate::store::{Db, Value};

const NOW: u64 = 1_700_000_000_000;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ').map(b).collect()
}

/// The least a replica's command layer needs: it owns every slot.
struct ReplicaHost;

impl Host for ReplicaHost {
    fn cluster_enabled(&self) -> bool {
        true
    }
    fn route(&self, _slot: u16) -> SlotRoute {
        SlotRoute {
            owner: None,
            owner_is_me: true,
            owner_is_my_master: false,
            migrating_to: None,
            importing: false,
        }
    }
    fn cluster_state_ok(&self) -> bool {
        true
    }
    fn allow_reads_when_down(&self) -> bool {
        false
    }
    fn now_ms(&self) -> u64 {
        NOW
    }
    fn is_replica(&self) -> bool {
        true
    }
    fn server_command(
        &mut self,
        _name: &str,
        _args: &[Bytes],
        _db: &mut Db,
        _client: &ClientState,
    ) -> Option<Frame> {
        None
    }
}

/// Runs a client command on a master db and returns what it replicates.
fn run_master(db: &mut Db, line: &str) -> Vec<Vec<Bytes>> {
    struct MasterHost;
    impl Host for MasterHost {
        fn cluster_enabled(&self) -> bool {
            false
        }
        fn route(&self, _slot: u16) -> SlotRoute {
            ReplicaHost.route(0)
        }
        fn cluster_state_ok(&self) -> bool {
            true
        }
        fn allow_reads_when_down(&self) -> bool {
            false
        }
        fn now_ms(&self) -> u64 {
            NOW
        }
        fn server_command(
            &mut self,
            _: &str,
            _: &[Bytes],
            _: &mut Db,
            _: &ClientState,
        ) -> Option<Frame> {
            None
        }
    }
    let mut client = ClientState::new(1);
    let out = commands::execute(&mut MasterHost, db, &mut client, args(line));
    assert!(
        !matches!(out.reply, Frame::Error(_)),
        "{line}: {:?}",
        out.reply
    );
    out.applied_writes
}

fn config() -> ReplConfig {
    ReplConfig {
        diskless_sync_delay_s: 0,
        ..ReplConfig::default()
    }
}

fn node(c: u8) -> NodeName {
    NodeName([c; 40])
}

fn request(replid: &str, offset: i64, port: u16) -> SyncRequest {
    SyncRequest {
        psync: Some((replid.to_string(), offset)),
        ip: "127.0.0.1".into(),
        port,
        capa_eof: true,
        capa_psync2: true,
    }
}

/// A full sync as the shell runs it: the request, then the snapshot.
fn full_sync(r: &mut Replication, port: u16) -> ReplicaId {
    let mut log = Vec::new();
    let d = r.sync_request(request("?", -1, port), || "b".repeat(40), NOW, &mut log);
    let SyncDecision::Full { id } = d else {
        panic!("{d:?}");
    };
    assert_eq!(r.due_full_syncs(NOW), vec![id]);
    r.snapshot_taken(&[id]);
    assert!(r.bulk_sent(id, NOW));
    id
}

// ------------------------------------------------------------ protocol

#[test]
fn commands_encode_as_canonical_multibulk() {
    let mut out = Vec::new();
    protocol::encode_command(&args("SET k v"), &mut out);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(protocol::encoded_len(&args("SET k v")), out.len());
    let big = vec![b("x"); 12];
    let mut out = Vec::new();
    protocol::encode_command(&big, &mut out);
    assert_eq!(protocol::encoded_len(&big), out.len());
}

#[test]
fn control_messages_have_exact_bytes() {
    assert_eq!(protocol::PING, protocol::command(&[b"PING"]).as_slice());
    assert_eq!(
        protocol::SELECT_0,
        protocol::command(&[b"SELECT", b"0"]).as_slice()
    );
    assert_eq!(
        protocol::GETACK,
        protocol::command(&[b"REPLCONF", b"GETACK", b"*"]).as_slice()
    );
    assert_eq!(
        protocol::ack(1234),
        b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$4\r\n1234\r\n"
    );
    assert_eq!(
        protocol::psync("?", -1),
        b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n"
    );
    let (hs, steps) = protocol::handshake(Some(("", "pw")), 7001, Some("10.0.0.1"));
    assert_eq!(
        steps,
        vec![
            protocol::HandshakeStep::Auth,
            protocol::HandshakeStep::Port,
            protocol::HandshakeStep::Ip,
            protocol::HandshakeStep::Capa
        ]
    );
    let text = String::from_utf8_lossy(&hs);
    assert!(text.starts_with("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n7001\r\n"), "{text}");
    assert!(
        text.ends_with(
            "*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
        ),
        "{text}"
    );
}

#[test]
fn psync_replies_parse_as_redis_reads_them() {
    let id = "a".repeat(40);
    assert_eq!(
        protocol::parse_psync_reply(&format!("+FULLRESYNC {id} 123")),
        PsyncReply::FullResync {
            replid: id.clone(),
            offset: 123
        }
    );
    assert_eq!(
        protocol::parse_psync_reply(&format!("+CONTINUE {id}")),
        PsyncReply::Continue {
            replid: Some(id.clone())
        }
    );
    assert_eq!(
        protocol::parse_psync_reply("+CONTINUE"),
        PsyncReply::Continue { replid: None }
    );
    assert!(matches!(
        protocol::parse_psync_reply("-NOMASTERLINK Can't SYNC while not connected with my master"),
        PsyncReply::TryLater(_)
    ));
    assert!(matches!(
        protocol::parse_psync_reply("-ERR unknown command 'PSYNC'"),
        PsyncReply::Error(_)
    ));
    assert!(matches!(
        protocol::parse_psync_reply("+FULLRESYNC short 1"),
        PsyncReply::Error(_)
    ));
}

/// Feeds `wire` to a reader in pieces of `step` bytes, moving it from the
/// reply to the snapshot to the stream as the replica does.
fn read_wire(wire: &[u8], step: usize) -> Result<Vec<Item>, ProtocolError> {
    let mut reader = MasterReader::new();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in wire.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        while let Some(item) = reader.next(&mut buf)? {
            match &item {
                Item::Line(l) if l.starts_with("+FULLRESYNC") => reader.expect_snapshot(),
                Item::Line(l) if l.starts_with("+CONTINUE") => reader.expect_stream(),
                Item::Payload(_) => reader.expect_stream(),
                _ => {}
            }
            items.push(item);
        }
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(items)
}

fn sample_wire(eof_mark: bool) -> (Vec<u8>, Vec<Item>) {
    let id = "f".repeat(40);
    let payload = b"REDIS0010 pretend payload\r\n$3\r\n*1\r\n".to_vec();
    let mut wire = b"\n\n+FULLRESYNC ".to_vec();
    wire.extend_from_slice(format!("{id} 77\r\n\n").as_bytes());
    if eof_mark {
        let mark = "0123456789abcdef0123456789abcdef01234567";
        wire.extend_from_slice(format!("$EOF:{mark}\r\n").as_bytes());
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(mark.as_bytes());
    } else {
        wire.extend_from_slice(format!("${}\r\n", payload.len()).as_bytes());
        wire.extend_from_slice(&payload);
    }
    let mut items = vec![
        Item::Line(format!("+FULLRESYNC {id} 77")),
        Item::Payload(payload),
    ];
    for cmd in [
        protocol::SELECT_0.to_vec(),
        protocol::command(&[b"SET", b"k", b"v\r\n"]),
        protocol::PING.to_vec(),
        protocol::GETACK.to_vec(),
    ] {
        wire.extend_from_slice(&cmd);
        let (args, _) = crate::resp::parse_request(&cmd, &crate::resp::RequestLimits::default())
            .ok()
            .flatten()
            .unwrap_or_default();
        items.push(Item::Command {
            args,
            raw: Bytes::from(cmd),
        });
    }
    (wire, items)
}

#[test]
fn the_reader_yields_the_same_items_for_every_split_of_the_input() {
    for eof in [false, true] {
        let (wire, expected) = sample_wire(eof);
        for step in [1, 2, 3, 7, 40, 41, 1000] {
            assert_eq!(
                read_wire(&wire, step).expect("valid"),
                expected,
                "eof {eof} step {step}"
            );
        }
    }
}

#[test]
fn the_reader_refuses_malformed_input() {
    let mut reader = MasterReader::new();
    reader.expect_snapshot();
    let mut buf = BytesMut::from(&b"$abc\r\n"[..]);
    assert!(matches!(
        reader.next(&mut buf),
        Err(ProtocolError::BadBulkHeader(_))
    ));
    let mut reader = MasterReader::new();
    reader.expect_snapshot();
    let mut buf = BytesMut::from(&b"$EOF:short\r\n"[..]);
    assert!(matches!(
        reader.next(&mut buf),
        Err(ProtocolError::BadBulkHeader(_))
    ));
    let mut reader = MasterReader::new();
    reader.expect_stream();
    let mut buf = BytesMut::from(&b"+OK\r\n"[..]);
    assert!(
        reader.next(&mut buf).is_err(),
        "status lines are not stream"
    );
    let mut buf = BytesMut::from(&b"*0\r\nPING\r\n"[..]);
    assert!(
        reader.next(&mut buf).is_err(),
        "an empty command is refused"
    );
    let mut reader = MasterReader::new();
    let mut buf = BytesMut::from(vec![b'+'; 70 * 1024].as_slice());
    assert_eq!(reader.next(&mut buf), Err(ProtocolError::LineTooLong));
}

#[test]
fn acks_from_a_replica_parse_and_other_commands_are_ignored() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&protocol::ack(42));
    buf.extend_from_slice(&protocol::command(&[
        b"REPLCONF",
        b"ACK",
        b"43",
        b"FACK",
        b"40",
    ]));
    buf.extend_from_slice(protocol::PING);
    buf.extend_from_slice(&protocol::command(&[b"REPLCONF", b"ACK", b"nan"]));
    let mut got = Vec::new();
    while let Some(a) = protocol::next_ack(&mut buf).expect("valid") {
        got.push(a);
    }
    assert_eq!(got, vec![Some(42), Some(43), None, None]);
}

// ------------------------------------------------------------ snapshot

#[test]
fn an_rdb_snapshot_plus_the_stream_equals_the_master() {
    // The master takes a snapshot, then keeps applying writes; the replica
    // loads the snapshot and applies the stream: both end up equal, and the
    // replica's byte count matches the master's offset.
    let mut master = Db::new();
    for line in ["SET a 1", "RPUSH l x", "SADD s 1 2", "SET t v PX 100000"] {
        run_master(&mut master, line);
    }
    let mut r = Replication::new("m".repeat(40), config(), NOW);
    let mut log = Vec::new();
    let SyncDecision::Full { id } =
        r.sync_request(request("?", -1, 7001), || "b".repeat(40), NOW, &mut log)
    else {
        panic!("expected a full sync");
    };
    let info = r.save_info();
    let rdb_bytes = crate::rdb::file::write_db(
        &master,
        crate::rdb::Options::default(),
        NOW / 1000,
        info.as_ref(),
    );
    let (replid, start) = r.snapshot_taken(&[id]);
    let mut wire = format!("+FULLRESYNC {replid} {start}\r\n${}\r\n", rdb_bytes.len()).into_bytes();
    wire.extend_from_slice(&rdb_bytes);
    for line in [
        "INCRBY a 10",
        "RPUSH l y z",
        "LPOP l",
        "SADD s 3",
        "SREM s 1",
        "SET e v EX 100",
        "DEL missing",
    ] {
        for w in run_master(&mut master, line) {
            if let Some(bytes) = r.feed(&w) {
                wire.extend_from_slice(&bytes);
            }
        }
    }
    let cron = r.cron(NOW + 10_000, false);
    wire.extend_from_slice(&cron.stream.expect("a ping is due"));
    let end = r.offset();
    assert!(end > start);

    let mut replica = Db::new();
    commands::set_replica_mode(&mut replica, true);
    let mut offset = 0;
    for item in read_wire(&wire, 5).expect("valid") {
        match item {
            Item::Line(l) => {
                let PsyncReply::FullResync { offset: o, .. } = protocol::parse_psync_reply(&l)
                else {
                    panic!("{l}");
                };
                offset = o;
            }
            Item::Payload(p) => {
                let (db, loaded) = crate::rdb::file::load_db(&p, None).expect("valid RDB");
                assert_eq!(loaded.keys, 4);
                assert_eq!(loaded.aux.repl_info().map(|i| i.offset), Some(start));
                replica.replace_with(db, NOW);
            }
            Item::Command { args, raw } => {
                offset += raw.len() as u64;
                if !matches!(&args[0][..], b"SELECT" | b"PING") {
                    commands::apply_replicated(&mut ReplicaHost, &mut replica, args);
                }
            }
        }
    }
    assert_eq!(
        offset, end,
        "the replica's byte count matches the master's offset"
    );
    for key in ["a", "l", "s", "e", "t"] {
        assert_eq!(
            master.get(key.as_bytes(), NOW).cloned(),
            replica.get(key.as_bytes(), NOW).cloned(),
            "{key}"
        );
    }
    assert!(r.bulk_sent(id, NOW));
    assert!(r.handle_ack(id, end, NOW + 5));
    assert_eq!(r.count_acks(end), 1);
}

/// Applies AOF-rewrite snapshot bytes (commands) to an empty replica db.
fn load_commands(snapshot: &[u8]) -> Db {
    let mut db = Db::new();
    commands::set_replica_mode(&mut db, true);
    let mut buf = BytesMut::from(snapshot);
    let limits = crate::resp::RequestLimits::default();
    while let Some((args, used)) = crate::resp::parse_request(&buf, &limits).expect("valid") {
        let _ = buf.split_to(used);
        let reply = commands::apply_replicated(&mut ReplicaHost, &mut db, args);
        assert!(!matches!(reply, Frame::Error(_)), "{reply:?}");
    }
    db
}

#[test]
fn the_aof_snapshot_rebuilds_every_type_with_its_ttl() {
    let mut master = Db::new();
    for line in [
        "SET plain v",
        "SET ttl v PX 50000",
        "RPUSH list a b c",
        "SADD set x y z",
        "RPUSH tlist q",
        "PEXPIRE tlist 70000",
        "SADD tset m",
        "PEXPIRE tset 80000",
        "SET bin \u{0}\r\n$",
        "INCRBY counter 41",
    ] {
        run_master(&mut master, line);
    }
    let snap = snapshot::encode(&mut master, NOW);
    assert_eq!(snap.keys, 8);
    let mut replica = load_commands(&snap.bytes);
    assert_eq!(replica.len(), master.len());
    for key in [
        "plain", "ttl", "list", "set", "tlist", "tset", "bin", "counter",
    ] {
        let m = master.get(key.as_bytes(), NOW).cloned();
        let r = replica.get(key.as_bytes(), NOW).cloned();
        assert!(m.is_some(), "{key}");
        assert_eq!(m, r, "key {key}");
    }
    assert_eq!(
        replica.get(b"tset", NOW).and_then(|e| e.expire_at()),
        Some(NOW + 80000)
    );
}

#[test]
fn the_aof_snapshot_chunks_big_collections_and_skips_expired_keys() {
    let mut master = Db::new();
    let n = snapshot::CHUNK * 2 + 7;
    let items: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
    run_master(&mut master, &format!("RPUSH big {}", items.join(" ")));
    run_master(&mut master, &format!("SADD bigset {}", items.join(" ")));
    run_master(&mut master, "SET gone v PX 10");
    // Later than the TTL: `gone` is logically expired but not yet deleted.
    let later = NOW + 1000;
    let snap = snapshot::encode(&mut master, later);
    assert_eq!(snap.keys, 2, "the expired key is left out");
    let text = String::from_utf8_lossy(&snap.bytes);
    assert_eq!(text.matches("RPUSH").count(), 3);
    assert_eq!(text.matches("SADD").count(), 3);
    assert!(!text.contains("gone"));
    let mut replica = load_commands(&snap.bytes);
    assert_eq!(
        replica.get(b"big", NOW).map(|e| e.value.clone()),
        Some(Value::List(
            items.iter().map(|s| b(s)).collect::<VecDeque<_>>()
        ))
    );
    assert_eq!(
        master.get(b"bigset", 0).cloned(),
        replica.get(b"bigset", 0).cloned()
    );
    assert!(master.len() == 3, "encoding did not expire anything itself");
}

// ------------------------------------------------------------ state

#[test]
fn the_master_offset_moves_only_with_a_backlog_and_the_first_replica_starts_a_history() {
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    assert_eq!(r.feed(&args("SET k v")), None, "no backlog, no replica");
    assert_eq!(r.offset(), 0, "redis counts nothing without a backlog");
    assert!(r.save_info().is_none());
    let id = full_sync(&mut r, 7001);
    assert_eq!(r.replid(), "b".repeat(40), "a new history with the backlog");
    assert_eq!(r.replid2(), NO_REPLID);
    assert_eq!(r.backlog().map(|b| b.first_byte_offset()), Some(1));
    let bytes = r.feed(&args("SET k v")).expect("a replica is connected");
    let mut expected = protocol::SELECT_0.to_vec();
    expected.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(&bytes[..], &expected[..], "the stream starts with SELECT 0");
    assert_eq!(r.offset(), expected.len() as u64);
    let again = r.feed(&args("SET k v")).expect("still");
    assert_eq!(
        &again[..],
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        "SELECT once"
    );
    assert_eq!(r.backlog().map(|b| b.histlen()), Some(r.offset()));
    // The backlog outlives the replica (repl-backlog-ttl).
    r.remove_replica(id, NOW);
    assert!(r.feed(&args("SET k v")).is_some(), "fed to the backlog");
    let out = r.cron(NOW + 3_601_000, false);
    assert!(out.backlog_freed);
    assert!(r.backlog().is_none());
}

#[test]
fn psync_continues_from_the_backlog_or_falls_back_to_a_full_sync() {
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    let id = full_sync(&mut r, 7001);
    let replid = r.replid().to_string();
    for i in 0..10 {
        r.feed(&args(&format!("SET k{i} v")));
    }
    let mid = r.offset();
    for i in 0..5 {
        r.feed(&args(&format!("SET j{i} v")));
    }
    r.remove_replica(id, NOW);
    let mut log = Vec::new();
    // Continue from the middle: the rest of the backlog follows +CONTINUE.
    let d = r.sync_request(
        request(&replid, mid as i64 + 1, 7001),
        String::new,
        NOW,
        &mut log,
    );
    let SyncDecision::Continue {
        id: id2,
        head,
        backlog,
    } = d
    else {
        panic!("{d:?} {log:?}");
    };
    assert_eq!(head, format!("+CONTINUE {replid}\r\n").into_bytes());
    let sent: Vec<u8> = backlog.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(sent.len() as u64, r.offset() - mid);
    assert!(String::from_utf8_lossy(&sent).starts_with("*3\r\n$3\r\nSET\r\n$2\r\nj0"));
    assert_eq!(r.replica(id2).map(|e| e.state), Some(ReplicaState::Online));
    assert!(
        log.iter().any(
            |l| l.starts_with("Partial resynchronization request from 127.0.0.1:7001 accepted")
        ),
        "{log:?}"
    );
    // Nothing missing is fine too; an offset ahead of us or an unknown ID is not.
    let next = r.offset() as i64 + 1;
    assert!(matches!(
        r.sync_request(request(&replid, next, 7002), String::new, NOW, &mut log),
        SyncDecision::Continue { .. }
    ));
    assert!(matches!(
        r.sync_request(request(&replid, next + 1, 7003), String::new, NOW, &mut log),
        SyncDecision::Full { .. }
    ));
    assert!(matches!(
        r.sync_request(
            request(&"x".repeat(40), 1, 7004),
            String::new,
            NOW,
            &mut log
        ),
        SyncDecision::Full { .. }
    ));
    assert!(
        log.iter().any(|l| l.contains("Replication ID mismatch")),
        "{log:?}"
    );
    // Without psync2 the reply names no ID.
    let mut req = request(&replid, next, 7005);
    req.capa_psync2 = false;
    let SyncDecision::Continue { head, .. } = r.sync_request(req, String::new, NOW, &mut log)
    else {
        panic!("expected continue");
    };
    assert_eq!(head, b"+CONTINUE\r\n");
}

#[test]
fn a_small_backlog_forgets_old_offsets() {
    let mut r = Replication::new(
        "a".repeat(40),
        ReplConfig {
            backlog_size: 100,
            ..config()
        },
        NOW,
    );
    full_sync(&mut r, 7001);
    let replid = r.replid().to_string();
    for i in 0..20 {
        r.feed(&args(&format!("SET key{i} value")));
    }
    let b = r.backlog().expect("a backlog");
    assert!(b.histlen() >= 100 && b.histlen() < 140, "{}", b.histlen());
    assert_eq!(b.first_byte_offset() + b.histlen(), r.offset() + 1);
    let mut log = Vec::new();
    assert!(matches!(
        r.sync_request(request(&replid, 5, 7002), String::new, NOW, &mut log),
        SyncDecision::Full { .. }
    ));
    assert!(
        log.iter().any(|l| l.contains("for lack of backlog")),
        "{log:?}"
    );
}

#[test]
fn a_promoted_replica_lets_its_former_siblings_continue() {
    // r follows master m; it is promoted; its sibling asks to continue
    // with m's ID and its own offset, which r's replid2 covers.
    let mut r = Replication::new("z".repeat(40), config(), NOW);
    let RoleChange::BecameReplica { generation } =
        r.set_master(Some((node(b'm'), "h".into(), 1)), String::new, NOW)
    else {
        panic!("expected BecameReplica");
    };
    assert_eq!(
        r.psync_args(generation),
        Some(("z".repeat(40), 1)),
        "cached master from myself"
    );
    assert!(r.full_resync_announced(generation, "m".repeat(40), 1000, NOW));
    assert_eq!(
        r.psync_args(generation),
        Some(("?".into(), -1)),
        "nothing to continue from while loading"
    );
    assert_eq!(r.full_sync_done(generation, NOW), Some(1000));
    let cmd = Bytes::from(protocol::command(&[b"SET", b"k", b"v"]));
    assert!(r.applied(generation, cmd.clone()));
    assert_eq!(r.offset(), 1027);
    assert_eq!(r.psync_args(generation), Some(("m".repeat(40), 1028)));
    let sibling_at = r.offset() as i64 + 1;
    assert!(
        r.applied(generation, cmd.clone()),
        "one more the sibling missed"
    );

    let change = r.set_master(None, || "n".repeat(40), NOW);
    assert_eq!(
        change,
        RoleChange::BecameMaster {
            old: node(b'm'),
            was_up: true
        }
    );
    assert_eq!(r.replid(), "n".repeat(40));
    assert_eq!(r.replid2(), "m".repeat(40));
    assert!(r.info_text(NOW).contains("second_repl_offset:1055\r\n"));
    let mut log = Vec::new();
    let d = r.sync_request(
        request(&"m".repeat(40), sibling_at, 7002),
        String::new,
        NOW,
        &mut log,
    );
    let SyncDecision::Continue { head, backlog, .. } = d else {
        panic!("{d:?} {log:?}");
    };
    assert_eq!(
        head,
        format!("+CONTINUE {}\r\n", "n".repeat(40)).into_bytes()
    );
    assert_eq!(
        backlog.concat(),
        cmd.to_vec(),
        "exactly what the sibling missed"
    );
    // An old ID beyond where that history ended can't continue.
    assert!(matches!(
        r.sync_request(
            request(&"m".repeat(40), 1056, 7003),
            String::new,
            NOW,
            &mut log
        ),
        SyncDecision::Full { .. }
    ));
}

#[test]
fn a_replica_continuing_under_a_new_id_shifts_its_own() {
    let mut r = Replication::new("z".repeat(40), config(), NOW);
    let RoleChange::BecameReplica { generation } =
        r.set_master(Some((node(b'm'), "h".into(), 1)), String::new, NOW)
    else {
        panic!("expected BecameReplica");
    };
    r.full_resync_announced(generation, "m".repeat(40), 500, NOW);
    r.full_sync_done(generation, NOW);
    assert_eq!(r.link_lost(generation, NOW), Some(true));
    assert_eq!(
        r.continued(generation, Some("n".repeat(40)), NOW),
        Some(true)
    );
    assert_eq!(r.replid(), "n".repeat(40));
    assert_eq!(r.replid2(), "m".repeat(40));
    assert_eq!(
        r.continued(generation, Some("n".repeat(40)), NOW),
        Some(false)
    );
    assert_eq!(r.continued(generation + 1, None, NOW), None, "stale");
}

#[test]
fn replica_link_stages_and_offsets() {
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    let change = r.set_master(
        Some((node(b'm'), "127.0.0.1".into(), 30001)),
        || unreachable!(),
        NOW,
    );
    let RoleChange::BecameReplica { generation } = change else {
        panic!("{change:?}");
    };
    assert!(r.is_replica());
    assert_eq!(
        r.core_offset(),
        0,
        "a fresh node has offset 0 as a replica too"
    );
    assert_eq!(r.feed(&args("SET k v")), None, "replicas feed nobody");
    assert!(r.link_stage(generation, LinkState::Connecting, NOW));
    assert!(r.link_stage(generation, LinkState::Handshake, NOW));
    assert!(r.full_resync_announced(generation, "m".repeat(40), 500, NOW));
    assert_eq!(r.core_offset(), 0, "loading");
    assert!(!r.is_loading(), "still receiving the snapshot");
    assert!(r.loading_started(generation));
    assert!(r.is_loading(), "parsing the snapshot");
    assert!(!r.loading_started(generation + 1), "a stale link");
    assert_eq!(r.full_sync_done(generation, NOW + 10), Some(500));
    assert!(!r.is_loading(), "loaded");
    assert_eq!(r.core_offset(), 500);
    assert_eq!(r.replid(), "m".repeat(40));
    assert_eq!(r.backlog().map(|b| b.first_byte_offset()), Some(501));
    assert!(r.applied(generation, Bytes::from(vec![b'x'; 27])));
    assert_eq!(r.core_offset(), 527);
    assert_eq!(r.ack_bytes(generation), Some(protocol::ack(527)));
    // A stale link's reports change nothing.
    assert!(!r.applied(generation + 1, Bytes::from_static(b"xx")));
    assert_eq!(r.link_lost(generation + 1, NOW), None);
    assert_eq!(r.core_offset(), 527);
    // The link breaks: the cached offset stays, and the next PSYNC asks for 528.
    assert_eq!(r.link_lost(generation, NOW + 2000), Some(true));
    assert_eq!(
        r.link_lost(generation, NOW + 3000),
        Some(false),
        "already down"
    );
    assert_eq!(r.core_offset(), 527);
    assert_eq!(r.psync_args(generation), Some(("m".repeat(40), 528)));
    assert_eq!(r.ack_bytes(generation), None, "no acks while down");
    assert_eq!(
        r.upstream().and_then(|u| u.down_since),
        Some(NOW + 2000),
        "down since the first loss"
    );
}

#[test]
fn changing_master_restarts_the_link_and_keeps_the_cached_offset() {
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    full_sync(&mut r, 7001);
    r.feed(&args("SET k v"));
    let at = r.offset();
    let m1 = Some((node(b'm'), "h".to_string(), 1));
    let RoleChange::BecameReplica { generation: g1 } = r.set_master(m1.clone(), String::new, NOW)
    else {
        panic!("expected BecameReplica");
    };
    assert_eq!(
        r.core_offset(),
        at,
        "a master turned replica keeps its offset"
    );
    assert!(r.replicas().next().is_none(), "and drops its replicas");
    assert!(r.backlog().is_some(), "but keeps its backlog");
    assert_eq!(r.set_master(m1, String::new, NOW), RoleChange::None);
    // Same node at a new address counts as a change.
    let change = r.set_master(Some((node(b'm'), "h".into(), 2)), String::new, NOW);
    let RoleChange::ChangedMaster {
        old,
        was_up: false,
        generation: g2,
    } = change
    else {
        panic!("{change:?}");
    };
    assert_eq!(old, node(b'm'));
    assert!(g2 > g1);
    assert!(!r.is_current(g1));
    assert!(!r.link_stage(g1, LinkState::Connecting, NOW));
    assert_eq!(r.core_offset(), at);
}

#[test]
fn replicas_refuse_to_serve_sync() {
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    r.set_master(Some((node(b'm'), "h".into(), 1)), String::new, NOW);
    let mut log = Vec::new();
    let d = r.sync_request(request("?", -1, 7001), String::new, NOW, &mut log);
    assert_eq!(
        d,
        SyncDecision::Refuse("NOMASTERLINK Can't SYNC while not connected with my master".into())
    );
}

#[test]
fn acks_count_for_wait_and_min_replicas() {
    let mut r = Replication::new(
        "a".repeat(40),
        ReplConfig {
            min_replicas_to_write: 2,
            min_replicas_max_lag_s: 10,
            ..config()
        },
        NOW,
    );
    assert!(r.writes_refused(), "no replicas yet");
    let a = full_sync(&mut r, 7001);
    r.feed(&args("SET k v"));
    let at = r.offset();
    assert!(r.writes_refused(), "one of two");
    let mut log = Vec::new();
    let SyncDecision::Full { id: b } =
        r.sync_request(request("?", -1, 7002), String::new, NOW, &mut log)
    else {
        panic!("expected full");
    };
    assert_eq!(r.count_acks(0), 1, "only online replicas count");
    r.snapshot_taken(&[b]);
    r.bulk_sent(b, NOW);
    assert!(!r.writes_refused());
    assert!(r.handle_ack(a, at, NOW));
    assert_eq!(r.count_acks(at), 1);
    assert!(r.handle_ack(b, at + 10, NOW));
    assert!(r.handle_ack(a, 3, NOW), "acks never go back");
    assert_eq!(r.replica(a).map(|e| e.ack_offset), Some(at));
    assert_eq!(r.count_acks(at), 2);
    // Lagging past min-replicas-max-lag: writes refused again.
    r.cron(NOW + 11_000, false);
    assert!(r.writes_refused());
    assert!(r.remove_replica(b, NOW).is_some());
    assert_eq!(r.count_acks(at), 1);
    assert!(!r.handle_ack(b, 60, NOW), "unknown replica");
}

#[test]
fn the_cron_pings_times_out_and_keeps_presync_replicas_alive() {
    let mut r = Replication::new(
        "a".repeat(40),
        ReplConfig {
            diskless_sync_delay_s: 5,
            ..config()
        },
        NOW,
    );
    let mut log = Vec::new();
    let SyncDecision::Full { id } =
        r.sync_request(request("?", -1, 7001), String::new, NOW, &mut log)
    else {
        panic!("expected full");
    };
    assert!(
        r.due_full_syncs(NOW + 4000).is_empty(),
        "waiting for more replicas"
    );
    let out = r.cron(NOW + 1000, false);
    assert_eq!(out.presync, vec![id]);
    assert_eq!(r.due_full_syncs(NOW + 5000), vec![id]);
    r.snapshot_taken(&[id]);
    r.bulk_sent(id, NOW + 5000);
    let before = r.offset();
    let out = r.cron(NOW + 11_000, true);
    assert!(
        out.stream.is_none(),
        "no PING while a manual failover pauses"
    );
    assert_eq!(r.offset(), before);
    let out = r.cron(NOW + 22_000, false);
    assert_eq!(out.stream.as_deref(), Some(protocol::PING));
    let out = r.cron(NOW + 70_000, false);
    assert_eq!(out.timed_out, vec![id], "no ack for repl-timeout");
}

#[test]
fn info_replication_fields_follow_redis() {
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    let id = full_sync(&mut r, 30002);
    r.feed(&args("SET k v"));
    r.handle_ack(id, 50, NOW);
    let info = r.info_text(NOW + 3500);
    let expected = format!(
        "role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=30002,state=online,offset=50,lag=3\r\nmaster_failover_state:no-failover\r\nmaster_replid:{b}\r\nmaster_replid2:{z}\r\nmaster_repl_offset:50\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:1\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:50\r\n",
        b = "b".repeat(40),
        z = "0".repeat(40)
    );
    assert_eq!(info, expected);

    let mut r = Replication::new("a".repeat(40), config(), NOW);
    let RoleChange::BecameReplica { generation } = r.set_master(
        Some((node(b'm'), "127.0.0.1".into(), 30001)),
        String::new,
        NOW,
    ) else {
        panic!("expected BecameReplica");
    };
    let info = r.info_text(NOW);
    assert!(
        info.starts_with("role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:30001\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:0\r\nslave_repl_offset:0\r\nmaster_link_down_since_seconds:-1\r\nslave_priority:100\r\n"),
        "{info}"
    );
    r.full_resync_announced(generation, "m".repeat(40), 90, NOW);
    r.transfer_progress(generation, Some(200), 50, NOW);
    let info = r.info_text(NOW);
    assert!(info.contains("master_sync_in_progress:1\r\nslave_read_repl_offset:1\r\nslave_repl_offset:1\r\nmaster_sync_total_bytes:200\r\nmaster_sync_read_bytes:50\r\nmaster_sync_left_bytes:150\r\nmaster_sync_perc:25.00\r\n"), "{info}");
    r.full_sync_done(generation, NOW);
    r.received(generation, 10, NOW + 2000);
    let info = r.info_text(NOW + 4100);
    assert!(
        info.contains("master_link_status:up\r\nmaster_last_io_seconds_ago:2\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:100\r\nslave_repl_offset:90\r\nslave_priority"),
        "{info}"
    );
    assert!(!info.contains("master_link_down_since_seconds"), "{info}");
    assert!(info.contains("connected_slaves:0\r\n"), "{info}");
    assert!(info.contains("master_repl_offset:90\r\n"), "{info}");
    assert!(
        info.contains("repl_backlog_first_byte_offset:91\r\n"),
        "{info}"
    );
}

#[test]
fn role_reply_shapes() {
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    let id = full_sync(&mut r, 30002);
    let mut log = Vec::new();
    r.sync_request(request("?", -1, 30003), String::new, NOW, &mut log);
    r.feed(&args("SET k v"));
    r.handle_ack(id, 50, NOW);
    // Only online replicas are listed; port and offset are bulk strings.
    assert_eq!(
        crate::resp::encode_to_vec(&r.role_frame(), false),
        b"*3\r\n$6\r\nmaster\r\n:50\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$5\r\n30002\r\n$2\r\n50\r\n"
    );
    let mut r = Replication::new("a".repeat(40), config(), NOW);
    let RoleChange::BecameReplica { generation } = r.set_master(
        Some((node(b'm'), "127.0.0.1".into(), 30001)),
        String::new,
        NOW,
    ) else {
        panic!("expected BecameReplica");
    };
    assert_eq!(
        crate::resp::encode_to_vec(&r.role_frame(), false),
        b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:30001\r\n$7\r\nconnect\r\n:-1\r\n"
    );
    r.full_resync_announced(generation, "m".repeat(40), 90, NOW);
    r.full_sync_done(generation, NOW);
    assert_eq!(
        crate::resp::encode_to_vec(&r.role_frame(), false),
        b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:30001\r\n$9\r\nconnected\r\n:90\r\n"
    );
}
