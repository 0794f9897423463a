//! Encoding and decoding of bus messages. (Implemented by the wire work item.)

use super::Message;

/// Why the first 8 bytes of a frame are unacceptable: redis logs
/// "Bad message length or signature received from Cluster bus." and closes the link.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrefixError {
    #[error("bad signature")]
    BadSignature,
    #[error("total length {0} below the minimum header length")]
    TooShort(u32),
}

/// Why a complete frame was dropped (the link stays up).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unsupported protocol version {0}")]
    Version(u16),
    #[error("Received invalid {type_name} packet of length {got} but expected length {expected}")]
    Length { type_name: &'static str, got: u64, expected: u64 },
    #[error("Received a {type_name} packet without proper padding ({len} bytes)")]
    ExtPadding { type_name: &'static str, len: u32 },
    #[error("Received invalid {type_name} packet with extension data that exceeds total packet length ({totlen})")]
    ExtOverflow { type_name: &'static str, totlen: u64 },
    #[error("truncated frame: {field}")]
    Truncated { field: &'static str },
}

/// Checks the 8-byte prefix (signature and totlen) and returns totlen.
pub fn check_prefix(prefix: &[u8; 8]) -> Result<u32, PrefixError> {
    let _ = prefix;
    todo!()
}

/// The totlen a frame of this header must have (redis's per-type check), given the whole frame.
pub fn expected_len(frame: &[u8]) -> Result<u64, DecodeError> {
    let _ = frame;
    todo!()
}

/// Decodes one complete frame (exactly `totlen` bytes).
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    let _ = frame;
    todo!()
}

/// Appends the encoding of `msg` to `out`; `totlen`, `count` and `extensions`
/// are computed from the body.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    let _ = (msg, out);
    todo!()
}
