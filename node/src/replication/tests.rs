//! Unit tests: the stream format (exact bytes, any split of the input), the
//! snapshot encoder (a snapshot rebuilds the keyspace), and the role and
//! offset bookkeeping of [`Replication`].

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::protocol::{self, Item, ProtocolError, StreamDecoder};
use super::snapshot;
use super::*;
use crate::cluster::SlotRoute;
use crate::commands::{self, ClientState, Host};
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

fn decode_all(dec: &mut StreamDecoder, bytes: &[u8]) -> Result<Vec<Item>, ProtocolError> {
    let mut buf = BytesMut::from(bytes);
    let mut items = Vec::new();
    while let Some(item) = dec.next(&mut buf)? {
        items.push(item);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(items)
}

// ------------------------------------------------------------ protocol

#[test]
fn commands_encode_as_canonical_multibulk() {
    let mut out = Vec::new();
    protocol::encode_command(&args("SET k hello"), &mut out);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
    assert_eq!(protocol::encoded_len(&args("SET k hello")), out.len());
    let big = vec![Bytes::from(vec![b'x'; 12345]); 11];
    let mut out = Vec::new();
    protocol::encode_command(&big, &mut out);
    assert_eq!(protocol::encoded_len(&big), out.len());
    assert_eq!(
        protocol::PING.len(),
        protocol::encoded_len(&args("PING")),
        "the ping counts like any command"
    );
}

#[test]
fn control_messages_have_exact_bytes() {
    let id = "a".repeat(40);
    assert_eq!(
        protocol::sync_request(&id, 30004),
        format!("*3\r\n$12\r\nHEARSAY.SYNC\r\n$40\r\n{id}\r\n$5\r\n30004\r\n").into_bytes()
    );
    assert_eq!(
        protocol::ack(1234),
        b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$4\r\n1234\r\n".to_vec()
    );
    assert_eq!(
        protocol::fullresync_header(&id, 77),
        format!("+FULLRESYNC {id} 77\r\n").into_bytes()
    );
    assert_eq!(protocol::snapshot_end(3), b"+SNAPSHOT-END 3\r\n".to_vec());
}

#[test]
fn sync_request_and_ack_parse_and_reject_garbage() {
    let id = "0123456789abcdef0123456789abcdef01234567";
    let req = protocol::parse_sync_request(&args(&format!("hearsay.sync {id} 30004")));
    assert_eq!(
        req,
        Ok(protocol::SyncRequest {
            replica_id: id.to_string(),
            listening_port: 30004
        })
    );
    assert!(protocol::is_sync_request(&args("HEARSAY.SYNC x")));
    assert!(!protocol::is_sync_request(&args("SYNC")));
    for bad in [
        format!("HEARSAY.SYNC {id}"),
        format!("HEARSAY.SYNC {id} 70000"),
        format!("HEARSAY.SYNC {id} -1"),
        "HEARSAY.SYNC short 30004".to_string(),
        format!("HEARSAY.SYNC {id} 1 2"),
    ] {
        assert!(protocol::parse_sync_request(&args(&bad)).is_err(), "{bad}");
    }

    let mut buf = BytesMut::from(&protocol::ack(42)[..]);
    buf.extend_from_slice(&protocol::ack(43)[..5]);
    assert_eq!(protocol::next_ack(&mut buf), Ok(Some(42)));
    assert_eq!(protocol::next_ack(&mut buf), Ok(None), "incomplete");
    buf.extend_from_slice(&protocol::ack(43)[5..]);
    assert_eq!(protocol::next_ack(&mut buf), Ok(Some(43)));
    let mut buf = BytesMut::from(&b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$2\r\n-1\r\n"[..]);
    assert!(protocol::next_ack(&mut buf).is_err());
    let mut buf = BytesMut::from(&b"GET k\r\n"[..]);
    assert!(protocol::next_ack(&mut buf).is_err());
    // A hostile length is refused, not buffered.
    let mut buf = BytesMut::from(&b"*3\r\n$999999999\r\n"[..]);
    assert!(protocol::next_ack(&mut buf).is_err());
}

/// A whole conversation: header, snapshot, end marker, stream.
fn sample_stream() -> (Vec<u8>, Vec<Item>) {
    let id = "f".repeat(40);
    let mut bytes = protocol::fullresync_header(&id, 100);
    let mut expected = vec![Item::FullResync {
        replid: id,
        offset: 100,
    }];
    for line in ["SET a 1", "RPUSH l x y"] {
        let mut cmd = Vec::new();
        protocol::encode_command(&args(line), &mut cmd);
        bytes.extend_from_slice(&cmd);
        expected.push(Item::Command {
            args: args(line),
            len: cmd.len(),
        });
    }
    bytes.extend_from_slice(&protocol::snapshot_end(2));
    expected.push(Item::SnapshotEnd { keys: 2 });
    for line in ["INCRBY a 5", "PING", "SADD s m"] {
        let mut cmd = Vec::new();
        protocol::encode_command(&args(line), &mut cmd);
        bytes.extend_from_slice(&cmd);
        expected.push(Item::Command {
            args: args(line),
            len: cmd.len(),
        });
    }
    (bytes, expected)
}

#[test]
fn decoder_yields_the_same_items_for_every_split_of_the_input() {
    let (bytes, expected) = sample_stream();
    assert_eq!(
        decode_all(&mut StreamDecoder::new(), &bytes),
        Ok(expected.clone())
    );
    // Every split into two reads, then byte by byte.
    for cut in 0..bytes.len() {
        let mut dec = StreamDecoder::new();
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            buf.extend_from_slice(part);
            while let Some(item) = dec.next(&mut buf).expect("valid stream") {
                items.push(item);
            }
        }
        assert_eq!(items, expected, "cut at {cut}");
    }
    let mut dec = StreamDecoder::new();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for &byte in &bytes {
        buf.extend_from_slice(&[byte]);
        while let Some(item) = dec.next(&mut buf).expect("valid stream") {
            items.push(item);
        }
    }
    assert_eq!(items, expected);
    assert!(dec.streaming());
}

#[test]
fn decoder_refuses_out_of_order_or_malformed_input() {
    let id = "f".repeat(40);
    let header = protocol::fullresync_header(&id, 1);
    let end = protocol::snapshot_end(0);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"*1\r\n$4\r\nPING\r\n".to_vec(), "command before header"),
        (end.clone(), "end marker before header"),
        (b"+FULLRESYNC short 1\r\n".to_vec(), "short replid"),
        (format!("+FULLRESYNC {id} x\r\n").into_bytes(), "bad offset"),
        (format!("+FULLRESYNC {id}\r\n").into_bytes(), "no offset"),
        (b"+OK\r\n".to_vec(), "not a header"),
        (b"GET k\r\n".to_vec(), "inline"),
        ([header.clone(), header.clone()].concat(), "two headers"),
        (
            [header.clone(), end.clone(), end.clone()].concat(),
            "two end markers",
        ),
        (
            [header.clone(), b"*0\r\n+SNAPSHOT-END 0\r\n".to_vec()].concat(),
            "empty multibulk",
        ),
        (
            [header.clone(), b"*1\r\n$-5\r\n".to_vec()].concat(),
            "negative bulk",
        ),
        (
            [header.clone(), b"+SNAPSHOT-END x\r\n".to_vec()].concat(),
            "bad key count",
        ),
        (
            [header, end, b":1\r\n".to_vec()].concat(),
            "integer in stream",
        ),
    ];
    for (bytes, what) in cases {
        assert!(
            decode_all(&mut StreamDecoder::new(), &bytes).is_err(),
            "{what} was accepted"
        );
    }
    let refused = decode_all(&mut StreamDecoder::new(), b"-ERR no\r\n");
    assert_eq!(refused, Err(ProtocolError::Refused("ERR no".into())));
    // A line that never ends is refused once it is too long to be a header.
    let mut buf = BytesMut::from(&vec![b'+'; 70_000][..]);
    assert_eq!(
        StreamDecoder::new().next(&mut buf),
        Err(ProtocolError::LineTooLong)
    );
}

// ------------------------------------------------------------ snapshot

/// Applies snapshot bytes to an empty replica db, as the shell does.
fn load(snapshot: &[u8]) -> Db {
    let mut db = Db::new();
    commands::set_replica_mode(&mut db, true);
    let mut dec = StreamDecoder::new();
    let mut bytes = protocol::fullresync_header(&"r".repeat(40), 0);
    bytes.extend_from_slice(snapshot);
    bytes.extend_from_slice(&protocol::snapshot_end(0));
    for item in decode_all(&mut dec, &bytes).expect("valid snapshot") {
        if let Item::Command { args, .. } = item {
            let reply = commands::apply_replicated(&mut ReplicaHost, &mut db, args);
            assert!(!matches!(reply, Frame::Error(_)), "{reply:?}");
        }
    }
    db
}

#[test]
fn snapshot_rebuilds_every_type_with_its_ttl() {
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
    let mut replica = load(&snap.bytes);
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
fn snapshot_chunks_big_collections_and_skips_expired_keys() {
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
    let mut replica = load(&snap.bytes);
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

#[test]
fn snapshot_plus_stream_equals_the_master() {
    // The master takes a snapshot, then keeps applying writes; the replica
    // loads the snapshot and applies the stream: both end up equal.
    let mut master = Db::new();
    for line in ["SET a 1", "RPUSH l x", "SADD s 1 2"] {
        run_master(&mut master, line);
    }
    let mut repl = Replication::new("m".repeat(40));
    let id = repl.add_replica("r".repeat(40), "127.0.0.1".into(), 1, NOW);
    let start = repl.offset();
    let snap = snapshot::encode(&mut master, NOW);
    let mut wire = protocol::fullresync_header(repl.replid(), start);
    wire.extend_from_slice(&snap.bytes);
    wire.extend_from_slice(&protocol::snapshot_end(snap.keys));
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
            if let Some(bytes) = repl.feed(&w) {
                wire.extend_from_slice(&bytes);
            }
        }
    }
    if let Some(ping) = repl.feed_ping() {
        wire.extend_from_slice(&ping);
    }
    let end = repl.offset();
    assert!(end > start);

    let mut replica = Db::new();
    commands::set_replica_mode(&mut replica, true);
    let mut dec = StreamDecoder::new();
    let (mut offset, mut streaming) = (0, false);
    for item in decode_all(&mut dec, &wire).expect("valid") {
        match item {
            Item::FullResync { offset: o, .. } => offset = o,
            Item::SnapshotEnd { keys } => {
                assert_eq!(keys, 3);
                streaming = true;
            }
            Item::Command { args, len } => {
                if streaming {
                    offset += len as u64;
                }
                commands::apply_replicated(&mut ReplicaHost, &mut replica, args);
            }
        }
    }
    assert_eq!(
        offset, end,
        "the replica's byte count matches the master's offset"
    );
    for key in ["a", "l", "s", "e"] {
        assert_eq!(
            master.get(key.as_bytes(), NOW).cloned(),
            replica.get(key.as_bytes(), NOW).cloned(),
            "{key}"
        );
    }
    assert_eq!(repl.handle_ack(id, end, NOW + 5), Some(end));
    assert_eq!(repl.count_acks(end), 1);
}

// ------------------------------------------------------------ state

fn node(c: u8) -> NodeName {
    NodeName([c; 40])
}

#[test]
fn master_offset_counts_stream_bytes_with_or_without_replicas() {
    let mut r = Replication::new("a".repeat(40));
    assert_eq!(r.feed(&args("SET k v")), None, "nobody to send to");
    assert_eq!(r.offset(), 27);
    assert_eq!(r.feed_ping(), None, "no pings without replicas");
    assert_eq!(r.offset(), 27);
    r.add_replica("r".repeat(40), "127.0.0.1".into(), 30002, NOW);
    let bytes = r.feed(&args("SET k v")).expect("a replica is connected");
    assert_eq!(&bytes[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(r.offset(), 54);
    assert_eq!(r.feed_ping().as_deref(), Some(protocol::PING));
    assert_eq!(r.offset(), 68);
    assert_eq!(r.core_offset(), 68);
}

#[test]
fn acks_bring_replicas_online_and_count_for_wait() {
    let mut r = Replication::new("a".repeat(40));
    r.feed(&args("SET k v"));
    let a = r.add_replica("r".repeat(40), "127.0.0.1".into(), 30002, NOW);
    let b = r.add_replica("s".repeat(40), "127.0.0.1".into(), 30003, NOW);
    assert_eq!(r.replica(a).map(|e| e.sync_offset), Some(27));
    r.feed(&args("SET k w"));
    assert_eq!(r.count_acks(0), 0, "nobody is online yet");
    assert_eq!(r.handle_ack(a, 10, NOW), None, "short of the snapshot");
    assert_eq!(r.handle_ack(a, 27, NOW), Some(27));
    assert_eq!(r.handle_ack(a, 27, NOW), None, "synced only once");
    assert_eq!(r.count_acks(27), 1);
    assert_eq!(r.count_acks(54), 0);
    assert_eq!(r.handle_ack(b, 54, NOW), Some(54));
    assert_eq!(r.count_acks(54), 1);
    assert_eq!(r.handle_ack(a, 54, NOW), None);
    assert_eq!(r.handle_ack(a, 30, NOW), None, "acks never go back");
    assert_eq!(r.count_acks(54), 2);
    assert!(r.remove_replica(b).is_some());
    assert_eq!(r.count_acks(54), 1);
    assert_eq!(r.handle_ack(b, 60, NOW), None, "unknown replica");
}

#[test]
fn replica_link_stages_and_offsets() {
    let mut r = Replication::new("a".repeat(40));
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
    assert!(r.link_connecting(generation));
    assert!(r.link_transfer(generation, NOW));
    assert_eq!(r.core_offset(), 0, "loading");
    assert!(r.full_sync_done(generation, &"m".repeat(40), 500, NOW + 10));
    assert_eq!(r.core_offset(), 500);
    assert_eq!(r.replid(), "m".repeat(40));
    assert!(r.applied(generation, 27));
    assert_eq!(r.core_offset(), 527);
    assert_eq!(r.offset(), 527);
    // A stale link's reports change nothing.
    assert!(!r.applied(generation + 1, 1000));
    assert_eq!(r.link_lost(generation + 1, NOW), None);
    assert_eq!(r.core_offset(), 527);
    // The link breaks: the cached offset stays.
    assert_eq!(r.link_lost(generation, NOW + 2000), Some(true));
    assert_eq!(
        r.link_lost(generation, NOW + 3000),
        Some(false),
        "already down"
    );
    assert_eq!(r.core_offset(), 527);
    assert_eq!(
        r.upstream().and_then(|u| u.down_since),
        Some(NOW + 2000),
        "down since the first loss"
    );
}

#[test]
fn promotion_continues_from_the_processed_offset_under_a_new_replid() {
    let mut r = Replication::new("a".repeat(40));
    let RoleChange::BecameReplica { generation } =
        r.set_master(Some((node(b'm'), "h".into(), 1)), || unreachable!(), NOW)
    else {
        panic!("expected BecameReplica");
    };
    r.link_transfer(generation, NOW);
    r.full_sync_done(generation, &"m".repeat(40), 1000, NOW);
    r.applied(generation, 14);
    let change = r.set_master(None, || "n".repeat(40), NOW);
    assert_eq!(
        change,
        RoleChange::BecameMaster {
            old: node(b'm'),
            was_up: true
        }
    );
    assert!(!r.is_replica());
    assert_eq!(r.offset(), 1014);
    assert_eq!(r.core_offset(), 1014);
    assert_eq!(r.replid(), "n".repeat(40));
    let info = r.info_text(NOW);
    assert!(
        info.contains(&format!("master_replid2:{}\r\n", "m".repeat(40))),
        "{info}"
    );
    assert!(info.contains("second_repl_offset:1015\r\n"), "{info}");
    // The stream continues from there.
    r.add_replica("r".repeat(40), "127.0.0.1".into(), 2, NOW);
    r.feed(&args("SET k v"));
    assert_eq!(r.offset(), 1041);
}

#[test]
fn changing_master_restarts_the_link_and_keeps_the_cached_offset() {
    let mut r = Replication::new("a".repeat(40));
    r.feed(&args("SET k v"));
    let m1 = Some((node(b'm'), "h".to_string(), 1));
    let RoleChange::BecameReplica { generation: g1 } = r.set_master(m1.clone(), String::new, NOW)
    else {
        panic!("expected BecameReplica");
    };
    assert_eq!(
        r.core_offset(),
        27,
        "a master turned replica keeps its offset"
    );
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
    assert!(!r.link_connecting(g1));
    assert_eq!(r.core_offset(), 27);
}

#[test]
fn info_replication_fields_follow_redis() {
    let mut r = Replication::new("a".repeat(40));
    r.feed(&args("SET k v"));
    let id = r.add_replica("r".repeat(40), "127.0.0.1".into(), 30002, NOW);
    r.handle_ack(id, 27, NOW);
    let info = r.info_text(NOW + 3500);
    let expected = format!(
        "role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=30002,state=online,offset=27,lag=3\r\nmaster_failover_state:no-failover\r\nmaster_replid:{a}\r\nmaster_replid2:{z}\r\nmaster_repl_offset:27\r\nsecond_repl_offset:-1\r\n",
        a = "a".repeat(40),
        z = "0".repeat(40)
    );
    assert!(info.starts_with(&expected), "{info}");

    let mut r = Replication::new("a".repeat(40));
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
    r.link_transfer(generation, NOW);
    assert!(r.info_text(NOW).contains("master_sync_in_progress:1\r\n"));
    r.full_sync_done(generation, &"m".repeat(40), 90, NOW);
    r.activity(generation, NOW + 2000);
    let info = r.info_text(NOW + 4100);
    assert!(
        info.contains("master_link_status:up\r\nmaster_last_io_seconds_ago:2\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:90\r\nslave_repl_offset:90\r\nslave_priority"),
        "{info}"
    );
    assert!(!info.contains("master_link_down_since_seconds"), "{info}");
    assert!(info.contains("connected_slaves:0\r\n"), "{info}");
    assert!(info.contains("master_repl_offset:90\r\n"), "{info}");
}

#[test]
fn role_reply_shapes() {
    let mut r = Replication::new("a".repeat(40));
    r.feed(&args("SET k v"));
    let id = r.add_replica("r".repeat(40), "127.0.0.1".into(), 30002, NOW);
    r.add_replica("s".repeat(40), "127.0.0.1".into(), 30003, NOW);
    r.handle_ack(id, 27, NOW);
    // Only online replicas are listed; port and offset are bulk strings.
    assert_eq!(
        crate::resp::encode_to_vec(&r.role_frame(), false),
        b"*3\r\n$6\r\nmaster\r\n:27\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$5\r\n30002\r\n$2\r\n27\r\n"
    );
    let mut r = Replication::new("a".repeat(40));
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
    r.link_transfer(generation, NOW);
    r.full_sync_done(generation, &"m".repeat(40), 90, NOW);
    assert_eq!(
        crate::resp::encode_to_vec(&r.role_frame(), false),
        b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:30001\r\n$9\r\nconnected\r\n:90\r\n"
    );
}
