//! `worker join`: a worker driven by a coordinator.
//!
//! Join → pipeline settings (with local overrides, e.g. Kafka as seen from this host) →
//! [`WorkerContext::connect`] → [`WorkerSupervisor`] → heartbeat loop. Each heartbeat reports
//! what the worker runs (partition, epoch, committed offset); the answer says what to start
//! (`assign`, already fenced in etcd for this worker) and what to release (commit the open
//! shard, stop). Releases run in their own tasks so heartbeats go on while a shard commits.
//!
//! - NOT_FOUND / FAILED_PRECONDITION (declared dead, coordinator restarted, stale generation):
//!   rejoin with the partitions still running, so a restarted coordinator keeps them here.
//! - Coordinator unreachable: keep processing what is owned (fencing keeps that safe) and
//!   retry with a capped backoff.
//! - SIGINT/SIGTERM: release everything (open shards are committed), Leave, exit 0.
//! - A refused Join (e.g. incompatible version): exit non-zero with the coordinator's message.

use crate::context::WorkerContext;
use crate::error::{Result, WorkerError};
use crate::supervisor::{SupervisorArgs, SupervisorMsg, WorkerEvent, WorkerSupervisor};
use ractor::{Actor, ActorRef};
use sawmill_common::process::shutdown_signal;
use sawmill_core::settings::PipelineSettings;
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, LeaveRequest, OwnedPartition,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

/// Settings this worker replaces in what the coordinator hands out (all optional).
#[derive(Debug, Clone, Default)]
pub struct SettingsOverrides {
    pub bootstrap_servers: Option<String>,
    pub output: Option<String>,
    pub etcd: Option<String>,
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
    }
}

#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// `host:port` or `http://host:port` of the coordinator's gRPC listener.
    pub coordinator: String,
    pub worker_id: String,
    pub overrides: SettingsOverrides,
    /// Serve this worker's Prometheus metrics at `http://ADDR/metrics`.
    pub metrics_listen: Option<String>,
    /// The version reported at Join (the real one unless a test says otherwise).
    pub version: String,
}

/// Backoff while the coordinator is unreachable: short, so a restarted coordinator sees its
/// workers again well within their session timeout.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a heartbeat waits for the supervisor's owned list before using its own record
/// (the supervisor is busy while it commits a released partition's shard).
const OWNED_TIMEOUT_MS: u64 = 200;

fn endpoint(coordinator: &str) -> Result<Channel> {
    let uri = if coordinator.contains("://") {
        coordinator.to_string()
    } else {
        format!("http://{coordinator}")
    };
    let ep = Endpoint::from_shared(uri.clone()).map_err(|e| {
        WorkerError::Config(format!(
            "bad coordinator address {coordinator:?}: {e} (use host:port)"
        ))
    })?;
    Ok(ep
        .connect_timeout(Duration::from_secs(3))
        .timeout(RPC_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}

/// Transport trouble (retry) as opposed to an answer (act on it).
fn unreachable(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

/// Records consumed so far, summed from the worker's own Prometheus counter.
pub fn records_consumed(metrics_text: &str) -> u64 {
    metrics_text
        .lines()
        .filter(|l| l.starts_with("sawmill_worker_records_consumed_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

struct Session {
    opts: JoinOptions,
    client: CoordinatorClient<Channel>,
    generation: u64,
    interval: Duration,
    /// What runs here: partition → epoch (the supervisor's view when it answers in time).
    owned: BTreeMap<i32, u64>,
    committed: BTreeMap<i32, i64>,
    releasing: BTreeSet<i32>,
    ctx: Option<Arc<WorkerContext>>,
    sup: Option<ActorRef<SupervisorMsg>>,
}

impl Session {
    fn owned_list(&self) -> Vec<OwnedPartition> {
        self.owned
            .iter()
            .map(|(&partition, &epoch)| OwnedPartition {
                partition,
                epoch,
                committed_offset: self.committed.get(&partition).copied(),
            })
            .collect()
    }

    async fn join(&mut self) -> std::result::Result<JoinResponse, tonic::Status> {
        let req = JoinRequest {
            worker_id: self.opts.worker_id.clone(),
            version: self.opts.version.clone(),
            metrics_address: self.opts.metrics_listen.clone().unwrap_or_default(),
            owned: self.owned_list(),
        };
        let resp = self.client.join(req).await?.into_inner();
        self.generation = resp.generation;
        self.interval = Duration::from_millis(u64::from(resp.heartbeat_interval_ms.max(50)));
        Ok(resp)
    }

    /// Refreshes `owned` from the supervisor if it answers promptly.
    async fn refresh_owned(&mut self) {
        let Some(sup) = &self.sup else { return };
        if let Ok(map) = ractor::call_t!(sup, SupervisorMsg::Owned, OWNED_TIMEOUT_MS) {
            self.owned = map;
        }
    }

    async fn heartbeat(&mut self) -> std::result::Result<HeartbeatResponse, tonic::Status> {
        let records = self
            .ctx
            .as_ref()
            .map(|c| records_consumed(&c.metrics.render()))
            .unwrap_or(0);
        let req = HeartbeatRequest {
            worker_id: self.opts.worker_id.clone(),
            generation: self.generation,
            owned: self.owned_list(),
            records_consumed: records,
        };
        Ok(self.client.heartbeat(req).await?.into_inner())
    }

    fn apply(
        &mut self,
        resp: HeartbeatResponse,
        release_tx: &mpsc::UnboundedSender<(i32, Option<i64>)>,
    ) {
        let Some(sup) = self.sup.clone() else { return };
        for a in resp.assign {
            if self.owned.get(&a.partition) == Some(&a.epoch)
                || self.releasing.contains(&a.partition)
            {
                continue;
            }
            tracing::info!(
                partition = a.partition,
                epoch = a.epoch,
                "assigned by the coordinator"
            );
            if sup
                .cast(SupervisorMsg::Own {
                    partition: a.partition,
                    epoch: a.epoch,
                    cut_at: None,
                })
                .is_ok()
            {
                self.owned.insert(a.partition, a.epoch);
            }
        }
        for p in resp.release {
            if !self.releasing.insert(p) {
                continue;
            }
            tracing::info!(
                partition = p,
                "releasing at the coordinator's request: committing the open shard"
            );
            let (sup, tx) = (sup.clone(), release_tx.clone());
            tokio::spawn(async move {
                let next = match sup
                    .call(
                        |reply| SupervisorMsg::Release {
                            partition: p,
                            reply,
                        },
                        Some(Duration::from_secs(120)),
                    )
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(n)) => n,
                    _ => None,
                };
                let _ = tx.send((p, next));
            });
        }
    }
}

/// Joins the coordinator and works until SIGINT/SIGTERM.
pub async fn run(opts: JoinOptions) -> Result<()> {
    let client = CoordinatorClient::new(endpoint(&opts.coordinator)?);
    let mut s = Session {
        opts,
        client,
        generation: 0,
        interval: Duration::from_millis(500),
        owned: BTreeMap::new(),
        committed: BTreeMap::new(),
        releasing: BTreeSet::new(),
        ctx: None,
        sup: None,
    };
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    // First Join: wait for the coordinator, fail on a refusal.
    let mut backoff = Duration::from_millis(250);
    let joined = loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = s.join() => match r {
                Ok(j) => break j,
                Err(e) if unreachable(&e) => {
                    tracing::warn!(coordinator = %s.opts.coordinator, error = %e.message(), retry_ms = backoff.as_millis() as u64, "coordinator unreachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    return Err(WorkerError::Config(format!(
                        "the coordinator at {} refused this worker: {}",
                        s.opts.coordinator,
                        e.message()
                    )))
                }
            }
        }
    };
    let mut settings: PipelineSettings = serde_json::from_str(&joined.settings_json).map_err(|e| {
        WorkerError::Config(format!(
            "the coordinator sent settings this worker cannot read ({e}): run the same Sawmill release"
        ))
    })?;
    s.opts.overrides.apply(&mut settings);
    tracing::info!(worker = %s.opts.worker_id, generation = s.generation, topic = %settings.topic, output = %settings.output, "joined the coordinator");
    let ctx = WorkerContext::connect(s.opts.worker_id.clone(), settings).await?;
    let metrics_server = match &s.opts.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, ctx.clone()).await?),
        None => None,
    };
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let (sup, sup_handle) = Actor::spawn(
        None,
        WorkerSupervisor,
        SupervisorArgs {
            ctx: ctx.clone(),
            events: ev_tx,
        },
    )
    .await
    .map_err(|e| WorkerError::Actor(e.to_string()))?;
    s.ctx = Some(ctx.clone());
    s.sup = Some(sup.clone());

    let (release_tx, mut released) = mpsc::unbounded_channel::<(i32, Option<i64>)>();
    let mut next_beat = tokio::time::Instant::now();
    let mut backoff = s.interval;
    let mut down_since: Option<Instant> = None;
    let mut release_all: Option<tokio::task::JoinHandle<BTreeMap<i32, i64>>> = None;
    let mut result = Ok(());
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_beat) => {
                s.refresh_owned().await;
                match s.heartbeat().await {
                    Ok(resp) => {
                        if let Some(t) = down_since.take() {
                            tracing::info!(down_ms = t.elapsed().as_millis() as u64, "coordinator reachable again");
                        }
                        backoff = s.interval;
                        if release_all.is_none() {
                            s.apply(resp, &release_tx);
                        }
                    }
                    Err(e) if matches!(e.code(), Code::NotFound | Code::FailedPrecondition) => {
                        tracing::info!(reason = %e.message(), owned = s.owned.len(), "rejoining the coordinator");
                        match s.join().await {
                            Ok(_) => tracing::info!(generation = s.generation, "rejoined"),
                            Err(e) if unreachable(&e) => {}
                            Err(e) => {
                                tracing::error!(error = %e.message(), "the coordinator refused the rejoin: releasing everything and exiting");
                                result = Err(WorkerError::Config(format!("the coordinator refused this worker: {}", e.message())));
                                if release_all.is_none() {
                                    release_all = Some(spawn_release_all(sup.clone()));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        if down_since.is_none() {
                            tracing::warn!(coordinator = %s.opts.coordinator, error = %e.message(), "coordinator unreachable: still processing owned partitions, retrying");
                            down_since = Some(Instant::now());
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        next_beat = tokio::time::Instant::now() + backoff;
                        continue;
                    }
                }
                next_beat = tokio::time::Instant::now() + s.interval;
            }
            ev = events.recv() => match ev {
                Some(WorkerEvent::Committed(m)) => {
                    s.committed.insert(m.partition, m.next_offset());
                }
                Some(WorkerEvent::Lost { partition, epoch }) => {
                    tracing::warn!(partition, epoch, "lost partition to a newer owner");
                    if s.owned.get(&partition) == Some(&epoch) {
                        s.owned.remove(&partition);
                    }
                }
                None => break,
            },
            Some((p, next)) = released.recv() => {
                s.releasing.remove(&p);
                s.owned.remove(&p);
                if let Some(n) = next {
                    s.committed.insert(p, n);
                }
                tracing::info!(partition = p, committed = ?next, "released");
            }
            _ = &mut shutdown, if release_all.is_none() => {
                tracing::info!("shutting down: committing open shards, then leaving");
                release_all = Some(spawn_release_all(sup.clone()));
            }
            r = async { release_all.as_mut().expect("guarded").await }, if release_all.is_some() => {
                let offsets = r.unwrap_or_default();
                s.committed.extend(offsets.iter().map(|(p, n)| (*p, *n)));
                let released: Vec<OwnedPartition> = offsets
                    .iter()
                    .map(|(&partition, &n)| OwnedPartition { partition, epoch: s.owned.get(&partition).copied().unwrap_or(0), committed_offset: Some(n) })
                    .collect();
                s.owned.clear();
                let leave = LeaveRequest { worker_id: s.opts.worker_id.clone(), generation: s.generation, released };
                match tokio::time::timeout(Duration::from_secs(5), s.client.leave(leave)).await {
                    Ok(Ok(_)) => tracing::info!(committed = ?offsets, "left the coordinator"),
                    Ok(Err(e)) => tracing::warn!(error = %e.message(), "leave not acknowledged; the session will time out"),
                    Err(_) => tracing::warn!("leave timed out; the session will time out"),
                }
                break;
            }
        }
    }
    ctx.consumer.stop();
    sup.stop(None);
    let _ = sup_handle.await;
    if let Some(m) = metrics_server {
        m.abort();
    }
    result
}

fn spawn_release_all(sup: ActorRef<SupervisorMsg>) -> tokio::task::JoinHandle<BTreeMap<i32, i64>> {
    tokio::spawn(async move {
        ractor::call_t!(sup, SupervisorMsg::ReleaseAll, 300_000).unwrap_or_default()
    })
}

/// Serves `GET /metrics` (Prometheus text) and `GET /healthz` on `addr`.
pub(crate) async fn serve_metrics(
    addr: &str,
    ctx: Arc<WorkerContext>,
) -> Result<tokio::task::JoinHandle<()>> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        WorkerError::Config(format!(
            "cannot listen on {addr} for /metrics: {e} (pick another --metrics-listen)"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %bound, "serving /metrics");
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let ctx = ctx.clone();
                async move { ctx.metrics.render() }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_records_are_summed_over_partitions() {
        let text = "# HELP x\nsawmill_worker_records_consumed_total{partition=\"0\"} 10\nsawmill_worker_records_consumed_total{partition=\"1\"} 32\nsawmill_worker_bytes_consumed_total{partition=\"1\"} 999\n";
        assert_eq!(records_consumed(text), 42);
    }

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
