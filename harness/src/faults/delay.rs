//! Packet delay. This kernel has no netem, so delay is done in user space: an iptables
//! NFQUEUE rule inside each target node's namespace hands the node's outgoing
//! node-to-node packets (not those to the harness's clients on the bridge address) to
//! a holder process, `hearsay delayer`, which releases each after the delay. The rule
//! uses `--queue-bypass`, so if the holder dies packets flow undelayed, never stuck.

use crate::env::net::{Network, Probe};
use crate::env::process::Node;
use crate::env::registry::Registry;
use serde_json::{json, Value as J};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const QUEUE: u16 = 7;

struct Running {
    node: usize,
    child: tokio::process::Child,
    rules: Vec<Vec<String>>,
}

/// Running delayers.
pub struct Delays {
    reg: Arc<Registry>,
    exe: PathBuf,
    running: Vec<Running>,
}

/// The two iptables rules (in order): let client traffic to the bridge address pass,
/// queue the rest of the subnet. (One rule cannot hold `-d` twice.)
fn rules(net: &Network) -> Vec<Vec<String>> {
    let subnet = format!("{}/24", net.bridge_ip);
    let own = format!("{}/32", net.bridge_ip);
    let q = QUEUE.to_string();
    let to = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        to(&["OUTPUT", "-d", &own, "-j", "ACCEPT"]),
        to(&[
            "OUTPUT",
            "-d",
            &subnet,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &q,
            "--queue-bypass",
        ]),
    ]
}

async fn iptables(ns: &str, op: &str, rule: &[String]) -> Result<(), crate::env::sys::SysError> {
    let mut args = vec![
        "netns".to_string(),
        "exec".into(),
        ns.to_string(),
        "iptables".into(),
        "-w".into(),
        op.into(),
    ];
    args.extend(rule.iter().cloned());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::env::sys::run_async("ip", &a, None).await.map(|_| ())
}

impl Delays {
    /// `exe` is the `hearsay` binary that provides the `delayer` subcommand.
    pub fn new(reg: Arc<Registry>, exe: PathBuf) -> Delays {
        Delays {
            reg,
            exe,
            running: Vec::new(),
        }
    }

    async fn start_one(&mut self, net: &Network, node: &Node, ms: u64) -> Result<(), String> {
        let ns_file = std::fs::File::open(format!("/run/netns/{}", node.ns))
            .map_err(|e| format!("open netns: {e}"))?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args([
            "delayer",
            "--queue",
            &QUEUE.to_string(),
            "--delay-ms",
            &ms.to_string(),
            "--max-secs",
            "3600",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
        crate::env::sys::enter_netns_on_exec(&mut cmd, &ns_file);
        let mut child = cmd.spawn().map_err(|e| format!("spawn delayer: {e}"))?;
        drop(ns_file);
        if let Some(pid) = child.id() {
            if let Err(e) = self.reg.add_proc(pid, &format!("delayer {}", node.name)) {
                // Never leave a process running that no teardown knows about.
                let _ = child.start_kill();
                return Err(e.to_string());
            }
        }
        // Wait for "ready" (queue bound) before diverting packets to it.
        let ready = async {
            use tokio::io::AsyncBufReadExt;
            let out = child.stdout.take()?;
            let mut lines = tokio::io::BufReader::new(out).lines();
            lines.next_line().await.ok().flatten()
        };
        match tokio::time::timeout(Duration::from_secs(3), ready).await {
            Ok(Some(l)) if l.trim() == "ready" => {}
            other => {
                let _ = child.kill().await;
                return Err(format!("delayer did not get ready: {other:?}"));
            }
        }
        let rules = rules(net);
        for (k, r) in rules.iter().enumerate() {
            if let Err(e) = iptables(&node.ns, "-A", r).await {
                for done in rules.iter().take(k) {
                    let _ = iptables(&node.ns, "-D", done).await;
                }
                let _ = child.kill().await;
                return Err(e.to_string());
            }
        }
        self.running.push(Running {
            node: node.index,
            child,
            rules,
        });
        Ok(())
    }

    /// Delays every outgoing node-to-node packet of `targets` by `ms`.
    pub async fn start(
        &mut self,
        net: &Network,
        nodes: &[Node],
        targets: &[usize],
        ms: u64,
    ) -> (J, bool, Option<String>) {
        let mut errors = Vec::new();
        let mut probes = serde_json::Map::new();
        let mut ok = true;
        for i in targets {
            let Some(n) = nodes.get(*i) else { continue };
            if let Err(e) = self.start_one(net, n, ms).await {
                errors.push(format!("{}: {e}", n.name));
                ok = false;
                continue;
            }
            // Evidence: a connect from the target to a peer's bus port now takes at
            // least the delay (the SYN waits in the holder).
            if let Some(peer) = nodes.iter().find(|p| p.index != *i) {
                let p = crate::env::net::probe(
                    &n.ns,
                    peer.bus_addr(),
                    Duration::from_millis(ms * 3 + 500),
                )
                .await;
                if let Probe::Connected { ms: took } = p {
                    ok &= took >= ms as f64 * 0.8;
                } else {
                    ok = false;
                }
                probes.insert(n.name.clone(), json!({"to": peer.name, "probe": p}));
            }
        }
        (
            json!({"ms": ms, "connect-probes": probes}),
            ok && errors.is_empty(),
            (!errors.is_empty()).then(|| errors.join("; ")),
        )
    }

    /// Removes every delay rule, then stops the holders (which release what they hold).
    pub async fn stop_all(&mut self, nodes: &[Node]) -> (J, bool, Option<String>) {
        let mut errors = Vec::new();
        let mut probes = serde_json::Map::new();
        let mut ok = true;
        for mut r in std::mem::take(&mut self.running) {
            let Some(n) = nodes.get(r.node) else { continue };
            for rule in r.rules.iter().rev() {
                if let Err(e) = iptables(&n.ns, "-D", rule).await {
                    errors.push(e.to_string());
                }
            }
            if let Some(pid) = r.child.id() {
                if let Ok(p) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                match tokio::time::timeout(Duration::from_secs(3), r.child.wait()).await {
                    Ok(_) => {}
                    Err(_) => {
                        let _ = r.child.kill().await;
                    }
                }
                let _ = self.reg.remove_proc(pid);
            }
            if let Some(peer) = nodes.iter().find(|p| p.index != r.node) {
                let p = crate::env::net::probe(&n.ns, peer.bus_addr(), Duration::from_millis(1000))
                    .await;
                ok &= matches!(p, Probe::Connected { ms } if ms < 20.0);
                probes.insert(n.name.clone(), json!({"to": peer.name, "probe": p}));
            }
        }
        (
            json!({"connect-probes": probes}),
            ok && errors.is_empty(),
            (!errors.is_empty()).then(|| errors.join("; ")),
        )
    }
}

static TERM: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERM.store(true, Ordering::SeqCst);
}

/// `hearsay delayer`: binds NFQUEUE `queue`, holds each packet `delay_ms` (dropping
/// `loss_pct` percent), prints "ready" once bound. On SIGTERM it releases everything
/// it holds and exits; it exits by itself after `max_secs`.
pub fn delayer_main(queue: u16, delay_ms: u64, loss_pct: u32, max_secs: u64) -> i32 {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        let _ = sigaction(Signal::SIGTERM, &act);
        let _ = sigaction(Signal::SIGINT, &act);
    }
    let mut q = match nfq::Queue::open() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("delayer: open nfqueue: {e}");
            return 2;
        }
    };
    if let Err(e) = q.bind(queue) {
        eprintln!("delayer: bind queue {queue}: {e}");
        return 2;
    }
    // Only metadata is needed to release a packet; don't copy payloads to user space.
    let _ = q.set_copy_range(queue, 0);
    q.set_nonblocking(true);
    println!("ready");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let delay = Duration::from_millis(delay_ms);
    let end = Instant::now() + Duration::from_secs(max_secs);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut rng = hearsay_workloads::rng::stream(std::process::id() as u64, "delayer");
    loop {
        let stopping = TERM.load(Ordering::SeqCst) || Instant::now() > end;
        loop {
            match q.recv() {
                Ok(m) => held.push_back((Instant::now() + delay, m)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("delayer: recv: {e}");
                    break;
                }
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| stopping || *due <= now) {
            let Some((_, mut m)) = held.pop_front() else {
                break;
            };
            let drop =
                loss_pct > 0 && hearsay_workloads::rng::below(&mut rng, 100) < loss_pct as u64;
            m.set_verdict(if drop {
                nfq::Verdict::Drop
            } else {
                nfq::Verdict::Accept
            });
            if let Err(e) = q.verdict(m) {
                eprintln!("delayer: verdict: {e}");
            }
        }
        if stopping {
            return 0;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}
