//! The per-partition pipeline actor: parses batches into a shard and a partial aggregate, cuts
//! the shard by rows, bytes, age, idleness or on catching up with the broker
//! ([`crate::caught_up`]), and commits it through [`crate::commit`].
//!
//! A shard is committed by a task the actor starts from `handle` (never from `post_stop`, which
//! does not run after a failure). Up to [`MAX_INFLIGHT`] commits run at once: encoding and
//! staging overlap each other and the parsing of the next shard, while each task waits for the
//! previous shard's outcome before its etcd transaction, so commits land in offset order (and a
//! shard after a failed one is never tried). A crash loses only uncommitted work, which Kafka
//! still holds.
//!
//! Recovery (and reading where the partition resumes) is the actor's first message, not part of
//! `pre_start`: the supervisor's spawn awaits `pre_start`, and must not wait while one partition
//! retries against etcd or storage. The partition is handed to the consumer only once recovery
//! has finished; a failure there stops the actor with [`StartFailed`], restarted with backoff.

use crate::caught_up::{CaughtUp, Probe};
use crate::commit::{
    commit_staged, delete_staged, recover_partition, stage_shard, ShardOutcome, ShardToCommit,
};
use crate::context::WorkerContext;
use crate::messages::{PartitionMsg, PartitionSink, StartFailed, SupervisorMsg, CREDITS};
use crate::retry::RetryPolicy;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sawmill_common::etcd::Checkpoints;
use sawmill_core::analytics::Partial;
use sawmill_core::batch::ChunkParser;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};

mod ingest;
use ingest::on_batch;

/// Commits in flight per partition. Two hide one shard's HDFS latency (hdfs-native's `close()`
/// waits 500 ms whenever the DataNode's block report is late) behind the next shard's.
pub const MAX_INFLIGHT: usize = 2;

/// How long a starting pipeline waits for a previous incarnation's commits.
const GATE_WAIT: Duration = Duration::from_secs(5);

/// A commit task and what settling it needs.
struct Inflight {
    seq: u64,
    task: tokio::task::JoinHandle<crate::error::Result<ShardOutcome>>,
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
    checkpoints: Checkpoints,
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
    /// When the open shard holds everything the broker has: the caught-up cut.
    caught_up: CaughtUp,
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
        // Recovery reads etcd and storage and may retry for long: it runs as the first message,
        // so the supervisor's spawn (which awaits `pre_start`) returns at once.
        myself.cast(PartitionMsg::Start)?;
        let ctx = &args.ctx;
        Ok(PartitionState {
            parser: ChunkParser::new(ctx.settings.topic.as_str().into(), args.partition)
                .with_caps(ctx.settings.shard_caps()),
            partial: Partial::new(&ctx.analytics),
            checkpoints: ctx.checkpoints.clone(),
            // Set by `start`, before any line arrives.
            shard_first: 0,
            committed: 0,
            last: None,
            rows: 0,
            bytes: 0,
            opened: Instant::now(),
            last_data: Instant::now(),
            ticker: None,
            credits: Arc::new(Semaphore::new(CREDITS)),
            inflight: VecDeque::new(),
            last_outcome: None,
            seq: 0,
            fenced: false,
            expect_first: None,
            cut_at: None,
            caught_up: CaughtUp::default(),
            args,
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<PartitionMsg>,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        // Only stops feeding; never commits here (see the module docs).
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        let ctx = state.args.ctx.clone();
        let p = state.args.partition;
        let me = myself.get_id();
        tokio::task::spawn_blocking(move || ctx.consumer.revoke(p, me));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PartitionMsg::Start => {
                start(&myself, state).await.map_err(|e| StartFailed {
                    partition: state.args.partition,
                    reason: e.to_string(),
                })?;
            }
            PartitionMsg::Batch(batch, credit) => {
                on_batch(&myself, state, &batch).await?;
                // A full batch means the consumer had more: not caught up, no end to ask for.
                let maybe_at_end = !batch.is_full();
                credit.recycle(batch);
                let settings = &state.args.ctx.settings;
                // Once only: lines produced after the target go by the usual limits.
                let at_cut = state
                    .cut_at
                    .is_some_and(|cut| state.last.is_some_and(|last| last + 1 >= cut));
                if at_cut {
                    state.cut_at = None;
                }
                if state.rows >= settings.shard_max_rows
                    || state.bytes >= settings.shard_max_bytes
                    || at_cut
                {
                    flush(&myself, state).await?;
                }
                if maybe_at_end {
                    probe_end(&myself, state);
                }
            }
            PartitionMsg::Tick => {
                state.args.ctx.metrics.backlog(
                    state.args.partition,
                    CREDITS - state.credits.available_permits(),
                    state.inflight.len(),
                );
                let settings = &state.args.ctx.settings;
                // Idle means nothing arrived *and* nothing waits in the mailbox (all credits free);
                // time spent waiting for our own commit is not idleness.
                let idle = state.last_data.elapsed() >= settings.shard_idle()
                    && state.credits.available_permits() == CREDITS;
                if state.rows > 0 && (state.opened.elapsed() >= settings.shard_max_age() || idle) {
                    flush(&myself, state).await?;
                }
                probe_end(&myself, state);
            }
            PartitionMsg::Recheck => {
                state.caught_up.woken();
                probe_end(&myself, state);
            }
            PartitionMsg::EndOffset(end) => {
                let (queued, pause) = (
                    batches_waiting(state),
                    state.args.ctx.settings.shard_max_age(),
                );
                if state
                    .caught_up
                    .answer(Instant::now(), end, state.last, queued, pause)
                {
                    tracing::debug!(
                        partition = state.args.partition,
                        end,
                        rows = state.rows,
                        "caught up with the broker: committing the open shard"
                    );
                    flush(&myself, state).await?;
                }
            }
            PartitionMsg::Settle(seq) => {
                // Commits finish in order; this one and every older one still here.
                while state
                    .inflight
                    .front()
                    .is_some_and(|commit| commit.seq <= seq)
                {
                    settle_oldest(&myself, state).await?;
                }
            }
            PartitionMsg::Drain(reply) => {
                flush(&myself, state).await?;
                while !state.inflight.is_empty() {
                    settle_oldest(&myself, state).await?;
                }
                let _ = reply.send(state.committed);
            }
        }
        Ok(())
    }
}

/// Recovers the partition and starts consuming it where etcd says it resumes. Nothing is
/// consumed before recovery has finished: the consumer is given the partition last.
async fn start(
    myself: &ActorRef<PartitionMsg>,
    state: &mut PartitionState,
) -> Result<(), ActorProcessingErr> {
    let ctx = state.args.ctx.clone();
    let p = state.args.partition;
    // Exclusive: commits a failed incarnation left running finish before recovery looks.
    // Bounded: if they take longer (storage down), fail and let the supervisor retry with
    // backoff.
    let settled = tokio::time::timeout(GATE_WAIT, ctx.commit_gate(p).write_owned())
        .await
        .map_err(|_| {
            format!("partition {p}: commits of a previous pipeline are still running; retrying")
        })?;
    let checkpoints = &mut state.checkpoints;
    recover_partition(
        ctx.storage.clone(),
        checkpoints,
        &ctx.settings.topic,
        p,
        Some(ctx.as_ref()),
    )
    .await?;
    let start = match checkpoints.state(p).await?.next_offset {
        Some(offset) => offset,
        None => {
            let low = ctx.low_watermark(p).await?;
            checkpoints
                .init_next_offset(p, state.args.epoch, low)
                .await?
        }
    };
    drop(settled);
    state.shard_first = start;
    state.committed = start;
    state.expect_first = Some(start);
    state.cut_at = state.args.cut_at.filter(|&cut| cut > start);
    state.opened = Instant::now();
    state.last_data = Instant::now();
    ctx.consumer.assign(
        p,
        start,
        PartitionSink::new(myself.clone(), state.credits.clone()),
    )?;
    state.ticker = Some(myself.send_interval(Duration::from_millis(200), || PartitionMsg::Tick));
    tracing::info!(
        partition = p,
        epoch = state.args.epoch,
        start,
        "partition pipeline started"
    );
    ctx.metrics.partition_started(p, start);
    Ok(())
}

/// Whether batches wait for the actor (a credit is taken): the consumer had more lines.
fn batches_waiting(state: &PartitionState) -> bool {
    state.credits.available_permits() != CREDITS
}

/// Reads the partition's end offset in a task if the caught-up rule asks for it; the answer
/// comes back as [`PartitionMsg::EndOffset`].
fn probe_end(myself: &ActorRef<PartitionMsg>, state: &mut PartitionState) {
    let queued = batches_waiting(state);
    let open = state.rows > 0 && !state.fenced;
    let pause = state.args.ctx.settings.shard_max_age();
    match state.caught_up.probe(Instant::now(), open, queued, pause) {
        Probe::Now => {
            let (ctx, me, p) = (state.args.ctx.clone(), myself.clone(), state.args.partition);
            tokio::spawn(async move {
                let end = match ctx.watermarks(p).await {
                    Ok((_, high)) => Some(high),
                    Err(e) => {
                        tracing::debug!(partition = p, error = %e, "cannot read the end offset; the idle cut applies");
                        None
                    }
                };
                let _ = me.cast(PartitionMsg::EndOffset(end));
            });
        }
        Probe::After(wait) => {
            myself.send_after(wait, || PartitionMsg::Recheck);
        }
        Probe::No => {}
    }
}

/// Cuts the open shard and starts its commit, once fewer than [`MAX_INFLIGHT`] are running.
async fn flush(
    myself: &ActorRef<PartitionMsg>,
    state: &mut PartitionState,
) -> Result<(), ActorProcessingErr> {
    let Some(last) = state.last else {
        return Ok(());
    };
    while state.inflight.len() >= MAX_INFLIGHT {
        settle_oldest(myself, state).await?;
    }
    if state.fenced || myself.get_status() != ractor::ActorStatus::Running {
        return Ok(());
    }
    let ctx = state.args.ctx.clone();
    let p = state.args.partition;
    let parsed = state.parser.finish()?;
    let partial = std::mem::replace(&mut state.partial, Partial::new(&ctx.analytics));
    let rejects = partial.reject_counts();
    let shard = ShardToCommit {
        source: ctx.settings.topic.clone(),
        partition: p,
        epoch: state.args.epoch,
        worker: ctx.worker_id.clone(),
        first: state.shard_first,
        last,
        parsed,
        partial,
        retry: RetryPolicy {
            deadline: ctx.settings.commit_deadline(),
            report: Some((p, ctx.metrics.health())),
        },
    };
    // The next shard starts right after this one; if this commit fails, the actor stops or
    // restarts from etcd before anything after it can commit.
    state.shard_first = last + 1;
    state.last = None;
    state.rows = 0;
    state.bytes = 0;
    let mut checkpoints = state.checkpoints.clone();
    // Shared: commits of this incarnation run side by side; only recovery is exclusive.
    let gate = ctx.commit_gate(p).read_owned().await;
    let previous = state.last_outcome.take();
    let (outcome_tx, outcome_rx) = oneshot::channel();
    state.last_outcome = Some(outcome_rx);
    let me = myself.clone();
    state.seq += 1;
    let seq = state.seq;
    let task = tokio::spawn(async move {
        let staged = stage_shard(ctx.storage.clone(), &ctx.parquet, shard).await;
        let previous_ok = match previous {
            Some(rx) => rx.await.unwrap_or(false),
            None => true,
        };
        let outcome = match staged {
            Ok(staged) if previous_ok => {
                commit_staged(ctx.storage.clone(), &mut checkpoints, staged).await
            }
            Ok(staged) => {
                delete_staged(ctx.storage.clone(), &staged.manifest).await;
                Ok(ShardOutcome::Skipped)
            }
            Err(e) => Err(e),
        };
        let _ = outcome_tx.send(matches!(outcome, Ok(ShardOutcome::Done(_))));
        drop(gate);
        let _ = me.cast(PartitionMsg::Settle(seq));
        outcome
    });
    state.inflight.push_back(Inflight {
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
    state: &mut PartitionState,
) -> Result<(), ActorProcessingErr> {
    let Some(oldest) = state.inflight.pop_front() else {
        return Ok(());
    };
    let result = oldest
        .task
        .await
        .map_err(|e| format!("commit task failed: {e}"))?;
    state.last_data = Instant::now();
    let ctx = state.args.ctx.clone();
    let p = state.args.partition;
    match result? {
        ShardOutcome::Done(manifest) => {
            state.committed = manifest.next_offset();
            tracing::debug!(
                partition = p,
                first = manifest.first,
                last = manifest.last,
                records = manifest.records,
                "shard committed"
            );
            ctx.metrics
                .committed(p, &manifest, &oldest.rejects, oldest.started.elapsed());
            let _ = state.args.supervisor.cast(SupervisorMsg::Committed {
                partition: p,
                manifest,
            });
            Ok(())
        }
        ShardOutcome::Fenced { current_epoch } => {
            ctx.metrics.written(p);
            tracing::warn!(
                partition = p,
                epoch = state.args.epoch,
                ?current_epoch,
                "fenced: another owner holds the partition"
            );
            let _ = state.args.supervisor.cast(SupervisorMsg::Lost {
                partition: p,
                epoch: state.args.epoch,
            });
            state.fenced = true;
            myself.stop(Some("fenced".into()));
            Ok(())
        }
        ShardOutcome::Stale { stored } => {
            ctx.metrics.written(p);
            Err(format!("partition {p}: etcd's next offset is {stored:?}, not where the shard started; restarting from etcd").into())
        }
        // The shard before it failed, and settling that one already stopped or failed the actor.
        ShardOutcome::Skipped => Ok(()),
    }
}
