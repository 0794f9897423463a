//! Clients and workloads for hearsay runs.
//!
//! - [`resp`]: a small RESP2 encoder/decoder with size limits.
//! - [`conn`]: one connection to one node, with bounded timeouts and errors that say
//!   whether the request may have reached the server.
//! - [`cluster`]: a cluster-aware client (own slot map from CLUSTER SLOTS, MOVED/ASK)
//!   that classifies every attempt as ok / fail / info.
//! - [`rng`]: named, seeded RNG streams (ChaCha8) and portable draws.
//! - [`set`]: the `set` workload's keys and per-process op generator.
//! - [`register`], [`counter`], [`list_append`]: the other workloads; [`txn`] runs
//!   WATCH/MULTI/EXEC on one connection; [`any`] selects a workload by name.

pub mod any;
pub mod cluster;
pub mod conn;
pub mod counter;
pub mod list_append;
pub mod register;
pub mod resp;
pub mod rng;
pub mod set;
pub mod slot;
pub mod txn;
