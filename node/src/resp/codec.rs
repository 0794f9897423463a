//! RESP request parser and reply encoder. (Implemented by the resp work item.)

use bytes::{Bytes, BytesMut};

use super::Frame;

/// Bounds on what one request may allocate.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    pub max_bulk_len: usize,
    pub max_multibulk_len: usize,
    pub max_inline_len: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits { max_bulk_len: 512 * 1024 * 1024, max_multibulk_len: 1024 * 1024, max_inline_len: 64 * 1024 }
    }
}

/// A protocol error: the connection gets `-ERR Protocol error: ...` and is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("Protocol error: {0}")]
    Protocol(String),
}

/// Parses one request from the front of `buf`: `Ok(Some((args, consumed)))`,
/// `Ok(None)` if more bytes are needed.
pub fn parse_request(buf: &[u8], limits: &RequestLimits) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    let _ = (buf, limits);
    todo!()
}

/// Appends the encoding of `frame` for a RESP2 (`resp3 == false`) or RESP3 connection.
pub fn encode(frame: &Frame, resp3: bool, out: &mut BytesMut) {
    let _ = (frame, resp3, out);
    todo!()
}
