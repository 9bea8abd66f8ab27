//! The worker's one error enum.

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Common(#[from] sawmill_common::Error),
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("actor: {0}")]
    Actor(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{what}: gave up after {attempts} attempts over {elapsed_ms} ms (commit_deadline_ms); last error: {last} (check the output storage and etcd; the partition restarts with backoff)")]
    GaveUp {
        what: String,
        attempts: u32,
        elapsed_ms: u64,
        last: sawmill_common::Error,
    },
}

impl From<rdkafka::error::KafkaError> for WorkerError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        WorkerError::Kafka(e.to_string())
    }
}

impl From<sawmill_core::Error> for WorkerError {
    fn from(e: sawmill_core::Error) -> Self {
        WorkerError::Common(e.into())
    }
}

pub type Result<T, E = WorkerError> = std::result::Result<T, E>;
