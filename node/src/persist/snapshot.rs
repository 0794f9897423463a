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
        Value::Hash(h) => {
            let pairs: Vec<Bytes> = h.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
            // Chunks of whole field/value pairs.
            for chunk in pairs.chunks(CHUNK * 2) {
                let mut args = vec![Bytes::from_static(b"HSET"), key.clone()];
                args.extend(chunk.iter().cloned());
                encode_command(&args, out);
            }
        }
        Value::ZSet(z) => {
            let pairs: Vec<Bytes> = z
                .iter()
                .flat_map(|(m, s)| [Bytes::from(crate::resp::format_double(s)), m.clone()])
                .collect();
            for chunk in pairs.chunks(CHUNK * 2) {
                let mut args = vec![Bytes::from_static(b"ZADD"), key.clone()];
                args.extend(chunk.iter().cloned());
                encode_command(&args, out);
            }
        }
        Value::Stream(st) => {
            if st.entries.is_empty() && st.last_id != crate::store::StreamId::MIN {
                // An empty stream is created by adding and trimming an entry
                // (redis's AOF rewrite does the same).
                encode_command(
                    &[
                        Bytes::from_static(b"XADD"),
                        key.clone(),
                        Bytes::from_static(b"MAXLEN"),
                        Bytes::from_static(b"0"),
                        Bytes::from(st.last_id.to_string()),
                        Bytes::from_static(b"x"),
                        Bytes::from_static(b"y"),
                    ],
                    out,
                );
            }
            for (id, fields) in &st.entries {
                let mut args = vec![
                    Bytes::from_static(b"XADD"),
                    key.clone(),
                    Bytes::from(id.to_string()),
                ];
                args.extend(fields.iter().cloned());
                encode_command(&args, out);
            }
            // The stream's own bookkeeping (an empty stream is created here too).
            encode_command(
                &[
                    Bytes::from_static(b"XSETID"),
                    key.clone(),
                    Bytes::from(st.last_id.to_string()),
                    Bytes::from_static(b"ENTRIESADDED"),
                    Bytes::from(st.entries_added.to_string()),
                    Bytes::from_static(b"MAXDELETEDID"),
                    Bytes::from(st.max_deleted_id.to_string()),
                ],
                out,
            );
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
