//! The append-only file loader: any file image either loads (a list of
//! commands, maybe a truncated tail) or is refused with an error naming the
//! offset, never a panic; reading it command by command agrees.
#![no_main]

use bytes::Bytes;
use hearsay_node::persist::format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let data = Bytes::copy_from_slice(data);
    let _ = format::parse(&data);
    let mut rest = data.clone();
    let mut base = 0u64;
    while let Ok(format::Next::Command(_, n)) = format::next_command(&rest, base) {
        assert!(n > 0 && n <= rest.len());
        base += n as u64;
        rest = rest.slice(n..);
    }
});
