//! The one error enum of `sawmill-core`. Each variant says what failed and what to do next.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        source: std::io::Error,
    },
    #[error("parquet error in {path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("corrupt data in {what}: {message}")]
    Corrupt { what: String, message: String },
    #[error("internal error: {0} (a bug: please report it)")]
    Internal(String),
}
