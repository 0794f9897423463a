//! The AOF's rewrite snapshot: the keyspace written as the RESP commands
//! that rebuild it on an empty node (the AOF holds only commands).
//!
//! - strings: `SET key value [PXAT ms]`;
//! - lists: `RPUSH key e1 .. en` in chunks of [`CHUNK`] elements;
//! - sets: `SADD key m1 .. mn` in chunks;
//! - a list's or set's TTL: `PEXPIREAT key ms` after its last chunk.
//!
//! Keys already past their expiry are left out; the `DEL` for them that
//! follows in the file is then a no-op.

use bytes::Bytes;

use crate::replication::protocol::encode_command;
use crate::store::{Db, Entry, Value};

/// Most elements per RPUSH/SADD, so one snapshot command stays well inside
/// the request limits whatever the size of the collection.
pub const CHUNK: usize = 512;

/// An encoded snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    /// Keys included.
    pub keys: u64,
}

/// Encodes every key of `db` that is live at `now`.
pub fn encode(db: &mut Db, now: u64) -> Snapshot {
    let mut snap = Snapshot::default();
    for slot in db.slots_with_keys() {
        for key in db.keys_in_slot(slot, usize::MAX) {
            // `now = 0`: read the entry as it is, without lazily expiring it
            // here (that would change the dataset behind the stream's back).
            let Some(entry) = db.get(&key, 0) else {
                continue;
            };
            if entry.expire_at().is_some_and(|at| at <= now) {
                continue;
            }
            encode_entry(&key, entry, &mut snap.bytes);
            snap.keys += 1;
        }
    }
    snap
}

/// Appends the commands that recreate one key.
pub fn encode_entry(key: &Bytes, entry: &Entry, out: &mut Vec<u8>) {
    let expire = entry.expire_at().map(|at| Bytes::from(at.to_string()));
    match &entry.value {
        Value::Str(v) => {
            let mut args = vec![Bytes::from_static(b"SET"), key.clone(), v.clone()];
            if let Some(at) = &expire {
                args.push(Bytes::from_static(b"PXAT"));
                args.push(at.clone());
            }
            encode_command(&args, out);
            return;
        }
        Value::List(items) => {
            let items: Vec<Bytes> = items.iter().cloned().collect();
            encode_chunks(b"RPUSH", key, &items, out);
        }
        Value::Set(members) => {
            let members: Vec<Bytes> = members.iter().cloned().collect();
            encode_chunks(b"SADD", key, &members, out);
        }
    }
    if let Some(at) = expire {
        encode_command(&[Bytes::from_static(b"PEXPIREAT"), key.clone(), at], out);
    }
}

fn encode_chunks(cmd: &'static [u8], key: &Bytes, elements: &[Bytes], out: &mut Vec<u8>) {
    for chunk in elements.chunks(CHUNK) {
        let mut args = Vec::with_capacity(chunk.len() + 2);
        args.push(Bytes::from_static(cmd));
        args.push(key.clone());
        args.extend(chunk.iter().cloned());
        encode_command(&args, out);
    }
}
