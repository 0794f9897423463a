//! The cluster bus decoder: any bytes either decode or are refused with an
//! error, never a panic; what decodes encodes back to a frame that decodes to
//! the very same message (the round trip that caught MFSTART's count).
#![no_main]

use hearsay_node::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::expected_len(data);
    if let Ok(msg) = wire::decode(data) {
        let mut out = Vec::new();
        wire::encode(&msg, &mut out);
        match wire::decode(&out) {
            Ok(again) => assert_eq!(again, msg, "decode(encode(m)) != m"),
            Err(e) => panic!("re-encoded frame does not decode: {e:?}"),
        }
    }
});
