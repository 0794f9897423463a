//! Acceptance: garbage on the bus port and the client port never crashes a
//! node, and the cluster stays ok.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A small deterministic generator, so a failure names the bytes that caused it.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn send_and_close(port: u16, bytes: &[u8]) {
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = s.write_all(bytes);
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
    }
}

fn header(totlen: u32, ver: u16, msg_type: u16) -> Vec<u8> {
    let mut h = vec![0u8; 2256];
    h[..4].copy_from_slice(b"RCmb");
    h[4..8].copy_from_slice(&totlen.to_be_bytes());
    h[8..10].copy_from_slice(&ver.to_be_bytes());
    h[12..14].copy_from_slice(&msg_type.to_be_bytes());
    h[40..80].copy_from_slice(&[b'z'; 40]);
    h
}

#[test]
fn garbage_on_both_ports_never_crashes_a_node() {
    if !have("redis-cli") {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let ports = [21201u16, 21202, 21203];
    let mut nodes: Vec<Server> = ports
        .iter()
        .map(|&p| Server::start(Kind::Hearsay, p, root.path(), 2000))
        .collect();
    join_and_assign_slots(&ports, &ports);
    assert!(wait_until(Duration::from_secs(20), || ports
        .iter()
        .all(|&p| state_ok(p)))
    .is_some());

    let bus = ports[0] + 10000;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut bus_cases: Vec<Vec<u8>> = vec![
        b"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".to_vec(), // bad signature
        {
            let mut v = b"RCmb".to_vec();
            v.extend_from_slice(&100u32.to_be_bytes()); // below the minimum length
            v
        },
        {
            let mut v = b"RCmb".to_vec();
            v.extend_from_slice(&u32::MAX.to_be_bytes()); // huge totlen, then a little data
            v.extend_from_slice(&[0u8; 5000]);
            v
        },
        header(2256, 1, 3)[..1000].to_vec(), // truncated frame, then close
        header(2256, 1, 3),                  // FAIL without its payload: length mismatch
        header(2256, 1, 42),                 // unknown type
        header(2256, 2, 0),                  // another protocol version
        {
            let mut v = header(2256 + 104 * 3, 1, 0); // PING whose count lies
            v[14..16].copy_from_slice(&60000u16.to_be_bytes());
            v.extend_from_slice(&[7u8; 104 * 3]);
            v
        },
        {
            let mut v = header(2256 + 16, 1, 0); // extension flag with a bad record
            v[2253] = 0x04;
            v[2214..2216].copy_from_slice(&1u16.to_be_bytes());
            v.extend_from_slice(&[0, 0, 0, 13, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
            v
        },
    ];
    for i in 0..50 {
        let n = 1 + (rng.next() % 6000) as usize;
        let mut v = rng.bytes(n);
        if i % 2 == 0 && v.len() >= 8 {
            v[..4].copy_from_slice(b"RCmb"); // valid signature, random rest
        }
        bus_cases.push(v);
    }
    for case in &bus_cases {
        send_and_close(bus, case);
    }

    let client_cases: Vec<Vec<u8>> = vec![
        b"*-5\r\n".to_vec(),
        b"*2\r\n$999999999999\r\n".to_vec(),
        b"*1\r\n$3\r\nGE".to_vec(),
        b"*3\r\n:1\r\n".to_vec(),
        vec![b'a'; 100_000],
        b"\r\n\r\n\r\n".to_vec(),
        b"*1\r\n$-7\r\n".to_vec(),
        b"*99999999999999999999\r\n".to_vec(),
    ];
    for case in client_cases.iter().chain(
        std::iter::repeat_with(|| rng.bytes(3000))
            .take(30)
            .collect::<Vec<_>>()
            .iter(),
    ) {
        send_and_close(ports[0], case);
    }

    for n in nodes.iter_mut() {
        assert!(n.is_running(), "node {} died", n.port);
    }
    assert_eq!(cmd(ports[0], &["PING"]), "PONG");
    let ok = wait_until(Duration::from_secs(10), || {
        ports.iter().all(|&p| state_ok(p))
    });
    assert!(ok.is_some(), "cluster not ok after garbage");
    let log = nodes[0].log();
    assert!(
        log.contains("Bad message length or signature received from Cluster bus."),
        "no bad-signature log line"
    );
}
