//! The phases of one test, each a small function driving the target:
//! start → form → observe → workload + faults → heal → recover → final reads →
//! stop. Judging the folder afterwards is `judge.rs`.

use super::folder::{io, write_json};
use super::workload::{self, ClientSpec, Progress, Workers};
use super::RunError;
use crate::env::recorder::{JsonLines, Recorder};
use crate::env::registry::Registry;
use crate::faults::schedule::{self, Fault, NemesisKind, Planned, Step};
use crate::opts::RunOpts;
use crate::targets::{StartCtx, Started, Target};
use hearsay_checkers::{OpType, Process};
use hearsay_workloads::any::{self, Workload};
use hearsay_workloads::cluster::ClientConfig;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runs a test's phases on a started registry; returns run-info.json's content.
pub async fn execute(
    target: &mut dyn Target,
    opts: &RunOpts,
    seed: u64,
    planned: &[Planned],
    run_dir: &Path,
    reg: Arc<Registry>,
) -> Result<Value, RunError> {
    let progress = Arc::new(Progress::default());
    let t_run = Instant::now();
    let started = start(target, planned, run_dir, reg, &progress).await?;
    progress.phase("forming cluster");
    let form_ms = target.form().await?;
    eprintln!(
        "[hearsay] {} nodes started in {} ms; cluster formed and agreed in {form_ms} ms ({} ms from network build)",
        target.endpoints().len(),
        started.nodes_start_ms,
        t_run.elapsed().as_millis()
    );
    // Test hook: proves that a panic mid-run still tears everything down.
    if std::env::var("HEARSAY_TEST_PANIC").as_deref() == Ok("after-form") {
        panic!("HEARSAY_TEST_PANIC=after-form");
    }
    let obs = Observation::open(target, opts, run_dir, &progress)?;
    progress.phase("workload");
    let spec = client_spec(target, opts, seed);
    let workers = Workers::start(
        &spec,
        opts.concurrency,
        opts.rate,
        obs.rec.clone(),
        progress.clone(),
    );
    drive_faults(target, planned, opts.time_limit, &obs, &progress).await?;
    let final_process = workers.stop().await;
    progress.phase("healing");
    let healed = target.heal_all().await;
    progress.phase("waiting for recovery");
    let recovery = recover(target, opts, planned, &obs.rec).await;
    progress.phase("final reads");
    workload::final_reads(&spec, &obs.rec, final_process).await;
    let rec = obs.close().await;
    progress.phase("stopping nodes");
    let stopped = target.stop(run_dir).await?;
    if let Some(e) = rec.write_error() {
        return Err(RunError::Other(format!("history write failed: {e}")));
    }
    let info = json!({
        "network-build-ms": started.network_build_ms,
        "nodes-start-ms": started.nodes_start_ms,
        "form-ms": form_ms,
        "healed": healed,
        "recovery-ms": recovery.as_ref().ok(),
        "recovery-error": recovery.err(),
        "ops": {
            "ok": progress.ok.load(Ordering::Relaxed),
            "fail": progress.fail.load(Ordering::Relaxed),
            "info": progress.info.load(Ordering::Relaxed),
        },
        "faults": progress.faults.load(Ordering::Relaxed),
        "restarts": stopped.restarts,
    });
    write_json(&run_dir.join("run-info.json"), &info)?;
    Ok(info)
}

/// Network and processes.
async fn start(
    target: &mut dyn Target,
    planned: &[Planned],
    run_dir: &Path,
    reg: Arc<Registry>,
    progress: &Progress,
) -> Result<Started, RunError> {
    progress.phase("building network, starting nodes");
    let ctx = StartCtx {
        run_dir,
        reg,
        with_clock: planned.iter().any(|p| p.fault.kind() == NemesisKind::Clock),
        exe: std::env::current_exe().map_err(io("locate own binary for the delayer"))?,
        reshape: planned.iter().any(|p| p.fault.kind().is_reshape()),
    };
    let started = target.start(ctx).await?;
    eprintln!(
        "[hearsay] network {} ({} namespaces) built in {} ms",
        started.network, started.namespaces, started.network_build_ms
    );
    Ok(started)
}

/// The history's time base, the recorder, the observer and the progress line: from
/// here on, everything lands in the run folder.
struct Observation {
    rec: Arc<Recorder>,
    stop: tokio::sync::watch::Sender<bool>,
    stop_rx: tokio::sync::watch::Receiver<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Observation {
    fn open(
        target: &mut dyn Target,
        opts: &RunOpts,
        run_dir: &Path,
        progress: &Arc<Progress>,
    ) -> Result<Observation, RunError> {
        let t0 = Instant::now();
        write_timebase(run_dir, t0)?;
        let rec = Arc::new(
            Recorder::create(&run_dir.join("history.jsonl"), t0)
                .and_then(|r| r.with_nemesis_file(&run_dir.join("nemesis.jsonl")))
                .map_err(io("create history"))?,
        );
        target.record_faults(rec.clone());
        let snaps =
            JsonLines::create(&run_dir.join("snapshots.jsonl")).map_err(io("create snapshots"))?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = vec![target.spawn_observer(
            snaps,
            rec.clone(),
            Duration::from_millis(opts.snapshot_interval.max(100)),
            stop_rx.clone(),
        )];
        if std::io::stderr().is_terminal() {
            tasks.push(tokio::spawn(workload::progress_line(
                progress.clone(),
                rec.clone(),
                stop_rx.clone(),
            )));
        }
        Ok(Observation {
            rec,
            stop,
            stop_rx,
            tasks,
        })
    }

    /// Stops the observer (after its last round) and the progress line.
    async fn close(self) -> Arc<Recorder> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.rec
    }
}

/// The history's time 0 on CLOCK_MONOTONIC (what Instant uses on Linux, and what
/// hearsay-node stamps as mono_ms) and on the wall clock (what redis logs show), so
/// the protocol checkers can put node events on the history's timeline.
fn write_timebase(run_dir: &Path, t0: Instant) -> Result<(), RunError> {
    let mono_now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| ts.tv_sec() * 1000 + ts.tv_nsec() / 1_000_000)
        .unwrap_or(0);
    let wall_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since = t0.elapsed().as_millis() as i64;
    write_json(
        &run_dir.join("timebase.json"),
        &json!({"mono_ms": mono_now - since, "wall_ms": wall_now - since}),
    )
}

fn client_spec(target: &dyn Target, opts: &RunOpts, seed: u64) -> ClientSpec {
    let workload = Workload::parse(&opts.workload).unwrap_or(Workload::Set);
    let endpoints = target.endpoints();
    ClientSpec {
        workload,
        seed,
        keys: any::keys(workload, opts.keys),
        addrs: target.client_seeds(),
        names: endpoints.into_iter().map(|(n, a)| (a, n)).collect(),
        cfg: ClientConfig {
            op_timeout: Duration::from_millis(opts.op_timeout),
            ..ClientConfig::default()
        },
        read_fraction: opts.read_fraction,
        routing: target.routing(),
    }
}

/// Starts and stops the planned faults at their times until the time limit, then
/// waits out the time limit.
async fn drive_faults(
    target: &mut dyn Target,
    planned: &[Planned],
    time_limit_s: f64,
    obs: &Observation,
    progress: &Progress,
) -> Result<(), RunError> {
    let workload_start = tokio::time::Instant::now();
    let deadline = workload_start + Duration::from_secs_f64(time_limit_s);
    if schedule::overlaps(planned) {
        // A composed (hand-written) schedule: steps in time order, faults coexisting.
        let steps = schedule::timeline(planned).map_err(RunError::BadOption)?;
        let mut started: Vec<Option<Fault>> = vec![None; planned.len()];
        for step in steps {
            let at = workload_start + Duration::from_millis(step.at_ms());
            if at >= deadline {
                break;
            }
            tokio::time::sleep_until(at).await;
            match step {
                Step::Start { index, .. } => {
                    if let Some(p) = planned.get(index) {
                        let (f, _verified) = target.start_fault(p).await;
                        progress.faults.fetch_add(1, Ordering::Relaxed);
                        if matches!(f, Fault::ClockStrobe { .. }) {
                            // A strobe overlaps nothing (timeline() refuses that): it
                            // flips the clocks until its stop, then heals.
                            let until =
                                (workload_start + Duration::from_millis(p.stop_ms)).min(deadline);
                            target.hold_fault(&f, until, &obs.stop_rx).await;
                            target.stop_fault(&f).await;
                        } else {
                            started[index] = Some(f);
                        }
                    }
                }
                Step::Stop { index, .. } => {
                    if let Some(f) = started.get_mut(index).and_then(Option::take) {
                        target.stop_fault(&f).await;
                    }
                }
            }
        }
    } else {
        for p in planned {
            let at = workload_start + Duration::from_millis(p.start_ms);
            if at >= deadline {
                break;
            }
            tokio::time::sleep_until(at).await;
            let (f, _verified) = target.start_fault(p).await;
            progress.faults.fetch_add(1, Ordering::Relaxed);
            let until = (workload_start + Duration::from_millis(p.stop_ms)).min(deadline);
            target.hold_fault(&f, until, &obs.stop_rx).await;
            target.stop_fault(&f).await;
        }
    }
    tokio::time::sleep_until(deadline).await;
    Ok(())
}

/// Waits for the live processes to agree after the final heal, and records it.
async fn recover(
    target: &dyn Target,
    opts: &RunOpts,
    planned: &[Planned],
    rec: &Recorder,
) -> Result<u64, String> {
    // A clock stepped back blinds nodes for the step: wait that out on top.
    let blind = schedule::clock_step_allowance_ms(planned, (opts.time_limit * 1000.0) as u64);
    let recovery = target
        .wait_recovered(
            Duration::from_secs_f64(opts.recovery_timeout) + Duration::from_millis(blind),
        )
        .await;
    let recover_ms = recovery.as_ref().ok().map(|d| d.as_millis() as u64);
    rec.record(
        Process::Nemesis,
        OpType::Info,
        "recovered",
        json!({"converged": recovery.is_ok(), "ms": recover_ms, "clock-step-allowance-ms": blind}),
        None,
        recovery.as_ref().err().cloned(),
    );
    recovery.map(|d| d.as_millis() as u64)
}
