//! The wire format of redis 7.0 replication, spoken on the master's client
//! port:
//!
//! ```text
//! replica -> master   PING                                  +PONG
//!                     [AUTH [user] pass]                    +OK
//!                     REPLCONF listening-port <port>        +OK
//!                     [REPLCONF ip-address <ip>]            +OK
//!                     REPLCONF capa eof capa psync2         +OK
//!                     PSYNC <replid> <offset+1> | PSYNC ? -1
//! master  -> replica  ("\n" keep-alives while a snapshot is pending)
//!                     +FULLRESYNC <replid> <offset>\r\n
//!                       $<len>\r\n<RDB>  or  $EOF:<40 bytes mark>\r\n<RDB><mark>
//!                     | +CONTINUE [<replid>]\r\n
//!                     then the stream: every applied write as a RESP
//!                     multibulk (SELECT, PING, REPLCONF GETACK * included)
//! replica -> master   REPLCONF ACK <processed offset>   (every second, and
//!                     at once on GETACK)
//! ```
//!
//! Offsets count stream bytes: every stream command moves them by its exact
//! encoded length. [`MasterReader`] decodes what a master sends, a pure
//! function of the bytes and the phase, so any split into reads gives the
//! same items.

use bytes::{Buf, Bytes, BytesMut};

use crate::resp::{self, ParseError, RequestLimits};

/// The keep-alive the master puts in the stream (counted in the offset).
pub const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
/// The SELECT a stream starts with after a full sync.
pub const SELECT_0: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n";
/// Asks the replicas to ack at once (a WAIT is blocked).
pub const GETACK: &[u8] = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";

/// Longest status line we wait for (reply, error, bulk header).
const MAX_LINE: usize = 64 * 1024;
/// The size of the end mark of a diskless payload.
pub const EOF_MARK_LEN: usize = 40;

/// Why a replication peer's bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("bad RESP in replication stream: {0}")]
    Resp(#[from] ParseError),
    #[error("bad bulk header from master: {0:?}")]
    BadBulkHeader(String),
    #[error("unexpected {what} in the {phase} phase of the replication stream")]
    Unexpected {
        what: &'static str,
        phase: &'static str,
    },
    #[error("status line longer than {MAX_LINE} bytes")]
    LineTooLong,
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

/// The length `encode_command` would produce, without building it.
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

/// A command from string parts.
pub fn command(parts: &[&[u8]]) -> Vec<u8> {
    let args: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
    let mut out = Vec::new();
    encode_command(&args, &mut out);
    out
}

/// `REPLCONF ACK <offset>`.
pub fn ack(offset: u64) -> Vec<u8> {
    command(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])
}

/// `PSYNC <replid> <offset>`.
pub fn psync(replid: &str, offset: i64) -> Vec<u8> {
    command(&[b"PSYNC", replid.as_bytes(), offset.to_string().as_bytes()])
}

/// The replica's handshake after PING, pipelined as redis sends it:
/// `[AUTH]`, `REPLCONF listening-port`, `[REPLCONF ip-address]`,
/// `REPLCONF capa eof capa psync2`. Returns the bytes and how many replies
/// to expect, each with what it was.
pub fn handshake(
    auth: Option<(&str, &str)>,
    listening_port: u16,
    announce_ip: Option<&str>,
) -> (Vec<u8>, Vec<HandshakeStep>) {
    let mut out = Vec::new();
    let mut steps = Vec::new();
    if let Some((user, pass)) = auth {
        if user.is_empty() {
            out.extend(command(&[b"AUTH", pass.as_bytes()]));
        } else {
            out.extend(command(&[b"AUTH", user.as_bytes(), pass.as_bytes()]));
        }
        steps.push(HandshakeStep::Auth);
    }
    out.extend(command(&[
        b"REPLCONF",
        b"listening-port",
        listening_port.to_string().as_bytes(),
    ]));
    steps.push(HandshakeStep::Port);
    if let Some(ip) = announce_ip {
        out.extend(command(&[b"REPLCONF", b"ip-address", ip.as_bytes()]));
        steps.push(HandshakeStep::Ip);
    }
    out.extend(command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]));
    steps.push(HandshakeStep::Capa);
    (out, steps)
}

/// One pipelined handshake command whose reply the replica awaits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeStep {
    Auth,
    Port,
    Ip,
    Capa,
}

/// How the master answered PSYNC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PsyncReply {
    FullResync {
        replid: String,
        offset: u64,
    },
    Continue {
        replid: Option<String>,
    },
    /// `-NOMASTERLINK`, `-LOADING`: try again later.
    TryLater(String),
    /// Any other error or line.
    Error(String),
}

/// Parses the reply line to PSYNC (redis `slaveTryPartialResynchronization`).
pub fn parse_psync_reply(line: &str) -> PsyncReply {
    if let Some(rest) = line.strip_prefix("+FULLRESYNC") {
        let mut w = rest.split_whitespace();
        return match (w.next(), w.next().and_then(|o| o.parse::<u64>().ok())) {
            (Some(id), Some(offset)) if id.len() == 40 => PsyncReply::FullResync {
                replid: id.to_string(),
                offset,
            },
            _ => PsyncReply::Error(line.to_string()),
        };
    }
    if let Some(rest) = line.strip_prefix("+CONTINUE") {
        let id = rest.trim();
        return PsyncReply::Continue {
            replid: (id.len() == 40).then(|| id.to_string()),
        };
    }
    if line.starts_with("-NOMASTERLINK") || line.starts_with("-LOADING") {
        return PsyncReply::TryLater(line.to_string());
    }
    PsyncReply::Error(line.to_string())
}

/// One decoded element of a master's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A reply line (`+...` or `-...`, terminator stripped, type kept).
    Line(String),
    /// The snapshot, whole.
    Payload(Vec<u8>),
    /// A stream command and its exact bytes (what the offset counts).
    Command { args: Vec<Bytes>, raw: Bytes },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Lines,
    BulkHeader,
    Bulk { left: u64 },
    BulkEof { mark: Vec<u8> },
    Stream,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Lines => "handshake",
            Phase::BulkHeader | Phase::Bulk { .. } | Phase::BulkEof { .. } => "snapshot",
            Phase::Stream => "stream",
        }
    }
}

/// Decodes what a master sends, as the replica reads it. The caller moves
/// it from reply lines to the snapshot ([`MasterReader::expect_snapshot`])
/// and to the stream ([`MasterReader::expect_stream`]); the snapshot phase
/// ends by itself with an [`Item::Payload`].
#[derive(Debug)]
pub struct MasterReader {
    phase: Phase,
    payload: Vec<u8>,
    /// The payload's size when the header gave one.
    total: Option<u64>,
    limits: RequestLimits,
}

impl Default for MasterReader {
    fn default() -> Self {
        MasterReader::new()
    }
}

impl MasterReader {
    pub fn new() -> MasterReader {
        MasterReader {
            phase: Phase::Lines,
            payload: Vec::new(),
            total: None,
            limits: RequestLimits::default(),
        }
    }

    /// After `+FULLRESYNC`: a `$` header and the RDB come next.
    pub fn expect_snapshot(&mut self) {
        self.phase = Phase::BulkHeader;
        self.payload = Vec::new();
        self.total = None;
    }

    /// After the snapshot or `+CONTINUE`: commands only.
    pub fn expect_stream(&mut self) {
        self.phase = Phase::Stream;
    }

    pub fn streaming(&self) -> bool {
        self.phase == Phase::Stream
    }

    /// Snapshot progress: (announced size if any, bytes so far).
    pub fn progress(&self) -> (Option<u64>, u64) {
        (self.total, self.payload.len() as u64)
    }

    /// Takes the next item off the front of `buf`; `Ok(None)` means "read
    /// more". After an error the connection is unusable.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, ProtocolError> {
        loop {
            match &mut self.phase {
                Phase::Lines => {
                    // Empty lines are keep-alives before a reply.
                    while buf.first() == Some(&b'\n') {
                        buf.advance(1);
                    }
                    return Ok(take_line(buf)?.map(Item::Line));
                }
                Phase::BulkHeader => {
                    while buf.first() == Some(&b'\n') {
                        buf.advance(1);
                    }
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    if let Some(err) = line.strip_prefix('-') {
                        return Err(ProtocolError::BadBulkHeader(format!("-{err}")));
                    }
                    let Some(rest) = line.strip_prefix('$') else {
                        return Err(ProtocolError::BadBulkHeader(line));
                    };
                    if let Some(mark) = rest.strip_prefix("EOF:") {
                        if mark.len() != EOF_MARK_LEN {
                            return Err(ProtocolError::BadBulkHeader(line));
                        }
                        self.phase = Phase::BulkEof {
                            mark: mark.as_bytes().to_vec(),
                        };
                    } else {
                        let left = rest
                            .parse::<u64>()
                            .map_err(|_| ProtocolError::BadBulkHeader(line.clone()))?;
                        self.total = Some(left);
                        self.phase = Phase::Bulk { left };
                    }
                }
                Phase::Bulk { left } => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    self.payload.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    *left -= n as u64;
                    if *left > 0 {
                        return Ok(None);
                    }
                    self.phase = Phase::Lines;
                    return Ok(Some(Item::Payload(std::mem::take(&mut self.payload))));
                }
                Phase::BulkEof { mark } => {
                    // The mark ends the payload; anything after it is stream.
                    let take = buf.len();
                    self.payload.extend_from_slice(&buf[..take]);
                    buf.advance(take);
                    let m = mark.len();
                    if let Some(pos) = find_tail_mark(&self.payload, mark, take + m) {
                        let rest = self.payload.split_off(pos + m);
                        self.payload.truncate(pos);
                        // Put back what followed the mark.
                        let mut back = BytesMut::from(&rest[..]);
                        back.extend_from_slice(buf);
                        *buf = back;
                        self.phase = Phase::Lines;
                        return Ok(Some(Item::Payload(std::mem::take(&mut self.payload))));
                    }
                    return Ok(None);
                }
                Phase::Stream => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'*' {
                        return Err(ProtocolError::Unexpected {
                            what: "byte",
                            phase: self.phase.name(),
                        });
                    }
                    reject_empty_multibulk(buf)?;
                    return match resp::parse_request(buf, &self.limits)? {
                        None => Ok(None),
                        Some((args, len)) => {
                            let raw = buf.split_to(len).freeze();
                            Ok(Some(Item::Command { args, raw }))
                        }
                    };
                }
            }
        }
    }
}

/// The first occurrence of `mark` that ends within the last `window` bytes
/// of `data` (earlier bytes were already searched).
fn find_tail_mark(data: &[u8], mark: &[u8], window: usize) -> Option<usize> {
    let m = mark.len();
    if data.len() < m {
        return None;
    }
    let start = data.len().saturating_sub(window + m);
    data[start..]
        .windows(m)
        .position(|w| w == mark)
        .map(|p| start + p)
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

/// One line without its terminator (`\r\n` or a bare `\n`).
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
    let body = &line[..nl];
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    Ok(Some(String::from_utf8_lossy(body).into_owned()))
}

/// What a replica sends once it is one: `REPLCONF ACK <offset> [...]`.
/// Anything else is ignored (redis would run it; a replica sends nothing else).
pub fn next_ack(buf: &mut BytesMut) -> Result<Option<Option<u64>>, ProtocolError> {
    let limits = RequestLimits {
        max_bulk_len: 128,
        max_multibulk_len: 16,
        max_inline_len: 1024,
    };
    match resp::parse_request(buf, &limits)? {
        None => Ok(None),
        Some((args, used)) => {
            buf.advance(used);
            let ack = match &args[..] {
                [cmd, sub, offset, ..]
                    if cmd.eq_ignore_ascii_case(b"replconf")
                        && sub.eq_ignore_ascii_case(b"ack") =>
                {
                    resp::string2ll(offset).and_then(|o| u64::try_from(o).ok())
                }
                _ => None,
            };
            Ok(Some(ack))
        }
    }
}

/// One unit of a master's stream: each command's arguments with its raw
/// bytes; a MULTI ... EXEC block is one unit, applied whole.
pub type StreamUnit = Vec<(Vec<Bytes>, Bytes)>;

/// A unit's raw bytes as one buffer (what the replica's own backlog and
/// sub-replicas get).
pub fn unit_bytes(unit: &[(Vec<Bytes>, Bytes)]) -> Bytes {
    match unit {
        [(_, raw)] => raw.clone(),
        _ => {
            let mut all = BytesMut::new();
            for (_, r) in unit {
                all.extend_from_slice(r);
            }
            all.freeze()
        }
    }
}
