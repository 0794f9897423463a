//! `hearsay`: run, check, replay and clean up Jepsen-style chaos tests.
//! Exit codes: 0 valid, 1 invalid, 2 unknown or harness error, 254 bad arguments.

/// mimalloc rather than glibc's malloc: a simulated run allocates and frees
/// small objects at a high rate (messages, frames, history values), and glibc's
/// malloc and free were a sixth of its instructions (callgrind, `hearsay sim
/// --bench --seeds 1..5 --nemesis all`). No decision depends on addresses: the
/// digests of seeds 1..30 are the same with either.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(hearsay_harness::cli::main());
}
