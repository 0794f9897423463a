//! `hearsay-node`: start a node with redis-server's options, from a config file
//! and/or `--name value` arguments.

use std::process::ExitCode;

use hearsay_node::config::Config;
use hearsay_node::mem::{Counting, SmallCache};

/// Counts the bytes in use for INFO memory (redis's zmalloc does the same),
/// around glibc's malloc with a cache of small freed blocks in front (see
/// `SmallCache` for why).
#[global_allocator]
static GLOBAL: Counting<SmallCache<std::alloc::System>> =
    Counting(SmallCache::new(std::alloc::System));

const USAGE: &str = "Usage: hearsay-node [/path/to/redis.conf] [--option value ...]
       hearsay-node -v or --version
       hearsay-node -h or --help

Options have redis-server's names (port, bind, dir, cluster-enabled, cluster-config-file,
cluster-node-timeout, cluster-port, cluster-announce-ip/port/bus-port/hostname,
cluster-require-full-coverage, cluster-allow-reads-when-down, loglevel, logfile, ...)
plus events-file <path>: protocol events as JSON lines.

Examples:
       hearsay-node --port 7000 --cluster-enabled yes --cluster-node-timeout 2000
       hearsay-node /etc/redis/7000.conf --loglevel verbose";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-v") | Some("--version") => {
            println!(
                "hearsay-node v={} (compatible with Redis 7.0.15 cluster bus)",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "\n*** FATAL CONFIG FILE ERROR (hearsay-node, Redis 7.0.15 compatible) ***\n{e}"
            );
            return ExitCode::FAILURE;
        }
    };
    // Replies go out at the end of each event-loop turn, as redis's
    // beforeSleep writes them.
    hearsay_node::server::enable_turn_writes();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(hearsay_node::server::before_park)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("can't start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hearsay_node::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        // Already in the log, as redis leaves it.
        Err(e) if e.downcast_ref::<hearsay_node::server::Logged>().is_some() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
