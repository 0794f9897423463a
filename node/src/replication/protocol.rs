//! The wire format of hearsay's own master -> replica replication, spoken on
//! the master's client port (redis's PSYNC/RDB are not implemented).
//!
//! ```text
//! replica -> master   *3 $12 HEARSAY.SYNC $40 <replica node id> $N <listening port>
//! master  -> replica  +FULLRESYNC <replid> <offset>\r\n
//!                     <snapshot: one RESP multibulk command per key, or per
//!                      chunk of a big list/set, then PEXPIREAT for TTLs>
//!                     +SNAPSHOT-END <keys>\r\n
//!                     <stream: every applied write as a RESP multibulk, in
//!                      apply order, and `PING` every repl-ping-replica-period>
//! replica -> master   *3 $8 REPLCONF $3 ACK $N <processed offset>   (every
//!                     second, and soon after applying data)
//! master  -> replica  -ERR ...\r\n instead of the header when it can't serve
//! ```
//!
//! Offsets count stream bytes, as redis's do: after the header the replica's
//! offset is `<offset>`, and every stream command (pings included) moves it by
//! its exact encoded length. The snapshot does not count (it is the RDB).

use bytes::{Buf, Bytes, BytesMut};

use crate::resp::{self, ParseError, RequestLimits};

/// The command a replica sends to start a sync.
pub const SYNC_COMMAND: &str = "HEARSAY.SYNC";

/// The keep-alive the master puts in the stream (counted in the offset).
pub const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

const FULLRESYNC: &str = "FULLRESYNC";
const SNAPSHOT_END: &str = "SNAPSHOT-END";

/// Longest status line we wait for (header, end marker, error).
const MAX_LINE: usize = 64 * 1024;

/// Why a replication peer's bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("bad RESP in replication stream: {0}")]
    Resp(#[from] ParseError),
    #[error("the master refused to sync: {0}")]
    Refused(String),
    #[error("bad sync header: {0:?}")]
    BadHeader(String),
    #[error("unexpected {what} in the {phase} phase of the replication stream")]
    Unexpected {
        what: &'static str,
        phase: &'static str,
    },
    #[error("status line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("bad {command}: {reason}")]
    BadCommand {
        command: &'static str,
        reason: &'static str,
    },
}

/// Appends `args` as a RESP multibulk (`*N` then `$len` per argument): the
/// one canonical form whose length the offset counts.
pub fn encode_command(args: &[Bytes], out: &mut Vec<u8>) {
    out.reserve(encoded_len(args));
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The length `encode_command` would produce, without building it (a master
/// with no replicas still counts its offset).
pub fn encoded_len(args: &[Bytes]) -> usize {
    fn digits(mut n: usize) -> usize {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    let mut len = 1 + digits(args.len()) + 2;
    for a in args {
        len += 1 + digits(a.len()) + 2 + a.len() + 2;
    }
    len
}

fn command(parts: &[&[u8]]) -> Vec<u8> {
    let args: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
    let mut out = Vec::new();
    encode_command(&args, &mut out);
    out
}

/// `HEARSAY.SYNC <replica id> <listening port>`.
pub fn sync_request(replica_id: &str, listening_port: u16) -> Vec<u8> {
    command(&[
        SYNC_COMMAND.as_bytes(),
        replica_id.as_bytes(),
        listening_port.to_string().as_bytes(),
    ])
}

/// `REPLCONF ACK <offset>`.
pub fn ack(offset: u64) -> Vec<u8> {
    command(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])
}

/// `+FULLRESYNC <replid> <offset>\r\n`
pub fn fullresync_header(replid: &str, offset: u64) -> Vec<u8> {
    format!("+{FULLRESYNC} {replid} {offset}\r\n").into_bytes()
}

/// `+SNAPSHOT-END <keys>\r\n`
pub fn snapshot_end(keys: u64) -> Vec<u8> {
    format!("+{SNAPSHOT_END} {keys}\r\n").into_bytes()
}

/// What a replica asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// The replica's cluster node ID (for events and logs).
    pub replica_id: String,
    /// The replica's client port (for INFO's `slaveN` and ROLE).
    pub listening_port: u16,
}

/// True if `args` is a sync request (any case, as redis command names).
pub fn is_sync_request(args: &[Bytes]) -> bool {
    args.first()
        .is_some_and(|a| a.eq_ignore_ascii_case(SYNC_COMMAND.as_bytes()))
}

/// Parses `HEARSAY.SYNC <replica id> <listening port>`.
pub fn parse_sync_request(args: &[Bytes]) -> Result<SyncRequest, ProtocolError> {
    let bad = |reason| ProtocolError::BadCommand {
        command: SYNC_COMMAND,
        reason,
    };
    let [_, id, port] = args else {
        return Err(bad("wrong number of arguments"));
    };
    let id = std::str::from_utf8(id).map_err(|_| bad("replica id is not text"))?;
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad("replica id is not a 40-character node id"));
    }
    let listening_port = std::str::from_utf8(port)
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| bad("listening port is not a port number"))?;
    Ok(SyncRequest {
        replica_id: id.to_string(),
        listening_port,
    })
}

/// Parses `REPLCONF ACK <offset>` (the only thing a replica sends after syncing).
pub fn parse_ack(args: &[Bytes]) -> Result<u64, ProtocolError> {
    let bad = |reason| ProtocolError::BadCommand {
        command: "REPLCONF ACK",
        reason,
    };
    let [cmd, sub, offset] = args else {
        return Err(bad("wrong number of arguments"));
    };
    if !cmd.eq_ignore_ascii_case(b"replconf") || !sub.eq_ignore_ascii_case(b"ack") {
        return Err(bad("not REPLCONF ACK"));
    }
    std::str::from_utf8(offset)
        .ok()
        .and_then(|o| o.parse::<u64>().ok())
        .ok_or_else(|| bad("offset is not an unsigned integer"))
}

/// One decoded element of the master's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// The header: the master's replication ID and the offset the snapshot is at.
    FullResync { replid: String, offset: u64 },
    /// A snapshot command (before `SnapshotEnd`) or a stream command (after).
    /// `len` is the number of bytes it took, which stream commands add to the
    /// offset. `args` is never empty.
    Command { args: Vec<Bytes>, len: usize },
    /// The snapshot is complete; `keys` is how many keys it held.
    SnapshotEnd { keys: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Header,
    Snapshot,
    Stream,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Header => "header",
            Phase::Snapshot => "snapshot",
            Phase::Stream => "stream",
        }
    }
}

/// Decodes what a master sends, as the replica reads it: a pure function of
/// the buffer plus the phase (header, snapshot, stream), so any split of the
/// bytes into reads gives the same items.
#[derive(Debug)]
pub struct StreamDecoder {
    phase: Phase,
    limits: RequestLimits,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        StreamDecoder::new()
    }
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder {
            phase: Phase::Header,
            limits: RequestLimits::default(),
        }
    }

    /// True once the snapshot has ended and only stream commands follow.
    pub fn streaming(&self) -> bool {
        self.phase == Phase::Stream
    }

    /// Takes the next item off the front of `buf`; `Ok(None)` means "read more".
    /// After an error the connection is unusable (the caller drops it).
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, ProtocolError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        match (first, self.phase) {
            (b'*', Phase::Header) => Err(ProtocolError::Unexpected {
                what: "command",
                phase: "header",
            }),
            (b'*', _) => {
                reject_empty_multibulk(buf)?;
                match resp::parse_request(buf, &self.limits)? {
                    None => Ok(None),
                    Some((args, len)) => {
                        buf.advance(len);
                        Ok(Some(Item::Command { args, len }))
                    }
                }
            }
            (b'+' | b'-', _) => {
                let Some(line) = take_line(buf)? else {
                    return Ok(None);
                };
                self.status_line(first, &line).map(Some)
            }
            _ => Err(ProtocolError::Unexpected {
                what: "byte",
                phase: self.phase.name(),
            }),
        }
    }

    fn status_line(&mut self, kind: u8, line: &str) -> Result<Item, ProtocolError> {
        if kind == b'-' {
            return Err(ProtocolError::Refused(line.to_string()));
        }
        let mut words = line.split(' ');
        match (words.next(), self.phase) {
            (Some(FULLRESYNC), Phase::Header) => {
                let replid = words.next().unwrap_or("");
                let offset = words.next().and_then(|o| o.parse::<u64>().ok());
                match (offset, words.next()) {
                    (Some(offset), None) if replid.len() == 40 => {
                        self.phase = Phase::Snapshot;
                        Ok(Item::FullResync {
                            replid: replid.to_string(),
                            offset,
                        })
                    }
                    _ => Err(ProtocolError::BadHeader(line.to_string())),
                }
            }
            (Some(SNAPSHOT_END), Phase::Snapshot) => {
                match (words.next().and_then(|k| k.parse().ok()), words.next()) {
                    (Some(keys), None) => {
                        self.phase = Phase::Stream;
                        Ok(Item::SnapshotEnd { keys })
                    }
                    _ => Err(ProtocolError::BadHeader(line.to_string())),
                }
            }
            (Some(FULLRESYNC), _) | (Some(SNAPSHOT_END), _) => Err(ProtocolError::Unexpected {
                what: "status line",
                phase: self.phase.name(),
            }),
            _ if self.phase == Phase::Header => Err(ProtocolError::BadHeader(line.to_string())),
            _ => Err(ProtocolError::Unexpected {
                what: "status line",
                phase: self.phase.name(),
            }),
        }
    }
}

/// A master never sends `*0` or `*-1`; refusing them up front also stops the
/// request parser from skipping them and reading what follows as an inline
/// command, which would make the byte count of one item span two.
fn reject_empty_multibulk(buf: &[u8]) -> Result<(), ProtocolError> {
    let Some(cr) = buf.iter().position(|&b| b == b'\r') else {
        return Ok(());
    };
    match buf.get(1..cr).and_then(resp::string2ll) {
        Some(n) if n <= 0 => Err(ProtocolError::Unexpected {
            what: "empty command",
            phase: "stream",
        }),
        _ => Ok(()),
    }
}

/// One `+...\r\n` / `-...\r\n` line without its type byte and terminator.
fn take_line(buf: &mut BytesMut) -> Result<Option<String>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_LINE {
            return Err(ProtocolError::LineTooLong);
        }
        return Ok(None);
    };
    if nl > MAX_LINE {
        return Err(ProtocolError::LineTooLong);
    }
    let line = buf.split_to(nl + 1);
    let body = line.get(1..nl).unwrap_or_default();
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    Ok(Some(String::from_utf8_lossy(body).into_owned()))
}

/// Decodes what a replica sends after its sync request: `REPLCONF ACK`s.
pub fn next_ack(buf: &mut BytesMut) -> Result<Option<u64>, ProtocolError> {
    let limits = RequestLimits {
        max_bulk_len: 64,
        max_multibulk_len: 8,
        max_inline_len: 1024,
    };
    loop {
        match resp::parse_request(buf, &limits)? {
            None => return Ok(None),
            Some((args, used)) => {
                buf.advance(used);
                if args.is_empty() {
                    continue;
                }
                return parse_ack(&args).map(Some);
            }
        }
    }
}
