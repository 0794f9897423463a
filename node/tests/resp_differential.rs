//! Differential test: the same requests go to a real redis-server 7.0 (cluster
//! mode, one node owning every slot) and through this crate's parser,
//! `commands::execute` and encoder; the reply bytes must match.
//!
//! Skipped (with a message) when `redis-server` is not installed. The server
//! listens on 127.0.0.1, a port in 32000-32099, with a temporary directory,
//! and is killed when the test ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use hearsay_node::cluster::SlotRoute;
use hearsay_node::commands::{execute, ClientState, Host};
use hearsay_node::resp::{encode, parse_request, split_args, Frame, RequestLimits};
use hearsay_node::store::Db;
use hearsay_node::wire::NodeName;

/// A running redis-server, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_server_path() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

fn start_redis() -> Option<Redis> {
    let Some(bin) = redis_server_path() else {
        // CI must not silently skip (see scripts/test).
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "redis-server is required when CI=true"
        );
        return None;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // Spread concurrent runs (tests of this process, other processes) over
    // the allowed range.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 100) as u16 + NEXT.fetch_add(7, Ordering::Relaxed);
    let port = (0..100u16)
        .map(|i| 32000 + (offset + i) % 100)
        .find(|p| {
            TcpListener::bind(("127.0.0.1", *p)).is_ok()
                && TcpListener::bind(("127.0.0.1", *p + 10000)).is_ok()
        })
        .expect("a free port in 32000-32099");
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
        ])
        .args([
            "--cluster-config-file",
            "nodes.conf",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--enable-debug-command",
            "yes",
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(["--logfile", "redis.log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let mut redis = Redis {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // A server that could not bind exits: never talk to someone else's.
        assert!(
            matches!(redis.child.try_wait(), Ok(None)),
            "redis-server exited (port {port} taken?)"
        );
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Conn::new(port);
    assert_eq!(
        c.request(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        b"+OK\r\n"
    );
    loop {
        let info = c.request(&["CLUSTER", "INFO"]);
        if String::from_utf8_lossy(&info).contains("cluster_state:ok") {
            break;
        }
        assert!(Instant::now() < deadline, "cluster did not become ok");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(redis)
}

/// One client connection to the real server.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        // A server still starting up may reset a connection it accepted: retry
        // for a little while before calling it a failure.
        let mut tries = 0;
        let s = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect to 127.0.0.1:{port}: {e}"),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Conn {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
        }
    }

    fn request(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        self.send(&args)
    }

    fn send(&mut self, args: &[Bytes]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).expect("write");
        self.read_reply()
    }

    /// Reads exactly one reply, returning its raw bytes.
    fn read_reply(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).expect("read");
        assert!(line.len() >= 3, "short reply line {line:?}");
        let n: i64 = std::str::from_utf8(&line[1..line.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut out = line.clone();
        match line[0] {
            b'$' | b'=' if n >= 0 => {
                let mut data = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut data).expect("read bulk");
                out.extend_from_slice(&data);
            }
            b'*' | b'~' | b'>' => {
                for _ in 0..n.max(0) {
                    out.extend(self.read_reply());
                }
            }
            b'%' => {
                for _ in 0..2 * n.max(0) {
                    out.extend(self.read_reply());
                }
            }
            _ => {}
        }
        out
    }
}

/// Our side: all slots served here, real clock (redis uses it too).
struct LocalHost {
    /// Scripts and functions survive across requests, as in a server.
    scripts: Option<Box<hearsay_node::commands::scripting::Engine>>,
}

impl Host for LocalHost {
    fn cluster_enabled(&self) -> bool {
        true
    }
    fn route(&self, _slot: u16) -> SlotRoute {
        SlotRoute {
            owner: Some((NodeName([b'a'; 40]), "127.0.0.1".into(), 6379)),
            owner_is_me: true,
            owner_is_my_master: false,
            migrating_to: None,
            importing: false,
        }
    }
    fn cluster_state_ok(&self) -> bool {
        true
    }
    fn allow_reads_when_down(&self) -> bool {
        false
    }
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
    fn take_scripts(&mut self) -> Option<Box<hearsay_node::commands::scripting::Engine>> {
        self.scripts.take()
    }
    fn put_scripts(&mut self, engine: Box<hearsay_node::commands::scripting::Engine>) {
        self.scripts = Some(engine);
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

/// How a reply is compared.
#[derive(Clone, Copy, PartialEq)]
enum Cmp {
    Exact,
    /// Only the RESP type byte (time, ids, addresses differ by nature).
    Type,
}

fn show(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(&b[..b.len().min(600)]).replace("\r\n", "\\r\\n");
    if b.len() > 600 {
        format!("{text}... ({} bytes)", b.len())
    } else {
        text
    }
}

/// Runs scripts of command lines on both sides, each script on a fresh
/// connection and an empty keyspace.
fn run_scripts(redis: &Redis, scripts: &[&[(&str, Cmp)]]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut host = LocalHost { scripts: None };
    let mut db = Db::new();
    for script in scripts {
        let mut conn = Conn::new(redis.port);
        assert_eq!(conn.request(&["FLUSHALL"]), b"+OK\r\n");
        let id_reply = conn.request(&["CLIENT", "ID"]);
        let id: u64 = std::str::from_utf8(&id_reply[1..id_reply.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        db.flush_all(0);
        let mut client = ClientState::new(id);
        for (line, cmp) in script.iter() {
            let args =
                split_args(line.as_bytes()).unwrap_or_else(|| panic!("bad test line {line}"));
            let theirs = conn.send(&args);
            let outcome = execute(&mut host, &mut db, &mut client, args);
            let mut ours = BytesMut::new();
            encode(&outcome.reply, client.resp3, &mut ours);
            let same = match cmp {
                Cmp::Exact => theirs == ours[..],
                Cmp::Type => theirs.first() == ours.first(),
            };
            if !same {
                failures.push(format!(
                    "{line}\n   redis: {}\n    ours: {}",
                    show(&theirs),
                    show(&ours)
                ));
            }
        }
    }
    failures
}

use Cmp::{Exact as E, Type as T};

const CONNECTION: &[(&str, Cmp)] = &[
    ("ping", E),
    ("ping hello", E),
    ("ping a b", E),
    ("echo", E),
    ("echo 'a b'", E),
    ("hello", E),
    ("hello 4", E),
    ("hello 1", E),
    ("hello foo", E),
    ("hello 3 foo", E),
    ("hello 2 setname", E),
    ("hello 2 auth a b", E),
    ("hello 2 auth default x setname 'a b'", E),
    ("hello 2 setname conn-1", E),
    ("client getname", E),
    ("client setname ''", E),
    ("client getname", E),
    ("client setname x y", E),
    ("client", E),
    ("client foo", E),
    ("client id", E),
    ("client info", T),
    ("client list", T),
    ("client list id 0", E),
    ("client list type foo", E),
    ("client list foo", E),
    ("select 0", E),
    ("select 1", E),
    ("select x", E),
    ("select -1", E),
    ("auth x", E),
    ("auth default x", E),
    ("auth foo x", E),
    ("auth a b c", E),
    ("asking", E),
    ("readonly", E),
    ("readwrite", E),
    ("time", T),
    ("time x", E),
    ("dbsize", E),
    ("flushall foo", E),
    ("flushall async", E),
    ("flushdb sync", E),
    ("flushdb a b", E),
    ("foo a b", E),
    ("foo", E),
    ("GeT", E),
    ("quit x y", E),
];

const RESP3: &[(&str, Cmp)] = &[
    ("hello 3", E),
    ("get nokey", E),
    ("set k v", E),
    ("get k", E),
    ("lpop nol 2", E),
    ("sadd s 3 1 2", E),
    ("smembers s", E),
    ("smembers nos", E),
    ("multi", E),
    ("exec", E),
    ("watch k", E),
    ("set k w", E),
    ("multi", E),
    ("exec", E),
    ("command info get set mset del client|id command|count", E),
    ("command docs", T),
    ("client info", T),
    ("hello 2", E),
    ("reset", E),
];

const STRINGS: &[(&str, Cmp)] = &[
    ("set k v ex 0", E),
    ("set k v ex -1", E),
    ("set k v ex x", E),
    ("set k v ex 9223372036854775", E),
    ("set k v px 9223372036854775807", E),
    ("set k v exat 1", E),
    ("get k", E),
    ("set k v nx xx", E),
    ("set k v ex 1 px 1", E),
    ("set k v ex 10 ex 20", E),
    ("ttl k", E),
    ("set k v keepttl", E),
    ("ttl k", E),
    ("set k v keepttl ex 5", E),
    ("set k v foo", E),
    ("set k v ex", E),
    ("set k v get", E),
    ("set k v2 get nx", E),
    ("set k v3 nx get", E),
    ("set k2 v nx get", E),
    ("set k2 v xx get", E),
    ("set k3 v xx", E),
    ("lpush l a", E),
    ("set l v get", E),
    ("get l", E),
    ("set l v keepttl", E),
    ("type l", E),
    ("setnx k x", E),
    ("setnx n x", E),
    ("setex sx 100 v", E),
    ("ttl sx", E),
    ("setex sx 0 v", E),
    ("setex sx x v", E),
    ("psetex sx 100000 v", E),
    ("ttl sx", E),
    ("psetex sx -5 v", E),
    ("getset k y", E),
    ("getset nokey y", E),
    ("rpush l2 x", E),
    ("getset l2 y", E),
    ("getdel l2", E),
    ("getdel k", E),
    ("getdel k", E),
    ("incr k2", E),
    ("set i 9223372036854775807", E),
    ("incr i", E),
    ("decrby i -1", E),
    ("incrby i x", E),
    ("set j -9223372036854775808", E),
    ("decr j", E),
    ("incrby j -9223372036854775808", E),
    ("decrby j -9223372036854775808", E),
    ("set d ' 1'", E),
    ("incr d", E),
    ("set d 01", E),
    ("incr d", E),
    ("set d 123456789012345678901", E),
    ("incr d", E),
    ("incr newc", E),
    ("incrby newc 10", E),
    ("decr newc", E),
    ("decrby newc 3", E),
    ("incr l2", E),
    ("append newc xx", E),
    ("append app abc", E),
    ("append app ''", E),
    ("strlen app", E),
    ("strlen nope", E),
    ("strlen l2", E),
    ("append l2 x", E),
    ("mget k nokey l2", E),
    ("mset a", E),
    ("mset a 1 b", E),
    ("mset {a}1 x {a}2", E),
    ("mset {a}1 x {a}2 y", E),
    ("mget {a}1 {a}2 {a}3", E),
    ("msetnx {a}1 x {a}3 z", E),
    ("msetnx {a}4 x {a}3 z", E),
    ("mget {a}3 {a}4", E),
    ("msetnx {a}5", E),
];

const KEYS: &[(&str, Cmp)] = &[
    ("mset {a}1 x {a}2 y", E),
    ("exists {a}1 {a}1 {a}3", E),
    ("exists a b", E),
    ("del {a}1 {a}1 {a}3", E),
    ("unlink {a}2", E),
    ("del", E),
    ("type nok", E),
    ("set k v", E),
    ("type k", E),
    ("ttl k", E),
    ("pttl k", E),
    ("ttl nok", E),
    ("pttl nok", E),
    ("expire k 100", E),
    ("ttl k", E),
    ("expire k x", E),
    ("expire nok 10", E),
    ("expire k 100 nx", E),
    ("expire k 100 xx", E),
    ("expire k 200 gt", E),
    ("expire k 50 lt", E),
    ("ttl k", E),
    ("expire k 100 foo", E),
    ("expire k x foo", E),
    ("expire k 100 nx xx", E),
    ("expire k 100 gt lt", E),
    ("expire k 100 nx gt", E),
    ("expire k 100 NX", E),
    ("persist k", E),
    ("persist k", E),
    ("expire k 100 gt", E),
    ("expire k 100 lt", E),
    ("ttl k", E),
    ("persist nok", E),
    ("pexpire k 9223372036854775807", E),
    ("expire k 9223372036854775807", E),
    ("expire k -9223372036854775807", E),
    ("expire k 92233720368547758", E),
    ("pexpire k 9223372036854770000", E),
    ("pexpire k 100000", E),
    ("ttl k", E),
    ("expire k -1", E),
    ("exists k", E),
    ("set k v", E),
    ("expireat k 1", E),
    ("exists k", E),
    ("set k v", E),
    ("pexpireat k 99999999999999", E),
    ("pttl k", T),
    ("expireat k 99999999999", E),
    ("ttl k", T),
    ("pexpireat k 1", E),
    ("ttl k", E),
    ("set k v ex 100", E),
    ("persist k", E),
    ("ttl k", E),
];

const LISTS: &[(&str, Cmp)] = &[
    ("rpush l a b c", E),
    ("lpush l x y", E),
    ("lrange l 0 -1", E),
    ("lrange l -100 100", E),
    ("lrange l 1 2", E),
    ("lrange l -2 -1", E),
    ("lrange l 5 1", E),
    ("lrange l 5 10", E),
    ("lrange l -1 -2", E),
    ("lrange l x 1", E),
    ("lrange l 0 x", E),
    ("lrange nol 0 -1", E),
    ("llen l", E),
    ("llen nol", E),
    ("lpop l", E),
    ("rpop l", E),
    ("lpop l 2", E),
    ("lpop l 0", E),
    ("lpop l -1", E),
    ("lpop l x", E),
    ("lpop l 1 2", E),
    ("lpop nol", E),
    ("lpop nol 2", E),
    ("lpop nol 0", E),
    ("rpop l 10", E),
    ("llen l", E),
    ("exists l", E),
    ("rpop l 0", E),
    ("set s x", E),
    ("lpush s a", E),
    ("rpush s a", E),
    ("lrange s 0 1", E),
    ("lrange s x 1", E),
    ("llen s", E),
    ("lpop s", E),
    ("rpop s 2", E),
    ("rpush l", E),
];

const SETS: &[(&str, Cmp)] = &[
    ("sadd st a b a", E),
    ("sadd st c", E),
    ("sadd st c", E),
    ("srem st a z", E),
    ("srem st", E),
    ("scard st", E),
    ("scard nost", E),
    ("sismember st b", E),
    ("sismember st z", E),
    ("sismember nost z", E),
    ("smembers nost", E),
    ("sadd s1 x", E),
    ("smembers s1", E),
    ("set s x", E),
    ("sadd s x", E),
    ("srem s x", E),
    ("smembers s", E),
    ("scard s", E),
    ("sismember s x", E),
    ("srem st b c", E),
    ("exists st", E),
    ("sadd ints 3 1 2 10 -5 0", E),
    ("smembers ints", E),
    ("sadd ints 7", E),
    ("smembers ints", E),
    ("sismember ints 10", E),
];

const MULTI: &[(&str, Cmp)] = &[
    ("exec", E),
    ("exec x", E),
    ("multi", E),
    ("set {a}x 1", E),
    ("exec x", E),
    ("exec", E),
    ("multi", E),
    ("mget a b", E),
    ("sync", E),
    ("exec", E),
    ("discard", E),
    ("multi", E),
    ("multi", E),
    ("watch x", E),
    ("set {a}x 1", E),
    ("get", E),
    ("foo", E),
    ("exec", E),
    ("exec", E),
    ("multi", E),
    ("set {a}x 1", E),
    ("incr {a}x", E),
    ("lpush {a}x 1", E),
    ("exec", E),
    ("multi", E),
    ("exec", E),
    ("multi", E),
    ("multi", E),
    ("ping", E),
    ("exec", E),
    ("watch", E),
    ("unwatch x", E),
    ("watch w", E),
    ("set w 1", E),
    ("multi", E),
    ("get w", E),
    ("exec", E),
    ("watch w", E),
    ("multi", E),
    ("get w", E),
    ("exec", E),
    ("watch w {w}2", E),
    ("unwatch", E),
    ("set w 2", E),
    ("multi", E),
    ("get w", E),
    ("exec", E),
    ("watch a b", E),
    ("multi", E),
    ("set a 1", E),
    ("set b 1", E),
    ("exec", E),
    ("exec", E),
    ("multi", E),
    ("mget a b", E),
    ("exec", E),
    ("multi", E),
    ("set k v", E),
    ("discard", E),
    ("get k", E),
    ("multi", E),
    ("set k v", E),
    ("quit", E),
];

const HASHES: &[(&str, Cmp)] = &[
    ("hset h a 1 b 2 c 3", E),
    ("hset h a 9", E),
    ("hset h a", E),
    ("hset h a 1 b", E),
    ("hmset h d 4", E),
    ("hsetnx h a x", E),
    ("hsetnx h e 5", E),
    ("hget h a", E),
    ("hget h nope", E),
    ("hget nok a", E),
    ("hmget h a nope b", E),
    ("hgetall h", E),
    ("hkeys h", E),
    ("hvals h", E),
    ("hlen h", E),
    ("hexists h a", E),
    ("hexists h z", E),
    ("hstrlen h a", E),
    ("hincrby h a 10", E),
    ("hincrby h a x", E),
    ("hincrby h new -3", E),
    ("hset h s notanumber", E),
    ("hincrby h s 1", E),
    ("hincrbyfloat h f 1.5", E),
    ("hincrbyfloat h f 0.25", E),
    ("hincrbyfloat h f x", E),
    ("hincrbyfloat h s 1", E),
    ("hdel h a nope", E),
    ("hdel h b c d e f new s", E),
    ("exists h", E),
    ("set str x", E),
    ("hget str a", E),
    ("hset str a 1", E),
    ("hgetall nok", E),
    ("hscan h x", E),
    ("hset h2 a 1", E),
    ("hscan h2 0", E),
    ("hscan h2 0 match a* count 5", E),
    ("hrandfield nok", E),
    ("hrandfield h2 2", E),
    ("hrandfield h2 -2 withvalues", E),
    ("hrandfield h2 1 foo", E),
    ("object encoding h2", E),
    ("type h2", E),
    ("debug digest-value h2", E),
    ("hello 3", E),
    ("hgetall h2", E),
];

const ZSETS: &[(&str, Cmp)] = &[
    ("zadd z 1 a 2 b 3 c", E),
    ("zadd z 1.5 a", E),
    ("zadd z nx 9 a 4 d", E),
    ("zadd z xx ch 7 a 5 e", E),
    ("zadd z gt ch 1 a", E),
    ("zadd z lt ch 1 a", E),
    ("zadd z incr 2 a", E),
    ("zadd z nx xx 1 a", E),
    ("zadd z gt lt 1 a", E),
    ("zadd z incr 1 a 2 b", E),
    ("zadd z x a", E),
    ("zadd z 1", E),
    ("zadd z 1 a 2", E),
    ("zincrby z 2.5 b", E),
    ("zincrby z x b", E),
    ("zscore z a", E),
    ("zscore z nope", E),
    ("zmscore z a nope b", E),
    ("zcard z", E),
    ("zcard nok", E),
    ("zrank z a", E),
    ("zrevrank z a", E),
    ("zrank z nope", E),
    ("zrange z 0 -1", E),
    ("zrange z 0 -1 withscores", E),
    ("zrange z 1 2 rev", E),
    ("zrange z -2 100", E),
    ("zrange z 5 1", E),
    ("zrange z (1 +inf byscore", E),
    ("zrange z +inf -inf byscore rev limit 0 2 withscores", E),
    ("zrange z - + bylex", E),
    ("zrange z 0 -1 limit 0 1", E),
    ("zrange z - + bylex withscores", E),
    ("zrange z x 1", E),
    ("zrange z 0 1 foo", E),
    ("zrangebyscore z -inf +inf withscores limit 1 1", E),
    ("zrangebyscore z x 1", E),
    ("zrevrangebyscore z 3 1", E),
    ("zrevrange z 0 1 withscores", E),
    ("zcount z 2 (4", E),
    ("zcount z a b", E),
    ("zadd lex 0 a 0 b 0 c 0 d", E),
    ("zrangebylex lex [b (d", E),
    ("zrevrangebylex lex + [b limit 0 2", E),
    ("zrangebylex lex b d", E),
    ("zlexcount lex - +", E),
    ("zremrangebylex lex [a [b", E),
    ("zremrangebyrank z 0 0", E),
    ("zremrangebyscore z -inf 4", E),
    ("zrange z 0 -1 withscores", E),
    ("zpopmin z", E),
    ("zadd z 1 a 2 b 3 c", E),
    ("zpopmax z 2", E),
    ("zpopmin z -1", E),
    ("zpopmin nok", E),
    ("zrem z a nope", E),
    ("zrem z e", E),
    ("exists z", E),
    ("zscan lex 0", E),
    ("zrandmember nok", E),
    ("zrandmember lex 5 withscores", T),
    ("object encoding lex", E),
    ("type lex", E),
    ("debug digest-value lex", E),
    ("set str x", E),
    ("zadd str 1 a", E),
    ("zscore str a", E),
    ("hello 3", E),
    ("zrange lex 0 -1 withscores", E),
    ("zscore lex c", E),
    ("zpopmin lex", E),
    ("zpopmin lex 1", E),
];

const STREAMS: &[(&str, Cmp)] = &[
    ("xadd s 1-1 f v", E),
    ("xadd s 1-1 f v", E),
    ("xadd s 1-* g w", E),
    ("xadd s 2 a b c d", E),
    ("xadd s 0-0 f v", E),
    ("xadd s 3-0 f", E),
    ("xadd s bad f v", E),
    ("xadd nok nomkstream * f v", E),
    ("xlen s", E),
    ("xlen nok", E),
    ("xrange s - +", E),
    ("xrange s - + count 2", E),
    ("xrange s (1-1 +", E),
    ("xrange s 2 2", E),
    ("xrevrange s + - count 1", E),
    ("xrange s x +", E),
    ("xrange nok - +", E),
    ("xread count 1 streams s 0", E),
    ("xread streams s 1-2", E),
    ("xread streams s", E),
    ("xread streams s nok 0 0", E),
    ("xread streams s $", E),
    ("xread count x streams s 0", E),
    ("xread block -1 streams s 0", E),
    ("xdel s 1-1 9-9", E),
    ("xadd s maxlen 2 4-0 x y", E),
    ("xrange s - +", E),
    ("xtrim s maxlen 1", E),
    ("xtrim s minid 5", E),
    ("xtrim s foo 1", E),
    ("xsetid s 9-9", E),
    ("xsetid s 1-1", E),
    ("xsetid nok 1-1", E),
    ("xadd s * f v", T),
    ("type s", E),
    ("object encoding s", E),
    ("debug digest-value nok", E),
];

const KEYSPACE: &[(&str, Cmp)] = &[
    ("mset {k}a 1 {k}b 2", E),
    ("rename {k}a {k}c", E),
    ("rename {k}a {k}d", E),
    ("renamenx {k}b {k}c", E),
    ("renamenx {k}b {k}e", E),
    ("mget {k}a {k}b {k}c {k}e", E),
    ("rename {k}c {k}c", E),
    ("touch {k}c {k}e nope", E),
    ("keys *", T),
    ("keys {k}c", E),
    ("scan 0 count x", E),
    ("scan x", E),
    ("scan 0 foo", E),
    ("scan 0 count 0", E),
    ("randomkey", T),
    ("incrbyfloat f 1.5", E),
    ("incrbyfloat f 0.1", E),
    ("incrbyfloat f x", E),
    ("incrbyfloat {k}c 2", E),
    ("object encoding f", E),
    ("set n 1", E),
    ("set big 12345678", E),
    ("object encoding n", E),
    ("object encoding big", E),
    ("object encoding nok", E),
    ("object refcount n", E),
    ("object refcount big", E),
    ("object help", T),
    ("debug digest-value {k}c f", E),
    ("shutdown foo", E),
    ("debug foo", E),
    ("debug sleep 0", E),
];

const SCRIPTS: &[(&str, Cmp)] = &[
    ("eval 'return 1' 0", E),
    ("eval 'return {1,2,{3,\"x\"},nil,4}' 0", E),
    ("eval 'return redis.call(\"set\", KEYS[1], ARGV[1])' 1 k v", E),
    ("eval 'return redis.call(\"get\", KEYS[1])' 1 k", E),
    ("eval 'return redis.call(\"nosuch\")' 0", E),
    ("eval 'return redis.pcall(\"incr\", KEYS[1])' 1 k", E),
    ("eval 'return redis.call(\"incr\", KEYS[1])' 1 k", E),
    ("eval 'error(\"boom\")' 0", E),
    ("eval 'return redis.error_reply(\"MY err\")' 0", E),
    ("eval 'return redis.status_reply(\"FINE\")' 0", E),
    ("eval 'return redis.sha1hex(\"abc\")' 0", E),
    ("eval 'return true' 0", E),
    ("eval 'return false' 0", E),
    ("eval 'return 3.99' 0", E),
    ("eval 'return KEYS[1] .. ARGV[1]' 1 a b", E),
    ("eval 'return 1' -1", E),
    ("eval 'return 1' 2 a", E),
    ("eval 'return 1' x", E),
    ("eval 'return' 0", E),
    ("eval 'retur 1' 0", E),
    ("eval '#!lua flags=no-writes\nreturn redis.call(\"set\",\"k\",\"v\")' 0", E),
    ("eval '#!lua flags=no-writes\nreturn redis.call(\"get\",\"k\")' 0", E),
    ("eval '#!lua flags=bogus\nreturn 1' 0", E),
    ("eval '#!nope\nreturn 1' 0", E),
    ("eval '#!lua flags=no-cluster\nreturn 1' 0", E),
    ("eval_ro '#!lua\nreturn 1' 0", E),
    ("eval_ro 'return redis.call(\"set\",\"k\",\"v\")' 0", E),
    ("eval 'return redis.call(\"multi\")' 0", E),
    ("eval 'return redis.call(\"get\")' 0", E),
    ("eval 'return redis.call()' 0", E),
    ("eval 'return redis.call(\"get\", {})' 0", E),
    ("eval 'return redis.call(\"hgetall\", \"nok\")' 0", E),
    ("script load 'return 42'", E),
    ("evalsha 1fa00e76656cc152ad327c13fe365858fd7be306 0", E),
    ("evalsha 1fa00e76656cc152ad327c13fe365858fd7be300 0", E),
    ("script exists 1fa00e76656cc152ad327c13fe365858fd7be306 ffff", E),
    ("script flush", E),
    ("script flush foo", E),
    ("script exists 1fa00e76656cc152ad327c13fe365858fd7be306", E),
    ("script kill", E),
    ("function flush", E),
    ("function load '#!lua name=lib1\nredis.register_function(\"f1\", function(keys, args) return args[1] end)'", E),
    ("function load '#!lua name=lib1\nredis.register_function(\"f1\", function() return 1 end)'", E),
    ("function load replace '#!lua name=lib1\nredis.register_function{function_name=\"f1\", callback=function() return redis.call(\"ping\") end, flags={\"no-writes\"}}'", E),
    ("function load '#!lua name=lib2\nredis.register_function(\"f1\", function() return 1 end)'", E),
    ("function load '#!lua name=lib3\nreturn 1'", E),
    ("function load 'return 1'", E),
    ("function load '#!lua\nreturn 1'", E),
    ("function load '#!py name=x\nreturn 1'", E),
    ("function load '#!lua name=a-b\nreturn 1'", E),
    ("fcall f1 0", E),
    ("fcall_ro f1 0", E),
    ("fcall nope 0", E),
    ("function list", E),
    ("function list withcode", E),
    ("function list libraryname lib*", E),
    ("function stats", E),
    ("function delete lib1", E),
    ("function delete lib1", E),
    ("function list", E),
    ("function kill", E),
];

const COMMAND: &[(&str, Cmp)] = &[
    ("command getkeys", E),
    ("command getkeys foo a", E),
    ("command getkeys get", E),
    ("command getkeys get a b", E),
    ("command getkeys ping a b", E),
    ("command getkeys mset a b c d", E),
    ("command getkeys mset a b c", E),
    ("command getkeys set a", E),
    ("command getkeys del a b c", E),
    ("command getkeysandflags set k v", E),
    ("command getkeysandflags lpop k", E),
    ("command getkeysandflags mset a 1 b 2", E),
    ("command info foo", E),
    ("command info GET", E),
    (
        "command info cluster|info client|getname command|count config|get",
        E,
    ),
    ("command foo", E),
    ("command count x", E),
    ("command list filterby foo x", E),
    ("command list x", E),
    ("command list filterby module x", E),
    ("command list filterby aclcat foo", E),
    ("command list filterby pattern", E),
    ("command help", E),
    ("command docs foo", E),
    // Documentation is not served (an empty map is valid for clients).
    ("command docs", T),
];

#[test]
fn replies_match_redis_server() {
    let Some(redis) = start_redis() else {
        eprintln!("redis-server not found on PATH: differential test skipped");
        return;
    };
    let mut failures = run_scripts(
        &redis,
        &[
            CONNECTION, RESP3, STRINGS, KEYS, LISTS, SETS, MULTI, COMMAND, HASHES, ZSETS, STREAMS,
            KEYSPACE, SCRIPTS,
        ],
    );

    // COMMAND INFO of every command we implement, byte for byte (container
    // commands list only the subcommands we serve, so they are compared one
    // subcommand at a time).
    let mut per_command: Vec<String> = Vec::new();
    for spec in hearsay_node::commands::table::commands() {
        if spec.subcommands.is_empty() {
            per_command.push(format!("command info {}", spec.name));
        } else {
            for sub in spec.subcommands {
                // CLIENT SETINFO is a 7.2 subcommand we accept on purpose.
                if sub.name != "client|setinfo" {
                    per_command.push(format!("command info {}", sub.name));
                }
            }
        }
    }
    let script: Vec<(&str, Cmp)> = per_command.iter().map(|l| (l.as_str(), E)).collect();
    failures.extend(run_scripts(&redis, &[&script]));
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Raw byte streams, including malformed ones: redis answers what it can,
/// then `-ERR Protocol error: ...` and closes the connection.
#[test]
fn protocol_errors_match_redis_server() {
    let Some(redis) = start_redis() else {
        eprintln!("redis-server not found on PATH: differential test skipped");
        return;
    };
    let inputs: &[&[u8]] = &[
        b"PING\r\n",
        b"PING\n",
        b"ping hello\r\n",
        b"\r\n\r\nPING\r\n",
        b"set a \"b c\"\r\nget a\r\n",
        b"set a 'x\\'y'\r\nget a\r\n",
        b"echo \"\\x41\\x4a\\n\"\r\n",
        b"echo \"unbalanced\r\n",
        b"echo \"a\"b\r\n",
        b"*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n",
        b"*1\r\n$4\r\nPINGxy*1\r\n$4\r\nPING\r\n",
        b"*x\r\n",
        b"*01\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$x\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\nfoo\r\n",
        b"*2\r\n$4\r\nECHO\r\n:1\r\n",
        b"*3000000000\r\n",
        b"*1\r\n$536870913\r\n",
    ];
    let mut failures = Vec::new();
    for input in inputs {
        let mut s = TcpStream::connect(("127.0.0.1", redis.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        s.write_all(input).expect("write");
        let mut theirs = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => theirs.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }

        let mut host = LocalHost { scripts: None };
        let mut db = Db::new();
        let mut client = ClientState::new(1);
        let mut ours = BytesMut::new();
        let limits = RequestLimits {
            max_multibulk_len: i32::MAX as usize,
            ..RequestLimits::default()
        };
        let mut rest: &[u8] = input;
        loop {
            match parse_request(rest, &limits) {
                Ok(Some((args, n))) => {
                    rest = &rest[n..];
                    if !args.is_empty() {
                        let o = execute(&mut host, &mut db, &mut client, args);
                        encode(&o.reply, client.resp3, &mut ours);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    encode(&e.to_frame(), client.resp3, &mut ours);
                    break;
                }
            }
        }
        if theirs != ours[..] {
            failures.push(format!(
                "{}\n   redis: {}\n    ours: {}",
                show(input),
                show(&theirs),
                show(&ours)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
