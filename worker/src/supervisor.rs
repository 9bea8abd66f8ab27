//! The worker's root actor: owns the set of partitions this worker processes, spawns one
//! [`PartitionActor`] per partition, and restarts failed ones with a capped exponential backoff.
//!
//! ractor's default stops a supervisor when a child exits; here a child's failure only ever
//! restarts that child, and a fenced child is dropped (another worker owns its partition).
//!
//! The supervisor never waits on a partition: a child recovers in its own first message, and
//! releases drain in tasks (all partitions at once on `ReleaseAll`) that report back.

use crate::context::WorkerContext;
use crate::messages::{PartitionMsg, StartFailed, SupervisorMsg, WorkerEvent};
use crate::partition::{PartitionActor, PartitionArgs};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub struct SupervisorArgs {
    pub ctx: Arc<WorkerContext>,
    pub events: UnboundedSender<WorkerEvent>,
}

pub struct WorkerSupervisor;

struct Owned {
    epoch: u64,
    cut_at: Option<i64>,
    actor: Option<ActorRef<PartitionMsg>>,
    failures: u32,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    owned: BTreeMap<i32, Owned>,
    by_actor: HashMap<ActorId, i32>,
    /// Partitions being released (their open shard commits) and their epochs: still reported
    /// as owned until the release replies.
    draining: BTreeMap<i32, u64>,
}

const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << failures.min(8))).min(Duration::from_secs(30))
}

/// Commits the partition's open shard and stops its actor; the committed next offset, if the
/// drain answered.
async fn drain(actor: ActorRef<PartitionMsg>) -> Option<i64> {
    let next = ractor::call_t!(actor, PartitionMsg::Drain, DRAIN_TIMEOUT.as_millis() as u64).ok();
    actor.stop(Some("released".into()));
    next
}

impl WorkerSupervisor {
    /// Spawns the partition's actor. Returns at once: the actor recovers the partition in its
    /// first message, not in `pre_start` (which the spawn awaits).
    async fn start_partition(
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        partition: i32,
        epoch: u64,
    ) {
        let args = PartitionArgs {
            ctx: state.args.ctx.clone(),
            partition,
            epoch,
            cut_at: state.owned.get(&partition).and_then(|o| o.cut_at),
            supervisor: myself.clone(),
        };
        match Actor::spawn_linked(None, PartitionActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                state.by_actor.insert(actor.get_id(), partition);
                if let Some(owned) = state.owned.get_mut(&partition) {
                    owned.actor = Some(actor);
                }
            }
            Err(e) => {
                tracing::warn!(partition, error = %e, "partition pipeline failed to start");
                state.args.ctx.metrics.error("partition_start");
                Self::schedule_restart(myself, state, partition);
            }
        }
    }

    fn schedule_restart(
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        partition: i32,
    ) {
        let Some(owned) = state.owned.get_mut(&partition) else {
            return;
        };
        owned.actor = None;
        owned.failures += 1;
        let delay = backoff(owned.failures);
        let epoch = owned.epoch;
        tracing::info!(
            partition,
            delay_ms = delay.as_millis() as u64,
            "restarting partition pipeline"
        );
        myself.send_after(delay, move || SupervisorMsg::Restart { partition, epoch });
    }

    async fn own(
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        partition: i32,
        epoch: u64,
        cut_at: Option<i64>,
    ) {
        if let Some(actor) = state.owned.remove(&partition).and_then(|old| old.actor) {
            // A newer epoch for a partition we run: the old pipeline is fenced anyway.
            actor.stop(Some("superseded".into()));
        }
        state.owned.insert(
            partition,
            Owned {
                epoch,
                cut_at,
                actor: None,
                failures: 0,
            },
        );
        Self::start_partition(myself, state, partition, epoch).await;
    }

    /// Drains the partition in a task, so that the supervisor goes on (other drains, starts,
    /// the owned list) while the shard commits; the task reports back with `Drained`.
    fn release(
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        partition: i32,
        reply: RpcReplyPort<Option<i64>>,
    ) {
        let Some(owned) = state.owned.remove(&partition) else {
            let _ = reply.send(None);
            return;
        };
        let Some(actor) = owned.actor else {
            let _ = reply.send(None);
            return;
        };
        let epoch = owned.epoch;
        state.draining.insert(partition, epoch);
        let myself = myself.clone();
        tokio::spawn(async move {
            let next = drain(actor).await;
            let _ = myself.cast(SupervisorMsg::Drained {
                partition,
                epoch,
                next,
                reply,
            });
        });
    }

    /// Drains every partition at once, in a task; it reports back with `DrainedAll`.
    fn release_all(
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        reply: RpcReplyPort<BTreeMap<i32, i64>>,
    ) {
        let mut drains = tokio::task::JoinSet::new();
        let mut drained = Vec::new();
        for (partition, owned) in std::mem::take(&mut state.owned) {
            if let Some(actor) = owned.actor {
                state.draining.insert(partition, owned.epoch);
                drained.push((partition, owned.epoch));
                drains.spawn(async move { (partition, drain(actor).await) });
            }
        }
        let myself = myself.clone();
        tokio::spawn(async move {
            let mut next = BTreeMap::new();
            while let Some(joined) = drains.join_next().await {
                if let Ok((partition, Some(offset))) = joined {
                    next.insert(partition, offset);
                }
            }
            let _ = myself.cast(SupervisorMsg::DrainedAll {
                drained,
                next,
                reply,
            });
        });
    }

    /// A drain is over: the partition is no longer reported as owned (unless owned again).
    fn drained(state: &mut SupervisorState, partition: i32, epoch: u64) {
        if state.draining.get(&partition) == Some(&epoch) {
            state.draining.remove(&partition);
        }
        if !state.owned.contains_key(&partition) {
            state.args.ctx.metrics.health().recovered(partition);
        }
    }

    /// The partitions owned and their epochs, those being released included.
    fn owned(state: &SupervisorState) -> BTreeMap<i32, u64> {
        let mut owned = state.draining.clone();
        owned.extend(state.owned.iter().map(|(&p, o)| (p, o.epoch)));
        owned
    }
}

impl Actor for WorkerSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            args,
            owned: BTreeMap::new(),
            by_actor: HashMap::new(),
            draining: BTreeMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Own {
                partition,
                epoch,
                cut_at,
            } => Self::own(&myself, state, partition, epoch, cut_at).await,
            SupervisorMsg::Restart { partition, epoch } => {
                if state
                    .owned
                    .get(&partition)
                    .is_some_and(|o| o.epoch == epoch && o.actor.is_none())
                {
                    Self::start_partition(&myself, state, partition, epoch).await;
                }
            }
            SupervisorMsg::Release { partition, reply } => {
                Self::release(&myself, state, partition, reply)
            }
            SupervisorMsg::ReleaseAll(reply) => Self::release_all(&myself, state, reply),
            SupervisorMsg::Drained {
                partition,
                epoch,
                next,
                reply,
            } => {
                Self::drained(state, partition, epoch);
                let _ = reply.send(next);
            }
            SupervisorMsg::DrainedAll {
                drained,
                next,
                reply,
            } => {
                for (partition, epoch) in drained {
                    Self::drained(state, partition, epoch);
                }
                let _ = reply.send(next);
            }
            SupervisorMsg::Owned(reply) => {
                let _ = reply.send(Self::owned(state));
            }
            SupervisorMsg::Committed {
                partition,
                manifest,
            } => {
                if let Some(owned) = state.owned.get_mut(&partition) {
                    owned.failures = 0;
                }
                state.args.ctx.metrics.health().recovered(partition);
                let _ = state.args.events.send(WorkerEvent::Committed(manifest));
            }
            SupervisorMsg::Lost { partition, epoch } => {
                if state
                    .owned
                    .get(&partition)
                    .is_some_and(|o| o.epoch == epoch)
                {
                    state.owned.remove(&partition);
                }
                state.args.ctx.metrics.health().recovered(partition);
                let _ = state
                    .args
                    .events
                    .send(WorkerEvent::Lost { partition, epoch });
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(p) = state.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                let current = state
                    .owned
                    .get(&p)
                    .and_then(|o| o.actor.as_ref())
                    .is_some_and(|a| a.get_id() == cell.get_id());
                // Failing in its first message (recovery) is failing to start, as it was when
                // recovery ran in `pre_start`.
                let metrics = &state.args.ctx.metrics;
                // Reported until the partition commits again: a pipeline that keeps failing
                // (recovery, or a shard given up on) shows in the heartbeat and /metrics.
                if err.downcast_ref::<StartFailed>().is_some() {
                    tracing::warn!(partition = p, error = %err, "partition pipeline failed to start");
                    metrics.error("partition_start");
                    metrics.health().failed(p, "start", &err);
                } else {
                    tracing::warn!(partition = p, error = %err, "partition pipeline failed");
                    metrics.error("partition_failed");
                    metrics.health().failed(p, "pipeline", &err);
                }
                if current {
                    Self::schedule_restart(&myself, state, p);
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(p) = state.by_actor.remove(&cell.get_id()) {
                    if let Some(owned) = state.owned.get_mut(&p) {
                        if owned
                            .actor
                            .as_ref()
                            .is_some_and(|a| a.get_id() == cell.get_id())
                        {
                            owned.actor = None;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
