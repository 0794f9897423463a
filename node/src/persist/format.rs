//! The append-only file's format, sans-IO: a sequence of RESP multibulk
//! commands (`*N\r\n` then `$len\r\narg\r\n` per argument), exactly the
//! bytes of the replication stream. A transaction is written as `MULTI`,
//! its commands, `EXEC`.
//!
//! [`parse`] reads a whole file image and says how much of it is valid:
//! - a file cut inside a command (a crash during `write(2)`, a full disk)
//!   loads up to the last complete command, like redis's
//!   `aof-load-truncated yes`;
//! - a `MULTI` whose `EXEC` never made it is dropped with everything after
//!   it (redis: "Revert incomplete MULTI/EXEC transaction"), so a restart
//!   never shows half a transaction;
//! - a byte that cannot start or continue a command is corruption: loading
//!   refuses rather than guess ([`FormatError`]).

use bytes::Bytes;

/// Largest argument count and argument size accepted: far above anything
/// the node writes (snapshots chunk collections at 512 elements and the
/// request limit is 512 MB per argument), and a guard against treating a
/// corrupt length as a real allocation size.
const MAX_ARGS: usize = 1024 * 1024;
const MAX_ARG_LEN: usize = 512 * 1024 * 1024;

/// Garbage in the file: where it starts and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad format at byte {offset}: {what}")]
pub struct FormatError {
    pub offset: u64,
    pub what: &'static str,
}

/// Why the valid part of a file ends before the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The whole file is valid.
    Clean,
    /// The last command is incomplete.
    Truncated,
    /// A `MULTI` at the end has no `EXEC`.
    OpenMulti,
}

/// A parsed file image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The commands to replay, in order, without the `MULTI`/`EXEC`
    /// markers (a load is atomic anyway: nobody reads until it ends).
    pub commands: Vec<Vec<Bytes>>,
    /// Bytes from the start that hold complete commands and transactions.
    pub valid_len: u64,
    pub tail: Tail,
}

/// What [`next_command`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A command and the bytes it took.
    Command(Vec<Bytes>, usize),
    /// The buffer ends inside a command (or is empty).
    Incomplete,
}

/// Reads one multibulk command at the front of `data`. `base` is the
/// position of `data` in the file, for error offsets.
pub fn next_command(data: &Bytes, base: u64) -> Result<Next, FormatError> {
    let mut pos = 0usize;
    let err = |at: usize, what| FormatError {
        offset: base + at as u64,
        what,
    };
    if data.is_empty() {
        return Ok(Next::Incomplete);
    }
    if data[0] != b'*' {
        return Err(err(0, "expected '*' to start a command"));
    }
    pos += 1;
    let Some((argc, used)) = read_len(&data[pos..]).map_err(|what| err(pos, what))? else {
        return Ok(Next::Incomplete);
    };
    if argc == 0 || argc > MAX_ARGS {
        return Err(err(pos, "bad argument count"));
    }
    pos += used;
    let mut args = Vec::with_capacity(argc.min(1024));
    for _ in 0..argc {
        match data.get(pos) {
            None => return Ok(Next::Incomplete),
            Some(b'$') => pos += 1,
            Some(_) => return Err(err(pos, "expected '$' to start an argument")),
        }
        let Some((len, used)) = read_len(&data[pos..]).map_err(|what| err(pos, what))? else {
            return Ok(Next::Incomplete);
        };
        if len > MAX_ARG_LEN {
            return Err(err(pos, "argument too long"));
        }
        pos += used;
        let end = pos + len;
        // The argument and its CRLF.
        if data.len() < end + 2 {
            // Whatever is there must still be the start of a valid argument;
            // the CRLF check waits for the bytes.
            if data.len() > end && data[end] != b'\r' {
                return Err(err(end, "expected CRLF after an argument"));
            }
            return Ok(Next::Incomplete);
        }
        if &data[end..end + 2] != b"\r\n" {
            return Err(err(end, "expected CRLF after an argument"));
        }
        args.push(data.slice(pos..end));
        pos = end + 2;
    }
    Ok(Next::Command(args, pos))
}

/// Reads `digits\r\n`. `Ok(None)` if the buffer ends first.
fn read_len(data: &[u8]) -> Result<Option<(usize, usize)>, &'static str> {
    let mut n: usize = 0;
    for (i, &b) in data.iter().enumerate() {
        match b {
            b'0'..=b'9' if i < 12 => n = n * 10 + usize::from(b - b'0'),
            b'\r' if i > 0 => {
                return match data.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some((n, i + 2))),
                    Some(_) => Err("expected LF after CR"),
                }
            }
            _ => return Err("bad length"),
        }
    }
    Ok(None)
}

fn is(args: &[Bytes], name: &[u8]) -> bool {
    args.len() == 1 && args[0].eq_ignore_ascii_case(name)
}

/// Parses a whole file image (see the module doc for the rules).
pub fn parse(data: &Bytes) -> Result<Parsed, FormatError> {
    let mut commands = Vec::new();
    let mut pos = 0usize;
    // The commands of an open transaction and where its MULTI started.
    let mut multi: Option<(usize, Vec<Vec<Bytes>>)> = None;
    let tail = loop {
        if pos == data.len() {
            break Tail::Clean;
        }
        let rest = data.slice(pos..);
        match next_command(&rest, pos as u64)? {
            Next::Incomplete => break Tail::Truncated,
            Next::Command(args, used) => {
                let start = pos;
                pos += used;
                if is(&args, b"multi") {
                    if multi.is_some() {
                        return Err(FormatError {
                            offset: start as u64,
                            what: "MULTI inside a transaction",
                        });
                    }
                    multi = Some((start, Vec::new()));
                } else if is(&args, b"exec") {
                    let Some((_, block)) = multi.take() else {
                        return Err(FormatError {
                            offset: start as u64,
                            what: "EXEC without MULTI",
                        });
                    };
                    commands.extend(block);
                } else if let Some((_, block)) = multi.as_mut() {
                    block.push(args);
                } else {
                    commands.push(args);
                }
            }
        }
    };
    let (valid_len, tail) = match (multi, tail) {
        (Some((start, _)), _) => (start, Tail::OpenMulti),
        (None, Tail::Truncated) => (pos, Tail::Truncated),
        (None, t) => (pos, t),
    };
    Ok(Parsed {
        commands,
        valid_len: valid_len as u64,
        tail,
    })
}

/// redis memory units (`64mb`, `1gb`, `100k`, plain bytes), for
/// `auto-aof-rewrite-min-size`.
pub fn parse_memory(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::protocol::encode_command;

    fn cmd(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    fn file(cmds: &[Vec<Bytes>]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in cmds {
            encode_command(c, &mut out);
        }
        out
    }

    #[test]
    fn round_trip_of_commands_and_binary_values() {
        let cmds = vec![
            cmd(&["SET", "k", "v"]),
            vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"bin"),
                Bytes::from_static(b"\r\n\0*$3\r\n"),
            ],
            cmd(&["RPUSH", "l", "a", "b", ""]),
            cmd(&["INCR", "n"]),
        ];
        let data = Bytes::from(file(&cmds));
        let p = parse(&data).unwrap();
        assert_eq!(p.commands, cmds);
        assert_eq!(p.valid_len, data.len() as u64);
        assert_eq!(p.tail, Tail::Clean);
    }

    #[test]
    fn empty_file_is_clean() {
        let p = parse(&Bytes::new()).unwrap();
        assert!(p.commands.is_empty());
        assert_eq!((p.valid_len, p.tail), (0, Tail::Clean));
    }

    #[test]
    fn every_cut_inside_the_last_command_loads_the_rest() {
        let first = file(&[cmd(&["SET", "a", "1"]), cmd(&["SET", "b", "2"])]);
        let last = file(&[cmd(&["SET", "c", "three"])]);
        for cut in 1..last.len() {
            let mut data = first.clone();
            data.extend_from_slice(&last[..cut]);
            let p = parse(&Bytes::from(data)).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(p.commands.len(), 2, "cut {cut}");
            assert_eq!(p.valid_len, first.len() as u64, "cut {cut}");
            assert_eq!(p.tail, Tail::Truncated, "cut {cut}");
        }
    }

    #[test]
    fn a_transaction_without_exec_is_dropped() {
        let before = file(&[cmd(&["SET", "a", "1"])]);
        let mut data = before.clone();
        data.extend(file(&[
            cmd(&["MULTI"]),
            cmd(&["SET", "b", "2"]),
            cmd(&["SET", "c", "3"]),
        ]));
        // Complete commands, no EXEC.
        let p = parse(&Bytes::from(data.clone())).unwrap();
        assert_eq!(p.commands, vec![cmd(&["SET", "a", "1"])]);
        assert_eq!(
            (p.valid_len, p.tail),
            (before.len() as u64, Tail::OpenMulti)
        );
        // Cut inside the EXEC.
        data.extend_from_slice(b"*1\r\n$4\r\nEX");
        let p = parse(&Bytes::from(data.clone())).unwrap();
        assert_eq!(
            (p.valid_len, p.tail),
            (before.len() as u64, Tail::OpenMulti)
        );
        // With its EXEC the block loads, without the markers.
        data.truncate(data.len() - 10);
        data.extend(file(&[cmd(&["EXEC"])]));
        let p = parse(&Bytes::from(data.clone())).unwrap();
        assert_eq!(
            p.commands,
            vec![
                cmd(&["SET", "a", "1"]),
                cmd(&["SET", "b", "2"]),
                cmd(&["SET", "c", "3"])
            ]
        );
        assert_eq!((p.valid_len, p.tail), (data.len() as u64, Tail::Clean));
    }

    #[test]
    fn garbage_in_the_middle_is_an_error_with_its_offset() {
        let good = file(&[cmd(&["SET", "a", "1"])]);
        let cases: &[(&[u8], u64)] = &[
            (b"hello world\r\n", 0),
            (b"*2\r\n$3\r\nSET\r\n:5\r\n", 13),
            (b"*x\r\n", 1),
            (b"*1\r\n$3\r\nSETXX", 11),
            (b"*0\r\n", 1),
            (b"*1\r\n$-1\r\n", 5),
            (b"*1\n", 1),
        ];
        for (bad, at) in cases {
            let mut data = good.clone();
            data.extend_from_slice(bad);
            data.extend(file(&[cmd(&["SET", "b", "2"])]));
            let e = parse(&Bytes::from(data)).expect_err(&String::from_utf8_lossy(bad));
            assert_eq!(e.offset, good.len() as u64 + at, "{:?}", e);
        }
        let e = parse(&Bytes::from(file(&[cmd(&["EXEC"])]))).unwrap_err();
        assert_eq!(e.what, "EXEC without MULTI");
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("64mb"), Some(64 * 1024 * 1024));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("2k"), Some(2000));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_memory(""), None);
    }

    proptest::proptest! {
        #[test]
        fn any_prefix_parses_without_panic_and_keeps_whole_commands(
            cmds in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..20), 1..5),
                0..10,
            ),
            cut in 0usize..2000,
        ) {
            let cmds: Vec<Vec<Bytes>> = cmds
                .into_iter()
                .map(|c| c.into_iter().map(Bytes::from).collect())
                .collect();
            let data = file(&cmds);
            let cut = cut.min(data.len());
            let p = parse(&Bytes::from(data[..cut].to_vec())).unwrap();
            // The loaded commands are a prefix of what was written.
            proptest::prop_assert!(p.commands.len() <= cmds.len());
            proptest::prop_assert_eq!(&p.commands[..], &cmds[..p.commands.len()]);
            proptest::prop_assert_eq!(p.valid_len as usize, file(&p.commands).len());
        }
    }
}
