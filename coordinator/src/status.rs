//! The cluster status document: `GET /api/v1/status` and the gRPC `Status` call return it as
//! JSON. Fields are documented in docs/http-api.md; add fields, never rename or remove them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// Sawmill version of the coordinator.
    pub version: String,
    /// etcd subtree name (`/sawmill/<pipeline>/`).
    pub pipeline: String,
    pub topic: String,
    pub output: String,
    /// Last generation handed out at Join (0 before the first Join of this process).
    pub generation: u64,
    pub uptime_ms: u64,
    pub workers: Vec<WorkerStatus>,
    pub partitions: Vec<PartitionStatus>,
    /// Sum of every partition's lag (partitions with unknown offsets count 0).
    pub total_lag: i64,
    pub merged: MergedStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub id: String,
    pub generation: u64,
    pub version: String,
    /// Where the worker serves /metrics (empty if it does not).
    pub metrics_address: String,
    pub last_heartbeat_ms_ago: u64,
    /// False once it missed the session timeout (shown for a minute, then forgotten).
    pub alive: bool,
    /// Partitions the worker reported running in its last heartbeat.
    pub owned: Vec<i32>,
    /// Records consumed since the worker started (its own count).
    pub records_consumed: u64,
    /// Records consumed per second over the last few seconds.
    pub throughput: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub partition: i32,
    /// The worker holding the partition's epoch (while `releasing`, the old owner).
    pub owner: Option<String>,
    pub epoch: Option<u64>,
    /// `unassigned`, `owned` or `releasing`.
    pub state: String,
    /// While `releasing`: the worker that takes over once the owner has released.
    pub moving_to: Option<String>,
    /// etcd's next offset: everything before it is committed.
    pub committed_offset: Option<i64>,
    /// Kafka's high watermark.
    pub end_offset: Option<i64>,
    /// `end_offset - committed_offset`; before the partition's first commit, `end_offset`
    /// (its whole content). `None` until Kafka's offsets are known.
    pub lag: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergedStatus {
    pub records: u64,
    pub rejects: u64,
    pub shards: u64,
    /// Next offset after the merged chain of each partition.
    pub next_offsets: BTreeMap<i32, i64>,
    pub summary_writes: u64,
    pub last_summary_ms_ago: Option<u64>,
    /// The last merge or summary error, if the latest attempt failed.
    pub last_error: Option<String>,
}
