//! The cluster status document: `GET /api/v1/status`, the dashboard's `cluster` and the gRPC
//! `Status` call. Its type is the proto's [`ClusterStatus`] (every field's contract is in
//! proto/sawmill/v1/coordinator.proto), which serializes to the JSON documented in
//! docs/http-api.md; add fields, never rename or remove them.

use crate::cluster::ClusterSnapshot;
use crate::config::ServeConfig;
pub use sawmill_proto::v1::{ClusterStatus, MergedStatus, PartitionStatus, WorkerStatus};
use std::time::Duration;

/// This coordinator's role as the status document shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    /// `leader` or `standby`.
    pub role: &'static str,
    /// The leader's advertised address, if known.
    pub leader: Option<String>,
}

/// The document from the cluster actor's snapshot and the merged snapshot's status.
pub fn document(
    cfg: &ServeConfig,
    uptime: Duration,
    cluster: ClusterSnapshot,
    merged: MergedStatus,
    role: RoleView,
) -> ClusterStatus {
    ClusterStatus {
        version: sawmill_core::VERSION.to_string(),
        pipeline: cfg.pipeline.pipeline_name().to_string(),
        topic: cfg.pipeline.topic.clone(),
        output: cfg.pipeline.output.clone(),
        generation: cluster.generation,
        uptime_ms: uptime.as_millis() as u64,
        total_lag: cluster.partitions.iter().filter_map(|p| p.lag).sum(),
        workers: cluster.workers,
        partitions: cluster.partitions,
        merged: Some(merged),
        role: role.role.to_string(),
        leader: role.leader,
    }
}
