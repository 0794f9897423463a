//! A whole RDB file (redis `rdbSaveRio` / `rdbLoadRio`):
//!
//! ```text
//! "REDIS0010"
//! AUX redis-ver, redis-bits, ctime, used-mem, [repl-stream-db, repl-id, repl-offset], aof-base
//! SELECTDB 0, RESIZEDB <keys> <expires>
//! ([EXPIRETIME_MS <ms>] <type> <key> <object>)*
//! EOF <crc64 LE, 0 when rdbchecksum is off>
//! ```
//!
//! The same bytes are `dump.rdb` and the payload of a full sync.

use bytes::Bytes;

use super::codec::{Reader, Writer};
use super::{crc64, object, types, Options, RdbError, RDB_VERSION};
use crate::store::{Db, Value};

/// The replication position an RDB stands for (redis `rdbSaveInfo`): lets
/// a restarted replica continue partially, and a restarted master keep its
/// history as `replid2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplInfo {
    pub stream_db: i64,
    pub replid: String,
    pub offset: u64,
}

/// What the header of a loaded file said, beyond the keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aux {
    pub redis_ver: Option<String>,
    pub ctime: Option<i64>,
    pub used_mem: Option<i64>,
    pub repl_stream_db: Option<i64>,
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
}

impl Aux {
    /// The replication info, when the file carries all of it.
    pub fn repl_info(&self) -> Option<ReplInfo> {
        match (&self.repl_id, self.repl_offset) {
            (Some(id), Some(off)) if id.len() == 40 && off >= 0 => Some(ReplInfo {
                stream_db: self.repl_stream_db.unwrap_or(0),
                replid: id.clone(),
                offset: off as u64,
            }),
            _ => None,
        }
    }
}

/// Writes a file key by key.
#[derive(Debug)]
pub struct FileWriter {
    w: Writer,
    checksum: bool,
    keys: u64,
}

impl FileWriter {
    /// The signature and aux fields. `ctime` in Unix seconds.
    pub fn new(
        opts: Options,
        ctime: u64,
        used_mem: u64,
        repl: Option<&ReplInfo>,
        capacity: usize,
    ) -> FileWriter {
        let mut w = Writer::with_capacity(opts.compression, capacity);
        w.raw(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let mut aux = |k: &str, v: &str| {
            w.byte(types::OPCODE_AUX);
            w.string(k.as_bytes());
            w.string(v.as_bytes());
        };
        aux("redis-ver", "7.0.15");
        aux("redis-bits", "64");
        aux("ctime", &ctime.to_string());
        aux("used-mem", &used_mem.to_string());
        if let Some(r) = repl {
            aux("repl-stream-db", &r.stream_db.to_string());
            aux("repl-id", &r.replid);
            aux("repl-offset", &r.offset.to_string());
        }
        aux("aof-base", "0");
        FileWriter {
            w,
            checksum: opts.checksum,
            keys: 0,
        }
    }

    /// SELECTDB and RESIZEDB before a database's keys (redis writes them
    /// only for a non-empty database).
    pub fn begin_db(&mut self, db: u64, keys: u64, expires: u64) {
        self.w.byte(types::OPCODE_SELECTDB);
        self.w.len(db);
        self.w.byte(types::OPCODE_RESIZEDB);
        self.w.len(keys);
        self.w.len(expires);
    }

    /// One key (redis `rdbSaveKeyValuePair`). `expire_at` in Unix ms.
    pub fn entry(&mut self, key: &[u8], value: &Value, expire_at: Option<u64>) {
        if let Some(at) = expire_at {
            self.w.byte(types::OPCODE_EXPIRETIME_MS);
            self.w.millis(at as i64);
        }
        object::write(&mut self.w, Some(key), value);
        self.keys += 1;
    }

    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// EOF and the checksum; the finished file.
    pub fn finish(mut self) -> Vec<u8> {
        self.w.byte(types::OPCODE_EOF);
        let crc = if self.checksum { crc64(&self.w.buf) } else { 0 };
        self.w.raw(&crc.to_le_bytes());
        self.w.buf
    }
}

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub aux: Aux,
    pub version: u32,
    /// Keys handed to the sink.
    pub keys: u64,
    /// Empty collections skipped (redis skips them with a warning).
    pub empty_skipped: u64,
    /// Function libraries skipped (hearsay-node runs no functions).
    pub functions_skipped: u64,
    /// The trailer was 0: written with rdbchecksum off, not checked.
    pub unchecked: bool,
    /// Keys left out for having expired ([`load_db`] on a master).
    pub expired_skipped: u64,
}

/// Reads a whole file. Every key goes to `sink(key, value, expire_at_ms)`,
/// which may refuse it (a duplicate) by returning an error. Nothing here
/// touches a data set: on any error the caller drops what the sink built.
pub fn load(
    data: &[u8],
    mut sink: impl FnMut(Bytes, Value, Option<u64>) -> Result<(), RdbError>,
) -> Result<Loaded, RdbError> {
    load_tracked(data, |key, value, expire, _| sink(key, value, expire))
}

/// [`load`], telling the sink how many bytes of `data` were read so far.
pub fn load_tracked(
    data: &[u8],
    mut sink: impl FnMut(Bytes, Value, Option<u64>, usize) -> Result<(), RdbError>,
) -> Result<Loaded, RdbError> {
    let mut r = Reader::new(data);
    let magic = r.take(9, "signature")?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError::BadSignature);
    }
    let version = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or(RdbError::BadSignature)?;
    if version < 1 || version > u32::from(RDB_VERSION) {
        return Err(RdbError::Version(version));
    }
    let mut out = Loaded {
        version,
        ..Loaded::default()
    };
    let mut expire_at: Option<i64> = None;
    loop {
        let t = r.byte("type")?;
        match t {
            types::OPCODE_EXPIRETIME => {
                expire_at = Some(i64::from(r.seconds("expire time")?) * 1000);
                continue;
            }
            types::OPCODE_EXPIRETIME_MS => {
                expire_at = Some(r.millis("expire time")?);
                continue;
            }
            types::OPCODE_FREQ => {
                r.byte("LFU frequency")?;
                continue;
            }
            types::OPCODE_IDLE => {
                r.len("LRU idle time")?;
                continue;
            }
            types::OPCODE_EOF => break,
            types::OPCODE_SELECTDB => {
                let db = r.len("SELECT db")?;
                if db != 0 {
                    // Keys of other databases can't be kept; a SELECT with
                    // no keys after it (redis never writes one) is harmless,
                    // but treating any as an error is simpler and honest.
                    return Err(RdbError::OtherDb(db));
                }
                continue;
            }
            types::OPCODE_RESIZEDB => {
                r.len("RESIZEDB keys")?;
                r.len("RESIZEDB expires")?;
                continue;
            }
            types::OPCODE_AUX => {
                let k = r.string("aux key")?;
                let v = r.string("aux value")?;
                read_aux(&mut out.aux, &k, &v);
                continue;
            }
            types::OPCODE_MODULE_AUX => return Err(RdbError::UnsupportedType("module aux data")),
            types::OPCODE_FUNCTION => {
                return Err(RdbError::UnsupportedType(
                    "function (7.0 release candidate format)",
                ))
            }
            types::OPCODE_FUNCTION2 => {
                // One library: its code as a string. hearsay-node runs no
                // functions; dropping them loses no keys.
                r.string("function library")?;
                out.functions_skipped += 1;
                continue;
            }
            _ => {}
        }
        let key = r.string("key")?;
        let value = object::read(&mut r, t)?;
        let expire = expire_at.take();
        match value {
            None => out.empty_skipped += 1,
            Some(v) => {
                sink(key, v, expire.map(|at| at.max(0) as u64), r.pos())?;
                out.keys += 1;
            }
        }
    }
    if version >= 5 {
        let body = r.pos();
        let trailer = r.take(8, "checksum")?;
        let got = u64::from_le_bytes(
            trailer
                .try_into()
                .map_err(|_| RdbError::Truncated("checksum"))?,
        );
        if got == 0 {
            out.unchecked = true;
        } else {
            let expected = crc64(&data[..body]);
            if expected != got {
                return Err(RdbError::Checksum { expected, got });
            }
        }
    }
    Ok(out)
}

fn read_aux(aux: &mut Aux, k: &[u8], v: &[u8]) {
    let text = || String::from_utf8_lossy(v).into_owned();
    let int = || {
        std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
    };
    match k {
        b"redis-ver" => aux.redis_ver = Some(text()),
        b"ctime" => aux.ctime = int(),
        b"used-mem" => aux.used_mem = int(),
        b"repl-stream-db" => aux.repl_stream_db = int(),
        b"repl-id" if v.len() == 40 => aux.repl_id = Some(text()),
        b"repl-offset" => aux.repl_offset = int(),
        // redis-bits, aof-base, aof-preamble, lua and unknown fields: ignored,
        // as the AUX contract says.
        _ => {}
    }
}

/// A whole data set as one RDB file (redis `rdbSaveRio`). `ctime` in Unix
/// seconds.
pub fn write_db(db: &Db, opts: Options, ctime: u64, repl: Option<&ReplInfo>) -> Vec<u8> {
    // A rough size guess saves most of the reallocation for big data sets.
    let mut w = FileWriter::new(opts, ctime, 0, repl, 64 + db.len() * 32);
    if !db.is_empty() {
        w.begin_db(0, db.len() as u64, db.expires_count() as u64);
        for (key, entry) in db.entries() {
            w.entry(key, &entry.value, entry.expire_at());
        }
    }
    w.finish()
}

/// A fresh data set from an RDB file. With `drop_expired_at = Some(now)`,
/// keys already expired are left out (a master loading its own file);
/// a replica keeps them, its master will delete them.
pub fn load_db(data: &[u8], drop_expired_at: Option<u64>) -> Result<(Db, Loaded), RdbError> {
    load_db_paced(data, drop_expired_at, |_| {})
}

/// [`load_db`], calling `per_key` with the bytes read so far after each key
/// is read (where redis's loader sleeps for `key-load-delay` and processes
/// events every `loading-process-events-interval-bytes`).
pub fn load_db_paced(
    data: &[u8],
    drop_expired_at: Option<u64>,
    mut per_key: impl FnMut(usize),
) -> Result<(Db, Loaded), RdbError> {
    let mut db = Db::new();
    let mut expired = 0u64;
    let mut loaded = load_tracked(data, |key, value, expire, read| {
        per_key(read);
        if let (Some(now), Some(at)) = (drop_expired_at, expire) {
            if at < now {
                expired += 1;
                return Ok(());
            }
        }
        if db.load_entry(key.clone(), value, expire) {
            Ok(())
        } else {
            Err(RdbError::DuplicateKey(
                String::from_utf8_lossy(&key).into_owned(),
            ))
        }
    })?;
    loaded.keys -= expired;
    loaded.expired_skipped = expired;
    Ok((db, loaded))
}
