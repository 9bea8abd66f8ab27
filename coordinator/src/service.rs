//! The gRPC service workers talk to: each call is handed to the cluster actor, which owns all
//! membership and assignment state, so calls are serialized without locks. The actor replies
//! with [`ClusterError`]s; [`to_status`] is the one place that turns them into status codes.

use crate::cluster::{ClusterMsg, Reply};
use crate::error::ClusterError;
use crate::state::ApiState;
use ractor::rpc::CallResult;
use sawmill_proto::v1::coordinator_server::Coordinator;
use sawmill_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, LeaveRequest, LeaveResponse,
    StatusRequest, StatusResponse,
};
use std::time::Duration;
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

pub struct CoordinatorService {
    pub api: ApiState,
}

impl CoordinatorService {
    async fn call<T: Send + 'static>(
        &self,
        what: &str,
        msg: impl FnOnce(Reply<T>) -> ClusterMsg,
    ) -> Result<Response<T>, Status> {
        match self.api.cluster.call(msg, Some(CALL_TIMEOUT)).await {
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
        let req = req.into_inner();
        self.call("join", |reply| ClusterMsg::Join(req, reply))
            .await
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let req = req.into_inner();
        self.call("heartbeat", |reply| ClusterMsg::Heartbeat(req, reply))
            .await
    }

    async fn leave(&self, req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        let req = req.into_inner();
        self.call("leave", |reply| ClusterMsg::Leave(req, reply))
            .await
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
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
