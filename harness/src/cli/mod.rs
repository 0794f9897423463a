//! The `hearsay` command line: run, check, replay, report, compare, test-all, scale,
//! clean, doctor. Exit codes: 0 valid, 1 invalid, 2 unknown or harness error, 254 bad
//! arguments. The top of the import order: it drives `run/` and writes the views in
//! `output/` after each run.

pub mod check;
pub mod clean;
pub mod compare;
pub mod doctor;
pub mod render;
pub mod scale;
pub mod sim;
pub mod test_all;

use crate::env::registry;
use crate::opts::RunOpts;
use clap::{Parser, Subcommand};
use hearsay_checkers::Valid;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hearsay",
    version,
    about = "Jepsen-style chaos harness for Redis Cluster nodes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a test (or --test-count tests).
    Run(Box<RunOpts>),
    /// Run hearsay-node's cluster core in deterministic simulated time: one seed,
    /// or a search over many (--seeds 1..1000 --jobs 2); the same run folders.
    Sim(Box<sim::SimArgs>),
    /// Judge a stored run folder again, offline.
    Check { run_dir: PathBuf },
    /// Run a stored test again with the same options and seed.
    Replay {
        run_dir: PathBuf,
        /// Override the target (e.g. replay a redis run against hearsay).
        #[arg(long, value_enum)]
        target: Option<crate::opts::TargetChoice>,
        #[arg(long)]
        results_dir: Option<PathBuf>,
    },
    /// Remove leftovers (namespaces, links, nft tables, processes) of dead runs.
    Clean {
        /// Also tear down runs whose owner still runs.
        #[arg(long)]
        force: bool,
        /// Also remove hs??????-named namespaces, links and tables without a registry file.
        #[arg(long)]
        unregistered: bool,
    },
    /// Check prerequisites and say how to fix what is missing.
    Doctor,
    /// Run one test on hearsay and on redis-server with the same faults; side-by-side table.
    Compare(Box<compare::CompareOpts>),
    /// Run a matrix of workloads x nemeses x targets; exit with the worst verdict.
    TestAll(Box<test_all::MatrixOpts>),
    /// Gossip at scale: traffic, memory, formation and failure detection against
    /// cluster size, per target; writes scale.json, scale.md, scale.html.
    Scale(Box<scale::ScaleOpts>),
    /// Write RUN_DIR/report.html again (or, with --index, RESULTS_DIR/index.html).
    Report {
        #[arg(required_unless_present = "index")]
        run_dir: Option<PathBuf>,
        #[arg(long, value_name = "RESULTS_DIR", conflicts_with = "run_dir")]
        index: Option<PathBuf>,
    },
    /// (internal) Packet delayer for the delay nemesis; runs inside a node namespace.
    #[command(hide = true)]
    Delayer {
        #[arg(long)]
        queue: u16,
        #[arg(long)]
        delay_ms: u64,
        #[arg(long, default_value_t = 0)]
        loss_pct: u32,
        /// Exit after this many seconds whatever happens (bounded lifetime).
        #[arg(long, default_value_t = 3600)]
        max_secs: u64,
    },
}

/// Parses the command line and runs it; returns the exit code.
pub fn main() -> i32 {
    // Printing into a closed pipe (`hearsay check ... | head`) ends the process
    // quietly, as Unix tools do, instead of panicking in println!.
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 254,
            };
            let _ = e.print();
            return code;
        }
    };
    // Whatever panics, the run's namespaces, rules and processes go away.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        for r in registry::teardown_all_active() {
            eprintln!(
                "[hearsay] panic cleanup of {}: {} processes killed",
                r.prefix,
                r.killed.len()
            );
        }
    }));
    let code = match cli.cmd {
        Cmd::Delayer {
            queue,
            delay_ms,
            loss_pct,
            max_secs,
        } => crate::faults::delay::delayer_main(queue, delay_ms, loss_pct, max_secs),
        Cmd::Clean {
            force,
            unregistered,
        } => clean::clean(force, unregistered),
        Cmd::Doctor => doctor::doctor(),
        Cmd::Check { run_dir } => check::check(&run_dir),
        Cmd::Report { run_dir, index } => crate::output::report::cli(run_dir, index),
        Cmd::Run(opts) if opts.target == crate::opts::TargetChoice::Sim => {
            sim::main(&sim::SimArgs {
                run: *opts.clone(),
                seeds: None,
                jobs: 1,
                bench: false,
                bench_nodes: vec![],
                stop_at_first: false,
                want: None,
                keep_all: true,
                codec: false,
                shrink: false,
            })
        }
        Cmd::Sim(a) => sim::main(&a),
        Cmd::Run(opts) => with_runtime(async move { run(*opts).await }),
        Cmd::Compare(o) => with_runtime(async move { compare::main(&o).await }),
        Cmd::TestAll(o) => with_runtime(async move { test_all::main(&o).await }),
        Cmd::Scale(o) => with_runtime(async move { scale::main(&o).await }),
        Cmd::Replay {
            run_dir,
            target,
            results_dir,
        } => with_runtime(async move {
            let mut opts = match replay_opts(&run_dir) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("hearsay replay: {e}");
                    return 254;
                }
            };
            if let Some(t) = target {
                opts.target = t;
            }
            if let Some(d) = results_dir {
                opts.results_dir = d;
            }
            run(opts).await
        }),
    };
    code
}

fn replay_opts(run_dir: &std::path::Path) -> Result<RunOpts, String> {
    let text = std::fs::read_to_string(run_dir.join("test.json"))
        .map_err(|e| format!("{}: {e}", run_dir.join("test.json").display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("test.json: {e}"))?;
    serde_json::from_value(v["options"].clone()).map_err(|e| format!("test.json options: {e}"))
}

/// One current-thread runtime: every child is forked from the main thread, which lives
/// as long as the process (PDEATHSIG is tied to the forking thread).
fn with_runtime(f: impl std::future::Future<Output = i32>) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hearsay: cannot start runtime: {e}");
            return 2;
        }
    };
    // A panic anywhere in the run is a harness error (exit 2), after the guards and
    // the panic hook have torn everything down.
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                code = f => code,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("\n[hearsay] interrupted: tearing down");
                    2
                }
                _ = term => {
                    eprintln!("[hearsay] terminated: tearing down");
                    2
                }
            }
        })
    }))
    .unwrap_or(2);
    // Dropping the run future above ran its guards; this catches anything left.
    registry::teardown_all_active();
    code
}

async fn run(opts: RunOpts) -> i32 {
    let mut worst = Valid::True;
    for seed in crate::run::seeds(&opts) {
        let mut o = opts.clone();
        o.seed = Some(seed);
        let s = match render::run_one(&o).await {
            Ok(s) => s,
            Err(crate::run::RunError::BadOption(e)) => {
                eprintln!("hearsay run: {e}");
                return 254;
            }
            Err(e) => {
                eprintln!("hearsay run failed: {e}");
                return 2;
            }
        };
        println!(
            "{}  seed {}  valid: {}",
            s.run_dir.display(),
            s.seed,
            verdict_text(s.valid)
        );
        if s.unverified > 0 {
            println!(
                "warning: {} nemesis steps could not be verified (see results.json)",
                s.unverified
            );
        }
        worst = worst.and(s.valid);
    }
    if opts.dry_run {
        return 0;
    }
    worst.exit_code()
}

pub fn verdict_text(v: Valid) -> &'static str {
    match v {
        Valid::True => "true",
        Valid::False => "FALSE",
        Valid::Unknown => "unknown",
    }
}
