//! The RDB primitives: lengths, strings (raw, integer-encoded and
//! LZF-compressed), doubles and times, as redis 7.0's `rdb.c` writes and
//! reads them.
//!
//! [`Reader`] works on a byte slice already in memory (a DUMP payload, a
//! file, a replication payload received whole). Every length it reads is
//! checked against what is left before anything is allocated, so a hostile
//! length can't make it allocate more than the input could hold.

use bytes::Bytes;

use super::RdbError;
use crate::resp::string2ll;

/// Length-prefix kinds (the first byte's top two bits).
const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const ENCVAL: u8 = 3;

/// Special string encodings (after an `ENCVAL` length byte).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// The longest string a payload may claim after decompression: redis's
/// `proto-max-bulk-len` default (512 MB). LZF expands at most ~100x, so a
/// claim is also bounded by the compressed size (see [`Reader::string`]).
const MAX_STRING: u64 = 512 * 1024 * 1024;

/// Appends RDB primitives to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
    /// `rdbcompression`: strings over 20 bytes are LZF-compressed when that
    /// saves at least 4 bytes.
    compress: bool,
    /// Reused output buffer for LZF.
    scratch: Vec<u8>,
}

impl Writer {
    pub fn new(compress: bool) -> Writer {
        Writer {
            buf: Vec::new(),
            compress,
            scratch: Vec::new(),
        }
    }

    pub fn with_capacity(compress: bool, capacity: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(capacity),
            compress,
            scratch: Vec::new(),
        }
    }

    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// redis `rdbSaveLen`.
    pub fn len(&mut self, len: u64) {
        if len < 1 << 6 {
            self.buf.push(len as u8);
        } else if len < 1 << 14 {
            self.buf.push(((len >> 8) as u8) | (LEN_14BIT << 6));
            self.buf.push(len as u8);
        } else if len <= u64::from(u32::MAX) {
            self.buf.push(LEN_32BIT);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        } else {
            self.buf.push(LEN_64BIT);
            self.buf.extend_from_slice(&len.to_be_bytes());
        }
    }

    /// redis `rdbSaveRawString`: integer encoding for short canonical
    /// integers that fit 32 bits, else LZF when enabled and worth it, else
    /// the bytes as they are.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Some(v) = string2ll(s) {
                if self.try_int(v) {
                    return;
                }
            }
        }
        if self.compress && s.len() > 20 && self.lzf(s) {
            return;
        }
        self.len(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    /// redis `rdbSaveLongLongAsStringObject`.
    pub fn int_string(&mut self, v: i64) {
        if !self.try_int(v) {
            let text = v.to_string();
            self.len(text.len() as u64);
            self.buf.extend_from_slice(text.as_bytes());
        }
    }

    /// redis `rdbEncodeInteger`: true if `v` fit 8, 16 or 32 bits.
    fn try_int(&mut self, v: i64) -> bool {
        let enc = |e: u8| (ENCVAL << 6) | e;
        if let Ok(v) = i8::try_from(v) {
            self.buf.push(enc(ENC_INT8));
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i16::try_from(v) {
            self.buf.push(enc(ENC_INT16));
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.buf.push(enc(ENC_INT32));
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else {
            return false;
        }
        true
    }

    /// redis `rdbSaveLzfStringObject`: the compressed form must save at
    /// least 4 bytes, else nothing is written and false returned.
    fn lzf(&mut self, s: &[u8]) -> bool {
        let room = s.len() - 4;
        if self.scratch.len() < room {
            self.scratch.resize(room, 0);
        }
        let Ok(n) = lzf_rust::compress(s, &mut self.scratch[..room]) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        self.buf.push((ENCVAL << 6) | ENC_LZF);
        self.len(n as u64);
        self.len(s.len() as u64);
        let Self { buf, scratch, .. } = self;
        buf.extend_from_slice(&scratch[..n]);
        true
    }

    /// redis `rdbSaveBinaryDoubleValue` (RDB 8+).
    pub fn binary_double(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// redis `rdbSaveMillisecondTime`.
    pub fn millis(&mut self, ms: i64) {
        self.buf.extend_from_slice(&ms.to_le_bytes());
    }
}

/// Reads RDB primitives off a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RdbError> {
        if n > self.remaining() {
            return Err(RdbError::Truncated(what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn byte(&mut self, what: &'static str) -> Result<u8, RdbError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RdbError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// redis `rdbLoadLenByRef`: `(value, is_encoded)`.
    fn len_or_encoding(&mut self, what: &'static str) -> Result<(u64, bool), RdbError> {
        let b = self.byte(what)?;
        match (b & 0xC0) >> 6 {
            ENCVAL => Ok((u64::from(b & 0x3F), true)),
            LEN_6BIT => Ok((u64::from(b & 0x3F), false)),
            LEN_14BIT => {
                let b2 = self.byte(what)?;
                Ok(((u64::from(b & 0x3F) << 8) | u64::from(b2), false))
            }
            _ if b == LEN_32BIT => Ok((u64::from(u32::from_be_bytes(self.array(what)?)), false)),
            _ if b == LEN_64BIT => Ok((u64::from_be_bytes(self.array(what)?), false)),
            _ => Err(RdbError::Corrupt(format!(
                "Unknown length encoding {b} in rdbLoadLen()"
            ))),
        }
    }

    /// A plain length (an encoded-string marker here is corruption).
    pub fn len(&mut self, what: &'static str) -> Result<u64, RdbError> {
        match self.len_or_encoding(what)? {
            (n, false) => Ok(n),
            (_, true) => Err(RdbError::Corrupt(format!(
                "unexpected string encoding in {what}"
            ))),
        }
    }

    /// A count of items that each take at least `min_item` bytes: a count
    /// the rest of the input can't hold is corruption, caught before any
    /// allocation sized by it.
    pub fn count(&mut self, what: &'static str, min_item: usize) -> Result<usize, RdbError> {
        let n = self.len(what)?;
        let most = (self.remaining() / min_item.max(1)) as u64;
        if n > most {
            return Err(RdbError::Truncated(what));
        }
        Ok(n as usize)
    }

    /// redis `rdbGenericLoadStringObject`, as bytes.
    pub fn string(&mut self, what: &'static str) -> Result<Bytes, RdbError> {
        let (n, encoded) = self.len_or_encoding(what)?;
        if !encoded {
            let n = usize::try_from(n).map_err(|_| RdbError::Truncated(what))?;
            return Ok(Bytes::copy_from_slice(self.take(n, what)?));
        }
        match n as u8 {
            ENC_INT8 => Ok(int_bytes(i64::from(i8::from_le_bytes(self.array(what)?)))),
            ENC_INT16 => Ok(int_bytes(i64::from(i16::from_le_bytes(self.array(what)?)))),
            ENC_INT32 => Ok(int_bytes(i64::from(i32::from_le_bytes(self.array(what)?)))),
            ENC_LZF => {
                let clen = self.len(what)?;
                let len = self.len(what)?;
                // LZF's best case is a 2-byte back reference per 264 bytes.
                if len > MAX_STRING || len > clen.saturating_mul(140).saturating_add(64) {
                    return Err(RdbError::Corrupt(format!(
                        "LZF string claims {len} bytes from {clen} compressed"
                    )));
                }
                let clen = usize::try_from(clen).map_err(|_| RdbError::Truncated(what))?;
                let input = self.take(clen, what)?;
                let mut out = vec![0u8; len as usize];
                match lzf_rust::decompress(input, &mut out) {
                    Ok(got) if got == out.len() => Ok(Bytes::from(out)),
                    _ => Err(RdbError::Corrupt("Invalid LZF compressed string".into())),
                }
            }
            e => Err(RdbError::Corrupt(format!(
                "Unknown RDB string encoding type {e}"
            ))),
        }
    }

    /// redis `rdbLoadDoubleValue` (the text form of old zsets).
    pub fn text_double(&mut self, what: &'static str) -> Result<f64, RdbError> {
        match self.byte(what)? {
            255 => Ok(f64::NEG_INFINITY),
            254 => Ok(f64::INFINITY),
            253 => Ok(f64::NAN),
            n => {
                let text = self.take(usize::from(n), what)?;
                std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .ok_or_else(|| RdbError::Corrupt(format!("bad double in {what}")))
            }
        }
    }

    pub fn binary_double(&mut self, what: &'static str) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    pub fn millis(&mut self, what: &'static str) -> Result<i64, RdbError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// The old seconds-precision expire (`RDB_OPCODE_EXPIRETIME`).
    pub fn seconds(&mut self, what: &'static str) -> Result<i32, RdbError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
}

/// An integer as the decimal text redis stores for it.
pub fn int_bytes(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}
