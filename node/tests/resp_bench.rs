//! In-process throughput of the request path (parse, execute, encode) for
//! the redis-benchmark GET/SET shapes, pipelined by 16. Ignored by default:
//!
//! `cargo test --release -p hearsay-node --test resp_bench -- --ignored --nocapture`

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use hearsay_node::cluster::SlotRoute;
use hearsay_node::commands::{execute, ClientState, Host};
use hearsay_node::resp::{encode, parse_request_buf, Frame, RequestLimits};
use hearsay_node::store::Db;
use hearsay_node::wire::NodeName;

struct BenchHost {
    route: SlotRoute,
}

impl Host for BenchHost {
    fn cluster_enabled(&self) -> bool {
        true
    }
    fn route(&self, _slot: u16) -> SlotRoute {
        self.route.clone()
    }
    fn cluster_state_ok(&self) -> bool {
        true
    }
    fn allow_reads_when_down(&self) -> bool {
        false
    }
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }
    fn server_command(
        &mut self,
        _: &str,
        _: &[Bytes],
        _: &mut Db,
        _: &ClientState,
    ) -> Option<Frame> {
        None
    }
}

fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn run(name: &str, one: &[u8], keys: usize) {
    let mut host = BenchHost {
        route: SlotRoute {
            owner: Some((NodeName([b'a'; 40]), "127.0.0.1".into(), 6379)),
            owner_is_me: true,
            owner_is_my_master: false,
            migrating_to: None,
            importing: false,
        },
    };
    let mut db = Db::new();
    let mut client = ClientState::new(1);
    let limits = RequestLimits::default();
    let pipeline: Vec<u8> = (0..16).flat_map(|_| one.iter().copied()).collect();
    let ops_wanted: usize = std::env::var("BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rounds = ops_wanted / 16;
    let mut out = BytesMut::with_capacity(64 * 1024);
    let start = Instant::now();
    let mut ops = 0u64;
    for _ in 0..rounds {
        let mut input = BytesMut::from(&pipeline[..]);
        while let Ok(Some(args)) = parse_request_buf(&mut input, &limits) {
            let o = execute(&mut host, &mut db, &mut client, args);
            encode(&o.reply, false, &mut out);
            ops += 1;
        }
        out.clear();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:>24}: {:>7.0} ns/op, {:>10.0} ops/s ({keys} keys)",
        secs * 1e9 / ops as f64,
        ops as f64 / secs
    );
}

#[test]
#[ignore]
fn request_path_throughput() {
    run("PING (inline)", b"PING\r\n", 0);
    run(
        "SET key:000000000042 xxx",
        &request(&["SET", "key:000000000042", "xxx"]),
        1,
    );
    run(
        "GET key:000000000042",
        &request(&["GET", "key:000000000042"]),
        1,
    );
    run("INCR counter", &request(&["INCR", "counter"]), 1);
    run("LPUSH mylist xxx", &request(&["LPUSH", "mylist", "xxx"]), 1);
}
