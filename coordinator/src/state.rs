//! What the coordinator's doors share: the gRPC service ([`crate::service`]) and the HTTP API
//! ([`crate::http`], [`crate::dashboard`]) read the role ([`crate::role`]), the cluster through
//! the leading term's actor and the merged analytics through the published snapshot; neither
//! holds a lock.

use crate::cluster::{ClusterMsg, ClusterSnapshot};
use crate::config::ServeConfig;
use crate::error::{CoordinatorError, Result};
use crate::metrics::Metrics;
use crate::role::SharedRole;
use crate::snapshot::SharedMerged;
use crate::status::{self, ClusterStatus};
use crate::throughput::Throughput;
use std::sync::Arc;
use std::time::Instant;

/// What every handler reads.
#[derive(Clone)]
pub struct ApiState {
    pub cfg: Arc<ServeConfig>,
    /// Leader (with the current term's cluster actor) or standby; swapped by the election.
    pub role: SharedRole,
    pub merged: SharedMerged,
    pub metrics: Metrics,
    pub started: Instant,
    /// Merged lines over time, for the dashboard's throughput chart (sampled by `serve`).
    pub throughput: Arc<Throughput>,
}

impl ApiState {
    /// The status document (also returned by the gRPC `Status` call).
    pub async fn status(&self) -> Result<ClusterStatus> {
        let role = self.role.load_full();
        let view = role.view();
        let (cluster, merged) = match role.leading() {
            Some(actor) => (
                ractor::call_t!(actor, ClusterMsg::Snapshot, 5000)
                    .map_err(|e| CoordinatorError::ClusterUnavailable(e.to_string()))?,
                self.merged.load().status(),
            ),
            // A standby's own view would be stale: the leader's is the cluster's.
            None => (ClusterSnapshot::default(), Default::default()),
        };
        Ok(status::document(
            &self.cfg,
            self.started.elapsed(),
            cluster,
            merged,
            view,
        ))
    }
}
