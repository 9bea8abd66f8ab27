//! The one error enum of `sawmill-common`. Each variant says what failed and what to do next.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] sawmill_core::Error),
    #[error("cannot read input {path}: {source} (check that the file exists and is readable)")]
    Input {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write output at {path}: {source} (check that the directory is writable)")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error("storage error at {path}: {message}")]
    Storage { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("corrupt data in {what}: {message}")]
    Corrupt { what: String, message: String },
    #[error("etcd: {0}")]
    Etcd(String),
    #[error("partition {partition} is owned under epoch {current:?} now, not {epoch}: this worker was fenced and must stop processing it")]
    Fenced {
        partition: i32,
        epoch: u64,
        current: Option<u64>,
    },
    /// A coordinator write refused because another coordinator leads now (or this one's lease
    /// is over): step down.
    #[error("not the leader: {0}; this coordinator steps down and follows the new leader")]
    NotLeader(String),
    #[error("no summary tables under {root}: run `sawmill run` or a cluster first")]
    NoSummary { root: String },
    #[error("pipeline stopped: {0}")]
    Pipeline(String),
}

impl Error {
    /// Whether retrying the same operation can never succeed: bad configuration or corrupt data
    /// needs a person, not another attempt.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Error::Config(_)
                | Error::Corrupt { .. }
                | Error::Core(sawmill_core::Error::Config(_) | sawmill_core::Error::Corrupt { .. })
        )
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Core(e.into())
    }
}
