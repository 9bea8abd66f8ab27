//! `worker join`: a worker driven by a coordinator.
//!
//! Join → pipeline settings (with local overrides, e.g. Kafka as seen from this host) →
//! [`WorkerContext::connect`] → [`WorkerSupervisor`] → heartbeat loop. Each heartbeat reports
//! what the worker runs (partition, epoch, committed offset); the answer says what to start
//! (`assign`, already fenced in etcd for this worker) and what to release (commit the open
//! shard, stop). Releases run in their own tasks so heartbeats go on while a shard commits.
//!
//! - NOT_FOUND / FAILED_PRECONDITION (declared dead, coordinator restarted, stale generation,
//!   a new leader): rejoin with the partitions still running, so the coordinator keeps them
//!   here.
//! - Coordinator unreachable or a standby: keep processing what is owned (fencing keeps that
//!   safe) and follow the leader ([`crate::link`]), retrying with a capped backoff.
//! - Kafka, etcd or the output storage not reachable at start: leave, wait, join again.
//! - SIGINT/SIGTERM: release everything (open shards are committed), Leave, exit 0.
//! - A refused Join (e.g. incompatible version): exit non-zero with the coordinator's message.

use crate::context::WorkerContext;
use crate::error::{Result, WorkerError};
use crate::link::{redirect, CoordinatorLink};
use crate::messages::{SupervisorMsg, WorkerEvent};
use crate::metrics::Failing;
use crate::metrics_server::serve_metrics;
use crate::supervisor::{SupervisorArgs, WorkerSupervisor};
use ractor::{Actor, ActorRef};
use sawmill_common::coordinator_client::authorized;
use sawmill_common::process::shutdown_signal;
use sawmill_core::settings::PipelineSettings;
use sawmill_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, LeaveRequest, OwnedPartition,
    PartitionError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tonic::Code;

/// Settings this worker replaces in what the coordinator hands out (all optional).
#[derive(Debug, Clone, Default)]
pub struct SettingsOverrides {
    pub bootstrap_servers: Option<String>,
    pub output: Option<String>,
    pub etcd: Option<String>,
    /// This worker's own way through the services' security (never from the coordinator).
    pub connection: sawmill_core::connection::ConnectionSettings,
}

impl SettingsOverrides {
    pub fn apply(&self, s: &mut PipelineSettings) {
        if let Some(v) = &self.bootstrap_servers {
            s.bootstrap_servers = v.clone();
        }
        if let Some(v) = &self.output {
            s.output = v.clone();
        }
        if let Some(v) = &self.etcd {
            s.etcd = v.clone();
        }
        s.connection = self.connection.clone();
    }
}

#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// `host:port` or `http://host:port` of the coordinators' gRPC listeners, comma-separated
    /// (or one name resolving to several addresses): the worker follows the leader among them.
    pub coordinator: String,
    pub worker_id: String,
    pub overrides: SettingsOverrides,
    /// Serve this worker's Prometheus metrics at `http://ADDR/metrics`.
    pub metrics_listen: Option<String>,
    /// The version reported at Join (the real one unless a test says otherwise).
    pub version: String,
    /// TLS, client certificate and token for a secured coordinator.
    pub access: sawmill_core::connection::CoordinatorAccess,
}

/// Backoff while the coordinator is unreachable: short, so a restarted coordinator sees its
/// workers again well within their session timeout.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Backoff while the pipeline's services cannot be reached at start.
const CONNECT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a heartbeat waits for the supervisor's owned list before using its own record
/// (the supervisor answers at once unless it is starting a partition).
const OWNED_TIMEOUT_MS: u64 = 200;

/// A failing partition as the heartbeat reports it: ages, not clock times, since the
/// coordinator's clock may differ.
fn partition_error(f: &Failing, now: SystemTime) -> PartitionError {
    let ago = |t: SystemTime| now.duration_since(t).unwrap_or_default().as_millis() as u64;
    PartitionError {
        what: f.what.clone(),
        message: f.error.clone(),
        attempts: f.attempts,
        failing_for_ms: ago(f.since),
        last_error_ms_ago: ago(f.last),
    }
}

/// What a release reports back: the partition and its committed next offset.
type Released = (i32, Option<i64>);

struct Session {
    opts: JoinOptions,
    /// The coordinators and which one leads, as far as this worker knows.
    link: CoordinatorLink,
    /// This session's secret (from Join), carried by every Heartbeat and Leave.
    secret: String,
    generation: u64,
    interval: Duration,
    /// What runs here: partition → epoch (the supervisor's view when it answers in time).
    owned: BTreeMap<i32, u64>,
    committed: BTreeMap<i32, i64>,
    releasing: BTreeSet<i32>,
    ctx: Option<Arc<WorkerContext>>,
    supervisor: Option<ActorRef<SupervisorMsg>>,
    /// Where each release task reports when its partition is released.
    release_tx: mpsc::UnboundedSender<Released>,
    next_beat: tokio::time::Instant,
    down_since: Option<Instant>,
    /// Releasing everything before leaving (shutdown, or a refused rejoin).
    release_all: Option<tokio::task::JoinHandle<BTreeMap<i32, i64>>>,
    /// What `run` returns once the session is over.
    outcome: Result<()>,
}

impl Session {
    fn new(opts: JoinOptions, link: CoordinatorLink) -> (Self, mpsc::UnboundedReceiver<Released>) {
        let (release_tx, released) = mpsc::unbounded_channel();
        let interval = Duration::from_millis(500);
        let session = Session {
            opts,
            link,
            secret: String::new(),
            generation: 0,
            interval,
            owned: BTreeMap::new(),
            committed: BTreeMap::new(),
            releasing: BTreeSet::new(),
            ctx: None,
            supervisor: None,
            release_tx,
            next_beat: tokio::time::Instant::now(),
            down_since: None,
            release_all: None,
            outcome: Ok(()),
        };
        (session, released)
    }

    fn owned_list(&self) -> Vec<OwnedPartition> {
        let failing = self
            .ctx
            .as_ref()
            .map(|ctx| ctx.metrics.health().failing())
            .unwrap_or_default();
        let now = SystemTime::now();
        self.owned
            .iter()
            .map(|(&partition, &epoch)| OwnedPartition {
                partition,
                epoch,
                committed_offset: self.committed.get(&partition).copied(),
                last_error: failing.get(&partition).map(|f| partition_error(f, now)),
            })
            .collect()
    }

    async fn join(&mut self) -> std::result::Result<JoinResponse, tonic::Status> {
        let request = JoinRequest {
            worker_id: self.opts.worker_id.clone(),
            version: self.opts.version.clone(),
            metrics_address: self.opts.metrics_listen.clone().unwrap_or_default(),
            owned: self.owned_list(),
        };
        let request = authorized(request, self.link.bearer());
        let response = self.link.client().join(request).await?.into_inner();
        self.link.answered();
        self.generation = response.generation;
        self.secret = response.session_secret.clone();
        self.interval = Duration::from_millis(u64::from(response.heartbeat_interval_ms.max(50)));
        Ok(response)
    }

    /// The first Join: waits for the coordinator, fails on a refusal; `None` if stopped first.
    async fn first_join(
        &mut self,
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<Option<JoinResponse>> {
        loop {
            tokio::select! {
                _ = &mut *shutdown => return Ok(None),
                joined = self.join() => match joined {
                    Ok(response) => return Ok(Some(response)),
                    Err(e) if redirect(&e) => {
                        let at = self.link.current().to_string();
                        let wait = self.link.failed(&e, Duration::from_millis(250), MAX_BACKOFF);
                        tracing::warn!(coordinator = %at, error = %e.message(), retry_ms = wait.as_millis() as u64, "coordinator unreachable or not the leader; retrying");
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => {
                        return Err(WorkerError::Config(format!(
                            "the coordinator at {} refused this worker: {}",
                            self.link.current(),
                            e.message()
                        )))
                    }
                }
            }
        }
    }

    /// Joins, then connects to the pipeline's services. A service that cannot be reached yet
    /// (a container whose network is still settling, a broker starting) is waited for: the
    /// session leaves, so the coordinator does not give it partitions meanwhile, and joins
    /// again after a backoff. `None` if stopped first.
    async fn join_and_connect(
        &mut self,
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<Option<Arc<WorkerContext>>> {
        let mut backoff = Duration::from_millis(500);
        loop {
            let Some(joined) = self.first_join(shutdown).await? else {
                return Ok(None);
            };
            let settings = self.settings(&joined)?;
            tracing::info!(worker = %self.opts.worker_id, generation = self.generation, topic = %settings.topic, output = %settings.output, "joined the coordinator");
            match WorkerContext::connect(self.opts.worker_id.clone(), settings).await {
                Ok(ctx) => return Ok(Some(ctx)),
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "the pipeline's services are not reachable yet: leaving, then joining again");
                    self.leave(BTreeMap::new()).await;
                    tokio::select! {
                        _ = &mut *shutdown => return Ok(None),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(CONNECT_MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The pipeline settings from the Join answer, with this worker's overrides.
    fn settings(&self, joined: &JoinResponse) -> Result<PipelineSettings> {
        let mut settings: PipelineSettings = serde_json::from_str(&joined.settings_json).map_err(|e| {
            WorkerError::Config(format!(
                "the coordinator sent settings this worker cannot read ({e}): run the same Sawmill release"
            ))
        })?;
        self.opts.overrides.apply(&mut settings);
        Ok(settings)
    }

    /// Refreshes `owned` from the supervisor if it answers promptly.
    async fn refresh_owned(&mut self) {
        let Some(supervisor) = &self.supervisor else {
            return;
        };
        if let Ok(owned) = ractor::call_t!(supervisor, SupervisorMsg::Owned, OWNED_TIMEOUT_MS) {
            self.owned = owned;
        }
    }

    async fn heartbeat(&mut self) -> std::result::Result<HeartbeatResponse, tonic::Status> {
        let records = self
            .ctx
            .as_ref()
            .map(|ctx| ctx.metrics.records_consumed())
            .unwrap_or(0);
        let request = HeartbeatRequest {
            worker_id: self.opts.worker_id.clone(),
            generation: self.generation,
            owned: self.owned_list(),
            records_consumed: records,
            session_secret: self.secret.clone(),
        };
        let request = authorized(request, self.link.bearer());
        let response = self.link.client().heartbeat(request).await?.into_inner();
        self.link.answered();
        Ok(response)
    }

    /// Time for a heartbeat: send it and act on the answer.
    async fn on_heartbeat_tick(&mut self) {
        self.refresh_owned().await;
        match self.heartbeat().await {
            Ok(response) => {
                if let Some(since) = self.down_since.take() {
                    tracing::info!(
                        down_ms = since.elapsed().as_millis() as u64,
                        "coordinator reachable again"
                    );
                }
                if self.release_all.is_none() {
                    self.apply(response);
                }
            }
            Err(e) if matches!(e.code(), Code::NotFound | Code::FailedPrecondition) => {
                if let Some(wait) = self.rejoin(&e).await {
                    self.next_beat = tokio::time::Instant::now() + wait;
                    return;
                }
            }
            Err(e) => {
                if self.down_since.is_none() {
                    tracing::warn!(coordinator = %self.link.current(), error = %e.message(), "coordinator unreachable or not the leader: still processing owned partitions, following the leader");
                    self.down_since = Some(Instant::now());
                }
                let wait = self.link.failed(&e, self.interval, MAX_BACKOFF);
                self.next_beat = tokio::time::Instant::now() + wait;
                return;
            }
        }
        self.next_beat = tokio::time::Instant::now() + self.interval;
    }

    /// The coordinator no longer knows this session (declared dead, restarted, stale
    /// generation): join again with the partitions still running here.
    /// Returns the wait before the next attempt when the rejoin must be retried elsewhere.
    async fn rejoin(&mut self, reason: &tonic::Status) -> Option<Duration> {
        tracing::info!(reason = %reason.message(), owned = self.owned.len(), "rejoining the coordinator");
        match self.join().await {
            Ok(_) => {
                tracing::info!(generation = self.generation, coordinator = %self.link.current(), "rejoined")
            }
            Err(e) if redirect(&e) => {
                return Some(self.link.failed(&e, self.interval, MAX_BACKOFF))
            }
            Err(e) => {
                tracing::error!(error = %e.message(), "the coordinator refused the rejoin: releasing everything and exiting");
                self.outcome = Err(WorkerError::Config(format!(
                    "the coordinator refused this worker: {}",
                    e.message()
                )));
                self.release_everything();
            }
        }
        None
    }

    /// Starts what the coordinator assigns and releases what it takes back.
    fn apply(&mut self, response: HeartbeatResponse) {
        let Some(supervisor) = self.supervisor.clone() else {
            return;
        };
        for assigned in response.assign {
            let (partition, epoch) = (assigned.partition, assigned.epoch);
            if self.owned.get(&partition) == Some(&epoch) || self.releasing.contains(&partition) {
                continue;
            }
            tracing::info!(partition, epoch, "assigned by the coordinator");
            let own = SupervisorMsg::Own {
                partition,
                epoch,
                cut_at: None,
            };
            if supervisor.cast(own).is_ok() {
                self.owned.insert(partition, epoch);
            }
        }
        for partition in response.release {
            if !self.releasing.insert(partition) {
                continue;
            }
            tracing::info!(
                partition,
                "releasing at the coordinator's request: committing the open shard"
            );
            let (supervisor, tx) = (supervisor.clone(), self.release_tx.clone());
            tokio::spawn(async move {
                let next = match supervisor
                    .call(
                        |reply| SupervisorMsg::Release { partition, reply },
                        Some(Duration::from_secs(120)),
                    )
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(next)) => next,
                    _ => None,
                };
                let _ = tx.send((partition, next));
            });
        }
    }

    fn on_event(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Committed(manifest) => {
                self.committed
                    .insert(manifest.partition, manifest.next_offset());
            }
            WorkerEvent::Lost { partition, epoch } => {
                tracing::warn!(partition, epoch, "lost partition to a newer owner");
                if self.owned.get(&partition) == Some(&epoch) {
                    self.owned.remove(&partition);
                }
            }
        }
    }

    fn on_released(&mut self, (partition, next): Released) {
        self.releasing.remove(&partition);
        self.owned.remove(&partition);
        if let Some(next) = next {
            self.committed.insert(partition, next);
        }
        tracing::info!(partition, committed = ?next, "released");
    }

    /// Releases every partition (their open shards commit) in a task; `leave` follows.
    fn release_everything(&mut self) {
        if self.release_all.is_some() {
            return;
        }
        let Some(supervisor) = self.supervisor.clone() else {
            return;
        };
        self.release_all = Some(tokio::spawn(async move {
            ractor::call_t!(supervisor, SupervisorMsg::ReleaseAll, 300_000).unwrap_or_default()
        }));
    }

    /// Everything is released: tell the coordinator where each partition was committed.
    async fn leave(&mut self, offsets: BTreeMap<i32, i64>) {
        self.committed.extend(offsets.iter().map(|(p, n)| (*p, *n)));
        let released: Vec<OwnedPartition> = offsets
            .iter()
            .map(|(&partition, &committed_offset)| OwnedPartition {
                partition,
                epoch: self.owned.get(&partition).copied().unwrap_or(0),
                committed_offset: Some(committed_offset),
                last_error: None,
            })
            .collect();
        self.owned.clear();
        let leave = LeaveRequest {
            worker_id: self.opts.worker_id.clone(),
            generation: self.generation,
            released,
            session_secret: self.secret.clone(),
        };
        let leave = authorized(leave, self.link.bearer());
        match tokio::time::timeout(Duration::from_secs(5), self.link.client().leave(leave)).await {
            Ok(Ok(_)) => tracing::info!(committed = ?offsets, "left the coordinator"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e.message(), "leave not acknowledged; the session will time out")
            }
            Err(_) => tracing::warn!("leave timed out; the session will time out"),
        }
    }
}

/// Joins the coordinator and works until SIGINT/SIGTERM.
pub async fn run(opts: JoinOptions) -> Result<()> {
    let link = CoordinatorLink::new(&opts.coordinator, &opts.access).await?;
    let (mut session, mut released) = Session::new(opts, link);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let Some(ctx) = session.join_and_connect(&mut shutdown).await? else {
        return Ok(());
    };
    let metrics_server = match &session.opts.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, ctx.clone()).await?),
        None => None,
    };
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (supervisor, supervisor_handle) = Actor::spawn(
        None,
        WorkerSupervisor,
        SupervisorArgs {
            ctx: ctx.clone(),
            events: events_tx,
        },
    )
    .await
    .map_err(|e| WorkerError::Actor(e.to_string()))?;
    session.ctx = Some(ctx.clone());
    session.supervisor = Some(supervisor.clone());

    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(session.next_beat) => session.on_heartbeat_tick().await,
            event = events.recv() => match event {
                Some(event) => session.on_event(event),
                None => break,
            },
            Some(release) = released.recv() => session.on_released(release),
            _ = &mut shutdown, if session.release_all.is_none() => {
                tracing::info!("shutting down: committing open shards, then leaving");
                session.release_everything();
            }
            offsets = async { session.release_all.as_mut().expect("guarded").await }, if session.release_all.is_some() => {
                session.leave(offsets.unwrap_or_default()).await;
                break;
            }
        }
    }
    ctx.consumer.stop();
    supervisor.stop(None);
    let _ = supervisor_handle.await;
    if let Some(server) = metrics_server {
        server.abort();
    }
    session.outcome
}

/// Whether the same step can succeed later without a person: a service not reachable yet
/// (a name that does not resolve while a container network settles, a broker starting).
fn is_transient(error: &WorkerError) -> bool {
    match error {
        WorkerError::Common(e) => crate::retry::classify(e) == crate::retry::ErrorClass::Retryable,
        WorkerError::Kafka(_) => true,
        WorkerError::Actor(_) | WorkerError::Config(_) | WorkerError::GaveUp { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_is_given() {
        let mut s = PipelineSettings::default();
        SettingsOverrides {
            bootstrap_servers: Some("k:1".into()),
            ..Default::default()
        }
        .apply(&mut s);
        assert_eq!(s.bootstrap_servers, "k:1");
        assert_eq!(s.etcd, PipelineSettings::default().etcd);
    }
}
