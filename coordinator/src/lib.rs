//! The Sawmill coordinator: decides which worker consumes which Kafka partition and tells the
//! workers over gRPC, merges the shards they commit into the summary tables exactly once, and
//! serves the cluster's status over HTTP.
//!
//! Module map, from the bottom up (a module uses only modules listed before it; the
//! workspace test `tests/tests/module_cycles.rs` keeps it that way):
//! - [`error`]: the crate's error enums ([`CoordinatorError`]; [`error::ClusterError`], the
//!   cluster actor's replies).
//! - [`config`]: layered configuration (defaults → JSON file → environment → flags).
//! - [`metrics`]: every Prometheus metric of the coordinator.
//! - [`auth`]: who may call the gRPC port (mTLS identity and allow-list, shared token, per-session
//!   secret), decided before a call reaches the cluster actor.
//! - [`assign`]: the pure partition-assignment decision (balanced, sticky, deterministic).
//! - [`ownership`]: each partition's ownership state machine (Unassigned/Owned/Releasing), pure.
//! - [`watchdog`]: the progress watchdog, pure: partitions without progress while they have
//!   lag are taken from their live owner, and the pair is backed off.
//! - [`membership`]: a worker's registration, version check and status line.
//! - [`cluster`]: the cluster actor: membership, session timeouts, the assignment loop. It
//!   receives the topic's facts as messages and polls nothing.
//! - [`topic`]: above the cluster actor: polls Kafka (partitions, end offsets) and etcd (epochs,
//!   committed offsets) and sends the actor what it read.
//! - [`compact`]: bounded state: folds merged manifests out of etcd into manifest segments,
//!   compacts etcd's history, sweeps stale staging files.
//! - [`snapshot`]: the merged state as immutable snapshots (`ArcSwap`), loaded by readers.
//! - [`merge`]: the merge actor: committed partials → merged analytics → `summary/` tables; it
//!   owns the merged state and publishes snapshots.
//! - [`throughput`]: merged lines over time, sampled by `serve` for the dashboard.
//! - [`status`]: the cluster status document (the proto's `ClusterStatus`, also JSON).
//! - [`role`]: leader (with the term's cluster actor and fence) or standby (and the leader's
//!   address), swapped whole by the election.
//! - [`leader`]: the election loop: campaign for the leader key, run a *term* (merge actor,
//!   cluster actor, topic poller on a fenced etcd client) while leading, step down at once when
//!   the lease is lost or a write is fenced; the pure [`leader::step_down`].
//! - [`state`]: what the doors share ([`state::ApiState`]): the role, the merged snapshot,
//!   metrics, throughput.
//! - [`service`]: the gRPC door (`proto/sawmill/v1/coordinator.proto`); maps
//!   [`error::ClusterError`] to status codes in one place.
//! - [`dashboard`]: the live dashboard page at `/` and the document it polls.
//! - [`http`]: the JSON API, `/metrics` and `/healthz` (docs/http-api.md).
//! - [`cli`]: the `coordinator` command.
//!
//! [`serve`] runs all of it in-process (tests start a coordinator on port 0 this way).

pub mod assign;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod compact;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod http;
pub mod leader;
pub mod membership;
pub mod merge;
pub mod metrics;
pub mod ownership;
pub mod role;
pub mod service;
pub mod snapshot;
pub mod state;
pub mod status;
pub mod throughput;
pub mod topic;
pub mod transport;
pub mod watchdog;

pub use config::ServeConfig;
pub use error::{CoordinatorError, Result};

use crate::metrics::Metrics;
use crate::snapshot::MergedSnapshot;
use crate::state::ApiState;
use crate::throughput::Throughput;
use sawmill_common::etcd::Checkpoints;
use sawmill_core::analytics::Partial;
use sawmill_proto::v1::coordinator_server::CoordinatorServer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running coordinator.
pub struct ServeHandle {
    /// The bound gRPC address (the real port when `listen` asked for port 0).
    pub grpc: SocketAddr,
    /// The bound HTTP address.
    pub http: SocketAddr,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl ServeHandle {
    /// Waits until the coordinator has shut down (after the `shutdown` future passed to
    /// [`serve`] completed), the summary flushed.
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| CoordinatorError::Server(format!("coordinator task failed: {e}")))?
    }
}

async fn bind(addr: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CoordinatorError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Connects to etcd and storage, binds both listeners, starts the election (and, while
/// leading, the actors) and the servers, and returns once everything listens and this
/// coordinator knows whether it leads. When `shutdown` completes, the servers stop, the merged
/// summary is written one last time, and [`ServeHandle::wait`] returns.
pub async fn serve(
    cfg: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServeHandle> {
    cfg.validate()?;
    let cfg = Arc::new(cfg);
    let metrics = Metrics::default();
    let started = Instant::now();
    let checkpoints = Checkpoints::connect_with(
        &cfg.pipeline.etcd,
        cfg.pipeline.pipeline_name(),
        &cfg.pipeline.connection.etcd_auth()?,
    )
    .await?;
    let storage =
        sawmill_common::storage::open_with(&cfg.pipeline.output, &cfg.pipeline.connection).await?;
    let grpc_listener = bind(&cfg.listen).await?;
    let http_listener = bind(&cfg.http).await?;
    let grpc = grpc_listener
        .local_addr()
        .map_err(|e| CoordinatorError::Server(e.to_string()))?;
    let http = http_listener
        .local_addr()
        .map_err(|e| CoordinatorError::Server(e.to_string()))?;
    let transport = transport::Transport::load(&cfg, grpc, http)?;

    let merged = snapshot::shared(MergedSnapshot::new(Partial::new(&cfg.pipeline.analytics())));
    let role = role::shared();
    let hostname = std::fs::read_to_string("/etc/hostname").ok();
    let advertise = leader::advertised(cfg.advertise.as_deref(), grpc, hostname.as_deref());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let election = tokio::spawn(leader::run(
        leader::Election {
            cfg: cfg.clone(),
            checkpoints,
            storage,
            merged: merged.clone(),
            metrics: metrics.clone(),
            role: role.clone(),
            advertise: advertise.clone(),
        },
        stop_rx.clone(),
        ready_tx,
    ));
    // Returns once this coordinator knows its role: a lone coordinator serves workers at once.
    // (Bounded: with etcd unreachable it serves as a standby and keeps campaigning.)
    let _ = tokio::time::timeout(Duration::from_secs(15), ready).await;
    let throughput = Arc::new(Throughput::default());
    let sampler = throughput::spawn_sampler(merged.clone(), throughput.clone());

    let api = ApiState {
        cfg: cfg.clone(),
        role,
        merged,
        metrics,
        started,
        throughput,
    };
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = transport.grpc_tls.clone() {
        builder = builder
            .tls_config(tls)
            .map_err(|e| CoordinatorError::Config(format!("gRPC TLS: {e}")))?;
    }
    let grpc_server = tokio::spawn(
        builder
            .add_service(
                CoordinatorServer::new(service::CoordinatorService {
                    api: api.clone(),
                    policy: transport.policy.clone(),
                    sessions: Arc::new(auth::Sessions::new(cfg.session_timeout())),
                })
                // Requests are small (a heartbeat lists a worker's partitions): bound them.
                .max_decoding_message_size(service::MAX_REQUEST_BYTES),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(grpc_listener),
                stopped(stop_rx.clone()),
            ),
    );
    let http_app = http::router(api);
    let http_server = tokio::spawn(async move {
        transport
            .serve_http(http_listener, http_app, stopped(stop_rx))
            .await
    });
    tracing::info!(grpc = %grpc, http = %http, advertise = %advertise, topic = %cfg.pipeline.topic, output = %cfg.pipeline.output, "coordinator listening");

    let task = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: stopping the servers, writing the summary");
        let _ = stop_tx.send(true);
        let aborts = [grpc_server.abort_handle(), http_server.abort_handle()];
        let wait = async {
            let _ = grpc_server.await;
            let _ = http_server.await;
        };
        if tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_err()
        {
            tracing::warn!("servers did not stop within 5 s; closing them");
            for server in aborts {
                server.abort();
            }
        }
        sampler.abort();
        // A leader writes the final summary and resigns; a standby just stops.
        election
            .await
            .map_err(|e| CoordinatorError::Server(format!("election task failed: {e}")))?
    });
    Ok(ServeHandle { grpc, http, task })
}
