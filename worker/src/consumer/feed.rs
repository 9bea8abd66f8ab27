//! Feeding one partition: what the consumer thread holds for it, and how its lines become
//! batches handed to the partition actor as long as credits last.
//!
//! A partition takes lines from its queue into its pending batch only while it has a free
//! credit: once out of credits it is not polled at all, so what it has not taken waits in
//! librdkafka's queue (bounded by `queued.max.messages.kbytes`), and its pending batch stays
//! at most one batch (by messages or bytes, [`MessageBatch::is_full`]).

use crate::kafka::KafkaContext;
use crate::messages::{Credit, MessageBatch, PartitionMsg, PartitionSink, Waker, BATCH_MESSAGES};
use crate::metrics::PartitionHealth;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use std::sync::Arc;
use std::time::Duration;

/// Most messages taken from one partition's queue before the others get their turn.
const ROUND_MESSAGES: usize = 4 * BATCH_MESSAGES;

/// A partition the consumer thread feeds.
pub(super) struct Assigned {
    pub(super) sink: PartitionSink,
    /// The next offset to hand over; anything below it is a redelivery.
    pub(super) next: i64,
    pub(super) pending: MessageBatch,
    /// The partition's own librdkafka queue.
    pub(super) queue: Option<PartitionQueue<KafkaContext>>,
}

/// What handing a batch to a partition actor came to.
#[derive(PartialEq)]
pub(super) enum Handover {
    Sent,
    /// No free credit: the batch waits here.
    Full,
    /// The actor is gone; the supervisor restarts it and assigns the partition again.
    Gone,
}

/// Hands the pending batch to the partition actor if a credit is free.
fn hand_over(pending: &mut MessageBatch, sink: &PartitionSink, wake: &Waker) -> Handover {
    if pending.is_empty() {
        return Handover::Sent;
    }
    let permit = match sink.credits.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(tokio::sync::TryAcquireError::NoPermits) => {
            // Only a stopping actor is gone: a live one is busy with earlier batches and takes
            // this one when it frees a credit.
            let status = sink.actor.get_status();
            return if matches!(
                status,
                ractor::ActorStatus::Stopping | ractor::ActorStatus::Stopped
            ) {
                Handover::Gone
            } else {
                Handover::Full
            };
        }
        Err(tokio::sync::TryAcquireError::Closed) => return Handover::Gone,
    };
    let credit = Credit::new(permit, wake.clone(), sink.pool.clone());
    let fresh = sink.pool.take(pending.partition);
    let batch = std::mem::replace(pending, fresh);
    match sink.actor.cast(PartitionMsg::Batch(batch, credit)) {
        Ok(()) => Handover::Sent,
        Err(_) => Handover::Gone,
    }
}

/// Hands the pending batch over once it is full; a batch still filling counts as sent.
pub(super) fn offer_full(
    pending: &mut MessageBatch,
    sink: &PartitionSink,
    wake: &Waker,
) -> Handover {
    if pending.is_full() {
        hand_over(pending, sink, wake)
    } else {
        Handover::Sent
    }
}

/// Consecutive consume errors (no message in between) after which a partition is reported
/// failing: a broker restart or leader move causes a few, a partition that cannot be read keeps
/// causing them (about one a second at the consumer thread's capped backoff).
pub(super) const PERSISTENT_ERRORS: u32 = 8;

/// Consume errors since the last message, and where a persistent one is reported.
pub(super) struct ConsumeErrors {
    pub(super) count: u32,
    pub(super) health: Arc<PartitionHealth>,
}

/// Counts a consume error, logs it at powers of two (a dead broker repeats it), and reports
/// the partition failing (metric, heartbeat, status) once the errors persist.
pub(super) fn consume_error(errors: &mut ConsumeErrors, partition: Option<i32>, e: &KafkaError) {
    errors.count += 1;
    let count = errors.count;
    errors.health.consume_error(partition);
    if count.is_power_of_two() {
        tracing::warn!(?partition, error = %e, errors = count, "kafka consume error, retrying");
    }
    if count >= PERSISTENT_ERRORS {
        if let Some(p) = partition {
            if count == PERSISTENT_ERRORS {
                tracing::error!(partition = p, error = %e, errors = count, "kafka consume errors persist: reporting the partition as failing");
            }
            errors.health.failed(p, "consume", e);
        }
    }
}

/// Appends a fetched message unless it is a redelivery (librdkafka may hand out again what it
/// had prefetched before a reassignment).
pub(super) fn accept(next: &mut i64, pending: &mut MessageBatch, message: &BorrowedMessage<'_>) {
    if message.offset() >= *next {
        *next = message.offset() + 1;
        pending.push(message.offset(), message.payload().unwrap_or_default());
    }
}

/// Whether the partition may take another line from its queue: only with a credit free (to
/// hand the batch over with) and room in the pending batch. Otherwise it is not polled.
pub(super) fn may_take(pending: &MessageBatch, credits_free: usize) -> bool {
    credits_free > 0 && !pending.is_full()
}

impl Assigned {
    /// Moves what the partition's queue holds into batches for the actor, as long as credits
    /// last. Returns whether anything moved and how the last hand-over went.
    pub(super) fn drain(&mut self, wake: &Waker, errors: &mut ConsumeErrors) -> (bool, Handover) {
        let Assigned {
            sink,
            next,
            pending,
            queue,
        } = self;
        match offer_full(pending, sink, wake) {
            Handover::Sent => {}
            other => return (false, other),
        }
        let Some(queue) = queue else {
            return (false, Handover::Sent);
        };
        let mut moved = false;
        for _ in 0..ROUND_MESSAGES {
            if !may_take(pending, sink.credits.available_permits()) {
                // Out of credits: hand over what there is if a credit came back meanwhile, and
                // leave the rest in librdkafka's queue until a credit frees (which wakes us).
                let handover = if pending.is_empty() {
                    Handover::Full
                } else {
                    hand_over(pending, sink, wake)
                };
                return (moved, handover);
            }
            match queue.poll(Duration::ZERO) {
                Some(Ok(message)) => {
                    moved = true;
                    errors.count = 0;
                    accept(next, pending, &message);
                    match offer_full(pending, sink, wake) {
                        Handover::Sent => {}
                        other => return (moved, other),
                    }
                }
                // Lines fetched after an end-of-partition event may already wait behind it (the
                // queue was not empty, so no wake-up came for them): keep polling.
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                // Caught up, or nothing fetched yet: hand over what there is rather than wait.
                None => return (moved, hand_over(pending, sink, wake)),
                Some(Err(e)) => {
                    consume_error(errors, Some(pending.partition), &e);
                    return (moved, hand_over(pending, sink, wake));
                }
            }
        }
        (moved, Handover::Sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn persistent_consume_errors_report_the_partition() {
        let metrics = Metrics::default();
        let mut errors = ConsumeErrors {
            count: 0,
            health: metrics.health(),
        };
        let e = KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition);
        for _ in 1..PERSISTENT_ERRORS {
            consume_error(&mut errors, Some(5), &e);
        }
        assert!(
            metrics.health().failing().is_empty(),
            "a few errors are not persistent"
        );
        consume_error(&mut errors, Some(5), &e);
        consume_error(&mut errors, None, &e);
        let failing = metrics.health().failing();
        assert_eq!(failing[&5].what, "consume");
        assert!(
            failing[&5].error.contains("nknown"),
            "{}",
            failing[&5].error
        );
        let text = metrics.render();
        assert!(text.contains(&format!(
            "sawmill_worker_consume_errors_total{{partition=\"5\"}} {PERSISTENT_ERRORS}"
        )));
        assert!(text.contains("sawmill_worker_consume_errors_total{partition=\"client\"} 1"));
    }

    #[test]
    fn a_partition_without_credits_takes_nothing() {
        let mut pending = MessageBatch::new(0);
        assert!(may_take(&pending, 1));
        assert!(
            !may_take(&pending, 0),
            "no credit: not even into an empty batch"
        );
        pending.push(0, b"a line");
        assert!(may_take(&pending, 2));
        assert!(!may_take(&pending, 0));
        // A full batch waits for its hand-over whatever the credits.
        pending.push(1, &vec![b'x'; crate::messages::BATCH_BYTES]);
        assert!(!may_take(&pending, 4));
        let mut by_count = MessageBatch::new(0);
        for i in 0..BATCH_MESSAGES as i64 {
            by_count.push(i, b"");
        }
        assert!(!may_take(&by_count, 4));
    }
}
