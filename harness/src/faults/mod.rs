//! Faults: the schedule (drawn from the seed or read from a run), the nemesis executor
//! and its evidence, packet delay, and clock skew. Imports only `env` below it.

pub mod clock;
pub mod delay;
pub mod generate;
pub mod nemesis;
pub mod packages;
pub mod schedule;
