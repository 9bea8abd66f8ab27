//! The per-partition pipeline actor: parses batches into a shard and a partial aggregate, cuts
//! the shard by rows, bytes or age, and commits it through [`crate::commit`].
//!
//! A shard is committed by a task the actor starts from `handle` (never from `post_stop`, which
//! does not run after a failure). Up to [`MAX_INFLIGHT`] commits run at once: encoding and
//! staging overlap each other and the parsing of the next shard, while each task waits for the
//! previous shard's outcome before its etcd transaction, so commits land in offset order (and a
//! shard after a failed one is never tried). A crash loses only uncommitted work, which Kafka
//! still holds.

use crate::commit::{
    commit_staged, delete_staged, recover_partition, stage_shard, Committed, ShardToCommit,
};
use crate::consumer::{Credit, MessageBatch, PartitionSink, CREDITS};
use crate::context::WorkerContext;
use crate::supervisor::SupervisorMsg;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sawmill_common::etcd::Checkpoints;
use sawmill_core::analytics::Partial;
use sawmill_core::batch::ChunkParser;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};

pub enum PartitionMsg {
    /// Lines from Kafka with the credit they hold.
    Batch(MessageBatch, Credit),
    /// Periodic: cut the shard if it is older than the age limit.
    Tick,
    /// Commit the open shard now and reply with the committed next offset (graceful release).
    Drain(RpcReplyPort<i64>),
    /// The commit with this sequence number has finished: act on its outcome (and those of
    /// the commits before it) now, not at the next cut.
    Settle(u64),
}

/// Commits in flight per partition. Two hide one shard's HDFS latency (hdfs-native's `close()`
/// waits 500 ms whenever the DataNode's block report is late) behind the next shard's.
pub const MAX_INFLIGHT: usize = 2;

/// How long a starting pipeline waits for a previous incarnation's commits.
const GATE_WAIT: Duration = Duration::from_secs(5);

/// A commit task and what settling it needs.
struct Inflight {
    seq: u64,
    task: tokio::task::JoinHandle<crate::error::Result<Committed>>,
    started: Instant,
    /// Rejected lines by reason in this shard, for the metrics once it commits.
    rejects: Vec<(sawmill_core::record::RejectReason, u64)>,
}

/// Read-only configuration of one partition pipeline.
pub struct PartitionArgs {
    pub ctx: Arc<WorkerContext>,
    pub partition: i32,
    pub epoch: u64,
    /// Commit as soon as the shard reaches this offset (exclusive); see `SupervisorMsg::Own`.
    pub cut_at: Option<i64>,
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
    /// The committed next offset: where etcd says this partition resumes.
    committed: i64,
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
    /// Commits in flight, oldest first.
    inflight: VecDeque<Inflight>,
    /// Resolves with whether the latest commit started went through; the next one waits on it.
    last_outcome: Option<oneshot::Receiver<bool>>,
    /// Sequence number of the latest commit started.
    seq: u64,
    /// Fenced: stopping, so nothing more is cut (the status changes only when `handle` returns).
    fenced: bool,
    /// The offset the pipeline started at, until the first line arrives.
    expect_first: Option<i64>,
    /// [`PartitionArgs::cut_at`] until the shard that reaches it is cut.
    cut_at: Option<i64>,
}

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
        // Exclusive: commits a failed incarnation left running finish before recovery looks.
        // Bounded, because this runs inside the supervisor's handler: if they take longer
        // (storage down), fail and let the supervisor retry with backoff.
        let settled = tokio::time::timeout(GATE_WAIT, ctx.commit_gate(p).write_owned())
            .await
            .map_err(|_| {
                format!("partition {p}: commits of a previous pipeline are still running; retrying")
            })?;
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
        )?;
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
            committed: start,
            last: None,
            rows: 0,
            bytes: 0,
            opened: Instant::now(),
            last_data: Instant::now(),
            ticker: Some(ticker),
            credits,
            inflight: VecDeque::new(),
            last_outcome: None,
            seq: 0,
            fenced: false,
            expect_first: Some(start),
            cut_at: args.cut_at.filter(|&c| c > start),
            args,
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<PartitionMsg>,
        st: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        // Only stops feeding; never commits here (see the module docs).
        if let Some(t) = st.ticker.take() {
            t.abort();
        }
        let ctx = st.args.ctx.clone();
        let p = st.args.partition;
        let me = myself.get_id();
        tokio::task::spawn_blocking(move || ctx.consumer.revoke(p, me));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        st: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PartitionMsg::Batch(batch, credit) => {
                on_batch(st, &batch);
                drop(credit);
                let s = &st.args.ctx.settings;
                // Once only: lines produced after the target go by the usual limits.
                let at_cut = st
                    .cut_at
                    .is_some_and(|c| st.last.is_some_and(|l| l + 1 >= c));
                if at_cut {
                    st.cut_at = None;
                }
                if st.rows >= s.shard_max_rows || st.bytes >= s.shard_max_bytes || at_cut {
                    flush(&myself, st).await?;
                }
            }
            PartitionMsg::Tick => {
                st.args.ctx.metrics.backlog(
                    st.args.partition,
                    CREDITS - st.credits.available_permits(),
                    st.inflight.len(),
                );
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
                // Commits finish in order; this one and every older one still here.
                while st.inflight.front().is_some_and(|f| f.seq <= seq) {
                    settle_oldest(&myself, st).await?;
                }
            }
            PartitionMsg::Drain(reply) => {
                flush(&myself, st).await?;
                while !st.inflight.is_empty() {
                    settle_oldest(&myself, st).await?;
                }
                let _ = reply.send(st.committed);
            }
        }
        Ok(())
    }
}

fn on_batch(st: &mut PartitionState, batch: &MessageBatch) {
    st.last_data = Instant::now();
    for (offset, line) in batch.iter() {
        // The consumer never sends an offset twice, but a restart may overlap: the committed
        // next offset is the authority.
        if offset < st.shard_first || st.last.is_some_and(|l| offset <= l) {
            continue;
        }
        if let Some(expected) = st.expect_first.take() {
            if offset != expected {
                // Kafka no longer has them (retention), or they are transaction markers.
                tracing::warn!(
                    partition = st.args.partition,
                    expected,
                    first = offset,
                    missing = offset - expected,
                    "the partition resumes after a gap: offsets between the committed one and the first line are not in Kafka"
                );
            }
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

/// Cuts the open shard and starts its commit, once fewer than [`MAX_INFLIGHT`] are running.
async fn flush(
    myself: &ActorRef<PartitionMsg>,
    st: &mut PartitionState,
) -> Result<(), ActorProcessingErr> {
    let Some(last) = st.last else { return Ok(()) };
    while st.inflight.len() >= MAX_INFLIGHT {
        settle_oldest(myself, st).await?;
    }
    if st.fenced || myself.get_status() != ractor::ActorStatus::Running {
        return Ok(());
    }
    let ctx = st.args.ctx.clone();
    let p = st.args.partition;
    let parsed = st.parser.finish()?;
    let partial = std::mem::replace(&mut st.partial, Partial::new(&ctx.analytics));
    let rejects = partial.reject_counts();
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
    // Shared: commits of this incarnation run side by side; only recovery is exclusive.
    let gate = ctx.commit_gate(p).read_owned().await;
    let previous = st.last_outcome.take();
    let (outcome_tx, outcome_rx) = oneshot::channel();
    st.last_outcome = Some(outcome_rx);
    let me = myself.clone();
    st.seq += 1;
    let seq = st.seq;
    let task = tokio::spawn(async move {
        let staged = stage_shard(ctx.storage.clone(), &ctx.parquet, shard).await;
        let previous_ok = match previous {
            Some(rx) => rx.await.unwrap_or(false),
            None => true,
        };
        let r = match staged {
            Ok(staged) if previous_ok => commit_staged(ctx.storage.clone(), &mut cp, staged).await,
            Ok(staged) => {
                delete_staged(ctx.storage.clone(), &staged.manifest).await;
                Ok(Committed::Skipped)
            }
            Err(e) => Err(e),
        };
        let _ = outcome_tx.send(matches!(r, Ok(Committed::Done(_))));
        drop(gate);
        let _ = me.cast(PartitionMsg::Settle(seq));
        r
    });
    st.inflight.push_back(Inflight {
        seq,
        task,
        started: Instant::now(),
        rejects,
    });
    Ok(())
}

/// Waits for the oldest commit in flight and acts on its outcome.
async fn settle_oldest(
    myself: &ActorRef<PartitionMsg>,
    st: &mut PartitionState,
) -> Result<(), ActorProcessingErr> {
    let Some(f) = st.inflight.pop_front() else {
        return Ok(());
    };
    let result = f
        .task
        .await
        .map_err(|e| format!("commit task failed: {e}"))?;
    st.last_data = Instant::now();
    let ctx = st.args.ctx.clone();
    let p = st.args.partition;
    match result? {
        Committed::Done(m) => {
            st.committed = m.next_offset();
            tracing::debug!(
                partition = p,
                first = m.first,
                last = m.last,
                records = m.records,
                "shard committed"
            );
            ctx.metrics
                .committed(p, &m, &f.rejects, f.started.elapsed());
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
            st.fenced = true;
            myself.stop(Some("fenced".into()));
            Ok(())
        }
        Committed::Stale { stored } => {
            ctx.metrics.written(p);
            Err(format!("partition {p}: etcd's next offset is {stored:?}, not where the shard started; restarting from etcd").into())
        }
        // The shard before it failed, and settling that one already stopped or failed the actor.
        Committed::Skipped => Ok(()),
    }
}
