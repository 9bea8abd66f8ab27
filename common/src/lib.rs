//! Sawmill's I/O adapters, shared by the `sawmill` command, the worker and the coordinator: where
//! the pure core (`sawmill-core`) meets storage, etcd and the process.
//!
//! Module map:
//!
//! - [`storage`]: the small file-system interface of an output root; a local directory here,
//!   HDFS in [`storage::hdfs`].
//! - [`etcd`]: every etcd key and transaction (epochs, next offsets, manifests, generation).
//! - [`committed`]: merges every committed shard's partial aggregates (etcd + storage).
//! - [`coordinator_client`]: a gRPC channel to the coordinator through TLS, mutual TLS and token.
//! - [`summary`]: writes and reads the merged `summary/<table>.parquet` tables.
//! - [`embedded`]: the one-process run (`sawmill run`): input chunking and the threaded pipeline.
//! - [`process`]: binaries' logging set-up, runtime and shutdown signal.
//! - [`failpoints`]: fail points in the commit protocol, compiled in only for the chaos tests.
//! - [`error`]: the crate's one error enum.

pub mod committed;
pub mod coordinator_client;
pub mod embedded;
pub mod error;
pub mod etcd;
pub mod failpoints;
pub mod process;
pub mod storage;
pub mod summary;

pub use error::{Error, Result};
