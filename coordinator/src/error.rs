//! The coordinator's one error enum. Each message says what failed and what to do next.

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error(transparent)]
    Common(#[from] sawmill_common::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "cannot listen on {addr}: {source} (is the port in use? pick another with --listen/--http)"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("etcd: {0} (is etcd running? check --etcd)")]
    Etcd(String),
    #[error("actor: {0}")]
    Actor(String),
    #[error("server: {0}")]
    Server(String),
}

impl From<etcd_client::Error> for CoordinatorError {
    fn from(e: etcd_client::Error) -> Self {
        CoordinatorError::Etcd(e.to_string())
    }
}

impl From<rdkafka::error::KafkaError> for CoordinatorError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        CoordinatorError::Kafka(e.to_string())
    }
}

impl From<sawmill_core::Error> for CoordinatorError {
    fn from(e: sawmill_core::Error) -> Self {
        CoordinatorError::Common(e.into())
    }
}

pub type Result<T, E = CoordinatorError> = std::result::Result<T, E>;
