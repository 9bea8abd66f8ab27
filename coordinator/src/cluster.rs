//! The cluster actor: worker membership (Join / Heartbeat / Leave, session timeouts) and the
//! assignment loop that drives each partition's [`Ownership`] state machine.
//!
//! The loop runs on every membership change, every heartbeat and every tick. It computes the
//! target owner of each partition with [`assign`] (sticky, balanced) and applies
//! [`ownership::step`]: granting bumps the partition's epoch in etcd (fencing earlier owners)
//! before the new owner hears of it; moving away from a live owner first asks it to release.
//! Heartbeat answers carry the assignments and releases ([`ownership::reconcile`]).

use crate::assign::{assign, WorkerId};
use crate::config::ServeConfig;
use crate::membership::{compatible, reported, stale, unknown, Member};
use crate::metrics::Metrics;
use crate::ownership::{self, Ownership, Step};
use crate::status::{PartitionStatus, WorkerStatus};
use crate::topic::TopicView;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sawmill_common::etcd::Checkpoints;
use sawmill_proto::v1::{
    Assignment, HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, LeaveRequest,
    LeaveResponse,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Status;

pub type Reply<T> = RpcReplyPort<Result<T, Status>>;

pub enum ClusterMsg {
    Join(JoinRequest, Reply<JoinResponse>),
    Heartbeat(HeartbeatRequest, Reply<HeartbeatResponse>),
    Leave(LeaveRequest, Reply<LeaveResponse>),
    /// The topic's partitions and offsets, read by the [`crate::topic`] poller.
    Topic(TopicView),
    Tick,
    Snapshot(RpcReplyPort<ClusterSnapshot>),
}

/// What the status document needs from the cluster actor.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    pub generation: u64,
    pub workers: Vec<WorkerStatus>,
    pub partitions: Vec<PartitionStatus>,
}

pub struct ClusterArgs {
    pub cfg: Arc<ServeConfig>,
    pub checkpoints: Checkpoints,
    pub metrics: Metrics,
}

pub struct ClusterActor;

pub struct ClusterState {
    args: ClusterArgs,
    generation: u64,
    members: BTreeMap<WorkerId, Member>,
    states: BTreeMap<i32, Ownership>,
    /// Last known etcd epoch of each partition (read from etcd, raised by our own bumps).
    epochs: BTreeMap<i32, u64>,
    /// The topic's partitions; empty until the first successful metadata read.
    partitions: Vec<i32>,
    ends: BTreeMap<i32, i64>,
    committed: BTreeMap<i32, i64>,
    /// After a restart, owners recorded in etcd get this long to rejoin before their
    /// partitions are given to others (keeps assignments sticky across coordinator restarts).
    grace_until: Option<Instant>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// `major.minor` must match between worker and coordinator.
impl ClusterState {
    fn alive_ids(&self) -> Vec<WorkerId> {
        self.members
            .iter()
            .filter(|(_, m)| m.alive)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Checks a request's worker and generation.
    fn member(&mut self, id: &str, generation: u64) -> Result<&mut Member, Status> {
        match self.members.get_mut(id) {
            Some(m) if m.alive && m.generation == generation => Ok(m),
            Some(m) if m.alive => Err(stale(id, generation, m.generation)),
            Some(_) => Err(Status::not_found(format!(
                "unknown worker {id}: join first (its session expired or it left)"
            ))),
            None => Err(unknown(id)),
        }
    }

    fn in_grace(&mut self, now: Instant) -> bool {
        let Some(until) = self.grace_until else {
            return false;
        };
        let waiting: BTreeSet<&WorkerId> = self
            .states
            .values()
            .filter_map(|s| s.holder())
            .filter(|w| !self.members.get(*w).is_some_and(|m| m.alive))
            .collect();
        if now >= until || waiting.is_empty() {
            tracing::info!(
                missing = waiting.len(),
                "restart grace over: assigning partitions"
            );
            self.grace_until = None;
            return false;
        }
        true
    }

    /// One pass of the assignment loop.
    async fn assign_pass(&mut self) {
        let now = Instant::now();
        if self.partitions.is_empty() || self.in_grace(now) {
            return;
        }
        let live = self.alive_ids();
        let current: BTreeMap<i32, WorkerId> = self
            .states
            .iter()
            .filter_map(|(p, s)| s.holder().map(|w| (*p, w.clone())))
            .collect();
        let target = assign(&self.partitions, &live, &current);
        let keys: BTreeSet<i32> = self
            .partitions
            .iter()
            .chain(self.states.keys())
            .copied()
            .collect();
        let timeout = self.args.cfg.release_timeout();
        let mut changed = false;
        for p in keys {
            let state = self.states.remove(&p).unwrap_or(Ownership::Unassigned);
            let alive = |w: &str| self.members.get(w).is_some_and(|m| m.alive);
            let step = ownership::step(&state, target.get(&p), &alive, now, timeout);
            let next = match &step {
                Step::Keep => state,
                Step::Grant { to, forced } => {
                    let mut cp = self.args.checkpoints.clone();
                    match cp.bump_epoch(p, to).await {
                        Ok(epoch) => {
                            tracing::info!(partition = p, worker = %to, epoch, from = ?state.holder(), forced, "partition granted");
                            self.epochs.insert(p, epoch);
                            self.args.metrics.epoch_bumps.inc();
                            self.args.metrics.partition_moves.inc();
                            changed = true;
                            Ownership::Owned {
                                worker: to.clone(),
                                epoch,
                            }
                        }
                        Err(e) => {
                            tracing::warn!(partition = p, worker = %to, error = %e, "cannot bump the epoch; retrying on the next pass");
                            self.args.metrics.error("epoch_bump");
                            state
                        }
                    }
                }
                Step::Release { from, to } => {
                    tracing::info!(partition = p, from = %from, to = %to, "asking the owner to release");
                    changed = true;
                    ownership::apply(state, &step, now)
                }
                Step::Cancel | Step::Drop => {
                    tracing::info!(partition = p, ?step, "ownership change");
                    ownership::apply(state, &step, now)
                }
            };
            self.states.insert(p, next);
        }
        if changed {
            self.args.metrics.rebalances.inc();
        }
    }

    /// Declares workers dead after the session timeout; forgets dead ones after a minute.
    fn expire(&mut self, now: Instant) -> bool {
        let timeout = self.args.cfg.session_timeout();
        let mut died = false;
        for (id, m) in self.members.iter_mut() {
            if m.alive && now.saturating_duration_since(m.last_seen) > timeout {
                m.alive = false;
                died = true;
                self.args.metrics.workers_dead.inc();
                tracing::warn!(worker = %id, generation = m.generation, silent_ms = now.saturating_duration_since(m.last_seen).as_millis() as u64, "worker missed its session timeout: declared dead, its partitions move");
            }
        }
        self.members.retain(|_, m| {
            m.alive || now.saturating_duration_since(m.last_seen) < Duration::from_secs(60)
        });
        self.args
            .metrics
            .workers_alive
            .set(self.members.values().filter(|m| m.alive).count() as i64);
        died
    }

    async fn join(&mut self, req: JoinRequest) -> Result<JoinResponse, Status> {
        let id = req.worker_id.trim().to_string();
        if id.is_empty() {
            return Err(Status::invalid_argument(
                "worker_id is empty: pass --worker-id or leave the default",
            ));
        }
        if !compatible(&req.version, sawmill_core::VERSION) {
            return Err(Status::failed_precondition(format!(
                "worker {id} runs Sawmill {:?} but the coordinator runs {} (major.minor must match): deploy the same release",
                req.version,
                sawmill_core::VERSION
            )));
        }
        let generation = self
            .args
            .checkpoints
            .clone()
            .next_generation()
            .await
            .map_err(|e| {
                self.args.metrics.error("generation");
                Status::unavailable(format!(
                    "cannot persist the generation in etcd: {e}; retry shortly"
                ))
            })?;
        self.generation = self.generation.max(generation);
        self.args.metrics.generation.set(self.generation as i64);
        let now = Instant::now();
        if let Some(old) = self.members.get(&id).filter(|m| m.alive) {
            tracing::info!(worker = %id, old_generation = old.generation, generation, "worker rejoined: its old generation is stale");
        } else {
            tracing::info!(worker = %id, generation, version = %req.version, owned = req.owned.len(), "worker joined");
        }
        self.members.insert(
            id.clone(),
            Member {
                generation,
                version: req.version.clone(),
                metrics_address: req.metrics_address.clone(),
                last_seen: now,
                alive: true,
                owned: req
                    .owned
                    .iter()
                    .map(|o| (o.partition, (o.epoch, o.committed_offset)))
                    .collect(),
                records: 0,
                samples: VecDeque::new(),
            },
        );
        ownership::reconcile(&mut self.states, &id, &reported(&req.owned), &self.epochs);
        self.expire(now);
        self.assign_pass().await;
        let settings_json = serde_json::to_string(&self.args.cfg.pipeline)
            .map_err(|e| Status::internal(format!("cannot encode the settings: {e}")))?;
        Ok(JoinResponse {
            generation,
            settings_json,
            heartbeat_interval_ms: self.args.cfg.heartbeat_interval_ms,
            session_timeout_ms: self.args.cfg.session_timeout_ms,
        })
    }

    async fn heartbeat(&mut self, req: HeartbeatRequest) -> Result<HeartbeatResponse, Status> {
        let now = Instant::now();
        let m = self.member(&req.worker_id, req.generation)?;
        m.last_seen = now;
        m.owned = req
            .owned
            .iter()
            .map(|o| (o.partition, (o.epoch, o.committed_offset)))
            .collect();
        m.records = req.records_consumed;
        m.samples.push_back((now, req.records_consumed));
        while m.samples.len() > 2
            && m.samples
                .front()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) > Duration::from_secs(5))
        {
            m.samples.pop_front();
        }
        for o in &req.owned {
            if o.committed_offset >= 0 {
                let c = self
                    .committed
                    .entry(o.partition)
                    .or_insert(o.committed_offset);
                *c = (*c).max(o.committed_offset);
            }
        }
        let rep = reported(&req.owned);
        ownership::reconcile(&mut self.states, &req.worker_id, &rep, &self.epochs);
        self.assign_pass().await;
        let d = ownership::reconcile(&mut self.states, &req.worker_id, &rep, &self.epochs);
        if !d.assign.is_empty() || !d.release.is_empty() {
            tracing::debug!(worker = %req.worker_id, assign = ?d.assign, release = ?d.release, "heartbeat answer");
        }
        Ok(HeartbeatResponse {
            assign: d
                .assign
                .into_iter()
                .map(|(partition, epoch)| Assignment { partition, epoch })
                .collect(),
            release: d.release,
        })
    }

    async fn leave(&mut self, req: LeaveRequest) -> Result<LeaveResponse, Status> {
        self.member(&req.worker_id, req.generation)?;
        tracing::info!(worker = %req.worker_id, released = ?req.released.iter().map(|o| (o.partition, o.committed_offset)).collect::<Vec<_>>(), "worker left");
        if let Some(m) = self.members.get_mut(&req.worker_id) {
            m.alive = false;
            m.owned.clear();
        }
        self.expire(Instant::now());
        self.assign_pass().await;
        Ok(LeaveResponse {})
    }

    fn topic(&mut self, view: TopicView) {
        if let Some(parts) = view.partitions {
            if parts.len() != self.partitions.len() {
                tracing::info!(
                    partitions = parts.len(),
                    before = self.partitions.len(),
                    "topic partitions changed"
                );
            }
            self.partitions = parts;
        }
        self.ends.extend(view.ends);
        if let Some(etcd) = view.etcd {
            for (p, st) in etcd {
                if let Some(e) = st.epoch {
                    let known = self.epochs.entry(p).or_insert(e);
                    *known = (*known).max(e);
                }
                if let Some(n) = st.next_offset {
                    let c = self.committed.entry(p).or_insert(n);
                    *c = (*c).max(n);
                }
            }
        }
        for (&p, &end) in &self.ends {
            let lag = end - self.committed.get(&p).copied().unwrap_or(0);
            self.args
                .metrics
                .partition_lag
                .with_label_values(&[&p.to_string()])
                .set(lag.max(0));
        }
    }

    fn snapshot(&self) -> ClusterSnapshot {
        let now = Instant::now();
        let workers = self
            .members
            .iter()
            .map(|(id, m)| WorkerStatus {
                id: id.clone(),
                generation: m.generation,
                version: m.version.clone(),
                metrics_address: m.metrics_address.clone(),
                last_heartbeat_ms_ago: now.saturating_duration_since(m.last_seen).as_millis()
                    as u64,
                alive: m.alive,
                owned: m.owned.keys().copied().collect(),
                records_consumed: m.records,
                throughput: m.throughput(),
            })
            .collect();
        let keys: BTreeSet<i32> = self
            .partitions
            .iter()
            .chain(self.states.keys())
            .copied()
            .collect();
        let partitions = keys
            .into_iter()
            .map(|p| {
                let st = self
                    .states
                    .get(&p)
                    .cloned()
                    .unwrap_or(Ownership::Unassigned);
                let committed = self.committed.get(&p).copied();
                let end = self.ends.get(&p).copied();
                PartitionStatus {
                    partition: p,
                    owner: st.holder().cloned(),
                    epoch: st.epoch().or(self.epochs.get(&p).copied()),
                    state: st.name().to_string(),
                    moving_to: match &st {
                        Ownership::Releasing { to, .. } => Some(to.clone()),
                        _ => None,
                    },
                    committed_offset: committed,
                    end_offset: end,
                    lag: end.map(|e| (e - committed.unwrap_or(0)).max(0)),
                }
            })
            .collect();
        ClusterSnapshot {
            generation: self.generation,
            workers,
            partitions,
        }
    }
}

impl Actor for ClusterActor {
    type Msg = ClusterMsg;
    type State = ClusterState;
    type Arguments = ClusterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ClusterMsg>,
        args: ClusterArgs,
    ) -> Result<ClusterState, ActorProcessingErr> {
        let mut cp = args.checkpoints.clone();
        let stored = cp.partitions().await?;
        let mut states = BTreeMap::new();
        let mut epochs = BTreeMap::new();
        let mut committed = BTreeMap::new();
        for (p, st) in &stored {
            if let Some(e) = st.epoch {
                epochs.insert(*p, e);
                if let Some(w) = &st.owner {
                    states.insert(
                        *p,
                        Ownership::Owned {
                            worker: w.clone(),
                            epoch: e,
                        },
                    );
                }
            }
            if let Some(n) = st.next_offset {
                committed.insert(*p, n);
            }
        }
        let grace = args.cfg.session_timeout().max(Duration::from_secs(2))
            + 2 * args.cfg.heartbeat_interval();
        let grace_until = (!states.is_empty()).then(|| Instant::now() + grace);
        if grace_until.is_some() {
            tracing::info!(
                owned = states.len(),
                grace_ms = grace.as_millis() as u64,
                "owners recorded in etcd: waiting for them to rejoin before reassigning"
            );
        }
        let ticker =
            myself.send_interval(Duration::from_millis(args.cfg.tick_ms), || ClusterMsg::Tick);
        Ok(ClusterState {
            args,
            generation: 0,
            members: BTreeMap::new(),
            states,
            epochs,
            partitions: Vec::new(),
            ends: BTreeMap::new(),
            committed,
            grace_until,
            ticker: Some(ticker),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ClusterMsg>,
        st: &mut ClusterState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = st.ticker.take() {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ClusterMsg>,
        msg: ClusterMsg,
        st: &mut ClusterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClusterMsg::Join(req, reply) => {
                let r = st.join(req).await;
                let _ = reply.send(r);
            }
            ClusterMsg::Heartbeat(req, reply) => {
                let r = st.heartbeat(req).await;
                let _ = reply.send(r);
            }
            ClusterMsg::Leave(req, reply) => {
                let r = st.leave(req).await;
                let _ = reply.send(r);
            }
            ClusterMsg::Topic(view) => {
                st.topic(view);
                st.assign_pass().await;
            }
            ClusterMsg::Tick => {
                st.expire(Instant::now());
                st.assign_pass().await;
            }
            ClusterMsg::Snapshot(reply) => {
                let _ = reply.send(st.snapshot());
            }
        }
        Ok(())
    }
}
