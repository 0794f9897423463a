//! The workload phase: client workers that draw ops from the seeded generators, run
//! them against the target's endpoints and record invoke/completion in the history;
//! the final reads after recovery; and the progress line.

use crate::env::recorder::Recorder;
use hearsay_checkers::{OpType, Process};
use hearsay_workloads::any::{AnyGen, AnyOp, Workload};
use hearsay_workloads::cluster::{ClientConfig, ClusterClient, Routing};
use hearsay_workloads::rng::{stream, unit};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared counters for the progress line and run-info.json.
#[derive(Default)]
pub struct Progress {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    pub faults: AtomicU64,
    phase: Mutex<String>,
}

impl Progress {
    pub fn phase(&self, p: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p.to_string();
        if std::io::stderr().is_terminal() {
            // Overwrite the live progress line instead of appending to it.
            eprintln!("\r\x1b[2K[hearsay] {p}");
        } else {
            eprintln!("[hearsay] {p}");
        }
    }
}

/// The live progress line (terminals only), once a second until `stop`.
pub async fn progress_line(
    p: Arc<Progress>,
    rec: Arc<Recorder>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => { eprintln!(); return }
        }
        let phase = p.phase.lock().map(|s| s.clone()).unwrap_or_default();
        eprint!(
            "\r[{phase}] t={:.0}s ok={} fail={} info={} faults={}   ",
            rec.now_ns() as f64 / 1e9,
            p.ok.load(Ordering::Relaxed),
            p.fail.load(Ordering::Relaxed),
            p.info.load(Ordering::Relaxed),
            p.faults.load(Ordering::Relaxed)
        );
    }
}

/// What every client of one test shares.
#[derive(Clone)]
pub struct ClientSpec {
    pub workload: Workload,
    pub seed: u64,
    pub keys: Vec<String>,
    pub addrs: Vec<SocketAddr>,
    /// Node name of each address, for the history's `node` field.
    pub names: HashMap<SocketAddr, String>,
    pub cfg: ClientConfig,
    pub read_fraction: f64,
    /// How clients find a key's node (cluster slot map, sentinels, proxy).
    pub routing: Routing,
}

impl ClientSpec {
    fn client(&self) -> ClusterClient {
        ClusterClient::with_routing(self.addrs.clone(), self.cfg, self.routing.clone())
    }

    fn node_name(&self, a: SocketAddr) -> String {
        self.names.get(&a).cloned().unwrap_or_else(|| a.to_string())
    }
}

/// Running client workers.
pub struct Workers {
    handles: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    max_process: Arc<AtomicU64>,
}

impl Workers {
    /// Starts `concurrency` workers issuing `rate` ops per second together.
    pub fn start(
        spec: &ClientSpec,
        concurrency: usize,
        rate: f64,
        rec: Arc<Recorder>,
        progress: Arc<Progress>,
    ) -> Workers {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let max_process = Arc::new(AtomicU64::new(0));
        let handles = (0..concurrency)
            .map(|w| {
                let worker = Worker {
                    spec: spec.clone(),
                    first_process: w as u64,
                    concurrency: concurrency as u64,
                    mean_gap_s: concurrency as f64 / rate,
                    rec: rec.clone(),
                    progress: progress.clone(),
                    max_process: max_process.clone(),
                };
                tokio::spawn(worker.run(stop_rx.clone()))
            })
            .collect();
        Workers {
            handles,
            stop,
            max_process,
        }
    }

    /// Stops every worker and waits for them; returns a process id no worker used
    /// (for the final reads).
    pub async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        for w in self.handles {
            let _ = w.await;
        }
        self.max_process.load(Ordering::Relaxed) + 1
    }
}

struct Worker {
    spec: ClientSpec,
    first_process: u64,
    concurrency: u64,
    mean_gap_s: f64,
    rec: Arc<Recorder>,
    progress: Arc<Progress>,
    max_process: Arc<AtomicU64>,
}

impl Worker {
    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let s = &self.spec;
        let mut process = self.first_process;
        self.max_process.fetch_max(process, Ordering::Relaxed);
        let mut gen = AnyGen::new(s.workload, s.seed, process, s.read_fraction);
        let mut client = s.client();
        // Pacing has its own stream so that timing never shifts the op sequence.
        let mut pace = stream(s.seed, &format!("stagger-worker-{}", self.first_process));
        while !*stop.borrow() {
            let op = gen.next_op(&s.keys);
            if run_op(&op, process, &mut client, s, &self.rec, &self.progress).await {
                // Unknown outcome: the op may still happen later, so this process never
                // invokes again; a fresh process id takes its place.
                process += self.concurrency;
                self.max_process.fetch_max(process, Ordering::Relaxed);
                gen = AnyGen::new(s.workload, s.seed, process, s.read_fraction);
                client.disconnect();
            }
            let gap = Duration::from_secs_f64(self.mean_gap_s * 2.0 * unit(&mut pace));
            tokio::select! {
                _ = tokio::time::sleep(gap) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    }
}

/// Runs one op, records invoke and completion. Returns true if it ended `info`.
async fn run_op(
    op: &AnyOp,
    process: u64,
    client: &mut ClusterClient,
    spec: &ClientSpec,
    rec: &Recorder,
    progress: &Progress,
) -> bool {
    let kind = execute(op, process, client, spec, rec).await;
    match kind {
        OpType::Ok => progress.ok.fetch_add(1, Ordering::Relaxed),
        OpType::Fail => progress.fail.fetch_add(1, Ordering::Relaxed),
        _ => progress.info.fetch_add(1, Ordering::Relaxed),
    };
    kind == OpType::Info
}

/// Records the invocation, runs the op, records its completion; returns its type.
async fn execute(
    op: &AnyOp,
    process: u64,
    client: &mut ClusterClient,
    spec: &ClientSpec,
    rec: &Recorder,
) -> OpType {
    rec.record(
        Process::Client(process),
        OpType::Invoke,
        op.f(),
        op.value(),
        None,
        None,
    );
    let (kind, value, error, node) = op.execute(client, spec.cfg).await;
    let node = node.map(|a| spec.node_name(a));
    rec.record(Process::Client(process), kind, op.f(), value, node, error);
    kind
}

/// Reads every key once more after recovery, as `process` (a fresh one). Bounded:
/// 20 tries over ~10 s per key; reads are idempotent, so retrying is safe.
pub async fn final_reads(spec: &ClientSpec, rec: &Recorder, process: u64) {
    let mut client = spec.client();
    for key in &spec.keys {
        let op = AnyOp::final_read(spec.workload, key);
        for _ in 0..20 {
            if execute(&op, process, &mut client, spec, rec).await == OpType::Ok {
                break;
            }
            client.refresh().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
