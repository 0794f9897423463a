//! The client request parser: any bytes, read whole or in pieces of any size
//! (the first byte picks the size), never panic, consume only what they hold,
//! and give the same requests either way when neither read hits an error.
#![no_main]

use bytes::BytesMut;
use hearsay_node::resp::{ParseError, Parsed, RequestLimits, RequestParser};
use libfuzzer_sys::fuzz_target;

fn feed(input: &[u8], step: usize, limits: &RequestLimits) -> Result<Vec<Vec<bytes::Bytes>>, ParseError> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in input.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&buf, limits)? {
                Parsed::Request(args, n) => {
                    assert!(n > 0 && n <= buf.len(), "consumed {n} of {}", buf.len());
                    assert!(!args.is_empty());
                    let _ = buf.split_to(n);
                    out.push(args);
                }
                Parsed::Skip(n) => {
                    assert!(n > 0 && n <= buf.len());
                    let _ = buf.split_to(n);
                }
                Parsed::Incomplete => break,
            }
        }
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    // Small limits reach the limit errors; the defaults reach deep parses.
    let limits = if first & 0x80 != 0 {
        RequestLimits {
            max_bulk_len: 64,
            max_multibulk_len: 16,
            max_inline_len: 32,
        }
    } else {
        RequestLimits::default()
    };
    let step = usize::from(first & 0x3f) + 1;
    let whole = feed(input, input.len().max(1), &limits);
    let pieces = feed(input, step, &limits);
    if let (Ok(a), Ok(b)) = (whole, pieces) {
        assert_eq!(a, b, "reads of {step} bytes parse differently");
    }
});
