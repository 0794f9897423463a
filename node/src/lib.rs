//! hearsay-node: a Redis Cluster node that speaks the Redis 7.0 cluster bus.
//!
//! Layout (see docs/DESIGN.md):
//! - [`slots`]: key hash slots and the slot bitmap;
//! - [`wire`]: the cluster bus message codec;
//! - [`cluster`]: the sans-IO cluster state machine;
//! - [`resp`]: the client protocol codec;
//! - [`store`]: the keyspace, kept by slot;
//! - [`commands`]: the command table;
//! - [`replication`]: the master -> replica stream, snapshot and offsets;
//! - [`persist`]: the append-only file (`appendonly yes`);
//! - [`rdb`]: the RDB format (dump.rdb, full-sync payloads, DUMP/RESTORE);
//! - [`events`]: the structured event log a checker reads;
//! - [`config`]: redis-style configuration;
//! - [`server`]: the tokio shell that drives all of the above.

pub mod cluster;
pub mod commands;
pub mod config;
pub mod events;
pub mod glob;
pub mod mem;
pub mod persist;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod resp;
pub mod server;
pub mod slots;
pub mod store;
pub mod wire;
