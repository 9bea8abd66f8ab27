//! The Sawmill worker: consumes Kafka partitions, parses and pre-aggregates their lines, and
//! commits Parquet shards exactly once (staged on storage, committed in etcd, published by rename).
//!
//! Module map:
//! - [`cli`]: the `worker` command's arguments and entry point.
//! - [`context`]: what every actor shares: settings, storage, etcd, Kafka metadata, metrics.
//! - [`kafka`]: Kafka client settings and context, topic checks.
//! - [`messages`]: everything that travels between the consumer thread, the partition actors,
//!   the supervisor and its driver: batches, credits, actor messages, worker events.
//! - [`consumer`]: the Kafka consumer thread, explicit assignment, a queue per partition,
//!   credit-based flow control.
//! - [`supervisor`]: the root actor: owned partitions, restarts with backoff, concurrent drains.
//! - [`partition`]: one actor per partition: recover, parse, cut shards, commit.
//! - [`caught_up`]: the caught-up cut, pure: when a partition's open shard reaches the broker's
//!   end offset, commit it at once (at most once per `shard_max_age`).
//! - [`commit`]: the commit protocol's I/O steps and partition recovery.
//! - [`rederive`]: committed files lost before publishing, read again from Kafka and re-staged.
//! - [`retry`]: retry loops with a deadline, permanent errors told apart, failures reported.
//! - [`standalone`]: `worker run`, driven directly with its partitions.
//! - [`link`]: the connection to the coordinators: address list, a channel per address, leader
//!   following (the pure [`link::next_target`] and [`link::retry_delay`]).
//! - [`session`]: `worker join`, driven by the leading coordinator over gRPC (heartbeats,
//!   rejoin, leave).
//! - [`metrics`]: every Prometheus metric of the worker.
//! - [`metrics_server`]: `/metrics` and `/healthz` over HTTP.
//! - [`error`]: the crate's error enum.
//!
//! Dependencies between these modules form no cycle (`tests/tests/module_cycles.rs`): `messages`
//! depends on none of them, and `consumer`, `partition` and `supervisor` talk only through it.

pub mod caught_up;
pub mod cli;
pub mod commit;
pub mod consumer;
pub mod context;
pub mod error;
pub mod kafka;
pub mod link;
pub mod messages;
pub mod metrics;
pub mod metrics_server;
pub mod partition;
pub mod rederive;
pub mod retry;
pub mod session;
pub mod standalone;
pub mod supervisor;

pub use error::{Result, WorkerError};
