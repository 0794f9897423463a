//! `hearsay`: run, check, replay and clean up Jepsen-style chaos tests.
//! Exit codes: 0 valid, 1 invalid, 2 unknown or harness error, 254 bad arguments.

fn main() {
    std::process::exit(hearsay_harness::cli::main());
}
