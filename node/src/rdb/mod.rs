//! The RDB format of redis 7.0 (version 10): what `dump.rdb`, a full-sync
//! payload and a DUMP/RESTORE payload are made of. Reader and writer, pure
//! functions over bytes in memory (no I/O, no clock: times are passed in).
//!
//! - [`codec`]: lengths, strings (integer, LZF, raw), doubles, times;
//! - [`listpack`], [`ziplist`], [`intset`]: the compact blobs inside objects;
//! - [`object`]: each stored value type <-> its RDB object (the one place to
//!   extend when a value type is added);
//! - [`file`]: a whole file: header, aux fields, SELECT/RESIZEDB, keys with
//!   their expiries, EOF and the CRC64 trailer;
//! - [`dump`] / [`restore`]: DUMP payloads (object + RDB version + CRC64).
//!
//! Crates used: `lzf-rust` for LZF (liblzf-compatible), `crc` for CRC-64
//! (its `CRC_64_REDIS` is redis's Jones polynomial). The rest is written by
//! hand: no maintained crate reads *and* writes redis's RDB objects.

pub mod codec;
pub mod file;
pub mod intset;
pub mod listpack;
pub mod object;
pub mod ziplist;

#[cfg(test)]
mod tests;

use crate::store::Value;

/// The version this node writes (redis 7.0's), and the newest it reads.
pub const RDB_VERSION: u16 = 10;

/// Object types and opcodes (redis `rdb.h`).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;

    pub const OPCODE_FUNCTION2: u8 = 245;
    pub const OPCODE_FUNCTION: u8 = 246;
    pub const OPCODE_MODULE_AUX: u8 = 247;
    pub const OPCODE_IDLE: u8 = 248;
    pub const OPCODE_FREQ: u8 = 249;
    pub const OPCODE_AUX: u8 = 250;
    pub const OPCODE_RESIZEDB: u8 = 251;
    pub const OPCODE_EXPIRETIME_MS: u8 = 252;
    pub const OPCODE_EXPIRETIME: u8 = 253;
    pub const OPCODE_SELECTDB: u8 = 254;
    pub const OPCODE_EOF: u8 = 255;
}

/// Why RDB bytes were refused. Nothing is half-applied on an error: the
/// callers load into a fresh data set and swap it in only on success.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RdbError {
    #[error("Short read or truncated payload ({0})")]
    Truncated(&'static str),
    #[error("Wrong signature trying to load DB from file")]
    BadSignature,
    #[error("Can't handle RDB format version {0}")]
    Version(u32),
    #[error("Wrong RDB checksum expected: ({expected:x}) got ({got:x})")]
    Checksum { expected: u64, got: u64 },
    #[error("The RDB holds a {0} value, a type hearsay-node does not store")]
    UnsupportedType(&'static str),
    #[error("The RDB has keys in DB {0}: hearsay-node keeps only DB 0 (cluster mode)")]
    OtherDb(u64),
    #[error("RDB has duplicated key '{0}'")]
    DuplicateKey(String),
    #[error("Corrupt RDB: {0}")]
    Corrupt(String),
}

/// `rdbcompression` and `rdbchecksum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub compression: bool,
    pub checksum: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compression: true,
            checksum: true,
        }
    }
}

static CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

/// redis `crc64(0, data, len)`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// A DUMP payload: the value's RDB object, the RDB version (u16 LE) and a
/// CRC64 (LE) of everything before it (redis `createDumpPayload`).
pub fn dump(value: &Value, opts: Options) -> Vec<u8> {
    let mut w = codec::Writer::new(opts.compression);
    object::write(&mut w, None, value);
    w.raw(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&w.buf);
    w.raw(&crc.to_le_bytes());
    w.buf
}

/// Why RESTORE refused a payload (redis's two error replies).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestoreError {
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("Bad data format")]
    BadFormat(RdbError),
}

/// Checks a DUMP payload's footer (redis `verifyDumpPayload`) and decodes
/// its object. An empty collection is a bad format, as in redis.
pub fn restore(payload: &[u8]) -> Result<Value, RestoreError> {
    if payload.len() < 10 {
        return Err(RestoreError::VersionOrChecksum);
    }
    let footer = &payload[payload.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(RestoreError::VersionOrChecksum);
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(RestoreError::VersionOrChecksum);
    }
    let mut r = codec::Reader::new(&payload[..payload.len() - 10]);
    let rdb_type = r.byte("object type").map_err(RestoreError::BadFormat)?;
    match object::read(&mut r, rdb_type) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(RestoreError::BadFormat(RdbError::Corrupt(
            "empty key".into(),
        ))),
        Err(e) => Err(RestoreError::BadFormat(e)),
    }
}
