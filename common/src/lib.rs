//! Sawmill's core library, shared by the `sawmill` command, the worker and the coordinator.
//!
//! Module map (data flows top to bottom):
//!
//! - [`record`]: the parsed form of one line ([`record::LogRecord`]), reject reasons, calendar math.
//! - [`parse`]: bytes → [`record::LogRecord`] or [`record::RejectReason`]; per-line format detection.
//! - [`schema`]: the Arrow schemas of records, rejects and summary tables, defined once.
//! - [`batch`]: parses a chunk of lines straight into Arrow record batches, split by calendar date.
//! - [`analytics`]: mergeable partial aggregates ([`analytics::Partial`]) and the notebook's views.
//! - [`storage`]: the small file-system interface (local directory; HDFS behind the same trait).
//! - [`storage_hdfs`]: the HDFS backend of [`storage::Storage`] (`hdfs://host:port/path` roots).
//! - [`settings`]: one pipeline's settings (topic → output), shared by every process.
//! - [`shard`]: Parquet shards with deterministic names, staged then published by rename.
//! - [`manifest`]: the commit protocol's etcd key layout, manifests and pure decisions.
//! - [`checkpoint`]: etcd I/O of the commit protocol (epochs, next offsets, manifests).
//! - [`committed`]: merges every committed shard's partial aggregates (etcd + storage).
//! - [`summary`]: writes and reads the merged `summary/<table>.parquet` tables.
//! - [`input`]: reads plain, gzip or stdin input as newline-aligned chunks.
//! - [`pipeline`]: the embedded multi-threaded run (`sawmill run`) over the same parts the workers use.
//! - [`proto`]: the generated gRPC contract (`proto/sawmill/v1/coordinator.proto`).
//! - [`process`]: binaries' logging set-up, runtime and shutdown signal.
//! - [`generate`]: realistic synthetic access logs for scale tests and benchmarks.
//! - [`error`]: the crate's one error enum.

pub mod analytics;
pub mod batch;
pub mod checkpoint;
pub mod committed;
pub mod error;
pub mod generate;
pub mod input;
pub mod manifest;
pub mod parse;
pub mod pipeline;
pub mod process;
pub mod proto;
pub mod record;
pub mod schema;
pub mod settings;
pub mod shard;
pub mod storage;
pub mod storage_hdfs;
pub mod summary;

pub use error::{Error, Result};

/// The Sawmill version recorded in every Parquet file's key-value metadata.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
