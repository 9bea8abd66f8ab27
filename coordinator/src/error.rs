//! The coordinator's error enums. Each message says what failed and what to do next.
//!
//! [`CoordinatorError`] is what `serve` and the doors (HTTP, gRPC) report; [`ClusterError`] is
//! what the cluster actor replies to a worker's request (the gRPC door maps it to a status code
//! in one place, `service::to_status`); [`MergeError`] and [`TopicError`] are the failures the
//! merge actor and the topic poller retry, logged and shown in the status document.

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
    /// The cluster actor did not answer a status read (the coordinator is shutting down).
    #[error("the cluster actor does not answer: {0}")]
    ClusterUnavailable(String),
    #[error("cannot encode the response: {0}")]
    Encode(#[from] serde_json::Error),
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

/// Why the cluster actor refused or could not serve a worker's Join, Heartbeat or Leave. The
/// worker acts on the status code each maps to (see `service::to_status`).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("worker_id is empty: pass --worker-id or leave the default")]
    EmptyWorkerId,
    #[error(
        "worker {worker} runs Sawmill {version:?} but the coordinator runs {ours} (major.minor must match): deploy the same release"
    )]
    IncompatibleVersion {
        worker: String,
        version: String,
        ours: &'static str,
    },
    /// Never joined this coordinator (or was forgotten a minute after it died).
    #[error("unknown worker {0}: join first")]
    UnknownWorker(String),
    /// Joined, but declared dead or left since.
    #[error("unknown worker {0}: join first (its session expired or it left)")]
    ExpiredWorker(String),
    #[error("stale generation {got} for worker {worker} (current {current}): rejoin")]
    StaleGeneration {
        worker: String,
        got: u64,
        current: u64,
    },
    #[error("cannot persist the generation in etcd: {0}; retry shortly")]
    Generation(sawmill_common::Error),
    #[error("cannot encode the settings: {0}")]
    Settings(serde_json::Error),
}

/// A merge poll or summary write that failed; retried on the next poll or interval.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot list manifests: {0}")]
    ListManifests(sawmill_common::Error),
    #[error("cannot read manifest {partition}/{first}: {source}")]
    ReadManifest {
        partition: i32,
        first: i64,
        source: sawmill_common::Error,
    },
    #[error("cannot load a shard partial of partition {0}")]
    LoadPartial(i32),
    #[error("cannot write the summary tables: {0}")]
    WriteSummary(sawmill_common::Error),
    #[error("cannot read the manifest segment of partition {partition}: {source}")]
    Segment {
        partition: i32,
        source: sawmill_common::Error,
    },
    #[error("cannot fold the manifests of partition {partition}: {source}; retried after the next summary write")]
    Fold {
        partition: i32,
        source: sawmill_common::Error,
    },
    #[error("cannot compact etcd's history: {0}; retried after the next fold")]
    Compact(sawmill_common::Error),
    #[error("cannot sweep stale staging files: {0}; retried at the next sweep")]
    Sweep(sawmill_common::Error),
    #[error("{what} task failed: {source}")]
    Task {
        what: &'static str,
        source: tokio::task::JoinError,
    },
}

/// Why the topic's partitions or end offsets could not be read; retried every tick.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("cannot read metadata: {0} (is Kafka running? check --bootstrap-servers)")]
    Metadata(rdkafka::error::KafkaError),
    #[error("topic {0:?} not found")]
    NotFound(String),
    #[error("topic {0:?} does not exist yet: create it (sawmill produce does) or fix --topic")]
    Missing(String),
    #[error("cannot read watermarks of partition {partition}: {source}")]
    Watermarks {
        partition: i32,
        source: rdkafka::error::KafkaError,
    },
}
