//! The RDB reader, on every path untrusted bytes take into it: a whole file
//! (a full sync's payload or dump.rdb), a DUMP payload (RESTORE, MIGRATE)
//! and a bare object after its type byte (past the checksum, which would
//! otherwise turn away almost every input before the decoder sees it).
//! Each either decodes or errors, never panics; whatever decodes survives a
//! DUMP and RESTORE round trip unchanged.
#![no_main]

use hearsay_node::rdb::{self, codec::Reader, object};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rdb::file::load_db(data, None);
    let _ = rdb::restore(data);
    let Some((&rdb_type, body)) = data.split_first() else {
        return;
    };
    let mut r = Reader::new(body);
    if let Ok(Some(value)) = object::read(&mut r, rdb_type) {
        for compression in [false, true] {
            let opts = rdb::Options {
                compression,
                ..Default::default()
            };
            let payload = rdb::dump(&value, opts);
            match rdb::restore(&payload) {
                Ok(back) => assert_eq!(back, value, "DUMP/RESTORE changed the value"),
                Err(e) => panic!("RESTORE refused our own DUMP: {e}"),
            }
        }
    }
});
