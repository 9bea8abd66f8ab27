//! The embedded run (`sawmill run`): local files → the core's parse → aggregate → Parquet path →
//! an output root, in one process, with none of the cluster's services.
//!
//! - [`input`]: plain, gzip or stdin input as newline-aligned chunks.
//! - [`pipeline`]: the reader and parser threads, shard publishing, the final merge.

pub mod input;
pub mod pipeline;
