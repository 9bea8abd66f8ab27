//! Sawmill's pure core: everything that decides what a line means and what the output is, with no
//! I/O service behind it (no Kafka, etcd, HDFS or gRPC), so every crate can build on it and its
//! tests need nothing but memory.
//!
//! Module map, in pipeline order:
//!
//! - [`record`]: the parsed form of one line ([`record::LogRecord`]), reject reasons, calendar math.
//! - [`parse`]: bytes → [`record::LogRecord`] or [`record::RejectReason`]; per-line format detection.
//! - [`schema`]: the Arrow schemas of records, rejects and summary tables, defined once.
//! - [`batch`]: parses a chunk of lines straight into Arrow record batches, split by calendar date.
//! - [`analytics`]: mergeable partial aggregates ([`analytics::Partial`]) and the notebook's views.
//! - [`shard`]: Parquet encoding and decoding with Sawmill's metadata.
//! - [`layout`]: every path under an output root (records, rejects, summary, partials, staging).
//! - [`manifest`]: the commit protocol's manifests and its pure decisions (commit outcome,
//!   recovery plan, chain check).
//! - [`settings`]: one pipeline's settings, their defaults, validation and flags.
//! - [`connection`]: how this process reaches Kafka and etcd through their security (per
//!   process, never sent to workers; secrets only by file).
//! - [`generate`]: realistic synthetic access logs for scale tests and benchmarks.
//! - [`error`]: the crate's one error enum.

pub mod analytics;
pub mod batch;
pub mod connection;
pub mod error;
pub mod generate;
pub mod layout;
pub mod manifest;
pub mod parse;
pub mod record;
pub mod schema;
pub mod settings;
pub mod shard;

pub use error::{Error, Result};

/// The Sawmill version recorded in every Parquet file's key-value metadata.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
