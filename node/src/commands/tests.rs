//! Command-layer tests: every command's happy path and error texts, the
//! redirection rules of reference section 4.5, MULTI/WATCH, and what is
//! handed to replication. Replies are compared as exact RESP bytes.

use std::collections::HashMap;

use bytes::Bytes;

use super::*;
use crate::cluster::SlotRoute;
use crate::resp::{encode_to_vec, split_args};
use crate::slots::key_slot;
use crate::wire::NodeName;

/// A host with a programmable slot map and clock.
pub(crate) struct TestHost {
    pub cluster: bool,
    pub state_ok: bool,
    pub reads_when_down: bool,
    pub replica: bool,
    pub now: u64,
    /// Slots not listed here are owned by this node.
    pub routes: HashMap<u16, SlotRoute>,
    pub server_calls: Vec<(String, Vec<Bytes>)>,
    /// Scripts and functions, kept across requests as a server keeps them.
    pub scripts: Option<Box<scripting::Engine>>,
    /// Pub/Sub maps, for the subscription tests.
    pub pubsub: Option<crate::pubsub::PubSub>,
}

impl TestHost {
    pub fn new() -> TestHost {
        TestHost {
            cluster: true,
            state_ok: true,
            reads_when_down: false,
            replica: false,
            now: 1_700_000_000_000,
            routes: HashMap::new(),
            server_calls: Vec::new(),
            scripts: None,
            pubsub: None,
        }
    }

    pub fn standalone() -> TestHost {
        TestHost {
            cluster: false,
            ..TestHost::new()
        }
    }

    fn set_route(&mut self, key: &str, route: SlotRoute) {
        self.routes.insert(key_slot(key.as_bytes()), route);
    }
}

fn node(n: u8) -> NodeName {
    NodeName([b'a' + n; 40])
}

fn mine() -> SlotRoute {
    SlotRoute {
        owner: Some((node(0), "127.0.0.1".into(), 30001)),
        owner_is_me: true,
        owner_is_my_master: false,
        migrating_to: None,
        importing: false,
    }
}

fn other(port: u16) -> SlotRoute {
    SlotRoute {
        owner: Some((node(1), "127.0.0.1".into(), port)),
        owner_is_me: false,
        owner_is_my_master: false,
        migrating_to: None,
        importing: false,
    }
}

fn unbound() -> SlotRoute {
    SlotRoute {
        owner: None,
        owner_is_me: false,
        owner_is_my_master: false,
        migrating_to: None,
        importing: false,
    }
}

impl Host for TestHost {
    fn cluster_enabled(&self) -> bool {
        self.cluster
    }
    fn route(&self, slot: u16) -> SlotRoute {
        self.routes.get(&slot).cloned().unwrap_or_else(mine)
    }
    fn cluster_state_ok(&self) -> bool {
        self.state_ok
    }
    fn allow_reads_when_down(&self) -> bool {
        self.reads_when_down
    }
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn pubsub(&mut self) -> Option<&mut crate::pubsub::PubSub> {
        self.pubsub.as_mut()
    }

    fn is_replica(&self) -> bool {
        self.replica
    }
    fn take_scripts(&mut self) -> Option<Box<scripting::Engine>> {
        self.scripts.take()
    }
    fn put_scripts(&mut self, engine: Box<scripting::Engine>) {
        self.scripts = Some(engine);
    }
    fn server_command(
        &mut self,
        name: &str,
        args: &[Bytes],
        _db: &mut Db,
        _c: &ClientState,
    ) -> Option<Frame> {
        self.server_calls.push((name.to_string(), args.to_vec()));
        match name {
            "cluster" | "info" | "config" => Some(Frame::Simple(format!("{name}-handled"))),
            _ => None,
        }
    }
}

/// A host, a db and one client, driven by redis-cli-like command lines.
struct Session {
    host: TestHost,
    db: Db,
    client: ClientState,
    last: Option<Outcome>,
}

impl Session {
    fn new() -> Session {
        Session::with_host(TestHost::new())
    }

    fn with_host(host: TestHost) -> Session {
        Session {
            host,
            db: Db::new(),
            client: ClientState::new(7),
            last: None,
        }
    }

    fn outcome(&mut self, line: &str) -> &Outcome {
        let args = split_args(line.as_bytes()).expect("test line quoting");
        let out = execute(&mut self.host, &mut self.db, &mut self.client, args);
        self.last = Some(out);
        self.last.as_ref().expect("just set")
    }

    /// Runs a command and returns the reply's bytes as text.
    fn run(&mut self, line: &str) -> String {
        let resp3 = {
            let args = split_args(line.as_bytes()).expect("test line quoting");
            let out = execute(&mut self.host, &mut self.db, &mut self.client, args);
            self.last = Some(out);
            self.client.resp3
        };
        let reply = &self.last.as_ref().expect("just set").reply;
        String::from_utf8_lossy(&encode_to_vec(reply, resp3)).into_owned()
    }

    fn writes(&self) -> Vec<String> {
        self.last
            .as_ref()
            .map(|o| {
                o.applied_writes
                    .iter()
                    .map(|w| {
                        w.iter()
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn check(&mut self, cases: &[(&str, &str)]) {
        for (line, want) in cases {
            assert_eq!(self.run(line), *want, "command: {line}");
        }
    }
}

const OK: &str = "+OK\r\n";
const NIL: &str = "$-1\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const NOTINT: &str = "-ERR value is not an integer or out of range\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";

// ---------------------------------------------------------------- generic

#[test]
fn unknown_commands_and_arity() {
    let mut s = Session::new();
    s.check(&[
        (
            "foo a b",
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            "foo",
            "-ERR unknown command 'foo', with args beginning with: \r\n",
        ),
        (
            "get",
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            "GET a b",
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            "client",
            "-ERR wrong number of arguments for 'client' command\r\n",
        ),
        (
            "client foo",
            "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n",
        ),
        (
            "Command Foo",
            "-ERR unknown subcommand 'Foo'. Try COMMAND HELP.\r\n",
        ),
        (
            "client getname x",
            "-ERR wrong number of arguments for 'client|getname' command\r\n",
        ),
        (
            "\"a\r\nb\"",
            "-ERR unknown command 'a  b', with args beginning with: \r\n",
        ),
    ]);
    // Arguments are listed until 128 bytes of them have been printed.
    let long = "x".repeat(100);
    let reply = s.run(&format!("nope {long} {long} {long}"));
    assert_eq!(
        reply,
        format!(
            "-ERR unknown command 'nope', with args beginning with: '{long}' '{}' \r\n",
            &long[..25]
        )
    );
}

#[test]
fn delegated_server_commands() {
    let mut s = Session::new();
    assert_eq!(s.run("CLUSTER INFO"), "+cluster-handled\r\n");
    assert_eq!(
        s.host.server_calls.last(),
        Some(&("cluster".to_string(), vec![Bytes::from_static(b"INFO")]))
    );
    assert_eq!(
        s.run("cluster addslotsrange 1"),
        "-ERR wrong number of arguments for 'cluster|addslotsrange' command\r\n"
    );
    assert_eq!(
        s.run("cluster nosuch"),
        "-ERR unknown subcommand 'nosuch'. Try CLUSTER HELP.\r\n"
    );
    assert_eq!(s.run("info"), "+info-handled\r\n");
    assert_eq!(s.run("config get save"), "+config-handled\r\n");
    // Known to the table, but the host does not serve it (yet).
    assert_eq!(
        s.run("replicaof no one"),
        "-ERR unknown command 'replicaof', with args beginning with: 'no' 'one' \r\n"
    );
}

// ------------------------------------------------------------- connection

#[test]
fn ping_echo_quit() {
    let mut s = Session::new();
    s.check(&[
        ("PING", "+PONG\r\n"),
        ("ping hi", "$2\r\nhi\r\n"),
        (
            "ping a b",
            "-ERR wrong number of arguments for 'ping' command\r\n",
        ),
        ("echo hello", "$5\r\nhello\r\n"),
        (
            "echo",
            "-ERR wrong number of arguments for 'echo' command\r\n",
        ),
    ]);
    assert!(!s.outcome("ping").close);
    let out = s.outcome("QUIT whatever");
    assert!(out.close);
    assert_eq!(out.reply, Frame::ok());
}

#[test]
fn hello_switches_protocol() {
    let mut s = Session::new();
    let map2 = "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n\
$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$7\r\ncluster\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    assert_eq!(s.run("hello"), map2);
    let map3 = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n\
$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$7\r\ncluster\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    assert_eq!(s.run("HELLO 3"), map3);
    assert!(s.client.resp3);
    assert_eq!(s.run("get nokey"), "_\r\n");
    s.check(&[
        ("hello 4", "-NOPROTO unsupported protocol version\r\n"),
        ("hello 1", "-NOPROTO unsupported protocol version\r\n"),
        (
            "hello foo",
            "-ERR Protocol version is not an integer or out of range\r\n",
        ),
        ("hello 3 foo", "-ERR Syntax error in HELLO option 'foo'\r\n"),
        (
            "hello 3 setname",
            "-ERR Syntax error in HELLO option 'setname'\r\n",
        ),
        (
            "hello 3 auth a",
            "-ERR Syntax error in HELLO option 'auth'\r\n",
        ),
        (
            "hello 2 auth a b",
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        (
            "hello 3 setname 'a b'",
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
        ),
    ]);
    // Failed HELLOs did not switch back to RESP2.
    assert!(s.client.resp3);
    s.run("hello 2 auth default pw setname conn1");
    assert!(!s.client.resp3);
    assert_eq!(s.run("client getname"), "$5\r\nconn1\r\n");

    let mut standalone = Session::with_host(TestHost {
        replica: true,
        ..TestHost::standalone()
    });
    let reply = standalone.run("hello");
    assert!(
        reply.contains("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$7\r\nreplica\r\n"),
        "{reply}"
    );
}

#[test]
fn select_auth_reset() {
    let mut s = Session::new();
    s.check(&[
        ("select 0", OK),
        ("select 1", "-ERR SELECT is not allowed in cluster mode\r\n"),
        (
            "select -1",
            "-ERR SELECT is not allowed in cluster mode\r\n",
        ),
        ("select x", NOTINT),
        ("select 2147483648", NOTINT),
        (
            "auth pw",
            "-ERR AUTH <password> called without any password configured for the default user. \
Are you sure your configuration is correct?\r\n",
        ),
        ("auth default pw", OK),
        (
            "auth bob pw",
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        ("auth a b c", SYNTAX),
    ]);
    let mut standalone = Session::with_host(TestHost::standalone());
    standalone.check(&[
        ("select 0", OK),
        ("select 3", "-ERR DB index is out of range\r\n"),
    ]);

    s.run("hello 3 setname me");
    s.run("readonly");
    s.run("watch k");
    s.run("multi");
    assert_eq!(s.run("reset"), "+RESET\r\n");
    assert!(!s.client.resp3 && !s.client.readonly && s.client.multi.is_none());
    assert_eq!(s.client.name, None);
    assert!(s.client.watched.is_empty());
    assert_eq!(s.db.watched_keys(), 0);
}

#[test]
fn asking_readonly_need_cluster_mode() {
    let mut s = Session::with_host(TestHost::standalone());
    for cmd in ["asking", "readonly", "readwrite"] {
        assert_eq!(
            s.run(cmd),
            "-ERR This instance has cluster support disabled\r\n"
        );
    }
    let mut c = Session::new();
    c.check(&[("asking", OK), ("readonly", OK), ("readwrite", OK)]);
}

#[test]
fn client_subcommands() {
    let mut s = Session::new();
    s.client.addr = "127.0.0.1:5555".into();
    s.client.laddr = "127.0.0.1:30001".into();
    s.client.fd = 9;
    s.client.created_ms = s.host.now - 3000;
    s.check(&[
        ("client id", ":7\r\n"),
        ("client getname", NIL),
        (
            "client setname 'a b'",
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
        ),
        ("client setname worker-1", OK),
        ("client getname", "$8\r\nworker-1\r\n"),
        ("client setname ''", OK),
        ("client getname", NIL),
        ("client setinfo lib-name redis-rs", OK),
        ("client setinfo lib-ver 1.0", OK),
        ("client setinfo foo x", "-ERR Unrecognized option 'foo'\r\n"),
        (
            "client setinfo lib-name 'a b'",
            "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n",
        ),
        ("client list type foo", "-ERR Unknown client type 'foo'\r\n"),
        ("client list id x", "-ERR Invalid client ID\r\n"),
        ("client list foo", SYNTAX),
        ("client list id 1 2", "$0\r\n\r\n"),
        ("client list type replica", "$0\r\n\r\n"),
    ]);
    let line = "id=7 addr=127.0.0.1:5555 laddr=127.0.0.1:30001 fd=9 name= age=3 idle=0 flags=N db=0 sub=0 psub=0 \
ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=10 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r \
cmd=client|info user=default redir=-1 resp=2\n";
    assert_eq!(
        s.run("client info"),
        format!("${}\r\n{line}\r\n", line.len())
    );
    let list = line.replace("cmd=client|info", "cmd=client|list");
    assert_eq!(
        s.run("client list"),
        format!("${}\r\n{list}\r\n", list.len())
    );
    let by_id = list.replace("argv-mem=10", "argv-mem=13");
    assert_eq!(
        s.run("client list id 7"),
        format!("${}\r\n{by_id}\r\n", by_id.len())
    );
    s.run("hello 3");
    let reply = s.run("client info");
    assert!(
        reply.starts_with("=")
            && reply.contains("\r\ntxt:id=7 ")
            && reply.ends_with("resp=3\n\r\n"),
        "{reply}"
    );
    assert!(s
        .run("client help")
        .starts_with("*48\r\n+CLIENT <subcommand>"));
}

#[test]
fn client_subcommands_check_arguments_as_redis() {
    let mut s = Session::new();
    s.check(&[
        ("client pause x", "-ERR timeout is not an integer or out of range\r\n"),
        ("client pause -1", "-ERR timeout is negative\r\n"),
        ("client pause 10 foo", "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"),
        (
            "client pause 10 write x",
            "-ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.\r\n",
        ),
        ("client kill id 0", "-ERR client-id should be greater than 0\r\n"),
        ("client kill id x", "-ERR client-id should be greater than 0\r\n"),
        ("client kill type foo", "-ERR Unknown client type 'foo'\r\n"),
        ("client kill user bob", "-ERR No such user 'bob'\r\n"),
        ("client kill skipme maybe", SYNTAX),
        ("client kill 1.2.3.4:5", "-ERR No such client\r\n"),
        ("client kill addr 1.2.3.4:5 laddr x", ":0\r\n"),
        ("client kill addr", "-ERR No such client\r\n"),
        ("client unblock 5 foo", "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"),
        ("client unblock x", "-ERR value is not an integer or out of range\r\n"),
        ("client unblock 99", ":0\r\n"),
        ("client no-evict maybe", SYNTAX),
        ("client reply maybe", SYNTAX),
        ("client getredir", ":-1\r\n"),
        ("client unpause", OK),
        ("client no-evict on", OK),
    ]);
    assert_eq!(
        s.run("client trackinginfo"),
        "*6\r\n$5\r\nflags\r\n*1\r\n+off\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"
    );
    assert!(s.run("client info").contains(" flags=e "));
    // CLIENT KILL of oneself, new syntax with SKIPME NO: counted and closed after the reply.
    s.client.addr = "127.0.0.1:5555".into();
    let out = execute(
        &mut s.host,
        &mut s.db,
        &mut s.client,
        split_args(b"client kill addr 127.0.0.1:5555 skipme no").unwrap_or_default(),
    );
    assert_eq!(out.reply, Frame::Integer(1));
    assert!(out.close);
}

#[test]
fn client_reply_off_and_skip_silence_replies() {
    let mut s = Session::new();
    let run = |s: &mut Session, line: &str| {
        execute(
            &mut s.host,
            &mut s.db,
            &mut s.client,
            split_args(line.as_bytes()).unwrap_or_default(),
        )
    };
    assert!(run(&mut s, "client reply off").silent);
    assert!(run(&mut s, "ping").silent);
    let on = run(&mut s, "client reply on");
    assert!(!on.silent);
    assert_eq!(on.reply, Frame::ok());
    assert!(run(&mut s, "client reply skip").silent);
    assert!(run(&mut s, "ping").silent, "the command after SKIP");
    assert!(!run(&mut s, "ping").silent, "only that one");
}

#[test]
fn pubsub_confirmations_and_context() {
    let mut s = Session::new();
    s.host.pubsub = Some(crate::pubsub::PubSub::default());
    s.check(&[
        ("unsubscribe", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"),
        ("punsubscribe", "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"),
        ("sunsubscribe", "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n"),
        (
            "subscribe a b",
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
        ),
        (
            "get x",
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
        ),
        ("ping", "*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        ("ping hi", "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"),
        ("psubscribe x*", "*3\r\n$10\r\npsubscribe\r\n$2\r\nx*\r\n:3\r\n"),
        ("unsubscribe b", "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:2\r\n"),
        ("punsubscribe", "*3\r\n$12\r\npunsubscribe\r\n$2\r\nx*\r\n:1\r\n"),
        ("unsubscribe", "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"),
        ("ping", "+PONG\r\n"),
    ]);
    // RESP3: pushes, and no restriction on commands.
    s.run("hello 3");
    assert_eq!(
        s.run("ssubscribe {t}a"),
        ">3\r\n$10\r\nssubscribe\r\n$4\r\n{t}a\r\n:1\r\n"
    );
    assert_eq!(s.run("get x"), "_\r\n");
    assert_eq!(s.run("pubsub shardchannels"), "*1\r\n$4\r\n{t}a\r\n");
    s.run("subscribe a b");
    s.run("psubscribe x*");
    s.check(&[
        ("pubsub numpat", ":1\r\n"),
        ("pubsub numsub a b c", "*6\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:1\r\n$1\r\nc\r\n:0\r\n"),
        (
            "pubsub channels a b",
            "-ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.\r\n",
        ),
    ]);
    // RESET drops every subscription.
    s.run("reset");
    assert_eq!(
        s.run("pubsub shardnumsub {t}a"),
        "*2\r\n$4\r\n{t}a\r\n:0\r\n"
    );
}

// ----------------------------------------------------------------- server

#[test]
fn time_dbsize_flush() {
    let mut s = Session::new();
    s.host.now = 1_700_000_123_456;
    assert_eq!(s.run("time"), "*2\r\n$10\r\n1700000123\r\n$6\r\n456000\r\n");
    assert_eq!(
        s.run("time x"),
        "-ERR wrong number of arguments for 'time' command\r\n"
    );
    s.run("set a 1");
    s.run("set b 2");
    s.check(&[
        ("dbsize", ":2\r\n"),
        ("flushall foo", SYNTAX),
        ("flushall sync extra", SYNTAX),
        ("flushall async", OK),
    ]);
    assert_eq!(s.writes(), vec!["flushall async"]);
    assert_eq!(s.run("dbsize"), ":0\r\n");
    s.run("set a 1");
    s.check(&[("flushdb SYNC", OK), ("dbsize", ":0\r\n")]);
}

#[test]
fn command_introspection() {
    let mut s = Session::new();
    let count = table::commands().len();
    assert_eq!(s.run("command count"), format!(":{count}\r\n"));
    let get = "*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n\
+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n\
$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n\
$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n";
    assert_eq!(s.run("command info foo GET"), format!("*2\r\n$-1\r\n{get}"));
    assert_eq!(
        s.run("command info client|id"),
        "*1\r\n*10\r\n$9\r\nclient|id\r\n:2\r\n*3\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n\
*2\r\n+@slow\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n"
    );
    assert!(s
        .run("command")
        .starts_with(&format!("*{count}\r\n*10\r\n$4\r\nping\r\n")));
    assert!(s.run("command info").starts_with(&format!("*{count}\r\n")));
    s.check(&[
        (
            "command getkeys mset a b c d",
            "*2\r\n$1\r\na\r\n$1\r\nc\r\n",
        ),
        (
            "command getkeys get",
            "-ERR wrong number of arguments for 'command|getkeys' command\r\n",
        ),
        (
            "command getkeys foo a",
            "-ERR Invalid command specified\r\n",
        ),
        (
            "command getkeys set a",
            "-ERR Invalid number of arguments specified for command\r\n",
        ),
        (
            "command getkeys ping a b",
            "-ERR The command has no key arguments\r\n",
        ),
        (
            "command getkeysandflags del k",
            "*1\r\n*2\r\n$1\r\nk\r\n*2\r\n+RM\r\n+delete\r\n",
        ),
        ("command docs", "*0\r\n"),
        ("command docs get", "*0\r\n"),
        ("command list filterby foo x", SYNTAX),
        ("command list x", SYNTAX),
        ("command list filterby module x", "*0\r\n"),
        ("command list filterby aclcat nosuch", "*0\r\n"),
        (
            "command count x",
            "-ERR wrong number of arguments for 'command|count' command\r\n",
        ),
    ]);
    let pattern = s.run("command list filterby pattern cl*");
    assert!(
        pattern.starts_with("*")
            && pattern.contains("$7\r\ncluster\r\n")
            && pattern.contains("$13\r\ncluster|nodes\r\n")
    );
    assert!(!pattern.contains("$4\r\nping\r\n"));
    let tx = s.run("command list filterby aclcat transaction");
    assert_eq!(
        tx,
        "*5\r\n$5\r\nmulti\r\n$4\r\nexec\r\n$7\r\ndiscard\r\n$5\r\nwatch\r\n$7\r\nunwatch\r\n"
    );
    assert!(s
        .run("command help")
        .starts_with("*21\r\n+COMMAND <subcommand>"));
    s.run("hello 3");
    assert_eq!(s.run("command docs"), "%0\r\n");
    assert!(s
        .run("command info get")
        .contains("~2\r\n+readonly\r\n+fast\r\n"));
}

// ---------------------------------------------------------------- strings

#[test]
fn get_set_and_options() {
    let mut s = Session::new();
    s.check(&[
        ("get k", NIL),
        ("set k v", OK),
        ("get k", "$1\r\nv\r\n"),
        (
            "set k v ex 0",
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            "set k v px -1",
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        ("set k v ex x", NOTINT),
        (
            "set k v ex 9223372036854775",
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            "set k v px 9223372036854775807",
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        ("set k v nx xx", SYNTAX),
        ("set k v ex 1 px 1", SYNTAX),
        ("set k v ex 1 keepttl", SYNTAX),
        ("set k v keepttl ex 1", SYNTAX),
        ("set k v foo", SYNTAX),
        ("set k v ex", SYNTAX),
        ("set k v nx", NIL),
        ("set k2 v xx", NIL),
        ("set k v2 get", "$1\r\nv\r\n"),
        ("set k v3 get nx", "$2\r\nv2\r\n"),
        ("set k3 v nx get", NIL),
        ("get k3", "$1\r\nv\r\n"),
        ("set k4 v xx get", NIL),
        ("get k4", NIL),
        ("set k v ex 10 ex 20", OK),
        ("ttl k", ":20\r\n"),
        ("set k v2 keepttl", OK),
        ("ttl k", ":20\r\n"),
        ("set k v", OK),
        ("ttl k", ":-1\r\n"),
        ("rpush l a", ":1\r\n"),
        ("get l", WRONGTYPE),
        ("set l v get", WRONGTYPE),
        ("type l", "+list\r\n"),
        ("set l v", OK),
        ("type l", "+string\r\n"),
    ]);
}

#[test]
fn set_expiry_variants_and_replication_form() {
    let mut s = Session::new();
    let now = s.host.now;
    assert_eq!(s.run("set k v ex 100"), OK);
    assert_eq!(s.writes(), vec![format!("SET k v PXAT {}", now + 100_000)]);
    assert_eq!(s.run("pttl k"), ":100000\r\n");
    assert_eq!(s.run("set k v px 1500"), OK);
    assert_eq!(s.run("ttl k"), ":2\r\n"); // rounds to nearest second
    assert_eq!(s.run(&format!("set k v exat {}", now / 1000 + 50)), OK);
    assert_eq!(s.run("ttl k"), ":50\r\n");
    assert_eq!(s.run(&format!("set k v pxat {}", now + 10)), OK);
    assert_eq!(s.run("pttl k"), ":10\r\n");
    // An absolute time in the past is accepted and the key is gone at once.
    assert_eq!(s.run("set k v exat 1"), OK);
    assert_eq!(s.run("get k"), NIL);
    assert_eq!(s.writes(), vec!["DEL k"]);
    s.run("set k v get");
    assert_eq!(s.writes(), vec!["set k v"]);
    s.run("set k v nx");
    assert!(s.writes().is_empty());
    assert_eq!(s.run("setex k 10 v"), OK);
    assert_eq!(s.writes(), vec![format!("SET k v PXAT {}", now + 10_000)]);
    assert_eq!(s.run("psetex k 10 v"), OK);
    assert_eq!(s.run("pttl k"), ":10\r\n");
    assert_eq!(
        s.run("setex k 0 v"),
        "-ERR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(s.run("psetex k x v"), NOTINT);
}

#[test]
fn setnx_getset_getdel() {
    let mut s = Session::new();
    s.check(&[
        ("setnx k x", ":1\r\n"),
        ("setnx k y", ":0\r\n"),
        ("get k", "$1\r\nx\r\n"),
        ("getset k y", "$1\r\nx\r\n"),
        ("getset nokey y", NIL),
        ("get nokey", "$1\r\ny\r\n"),
        ("lpush l a", ":1\r\n"),
        ("getset l y", WRONGTYPE),
        ("getdel l", WRONGTYPE),
        ("getdel k", "$1\r\ny\r\n"),
        ("getdel k", NIL),
        ("exists k", ":0\r\n"),
    ]);
}

#[test]
fn incr_family() {
    let mut s = Session::new();
    s.check(&[
        ("incr c", ":1\r\n"),
        ("incrby c 10", ":11\r\n"),
        ("decr c", ":10\r\n"),
        ("decrby c 20", ":-10\r\n"),
        ("incrby c x", NOTINT),
        ("set s abc", OK),
        ("incr s", NOTINT),
        ("set s ' 1'", OK),
        ("incr s", NOTINT),
        ("set s 01", OK),
        ("incr s", NOTINT),
        ("set i 9223372036854775807", OK),
        ("incr i", "-ERR increment or decrement would overflow\r\n"),
        (
            "decrby i -1",
            "-ERR increment or decrement would overflow\r\n",
        ),
        ("set j -9223372036854775808", OK),
        ("decr j", "-ERR increment or decrement would overflow\r\n"),
        (
            "incrby j -9223372036854775808",
            "-ERR increment or decrement would overflow\r\n",
        ),
        (
            "decrby j -9223372036854775808",
            "-ERR decrement would overflow\r\n",
        ),
        ("rpush l a", ":1\r\n"),
        ("incr l", WRONGTYPE),
        (
            "incr",
            "-ERR wrong number of arguments for 'incr' command\r\n",
        ),
    ]);
    // INCR keeps the TTL.
    s.run("set t 5 ex 100");
    assert_eq!(s.run("incr t"), ":6\r\n");
    assert_eq!(s.writes(), vec!["incr t"]);
    assert_eq!(s.run("ttl t"), ":100\r\n");
}

#[test]
fn append_strlen_mget_mset() {
    let mut s = Session::new();
    s.check(&[
        ("append a abc", ":3\r\n"),
        ("append a de", ":5\r\n"),
        ("get a", "$5\r\nabcde\r\n"),
        ("strlen a", ":5\r\n"),
        ("strlen nope", ":0\r\n"),
        ("rpush l x", ":1\r\n"),
        ("strlen l", WRONGTYPE),
        ("append l x", WRONGTYPE),
        (
            "mset {a}1 x {a}2",
            "-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        ("mset {a}1 x {a}2 y", OK),
        ("mget {a}1 {a}2 {a}3", "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$-1\r\n"),
        ("msetnx {a}1 z {a}3 z", ":0\r\n"),
        ("get {a}3", NIL),
        ("msetnx {a}4 z {a}3 z", ":1\r\n"),
        (
            "msetnx {a}4",
            "-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
        ("mget {l}1 {l}2", "*2\r\n$-1\r\n$-1\r\n"),
    ]);
    s.run("rpush {a}list x");
    assert_eq!(s.run("mget {a}1 {a}list"), "*2\r\n$1\r\nx\r\n$-1\r\n");
    // APPEND keeps the TTL.
    s.run("set t a ex 100");
    s.run("append t b");
    assert_eq!(s.run("ttl t"), ":100\r\n");
}

// ------------------------------------------------------------ keyspace

#[test]
fn type_exists_del_unlink() {
    let mut s = Session::new();
    s.run("mset {a}1 x {a}2 y");
    s.run("rpush {a}l x");
    s.run("sadd {a}s x");
    s.check(&[
        ("type {a}1", "+string\r\n"),
        ("type {a}l", "+list\r\n"),
        ("type {a}s", "+set\r\n"),
        ("type nokey", "+none\r\n"),
        ("exists {a}1 {a}1 {a}3", ":2\r\n"),
        ("del {a}1 {a}1 {a}3", ":1\r\n"),
        ("unlink {a}2 {a}l", ":2\r\n"),
        ("dbsize", ":1\r\n"),
    ]);
    assert_eq!(s.writes(), Vec::<String>::new());
    s.run("del {a}s");
    assert_eq!(s.writes(), vec!["del {a}s"]);
    s.run("del {a}s");
    assert!(s.writes().is_empty());
}

#[test]
fn expire_ttl_persist() {
    let mut s = Session::new();
    let now = s.host.now;
    s.check(&[
        ("set k v", OK),
        ("ttl k", ":-1\r\n"),
        ("pttl k", ":-1\r\n"),
        ("ttl nok", ":-2\r\n"),
        ("pttl nok", ":-2\r\n"),
        ("expire k 100", ":1\r\n"),
        ("ttl k", ":100\r\n"),
        ("expire k x", NOTINT),
        ("expire nok 10", ":0\r\n"),
        ("expire k 100 nx", ":0\r\n"),
        ("expire k 100 xx", ":1\r\n"),
        ("expire k 200 gt", ":1\r\n"),
        ("expire k 50 lt", ":1\r\n"),
        ("ttl k", ":50\r\n"),
        ("expire k 100 foo", "-ERR Unsupported option foo\r\n"),
        ("expire k x foo", "-ERR Unsupported option foo\r\n"),
        (
            "expire k 100 nx xx",
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
        (
            "expire k 100 gt lt",
            "-ERR GT and LT options at the same time are not compatible\r\n",
        ),
        (
            "expire k 100 nx gt",
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
        ("persist k", ":1\r\n"),
        ("persist k", ":0\r\n"),
        ("expire k 100 gt", ":0\r\n"),
        ("expire k 100 lt", ":1\r\n"),
        ("persist nok", ":0\r\n"),
        (
            "pexpire k 9223372036854775807",
            "-ERR invalid expire time in 'pexpire' command\r\n",
        ),
        (
            "expire k 9223372036854775807",
            "-ERR invalid expire time in 'expire' command\r\n",
        ),
        (
            "expire k 92233720368547758",
            "-ERR invalid expire time in 'expire' command\r\n",
        ),
    ]);
    assert_eq!(s.run("pexpire k 1500"), ":1\r\n");
    assert_eq!(s.writes(), vec![format!("PEXPIREAT k {}", now + 1500)]);
    assert_eq!(s.run(&format!("expireat k {}", now / 1000 + 7)), ":1\r\n");
    assert_eq!(s.run("ttl k"), ":7\r\n");
    assert_eq!(s.run(&format!("pexpireat k {}", now + 99)), ":1\r\n");
    assert_eq!(s.writes(), vec![format!("PEXPIREAT k {}", now + 99)]);
    // A past time deletes the key, and replicates as DEL.
    assert_eq!(s.run("expire k -1"), ":1\r\n");
    assert_eq!(s.writes(), vec!["DEL k"]);
    assert_eq!(s.run("exists k"), ":0\r\n");
    s.run("set k v");
    assert_eq!(s.run("pexpireat k 1"), ":1\r\n");
    assert_eq!(s.run("exists k"), ":0\r\n");
}

#[test]
fn keys_expire_with_the_host_clock() {
    let mut s = Session::new();
    s.run("set k v px 100");
    s.host.now += 99;
    assert_eq!(s.run("get k"), "$1\r\nv\r\n");
    assert_eq!(s.run("pttl k"), ":1\r\n");
    s.host.now += 1;
    assert_eq!(s.run("set other x"), OK);
    assert_eq!(s.writes(), vec!["set other x"]);
    // The lazy deletion is replicated before the command that noticed it.
    assert_eq!(s.run("rpush k a"), ":1\r\n");
    assert_eq!(s.writes(), vec!["DEL k", "rpush k a"]);
    s.run("set e v px 10");
    s.host.now += 10;
    assert_eq!(s.run("get e"), NIL);
    assert_eq!(s.writes(), vec!["DEL e"]);
    assert_eq!(s.run("dbsize"), ":2\r\n");
}

// ------------------------------------------------------------------ lists

#[test]
fn list_commands() {
    let mut s = Session::new();
    s.check(&[
        ("rpush l a b c", ":3\r\n"),
        ("lpush l x y", ":5\r\n"),
        (
            "lrange l 0 -1",
            "*5\r\n$1\r\ny\r\n$1\r\nx\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
        ),
        (
            "lrange l -100 100",
            "*5\r\n$1\r\ny\r\n$1\r\nx\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
        ),
        ("lrange l 1 2", "*2\r\n$1\r\nx\r\n$1\r\na\r\n"),
        ("lrange l -2 -1", "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        ("lrange l 5 1", "*0\r\n"),
        ("lrange l 5 10", "*0\r\n"),
        ("lrange l x 1", NOTINT),
        ("lrange nol 0 -1", "*0\r\n"),
        ("llen l", ":5\r\n"),
        ("llen nol", ":0\r\n"),
        ("lpop l", "$1\r\ny\r\n"),
        ("rpop l", "$1\r\nc\r\n"),
        ("lpop l 2", "*2\r\n$1\r\nx\r\n$1\r\na\r\n"),
        ("lpop l 0", "*0\r\n"),
        (
            "lpop l -1",
            "-ERR value is out of range, must be positive\r\n",
        ),
        (
            "lpop l x",
            "-ERR value is out of range, must be positive\r\n",
        ),
        (
            "lpop l 1 2",
            "-ERR wrong number of arguments for 'lpop' command\r\n",
        ),
        ("lpop nol", NIL),
        ("lpop nol 2", "*-1\r\n"),
        ("rpop l 10", "*1\r\n$1\r\nb\r\n"),
        ("exists l", ":0\r\n"),
        ("rpop l 0", "*-1\r\n"),
        ("set s x", OK),
        ("lpush s a", WRONGTYPE),
        ("lrange s 0 1", WRONGTYPE),
        ("lrange s x 1", NOTINT),
        ("llen s", WRONGTYPE),
        ("lpop s", WRONGTYPE),
        (
            "rpush l",
            "-ERR wrong number of arguments for 'rpush' command\r\n",
        ),
    ]);
    s.run("hello 3");
    assert_eq!(s.run("lpop nol 2"), "_\r\n");
}

// ------------------------------------------------------------------- sets

#[test]
fn set_commands() {
    let mut s = Session::new();
    s.check(&[
        ("sadd st a b a", ":2\r\n"),
        ("sadd st c", ":1\r\n"),
        ("sadd st c", ":0\r\n"),
        ("srem st a z", ":1\r\n"),
        (
            "srem st",
            "-ERR wrong number of arguments for 'srem' command\r\n",
        ),
        ("scard st", ":2\r\n"),
        ("scard nost", ":0\r\n"),
        ("sismember st b", ":1\r\n"),
        ("sismember st z", ":0\r\n"),
        ("sismember nost z", ":0\r\n"),
        ("smembers nost", "*0\r\n"),
        ("set s x", OK),
        ("sadd s x", WRONGTYPE),
        ("smembers s", WRONGTYPE),
        ("scard s", WRONGTYPE),
        ("srem s x", WRONGTYPE),
        ("sismember s x", WRONGTYPE),
        ("srem st b c", ":2\r\n"),
        ("exists st", ":0\r\n"),
        ("sadd ints 3 1 2 10 -5", ":5\r\n"),
        (
            "smembers ints",
            "*5\r\n$2\r\n-5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n",
        ),
    ]);
    s.run("sadd one x");
    assert_eq!(s.run("smembers one"), "*1\r\n$1\r\nx\r\n");
    s.run("sadd one x");
    assert!(s.writes().is_empty(), "no-op SADD is not replicated");
    s.run("hello 3");
    assert_eq!(s.run("smembers one"), "~1\r\n$1\r\nx\r\n");
    assert_eq!(s.run("smembers nost"), "~0\r\n");
}

// ------------------------------------------------------------ transactions

#[test]
fn multi_exec_discard() {
    let mut s = Session::new();
    s.check(&[
        ("exec", "-ERR EXEC without MULTI\r\n"),
        ("discard", "-ERR DISCARD without MULTI\r\n"),
        ("multi", OK),
        ("multi", "-ERR MULTI calls can not be nested\r\n"),
        ("watch x", "-ERR WATCH inside MULTI is not allowed\r\n"),
        ("set {a}x 1", "+QUEUED\r\n"),
        ("incr {a}x", "+QUEUED\r\n"),
        ("lpush {a}x 1", "+QUEUED\r\n"),
        ("exec", "*3\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        ("multi", OK),
        ("exec", "*0\r\n"),
        ("multi", OK),
        ("set k v", "+QUEUED\r\n"),
        ("discard", OK),
        ("get k", NIL),
    ]);
    assert_eq!(s.run("multi"), OK);
    s.run("set {a}y 1");
    s.run("incr {a}y");
    assert_eq!(s.run("exec"), "*2\r\n+OK\r\n:2\r\n");
    assert_eq!(s.writes(), vec!["set {a}y 1", "incr {a}y"]);
}

#[test]
fn errors_while_queuing_abort_exec() {
    let mut s = Session::new();
    s.check(&[
        ("multi", OK),
        ("set {a}x 1", "+QUEUED\r\n"),
        (
            "get",
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            "foo",
            "-ERR unknown command 'foo', with args beginning with: \r\n",
        ),
        (
            "exec",
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        ),
        ("get {a}x", NIL),
        ("exec", "-ERR EXEC without MULTI\r\n"),
    ]);
    // A rejected EXEC aborts (and ends) the transaction, with the reason.
    let abort = "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n";
    s.check(&[
        ("exec x", abort),
        ("multi", OK),
        ("set {a}x 1", "+QUEUED\r\n"),
        ("exec x", abort),
        ("exec", "-ERR EXEC without MULTI\r\n"),
    ]);
    // Errors raised by a command when it runs do not abort the transaction.
    s.check(&[
        ("multi", OK),
        ("multi", "-ERR MULTI calls can not be nested\r\n"),
        ("ping", "+QUEUED\r\n"),
        ("exec", "*1\r\n+PONG\r\n"),
    ]);
}

#[test]
fn watch_aborts_exec_when_key_changes() {
    let mut s = Session::new();
    let mut other = ClientState::new(8);
    s.check(&[
        ("set w 1", OK),
        ("watch w", OK),
        ("multi", OK),
        ("incr w", "+QUEUED\r\n"),
    ]);
    let out = execute(
        &mut s.host,
        &mut s.db,
        &mut other,
        split_args(b"set w 5").unwrap_or_default(),
    );
    assert_eq!(out.reply, Frame::ok());
    assert_eq!(s.run("exec"), "*-1\r\n");
    assert_eq!(s.run("get w"), "$1\r\n5\r\n");
    assert_eq!(s.db.watched_keys(), 0, "EXEC unwatches");

    // Unchanged watched key: EXEC runs.
    s.check(&[
        ("watch w", OK),
        ("multi", OK),
        ("incr w", "+QUEUED\r\n"),
        ("exec", "*1\r\n:6\r\n"),
    ]);
    // Changes by the client itself before MULTI count too.
    s.check(&[
        ("watch w", OK),
        ("set w 0", OK),
        ("multi", OK),
        ("incr w", "+QUEUED\r\n"),
        ("exec", "*-1\r\n"),
    ]);
    // UNWATCH forgets.
    s.check(&[
        ("watch w", OK),
        ("set w 0", OK),
        ("unwatch", OK),
        ("multi", OK),
        ("incr w", "+QUEUED\r\n"),
        ("exec", "*1\r\n:1\r\n"),
    ]);
    // A watched key that expires before EXEC aborts it.
    s.check(&[
        ("set t v px 50", OK),
        ("watch t", OK),
        ("multi", OK),
        ("ping", "+QUEUED\r\n"),
    ]);
    s.host.now += 50;
    assert_eq!(s.run("exec"), "*-1\r\n");
    // DISCARD also unwatches; disconnect cleans up.
    s.check(&[("watch {w}a {w}b", OK), ("multi", OK), ("discard", OK)]);
    assert_eq!(s.db.watched_keys(), 0);
    s.run("watch {w}a {w}b");
    assert_eq!(s.db.watched_keys(), 2);
    disconnect(&mut s.db, &mut s.client, None);
    assert_eq!(s.db.watched_keys(), 0);
    // RESP3 null for an aborted EXEC.
    s.run("hello 3");
    s.check(&[
        ("watch w", OK),
        ("del w", ":1\r\n"),
        ("multi", OK),
        ("exec", "_\r\n"),
    ]);
}

#[test]
fn watch_flushall_touches_only_existing_keys() {
    let mut s = Session::new();
    s.check(&[
        ("watch absent", OK),
        ("flushall", OK),
        ("multi", OK),
        ("exec", "*0\r\n"),
    ]);
    s.check(&[
        ("set p 1", OK),
        ("watch p", OK),
        ("flushall", OK),
        ("multi", OK),
        ("exec", "*-1\r\n"),
    ]);
}

// ------------------------------------------------------------- redirection

#[test]
fn keys_of_other_nodes_are_moved() {
    let mut s = Session::new();
    s.host.set_route("foo", other(30002));
    s.check(&[
        ("get foo", "-MOVED 12182 127.0.0.1:30002\r\n"),
        ("set foo v", "-MOVED 12182 127.0.0.1:30002\r\n"),
        ("watch foo", "-MOVED 12182 127.0.0.1:30002\r\n"),
        // Keyless commands are always served here.
        ("ping", "+PONG\r\n"),
        ("dbsize", ":0\r\n"),
        ("get bar", NIL),
    ]);
}

#[test]
fn crossslot_and_same_slot_keys() {
    let mut s = Session::new();
    s.check(&[
        (
            "mget a b",
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        ),
        (
            "mset a 1 b",
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        ),
        ("del a a", ":0\r\n"),
        ("mget {u}a {u}b", "*2\r\n$-1\r\n$-1\r\n"),
    ]);
}

#[test]
fn unbound_slot_and_cluster_down() {
    let mut s = Session::new();
    s.host.set_route("foo", unbound());
    assert_eq!(s.run("get foo"), "-CLUSTERDOWN Hash slot not served\r\n");
    s.host.state_ok = false;
    s.check(&[
        ("get bar", "-CLUSTERDOWN The cluster is down\r\n"),
        ("set bar v", "-CLUSTERDOWN The cluster is down\r\n"),
        // An unbound slot is reported before the cluster state.
        ("get foo", "-CLUSTERDOWN Hash slot not served\r\n"),
        ("ping", "+PONG\r\n"),
    ]);
    s.host.reads_when_down = true;
    s.check(&[
        ("get bar", NIL),
        (
            "set bar v",
            "-CLUSTERDOWN The cluster is down and only accepts read commands\r\n",
        ),
    ]);
}

#[test]
fn migrating_slot_asks_or_tries_again() {
    let mut s = Session::new();
    s.run("set {m}here v");
    let migrating = SlotRoute {
        migrating_to: Some(("127.0.0.1".into(), 30003)),
        ..mine()
    };
    s.host.set_route("{m}", migrating);
    let slot = key_slot(b"{m}");
    s.check(&[
        ("get {m}here", "$1\r\nv\r\n"),
        ("get {m}gone", &format!("-ASK {slot} 127.0.0.1:30003\r\n")),
        (
            "mget {m}gone {m}gone2",
            &format!("-ASK {slot} 127.0.0.1:30003\r\n"),
        ),
        (
            "mget {m}here {m}gone",
            "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
        ),
        ("mget {m}here {m}here", "*2\r\n$1\r\nv\r\n$1\r\nv\r\n"),
    ]);
    // An expired key counts as missing.
    s.run("pexpire {m}here 10");
    s.host.now += 10;
    assert_eq!(
        s.run("get {m}here"),
        format!("-ASK {slot} 127.0.0.1:30003\r\n")
    );
}

#[test]
fn importing_slot_needs_asking_once() {
    let mut s = Session::new();
    let importing = SlotRoute {
        importing: true,
        ..other(30002)
    };
    s.host.set_route("{i}", importing);
    let slot = key_slot(b"{i}");
    let moved = format!("-MOVED {slot} 127.0.0.1:30002\r\n");
    s.check(&[
        ("set {i}a v", &moved),
        ("asking", OK),
        ("set {i}a v", OK),
        // One-shot: the next command is redirected again.
        ("get {i}a", &moved),
        ("asking", OK),
        ("get {i}a", "$1\r\nv\r\n"),
        ("asking", OK),
        (
            "mget {i}a {i}b",
            "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
        ),
        ("asking", OK),
        ("mget {i}a {i}a", "*2\r\n$1\r\nv\r\n$1\r\nv\r\n"),
    ]);
    // ASKING survives an unknown command? No: any command clears it.
    s.check(&[("asking", OK), ("ping", "+PONG\r\n"), ("get {i}a", &moved)]);
    // ASKING before MULTI covers the whole transaction.
    s.check(&[
        ("asking", OK),
        ("multi", OK),
        ("get {i}a", "+QUEUED\r\n"),
        ("set {i}a w", "+QUEUED\r\n"),
        ("exec", "*2\r\n$1\r\nv\r\n+OK\r\n"),
        ("get {i}a", &moved),
    ]);
}

#[test]
fn readonly_replica_reads() {
    let mut s = Session::new();
    let masters = SlotRoute {
        owner_is_my_master: true,
        ..other(30002)
    };
    s.host.set_route("foo", masters);
    s.check(&[
        ("get foo", "-MOVED 12182 127.0.0.1:30002\r\n"),
        ("readonly", OK),
        ("get foo", NIL),
        ("set foo v", "-MOVED 12182 127.0.0.1:30002\r\n"),
        ("multi", OK),
        ("get foo", "+QUEUED\r\n"),
        ("exec", "*1\r\n$-1\r\n"),
        ("multi", OK),
        ("get foo", "+QUEUED\r\n"),
        ("readwrite", "+QUEUED\r\n"),
        ("exec", "*2\r\n$-1\r\n+OK\r\n"),
        ("get foo", "-MOVED 12182 127.0.0.1:30002\r\n"),
    ]);
    // Slots of another master are still redirected.
    s.host.set_route("bar", other(30004));
    s.run("readonly");
    assert_eq!(s.run("get bar"), "-MOVED 5061 127.0.0.1:30004\r\n");
}

#[test]
fn redirect_while_queuing_aborts_exec() {
    let mut s = Session::new();
    s.host.set_route("foo", other(30002));
    s.check(&[
        ("multi", OK),
        ("set bar 1", "+QUEUED\r\n"),
        ("get foo", "-MOVED 12182 127.0.0.1:30002\r\n"),
        (
            "exec",
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        ),
        ("get bar", NIL),
    ]);
}

#[test]
fn exec_checks_all_queued_keys() {
    let mut s = Session::new();
    s.check(&[
        ("multi", OK),
        ("set a 1", "+QUEUED\r\n"),
        ("set b 1", "+QUEUED\r\n"),
    ]);
    assert_eq!(
        s.run("exec"),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert!(
        s.client.multi.is_none(),
        "a redirected EXEC discards the transaction"
    );
    assert_eq!(s.run("exec"), "-ERR EXEC without MULTI\r\n");
    // The slot moves away between queuing and EXEC.
    s.check(&[
        ("watch foo", OK),
        ("multi", OK),
        ("set foo 1", "+QUEUED\r\n"),
    ]);
    s.host.set_route("foo", other(30002));
    assert_eq!(s.run("exec"), "-MOVED 12182 127.0.0.1:30002\r\n");
    assert_eq!(s.db.watched_keys(), 0);
    assert_eq!(s.run("get {x}foo"), NIL);
}

#[test]
fn master_link_is_never_redirected() {
    let mut s = Session::new();
    s.host.set_route("foo", other(30002));
    s.host.state_ok = false;
    let reply = apply_replicated(
        &mut s.host,
        &mut s.db,
        vec![
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"foo"),
            Bytes::from_static(b"v"),
        ],
    );
    assert_eq!(reply, Frame::ok());
    assert!(s.db.contains(b"foo", 0));
}

#[test]
fn standalone_mode_has_no_redirection() {
    let mut s = Session::with_host(TestHost::standalone());
    s.host.set_route("foo", other(30002));
    s.host.state_ok = false;
    s.check(&[("set foo v", OK), ("mget a b", "*2\r\n$-1\r\n$-1\r\n")]);
}

#[test]
fn replica_refuses_keyless_writes() {
    let mut s = Session::with_host(TestHost {
        replica: true,
        ..TestHost::new()
    });
    s.check(&[
        (
            "flushall",
            "-READONLY You can't write against a read only replica.\r\n",
        ),
        ("ping", "+PONG\r\n"),
        ("multi", OK),
        (
            "flushall",
            "-READONLY You can't write against a read only replica.\r\n",
        ),
        (
            "exec",
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        ),
    ]);
}

// ------------------------------------------------------------ replication

#[test]
fn applied_writes_replay_on_a_replica() {
    let mut master = Session::new();
    let mut replica_host = TestHost {
        replica: true,
        ..TestHost::new()
    };
    let mut replica_db = Db::new();
    set_replica_mode(&mut replica_db, true);
    let script = [
        "set a 1",
        "set b 2 ex 100",
        "incr a",
        "rpush l x y z",
        "lpop l",
        "sadd s m n",
        "srem s m",
        "expire a 50",
        "persist a",
        "append a 0",
        "del b",
        "getset c 1",
        "mset {m}1 a {m}2 b",
        "setex e 10 v",
    ];
    for line in script {
        master.run(line);
        for w in master
            .last
            .as_ref()
            .map(|o| o.applied_writes.clone())
            .unwrap_or_default()
        {
            let reply = apply_replicated(&mut replica_host, &mut replica_db, w);
            assert!(!matches!(reply, Frame::Error(_)), "{line}: {reply:?}");
        }
    }
    for key in ["a", "b", "c", "l", "s", "{m}1", "{m}2", "e"] {
        let m = master.db.get(key.as_bytes(), master.host.now).cloned();
        let r = replica_db.get(key.as_bytes(), replica_host.now).cloned();
        assert_eq!(m, r, "key {key}");
    }
    assert_eq!(master.db.len(), replica_db.len());
}

#[test]
fn failed_and_read_commands_replicate_nothing() {
    let mut s = Session::new();
    for line in [
        "get a",
        "set a 1 nx",
        "set a 2 nx",
        "incr x y",
        "lpop nol",
        "srem nos a",
        "expire nok 1",
        "persist a",
        "ping",
    ] {
        let first = line == "set a 1 nx";
        s.run(line);
        assert_eq!(s.writes().is_empty(), !first, "{line}");
    }
}

#[test]
fn parse_execute_encode_roundtrip() {
    // The path the shell takes: bytes in, bytes out.
    let mut host = TestHost::new();
    let mut db = Db::new();
    let mut client = ClientState::new(1);
    let mut input =
        bytes::BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\n"[..]);
    let mut out = bytes::BytesMut::new();
    let limits = crate::resp::RequestLimits::default();
    while let Some(args) = crate::resp::parse_request_buf(&mut input, &limits).expect("valid input")
    {
        let o = execute(&mut host, &mut db, &mut client, args);
        crate::resp::encode(&o.reply, client.resp3, &mut out);
    }
    assert_eq!(&out[..], b"+OK\r\n$1\r\nv\r\n");
}

// ------------------------------------------------------------------ fuzzing

mod props {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{a}1".to_string()),
            Just("{a}2".to_string()),
            Just("k".to_string()),
            Just("0".to_string()),
            Just("1".to_string()),
            Just("-1".to_string()),
            Just("9223372036854775807".to_string()),
            Just("-9223372036854775808".to_string()),
            Just("nx".to_string()),
            Just("xx".to_string()),
            Just("ex".to_string()),
            Just("pxat".to_string()),
            Just("get".to_string()),
            Just("keepttl".to_string()),
            Just("gt".to_string()),
            Just("type".to_string()),
            Just("id".to_string()),
            Just("filterby".to_string()),
            Just("pattern".to_string()),
            Just("*".to_string()),
            "[a-z0-9 ]{0,6}",
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        let mut names: Vec<String> = table::commands()
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        names.push("nosuch".into());
        (0..names.len()).prop_map(move |i| names[i].clone())
    }

    fn request() -> impl Strategy<Value = Vec<String>> {
        (name(), proptest::collection::vec(word(), 0..6)).prop_map(|(n, mut rest)| {
            rest.insert(0, n);
            rest
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

        /// Any sequence of requests is answered without panicking, and the
        /// store stays consistent with what DBSIZE reports.
        #[test]
        fn execute_never_panics(
            script in proptest::collection::vec(request(), 1..12),
            cluster in any::<bool>(),
            moved in any::<bool>(),
            advance in 0u64..3000,
        ) {
            let mut host = TestHost { cluster, ..TestHost::new() };
            if moved {
                host.set_route("k", other(30002));
            }
            let mut db = Db::new();
            let mut client = ClientState::new(1);
            for req in script {
                let args: Vec<Bytes> = req.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
                let out = execute(&mut host, &mut db, &mut client, args);
                let bytes = encode_to_vec(&out.reply, client.resp3);
                prop_assert!(!bytes.is_empty());
                host.now += advance;
            }
            let keys: usize = (0..crate::slots::CLUSTER_SLOTS as u16).map(|s| db.count_keys_in_slot(s)).sum();
            prop_assert_eq!(keys, db.len());
            disconnect(&mut db, &mut client, None);
            prop_assert_eq!(db.watched_keys(), 0);
        }
    }
}
