//! A batch from the consumer into the open shard: the lines the shard does not hold yet, parsed
//! and observed in batches, the shard cut at the first line past a cap.

use super::{flush, PartitionState};
use crate::messages::{MessageBatch, PartitionMsg};
use ractor::{ActorProcessingErr, ActorRef};
use sawmill_core::batch::Push;
use std::time::Instant;

/// Parses a batch into the open shard. A line that would take the shard past a cap (rows, bytes,
/// dates: the parser's [`ShardCaps`](sawmill_core::batch::ShardCaps)) cuts it first, so a shard
/// stays within the caps whatever the batch size, and the rest of the batch opens the next one.
pub(super) async fn on_batch(
    myself: &ActorRef<PartitionMsg>,
    state: &mut PartitionState,
    batch: &MessageBatch,
) -> Result<(), ActorProcessingErr> {
    state.last_data = Instant::now();
    // The consumer never sends an offset twice, but a restart may overlap: the committed next
    // offset is the authority. Offsets rise within a batch, so a floor that follows the taken
    // ones skips what is already in the shard.
    let floor = state
        .last
        .map_or(state.shard_first, |l| state.shard_first.max(l + 1));
    let mut messages = fresh(batch, floor).peekable();
    if let (Some(expected), Some(&(offset, _))) = (state.expect_first, messages.peek()) {
        state.expect_first = None;
        if offset != expected {
            // Kafka no longer has them (retention), or they are transaction markers.
            tracing::warn!(
                partition = state.args.partition,
                expected,
                first = offset,
                missing = offset - expected,
                "the partition resumes after a gap: offsets between the committed one and the first line are not in Kafka"
            );
        }
    }
    loop {
        // Records are observed in batches; the parser stops at the first line past a cap.
        let pushed = state
            .parser
            .push_messages(&mut messages, &mut state.partial);
        taken(state, pushed.taken, pushed.last);
        let Some((offset, line)) = pushed.refused else {
            break;
        };
        flush(myself, state).await?;
        if state.last.is_some() {
            // Not cut: fenced or stopping, so nothing more is parsed here.
            break;
        }
        if state.parser.push(line, offset, &mut state.partial) == Push::Full {
            return Err(format!(
                "partition {}: an empty shard refused offset {offset}; this is a bug",
                state.args.partition
            )
            .into());
        }
        taken(state, 1, Some(offset));
    }
    state.args.ctx.metrics.consumed(
        state.args.partition,
        batch.len() as u64,
        batch.bytes() as u64,
    );
    Ok(())
}

/// The messages of `batch` at or above `floor` and above every message before them.
fn fresh(batch: &MessageBatch, mut floor: i64) -> impl Iterator<Item = (i64, &[u8])> {
    batch.iter().filter(move |&(offset, _)| {
        let new = offset >= floor;
        if new {
            floor = offset + 1;
        }
        new
    })
}

/// Accounts `n` lines taken into the open shard, the last at `last`.
fn taken(state: &mut PartitionState, n: u64, last: Option<i64>) {
    if n == 0 {
        return;
    }
    if state.rows == 0 {
        state.opened = Instant::now();
    }
    state.last = last;
    state.rows += n;
    state.bytes = state.parser.buffered_bytes();
}
