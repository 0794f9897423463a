//! nodes.conf: save format, load rules, round trips and restarts.

use crate::cluster::{Action, Cluster, LoadError};
use crate::wire::node_flags::*;
use crate::wire::NodeName;

use super::fixed_id;
use super::sim::{test_config, Sim, T0};

fn meshed(sim: &Sim) -> bool {
    let n = sim.nodes.len();
    sim.nodes
        .iter()
        .all(|x| x.core.known_ids().len() == n && x.core.handshake_count() == 0)
}

/// The stable fields of a nodes.conf line: everything but ping/pong times and
/// the link state.
fn stable_fields(conf: &str) -> Vec<String> {
    let mut lines: Vec<String> = conf
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.first() == Some(&"vars") {
                return l.to_string();
            }
            let mut keep: Vec<&str> = f.iter().take(4).copied().collect();
            keep.push(f.get(6).copied().unwrap_or(""));
            keep.extend(f.iter().skip(8).copied());
            keep.join(" ")
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn skip_config_text_saves_without_text_and_renders_on_demand() {
    let cfg = crate::cluster::ClusterConfig {
        skip_config_text: true,
        ..test_config(0, 1000)
    };
    let mut c = Cluster::new(cfg, T0, 42, None).expect("new");
    let actions: Vec<Action> = std::iter::from_fn(|| c.poll_action()).collect();
    let id = c.myself();
    // The save still happens (and its event), only the text is left out.
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::SaveConfig { contents, fsync: true } if contents.is_empty())));
    assert!(actions.iter().any(|a| matches!(a, Action::Event(e)
        if matches!(e.kind, crate::events::EventKind::ConfigSaved { .. }))));
    assert!(c.config_text().starts_with(&format!("{id} ")));
}

#[test]
fn fresh_node_saves_at_once_and_announces_its_id() {
    let mut c = Cluster::new(test_config(0, 1000), T0, 42, None).expect("new");
    let actions: Vec<Action> = std::iter::from_fn(|| c.poll_action()).collect();
    let id = c.myself();
    assert!(id.is_valid());
    assert!(id
        .0
        .iter()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let save = actions.iter().find_map(|a| match a {
        Action::SaveConfig { contents, fsync } => Some((contents.clone(), *fsync)),
        _ => None,
    });
    let (contents, fsync) = save.expect("saved at once");
    assert!(fsync);
    // Written before the announced ports are applied, exactly as redis does.
    assert_eq!(
        contents,
        format!("{id} :0@0 myself,master - 0 0 0 connected\nvars currentEpoch 0 lastVoteEpoch 0\n")
    );
    assert!(actions.iter().any(|a| matches!(a, Action::Log { text, .. } if *text == format!("No cluster configuration found, I'm {id}"))));
    // The same seed gives the same ID; another seed another one.
    assert_eq!(
        Cluster::new(test_config(0, 1000), T0, 42, None)
            .map(|c| c.myself())
            .ok(),
        Some(id)
    );
    assert_ne!(
        Cluster::new(test_config(0, 1000), T0, 43, None)
            .map(|c| c.myself())
            .ok(),
        Some(id)
    );
}

#[test]
fn save_load_round_trip_keeps_ids_epochs_slots_and_peers() {
    let mut sim = Sim::new(4, 31, |i| test_config(i, 1000));
    sim.cmd(0, &["ADDSLOTSRANGE", "0", "8000", "8002", "8002"]);
    sim.cmd(1, &["ADDSLOTSRANGE", "8001", "8001", "8003", "16383"]);
    sim.meet_chain();
    sim.run_until(20_000, meshed).expect("mesh");
    let m0 = sim.id(0).to_string();
    sim.cmd(3, &["REPLICATE", &m0]);
    sim.cmd(0, &["SETSLOT", "5", "MIGRATING", &sim.id(1).to_string()]);
    sim.run_until(20_000, |s| s.nodes.iter().all(|n| n.core.state_ok()))
        .expect("ok");
    sim.cmd(0, &["SAVECONFIG"]);
    let conf = sim.nodes[0].conf.clone().expect("saved");
    assert!(conf.ends_with(&format!(
        "vars currentEpoch {} lastVoteEpoch 0\n",
        sim.nodes[0].core.current_epoch()
    )));
    assert!(conf.contains(&format!(" [5->-{}]", sim.id(1))), "{conf}");

    let loaded = Cluster::new(test_config(0, 1000), sim.now, 7, Some(&conf)).expect("load");
    assert_eq!(loaded.myself(), sim.id(0));
    assert_eq!(loaded.current_epoch(), sim.nodes[0].core.current_epoch());
    assert_eq!(loaded.my_epoch(), sim.nodes[0].core.my_epoch());
    assert_eq!(
        stable_fields(&loaded.config_file_contents()),
        stable_fields(&conf)
    );
    assert_eq!(loaded.known_ids().len(), 4);
    assert!(loaded.has_flag(&sim.id(3), SLAVE));
    assert_eq!(loaded.owner_id(8002), Some(sim.id(0)));
    assert_eq!(loaded.owner_id(8001), Some(sim.id(1)));
}

#[test]
fn restarted_node_keeps_its_identity_and_rejoins() {
    let mut sim = Sim::new(3, 32, |i| test_config(i, 1000));
    sim.cmd(0, &["ADDSLOTSRANGE", "0", "16383"]);
    sim.meet_chain();
    sim.run_until(20_000, |s| {
        meshed(s) && s.nodes.iter().all(|n| n.core.state_ok())
    })
    .expect("ok");
    let before = sim.id(2);
    let epoch = sim.nodes[2].core.current_epoch();
    sim.kill(2);
    sim.run_for(500);
    sim.restart(2);
    assert_eq!(sim.id(2), before);
    assert_eq!(sim.nodes[2].core.current_epoch(), epoch);
    assert!(sim.logged(2, &format!("Node configuration loaded, I'm {before}")));
    sim.run_until(10_000, |s| {
        meshed(s) && s.nodes.iter().all(|n| n.core.state_ok())
    })
    .expect("rejoined");
}

#[test]
fn loading_applies_redis_rules() {
    let (a, b, c, d) = (fixed_id('a'), fixed_id('b'), fixed_id('c'), fixed_id('d'));
    let conf = format!(
        "\n\
         {b} 10.0.0.2:7001@17001,host-b slave {a} 1700000000001 1700000000002 9 connected\n\
         {a} 10.0.0.1:7000 myself,master - 0 0 7 connected 0-10 12 [11-<-{c}] [13->-{b}]\n\
         vars currentEpoch 3 lastVoteEpoch 2 someVar 5\n\
         {c} 10.0.0.3:7002@17002 master,fail - 0 0 8 disconnected 100-200\n\
         \n\n"
    );
    let mut core = Cluster::new(test_config(0, 1000), T0, 1, Some(&conf)).expect("load");
    let id = |s: &str| NodeName::parse(s).unwrap_or(NodeName::NULL);
    assert_eq!(core.myself(), id(&a));
    // currentEpoch is raised to the largest configEpoch (c's 8; b's 9 is dropped).
    assert_eq!(core.current_epoch(), 8);
    assert_eq!(
        core.config_epoch_of(&id(&b)),
        Some(0),
        "replicas load configEpoch 0"
    );
    assert!(core.has_flag(&id(&c), FAIL));
    assert_eq!(core.owner_id(150), Some(id(&c)));
    assert_eq!(core.owner_id(12), Some(id(&a)));
    assert_eq!(core.owner_id(11), None);
    let text = core.nodes_text();
    let line_a = text
        .lines()
        .find(|l| l.starts_with(&a))
        .unwrap_or_default()
        .to_string();
    // No @cport means port + 10000; our own open slots are listed.
    assert_eq!(
        line_a,
        format!(
            "{a} 10.0.0.1:7000@17000 myself,master - 0 0 7 connected 0-10 12 [11-<-{c}] [13->-{b}]"
        )
    );
    let line_b = text
        .lines()
        .find(|l| l.starts_with(&b))
        .unwrap_or_default()
        .to_string();
    // Non-zero ping/pong load as "now"; the replica shows its master's epoch.
    assert_eq!(
        line_b,
        format!("{b} 10.0.0.2:7001@17001,host-b slave {a} {T0} {T0} 7 disconnected")
    );
    let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
    assert!(actions.iter().any(|a| matches!(a, Action::Log { text, .. } if text == "Skipping unknown cluster config variable 'someVar'")));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SaveConfig { .. })),
        "a loaded config is not rewritten at once"
    );
    let _ = d;
}

#[test]
fn corrupt_files_are_load_errors_with_the_line() {
    let a = fixed_id('a');
    let cases: Vec<(String, usize)> = vec![
        (format!("{a} 1.2.3.4:1@2 myself,master - 0 0 0\n"), 1), // 7 fields
        (
            format!(
                "vars currentEpoch 1\n{a} 1.2.3.4:1@2 myself,master - 0 0 0 connected\nvars x\n"
            ),
            3,
        ),
        (
            format!("{a} 1.2.3.4:1@2 myself,bogus - 0 0 0 connected\n"),
            1,
        ), // unknown flag
        (
            format!(
                "\n{} 1.2.3.4:1@2 myself,master - 0 0 0 connected\n",
                "A".repeat(40)
            ),
            2,
        ), // bad ID
        (format!("{a} 1.2.3.4 myself,master - 0 0 0 connected\n"), 1), // no port
        (
            format!("{a} 1.2.3.4:1@2 myself,master - 0 0 0 connected 16384\n"),
            1,
        ), // slot range
        (
            format!("{a} 1.2.3.4:1@2 myself,master - 0 0 0 connected [5->-xyz]\n"),
            1,
        ), // bad open slot
        (format!("{a} 1.2.3.4:1@2 master - 0 0 0 connected\n"), 2),    // no myself
        (
            format!("{a} 1.2.3.4:1@2 myself,master - 0 0 x connected\n"),
            1,
        ), // epoch
        ("\n\n".to_string(), 3),                                       // only padding
    ];
    for (text, line) in cases {
        match Cluster::new(test_config(0, 1000), T0, 1, Some(&text)) {
            Err(LoadError::Corrupt { line: l, reason }) => {
                assert_eq!(l, line, "{text:?}: {reason}")
            }
            Ok(_) => panic!("accepted corrupt file {text:?}"),
        }
    }
    // Empty content means "no file": a new identity.
    assert!(Cluster::new(test_config(0, 1000), T0, 1, Some("")).is_ok());
}

#[test]
fn keys_in_foreign_slots_are_taken_or_imported_at_startup() {
    let (a, b) = (fixed_id('a'), fixed_id('b'));
    let conf = format!(
        "{a} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-99\n\
         {b} 127.0.0.1:7001@17001 master - 0 0 2 connected 100-199\n\
         vars currentEpoch 2 lastVoteEpoch 0\n"
    );
    let mut core = Cluster::new(test_config(0, 1000), T0, 1, Some(&conf)).expect("load");
    let _ = std::iter::from_fn(|| core.poll_action()).count();
    let mut keys = super::sim::MemKeys::default();
    let key_of = |slot: u16| {
        (0..100_000)
            .map(|n| format!("k{n}"))
            .find(|k| crate::slots::key_slot(k.as_bytes()) == slot)
    };
    for slot in [5u16, 150, 300] {
        keys.add(&key_of(slot).unwrap_or_default());
    }
    assert!(core.verify_config_with_data(&keys));
    assert_eq!(core.owner_id(300), Some(core.myself()));
    assert!(core.nodes_text().contains(&format!("[150-<-{b}]")));
    let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
    let logs: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Log { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        logs,
        vec![
            "I have keys for slot 150, but the slot is assigned to another node. Setting it to importing state.",
            "I have keys for unassigned slot 300. Taking responsibility for it.",
        ]
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::SaveConfig { fsync: true, .. })));
    assert!(
        !core.verify_config_with_data(&keys),
        "a second check finds nothing to fix"
    );
}
