//! Decodes cluster bus frames captured from real redis-server 7.0.15 processes
//! (`tests/fixtures/bus/`, written by `tests/wire_capture.rs`), checks the fields that must
//! hold, and checks that re-encoding each decoded message gives back the identical bytes.
//! Runs offline: the frames are compiled in.

use hearsay_node::slots::{key_slot, SlotSet};
use hearsay_node::wire::{
    check_prefix, decode, expected_len, ip_field_str, msg_flags, msg_type, node_flags, Body,
    DecodeError, GossipEntry, Message, NodeName, PingExt, HEADER_LEN, PROTO_VER,
};

const MEET_REPLY_PONG: &[u8] = include_bytes!("fixtures/bus/meet_reply_pong.bin");
const PONG_GOSSIP: &[u8] = include_bytes!("fixtures/bus/pong_gossip.bin");
const PING_HOSTNAME: &[u8] = include_bytes!("fixtures/bus/ping_hostname.bin");
const PING_PLAIN: &[u8] = include_bytes!("fixtures/bus/ping_plain.bin");
const PING_GOSSIP_FAILING: &[u8] = include_bytes!("fixtures/bus/ping_gossip_failing.bin");
const FAIL: &[u8] = include_bytes!("fixtures/bus/fail.bin");
const UPDATE: &[u8] = include_bytes!("fixtures/bus/update.bin");
const PUBLISH: &[u8] = include_bytes!("fixtures/bus/publish.bin");
const PUBLISHSHARD: &[u8] = include_bytes!("fixtures/bus/publishshard.bin");
const NODES: &str = include_str!("fixtures/bus/nodes.txt");

const ALL: &[(&str, &[u8])] = &[
    ("meet_reply_pong", MEET_REPLY_PONG),
    ("pong_gossip", PONG_GOSSIP),
    ("ping_hostname", PING_HOSTNAME),
    ("ping_plain", PING_PLAIN),
    ("ping_gossip_failing", PING_GOSSIP_FAILING),
    ("fail", FAIL),
    ("update", UPDATE),
    ("publish", PUBLISH),
    ("publishshard", PUBLISHSHARD),
];

const HOSTNAME_A: &str = "host-31001.example";
const MASTER_MYSELF: u16 = node_flags::MASTER | node_flags::MYSELF;

/// The facts `nodes.txt` records about the capture run.
struct Run {
    a: NodeName,
    b: NodeName,
    c: NodeName,
    fake: NodeName,
    a_config_epoch: u64,
    a_claimed_slot: u16,
    shard_channel: String,
}

fn run() -> Run {
    let field = |key: &str| -> Vec<&str> {
        NODES
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.first() == Some(&key))
            .unwrap_or_else(|| panic!("nodes.txt has no {key} line"))
    };
    let id = |key: &str| NodeName::parse(field(key)[2]).expect("40-char id in nodes.txt");
    Run {
        a: id("A"),
        b: id("B"),
        c: id("C"),
        fake: id("fake"),
        a_config_epoch: field("A-config-epoch")[1].parse().unwrap(),
        a_claimed_slot: field("A-claimed-slot")[1].parse().unwrap(),
        shard_channel: field("shard-channel")[1].to_string(),
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn decoded(raw: &[u8]) -> Message {
    decode(raw).unwrap_or_else(|e| panic!("fixture does not decode: {e}"))
}

fn ping_body(m: &Message) -> (&[GossipEntry], &[PingExt]) {
    match &m.body {
        Body::Ping { gossip, extensions } => (gossip, extensions),
        other => panic!("expected a ping-like body, got {other:?}"),
    }
}

/// The slots redis-cli --cluster create gives the first of three masters.
fn first_third() -> SlotSet {
    let mut s = SlotSet::new();
    (0..=5460).for_each(|x| s.insert(x));
    s
}

#[test]
fn every_fixture_has_a_sound_header_and_reencodes_identically() {
    let run = run();
    for (name, raw) in ALL {
        let prefix: &[u8; 8] = raw[..8].try_into().unwrap();
        assert_eq!(&raw[..4], b"RCmb", "{name}");
        assert_eq!(
            check_prefix(prefix),
            Ok(raw.len() as u32),
            "{name}: totlen = file size"
        );
        assert_eq!(expected_len(raw), Ok(raw.len() as u64), "{name}");
        let m = decoded(raw);
        let h = &m.header;
        assert_eq!(h.ver, PROTO_VER, "{name}");
        assert!(h.sender.is_valid(), "{name}: sender {:?}", h.sender);
        assert!(
            [run.a, run.b].contains(&h.sender),
            "{name}: sender is a live real node"
        );
        assert_eq!(
            h.flags & node_flags::MYSELF,
            node_flags::MYSELF,
            "{name}: MYSELF set"
        );
        assert_eq!(
            h.flags & node_flags::MASTER,
            node_flags::MASTER,
            "{name}: masters only"
        );
        assert!(h.slaveof.is_null(), "{name}: a master sends a null slaveof");
        assert_eq!(h.myip_str(), "", "{name}: no cluster-announce-ip");
        assert_eq!(h.cport, h.port + 10000, "{name}: bus port = port + 10000");
        assert_eq!(h.pport, 0, "{name}: no TLS");
        assert!(h.current_epoch >= h.config_epoch, "{name}");
        let mut again = Vec::new();
        hearsay_node::wire::encode(&m, &mut again);
        assert!(
            again == *raw,
            "{name}: re-encoding differs from redis's bytes"
        );
        assert_eq!(m.to_bytes(), *raw, "{name}");
    }
}

#[test]
fn pong_to_meet_carries_gossip_and_the_hostname() {
    let run = run();
    let m = decoded(MEET_REPLY_PONG);
    let h = &m.header;
    assert_eq!(h.msg_type, msg_type::PONG);
    assert_eq!(h.sender, run.a);
    assert_eq!((h.port, h.cport, h.flags), (31001, 41001, MASTER_MYSELF));
    assert_eq!(h.config_epoch, run.a_config_epoch);
    assert_eq!(h.myslots, first_third());
    assert!(h.myslots.contains(run.a_claimed_slot));
    assert_eq!(h.mflags[0], msg_flags::EXT_DATA);
    assert_eq!(h.extensions, 1);
    let (gossip, exts) = ping_body(&m);
    assert_eq!(gossip.len(), usize::from(h.count));
    assert!(!gossip.is_empty());
    for g in gossip {
        // A does not know us yet (we are in handshake), so it gossips only about B and C.
        assert!(
            [run.b, run.c].contains(&g.nodename),
            "gossip about {:?}",
            g.nodename
        );
        assert_eq!(ip_field_str(&g.ip), "127.0.0.1");
        assert_eq!(g.cport, g.port + 10000);
        assert_eq!(g.flags, node_flags::MASTER);
    }
    assert_eq!(exts, &[PingExt::Hostname(HOSTNAME_A.into())]);
    // Extension record: length 32 (8 + roundup8(18 + 1)), type 0, right after the gossip.
    let ext_at = HEADER_LEN + 104 * gossip.len();
    assert_eq!(be32(MEET_REPLY_PONG, ext_at), 32);
    assert_eq!(MEET_REPLY_PONG.len(), ext_at + 32);
}

#[test]
fn pong_to_our_ping_gossips_about_the_cluster() {
    let run = run();
    let m = decoded(PONG_GOSSIP);
    assert_eq!(
        (m.header.msg_type, m.header.sender),
        (msg_type::PONG, run.a)
    );
    let (gossip, exts) = ping_body(&m);
    assert!(gossip.len() >= 2);
    assert_eq!(PONG_GOSSIP.len(), HEADER_LEN + 104 * gossip.len() + 32);
    let mut names: Vec<NodeName> = gossip.iter().map(|g| g.nodename).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), gossip.len(), "no node twice in one message");
    for g in gossip {
        assert!(
            [run.b, run.c, run.fake].contains(&g.nodename),
            "never about A itself"
        );
        assert_eq!(g.flags, node_flags::MASTER);
        assert!(
            g.pong_received > 1_600_000_000,
            "pong_received is unix seconds"
        );
        let expect_port = if g.nodename == run.fake {
            31000
        } else {
            g.port
        };
        assert_eq!(
            (g.port, g.cport, g.pport),
            (expect_port, expect_port + 10000, 0)
        );
    }
    assert_eq!(exts, &[PingExt::Hostname(HOSTNAME_A.into())]);
}

#[test]
fn ping_from_a_has_the_hostname_extension() {
    let run = run();
    let m = decoded(PING_HOSTNAME);
    assert_eq!(m.header.msg_type, msg_type::PING);
    assert_eq!(m.header.sender, run.a);
    assert_eq!(
        m.header.mflags[0] & msg_flags::EXT_DATA,
        msg_flags::EXT_DATA
    );
    let (gossip, exts) = ping_body(&m);
    assert_eq!(PING_HOSTNAME.len(), HEADER_LEN + 104 * gossip.len() + 32);
    assert!(gossip
        .iter()
        .all(|g| g.nodename != run.a && g.nodename.is_valid()));
    assert_eq!(exts, &[PingExt::Hostname(HOSTNAME_A.into())]);
}

#[test]
fn ping_without_hostname_has_no_extensions() {
    let run = run();
    let m = decoded(PING_PLAIN);
    let h = &m.header;
    assert_eq!(
        (h.msg_type, h.sender, h.port, h.cport),
        (msg_type::PING, run.b, 31002, 41002)
    );
    assert_eq!(h.flags, MASTER_MYSELF);
    assert_eq!(h.extensions, 0);
    assert_eq!(h.mflags, [0, 0, 0], "no EXT_DATA without a hostname");
    let (gossip, exts) = ping_body(&m);
    assert!(exts.is_empty());
    assert!(gossip.len() >= 2);
    assert_eq!(PING_PLAIN.len(), HEADER_LEN + 104 * gossip.len());
    // B's slots: the middle third.
    assert_eq!(h.myslots.ranges(), vec![(5461, 10922)]);
    assert!(gossip
        .iter()
        .all(|g| [run.a, run.c, run.fake].contains(&g.nodename)));
}

#[test]
fn gossip_reports_the_stopped_node_as_failing() {
    let run = run();
    let m = decoded(PING_GOSSIP_FAILING);
    let (gossip, exts) = ping_body(&m);
    let about_c = gossip
        .iter()
        .find(|g| g.nodename == run.c)
        .expect("gossip about C");
    assert_ne!(
        about_c.flags & (node_flags::PFAIL | node_flags::FAIL),
        0,
        "C flagged failing"
    );
    assert_eq!(about_c.flags & node_flags::MASTER, node_flags::MASTER);
    assert!(about_c.ping_sent > 0, "a ping to C is pending");
    // The fake peer, known as a slotless master, appears with the address it announced.
    if let Some(f) = gossip.iter().find(|g| g.nodename == run.fake) {
        assert_eq!(
            (f.port, f.cport, f.flags),
            (31000, 41000, node_flags::MASTER)
        );
    }
    if m.header.sender == run.a {
        assert_eq!(exts, &[PingExt::Hostname(HOSTNAME_A.into())]);
    }
    if gossip.len() == 3 && !exts.is_empty() {
        // The reference's verified example shape: 2256 + 3 * 104 + 32.
        assert_eq!(PING_GOSSIP_FAILING.len(), 2600);
    }
}

#[test]
fn fail_names_the_stopped_node() {
    let run = run();
    let m = decoded(FAIL);
    assert_eq!(FAIL.len(), 2296);
    assert_eq!(m.header.msg_type, msg_type::FAIL);
    assert_eq!((m.header.count, m.header.extensions), (0, 0));
    assert_eq!(m.body, Body::Fail { nodename: run.c });
    assert_ne!(m.header.sender, run.c);
}

#[test]
fn update_carries_the_owner_epoch_and_slots() {
    let run = run();
    let m = decoded(UPDATE);
    assert_eq!(UPDATE.len(), 4352);
    assert_eq!(
        (m.header.msg_type, m.header.sender),
        (msg_type::UPDATE, run.a)
    );
    let Body::Update {
        config_epoch,
        nodename,
        slots,
    } = &m.body
    else {
        panic!("not an update: {:?}", m.body)
    };
    assert_eq!(*nodename, run.a);
    assert_eq!(*config_epoch, run.a_config_epoch);
    assert!(*config_epoch > 0, "higher than the 0 the fake claimed with");
    assert_eq!(*slots, first_third());
    assert!(slots.contains(run.a_claimed_slot));
}

#[test]
fn publish_and_publishshard_payloads() {
    let run = run();
    let m = decoded(PUBLISH);
    assert_eq!(m.header.msg_type, msg_type::PUBLISH);
    assert_eq!(
        m.body,
        Body::Publish {
            channel: b"hearsay-channel".to_vec(),
            message: b"hello bus".to_vec()
        }
    );
    assert_eq!(PUBLISH.len(), HEADER_LEN + 8 + 15 + 9);

    let m = decoded(PUBLISHSHARD);
    assert_eq!(
        (m.header.msg_type, m.header.sender),
        (msg_type::PUBLISHSHARD, run.a)
    );
    // A gained a replica (the fake), hence MIGRATE_TO: 273 = master + myself + migrate_to.
    assert_eq!(m.header.flags, MASTER_MYSELF | node_flags::MIGRATE_TO);
    let Body::Publish { channel, message } = &m.body else {
        panic!("not a publish")
    };
    assert_eq!(channel, run.shard_channel.as_bytes());
    assert_eq!(message, b"hello shard");
    assert!(m.header.myslots.contains(key_slot(channel)));
}

// Error paths on real frames.

fn with_u32(raw: &[u8], at: usize, v: u32) -> Vec<u8> {
    let mut b = raw.to_vec();
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    b
}

#[test]
fn corrupted_real_frames_give_redis_errors() {
    let ext_at = PING_HOSTNAME.len() - 32;
    let bad_pad = with_u32(PING_HOSTNAME, ext_at, 33);
    assert_eq!(
        decode(&bad_pad).unwrap_err().to_string(),
        "Received a ping packet without proper padding (33 bytes)"
    );
    let overflow = with_u32(PING_HOSTNAME, ext_at, 40);
    assert_eq!(
        decode(&overflow).unwrap_err().to_string(),
        format!(
            "Received invalid ping packet with extension data that exceeds total packet length ({})",
            PING_HOSTNAME.len()
        )
    );
    // FAIL cut to its header, with totlen fixed up: the reference's verified log line.
    let short_fail = with_u32(&FAIL[..2256], 4, 2256);
    assert_eq!(
        decode(&short_fail).unwrap_err().to_string(),
        "Received invalid fail packet of length 2256 but expected length 2296"
    );
    let mut v2 = UPDATE.to_vec();
    v2[8..10].copy_from_slice(&2u16.to_be_bytes());
    assert_eq!(decode(&v2), Err(DecodeError::Version(2)));
    assert_eq!(
        decode(&UPDATE[..4000]),
        Err(DecodeError::FrameLen {
            totlen: 4352,
            actual: 4000
        })
    );
    // Every truncation of a real frame is an error, never a panic.
    for raw in [PING_GOSSIP_FAILING, PUBLISHSHARD] {
        for cut in 0..raw.len() {
            assert!(decode(&raw[..cut]).is_err());
        }
    }
}
