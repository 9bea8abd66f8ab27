//! The gRPC service workers talk to: each call is handed to the cluster actor, which owns all
//! membership and assignment state, so calls are serialized without locks.

use crate::cluster::ClusterMsg;
use crate::http::ApiState;
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

pub struct CoordinatorService {
    pub api: ApiState,
}

impl CoordinatorService {
    async fn call<T: Send + 'static>(
        &self,
        what: &str,
        msg: impl FnOnce(crate::cluster::Reply<T>) -> ClusterMsg,
    ) -> Result<Response<T>, Status> {
        match self.api.cluster.call(msg, Some(CALL_TIMEOUT)).await {
            Ok(CallResult::Success(r)) => r.map(Response::new),
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
        self.call("join", |r| ClusterMsg::Join(req, r)).await
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let req = req.into_inner();
        self.call("heartbeat", |r| ClusterMsg::Heartbeat(req, r))
            .await
    }

    async fn leave(&self, req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        let req = req.into_inner();
        self.call("leave", |r| ClusterMsg::Leave(req, r)).await
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let doc = self.api.status().await.map_err(Status::unavailable)?;
        let json = serde_json::to_string(&doc)
            .map_err(|e| Status::internal(format!("cannot encode the status: {e}")))?;
        Ok(Response::new(StatusResponse { json }))
    }
}
