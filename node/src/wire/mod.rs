//! The Redis 7.0 cluster bus message format (`clusterMsg`), byte-compatible with
//! redis-server 7.0: big-endian, signature "RCmb", a 2256-byte header, then a
//! type-specific payload. See `shared/reference/redis-cluster-7.0.md` section 1.
//!
//! This module holds the message types; `codec` turns them into bytes and back.

mod codec;

pub use codec::{
    check_prefix, decode, encode, expected_len, ext_len, DecodeError, PrefixError, EXT_HEADER_LEN,
    FAIL_LEN, MAX_FRAME_LEN, MODULE_FIXED_LEN, PUBLISH_FIXED_LEN, SIGNATURE, UPDATE_LEN,
};

use crate::slots::SlotSet;

/// Length of a node name (node ID) on the wire: 40 ASCII characters, not NUL-terminated.
pub const NAMELEN: usize = 40;
/// Length of an IP text field on the wire (NUL padded).
pub const IPLEN: usize = 46;
/// Size of the header without its data union (`CLUSTERMSG_MIN_LEN`).
pub const HEADER_LEN: usize = 2256;
/// Size of one gossip entry.
pub const GOSSIP_ENTRY_LEN: usize = 104;
/// The only protocol version redis 7.0 speaks.
pub const PROTO_VER: u16 = 1;

/// Message types. Numbered explicitly; append only.
pub mod msg_type {
    pub const PING: u16 = 0;
    pub const PONG: u16 = 1;
    pub const MEET: u16 = 2;
    pub const FAIL: u16 = 3;
    pub const PUBLISH: u16 = 4;
    pub const FAILOVER_AUTH_REQUEST: u16 = 5;
    pub const FAILOVER_AUTH_ACK: u16 = 6;
    pub const UPDATE: u16 = 7;
    pub const MFSTART: u16 = 8;
    pub const MODULE: u16 = 9;
    pub const PUBLISHSHARD: u16 = 10;
    /// `CLUSTERMSG_TYPE_COUNT`: types below this have stats counters.
    pub const COUNT: u16 = 11;

    /// The name redis prints in CLUSTER INFO stats and log lines.
    pub fn name(t: u16) -> &'static str {
        match t {
            PING => "ping",
            PONG => "pong",
            MEET => "meet",
            FAIL => "fail",
            PUBLISH => "publish",
            FAILOVER_AUTH_REQUEST => "auth-req",
            FAILOVER_AUTH_ACK => "auth-ack",
            UPDATE => "update",
            MFSTART => "mfstart",
            MODULE => "module",
            PUBLISHSHARD => "publishshard",
            _ => "unknown",
        }
    }
}

/// Node flag bits, as in the header `flags`, gossip `flags` and internal state.
pub mod node_flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}

/// `mflags[0]` bits.
pub mod msg_flags {
    pub const PAUSED: u8 = 0x01;
    pub const FORCEACK: u8 = 0x02;
    pub const EXT_DATA: u8 = 0x04;
}

/// Ping extension types known to 7.0 (only HOSTNAME).
pub const EXT_HOSTNAME: u16 = 0;

/// A 40-byte node name. Any bytes are accepted from the wire; `is_valid` says
/// whether it is a proper lowercase-alphanumeric ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(pub [u8; NAMELEN]);

impl NodeName {
    /// All zeros: "no master" in `slaveof`.
    pub const NULL: NodeName = NodeName([0u8; NAMELEN]);

    pub fn is_null(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// redis `verifyClusterNodeId`: 40 chars of `[a-z0-9]`.
    pub fn is_valid(&self) -> bool {
        // A fold without early exit: it vectorises (every lookup asks).
        self.0.iter().fold(true, |ok, b| {
            ok & (b.is_ascii_lowercase() | b.is_ascii_digit())
        })
    }

    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// Parses a 40-character text ID; `None` if the length is wrong.
    pub fn parse(s: &str) -> Option<NodeName> {
        let b = s.as_bytes();
        if b.len() != NAMELEN {
            return None;
        }
        let mut n = [0u8; NAMELEN];
        n.copy_from_slice(b);
        Some(NodeName(n))
    }
}

impl std::fmt::Debug for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

/// The fixed header of every bus message (offsets 0..2256). `sig` and `totlen`
/// are derived by the codec and not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub ver: u16,
    /// Sender's announced client port.
    pub port: u16,
    pub msg_type: u16,
    /// Number of gossip entries (PING/PONG/MEET), else 0. On decode this is the
    /// value on the wire; on encode the codec writes the gossip length instead.
    pub count: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    /// Replication offset.
    pub offset: u64,
    pub sender: NodeName,
    pub myslots: SlotSet,
    /// Master's name if the sender is a replica, else `NodeName::NULL`.
    pub slaveof: NodeName,
    /// `cluster-announce-ip` of the sender, raw 46 bytes NUL padded (all zero if unset).
    pub myip: [u8; IPLEN],
    /// Number of ping extensions. On encode the codec writes the extension count.
    pub extensions: u16,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    /// 0 = ok, 1 = fail. Ignored by 7.0 receivers.
    pub state: u8,
    pub mflags: [u8; 3],
}

impl Header {
    /// A zeroed header of the given type, as `clusterBuildMessageHdr` starts from.
    pub fn new(msg_type: u16, sender: NodeName) -> Header {
        Header {
            ver: PROTO_VER,
            port: 0,
            msg_type,
            count: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender,
            myslots: SlotSet::new(),
            slaveof: NodeName::NULL,
            myip: [0u8; IPLEN],
            extensions: 0,
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
        }
    }

    /// `myip` as text (up to the first NUL); empty if unset or not UTF-8.
    pub fn myip_str(&self) -> String {
        ip_field_str(&self.myip)
    }
}

/// Text of a NUL-padded IP field.
pub fn ip_field_str(raw: &[u8; IPLEN]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(IPLEN);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Builds a NUL-padded IP field from text (truncated to 45 bytes so a NUL remains).
pub fn ip_field(ip: &str) -> [u8; IPLEN] {
    let mut out = [0u8; IPLEN];
    let b = ip.as_bytes();
    let n = b.len().min(IPLEN - 1);
    out[..n].copy_from_slice(&b[..n]);
    out
}

/// One 104-byte gossip entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipEntry {
    pub nodename: NodeName,
    /// Seconds (ms / 1000), 0 = no ping pending.
    pub ping_sent: u32,
    /// Seconds (ms / 1000).
    pub pong_received: u32,
    pub ip: [u8; IPLEN],
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

/// One ping extension record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingExt {
    /// Type 0: the sender's `cluster-announce-hostname` (without the NUL).
    Hostname(String),
    /// Any other type: kept as raw body bytes (after the 8-byte record header,
    /// padding included) so the receiver can log and skip it.
    Unknown { ext_type: u16, body: Vec<u8> },
}

/// A decoded bus message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

impl Message {
    /// The encoded frame as a fresh buffer (see [`encode`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode(self, &mut out);
        out
    }
}

/// Type-specific payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// PING, PONG and MEET (which one is `header.msg_type`).
    Ping {
        gossip: Vec<GossipEntry>,
        extensions: Vec<PingExt>,
    },
    Fail {
        nodename: NodeName,
    },
    /// PUBLISH and PUBLISHSHARD.
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK and MFSTART: header only.
    Empty,
    Update {
        config_epoch: u64,
        nodename: NodeName,
        slots: SlotSet,
    },
    /// `module_id` is in the sender's host byte order on the wire; kept raw.
    Module {
        module_id: [u8; 8],
        module_type: u8,
        payload: Vec<u8>,
    },
    /// A type >= 11: the payload bytes after the header, uninterpreted.
    Unknown {
        payload: Vec<u8>,
    },
}
