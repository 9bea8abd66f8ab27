//! What the coordinator's doors share: the gRPC service ([`crate::service`]) and the HTTP API
//! ([`crate::http`], [`crate::dashboard`]) read the cluster through its actor and the merged
//! analytics through the published snapshot; neither holds a lock.

use crate::cluster::ClusterMsg;
use crate::config::ServeConfig;
use crate::error::{CoordinatorError, Result};
use crate::metrics::Metrics;
use crate::snapshot::SharedMerged;
use crate::status::{self, ClusterStatus};
use crate::throughput::Throughput;
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Instant;

/// What every handler reads.
#[derive(Clone)]
pub struct ApiState {
    pub cfg: Arc<ServeConfig>,
    pub cluster: ActorRef<ClusterMsg>,
    pub merged: SharedMerged,
    pub metrics: Metrics,
    pub started: Instant,
    /// Merged lines over time, for the dashboard's throughput chart (sampled by `serve`).
    pub throughput: Arc<Throughput>,
}

impl ApiState {
    /// The status document (also returned by the gRPC `Status` call).
    pub async fn status(&self) -> Result<ClusterStatus> {
        let cluster = ractor::call_t!(self.cluster, ClusterMsg::Snapshot, 5000)
            .map_err(|e| CoordinatorError::ClusterUnavailable(e.to_string()))?;
        Ok(status::document(
            &self.cfg,
            self.started.elapsed(),
            cluster,
            self.merged.load().status(),
        ))
    }
}
