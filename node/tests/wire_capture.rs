//! Captures cluster bus frames from real redis-server 7.0.15 processes into
//! `tests/fixtures/bus/` (see the README there). Needs `redis-server` and `redis-cli` on
//! PATH and free ports 31000-31003 / 41000-41003 on 127.0.0.1, so it is ignored by default:
//!
//! ```text
//! cargo test -p hearsay-node --test wire_capture -- --ignored --nocapture
//! ```
//!
//! Set `HEARSAY_CAPTURE_DIR` to write somewhere other than the fixtures folder.
//!
//! Three real nodes A, B, C (ports 31001-31003, bus +10000) form a cluster with
//! `redis-cli --cluster create`; A announces a hostname. A fake peer (port 31000, bus
//! 41000), speaking our codec over plain std TCP, MEETs A and answers every PING/MEET with
//! a PONG, so the real nodes take it for a slotless master. Then:
//! - SIGSTOP C until A/B broadcast FAIL about it (FAIL, and gossip flagged PFAIL/FAIL);
//! - SIGCONT C; the fake claims one of A's slots with configEpoch 0 (UPDATE about A);
//! - PUBLISH on A (PUBLISH broadcast);
//! - the fake turns into a replica of A, then SPUBLISH on A (PUBLISHSHARD to A's shard).
//!
//! Every redis-server started here is killed by its PID and the temp dir removed, also
//! when the capture fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hearsay_node::slots::{key_slot, SlotSet};
use hearsay_node::wire::{
    self, check_prefix, decode, msg_type, node_flags, Body, DecodeError, Header, Message, NodeName,
    MAX_FRAME_LEN,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const HOST: &str = "127.0.0.1";
const BUS_INCR: u16 = 10000;
const FAKE_PORT: u16 = 31000;
const REAL_PORTS: [u16; 3] = [31001, 31002, 31003];
const HOSTNAME_A: &str = "host-31001.example";
const FAKE_ID: &str = "c0ffee0000000000000000000000000000000001";
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
#[ignore = "needs redis-server 7.0 and free ports 31000-31003/41000-41003; writes fixtures"]
fn capture_bus_fixtures() -> Result<()> {
    let out_dir = std::env::var_os("HEARSAY_CAPTURE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bus"));
    for port in [FAKE_PORT].iter().chain(REAL_PORTS.iter()) {
        for p in [*port, port + BUS_INCR] {
            TcpListener::bind((HOST, p)).with_context(|| format!("port {p} is busy"))?;
        }
    }
    let servers = Servers::start()?;
    let result = capture(&servers, &out_dir);
    if result.is_err() {
        servers.print_log_tails();
    }
    drop(servers);
    result
}

/// The real redis-server processes. Dropping kills each one by PID (after SIGCONT, in
/// case it is stopped) and then removes the temp dir.
struct Servers {
    children: Vec<(u16, Child)>,
    dir: tempfile::TempDir,
}

impl Servers {
    fn start() -> Result<Servers> {
        let dir = tempfile::Builder::new()
            .prefix("hearsay-capture-")
            .tempdir()?;
        let mut servers = Servers {
            children: Vec::new(),
            dir,
        };
        for port in REAL_PORTS {
            let node_dir = servers.dir.path().join(port.to_string());
            std::fs::create_dir(&node_dir)?;
            let mut conf = format!(
                "port {port}\nbind {HOST}\nprotected-mode no\ncluster-enabled yes\n\
                 cluster-config-file nodes.conf\ncluster-node-timeout 2000\nsave \"\"\n\
                 appendonly no\ndaemonize no\ndir {}\nlogfile redis.log\nloglevel verbose\n",
                node_dir.display()
            );
            if port == REAL_PORTS[0] {
                conf.push_str(&format!("cluster-announce-hostname {HOSTNAME_A}\n"));
            }
            let conf_path = node_dir.join("redis.conf");
            std::fs::write(&conf_path, conf)?;
            let child = Command::new("redis-server")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("spawning redis-server")?;
            servers.children.push((port, child));
        }
        for port in REAL_PORTS {
            wait_until(Duration::from_secs(10), || {
                Ok(redis_cmd(port, &["PING"]).ok().as_deref() == Some("PONG"))
            })
            .with_context(|| format!("redis-server on {port} did not start"))?;
        }
        Ok(servers)
    }

    fn pid(&self, port: u16) -> Result<Pid> {
        let (_, child) = self
            .children
            .iter()
            .find(|(p, _)| *p == port)
            .ok_or_else(|| anyhow!("no server on {port}"))?;
        Ok(Pid::from_raw(i32::try_from(child.id())?))
    }

    fn print_log_tails(&self) {
        for (port, _) in &self.children {
            let log = self.dir.path().join(port.to_string()).join("redis.log");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- {} (last 40 lines)", log.display());
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One frame the fake peer received.
struct Captured {
    /// Which connection: `out:<port>` (ours) or `in#<n>` (accepted).
    link: String,
    raw: Vec<u8>,
    msg: Result<Message, DecodeError>,
}

impl Captured {
    fn is(&self, t: u16) -> bool {
        matches!(&self.msg, Ok(m) if m.header.msg_type == t)
    }

    fn from(&self, id: &NodeName) -> bool {
        matches!(&self.msg, Ok(m) if m.header.sender == *id)
    }

    fn gossip_len(&self) -> usize {
        match &self.msg {
            Ok(Message {
                body: Body::Ping { gossip, .. },
                ..
            }) => gossip.len(),
            _ => 0,
        }
    }

    fn message(&self) -> Result<&Message> {
        self.msg
            .as_ref()
            .map_err(|e| anyhow!("frame on {} does not decode: {e}", self.link))
    }
}

/// What the fake node claims about itself in every header it sends.
struct FakeState {
    flags: u16,
    config_epoch: u64,
    myslots: SlotSet,
    slaveof: NodeName,
}

struct Fake {
    id: NodeName,
    state: Mutex<FakeState>,
    stop: AtomicBool,
    /// Clones of every stream, to shut them down at the end.
    streams: Mutex<Vec<TcpStream>>,
}

impl Fake {
    fn header(&self, msg_type: u16) -> Header {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut h = Header::new(msg_type, self.id);
        h.port = FAKE_PORT;
        h.cport = FAKE_PORT + BUS_INCR;
        h.flags = st.flags;
        h.config_epoch = st.config_epoch;
        h.myslots = st.myslots.clone();
        h.slaveof = st.slaveof;
        h
    }

    fn ping_like(&self, msg_type: u16) -> Vec<u8> {
        let msg = Message {
            header: self.header(msg_type),
            body: Body::Ping {
                gossip: vec![],
                extensions: vec![],
            },
        };
        msg.to_bytes()
    }

    fn update(&self, f: impl FnOnce(&mut FakeState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Reads frames off one connection, answers PING/MEET with a PONG on the same
/// connection (as redis does) and forwards every frame to the capture loop.
fn serve(link: String, mut stream: TcpStream, fake: Arc<Fake>, tx: Sender<Captured>) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    loop {
        let mut prefix = [0u8; 8];
        if stream.read_exact(&mut prefix).is_err() {
            return;
        }
        let totlen = match check_prefix(&prefix) {
            Ok(n) if n <= MAX_FRAME_LEN => n as usize,
            _ => {
                eprintln!("{link}: bad prefix {prefix:?}, closing");
                return;
            }
        };
        let mut raw = prefix.to_vec();
        raw.resize(totlen, 0);
        if stream.read_exact(&mut raw[8..]).is_err() {
            return;
        }
        let msg = decode(&raw);
        if let Ok(m) = &msg {
            if matches!(m.header.msg_type, msg_type::PING | msg_type::MEET) {
                let _ = writer.write_all(&fake.ping_like(msg_type::PONG));
            }
        }
        if tx
            .send(Captured {
                link: link.clone(),
                raw,
                msg,
            })
            .is_err()
            || fake.stop.load(Ordering::Relaxed)
        {
            return;
        }
    }
}

fn spawn_listener(fake: Arc<Fake>, tx: Sender<Captured>) -> Result<JoinHandle<()>> {
    let listener = TcpListener::bind((HOST, FAKE_PORT + BUS_INCR))?;
    listener.set_nonblocking(true)?;
    Ok(thread::spawn(move || {
        let mut n = 0;
        while !fake.stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    n += 1;
                    if stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    if let Ok(c) = stream.try_clone() {
                        fake.streams
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(c);
                    }
                    let (fake, tx) = (fake.clone(), tx.clone());
                    thread::spawn(move || serve(format!("in#{n}"), stream, fake, tx));
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }))
}

/// Everything received so far, plus waiting for a frame that matches.
struct Log {
    rx: Receiver<Captured>,
    frames: Vec<Captured>,
}

impl Log {
    /// Waits for a new frame matching `pred`, returning its index in `frames`.
    fn wait(&mut self, what: &str, pred: impl Fn(&Captured) -> bool) -> Result<usize> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(c) => {
                    let hit = pred(&c);
                    self.frames.push(c);
                    if hit {
                        return Ok(self.frames.len() - 1);
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!("timed out waiting for {what}"),
                Err(RecvTimeoutError::Disconnected) => bail!("all links closed waiting for {what}"),
            }
        }
    }

    /// Collects frames for `d` without waiting for anything in particular.
    fn drain_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(c) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.frames.push(c);
        }
    }
}

fn capture(servers: &Servers, out_dir: &Path) -> Result<()> {
    let [pa, pb, pc] = REAL_PORTS;
    let mut create = Command::new("redis-cli");
    create.args(["--cluster", "create"]);
    create.args(REAL_PORTS.map(|p| format!("{HOST}:{p}")));
    create
        .arg("--cluster-yes")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let status = create
        .status()
        .context("running redis-cli --cluster create")?;
    if !status.success() {
        bail!("redis-cli --cluster create failed: {status}");
    }
    for port in REAL_PORTS {
        wait_until(Duration::from_secs(15), || {
            let info = redis_cmd(port, &["CLUSTER", "INFO"])?;
            Ok(info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3"))
        })
        .with_context(|| format!("cluster not ok on {port}"))?;
    }
    let id_of = |port: u16| -> Result<NodeName> {
        let id = redis_cmd(port, &["CLUSTER", "MYID"])?;
        NodeName::parse(&id).ok_or_else(|| anyhow!("bad node id {id:?}"))
    };
    let (a, b, c) = (id_of(pa)?, id_of(pb)?, id_of(pc)?);
    println!("A={a} B={b} C={c}");

    let fake = Arc::new(Fake {
        id: NodeName::parse(FAKE_ID).ok_or_else(|| anyhow!("bad FAKE_ID"))?,
        state: Mutex::new(FakeState {
            flags: node_flags::MASTER | node_flags::MYSELF,
            config_epoch: 0,
            myslots: SlotSet::new(),
            slaveof: NodeName::NULL,
        }),
        stop: AtomicBool::new(false),
        streams: Mutex::new(Vec::new()),
    });
    let (tx, rx) = mpsc::channel();
    let listener = spawn_listener(fake.clone(), tx.clone())?;
    let mut log = Log {
        rx,
        frames: Vec::new(),
    };
    let result = run_scenario(servers, &fake, &tx, &mut log, [a, b, c], out_dir);

    fake.stop.store(true, Ordering::Relaxed);
    for s in fake
        .streams
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = s.shutdown(Shutdown::Both);
    }
    let _ = listener.join();
    let mut counts: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for f in &log.frames {
        let t = f
            .msg
            .as_ref()
            .map(|m| wire::msg_type::name(m.header.msg_type))
            .unwrap_or("undecodable");
        *counts.entry((f.link.clone(), t)).or_default() += 1;
    }
    println!("frames received per link and type: {counts:?}");
    result
}

fn run_scenario(
    servers: &Servers,
    fake: &Arc<Fake>,
    tx: &Sender<Captured>,
    log: &mut Log,
    [a, b, c]: [NodeName; 3],
    out_dir: &Path,
) -> Result<()> {
    let [pa, _, pc] = REAL_PORTS;
    let mut saved: Vec<(&str, usize)> = Vec::new();

    // 1. MEET A from our outbound link; A answers with a PONG on it.
    let mut out = TcpStream::connect((HOST, pa + BUS_INCR))?;
    fake.streams
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(out.try_clone()?);
    {
        let (stream, fake, tx) = (out.try_clone()?, fake.clone(), tx.clone());
        thread::spawn(move || serve(format!("out:{}", pa + BUS_INCR), stream, fake, tx));
    }
    out.write_all(&fake.ping_like(msg_type::MEET))?;
    let i = log.wait("PONG to our MEET", |f| {
        f.link.starts_with("out:") && f.is(msg_type::PONG)
    })?;
    saved.push(("meet_reply_pong.bin", i));

    // 2. A connects back and PINGs us (hostname extension); once A gossips about us, B
    //    and C connect too and PING (no hostname).
    log.wait("PING from B", |f| f.is(msg_type::PING) && f.from(&b))?;
    let i = log.wait("PING from A after the handshake", |f| {
        f.is(msg_type::PING) && f.from(&a)
    })?;
    saved.push(("ping_hostname.bin", i));
    let i = log.wait("PING from B with gossip", |f| {
        f.is(msg_type::PING) && f.from(&b) && f.gossip_len() >= 2
    })?;
    saved.push(("ping_plain.bin", i));
    // Gossip picks are random: PING A until its PONG carries at least two entries.
    let mut attempts = 0;
    let i = loop {
        attempts += 1;
        if attempts > 30 {
            bail!("no PONG from A with two gossip entries");
        }
        out.write_all(&fake.ping_like(msg_type::PING))?;
        let i = log.wait("PONG from A", |f| {
            f.link.starts_with("out:") && f.is(msg_type::PONG)
        })?;
        if log.frames[i].gossip_len() >= 2 {
            break i;
        }
        thread::sleep(Duration::from_millis(200));
    };
    saved.push(("pong_gossip.bin", i));

    // 3. Stop C: A and B mark it PFAIL, then FAIL by quorum, and broadcast FAIL to us.
    kill(servers.pid(pc)?, Signal::SIGSTOP)?;
    let i = log.wait(
        "FAIL about C",
        |f| matches!(&f.msg, Ok(Message { body: Body::Fail { nodename }, .. }) if *nodename == c),
    )?;
    saved.push(("fail.bin", i));
    log.drain_for(Duration::from_millis(1500));
    let failing = node_flags::PFAIL | node_flags::FAIL;
    // Prefer the richest one: most entries, then A's (which also has the hostname).
    let flagged = log
        .frames
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            matches!(&f.msg, Ok(Message { body: Body::Ping { gossip, .. }, .. })
                if gossip.iter().any(|g| g.nodename == c && g.flags & failing != 0))
        })
        .max_by_key(|(i, f)| (f.gossip_len(), f.from(&a), std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    match flagged {
        Some(i) => saved.push(("ping_gossip_failing.bin", i)),
        None => println!("note: no PING/PONG gossip flagged C as PFAIL/FAIL; ping_gossip_failing.bin not written"),
    }
    kill(servers.pid(pc)?, Signal::SIGCONT)?;

    // 4. Claim one of A's slots with configEpoch 0: A answers with an UPDATE about itself.
    let a_ping_at = saved
        .iter()
        .find(|(file, _)| *file == "ping_hostname.bin")
        .map(|(_, i)| *i)
        .ok_or_else(|| anyhow!("no PING from A saved"))?;
    let a_ping = log.frames[a_ping_at].message()?.clone();
    let a_slot = a_ping
        .header
        .myslots
        .iter()
        .next()
        .ok_or_else(|| anyhow!("A owns no slots"))?;
    fake.update(|s| s.myslots.insert(a_slot));
    out.write_all(&fake.ping_like(msg_type::PING))?;
    // B and C may also send one (they see the claim in our PONGs); keep A's own.
    let i = log.wait("UPDATE about A from A", |f| {
        f.from(&a)
            && matches!(&f.msg, Ok(Message { body: Body::Update { nodename, .. }, .. }) if *nodename == a)
    })?;
    saved.push(("update.bin", i));
    fake.update(|s| s.myslots.clear());
    out.write_all(&fake.ping_like(msg_type::PING))?;

    // 5. PUBLISH on A is broadcast to every node with a link, us included.
    redis_cmd(pa, &["PUBLISH", "hearsay-channel", "hello bus"])?;
    let i = log.wait("PUBLISH", |f| f.is(msg_type::PUBLISH))?;
    saved.push(("publish.bin", i));

    // 6. As a replica of A we are in A's shard, so SPUBLISH reaches us as PUBLISHSHARD.
    let a_epoch = a_ping.header.config_epoch;
    fake.update(|s| {
        s.flags = node_flags::SLAVE | node_flags::MYSELF;
        s.slaveof = a;
        s.config_epoch = a_epoch;
        s.myslots = a_ping.header.myslots.clone();
    });
    out.write_all(&fake.ping_like(msg_type::PING))?;
    log.wait("PONG from A after becoming its replica", |f| {
        f.link.starts_with("out:") && f.is(msg_type::PONG)
    })?;
    let channel = (0..)
        .map(|n| format!("hearsay-shard-{n}"))
        .find(|ch| a_ping.header.myslots.contains(key_slot(ch.as_bytes())))
        .ok_or_else(|| anyhow!("no channel in A's slots"))?;
    wait_until(Duration::from_secs(5), || {
        redis_cmd(pa, &["SPUBLISH", &channel, "hello shard"])?;
        Ok(log.frames.iter().any(|f| f.is(msg_type::PUBLISHSHARD)) || {
            log.drain_for(Duration::from_millis(200));
            log.frames.iter().any(|f| f.is(msg_type::PUBLISHSHARD))
        })
    })
    .context("PUBLISHSHARD")?;
    let i = log
        .frames
        .iter()
        .position(|f| f.is(msg_type::PUBLISHSHARD))
        .ok_or_else(|| anyhow!("PUBLISHSHARD vanished"))?;
    saved.push(("publishshard.bin", i));

    // Write the fixtures, and check each one decodes and re-encodes byte for byte.
    std::fs::create_dir_all(out_dir)?;
    for (file, i) in &saved {
        let f = &log.frames[*i];
        let m = f.message()?;
        if m.to_bytes() != f.raw {
            bail!("{file}: re-encoding differs from the captured bytes");
        }
        std::fs::write(out_dir.join(file), &f.raw)?;
        println!(
            "wrote {file}: {} bytes, {} from {}",
            f.raw.len(),
            msg_type::name(m.header.msg_type),
            m.header.sender
        );
    }
    let nodes = format!(
        "# Written by tests/wire_capture.rs: the node IDs of the capture run.\n\
         # name client-port node-id\n\
         A {pa} {a}\nB {} {b}\nC {pc} {c}\nfake {FAKE_PORT} {}\n\
         A-config-epoch {a_epoch}\nA-claimed-slot {a_slot}\nshard-channel {channel}\n",
        REAL_PORTS[1], fake.id
    );
    std::fs::write(out_dir.join("nodes.txt"), nodes)?;
    Ok(())
}

/// Polls `f` every 100 ms until it returns true or `limit` passes.
fn wait_until(limit: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    let mut last_err = None;
    while Instant::now() < deadline {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(last_err
        .unwrap_or_else(|| anyhow!("condition not met"))
        .context(format!("after {limit:?}")))
}

/// Sends one command in RESP and reads a simple, integer or bulk string reply.
fn redis_cmd(port: u16, args: &[&str]) -> Result<String> {
    let mut s = TcpStream::connect((HOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let body = line.get(1..).unwrap_or_default().trim_end().to_string();
    match line.as_bytes().first() {
        Some(b'+' | b':') => Ok(body),
        Some(b'-') => bail!("redis error: {body}"),
        Some(b'$') => {
            let n: i64 = body.parse()?;
            let Ok(n) = usize::try_from(n) else {
                return Ok(String::new());
            };
            let mut buf = vec![0u8; n + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n);
            Ok(String::from_utf8(buf)?)
        }
        _ => bail!("unexpected reply {line:?}"),
    }
}
