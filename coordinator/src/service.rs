//! The gRPC service workers talk to: each call is handed to the cluster actor, which owns all
//! membership and assignment state, so calls are serialized without locks. The actor replies
//! with [`ClusterError`]s; [`to_status`] is the one place that turns them into status codes.

use crate::auth::{AccessPolicy, Sessions};
use crate::cluster::{ClusterMsg, Reply};
use crate::error::ClusterError;
use crate::state::ApiState;
use ractor::rpc::CallResult;
use sawmill_proto::v1::coordinator_server::Coordinator;
use sawmill_proto::v1::OwnedPartition;
use sawmill_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, LeaveRequest, LeaveResponse,
    StatusRequest, StatusResponse,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// Long enough for an assignment pass that bumps several epochs in etcd.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The status code a worker acts on for each refusal: NOT_FOUND and FAILED_PRECONDITION make it
/// rejoin (or stop, for a version mismatch), UNAVAILABLE makes it retry.
pub fn to_status(error: ClusterError) -> Status {
    let message = error.to_string();
    match error {
        ClusterError::EmptyWorkerId => Status::invalid_argument(message),
        ClusterError::IncompatibleVersion { .. } | ClusterError::StaleGeneration { .. } => {
            Status::failed_precondition(message)
        }
        ClusterError::UnknownWorker(_) | ClusterError::ExpiredWorker(_) => {
            Status::not_found(message)
        }
        ClusterError::Generation(_) => Status::unavailable(message),
        ClusterError::Settings(_) => Status::internal(message),
    }
}

/// The largest request the gRPC port decodes: a heartbeat of a worker owning thousands of
/// partitions is far smaller.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Bounds on the free-text fields of a request.
const MAX_ID_BYTES: usize = 128;
const MAX_FIELD_BYTES: usize = 256;
const MAX_PARTITIONS: usize = 100_000;

pub struct CoordinatorService {
    pub api: ApiState,
    /// Who may call (mTLS identity, token), checked before anything else.
    pub policy: Arc<AccessPolicy>,
    /// Session secrets and the identity each worker id is bound to.
    pub sessions: Arc<Sessions>,
}

/// Refuses a worker id that is empty, too long or not printable, saying what to change.
fn check_id(id: &str) -> Result<(), Status> {
    if id.len() > MAX_ID_BYTES || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Status::invalid_argument(format!(
            "worker id must be at most {MAX_ID_BYTES} bytes without spaces or control characters"
        )));
    }
    Ok(())
}

fn check_field(what: &str, v: &str) -> Result<(), Status> {
    if v.len() > MAX_FIELD_BYTES {
        return Err(Status::invalid_argument(format!(
            "{what} must be at most {MAX_FIELD_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_partitions(owned: &[OwnedPartition]) -> Result<(), Status> {
    if owned.len() > MAX_PARTITIONS || owned.iter().any(|p| p.partition < 0) {
        return Err(Status::invalid_argument(format!(
            "partitions must be non-negative and at most {MAX_PARTITIONS}"
        )));
    }
    Ok(())
}

impl CoordinatorService {
    /// Refuses a worker call on a standby (before any session is created or checked here),
    /// naming the leader.
    fn require_leader(&self) -> Result<(), Status> {
        let role = self.api.role.load();
        match role.leading() {
            Some(_) => Ok(()),
            None => Err(crate::role::not_leader(&role.view())),
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        what: &str,
        msg: impl FnOnce(Reply<T>) -> ClusterMsg,
    ) -> Result<Response<T>, Status> {
        let role = self.api.role.load_full();
        let Some(cluster) = role.leading() else {
            return Err(crate::role::not_leader(&role.view()));
        };
        match cluster.call(msg, Some(CALL_TIMEOUT)).await {
            Ok(CallResult::Success(answer)) => answer.map(Response::new).map_err(to_status),
            Ok(CallResult::Timeout) => Err(Status::unavailable(format!(
                "{what} timed out in the coordinator: retry"
            ))),
            Ok(CallResult::SenderError) | Err(_) => Err(Status::unavailable(format!(
                "the coordinator is shutting down ({what}): retry against the new one"
            ))),
        }
    }
}

#[tonic::async_trait]
impl Coordinator for CoordinatorService {
    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let identity = self.policy.check(&req, true)?;
        self.require_leader()?;
        let req = req.into_inner();
        check_id(&req.worker_id)?;
        check_field("version", &req.version)?;
        check_field("metrics address", &req.metrics_address)?;
        check_partitions(&req.owned)?;
        // Before the cluster replaces any registration: a live id stays with its identity.
        let secret = self
            .sessions
            .join(&req.worker_id, &identity, Instant::now())?;
        let mut resp = self
            .call("join", |reply| ClusterMsg::Join(req, reply))
            .await?;
        resp.get_mut().session_secret = secret;
        Ok(resp)
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.policy.check(&req, true)?;
        self.require_leader()?;
        let req = req.into_inner();
        check_id(&req.worker_id)?;
        check_partitions(&req.owned)?;
        self.sessions
            .check(&req.worker_id, &req.session_secret, Instant::now())?;
        self.call("heartbeat", |reply| ClusterMsg::Heartbeat(req, reply))
            .await
    }

    async fn leave(&self, req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        self.policy.check(&req, true)?;
        self.require_leader()?;
        let req = req.into_inner();
        check_id(&req.worker_id)?;
        check_partitions(&req.released)?;
        self.sessions
            .check(&req.worker_id, &req.session_secret, Instant::now())?;
        let id = req.worker_id.clone();
        let resp = self
            .call("leave", |reply| ClusterMsg::Leave(req, reply))
            .await;
        self.sessions.leave(&id);
        resp
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.policy.check(&req, false)?;
        let status = self
            .api
            .status()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        // The deprecated JSON copy, for clients of earlier releases.
        let json = serde_json::to_string(&status)
            .map_err(|e| Status::internal(format!("cannot encode the status: {e}")))?;
        Ok(Response::new(StatusResponse {
            json,
            status: Some(status),
        }))
    }
}
