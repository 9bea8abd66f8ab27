//! The cluster actor: worker membership (Join / Heartbeat / Leave, session timeouts) and the
//! assignment loop that drives each partition's [`Ownership`] state machine.
//!
//! The loop runs on every membership change, every heartbeat and every tick. It computes the
//! target owner of each partition with [`assign`] (sticky, balanced) and applies
//! [`ownership::step`]: granting bumps the partition's epoch in etcd (fencing earlier owners)
//! before the new owner hears of it; moving away from a live owner first asks it to release.
//! Heartbeat answers carry the assignments and releases ([`ownership::reconcile`]).
//!
//! The actor polls nothing: the topic's partitions and offsets arrive as [`TopicFacts`] from the
//! topic poller above it ([`crate::topic`]), and what etcd held at start comes in
//! [`ClusterArgs::recorded`]. Its only I/O is the etcd writes it decides (epoch bumps and
//! generations). Refusals are [`ClusterError`]s; the gRPC door maps them to status codes.

use crate::assign::{assign, WorkerId};
use crate::config::ServeConfig;
use crate::error::ClusterError;
use crate::membership::{compatible, failing, owned, reported, Member};
use crate::metrics::Metrics;
use crate::ownership::{self, Ownership, Step};
use crate::watchdog::{Observed, Watchdog};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sawmill_common::etcd::{Checkpoints, StoredPartition};
use sawmill_proto::v1::{
    Assignment, HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse, LeaveRequest,
    LeaveResponse, PartitionStatus, WorkerStatus,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type Reply<T> = RpcReplyPort<Result<T, ClusterError>>;

pub enum ClusterMsg {
    Join(JoinRequest, Reply<JoinResponse>),
    Heartbeat(HeartbeatRequest, Reply<HeartbeatResponse>),
    Leave(LeaveRequest, Reply<LeaveResponse>),
    /// The topic's partitions and offsets, read by the [`crate::topic`] poller.
    Topic(TopicFacts),
    Tick,
    Snapshot(RpcReplyPort<ClusterSnapshot>),
}

/// One reading of the topic (Kafka) and of the partitions' state (etcd); `None` where the
/// source could not be read this time.
#[derive(Debug, Default)]
pub struct TopicFacts {
    pub partitions: Option<Vec<i32>>,
    /// Kafka's high watermark of each partition.
    pub ends: BTreeMap<i32, i64>,
    pub stored: Option<BTreeMap<i32, StoredPartition>>,
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
    /// Every partition's state in etcd when the coordinator started: recorded owners get a
    /// grace period to rejoin.
    pub recorded: BTreeMap<i32, StoredPartition>,
}

pub struct ClusterActor;

pub struct ClusterState {
    args: ClusterArgs,
    generation: u64,
    members: BTreeMap<WorkerId, Member>,
    ownership: BTreeMap<i32, Ownership>,
    /// Last known etcd epoch of each partition (read from etcd, raised by our own bumps).
    epochs: BTreeMap<i32, u64>,
    /// The topic's partitions; empty until the first successful metadata read.
    partitions: Vec<i32>,
    /// Kafka's high watermark of each partition.
    ends: BTreeMap<i32, i64>,
    /// etcd's (or a worker's) committed next offset of each partition.
    committed: BTreeMap<i32, i64>,
    /// After a restart, owners recorded in etcd get this long to rejoin before their
    /// partitions are given to others (keeps assignments sticky across coordinator restarts).
    grace_until: Option<Instant>,
    /// Takes partitions that make no progress from owners that still heartbeat.
    watchdog: Watchdog,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl ClusterState {
    fn alive_ids(&self) -> Vec<WorkerId> {
        self.members
            .iter()
            .filter(|(_, m)| m.alive)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Checks a request's worker and generation.
    fn member(&mut self, id: &str, generation: u64) -> Result<&mut Member, ClusterError> {
        match self.members.get_mut(id) {
            Some(m) if m.alive && m.generation == generation => Ok(m),
            Some(m) if m.alive => Err(ClusterError::StaleGeneration {
                worker: id.to_string(),
                got: generation,
                current: m.generation,
            }),
            Some(_) => Err(ClusterError::ExpiredWorker(id.to_string())),
            None => Err(ClusterError::UnknownWorker(id.to_string())),
        }
    }

    fn in_grace(&mut self, now: Instant) -> bool {
        let Some(until) = self.grace_until else {
            return false;
        };
        let waiting: BTreeSet<&WorkerId> = self
            .ownership
            .values()
            .filter_map(|state| state.holder())
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

    /// Feeds the watchdog each settled owner's progress; takes what it finds stuck.
    fn watch_progress(&mut self, now: Instant, live: usize) {
        let timeout = Duration::from_millis(self.args.cfg.progress_timeout_ms);
        let observed: Vec<Observed<'_>> = self
            .ownership
            .iter()
            .map(|(&partition, state)| Observed {
                partition,
                owner: match state {
                    Ownership::Owned { worker, .. }
                        if self.members.get(worker).is_some_and(|m| m.alive) =>
                    {
                        Some(worker)
                    }
                    _ => None,
                },
                committed: self.committed.get(&partition).copied().unwrap_or(0),
                end: self.ends.get(&partition).copied(),
            })
            .collect();
        for (worker, partition) in self.watchdog.observe(&observed, live, timeout, now) {
            self.args.metrics.watchdog_releases.inc();
            tracing::warn!(partition, worker = %worker, timeout_ms = timeout.as_millis() as u64, "no progress with lag: taking the partition from its owner (release, then fence)");
        }
    }

    /// One pass of the assignment loop.
    async fn assign_pass(&mut self) {
        let now = Instant::now();
        if self.partitions.is_empty() || self.in_grace(now) {
            return;
        }
        let live = self.alive_ids();
        self.watch_progress(now, live.len());
        let current: BTreeMap<i32, WorkerId> = self
            .ownership
            .iter()
            .filter_map(|(p, state)| state.holder().map(|w| (*p, w.clone())))
            .collect();
        let mut target = assign(&self.partitions, &live, &current);
        self.watchdog.reroute(&mut target, &live);
        let keys: BTreeSet<i32> = self
            .partitions
            .iter()
            .chain(self.ownership.keys())
            .copied()
            .collect();
        let timeout = self.args.cfg.release_timeout();
        let mut changed = false;
        for p in keys {
            let state = self.ownership.remove(&p).unwrap_or(Ownership::Unassigned);
            let alive = |w: &str| self.members.get(w).is_some_and(|m| m.alive);
            let step = ownership::step(&state, target.get(&p), &alive, now, timeout);
            let next = match &step {
                Step::Keep => state,
                Step::Grant { to, forced } => {
                    let mut checkpoints = self.args.checkpoints.clone();
                    match checkpoints.bump_epoch(p, to).await {
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
            self.ownership.insert(p, next);
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

    async fn join(&mut self, req: JoinRequest) -> Result<JoinResponse, ClusterError> {
        let id = req.worker_id.trim().to_string();
        if id.is_empty() {
            return Err(ClusterError::EmptyWorkerId);
        }
        if !compatible(&req.version, sawmill_core::VERSION) {
            return Err(ClusterError::IncompatibleVersion {
                worker: id,
                version: req.version,
                ours: sawmill_core::VERSION,
            });
        }
        let generation = self
            .args
            .checkpoints
            .clone()
            .next_generation()
            .await
            .map_err(|e| {
                self.args.metrics.error("generation");
                ClusterError::Generation(e)
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
                owned: owned(&req.owned),
                failing: failing(&req.owned),
                records: 0,
                samples: VecDeque::new(),
            },
        );
        ownership::reconcile(
            &mut self.ownership,
            &id,
            &reported(&req.owned),
            &self.epochs,
        );
        self.expire(now);
        self.assign_pass().await;
        let settings_json =
            serde_json::to_string(&self.args.cfg.pipeline).map_err(ClusterError::Settings)?;
        Ok(JoinResponse {
            // Filled in by the service, which owns the session secrets.
            session_secret: String::new(),
            generation,
            settings_json,
            heartbeat_interval_ms: self.args.cfg.heartbeat_interval_ms,
            session_timeout_ms: self.args.cfg.session_timeout_ms,
        })
    }

    async fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ClusterError> {
        let now = Instant::now();
        let member = self.member(&req.worker_id, req.generation)?;
        member.last_seen = now;
        member.owned = owned(&req.owned);
        member.failing = failing(&req.owned);
        member.records = req.records_consumed;
        member.samples.push_back((now, req.records_consumed));
        while member.samples.len() > 2
            && member
                .samples
                .front()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) > Duration::from_secs(5))
        {
            member.samples.pop_front();
        }
        for o in &req.owned {
            if let Some(offset) = o.committed_offset {
                let committed = self.committed.entry(o.partition).or_insert(offset);
                *committed = (*committed).max(offset);
            }
        }
        let runs = reported(&req.owned);
        ownership::reconcile(&mut self.ownership, &req.worker_id, &runs, &self.epochs);
        self.assign_pass().await;
        let delivery =
            ownership::reconcile(&mut self.ownership, &req.worker_id, &runs, &self.epochs);
        if !delivery.assign.is_empty() || !delivery.release.is_empty() {
            tracing::debug!(worker = %req.worker_id, assign = ?delivery.assign, release = ?delivery.release, "heartbeat answer");
        }
        Ok(HeartbeatResponse {
            assign: delivery
                .assign
                .into_iter()
                .map(|(partition, epoch)| Assignment { partition, epoch })
                .collect(),
            release: delivery.release,
        })
    }

    async fn leave(&mut self, req: LeaveRequest) -> Result<LeaveResponse, ClusterError> {
        self.member(&req.worker_id, req.generation)?;
        tracing::info!(worker = %req.worker_id, released = ?req.released.iter().map(|o| (o.partition, o.committed_offset)).collect::<Vec<_>>(), "worker left");
        if let Some(m) = self.members.get_mut(&req.worker_id) {
            m.alive = false;
            m.owned.clear();
            m.failing.clear();
        }
        self.expire(Instant::now());
        self.assign_pass().await;
        Ok(LeaveResponse {})
    }

    fn topic(&mut self, facts: TopicFacts) {
        if let Some(parts) = facts.partitions {
            if parts.len() != self.partitions.len() {
                tracing::info!(
                    partitions = parts.len(),
                    before = self.partitions.len(),
                    "topic partitions changed"
                );
            }
            self.partitions = parts;
        }
        self.ends.extend(facts.ends);
        for (p, stored) in facts.stored.into_iter().flatten() {
            if let Some(e) = stored.epoch {
                let known = self.epochs.entry(p).or_insert(e);
                *known = (*known).max(e);
            }
            if let Some(n) = stored.next_offset {
                let committed = self.committed.entry(p).or_insert(n);
                *committed = (*committed).max(n);
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
            .map(|(id, member)| member.status(id, now))
            .collect();
        let keys: BTreeSet<i32> = self
            .partitions
            .iter()
            .chain(self.ownership.keys())
            .copied()
            .collect();
        let partitions = keys
            .into_iter()
            .map(|p| {
                let state = self.ownership.get(&p).unwrap_or(&Ownership::Unassigned);
                let mut status = state.status(
                    p,
                    self.epochs.get(&p).copied(),
                    self.committed.get(&p).copied(),
                    self.ends.get(&p).copied(),
                );
                status.last_error = status
                    .owner
                    .as_ref()
                    .and_then(|owner| self.members.get(owner))
                    .and_then(|member| member.last_error(p, now));
                status
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
        let mut ownership = BTreeMap::new();
        let mut epochs = BTreeMap::new();
        let mut committed = BTreeMap::new();
        for (p, stored) in &args.recorded {
            if let Some(e) = stored.epoch {
                epochs.insert(*p, e);
                if let Some(w) = &stored.owner {
                    ownership.insert(
                        *p,
                        Ownership::Owned {
                            worker: w.clone(),
                            epoch: e,
                        },
                    );
                }
            }
            if let Some(n) = stored.next_offset {
                committed.insert(*p, n);
            }
        }
        let grace = args.cfg.session_timeout().max(Duration::from_secs(2))
            + 2 * args.cfg.heartbeat_interval();
        let grace_until = (!ownership.is_empty()).then(|| Instant::now() + grace);
        if grace_until.is_some() {
            tracing::info!(
                owned = ownership.len(),
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
            ownership,
            epochs,
            partitions: Vec::new(),
            ends: BTreeMap::new(),
            committed,
            grace_until,
            watchdog: Watchdog::default(),
            ticker: Some(ticker),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ClusterMsg>,
        state: &mut ClusterState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(ticker) = state.ticker.take() {
            ticker.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<ClusterMsg>,
        msg: ClusterMsg,
        state: &mut ClusterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClusterMsg::Join(req, reply) => {
                let _ = reply.send(state.join(req).await);
            }
            ClusterMsg::Heartbeat(req, reply) => {
                let _ = reply.send(state.heartbeat(req).await);
            }
            ClusterMsg::Leave(req, reply) => {
                let _ = reply.send(state.leave(req).await);
            }
            ClusterMsg::Topic(facts) => {
                state.topic(facts);
                state.assign_pass().await;
            }
            ClusterMsg::Tick => {
                state.expire(Instant::now());
                state.assign_pass().await;
            }
            ClusterMsg::Snapshot(reply) => {
                let _ = reply.send(state.snapshot());
            }
        }
        Ok(())
    }
}
