//! `hearsay`: run, check, replay and clean up Jepsen-style chaos tests.
//! Exit codes: 0 valid, 1 invalid, 2 unknown or harness error, 254 bad arguments.

use clap::{Parser, Subcommand};
use hearsay_checkers::Valid;
use hearsay_harness::registry;
use hearsay_harness::runner::{self, RunOpts};
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
    /// Judge a stored run folder again, offline.
    Check { run_dir: PathBuf },
    /// Run a stored test again with the same options and seed.
    Replay {
        run_dir: PathBuf,
        /// Override the target (e.g. replay a redis run against hearsay).
        #[arg(long, value_enum)]
        target: Option<hearsay_harness::target::TargetChoice>,
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
    Compare(Box<hearsay_harness::compare::CompareOpts>),
    /// Run a matrix of workloads x nemeses x targets; exit with the worst verdict.
    TestAll(Box<hearsay_harness::matrix::MatrixOpts>),
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

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 254,
            };
            let _ = e.print();
            std::process::exit(code);
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
        } => hearsay_harness::delay::delayer_main(queue, delay_ms, loss_pct, max_secs),
        Cmd::Clean {
            force,
            unregistered,
        } => clean(force, unregistered),
        Cmd::Doctor => hearsay_harness::doctor::doctor(),
        Cmd::Check { run_dir } => check(&run_dir),
        Cmd::Report { run_dir, index } => hearsay_harness::report::cli(run_dir, index),
        Cmd::Run(opts) => with_runtime(async move { run(*opts).await }),
        Cmd::Compare(o) => with_runtime(async move { hearsay_harness::compare::main(&o).await }),
        Cmd::TestAll(o) => with_runtime(async move { hearsay_harness::matrix::main(&o).await }),
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
    std::process::exit(code);
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
    match runner::run_all(&opts).await {
        Ok(summaries) => {
            let mut worst = Valid::True;
            for s in &summaries {
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
        Err(runner::RunError::BadOption(e)) => {
            eprintln!("hearsay run: {e}");
            254
        }
        Err(e) => {
            eprintln!("hearsay run failed: {e}");
            2
        }
    }
}

fn verdict_text(v: Valid) -> &'static str {
    match v {
        Valid::True => "true",
        Valid::False => "FALSE",
        Valid::Unknown => "unknown",
    }
}

fn check(run_dir: &std::path::Path) -> i32 {
    // Follow `results/latest` style links to the real folder.
    let dir = std::fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    match runner::check_dir(&dir) {
        Ok(c) => {
            let set = &c.results["set"];
            if set.is_object() {
                println!(
                    "{}: valid {}  (adds {} acknowledged {} lost {} unexpected {} recovered {} stale reads {})",
                    dir.display(),
                    verdict_text(c.valid),
                    set["attempt_count"],
                    set["acknowledged_count"],
                    set["lost"]["count"],
                    set["unexpected"]["count"],
                    set["recovered"]["count"],
                    set["stale_count"],
                );
            } else {
                println!("{}: valid {}", dir.display(), verdict_text(c.valid));
                // Other workloads: their checker's own summary line.
                for (name, counts) in [
                    (
                        "linearizable",
                        &["ops", "info_ops", "invalid_key_count", "invalid_keys"][..],
                    ),
                    ("counter", &["add_count", "read_count", "error_count"][..]),
                    (
                        "list-append",
                        &["txn_count", "ok_count", "anomaly_types", "lost_count"][..],
                    ),
                ] {
                    if let Some(r) = c.results.get(name) {
                        let parts: Vec<String> =
                            counts.iter().map(|k| format!("{k} {}", r[*k])).collect();
                        println!("  {name}: valid {}  {}", r["valid"], parts.join(" "));
                        if let Some(e) = r.get("error") {
                            println!("  {name}: error: {e}");
                        }
                    }
                }
            }
            let p = &c.results["protocol"];
            println!(
                "protocol: fail-quorum {} ({} decisions), convergence {} ({} ms after heal), epochs {}",
                p["fail-quorum"]["valid"],
                p["fail-quorum"]["decisions"],
                p["convergence"]["valid"],
                p["convergence"]["convergence_ms"],
                p["epochs"]["valid"],
            );
            let unverified = c.results["nemesis"]["unverified"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0);
            if unverified > 0 {
                println!(
                    "warning: {unverified} nemesis steps could not be verified (see results.json)"
                );
            }
            c.valid.exit_code()
        }
        Err(e) => {
            eprintln!("hearsay check: {e}");
            2
        }
    }
}

fn clean(force: bool, unregistered: bool) -> i32 {
    let reports = registry::clean(&registry::registry_dir(), force, unregistered);
    let mut code = 0;
    for r in &reports {
        println!(
            "{}: killed {:?}, netns {:?}, links {:?}, nft {:?}{}",
            r.prefix,
            r.killed,
            r.netns_removed,
            r.links_removed,
            r.nft_removed,
            if r.errors.is_empty() {
                String::new()
            } else {
                format!(", errors {:?}", r.errors)
            }
        );
        if !r.errors.is_empty() {
            code = 2;
        }
    }
    if reports.is_empty() {
        println!("nothing to clean");
    }
    code
}
