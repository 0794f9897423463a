//! Hostile and random peers: no input may panic the core or break its
//! table invariants.

use std::net::SocketAddr;

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cluster::Cluster;
use crate::slots::SlotSet;
use crate::wire::{ip_field, msg_type, Body, GossipEntry, Header, Message, NodeName, PingExt};

use super::fixed_id;
use super::sim::{test_config, MemKeys, Sim, T0};

/// A few real IDs, a few malformed ones.
fn pick_name(rng: &mut ChaCha8Rng, known: &[NodeName]) -> NodeName {
    match rng.random_range(0..6) {
        0 => NodeName::NULL,
        1 => NodeName([b'Z'; 40]),
        2 => {
            let mut n = [0u8; 40];
            rng.fill(&mut n[..]);
            NodeName(n)
        }
        3 => NodeName::parse(&fixed_id(char::from(b'a' + rng.random_range(0..26u8))))
            .unwrap_or(NodeName::NULL),
        _ => known
            .get(rng.random_range(0..known.len().max(1)))
            .copied()
            .unwrap_or(NodeName::NULL),
    }
}

fn random_slots(rng: &mut ChaCha8Rng) -> SlotSet {
    let mut s = SlotSet::new();
    match rng.random_range(0..4) {
        0 => {}
        1 => (0..16384u16).for_each(|x| s.insert(x)),
        _ => {
            let a = rng.random_range(0..16384u16);
            let b = rng.random_range(a..16384u16);
            (a..=b).for_each(|x| s.insert(x));
        }
    }
    s
}

fn random_message(rng: &mut ChaCha8Rng, known: &[NodeName]) -> Message {
    let t = rng.random_range(0..13u16);
    let mut h = Header::new(t, pick_name(rng, known));
    h.ver = if rng.random_range(0..20) == 0 { 2 } else { 1 };
    h.port = rng.random();
    h.cport = rng.random();
    h.pport = rng.random();
    h.flags = rng.random();
    h.current_epoch = rng.random_range(0..20);
    h.config_epoch = rng.random_range(0..20);
    h.offset = rng.random();
    h.myslots = random_slots(rng);
    h.slaveof = if rng.random_bool(0.5) {
        NodeName::NULL
    } else {
        pick_name(rng, known)
    };
    if rng.random_bool(0.3) {
        h.myip = ip_field(&format!("10.0.0.{}", rng.random_range(0..255)));
    }
    h.mflags[0] = rng.random();
    let body = match t {
        msg_type::PING | msg_type::PONG | msg_type::MEET => {
            let gossip = (0..rng.random_range(0..6))
                .map(|_| GossipEntry {
                    nodename: pick_name(rng, known),
                    ping_sent: rng.random(),
                    pong_received: if rng.random_bool(0.5) {
                        rng.random()
                    } else {
                        (T0 / 1000) as u32
                    },
                    ip: ip_field(if rng.random_bool(0.2) {
                        ""
                    } else {
                        "127.0.0.9"
                    }),
                    port: rng.random(),
                    cport: rng.random(),
                    flags: rng.random(),
                    pport: rng.random(),
                })
                .collect();
            let extensions = match rng.random_range(0..3) {
                0 => vec![],
                1 => vec![PingExt::Hostname("h.example".into())],
                _ => vec![PingExt::Unknown {
                    ext_type: 3,
                    body: vec![0; 8],
                }],
            };
            Body::Ping { gossip, extensions }
        }
        msg_type::FAIL => Body::Fail {
            nodename: pick_name(rng, known),
        },
        msg_type::UPDATE => Body::Update {
            config_epoch: rng.random_range(0..30),
            nodename: pick_name(rng, known),
            slots: random_slots(rng),
        },
        msg_type::PUBLISH | msg_type::PUBLISHSHARD => Body::Publish {
            channel: b"c".to_vec(),
            message: b"m".to_vec(),
        },
        msg_type::MODULE => Body::Module {
            module_id: [0; 8],
            module_type: 1,
            payload: vec![1, 2],
        },
        msg_type::FAILOVER_AUTH_REQUEST | msg_type::FAILOVER_AUTH_ACK | msg_type::MFSTART => {
            Body::Empty
        }
        _ => Body::Unknown {
            payload: vec![0; rng.random_range(0..16)],
        },
    };
    Message { header: h, body }
}

#[test]
fn random_packets_commands_and_link_events_never_break_the_core() {
    for seed in 0..2u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // A converged three-node cluster gives the victim real peers to confuse.
        let mut sim = Sim::new(3, seed, |i| test_config(i, 500));
        sim.cmd(0, &["ADDSLOTSRANGE", "0", "8000"]);
        sim.cmd(1, &["ADDSLOTSRANGE", "8001", "16383"]);
        sim.meet_chain();
        sim.run_for(3000);
        let known: Vec<NodeName> = (0..3).map(|i| sim.id(i)).collect();
        let core: &mut Cluster = &mut sim.nodes[0].core;
        let keys = MemKeys::default();
        let mut now = sim.now;
        let mut links = Vec::new();
        for step in 0..300 {
            match rng.random_range(0..10) {
                0 => {
                    let peer: SocketAddr = format!(
                        "127.0.0.{}:{}",
                        rng.random_range(1..5),
                        rng.random_range(1024..60000u16)
                    )
                    .parse()
                    .unwrap_or_else(|_| unreachable!());
                    let local: SocketAddr =
                        "127.0.0.1:17000".parse().unwrap_or_else(|_| unreachable!());
                    links.push(core.handle_accept(now, peer, local));
                }
                1 => {
                    now += rng.random_range(0..700);
                    core.tick(now);
                }
                2 => {
                    let l = rng.random_range(0..40);
                    core.handle_link_closed(now, l);
                }
                3 => {
                    let l = rng.random_range(0..40);
                    let local: SocketAddr =
                        "127.0.0.1:40000".parse().unwrap_or_else(|_| unreachable!());
                    if rng.random_bool(0.5) {
                        core.handle_connected(now, l, local);
                    } else {
                        core.handle_connect_failed(now, l, "refused");
                    }
                }
                4 => {
                    let cmds: [&[&str]; 8] = [
                        &["MEET", "127.0.0.7", "7007"],
                        &["FORGET", &fixed_id('b')],
                        &["SETSLOT", "5", "NODE", &fixed_id('c')],
                        &["ADDSLOTS", "9000"],
                        &["DELSLOTS", "0"],
                        &["BUMPEPOCH"],
                        &["RESET", "SOFT"],
                        &["REPLICATE", &fixed_id('d')],
                    ];
                    let c = cmds[rng.random_range(0..cmds.len())];
                    let args: Vec<Bytes> = c
                        .iter()
                        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                        .collect();
                    let _ = core.command(now, &args, &keys, rng.random_bool(0.5));
                    let _ = core.nodes_text();
                    let _ = core.command(now, &[Bytes::from_static(b"SHARDS")], &keys, true);
                    let _ = core.command(now, &[Bytes::from_static(b"SLOTS")], &keys, true);
                }
                _ => {
                    let link = if links.is_empty() || rng.random_bool(0.2) {
                        rng.random_range(0..40)
                    } else {
                        links[rng.random_range(0..links.len())]
                    };
                    let msg = random_message(&mut rng, &known);
                    core.handle_packet(now, link, msg);
                }
            }
            core.before_sleep(now);
            while core.poll_action().is_some() {}
            // The full check walks every slot: every few steps keeps the test fast.
            if step % 5 == 0 {
                if let Err(e) = core.check_invariants() {
                    panic!("seed {seed} step {step}: {e}");
                }
            }
            for s in [0u16, 5, 9000, 16383, 20000] {
                let _ = core.route(s);
            }
        }
    }
}

#[test]
fn simulated_clusters_keep_their_invariants() {
    let mut sim = Sim::new(5, 77, |i| test_config(i, 800));
    sim.cmd(0, &["ADDSLOTSRANGE", "0", "5000"]);
    sim.cmd(1, &["ADDSLOTSRANGE", "5001", "10000"]);
    sim.cmd(2, &["ADDSLOTSRANGE", "10001", "16383"]);
    sim.meet_chain();
    let check = |s: &Sim| {
        for (i, n) in s.nodes.iter().enumerate() {
            if let Err(e) = n.core.check_invariants() {
                panic!("node {i}: {e}");
            }
        }
    };
    for round in 0..16u64 {
        sim.run_for(500);
        check(&sim);
        match round % 8 {
            0 => sim.pause((round as usize / 8) % 5),
            2 => (0..5).for_each(|i| sim.resume(i)),
            3 => sim.cut(0, 1),
            4 => sim.isolate(2),
            5 => sim.heal(),
            6 => {
                let r = sim.id(0).to_string();
                let _ = sim.cmd(4, &["REPLICATE", &r]);
            }
            _ => {}
        }
    }
    sim.heal();
    (0..5).for_each(|i| sim.resume(i));
    sim.run_until(30_000, |s| s.nodes.iter().all(|n| n.core.state_ok()))
        .expect("heals to ok");
    check(&sim);
}
