//! Encoding and decoding of bus messages (reference section 1).
//!
//! The read path mirrors redis 7.0.15 `clusterReadHandler` + `clusterProcessPacket`:
//! 1. [`check_prefix`] on the first 8 bytes (signature, totlen): failure closes the link;
//! 2. [`decode`] on the complete frame: version, then the per-type length rule
//!    ([`expected_len`]), then the payload. Failures drop only the packet, and the
//!    `Display` of a [`DecodeError`] is redis's own log text where redis logs one.
//!
//! Where redis relies on the receive buffer being bigger than the frame (it reads
//! ping-extension headers or publish lengths without a bounds check), we return an
//! error instead of reading outside the frame: `decode` never panics on any input.

use super::{
    msg_flags, msg_type, Body, GossipEntry, Header, Message, NodeName, PingExt, EXT_HOSTNAME,
    GOSSIP_ENTRY_LEN, HEADER_LEN, IPLEN, NAMELEN, PROTO_VER,
};
use crate::slots::{SlotSet, CLUSTER_SLOTS};

/// The 4 signature bytes that open every frame.
pub const SIGNATURE: [u8; 4] = *b"RCmb";

/// Our own safety bound on `totlen` for the shell's read loop. redis has **no** upper
/// bound (its receive buffer just grows), so a peer could otherwise make us allocate
/// 4 GiB. The biggest legitimate frames are PUBLISH messages carrying large payloads;
/// 64 MiB leaves ample room for those while bounding the memory one link can pin.
pub const MAX_FRAME_LEN: u32 = 64 * 1024 * 1024;

/// Frame length of a FAIL message (header + node name).
pub const FAIL_LEN: usize = HEADER_LEN + NAMELEN;
/// Frame length of an UPDATE message (header + configEpoch + node name + slot bitmap);
/// equal to `sizeof(clusterMsg)`.
pub const UPDATE_LEN: usize = HEADER_LEN + 8 + NAMELEN + CLUSTER_SLOTS / 8;
/// Fixed part of a PUBLISH payload: `channel_len` and `message_len`.
pub const PUBLISH_FIXED_LEN: usize = 8;
/// Fixed part of a MODULE payload: `module_id`, `len`, `type`.
pub const MODULE_FIXED_LEN: usize = 13;
/// Size of a ping-extension record header: `length` u32, `type` u16, `unused` u16.
pub const EXT_HEADER_LEN: usize = 8;

/// Byte offsets of the header fields (reference 1.3, redis's static_asserts).
mod off {
    pub const SIG: usize = 0;
    pub const TOTLEN: usize = 4;
    pub const VER: usize = 8;
    pub const PORT: usize = 10;
    pub const TYPE: usize = 12;
    pub const COUNT: usize = 14;
    pub const CURRENT_EPOCH: usize = 16;
    pub const CONFIG_EPOCH: usize = 24;
    pub const OFFSET: usize = 32;
    pub const SENDER: usize = 40;
    pub const MYSLOTS: usize = 80;
    pub const SLAVEOF: usize = 2128;
    pub const MYIP: usize = 2168;
    pub const EXTENSIONS: usize = 2214;
    pub const NOTUSED1: usize = 2216;
    pub const PPORT: usize = 2246;
    pub const CPORT: usize = 2248;
    pub const FLAGS: usize = 2250;
    pub const STATE: usize = 2252;
    pub const MFLAGS: usize = 2253;
    pub const DATA: usize = 2256;

    /// Gossip entry field offsets (reference 1.6), relative to the entry.
    pub mod gossip {
        pub const NODENAME: usize = 0;
        pub const PING_SENT: usize = 40;
        pub const PONG_RECEIVED: usize = 44;
        pub const IP: usize = 48;
        pub const PORT: usize = 94;
        pub const CPORT: usize = 96;
        pub const FLAGS: usize = 98;
        pub const PPORT: usize = 100;
        pub const NOTUSED1: usize = 102;
    }

    /// UPDATE payload offsets, relative to `DATA`.
    pub mod update {
        pub const CONFIG_EPOCH: usize = 0;
        pub const NODENAME: usize = 8;
        pub const SLOTS: usize = 48;
    }

    /// MODULE payload offsets, relative to `DATA`.
    pub mod module {
        pub const MODULE_ID: usize = 0;
        pub const LEN: usize = 8;
        pub const TYPE: usize = 12;
        pub const BULK_DATA: usize = 13;
    }
}

// Every field starts where the previous one ends, as redis's static_asserts pin them.
// The encoder writes fields sequentially, so these also prove it lands on the offsets.
const _: () = {
    assert!(off::SIG == 0);
    assert!(off::TOTLEN == off::SIG + 4);
    assert!(off::VER == off::TOTLEN + 4);
    assert!(off::PORT == off::VER + 2);
    assert!(off::TYPE == off::PORT + 2);
    assert!(off::COUNT == off::TYPE + 2);
    assert!(off::CURRENT_EPOCH == off::COUNT + 2);
    assert!(off::CONFIG_EPOCH == off::CURRENT_EPOCH + 8);
    assert!(off::OFFSET == off::CONFIG_EPOCH + 8);
    assert!(off::SENDER == off::OFFSET + 8);
    assert!(off::MYSLOTS == off::SENDER + NAMELEN);
    assert!(off::SLAVEOF == off::MYSLOTS + CLUSTER_SLOTS / 8);
    assert!(off::MYIP == off::SLAVEOF + NAMELEN);
    assert!(off::EXTENSIONS == off::MYIP + IPLEN);
    assert!(off::NOTUSED1 == off::EXTENSIONS + 2);
    assert!(off::PPORT == off::NOTUSED1 + 30);
    assert!(off::CPORT == off::PPORT + 2);
    assert!(off::FLAGS == off::CPORT + 2);
    assert!(off::STATE == off::FLAGS + 2);
    assert!(off::MFLAGS == off::STATE + 1);
    assert!(off::DATA == off::MFLAGS + 3);
    assert!(off::DATA == HEADER_LEN);
    // Gossip entry.
    assert!(off::gossip::PING_SENT == off::gossip::NODENAME + NAMELEN);
    assert!(off::gossip::PONG_RECEIVED == off::gossip::PING_SENT + 4);
    assert!(off::gossip::IP == off::gossip::PONG_RECEIVED + 4);
    assert!(off::gossip::PORT == off::gossip::IP + IPLEN);
    assert!(off::gossip::CPORT == off::gossip::PORT + 2);
    assert!(off::gossip::FLAGS == off::gossip::CPORT + 2);
    assert!(off::gossip::PPORT == off::gossip::FLAGS + 2);
    assert!(off::gossip::NOTUSED1 == off::gossip::PPORT + 2);
    assert!(off::gossip::NOTUSED1 + 2 == GOSSIP_ENTRY_LEN);
    // Payloads. Extensions start 8-aligned because both of these are multiples of 8.
    assert!(HEADER_LEN.is_multiple_of(8) && GOSSIP_ENTRY_LEN.is_multiple_of(8));
    assert!(off::update::NODENAME == off::update::CONFIG_EPOCH + 8);
    assert!(off::update::SLOTS == off::update::NODENAME + NAMELEN);
    assert!(HEADER_LEN + off::update::SLOTS + CLUSTER_SLOTS / 8 == UPDATE_LEN);
    assert!(UPDATE_LEN == 4352 && FAIL_LEN == 2296);
    assert!(off::module::LEN == off::module::MODULE_ID + 8);
    assert!(off::module::TYPE == off::module::LEN + 4);
    assert!(off::module::BULK_DATA == off::module::TYPE + 1);
    assert!(off::module::BULK_DATA == MODULE_FIXED_LEN);
};

/// Why the first 8 bytes of a frame are unacceptable: redis logs
/// "Bad message length or signature received from Cluster bus." and closes the link.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PrefixError {
    #[error("bad signature")]
    BadSignature,
    #[error("total length {0} below the minimum header length")]
    TooShort(u32),
}

/// Why a complete frame was dropped (the link stays up).
///
/// The `Version`, `Length`, `ExtPadding` and `ExtOverflow` texts are redis 7.0.15's log
/// lines verbatim (the shell logs them as they are); the other variants cover inputs on
/// which redis would read outside the frame, so they have our own wording.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// redis ignores such packets silently.
    #[error("unsupported protocol version {0}")]
    Version(u16),
    #[error("Received invalid {type_name} packet of length {got} but expected length {expected}")]
    Length {
        type_name: &'static str,
        got: u64,
        expected: u64,
    },
    /// `len` is the value redis prints: the record length truncated to 16 bits.
    #[error("Received a {type_name} packet without proper padding ({len} bytes)")]
    ExtPadding { type_name: &'static str, len: u32 },
    #[error("Received invalid {type_name} packet with extension data that exceeds total packet length ({totlen})")]
    ExtOverflow {
        type_name: &'static str,
        totlen: u64,
    },
    /// A hostname extension that is not a NUL-terminated UTF-8 string.
    #[error("Received a {type_name} packet with a malformed hostname extension: {reason}")]
    Hostname {
        type_name: &'static str,
        reason: &'static str,
    },
    /// The frame does not start with a valid prefix (the shell normally checks this
    /// with [`check_prefix`] before it has the whole frame).
    #[error("Bad message length or signature received from Cluster bus: {0}")]
    Prefix(#[from] PrefixError),
    /// The buffer handed to [`decode`] is not exactly `totlen` bytes long.
    #[error("frame buffer holds {actual} bytes but its totlen is {totlen}")]
    FrameLen { totlen: u32, actual: usize },
    #[error("truncated frame: {field}")]
    Truncated { field: &'static str },
}

/// Checks the 8-byte prefix (signature and totlen) and returns totlen.
///
/// Like redis this imposes no upper bound; the caller should also compare the result
/// with [`MAX_FRAME_LEN`] before buffering that many bytes.
pub fn check_prefix(prefix: &[u8; 8]) -> Result<u32, PrefixError> {
    let [s0, s1, s2, s3, l0, l1, l2, l3] = *prefix;
    if [s0, s1, s2, s3] != SIGNATURE {
        return Err(PrefixError::BadSignature);
    }
    let totlen = u32::from_be_bytes([l0, l1, l2, l3]);
    if (totlen as usize) < HEADER_LEN {
        return Err(PrefixError::TooShort(totlen));
    }
    Ok(totlen)
}

/// The totlen a frame of this header must have (redis's per-type check), given the whole frame.
///
/// Uses the frame's `totlen` field for redis's arithmetic and never reads past the end of
/// `frame`. PUBLISH or MODULE frames too short to hold their length fields yield the fixed
/// part's length (so the caller reports a length mismatch). For PING/PONG/MEET with
/// EXT_DATA set, the extension records are walked and the padding/overflow errors returned.
pub fn expected_len(frame: &[u8]) -> Result<u64, DecodeError> {
    let totlen = u64::from(be_u32(frame, off::TOTLEN, "totlen")?);
    let ty = be_u16(frame, off::TYPE, "type")?;
    let h = HEADER_LEN as u64;
    let len = match ty {
        msg_type::PING | msg_type::PONG | msg_type::MEET => ping_expected_len(frame, totlen, ty)?,
        msg_type::FAIL => FAIL_LEN as u64,
        msg_type::PUBLISH | msg_type::PUBLISHSHARD => {
            // u64 sums: redis adds these in 32 bits, so two huge lengths can wrap to a
            // small total and pass its check (then crash reading); we never wrap.
            match (
                be_u32(frame, HEADER_LEN, "channel_len"),
                be_u32(frame, HEADER_LEN + 4, "message_len"),
            ) {
                (Ok(c), Ok(m)) => h + PUBLISH_FIXED_LEN as u64 + u64::from(c) + u64::from(m),
                _ => h + PUBLISH_FIXED_LEN as u64,
            }
        }
        msg_type::FAILOVER_AUTH_REQUEST | msg_type::FAILOVER_AUTH_ACK | msg_type::MFSTART => h,
        msg_type::UPDATE => UPDATE_LEN as u64,
        msg_type::MODULE => match be_u32(frame, HEADER_LEN + off::module::LEN, "module len") {
            Ok(len) => h + MODULE_FIXED_LEN as u64 + u64::from(len),
            Err(_) => h + MODULE_FIXED_LEN as u64,
        },
        // Unknown types are assumed well formed.
        _ => totlen,
    };
    Ok(len)
}

/// redis's expected length for PING/PONG/MEET, including its extension walk.
fn ping_expected_len(frame: &[u8], totlen: u64, ty: u16) -> Result<u64, DecodeError> {
    let type_name = msg_type::name(ty);
    let count = u64::from(be_u16(frame, off::COUNT, "count")?);
    let gossip_end = HEADER_LEN as u64 + GOSSIP_ENTRY_LEN as u64 * count;
    let mflags0 = byte_at(frame, off::MFLAGS, "mflags")?;
    if mflags0 & msg_flags::EXT_DATA == 0 {
        return Ok(gossip_end);
    }
    let extensions = be_u16(frame, off::EXTENSIONS, "extensions")?;
    // Readable bytes: never past the buffer, nor past what totlen says is the frame.
    let limit = totlen.min(frame.len() as u64);
    let mut explen = gossip_end;
    let mut cursor = gossip_end;
    for _ in 0..extensions {
        if explen > totlen {
            // The gossip section (or earlier records) already overruns the frame; redis
            // would read outside its buffer here. The caller's length check reports it.
            break;
        }
        let length = match cursor.checked_add(EXT_HEADER_LEN as u64) {
            Some(end) if end <= limit => be_u32(frame, cursor as usize, "extension length")?,
            _ => return Err(DecodeError::ExtOverflow { type_name, totlen }),
        };
        // redis holds the length in a u16 for these two checks and in the running total
        // (reference 1.7 quirk), but steps to the next record by the full 32 bits.
        let checked = u64::from(length as u16);
        if !checked.is_multiple_of(8) {
            return Err(DecodeError::ExtPadding {
                type_name,
                len: checked as u32,
            });
        }
        if totlen - explen < checked {
            return Err(DecodeError::ExtOverflow { type_name, totlen });
        }
        explen += checked;
        cursor += u64::from(length);
    }
    Ok(explen)
}

/// Decodes one complete frame (exactly `totlen` bytes).
///
/// Checks in redis's order: prefix, version, per-type length, then the payload.
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    let prefix: [u8; 8] = array_at(frame, 0, "prefix")?;
    let totlen = check_prefix(&prefix)?;
    if frame.len() as u64 != u64::from(totlen) {
        return Err(DecodeError::FrameLen {
            totlen,
            actual: frame.len(),
        });
    }
    let header = decode_header(frame)?;
    if header.ver != PROTO_VER {
        return Err(DecodeError::Version(header.ver));
    }
    let expected = expected_len(frame)?;
    if expected != u64::from(totlen) {
        return Err(DecodeError::Length {
            type_name: msg_type::name(header.msg_type),
            got: u64::from(totlen),
            expected,
        });
    }
    let body = decode_body(&header, frame)?;
    Ok(Message { header, body })
}

fn decode_header(frame: &[u8]) -> Result<Header, DecodeError> {
    Ok(Header {
        ver: be_u16(frame, off::VER, "ver")?,
        port: be_u16(frame, off::PORT, "port")?,
        msg_type: be_u16(frame, off::TYPE, "type")?,
        count: be_u16(frame, off::COUNT, "count")?,
        current_epoch: be_u64(frame, off::CURRENT_EPOCH, "currentEpoch")?,
        config_epoch: be_u64(frame, off::CONFIG_EPOCH, "configEpoch")?,
        offset: be_u64(frame, off::OFFSET, "offset")?,
        sender: NodeName(array_at(frame, off::SENDER, "sender")?),
        myslots: slot_set_at(frame, off::MYSLOTS, "myslots")?,
        slaveof: NodeName(array_at(frame, off::SLAVEOF, "slaveof")?),
        myip: array_at(frame, off::MYIP, "myip")?,
        extensions: be_u16(frame, off::EXTENSIONS, "extensions")?,
        pport: be_u16(frame, off::PPORT, "pport")?,
        cport: be_u16(frame, off::CPORT, "cport")?,
        flags: be_u16(frame, off::FLAGS, "flags")?,
        state: byte_at(frame, off::STATE, "state")?,
        mflags: array_at(frame, off::MFLAGS, "mflags")?,
    })
}

/// Parses the payload of a frame whose length already passed [`expected_len`].
fn decode_body(header: &Header, frame: &[u8]) -> Result<Body, DecodeError> {
    let data = frame
        .get(HEADER_LEN..)
        .ok_or(DecodeError::Truncated { field: "header" })?;
    let body = match header.msg_type {
        msg_type::PING | msg_type::PONG | msg_type::MEET => {
            let gossip = (0..usize::from(header.count))
                .map(|i| decode_gossip(data, i * GOSSIP_ENTRY_LEN))
                .collect::<Result<Vec<_>, _>>()?;
            // 7.0.15 only validates the records when EXT_DATA is set; without it the
            // `extensions` count points at nothing, so we take no records.
            let extensions = if header.mflags[0] & msg_flags::EXT_DATA != 0 {
                decode_extensions(header, frame)?
            } else {
                Vec::new()
            };
            Body::Ping { gossip, extensions }
        }
        msg_type::FAIL => Body::Fail {
            nodename: NodeName(array_at(data, 0, "fail nodename")?),
        },
        msg_type::PUBLISH | msg_type::PUBLISHSHARD => {
            let channel_len = be_u32(data, 0, "channel_len")? as usize;
            let message_len = be_u32(data, 4, "message_len")? as usize;
            let channel = slice_at(data, PUBLISH_FIXED_LEN, channel_len, "channel")?;
            let message = slice_at(
                data,
                PUBLISH_FIXED_LEN.saturating_add(channel_len),
                message_len,
                "message",
            )?;
            Body::Publish {
                channel: channel.to_vec(),
                message: message.to_vec(),
            }
        }
        msg_type::FAILOVER_AUTH_REQUEST | msg_type::FAILOVER_AUTH_ACK | msg_type::MFSTART => {
            Body::Empty
        }
        msg_type::UPDATE => Body::Update {
            config_epoch: be_u64(data, off::update::CONFIG_EPOCH, "update configEpoch")?,
            nodename: NodeName(array_at(data, off::update::NODENAME, "update nodename")?),
            slots: slot_set_at(data, off::update::SLOTS, "update slots")?,
        },
        msg_type::MODULE => {
            let len = be_u32(data, off::module::LEN, "module len")? as usize;
            Body::Module {
                module_id: array_at(data, off::module::MODULE_ID, "module_id")?,
                module_type: byte_at(data, off::module::TYPE, "module type")?,
                payload: slice_at(data, off::module::BULK_DATA, len, "module payload")?.to_vec(),
            }
        }
        _ => Body::Unknown {
            payload: data.to_vec(),
        },
    };
    Ok(body)
}

fn decode_gossip(data: &[u8], at: usize) -> Result<GossipEntry, DecodeError> {
    use off::gossip as g;
    let entry = slice_at(data, at, GOSSIP_ENTRY_LEN, "gossip entry")?;
    Ok(GossipEntry {
        nodename: NodeName(array_at(entry, g::NODENAME, "gossip nodename")?),
        ping_sent: be_u32(entry, g::PING_SENT, "gossip ping_sent")?,
        pong_received: be_u32(entry, g::PONG_RECEIVED, "gossip pong_received")?,
        ip: array_at(entry, g::IP, "gossip ip")?,
        port: be_u16(entry, g::PORT, "gossip port")?,
        cport: be_u16(entry, g::CPORT, "gossip cport")?,
        flags: be_u16(entry, g::FLAGS, "gossip flags")?,
        pport: be_u16(entry, g::PPORT, "gossip pport")?,
    })
}

/// Parses the extension records strictly: each must hold its own 8-byte header and lie
/// inside the frame. (Only the 16-bit quirk of [`ping_expected_len`] can let a record
/// through the length check that fails here.)
fn decode_extensions(header: &Header, frame: &[u8]) -> Result<Vec<PingExt>, DecodeError> {
    let type_name = msg_type::name(header.msg_type);
    let overflow = DecodeError::ExtOverflow {
        type_name,
        totlen: frame.len() as u64,
    };
    let mut cursor = HEADER_LEN + GOSSIP_ENTRY_LEN * usize::from(header.count);
    let mut out = Vec::with_capacity(usize::from(header.extensions).min(16));
    for _ in 0..header.extensions {
        let length =
            be_u32(frame, cursor, "extension length").map_err(|_| overflow.clone())? as usize;
        let ext_type = be_u16(frame, cursor + 4, "extension type").map_err(|_| overflow.clone())?;
        if length < EXT_HEADER_LEN {
            return Err(overflow);
        }
        let body = slice_at(
            frame,
            cursor + EXT_HEADER_LEN,
            length - EXT_HEADER_LEN,
            "extension body",
        )
        .map_err(|_| overflow.clone())?;
        out.push(match ext_type {
            EXT_HOSTNAME => PingExt::Hostname(decode_hostname(body, type_name)?),
            _ => PingExt::Unknown {
                ext_type,
                body: body.to_vec(),
            },
        });
        cursor += length;
    }
    Ok(out)
}

/// The hostname body is a C string: text up to the first NUL, then zero padding.
fn decode_hostname(body: &[u8], type_name: &'static str) -> Result<String, DecodeError> {
    let end = body
        .iter()
        .position(|&b| b == 0)
        .ok_or(DecodeError::Hostname {
            type_name,
            reason: "missing NUL terminator",
        })?;
    let text = body.get(..end).unwrap_or_default();
    std::str::from_utf8(text)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Hostname {
            type_name,
            reason: "not valid UTF-8",
        })
}

/// Appends the encoding of `msg` to `out`; `totlen`, `count` and `extensions`
/// are computed from the body.
///
/// - PING/PONG/MEET: `count` = gossip length and `extensions` = extension count (each
///   capped at `u16::MAX` entries, extra ones are not written); `mflags[0]` EXT_DATA is
///   set iff there is at least one extension.
/// - Other known types: `count` and `extensions` are 0 and EXT_DATA is cleared, as redis
///   builds them.
/// - `Body::Unknown`: the header's `count`, `extensions` and `mflags` are written as given.
///
/// Everything else comes from `msg.header` (including `ver` and `msg_type`, so tests can
/// build invalid frames). The body must suit `msg_type` (checked in debug builds).
/// Extension bodies are zero-padded to a multiple of 8; records of 64 KiB or more are
/// written but redis (and [`decode`]) will reject them. A frame longer than `u32::MAX`
/// cannot be represented and gets a saturated totlen.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    let h = &msg.header;
    debug_assert!(
        body_matches_type(h.msg_type, &msg.body),
        "body {:?} for type {}",
        msg.body,
        h.msg_type
    );
    let max_entries = usize::from(u16::MAX);
    // Fields the body determines are derived from it; the others are written
    // as the header has them, so that decoding then encoding any frame gives
    // back the same message (an MFSTART's count, say, means nothing to redis
    // but survives the round trip).
    let (count, extensions, mflags0) = match &msg.body {
        Body::Ping { gossip, extensions } => {
            let count = gossip.len().min(max_entries);
            let n_ext = extensions.len().min(max_entries);
            if n_ext > 0 {
                (count, n_ext, h.mflags[0] | msg_flags::EXT_DATA)
            } else if h.mflags[0] & msg_flags::EXT_DATA != 0 {
                // EXT_DATA with no records: the count must say none.
                (count, 0, h.mflags[0])
            } else {
                // Without EXT_DATA redis reads no records; the count is kept.
                (count, usize::from(h.extensions), h.mflags[0])
            }
        }
        _ => (usize::from(h.count), usize::from(h.extensions), h.mflags[0]),
    };
    let totlen = HEADER_LEN + payload_len(&msg.body, count, extensions);
    let start = out.len();
    out.reserve(totlen);

    out.extend_from_slice(&SIGNATURE);
    out.extend_from_slice(&u32::try_from(totlen).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&h.ver.to_be_bytes());
    out.extend_from_slice(&h.port.to_be_bytes());
    out.extend_from_slice(&h.msg_type.to_be_bytes());
    out.extend_from_slice(&(count as u16).to_be_bytes());
    out.extend_from_slice(&h.current_epoch.to_be_bytes());
    out.extend_from_slice(&h.config_epoch.to_be_bytes());
    out.extend_from_slice(&h.offset.to_be_bytes());
    out.extend_from_slice(&h.sender.0);
    out.extend_from_slice(h.myslots.bitmap());
    out.extend_from_slice(&h.slaveof.0);
    out.extend_from_slice(&h.myip);
    out.extend_from_slice(&(extensions as u16).to_be_bytes());
    out.extend_from_slice(&[0u8; off::PPORT - off::NOTUSED1]);
    out.extend_from_slice(&h.pport.to_be_bytes());
    out.extend_from_slice(&h.cport.to_be_bytes());
    out.extend_from_slice(&h.flags.to_be_bytes());
    out.push(h.state);
    out.extend_from_slice(&[mflags0, h.mflags[1], h.mflags[2]]);
    debug_assert_eq!(out.len() - start, HEADER_LEN);

    match &msg.body {
        Body::Ping {
            gossip,
            extensions: exts,
        } => {
            for g in gossip.iter().take(count) {
                encode_gossip(g, out);
            }
            for ext in exts.iter().take(extensions) {
                encode_ext(ext, out);
            }
        }
        Body::Fail { nodename } => out.extend_from_slice(&nodename.0),
        Body::Publish { channel, message } => {
            out.extend_from_slice(&len_u32(channel.len()).to_be_bytes());
            out.extend_from_slice(&len_u32(message.len()).to_be_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(message);
        }
        Body::Empty => {}
        Body::Update {
            config_epoch,
            nodename,
            slots,
        } => {
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(&nodename.0);
            out.extend_from_slice(slots.bitmap());
        }
        Body::Module {
            module_id,
            module_type,
            payload,
        } => {
            out.extend_from_slice(module_id);
            out.extend_from_slice(&len_u32(payload.len()).to_be_bytes());
            out.push(*module_type);
            out.extend_from_slice(payload);
        }
        Body::Unknown { payload } => out.extend_from_slice(payload),
    }
    debug_assert_eq!(out.len() - start, totlen);
}

/// Payload bytes after the header, for the given (capped) gossip and extension counts.
fn payload_len(body: &Body, count: usize, extensions: usize) -> usize {
    match body {
        Body::Ping {
            extensions: exts, ..
        } => count * GOSSIP_ENTRY_LEN + exts.iter().take(extensions).map(ext_len).sum::<usize>(),
        Body::Fail { .. } => NAMELEN,
        Body::Publish { channel, message } => PUBLISH_FIXED_LEN + channel.len() + message.len(),
        Body::Empty => 0,
        Body::Update { .. } => UPDATE_LEN - HEADER_LEN,
        Body::Module { payload, .. } => MODULE_FIXED_LEN + payload.len(),
        Body::Unknown { payload } => payload.len(),
    }
}

fn body_matches_type(ty: u16, body: &Body) -> bool {
    use msg_type::*;
    match body {
        Body::Ping { .. } => matches!(ty, PING | PONG | MEET),
        Body::Fail { .. } => ty == FAIL,
        Body::Publish { .. } => matches!(ty, PUBLISH | PUBLISHSHARD),
        Body::Empty => matches!(ty, FAILOVER_AUTH_REQUEST | FAILOVER_AUTH_ACK | MFSTART),
        Body::Update { .. } => ty == UPDATE,
        Body::Module { .. } => ty == MODULE,
        Body::Unknown { .. } => ty >= COUNT,
    }
}

fn encode_gossip(g: &GossipEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&g.nodename.0);
    out.extend_from_slice(&g.ping_sent.to_be_bytes());
    out.extend_from_slice(&g.pong_received.to_be_bytes());
    out.extend_from_slice(&g.ip);
    out.extend_from_slice(&g.port.to_be_bytes());
    out.extend_from_slice(&g.cport.to_be_bytes());
    out.extend_from_slice(&g.flags.to_be_bytes());
    out.extend_from_slice(&g.pport.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// Length of one extension record on the wire, header and padding included.
pub fn ext_len(ext: &PingExt) -> usize {
    EXT_HEADER_LEN + ext_body_len(ext)
}

/// Body length with padding: hostnames get their NUL, then both kinds round up to 8.
fn ext_body_len(ext: &PingExt) -> usize {
    match ext {
        PingExt::Hostname(name) => round_up8(name.len() + 1),
        PingExt::Unknown { body, .. } => round_up8(body.len()),
    }
}

fn encode_ext(ext: &PingExt, out: &mut Vec<u8>) {
    let (ext_type, bytes): (u16, &[u8]) = match ext {
        PingExt::Hostname(name) => (EXT_HOSTNAME, name.as_bytes()),
        PingExt::Unknown { ext_type, body } => (*ext_type, body),
    };
    let body_len = ext_body_len(ext);
    out.extend_from_slice(&len_u32(EXT_HEADER_LEN + body_len).to_be_bytes());
    out.extend_from_slice(&ext_type.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(bytes);
    // Zero fill: the hostname's NUL terminator plus padding to the 8-byte boundary.
    out.resize(out.len() + (body_len - bytes.len()), 0);
}

fn round_up8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// Bounds-checked readers: every read of peer bytes goes through these.

fn slice_at<'a>(
    buf: &'a [u8],
    at: usize,
    len: usize,
    field: &'static str,
) -> Result<&'a [u8], DecodeError> {
    at.checked_add(len)
        .and_then(|end| buf.get(at..end))
        .ok_or(DecodeError::Truncated { field })
}

fn array_at<const N: usize>(
    buf: &[u8],
    at: usize,
    field: &'static str,
) -> Result<[u8; N], DecodeError> {
    slice_at(buf, at, N, field)?
        .try_into()
        .map_err(|_| DecodeError::Truncated { field })
}

fn byte_at(buf: &[u8], at: usize, field: &'static str) -> Result<u8, DecodeError> {
    buf.get(at).copied().ok_or(DecodeError::Truncated { field })
}

fn be_u16(buf: &[u8], at: usize, field: &'static str) -> Result<u16, DecodeError> {
    array_at(buf, at, field).map(u16::from_be_bytes)
}

fn be_u32(buf: &[u8], at: usize, field: &'static str) -> Result<u32, DecodeError> {
    array_at(buf, at, field).map(u32::from_be_bytes)
}

fn be_u64(buf: &[u8], at: usize, field: &'static str) -> Result<u64, DecodeError> {
    array_at(buf, at, field).map(u64::from_be_bytes)
}

fn slot_set_at(buf: &[u8], at: usize, field: &'static str) -> Result<SlotSet, DecodeError> {
    let bitmap: &[u8; CLUSTER_SLOTS / 8] = slice_at(buf, at, CLUSTER_SLOTS / 8, field)?
        .try_into()
        .map_err(|_| DecodeError::Truncated { field })?;
    Ok(SlotSet::from_bitmap(bitmap))
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
