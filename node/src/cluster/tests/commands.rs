//! CLUSTER subcommands: reply shapes and every error text, as redis-server
//! 7.0.15 answers them (checked against the real binary).

use bytes::Bytes;

use crate::cluster::{Action, Cluster};
use crate::events::EventKind;
use crate::resp::Frame;

use super::fixed_id;
use super::sim::{test_config, MemKeys, Sim, T0};

fn args(a: &[&str]) -> Vec<Bytes> {
    a.iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect()
}

fn run(core: &mut Cluster, keys: &MemKeys, a: &[&str]) -> Frame {
    core.command(T0, &args(a), keys, false)
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn fresh() -> Cluster {
    Cluster::new(test_config(0, 15000), T0, 9, None).expect("new")
}

#[test]
fn error_texts_match_redis() {
    let mut c = fresh();
    let keys = MemKeys::default();
    let me = c.myself().to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec![],
            "ERR wrong number of arguments for 'cluster' command".into(),
        ),
        (
            vec!["foo"],
            "ERR unknown subcommand 'foo'. Try CLUSTER HELP.".into(),
        ),
        (
            vec!["Foo"],
            "ERR unknown subcommand 'Foo'. Try CLUSTER HELP.".into(),
        ),
        (
            vec!["nodes", "x"],
            "ERR wrong number of arguments for 'cluster|nodes' command".into(),
        ),
        (
            vec!["meet", "1.2.3.4"],
            "ERR wrong number of arguments for 'cluster|meet' command".into(),
        ),
        (
            vec!["MEET", "a", "b", "c", "d", "e"],
            "ERR unknown subcommand or wrong number of arguments for 'MEET'. Try CLUSTER HELP."
                .into(),
        ),
        (
            vec!["meet", "x", "1"],
            "ERR Invalid node address specified: x:1".into(),
        ),
        (
            vec!["meet", "localhost", "1"],
            "ERR Invalid node address specified: localhost:1".into(),
        ),
        (
            vec!["meet", "127.0.0.1", "x"],
            "ERR Invalid TCP base port specified: x".into(),
        ),
        (
            vec!["meet", "127.0.0.1", "1", "x"],
            "ERR Invalid TCP bus port specified: x".into(),
        ),
        (
            vec!["meet", "127.0.0.1", "0"],
            "ERR Invalid node address specified: 127.0.0.1:0".into(),
        ),
        (
            vec!["meet", "127.0.0.1", "70000"],
            "ERR Invalid node address specified: 127.0.0.1:70000".into(),
        ),
        (
            vec!["meet", "127.0.0.1", "1", "0"],
            "ERR Invalid node address specified: 127.0.0.1:1".into(),
        ),
        (
            vec!["addslots"],
            "ERR wrong number of arguments for 'cluster|addslots' command".into(),
        ),
        (
            vec!["addslots", "x"],
            "ERR Invalid or out of range slot".into(),
        ),
        (
            vec!["addslots", "16384"],
            "ERR Invalid or out of range slot".into(),
        ),
        (
            vec!["addslots", "-1"],
            "ERR Invalid or out of range slot".into(),
        ),
        (
            vec!["addslotsrange", "1"],
            "ERR wrong number of arguments for 'cluster|addslotsrange' command".into(),
        ),
        (
            vec!["addslotsrange", "1", "2", "3"],
            "ERR wrong number of arguments for 'cluster|addslotsrange' command".into(),
        ),
        (
            vec!["delslotsrange", "1", "2", "3"],
            "ERR wrong number of arguments for 'cluster|delslotsrange' command".into(),
        ),
        (
            vec!["addslotsrange", "5", "1"],
            "ERR start slot number 5 is greater than end slot number 1".into(),
        ),
        (
            vec!["addslots", "1", "1"],
            "ERR Slot 1 specified multiple times".into(),
        ),
        (
            vec!["addslotsrange", "1", "3", "3", "4"],
            "ERR Slot 3 specified multiple times".into(),
        ),
        (
            vec!["delslots", "1"],
            "ERR Slot 1 is already unassigned".into(),
        ),
        (
            vec!["delslotsrange", "1", "2"],
            "ERR Slot 1 is already unassigned".into(),
        ),
        (
            vec!["countkeysinslot", "x"],
            "ERR value is not an integer or out of range".into(),
        ),
        (vec!["countkeysinslot", "99999"], "ERR Invalid slot".into()),
        (
            vec!["getkeysinslot", "x", "1"],
            "ERR value is not an integer or out of range".into(),
        ),
        (
            vec!["getkeysinslot", "1", "x"],
            "ERR value is not an integer or out of range".into(),
        ),
        (
            vec!["getkeysinslot", "1", "-1"],
            "ERR Invalid slot or number of keys".into(),
        ),
        (
            vec!["getkeysinslot", "16384", "1"],
            "ERR Invalid slot or number of keys".into(),
        ),
        (
            vec!["setslot", "1", "foo"],
            "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP".into(),
        ),
        (
            vec!["setslot", "1", "stable", "x"],
            "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP".into(),
        ),
        (
            vec!["setslot", "x", "stable"],
            "ERR Invalid or out of range slot".into(),
        ),
        (
            vec!["setslot", "1", "migrating", "abc"],
            "ERR I'm not the owner of hash slot 1".into(),
        ),
        (
            vec!["setslot", "1", "importing", "abc"],
            "ERR I don't know about node abc".into(),
        ),
        (
            vec!["setslot", "1", "node", "abc"],
            "ERR Unknown node abc".into(),
        ),
        (vec!["forget", "abc"], "ERR Unknown node abc".into()),
        (
            vec!["forget", &me],
            "ERR I tried hard but I can't forget myself...".into(),
        ),
        (vec!["replicate", "abc"], "ERR Unknown node abc".into()),
        (vec!["replicate", &me], "ERR Can't replicate myself".into()),
        (vec!["replicas", "abc"], "ERR Unknown node abc".into()),
        (vec!["slaves", "abc"], "ERR Unknown node abc".into()),
        (
            vec!["count-failure-reports", "abc"],
            "ERR Unknown node abc".into(),
        ),
        (
            vec!["failover"],
            "ERR You should send CLUSTER FAILOVER to a replica".into(),
        ),
        (vec!["failover", "foo"], "ERR syntax error".into()),
        (
            vec!["failover", "a", "b"],
            "ERR unknown subcommand or wrong number of arguments for 'failover'. Try CLUSTER HELP."
                .into(),
        ),
        (
            vec!["set-config-epoch", "-1"],
            "ERR Invalid config epoch specified: -1".into(),
        ),
        (
            vec!["set-config-epoch", "x"],
            "ERR value is not an integer or out of range".into(),
        ),
        (vec!["reset", "foo"], "ERR syntax error".into()),
        (
            vec!["reset", "soft", "x"],
            "ERR unknown subcommand or wrong number of arguments for 'reset'. Try CLUSTER HELP."
                .into(),
        ),
        (
            vec!["keyslot"],
            "ERR wrong number of arguments for 'cluster|keyslot' command".into(),
        ),
        (
            vec!["HELP", "x"],
            "ERR wrong number of arguments for 'cluster|help' command".into(),
        ),
        (vec!["forget", "a\r\nb"], "ERR Unknown node a  b".into()),
    ];
    for (a, want) in cases {
        assert_eq!(
            run(&mut c, &keys, &a),
            Frame::Error(want.clone()),
            "CLUSTER {a:?}"
        );
    }
    // Nothing above changed the node.
    assert_eq!(c.known_ids().len(), 1);
    assert_eq!(c.handshake_count(), 0);
}

#[test]
fn stateful_error_texts_match_redis() {
    let mut sim = Sim::new(3, 41, |i| test_config(i, 2000));
    sim.cmd(0, &["ADDSLOTS", "1"]);
    sim.meet_chain();
    sim.run_until(10_000, |s| {
        s.nodes.iter().all(|n| n.core.known_ids().len() == 3)
    })
    .expect("mesh");
    let (a, b) = (sim.id(0).to_string(), sim.id(1).to_string());
    let e = |s: &str| Frame::Error(s.to_string());
    assert_eq!(
        sim.cmd(0, &["ADDSLOTS", "1"]),
        e("ERR Slot 1 is already busy")
    );
    assert_eq!(
        sim.cmd(0, &["SETSLOT", "1", "IMPORTING", &b]),
        e("ERR I'm already the owner of hash slot 1")
    );
    assert_eq!(sim.cmd(0, &["SET-CONFIG-EPOCH", "5"]), e("ERR The user can assign a config epoch only when the node does not know any other node."));
    assert_eq!(sim.cmd(2, &["REPLICATE", &a]), Frame::ok());
    let c = sim.id(2).to_string();
    sim.run_until(5000, |s| {
        (0..2).all(|i| {
            s.nodes[i]
                .core
                .has_flag(&s.id(2), crate::wire::node_flags::SLAVE)
        })
    })
    .expect("seen as replica");
    assert_eq!(
        sim.cmd(2, &["SETSLOT", "1", "STABLE"]),
        e("ERR Please use SETSLOT only with masters.")
    );
    assert_eq!(
        sim.cmd(2, &["FORGET", &a]),
        e("ERR Can't forget my master!")
    );
    assert_eq!(
        sim.cmd(1, &["REPLICATE", &c]),
        e("ERR I can only replicate a master, not a replica.")
    );
    assert_eq!(
        sim.cmd(0, &["REPLICATE", &b]),
        e("ERR To set a master the node must be empty and without assigned slots.")
    );
    assert_eq!(
        sim.cmd(0, &["SETSLOT", "1", "MIGRATING", &c]),
        e("ERR Target node is not a master")
    );
    assert_eq!(
        sim.cmd(0, &["SETSLOT", "2", "IMPORTING", &c]),
        e("ERR Target node is not a master")
    );
    assert_eq!(
        sim.cmd(0, &["SETSLOT", "2", "NODE", &c]),
        e("ERR Target node is not a master")
    );
    assert_eq!(
        sim.cmd(0, &["REPLICAS", &c]),
        e("ERR The specified node is not a master")
    );
    assert_eq!(sim.cmd(2, &["FAILOVER", "SOFTLY"]), e("ERR syntax error"));
    // Keys block FLUSHSLOTS, RESET of a master and SETSLOT NODE away from us.
    sim.nodes[0].keys.add("foo{x}"); // slot of "x"
    let slot = crate::slots::key_slot(b"x").to_string();
    assert_eq!(
        sim.cmd(0, &["FLUSHSLOTS"]),
        e("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.")
    );
    assert_eq!(
        sim.cmd(0, &["RESET"]),
        e("ERR CLUSTER RESET can't be called with master nodes containing keys")
    );
    assert_eq!(sim.cmd(0, &["ADDSLOTS", &slot]), Frame::ok());
    assert_eq!(
        sim.cmd(0, &["SETSLOT", &slot, "NODE", &b]),
        e(&format!("ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."))
    );
    assert_eq!(sim.cmd(0, &["COUNTKEYSINSLOT", &slot]), Frame::Integer(1));
    assert_eq!(
        sim.cmd(0, &["GETKEYSINSLOT", &slot, "10"]),
        Frame::Array(vec![bulk("foo{x}")])
    );
    assert_eq!(
        sim.cmd(0, &["GETKEYSINSLOT", &slot, "0"]),
        Frame::Array(vec![])
    );
    let mut fresh = fresh();
    let keys = MemKeys::default();
    assert_eq!(
        run(&mut fresh, &keys, &["SET-CONFIG-EPOCH", "3"]),
        Frame::ok()
    );
    assert_eq!(
        run(&mut fresh, &keys, &["SET-CONFIG-EPOCH", "4"]),
        e("ERR Node config epoch is already non-zero")
    );
}

#[test]
fn simple_replies() {
    let mut c = fresh();
    let keys = MemKeys::default();
    let me = c.myself().to_string();
    assert_eq!(run(&mut c, &keys, &["MYID"]), bulk(&me));
    assert_eq!(
        run(&mut c, &keys, &["KEYSLOT", "foo"]),
        Frame::Integer(12182)
    );
    assert_eq!(
        run(&mut c, &keys, &["KEYSLOT", "{user1000}.following"]),
        Frame::Integer(3443)
    );
    assert_eq!(
        run(&mut c, &keys, &["COUNTKEYSINSLOT", "1"]),
        Frame::Integer(0)
    );
    assert_eq!(
        run(&mut c, &keys, &["GETKEYSINSLOT", "1", "5"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        run(&mut c, &keys, &["COUNT-FAILURE-REPORTS", &me]),
        Frame::Integer(0)
    );
    assert_eq!(run(&mut c, &keys, &["REPLICAS", &me]), Frame::Array(vec![]));
    assert_eq!(run(&mut c, &keys, &["SLOTS"]), Frame::Array(vec![]));
    assert_eq!(run(&mut c, &keys, &["LINKS"]), Frame::Array(vec![]));
    assert_eq!(run(&mut c, &keys, &["SAVECONFIG"]), Frame::ok());
    assert_eq!(
        run(&mut c, &keys, &["bumpepoch"]),
        Frame::Simple("BUMPED 1".into())
    );
    assert_eq!(
        run(&mut c, &keys, &["BUMPEPOCH"]),
        Frame::Simple("STILL 1".into())
    );
    let Frame::Array(help) = run(&mut c, &keys, &["help"]) else {
        panic!("array")
    };
    assert_eq!(help.len(), 56);
    assert_eq!(
        help.first(),
        Some(&Frame::Simple(
            "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into()
        ))
    );
    assert_eq!(
        help.last(),
        Some(&Frame::Simple("    Prints this help.".into()))
    );
    assert_eq!(run(&mut c, &keys, &["FLUSHSLOTS"]), Frame::ok());
}

#[test]
fn nodes_info_slots_shards_formats() {
    let (a, b, r) = (fixed_id('a'), fixed_id('b'), fixed_id('r'));
    let conf = format!(
        "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 5462\n\
         {b} 127.0.0.1:7001@17001,bee master - 0 1700000000000 2 connected 5461 5463-16383\n\
         {r} 127.0.0.1:7002@17002 slave {a} 0 1700000000000 1 connected\n\
         vars currentEpoch 2 lastVoteEpoch 0\n"
    );
    let mut c = Cluster::new(test_config(0, 15000), T0, 1, Some(&conf)).expect("load");
    let keys = MemKeys::default();
    c.set_repl_offset(77);
    assert_eq!(
        run(&mut c, &keys, &["NODES"]),
        Frame::Verbatim(format!(
            "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 5462\n\
             {b} 127.0.0.1:7001@17001,bee master - 0 {T0} 2 disconnected 5461 5463-16383\n\
             {r} 127.0.0.1:7002@17002 slave {a} 0 {T0} 1 disconnected\n"
        ))
    );
    // Before the first state computation: size 1, state fail; no messages yet.
    assert_eq!(
        c.info_text(),
        "cluster_state:fail\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\n\
         cluster_slots_fail:0\r\ncluster_known_nodes:3\r\ncluster_size:1\r\ncluster_current_epoch:2\r\ncluster_my_epoch:1\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n"
    );
    assert_eq!(
        run(&mut c, &keys, &["INFO"]),
        Frame::Verbatim(c.info_text())
    );

    let node = |ip: &str, port: i64, id: &str, meta: Vec<(Frame, Frame)>| {
        Frame::Array(vec![
            bulk(ip),
            Frame::Integer(port),
            bulk(id),
            Frame::Map(meta),
        ])
    };
    let a_node = node("127.0.0.1", 7000, &a, vec![]);
    let b_node = node("127.0.0.1", 7001, &b, vec![(bulk("hostname"), bulk("bee"))]);
    // The replica has offset 0 (never synced): hidden from SLOTS.
    let want = Frame::Array(vec![
        Frame::Array(vec![
            Frame::Integer(0),
            Frame::Integer(5460),
            a_node.clone(),
        ]),
        Frame::Array(vec![
            Frame::Integer(5461),
            Frame::Integer(5461),
            b_node.clone(),
        ]),
        Frame::Array(vec![
            Frame::Integer(5462),
            Frame::Integer(5462),
            a_node.clone(),
        ]),
        Frame::Array(vec![
            Frame::Integer(5463),
            Frame::Integer(16383),
            b_node.clone(),
        ]),
    ]);
    assert_eq!(run(&mut c, &keys, &["SLOTS"]), want);

    let Frame::Array(shards) = run(&mut c, &keys, &["SHARDS"]) else {
        panic!("array")
    };
    assert_eq!(shards.len(), 2);
    let Frame::Map(first) = &shards[0] else {
        panic!("map")
    };
    assert_eq!(
        first[0],
        (
            bulk("slots"),
            Frame::Array([0, 5460, 5462, 5462].map(Frame::Integer).to_vec())
        )
    );
    let Frame::Array(nodes) = &first[1].1 else {
        panic!("nodes")
    };
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        nodes[0],
        Frame::Map(vec![
            (bulk("id"), bulk(&a)),
            (bulk("port"), Frame::Integer(7000)),
            (bulk("ip"), bulk("127.0.0.1")),
            (bulk("endpoint"), bulk("127.0.0.1")),
            (bulk("role"), bulk("master")),
            (bulk("replication-offset"), Frame::Integer(77)),
            (bulk("health"), bulk("online")),
        ])
    );
    let Frame::Map(rep) = &nodes[1] else {
        panic!("map")
    };
    assert_eq!(rep.last(), Some(&(bulk("health"), bulk("loading"))));

    let Frame::Array(reps) = run(&mut c, &keys, &["REPLICAS", &a]) else {
        panic!("array")
    };
    assert_eq!(
        reps,
        vec![bulk(&format!(
            "{r} 127.0.0.1:7002@17002 slave {a} 0 {T0} 1 disconnected"
        ))]
    );
}

#[test]
fn meet_creates_a_handshake_node_and_links_show_up() {
    let mut c = fresh();
    let keys = MemKeys::default();
    assert_eq!(run(&mut c, &keys, &["MEET", "::1", "7001"]), Frame::ok());
    assert_eq!(
        run(&mut c, &keys, &["MEET", "0:0::1", "7001", "17001"]),
        Frame::ok()
    ); // same, normalized
    assert_eq!(c.handshake_count(), 1);
    let text = c.nodes_text();
    assert!(
        text.lines()
            .any(|l| l.contains(" ::1:7001@17001 handshake - 0 0 0 disconnected")),
        "{text}"
    );
    c.tick(T0 + 100);
    let actions: Vec<Action> = std::iter::from_fn(|| c.poll_action()).collect();
    let connect = actions.iter().find_map(|a| match a {
        Action::Connect { link, ip, port } => Some((*link, ip.clone(), *port)),
        _ => None,
    });
    let (link, ip, port) = connect.expect("connect");
    assert_eq!((ip.as_str(), port), ("::1", 17001));
    let Frame::Array(links) = run(&mut c, &keys, &["LINKS"]) else {
        panic!("array")
    };
    assert_eq!(links.len(), 1);
    let Frame::Map(l) = &links[0] else {
        panic!("map")
    };
    let keys_of: Vec<Frame> = l.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys_of,
        [
            "direction",
            "node",
            "create-time",
            "events",
            "send-buffer-allocated",
            "send-buffer-used"
        ]
        .map(bulk)
        .to_vec()
    );
    assert_eq!(l[0].1, bulk("to"));
    assert_eq!(l[2].1, Frame::Integer(T0 as i64 + 100));
    // The MEET goes out once the connect completes.
    c.handle_connected(
        T0 + 120,
        link,
        "[::1]:40000".parse().unwrap_or_else(|_| unreachable!()),
    );
    let actions: Vec<Action> = std::iter::from_fn(|| c.poll_action()).collect();
    let sent: Vec<u16> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { msg, .. } => Some(msg.header.msg_type),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![crate::wire::msg_type::MEET]);
}

#[test]
fn reset_hard_forgets_everyone_and_takes_a_new_id() {
    let mut sim = Sim::new(2, 42, |i| test_config(i, 2000));
    sim.cmd(0, &["ADDSLOTSRANGE", "0", "100"]);
    sim.meet_chain();
    sim.run_until(10_000, |s| {
        s.nodes.iter().all(|n| n.core.known_ids().len() == 2)
    })
    .expect("mesh");
    sim.cmd(0, &["BUMPEPOCH"]);
    let old = sim.id(0);
    assert_eq!(sim.cmd(0, &["RESET", "SOFT"]), Frame::ok());
    assert_eq!(sim.id(0), old);
    assert_eq!(sim.nodes[0].core.known_ids(), vec![old]);
    assert!(
        sim.nodes[0].core.current_epoch() > 0,
        "soft reset keeps the epochs"
    );
    assert_eq!(sim.nodes[0].core.owner_id(0), None);
    assert_eq!(sim.cmd(0, &["RESET", "HARD"]), Frame::ok());
    let new = sim.id(0);
    assert_ne!(new, old);
    assert_eq!(sim.nodes[0].core.current_epoch(), 0);
    assert_eq!(sim.nodes[0].core.my_epoch(), 0);
    assert!(sim.logged(0, "configEpoch set to 0 via CLUSTER RESET HARD"));
    assert!(sim.logged(0, &format!("Node hard reset, now I'm {new}")));
    assert!(sim.nodes[0]
        .conf
        .as_deref()
        .is_some_and(|c| c.starts_with(&new.to_string())));
    let removed = sim.events(0, |e| {
        matches!(
            e,
            EventKind::NodeRemoved {
                reason: crate::events::RemovedReason::Reset,
                ..
            }
        )
    });
    assert_eq!(removed.len(), 1);
}
