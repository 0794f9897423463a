//! Unit and property tests for the bus codec. Offsets and sizes are written as literal
//! numbers from the reference (section 1), not through the codec's own constants, so a
//! wrong constant cannot hide itself.

use super::*;
use crate::wire::{ip_field, node_flags};
use proptest::prelude::*;

fn name(c: u8) -> NodeName {
    NodeName([c; NAMELEN])
}

fn header(msg_type: u16) -> Header {
    Header::new(
        msg_type,
        NodeName::parse("0123456789abcdef0123456789abcdef01234567").unwrap(),
    )
}

fn bytes(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode(msg, &mut out);
    out
}

fn gossip(c: u8) -> GossipEntry {
    GossipEntry {
        nodename: name(c),
        ping_sent: 0x0102_0304,
        pong_received: 0x0506_0708,
        ip: ip_field("127.0.0.1"),
        port: 7001,
        cport: 17001,
        flags: node_flags::MASTER,
        pport: 0,
    }
}

fn ping(gossip: Vec<GossipEntry>, extensions: Vec<PingExt>) -> Message {
    let mut header = header(msg_type::PING);
    header.count = gossip.len() as u16;
    header.extensions = extensions.len() as u16;
    if !extensions.is_empty() {
        header.mflags[0] |= msg_flags::EXT_DATA;
    }
    Message {
        header,
        body: Body::Ping { gossip, extensions },
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn roundtrip(msg: &Message) {
    let frame = bytes(msg);
    assert_eq!(frame.len() as u32, be32(&frame, 4), "totlen");
    assert_eq!(
        check_prefix(frame[..8].try_into().unwrap()),
        Ok(frame.len() as u32)
    );
    assert_eq!(expected_len(&frame), Ok(frame.len() as u64));
    assert_eq!(decode(&frame).as_ref(), Ok(msg));
}

// ---------------------------------------------------------------------------------------
// Offsets (reference 1.3 and 1.6)

#[test]
fn header_fields_land_on_reference_offsets() {
    let mut h = header(msg_type::PONG);
    h.ver = 1;
    h.port = 0x1122;
    h.current_epoch = 0x0102_0304_0506_0708;
    h.config_epoch = 0x1112_1314_1516_1718;
    h.offset = 0x2122_2324_2526_2728;
    h.myslots.insert(0);
    h.myslots.insert(16383);
    h.slaveof = name(b's');
    h.myip = ip_field("10.0.0.1");
    h.pport = 0x3132;
    h.cport = 0x4142;
    h.flags = 0x5152;
    h.state = 0x61;
    h.mflags = [0x01, 0x72, 0x73];
    let msg = Message {
        header: h,
        body: Body::Ping {
            gossip: vec![],
            extensions: vec![],
        },
    };
    let b = bytes(&msg);
    assert_eq!(b.len(), 2256);
    assert_eq!(&b[0..4], b"RCmb");
    assert_eq!(be32(&b, 4), 2256);
    assert_eq!(be16(&b, 8), 1);
    assert_eq!(be16(&b, 10), 0x1122);
    assert_eq!(be16(&b, 12), 1);
    assert_eq!(be16(&b, 14), 0);
    assert_eq!(be64(&b, 16), 0x0102_0304_0506_0708);
    assert_eq!(be64(&b, 24), 0x1112_1314_1516_1718);
    assert_eq!(be64(&b, 32), 0x2122_2324_2526_2728);
    assert_eq!(&b[40..80], b"0123456789abcdef0123456789abcdef01234567");
    assert_eq!(b[80], 0x01, "slot 0 is bit 0 of myslots byte 0");
    assert_eq!(b[80 + 2047], 0x80, "slot 16383 is bit 7 of the last byte");
    assert!(b[81..80 + 2047].iter().all(|&x| x == 0));
    assert_eq!(&b[2128..2168], &[b's'; 40]);
    assert_eq!(&b[2168..2176], b"10.0.0.1");
    assert!(b[2176..2214].iter().all(|&x| x == 0), "myip NUL padded");
    assert_eq!(be16(&b, 2214), 0, "extensions");
    assert!(
        b[2216..2246].iter().all(|&x| x == 0),
        "notused1 zero filled"
    );
    assert_eq!(be16(&b, 2246), 0x3132);
    assert_eq!(be16(&b, 2248), 0x4142);
    assert_eq!(be16(&b, 2250), 0x5152);
    assert_eq!(b[2252], 0x61);
    assert_eq!(
        &b[2253..2256],
        &[0x01, 0x72, 0x73],
        "no EXT_DATA without extensions"
    );
    roundtrip(&msg);
}

#[test]
fn gossip_entry_fields_land_on_reference_offsets() {
    let mut g = gossip(b'g');
    g.flags = 0x0102;
    g.pport = 0x0304;
    let b = bytes(&ping(vec![gossip(b'a'), g], vec![]));
    assert_eq!(b.len(), 2256 + 2 * 104);
    assert_eq!(be16(&b, 14), 2, "count");
    let e = 2256 + 104;
    assert_eq!(&b[e..e + 40], &[b'g'; 40]);
    assert_eq!(be32(&b, e + 40), 0x0102_0304);
    assert_eq!(be32(&b, e + 44), 0x0506_0708);
    assert_eq!(&b[e + 48..e + 57], b"127.0.0.1");
    assert!(b[e + 57..e + 94].iter().all(|&x| x == 0));
    assert_eq!(be16(&b, e + 94), 7001);
    assert_eq!(be16(&b, e + 96), 17001);
    assert_eq!(be16(&b, e + 98), 0x0102);
    assert_eq!(be16(&b, e + 100), 0x0304);
    assert_eq!(be16(&b, e + 102), 0, "notused1");
}

#[test]
fn payload_offsets_of_fixed_types() {
    let mut slots = SlotSet::new();
    slots.insert(9);
    let up = Message {
        header: header(msg_type::UPDATE),
        body: Body::Update {
            config_epoch: 0xAABB,
            nodename: name(b'u'),
            slots,
        },
    };
    let b = bytes(&up);
    assert_eq!(b.len(), 4352);
    assert_eq!(be64(&b, 2256), 0xAABB);
    assert_eq!(&b[2264..2304], &[b'u'; 40]);
    assert_eq!(
        b[2304 + 1],
        0b10,
        "slot 9 in the UPDATE bitmap at payload offset 48"
    );

    let fail = Message {
        header: header(msg_type::FAIL),
        body: Body::Fail {
            nodename: name(b'f'),
        },
    };
    let b = bytes(&fail);
    assert_eq!(b.len(), 2296);
    assert_eq!(&b[2256..2296], &[b'f'; 40]);

    let publish = Message {
        header: header(msg_type::PUBLISH),
        body: Body::Publish {
            channel: b"chan".to_vec(),
            message: b"hello".to_vec(),
        },
    };
    let b = bytes(&publish);
    assert_eq!(b.len(), 2256 + 8 + 4 + 5);
    assert_eq!(be32(&b, 2256), 4);
    assert_eq!(be32(&b, 2260), 5);
    assert_eq!(&b[2264..], b"chanhello");

    let module = Message {
        header: header(msg_type::MODULE),
        body: Body::Module {
            module_id: *b"\x01\x02\x03\x04\x05\x06\x07\x08",
            module_type: 7,
            payload: b"xyz".to_vec(),
        },
    };
    let b = bytes(&module);
    assert_eq!(b.len(), 2256 + 13 + 3);
    assert_eq!(
        &b[2256..2264],
        b"\x01\x02\x03\x04\x05\x06\x07\x08",
        "module_id kept raw"
    );
    assert_eq!(be32(&b, 2264), 3);
    assert_eq!(b[2268], 7);
    assert_eq!(&b[2269..], b"xyz");
}

// ---------------------------------------------------------------------------------------
// Round trips

#[test]
fn header_counts_of_non_gossip_types_survive_a_round_trip() {
    // Found by a stricter fuzz round trip: MFSTART with count 65535 decoded
    // the count but encoded 0.
    for t in [msg_type::MFSTART, msg_type::FAIL, msg_type::UPDATE] {
        let mut b = raw_frame(
            t,
            if t == msg_type::MFSTART {
                2256
            } else {
                expected_total(t)
            },
        );
        put16(&mut b, 14, 65535);
        put16(&mut b, 2214, 7);
        b[2253] = 0x04;
        let m = decode(&b).unwrap_or_else(|e| panic!("type {t}: {e:?}"));
        assert_eq!(m.header.count, 65535);
        assert_eq!(decode(&bytes(&m)), Ok(m));
    }
}

fn expected_total(t: u16) -> usize {
    match t {
        msg_type::FAIL => 2256 + 40,
        msg_type::UPDATE => UPDATE_LEN,
        _ => 2256,
    }
}

#[test]
fn every_type_round_trips() {
    let mut h = header(msg_type::PING);
    h.current_epoch = 7;
    h.config_epoch = 3;
    h.flags = node_flags::MASTER | node_flags::MYSELF;
    h.port = 7000;
    h.cport = 17000;
    let with = |t: u16| Header {
        msg_type: t,
        ..h.clone()
    };
    let mut slots = SlotSet::new();
    slots.insert(100);
    let mut msgs = vec![];
    for t in [msg_type::PING, msg_type::PONG, msg_type::MEET] {
        let mut m = ping(
            vec![gossip(b'a'), gossip(b'b')],
            vec![PingExt::Hostname("node-a".into())],
        );
        m.header = Header {
            count: 2,
            extensions: 1,
            mflags: [msg_flags::EXT_DATA, 0, 0],
            ..with(t)
        };
        msgs.push(m);
        msgs.push(Message {
            header: with(t),
            body: Body::Ping {
                gossip: vec![],
                extensions: vec![],
            },
        });
    }
    msgs.push(Message {
        header: with(msg_type::FAIL),
        body: Body::Fail {
            nodename: name(b'x'),
        },
    });
    for t in [msg_type::PUBLISH, msg_type::PUBLISHSHARD] {
        msgs.push(Message {
            header: with(t),
            body: Body::Publish {
                channel: b"c".to_vec(),
                message: vec![0, 1, 2],
            },
        });
    }
    for t in [
        msg_type::FAILOVER_AUTH_REQUEST,
        msg_type::FAILOVER_AUTH_ACK,
        msg_type::MFSTART,
    ] {
        let mut hh = with(t);
        hh.mflags[0] = msg_flags::FORCEACK | msg_flags::PAUSED;
        msgs.push(Message {
            header: hh,
            body: Body::Empty,
        });
    }
    msgs.push(Message {
        header: with(msg_type::UPDATE),
        body: Body::Update {
            config_epoch: 9,
            nodename: name(b'y'),
            slots,
        },
    });
    msgs.push(Message {
        header: with(msg_type::MODULE),
        body: Body::Module {
            module_id: [9; 8],
            module_type: 255,
            payload: vec![],
        },
    });
    msgs.push(Message {
        header: Header {
            count: 5,
            extensions: 6,
            mflags: [0xff, 1, 2],
            ..with(42)
        },
        body: Body::Unknown {
            payload: b"opaque".to_vec(),
        },
    });
    for m in &msgs {
        roundtrip(m);
    }
}

#[test]
fn encode_derives_count_extensions_and_ext_flag() {
    // What the body determines is derived from it: the gossip count, and
    // the extension count (none under EXT_DATA without records).
    let mut m = ping(vec![gossip(b'a')], vec![]);
    m.header.count = 9;
    m.header.extensions = 4;
    m.header.mflags[0] = msg_flags::EXT_DATA | msg_flags::PAUSED;
    let b = bytes(&m);
    assert_eq!(be16(&b, 14), 1);
    assert_eq!(be16(&b, 2214), 0);
    assert_eq!(b[2253], msg_flags::EXT_DATA | msg_flags::PAUSED);
    // Without EXT_DATA the extension count is not read by redis: kept.
    m.header.mflags[0] = msg_flags::PAUSED;
    let b = bytes(&m);
    assert_eq!((be16(&b, 2214), b[2253]), (4, msg_flags::PAUSED));

    let mut m = ping(
        vec![],
        vec![PingExt::Unknown {
            ext_type: 9,
            body: vec![1, 2, 3],
        }],
    );
    m.header.mflags[0] = 0;
    m.header.extensions = 0;
    let b = bytes(&m);
    assert_eq!(be16(&b, 2214), 1);
    assert_eq!(b[2253], msg_flags::EXT_DATA);
    assert_eq!(b.len(), 2256 + 16, "unknown extension body padded to 8");
    let Body::Ping { extensions, .. } = decode(&b).unwrap().body else {
        panic!("not a ping")
    };
    assert_eq!(
        extensions,
        vec![PingExt::Unknown {
            ext_type: 9,
            body: vec![1, 2, 3, 0, 0, 0, 0, 0]
        }]
    );

    // Other types carry count, extensions and flags as the header has them,
    // so a decoded frame encodes back to the same message.
    let mut f = Message {
        header: header(msg_type::FAIL),
        body: Body::Fail {
            nodename: name(b'x'),
        },
    };
    f.header.count = 3;
    f.header.extensions = 2;
    f.header.mflags[0] = msg_flags::EXT_DATA;
    let b = bytes(&f);
    assert_eq!(
        (be16(&b, 14), be16(&b, 2214), b[2253]),
        (3, 2, msg_flags::EXT_DATA)
    );
    assert_eq!(decode(&b), Ok(f));
}

#[test]
fn encode_appends_to_existing_buffer() {
    let m = Message {
        header: header(msg_type::MFSTART),
        body: Body::Empty,
    };
    let mut out = b"xyz".to_vec();
    encode(&m, &mut out);
    encode(&m, &mut out);
    assert_eq!(out.len(), 3 + 2 * 2256);
    assert_eq!(&out[3..7], b"RCmb");
    assert_eq!(decode(&out[3 + 2256..]), Ok(m));
}

/// Reference 1.7 example [verified]: "host-7001.example" (17 chars) gives an extension of
/// length 32 with a 24-byte body, and with 3 gossip entries a frame of 2600 bytes.
#[test]
fn hostname_extension_padding_matches_reference_example() {
    let host = "host-7001.example";
    assert_eq!(host.len(), 17);
    let m = ping(
        vec![gossip(b'a'), gossip(b'b'), gossip(b'c')],
        vec![PingExt::Hostname(host.into())],
    );
    let b = bytes(&m);
    assert_eq!(b.len(), 2600);
    assert_eq!(be32(&b, 4), 2600);
    assert_eq!(b[2253] & 0x04, 0x04, "EXT_DATA");
    assert_eq!(be16(&b, 2214), 1);
    let ext = 2256 + 3 * 104;
    assert_eq!(be32(&b, ext), 32, "ext length");
    assert_eq!(be16(&b, ext + 4), 0, "type HOSTNAME");
    assert_eq!(be16(&b, ext + 6), 0, "unused");
    assert_eq!(&b[ext + 8..ext + 25], host.as_bytes());
    assert!(
        b[ext + 25..].iter().all(|&x| x == 0),
        "NUL then zero padding"
    );
    assert_eq!(ext_len(&PingExt::Hostname(host.into())), 32);
    roundtrip(&m);
}

#[test]
fn hostname_lengths_pad_to_eight_with_room_for_the_nul() {
    for (len, ext) in [
        (0, 16),
        (1, 16),
        (7, 16),
        (8, 24),
        (15, 24),
        (16, 32),
        (255, 264),
    ] {
        let h = PingExt::Hostname("a".repeat(len));
        assert_eq!(ext_len(&h), ext, "hostname of {len} chars");
        roundtrip(&ping(vec![], vec![h]));
    }
}

#[test]
fn several_extensions_round_trip_in_order() {
    let exts = vec![
        PingExt::Unknown {
            ext_type: 3,
            body: vec![7; 16],
        },
        PingExt::Hostname("h.example".into()),
        PingExt::Unknown {
            ext_type: 1,
            body: vec![],
        },
    ];
    roundtrip(&ping(vec![gossip(b'z')], exts));
}

// ---------------------------------------------------------------------------------------
// check_prefix

#[test]
fn prefix_checks_signature_and_minimum_length() {
    let ok = *b"RCmb\x00\x00\x08\xd0"; // 2256
    assert_eq!(check_prefix(&ok), Ok(2256));
    assert_eq!(
        check_prefix(b"RCmb\xff\xff\xff\xff"),
        Ok(u32::MAX),
        "no upper bound, like redis"
    );
    assert_eq!(
        check_prefix(b"RCmb\x00\x00\x08\xcf"),
        Err(PrefixError::TooShort(2255))
    );
    assert_eq!(
        check_prefix(b"RCmb\x00\x00\x00\x64"),
        Err(PrefixError::TooShort(100))
    );
    assert_eq!(
        check_prefix(b"RCmc\x00\x00\x08\xd0"),
        Err(PrefixError::BadSignature)
    );
    assert_eq!(
        check_prefix(b"rcmb\x00\x00\x08\xd0"),
        Err(PrefixError::BadSignature)
    );
    assert_eq!(MAX_FRAME_LEN, 64 << 20);
}

// ---------------------------------------------------------------------------------------
// decode error paths

#[test]
fn decode_rejects_short_or_mismatched_buffers() {
    assert_eq!(decode(b""), Err(DecodeError::Truncated { field: "prefix" }));
    assert_eq!(
        decode(b"RCmb\x00\x00"),
        Err(DecodeError::Truncated { field: "prefix" })
    );
    assert_eq!(
        decode(b"XXXX\x00\x00\x08\xd0"),
        Err(DecodeError::Prefix(PrefixError::BadSignature))
    );
    assert_eq!(
        decode(b"RCmb\x00\x00\x00\x10"),
        Err(DecodeError::Prefix(PrefixError::TooShort(16)))
    );
    let frame = bytes(&Message {
        header: header(msg_type::MFSTART),
        body: Body::Empty,
    });
    assert_eq!(
        decode(&frame[..2000]),
        Err(DecodeError::FrameLen {
            totlen: 2256,
            actual: 2000
        })
    );
    let mut longer = frame.clone();
    longer.push(0);
    assert_eq!(
        decode(&longer),
        Err(DecodeError::FrameLen {
            totlen: 2256,
            actual: 2257
        })
    );
}

#[test]
fn decode_rejects_other_versions() {
    let mut m = Message {
        header: header(msg_type::PING),
        body: Body::Ping {
            gossip: vec![],
            extensions: vec![],
        },
    };
    for v in [0u16, 2, 0xffff] {
        m.header.ver = v;
        assert_eq!(decode(&bytes(&m)), Err(DecodeError::Version(v)));
    }
    // Version is checked before the length, as in redis.
    let mut frame = bytes(&Message {
        header: header(msg_type::FAIL),
        body: Body::Fail {
            nodename: name(b'x'),
        },
    });
    put16(&mut frame, 8, 2);
    frame.truncate(2256);
    put32(&mut frame, 4, 2256);
    assert_eq!(decode(&frame), Err(DecodeError::Version(2)));
}

/// A frame of `len` bytes: header of type `t`, zero payload.
fn raw_frame(t: u16, len: usize) -> Vec<u8> {
    let mut b = bytes(&Message {
        header: header(msg_type::MFSTART),
        body: Body::Empty,
    });
    b.resize(len, 0);
    put32(&mut b, 4, len as u32);
    put16(&mut b, 12, t);
    b
}

#[test]
fn decode_length_mismatches_use_redis_wording() {
    // The reference's verified example: FAIL without payload.
    let err = decode(&raw_frame(msg_type::FAIL, 2256)).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Length {
            type_name: "fail",
            got: 2256,
            expected: 2296
        }
    );
    assert_eq!(
        err.to_string(),
        "Received invalid fail packet of length 2256 but expected length 2296"
    );

    let cases: &[(u16, usize, u64, &str)] = &[
        (msg_type::UPDATE, 2256, 4352, "update"),
        (msg_type::UPDATE, 4353, 4352, "update"),
        (msg_type::FAILOVER_AUTH_REQUEST, 2264, 2256, "auth-req"),
        (msg_type::FAILOVER_AUTH_ACK, 2257, 2256, "auth-ack"),
        (msg_type::MFSTART, 4352, 2256, "mfstart"),
        (msg_type::PING, 2256 + 8, 2256, "ping"),
        (msg_type::PONG, 2256 + 103, 2256, "pong"),
        (msg_type::MEET, 2300, 2256, "meet"),
        // Too short to hold the length fields: expected is the fixed part.
        (msg_type::PUBLISH, 2260, 2264, "publish"),
        (msg_type::PUBLISHSHARD, 2256, 2264, "publishshard"),
        (msg_type::MODULE, 2268, 2269, "module"),
        // Zero length fields: the payload must be exactly the fixed part.
        (msg_type::PUBLISH, 2270, 2264, "publish"),
        (msg_type::MODULE, 2270, 2269, "module"),
    ];
    for &(t, len, expected, type_name) in cases {
        assert_eq!(
            decode(&raw_frame(t, len)),
            Err(DecodeError::Length {
                type_name,
                got: len as u64,
                expected
            }),
            "type {t} len {len}"
        );
    }
}

#[test]
fn ping_count_that_overruns_the_frame_is_a_length_error() {
    let mut b = bytes(&ping(vec![gossip(b'a')], vec![]));
    put16(&mut b, 14, 0xffff); // lying count
    let expected = 2256 + 104 * 0xffff;
    assert_eq!(
        decode(&b),
        Err(DecodeError::Length {
            type_name: "ping",
            got: 2360,
            expected
        })
    );
    // Same with EXT_DATA set: the walk stops, the length check reports it.
    b[2253] |= 0x04;
    put16(&mut b, 2214, 3);
    assert_eq!(
        decode(&b),
        Err(DecodeError::Length {
            type_name: "ping",
            got: 2360,
            expected
        })
    );
}

#[test]
fn publish_lengths_that_would_wrap_in_32_bits_are_rejected() {
    let mut b = raw_frame(msg_type::PUBLISH, 2256 + 16);
    put32(&mut b, 2256, u32::MAX);
    put32(&mut b, 2260, 9); // u32 sum wraps to 8: redis would accept this and overrun
    let expected = 2264 + u64::from(u32::MAX) + 9;
    assert_eq!(
        decode(&b),
        Err(DecodeError::Length {
            type_name: "publish",
            got: 2272,
            expected
        })
    );
    let mut m = raw_frame(msg_type::MODULE, 2269);
    put32(&mut m, 2264, u32::MAX);
    assert_eq!(
        decode(&m),
        Err(DecodeError::Length {
            type_name: "module",
            got: 2269,
            expected: 2269 + u64::from(u32::MAX)
        })
    );
}

/// A ping frame with EXT_DATA and the given raw extension bytes after `count` zero gossip.
fn ping_with_raw_ext(t: u16, extensions: u16, ext: &[u8]) -> Vec<u8> {
    let mut b = raw_frame(t, 2256);
    b.extend_from_slice(ext);
    let len = b.len() as u32;
    put32(&mut b, 4, len);
    put16(&mut b, 2214, extensions);
    b[2253] |= 0x04;
    b
}

fn ext_record(length: u32, ext_type: u16, body: &[u8]) -> Vec<u8> {
    let mut r = length.to_be_bytes().to_vec();
    r.extend_from_slice(&ext_type.to_be_bytes());
    r.extend_from_slice(&[0, 0]);
    r.extend_from_slice(body);
    r
}

#[test]
fn extension_padding_error() {
    let b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(12, 0, b"abc\0"));
    let err = decode(&b).unwrap_err();
    assert_eq!(
        err,
        DecodeError::ExtPadding {
            type_name: "ping",
            len: 12
        }
    );
    assert_eq!(
        err.to_string(),
        "Received a ping packet without proper padding (12 bytes)"
    );
    assert_eq!(expected_len(&b), Err(err));
}

#[test]
fn extension_overflow_error() {
    // Record says 32 bytes, only 16 present.
    let b = ping_with_raw_ext(msg_type::PONG, 1, &ext_record(32, 0, b"abcdefg\0"));
    let err = decode(&b).unwrap_err();
    assert_eq!(
        err,
        DecodeError::ExtOverflow {
            type_name: "pong",
            totlen: 2272
        }
    );
    assert_eq!(
        err.to_string(),
        "Received invalid pong packet with extension data that exceeds total packet length (2272)"
    );
    // More records announced than present: the next header lies outside the frame.
    let b = ping_with_raw_ext(msg_type::MEET, 2, &ext_record(16, 0, b"abcdefg\0"));
    assert_eq!(
        decode(&b),
        Err(DecodeError::ExtOverflow {
            type_name: "meet",
            totlen: 2272
        })
    );
    // EXT_DATA with one extension and no bytes at all.
    let b = ping_with_raw_ext(msg_type::PING, 1, &[]);
    assert_eq!(
        decode(&b),
        Err(DecodeError::ExtOverflow {
            type_name: "ping",
            totlen: 2256
        })
    );
}

#[test]
fn extension_bytes_without_ext_data_fail_the_length_check() {
    let mut b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(16, 0, b"abcdefg\0"));
    b[2253] &= !0x04;
    assert_eq!(
        decode(&b),
        Err(DecodeError::Length {
            type_name: "ping",
            got: 2272,
            expected: 2256
        })
    );
}

#[test]
fn extensions_are_ignored_without_ext_data() {
    // 7.0 senders without a hostname: extensions count is not looked at without EXT_DATA.
    let mut b = raw_frame(msg_type::PING, 2256);
    put16(&mut b, 2214, 5);
    let m = decode(&b).unwrap();
    assert_eq!(m.header.extensions, 5);
    assert_eq!(
        m.body,
        Body::Ping {
            gossip: vec![],
            extensions: vec![]
        }
    );
}

#[test]
fn zero_length_record_fails_the_length_check() {
    // redis accepts length 0 in the walk but never counts the record's bytes.
    let b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(0, 0, b"abcdefg\0"));
    assert_eq!(
        decode(&b),
        Err(DecodeError::Length {
            type_name: "ping",
            got: 2272,
            expected: 2256
        })
    );
}

#[test]
fn sixteen_bit_length_quirk_is_mirrored() {
    // A 65552-byte record: redis checks and counts 65552 as u16 = 16, steps by 65552.
    let body = vec![b'a'; 65552 - 8];
    let b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(65552, 7, &body));
    assert_eq!(expected_len(&b), Ok(2256 + 16));
    assert_eq!(
        decode(&b),
        Err(DecodeError::Length {
            type_name: "ping",
            got: 2256 + 65552,
            expected: 2256 + 16
        })
    );
    // Truncation to an unpadded value: 65541 as u16 = 5.
    let b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(65541, 7, &[0; 8]));
    assert_eq!(
        decode(&b),
        Err(DecodeError::ExtPadding {
            type_name: "ping",
            len: 5
        })
    );
    // A record whose truncated length fits but whose real length leaves the frame.
    let mut ext = ext_record(65544, 7, &[]); // u16 = 8: counts as an empty record
    ext.extend_from_slice(&[0; 8]);
    let b = ping_with_raw_ext(msg_type::PING, 2, &ext);
    assert_eq!(
        decode(&b),
        Err(DecodeError::ExtOverflow {
            type_name: "ping",
            totlen: 2272
        })
    );
}

#[test]
fn last_record_longer_than_the_frame_is_caught_after_the_length_check() {
    // 65560 as u16 = 24: redis's checks pass (24 bytes are there) and it would then read
    // the record's full 65560 bytes; we stop at the frame's end.
    let b = ping_with_raw_ext(
        msg_type::PING,
        1,
        &ext_record(65560, 0, b"host\0\0\0\0\0\0\0\0\0\0\0\0"),
    );
    assert_eq!(expected_len(&b), Ok(2280));
    assert_eq!(
        decode(&b),
        Err(DecodeError::ExtOverflow {
            type_name: "ping",
            totlen: 2280
        })
    );
}

#[test]
fn hostname_must_be_nul_terminated_utf8() {
    let b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(16, 0, b"abcdefgh"));
    let err = decode(&b).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Hostname {
            type_name: "ping",
            reason: "missing NUL terminator"
        }
    );
    let b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(16, 0, b"ab\xff\xfe\0\0\0\0"));
    assert_eq!(
        decode(&b),
        Err(DecodeError::Hostname {
            type_name: "ping",
            reason: "not valid UTF-8"
        })
    );
    // Text stops at the first NUL; what follows (normally zero padding) is ignored.
    let b = ping_with_raw_ext(msg_type::PING, 1, &ext_record(16, 0, b"ab\0junk!"));
    let Body::Ping { extensions, .. } = decode(&b).unwrap().body else {
        panic!("not a ping")
    };
    assert_eq!(extensions, vec![PingExt::Hostname("ab".into())]);
}

#[test]
fn unknown_types_take_any_length_and_keep_the_payload() {
    let mut b = raw_frame(42, 2256 + 5);
    b[2256..].copy_from_slice(b"hello");
    assert_eq!(expected_len(&b), Ok(2261));
    let m = decode(&b).unwrap();
    assert_eq!(m.header.msg_type, 42);
    assert_eq!(
        m.body,
        Body::Unknown {
            payload: b"hello".to_vec()
        }
    );
    assert_eq!(bytes(&m), b);
    assert_eq!(
        decode(&raw_frame(11, 2256)).unwrap().body,
        Body::Unknown { payload: vec![] }
    );
}

#[test]
fn expected_len_needs_a_header() {
    assert_eq!(
        expected_len(b"RCmb"),
        Err(DecodeError::Truncated { field: "totlen" })
    );
    assert_eq!(
        expected_len(b"RCmb\0\0\x08\xd0\0\x01"),
        Err(DecodeError::Truncated { field: "type" })
    );
    let b = raw_frame(msg_type::PING, 2256);
    assert_eq!(
        expected_len(&b[..100]),
        Err(DecodeError::Truncated { field: "mflags" })
    );
}

// ---------------------------------------------------------------------------------------
// Properties

fn arb_name() -> impl Strategy<Value = NodeName> {
    prop_oneof![
        "[a-z0-9]{40}".prop_map(|s| NodeName::parse(&s).unwrap()),
        prop::array::uniform32(any::<u8>()).prop_flat_map(|a| {
            prop::array::uniform8(any::<u8>()).prop_map(move |b| {
                let mut n = [0u8; NAMELEN];
                n[..32].copy_from_slice(&a);
                n[32..].copy_from_slice(&b);
                NodeName(n)
            })
        }),
        Just(NodeName::NULL),
    ]
}

fn arb_slots() -> impl Strategy<Value = SlotSet> {
    prop::collection::vec(0u16..16384, 0..24).prop_map(|v| {
        let mut s = SlotSet::new();
        v.into_iter().for_each(|x| s.insert(x));
        s
    })
}

fn arb_ip() -> impl Strategy<Value = [u8; IPLEN]> {
    prop_oneof![
        "[0-9.:a-f]{0,45}".prop_map(|s| ip_field(&s)),
        prop::collection::vec(any::<u8>(), IPLEN).prop_map(|v| v.try_into().unwrap()),
    ]
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        (any::<u16>(), any::<u64>(), any::<u64>(), any::<u64>()),
        (arb_name(), arb_slots(), arb_name(), arb_ip()),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<[u8; 3]>(),
        ),
        (any::<u16>(), any::<u16>()),
    )
        .prop_map(
            |(
                (port, ce, cfg, offset),
                (sender, myslots, slaveof, myip),
                (pport, cport, flags, state, mflags),
                (count, extensions),
            )| Header {
                ver: PROTO_VER,
                port,
                msg_type: 0,
                count,
                current_epoch: ce,
                config_epoch: cfg,
                offset,
                sender,
                myslots,
                slaveof,
                myip,
                extensions,
                pport,
                cport,
                flags,
                state,
                mflags,
            },
        )
}

fn arb_gossip() -> impl Strategy<Value = GossipEntry> {
    (
        arb_name(),
        any::<u32>(),
        any::<u32>(),
        arb_ip(),
        any::<[u16; 4]>(),
    )
        .prop_map(
            |(nodename, ping_sent, pong_received, ip, [port, cport, flags, pport])| GossipEntry {
                nodename,
                ping_sent,
                pong_received,
                ip,
                port,
                cport,
                flags,
                pport,
            },
        )
}

fn arb_ext() -> impl Strategy<Value = PingExt> {
    prop_oneof![
        "[^\\x00]{0,40}".prop_map(PingExt::Hostname),
        (1u16..u16::MAX, prop::collection::vec(any::<u8>(), 0..5)).prop_map(|(ext_type, words)| {
            PingExt::Unknown {
                ext_type,
                body: words.repeat(8),
            }
        }),
    ]
}

fn arb_body() -> impl Strategy<Value = (u16, Body)> {
    prop_oneof![
        (
            0u16..3,
            prop::collection::vec(arb_gossip(), 0..6),
            prop::collection::vec(arb_ext(), 0..4)
        )
            .prop_map(|(t, gossip, extensions)| (t, Body::Ping { gossip, extensions })),
        arb_name().prop_map(|nodename| (msg_type::FAIL, Body::Fail { nodename })),
        (
            prop::sample::select(vec![msg_type::PUBLISH, msg_type::PUBLISHSHARD]),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(t, channel, message)| (t, Body::Publish { channel, message })),
        prop::sample::select(vec![
            msg_type::FAILOVER_AUTH_REQUEST,
            msg_type::FAILOVER_AUTH_ACK,
            msg_type::MFSTART
        ])
        .prop_map(|t| (t, Body::Empty)),
        (any::<u64>(), arb_name(), arb_slots()).prop_map(|(config_epoch, nodename, slots)| (
            msg_type::UPDATE,
            Body::Update {
                config_epoch,
                nodename,
                slots
            }
        )),
        (
            any::<[u8; 8]>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(module_id, module_type, payload)| (
                msg_type::MODULE,
                Body::Module {
                    module_id,
                    module_type,
                    payload
                }
            )),
        (11u16.., prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(t, payload)| (t, Body::Unknown { payload })),
    ]
}

/// Arbitrary messages in the normal form `encode` produces (derived header fields agree
/// with the body), so `decode(encode(m)) == m` must hold exactly.
fn arb_message() -> impl Strategy<Value = Message> {
    (arb_header(), arb_body()).prop_map(|(mut header, (t, body))| {
        header.msg_type = t;
        // Other types keep whatever count, extensions and flags they carry.
        if let Body::Ping { gossip, extensions } = &body {
            header.count = gossip.len() as u16;
            if !extensions.is_empty() {
                header.extensions = extensions.len() as u16;
                header.mflags[0] |= msg_flags::EXT_DATA;
            } else if header.mflags[0] & msg_flags::EXT_DATA != 0 {
                header.extensions = 0;
            }
        }
        Message { header, body }
    })
}

/// Random bytes behind a valid prefix and version, so decoding gets past the first checks.
fn arb_plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0u16..13,
        prop::collection::vec(any::<u8>(), 0..600),
        any::<[u8; 8]>(),
        any::<bool>(),
    )
        .prop_map(|(t, tail, knobs, small_counts)| {
            let mut b = vec![0u8; 2256];
            b.extend_from_slice(&tail);
            b[..4].copy_from_slice(b"RCmb");
            let len = b.len() as u32;
            put32(&mut b, 4, len);
            put16(&mut b, 8, 1);
            put16(&mut b, 12, t);
            // Small counts reach the gossip/extension parsing more often than random u16s.
            let (count, exts) = if small_counts {
                (u16::from(knobs[0] % 6), u16::from(knobs[1] % 4))
            } else {
                (
                    u16::from_be_bytes([knobs[0], knobs[1]]),
                    u16::from_be_bytes([knobs[2], knobs[3]]),
                )
            };
            put16(&mut b, 14, count);
            put16(&mut b, 2214, exts);
            b[2253] = knobs[4];
            // Seed the payload start with small lengths (publish/module/extension fields).
            if b.len() >= 2272 {
                put32(&mut b, 2256, u32::from(knobs[5]));
                put32(&mut b, 2260, u32::from(knobs[6]));
                put32(&mut b, 2264, u32::from(knobs[7]));
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn prop_decode_inverts_encode(m in arb_message()) {
        let frame = bytes(&m);
        prop_assert_eq!(frame.len() as u64, expected_len(&frame).unwrap());
        prop_assert_eq!(decode(&frame), Ok(m.clone()));
        // And encoding is deterministic: the decoded message encodes to the same bytes.
        prop_assert_eq!(bytes(&m), frame);
    }

    #[test]
    fn prop_decode_never_panics_on_arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..3000)) {
        let _ = decode(&b);
        let _ = expected_len(&b);
    }

    #[test]
    fn prop_decode_never_panics_on_plausible_frames(b in arb_plausible_frame()) {
        if let Ok(m) = decode(&b) {
            // Whatever decodes re-encodes to a frame that decodes to the very
            // same message (only unused header bytes may differ).
            prop_assert_eq!(decode(&bytes(&m)), Ok(m));
        }
    }

    #[test]
    fn prop_decode_never_panics_on_mutated_frames(
        m in arb_message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<Option<prop::sample::Index>>(),
    ) {
        let mut frame = bytes(&m);
        for (at, v) in edits {
            let i = at.index(frame.len());
            frame[i] = v;
        }
        if let Some(c) = cut {
            frame.truncate(c.index(frame.len() + 1));
        }
        let _ = decode(&frame);
        let _ = expected_len(&frame);
    }

    #[test]
    fn prop_mutated_length_fields_never_panic(m in arb_message(), field in 0usize..6, v in any::<u32>()) {
        // Target the length-like fields specifically: count, extensions, first ext length,
        // publish/module lengths.
        let mut frame = bytes(&m);
        let at = [14usize, 2214, 2256, 2260, 2264, 2256 + 104][field];
        if at + 4 <= frame.len() {
            put32(&mut frame, at, v);
        } else if at + 2 <= frame.len() {
            put16(&mut frame, at, v as u16);
        }
        frame[2253] |= 0x04;
        let _ = decode(&frame);
    }
}
