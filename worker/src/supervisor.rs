//! The worker's root actor: owns the set of partitions this worker processes, spawns one
//! [`PartitionActor`] per partition, and restarts failed ones with a capped exponential backoff.
//!
//! ractor's default stops a supervisor when a child exits; here a child's failure only ever
//! restarts that child, and a fenced child is dropped (another worker owns its partition).

use crate::context::WorkerContext;
use crate::partition::{PartitionActor, PartitionArgs, PartitionMsg};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sawmill_core::manifest::ShardManifest;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What the worker tells the outside world (the coordinator session, or the standalone runner).
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    Committed(Box<ShardManifest>),
    /// Fenced: the partition belongs to a newer epoch now.
    Lost {
        partition: i32,
        epoch: u64,
    },
}

pub enum SupervisorMsg {
    /// Process `partition` as its owner at `epoch` (already bumped in etcd by the caller).
    Own {
        partition: i32,
        epoch: u64,
        /// Commit the open shard as soon as it reaches this offset (exclusive), instead of
        /// waiting for the idle timeout: a run that stops when caught up knows where the end is.
        cut_at: Option<i64>,
    },
    /// Commit the open shard, stop, and reply with the committed next offset.
    Release {
        partition: i32,
        reply: RpcReplyPort<Option<i64>>,
    },
    /// Release everything (graceful shutdown).
    ReleaseAll(RpcReplyPort<BTreeMap<i32, i64>>),
    /// The partitions owned now and their epochs.
    Owned(RpcReplyPort<BTreeMap<i32, u64>>),
    Committed {
        partition: i32,
        manifest: Box<ShardManifest>,
    },
    Lost {
        partition: i32,
        epoch: u64,
    },
    Restart {
        partition: i32,
        epoch: u64,
    },
}

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
}

const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << failures.min(8))).min(Duration::from_secs(30))
}

impl WorkerSupervisor {
    async fn start_partition(
        myself: &ActorRef<SupervisorMsg>,
        st: &mut SupervisorState,
        partition: i32,
        epoch: u64,
    ) {
        let args = PartitionArgs {
            ctx: st.args.ctx.clone(),
            partition,
            epoch,
            cut_at: st.owned.get(&partition).and_then(|o| o.cut_at),
            supervisor: myself.clone(),
        };
        match Actor::spawn_linked(None, PartitionActor, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                st.by_actor.insert(actor.get_id(), partition);
                if let Some(o) = st.owned.get_mut(&partition) {
                    o.actor = Some(actor);
                }
            }
            Err(e) => {
                tracing::warn!(partition, error = %e, "partition pipeline failed to start");
                st.args.ctx.metrics.error("partition_start");
                Self::schedule_restart(myself, st, partition);
            }
        }
    }

    fn schedule_restart(
        myself: &ActorRef<SupervisorMsg>,
        st: &mut SupervisorState,
        partition: i32,
    ) {
        let Some(o) = st.owned.get_mut(&partition) else {
            return;
        };
        o.actor = None;
        o.failures += 1;
        let delay = backoff(o.failures);
        let epoch = o.epoch;
        tracing::info!(
            partition,
            delay_ms = delay.as_millis() as u64,
            "restarting partition pipeline"
        );
        myself.send_after(delay, move || SupervisorMsg::Restart { partition, epoch });
    }

    async fn drain(actor: &ActorRef<PartitionMsg>) -> Option<i64> {
        let next =
            ractor::call_t!(actor, PartitionMsg::Drain, DRAIN_TIMEOUT.as_millis() as u64).ok();
        actor.stop(Some("released".into()));
        next
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
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Own {
                partition,
                epoch,
                cut_at,
            } => {
                if let Some(old) = st.owned.remove(&partition) {
                    if let Some(a) = old.actor {
                        // A newer epoch for a partition we run: the old pipeline is fenced anyway.
                        a.stop(Some("superseded".into()));
                    }
                }
                st.owned.insert(
                    partition,
                    Owned {
                        epoch,
                        cut_at,
                        actor: None,
                        failures: 0,
                    },
                );
                Self::start_partition(&myself, st, partition, epoch).await;
            }
            SupervisorMsg::Restart { partition, epoch } => {
                if st
                    .owned
                    .get(&partition)
                    .is_some_and(|o| o.epoch == epoch && o.actor.is_none())
                {
                    Self::start_partition(&myself, st, partition, epoch).await;
                }
            }
            SupervisorMsg::Release { partition, reply } => {
                let next = match st.owned.remove(&partition).and_then(|o| o.actor) {
                    Some(a) => Self::drain(&a).await,
                    None => None,
                };
                let _ = reply.send(next);
            }
            SupervisorMsg::ReleaseAll(reply) => {
                let mut out = BTreeMap::new();
                for (p, o) in std::mem::take(&mut st.owned) {
                    if let Some(a) = o.actor {
                        if let Some(n) = Self::drain(&a).await {
                            out.insert(p, n);
                        }
                    }
                }
                let _ = reply.send(out);
            }
            SupervisorMsg::Owned(reply) => {
                let _ = reply.send(st.owned.iter().map(|(p, o)| (*p, o.epoch)).collect());
            }
            SupervisorMsg::Committed {
                partition,
                manifest,
            } => {
                if let Some(o) = st.owned.get_mut(&partition) {
                    o.failures = 0;
                }
                let _ = st.args.events.send(WorkerEvent::Committed(manifest));
            }
            SupervisorMsg::Lost { partition, epoch } => {
                if st.owned.get(&partition).is_some_and(|o| o.epoch == epoch) {
                    st.owned.remove(&partition);
                }
                let _ = st.args.events.send(WorkerEvent::Lost { partition, epoch });
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(p) = st.by_actor.remove(&cell.get_id()) {
                    tracing::warn!(partition = p, error = %err, "partition pipeline failed");
                    st.args.ctx.metrics.error("partition_failed");
                    if st
                        .owned
                        .get(&p)
                        .and_then(|o| o.actor.as_ref())
                        .is_some_and(|a| a.get_id() == cell.get_id())
                    {
                        Self::schedule_restart(&myself, st, p);
                    }
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(p) = st.by_actor.remove(&cell.get_id()) {
                    if let Some(o) = st.owned.get_mut(&p) {
                        if o.actor
                            .as_ref()
                            .is_some_and(|a| a.get_id() == cell.get_id())
                        {
                            o.actor = None;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
