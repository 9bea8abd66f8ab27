//! The per-partition pipeline actor: parses batches into a shard and a partial aggregate, cuts
//! the shard by rows, bytes or age, and commits it through [`crate::commit`].
//!
//! A shard is committed by a task the actor starts from `handle` and awaits before the next one
//! (never from `post_stop`, which does not run after a failure): parsing of the next shard
//! overlaps the commit of the previous one, and at most one commit per partition is in flight,
//! so commits stay in offset order. A crash loses only uncommitted work, which Kafka still holds.

use crate::commit::{commit_shard, recover_partition, Committed, ShardToCommit};
use crate::consumer::{MessageBatch, PartitionSink, CREDITS};
use crate::context::WorkerContext;
use crate::supervisor::SupervisorMsg;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sawmill_common::analytics::Partial;
use sawmill_common::batch::ChunkParser;
use sawmill_common::checkpoint::Checkpoints;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub enum PartitionMsg {
    /// Lines from Kafka with the credit they hold.
    Batch(MessageBatch, OwnedSemaphorePermit),
    /// Periodic: cut the shard if it is older than the age limit.
    Tick,
    /// Commit the open shard now and reply with the next offset (graceful release).
    Drain(RpcReplyPort<i64>),
    /// The commit with this sequence number has finished: act on its outcome now, not at the
    /// next cut.
    Settle(u64),
}

/// Read-only configuration of one partition pipeline.
pub struct PartitionArgs {
    pub ctx: Arc<WorkerContext>,
    pub partition: i32,
    pub epoch: u64,
    pub supervisor: ActorRef<SupervisorMsg>,
}

pub struct PartitionActor;

pub struct PartitionState {
    args: PartitionArgs,
    cp: Checkpoints,
    parser: ChunkParser,
    partial: Partial,
    /// Where the open shard starts: the committed next offset.
    shard_first: i64,
    /// Last offset in the open shard.
    last: Option<i64>,
    rows: u64,
    bytes: u64,
    opened: Instant,
    /// When the last line arrived.
    last_data: Instant,
    ticker: Option<tokio::task::JoinHandle<()>>,
    /// This partition's credits: all free means no batch is queued for the actor.
    credits: Arc<Semaphore>,
    /// The commit in flight, if any, with when it started.
    inflight: Option<(tokio::task::JoinHandle<CommitResult>, Instant)>,
    /// Rejected lines by reason of the shard in flight, for the metrics once it commits.
    inflight_rejects: Vec<(sawmill_common::record::RejectReason, u64)>,
    /// Sequence number of the latest commit started.
    inflight_seq: u64,
}

type CommitResult = (Checkpoints, crate::error::Result<Committed>);

impl Actor for PartitionActor {
    type Msg = PartitionMsg;
    type State = PartitionState;
    type Arguments = PartitionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PartitionMsg>,
        args: PartitionArgs,
    ) -> Result<PartitionState, ActorProcessingErr> {
        let ctx = args.ctx.clone();
        let p = args.partition;
        let mut cp = ctx.checkpoints.clone();
        let settled = ctx.commit_lock(p).lock_owned().await;
        recover_partition(ctx.storage.clone(), &mut cp, &ctx.settings.topic, p).await?;
        let start = match cp.state(p).await?.next_offset {
            Some(o) => o,
            None => {
                let low = ctx.low_watermark(p).await?;
                cp.init_next_offset(p, args.epoch, low).await?
            }
        };
        drop(settled);
        let credits = Arc::new(Semaphore::new(CREDITS));
        ctx.consumer.assign(
            p,
            start,
            PartitionSink {
                actor: myself.clone(),
                credits: credits.clone(),
            },
        );
        let ticker = myself.send_interval(Duration::from_millis(200), || PartitionMsg::Tick);
        tracing::info!(
            partition = p,
            epoch = args.epoch,
            start,
            "partition pipeline started"
        );
        ctx.metrics.partition_started(p, start);
        Ok(PartitionState {
            parser: ChunkParser::new(ctx.settings.topic.as_str().into(), p),
            partial: Partial::new(&ctx.analytics),
            cp,
            shard_first: start,
            last: None,
            rows: 0,
            bytes: 0,
            opened: Instant::now(),
            last_data: Instant::now(),
            ticker: Some(ticker),
            credits,
            inflight: None,
            inflight_rejects: Vec::new(),
            inflight_seq: 0,
            args,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PartitionMsg>,
        st: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        // Only stops feeding; never commits here (see the module docs).
        if let Some(t) = st.ticker.take() {
            t.abort();
        }
        let ctx = st.args.ctx.clone();
        let p = st.args.partition;
        tokio::task::spawn_blocking(move || ctx.consumer.revoke(p));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        st: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PartitionMsg::Batch(batch, permit) => {
                on_batch(st, &batch);
                drop(permit);
                let s = &st.args.ctx.settings;
                if st.rows >= s.shard_max_rows || st.bytes >= s.shard_max_bytes {
                    flush(&myself, st).await?;
                }
            }
            PartitionMsg::Tick => {
                let s = &st.args.ctx.settings;
                // Idle means nothing arrived *and* nothing waits in the mailbox (all credits free);
                // time spent waiting for our own commit is not idleness.
                let idle = st.last_data.elapsed() >= s.shard_idle()
                    && st.credits.available_permits() == CREDITS;
                if st.rows > 0 && (st.opened.elapsed() >= s.shard_max_age() || idle) {
                    flush(&myself, st).await?;
                }
            }
            PartitionMsg::Settle(seq) => {
                // Only the commit that sent it: an older one was settled by a later cut already.
                if st.inflight_seq == seq && st.inflight.is_some() {
                    settle(&myself, st).await?;
                }
            }
            PartitionMsg::Drain(reply) => {
                flush(&myself, st).await?;
                settle(&myself, st).await?;
                let _ = reply.send(st.shard_first);
            }
        }
        Ok(())
    }
}

fn on_batch(st: &mut PartitionState, batch: &MessageBatch) {
    for (offset, line) in batch.iter() {
        // The consumer never sends an offset twice, but a restart may overlap: the committed
        // next offset is the authority.
        if offset < st.shard_first || st.last.is_some_and(|l| offset <= l) {
            continue;
        }
        if st.rows == 0 {
            st.opened = Instant::now();
        }
        st.parser.push(line, offset, &mut st.partial);
        st.last = Some(offset);
        st.rows += 1;
        st.bytes += line.len() as u64 + 1;
    }
    st.args
        .ctx
        .metrics
        .consumed(st.args.partition, batch.len() as u64, batch.bytes() as u64);
}

/// Cuts the open shard and starts its commit, after the previous commit has settled.
async fn flush(
    myself: &ActorRef<PartitionMsg>,
    st: &mut PartitionState,
) -> Result<(), ActorProcessingErr> {
    let Some(last) = st.last else { return Ok(()) };
    settle(myself, st).await?;
    if myself.get_status() != ractor::ActorStatus::Running {
        return Ok(());
    }
    let ctx = st.args.ctx.clone();
    let p = st.args.partition;
    let parsed = st.parser.finish()?;
    let partial = std::mem::replace(&mut st.partial, Partial::new(&ctx.analytics));
    st.inflight_rejects = partial.reject_counts();
    let shard = ShardToCommit {
        source: ctx.settings.topic.clone(),
        partition: p,
        epoch: st.args.epoch,
        worker: ctx.worker_id.clone(),
        first: st.shard_first,
        last,
        parsed,
        partial,
    };
    // The next shard starts right after this one; if this commit fails, the actor stops or
    // restarts from etcd before anything after it can commit.
    st.shard_first = last + 1;
    st.last = None;
    st.rows = 0;
    st.bytes = 0;
    let mut cp = st.cp.clone();
    let lock = ctx.commit_lock(p).lock_owned().await;
    let me = myself.clone();
    st.inflight_seq += 1;
    let seq = st.inflight_seq;
    let task = tokio::spawn(async move {
        let r = commit_shard(ctx.storage.clone(), &mut cp, &ctx.parquet, shard).await;
        drop(lock);
        let _ = me.cast(PartitionMsg::Settle(seq));
        (cp, r)
    });
    st.inflight = Some((task, Instant::now()));
    Ok(())
}

/// Waits for the commit in flight and acts on its outcome.
async fn settle(
    myself: &ActorRef<PartitionMsg>,
    st: &mut PartitionState,
) -> Result<(), ActorProcessingErr> {
    let Some((task, started)) = st.inflight.take() else {
        return Ok(());
    };
    let (cp, result) = task.await.map_err(|e| format!("commit task failed: {e}"))?;
    st.cp = cp;
    st.last_data = Instant::now();
    let ctx = st.args.ctx.clone();
    let p = st.args.partition;
    match result? {
        Committed::Done(m) => {
            tracing::debug!(
                partition = p,
                first = m.first,
                last = m.last,
                records = m.records,
                "shard committed"
            );
            ctx.metrics
                .committed(p, &m, &st.inflight_rejects, started.elapsed());
            let _ = st.args.supervisor.cast(SupervisorMsg::Committed {
                partition: p,
                manifest: m,
            });
            Ok(())
        }
        Committed::Fenced { current_epoch } => {
            ctx.metrics.written(p);
            tracing::warn!(
                partition = p,
                epoch = st.args.epoch,
                ?current_epoch,
                "fenced: another owner holds the partition"
            );
            let _ = st.args.supervisor.cast(SupervisorMsg::Lost {
                partition: p,
                epoch: st.args.epoch,
            });
            myself.stop(Some("fenced".into()));
            Ok(())
        }
        Committed::Stale { stored } => {
            ctx.metrics.written(p);
            Err(format!("partition {p}: etcd's next offset is {stored:?}, not where the shard started; restarting from etcd").into())
        }
    }
}
