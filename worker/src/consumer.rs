//! The Kafka side of the data path: one consumer thread per worker with an explicit assignment
//! (no consumer-group rebalancing, no offset commits to Kafka), cutting the stream into
//! per-partition [`MessageBatch`]es for the partition actors.
//!
//! Each partition is read from its own librdkafka queue, and flow control is by credits: a
//! partition has a small semaphore, and a batch travels with a [`Credit`], released when the
//! partition actor has parsed it. A partition without a free credit is simply not polled: its
//! librdkafka queue fills to `queued.max.messages.kbytes` and librdkafka stops fetching it, while
//! the other partitions keep flowing. (Pausing the partition instead would make librdkafka drop
//! everything it had prefetched and fetch and decompress it again after the resume: that cost
//! half the consumer's CPU.) Releasing a credit, new data in a queue and a command each wake the
//! thread, so it sleeps when there is nothing to do.

mod assignment;

use crate::error::{Result, WorkerError};
use crate::kafka::{create_consumer, KafkaConsumer, KafkaContext};
use crate::partition::PartitionMsg;
use assignment::{apply, Assignment};
use ractor::ActorRef;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Messages per batch handed to a partition actor.
const BATCH_MESSAGES: usize = 4096;
/// Batches in flight per partition (the credits).
pub const CREDITS: usize = 4;
/// Most messages taken from one partition's queue before the others get their turn.
const ROUND_MESSAGES: usize = 4 * BATCH_MESSAGES;
/// Longest sleep without a wake-up (a safety net; every event that matters wakes the thread).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Consecutive messages of one partition, copied into one buffer.
#[derive(Debug, Default)]
pub struct MessageBatch {
    pub partition: i32,
    pub offsets: Vec<i64>,
    ends: Vec<u32>,
    data: Vec<u8>,
}

impl MessageBatch {
    fn new(partition: i32) -> Self {
        MessageBatch {
            partition,
            ..Default::default()
        }
    }

    pub fn push(&mut self, offset: i64, payload: &[u8]) {
        self.offsets.push(offset);
        self.data.extend_from_slice(payload);
        self.ends.push(self.data.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// `(offset, line)` pairs in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.offsets
            .iter()
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(&o, (s, e))| (o, &self.data[s as usize..e as usize]))
    }
}

/// Wakes the consumer thread (coalesced: one pending wake-up is enough).
#[derive(Clone)]
struct Waker(mpsc::SyncSender<()>);

impl Waker {
    fn wake(&self) {
        let _ = self.0.try_send(());
    }
}

/// A partition's credit for one batch; dropping it frees the credit and wakes the consumer.
pub struct Credit {
    permit: Option<OwnedSemaphorePermit>,
    wake: Waker,
}

impl Drop for Credit {
    fn drop(&mut self) {
        // Free first, then wake: the other order could let the thread look, find nothing
        // free and sleep through the release.
        drop(self.permit.take());
        self.wake.wake();
    }
}

/// Where a partition's batches go.
#[derive(Clone)]
pub struct PartitionSink {
    pub actor: ActorRef<PartitionMsg>,
    pub credits: Arc<Semaphore>,
}

pub enum ConsumerCmd {
    /// Start (or restart) consuming `partition` at `offset` into `sink`.
    Assign {
        partition: i32,
        offset: i64,
        sink: PartitionSink,
    },
    /// Stop consuming `partition` into `actor`'s sink; nothing more is sent to it after `done`
    /// fires. A revoke from an older incarnation of the partition's actor (its `post_stop` may
    /// run after the new one assigned) leaves the new assignment alone.
    Revoke {
        partition: i32,
        actor: ractor::ActorId,
        done: mpsc::Sender<()>,
    },
    Stop,
}

/// Handle to the consumer thread.
#[derive(Clone)]
pub struct ConsumerHandle {
    tx: mpsc::Sender<ConsumerCmd>,
    wake: Waker,
}

impl ConsumerHandle {
    fn send(&self, cmd: ConsumerCmd) -> bool {
        let sent = self.tx.send(cmd).is_ok();
        self.wake.wake();
        sent
    }

    /// Starts feeding `partition` from `offset` into `sink`; fails if the consumer thread is gone.
    pub fn assign(&self, partition: i32, offset: i64, sink: PartitionSink) -> Result<()> {
        if self.send(ConsumerCmd::Assign {
            partition,
            offset,
            sink,
        }) {
            Ok(())
        } else {
            Err(WorkerError::Actor(
                "the Kafka consumer thread has stopped; restart the worker".into(),
            ))
        }
    }

    /// Revokes and waits (bounded) until the consumer thread no longer sends to the partition.
    pub fn revoke(&self, partition: i32, actor: ractor::ActorId) {
        let (done, wait) = mpsc::channel();
        if self.send(ConsumerCmd::Revoke {
            partition,
            actor,
            done,
        }) {
            let _ = wait.recv_timeout(Duration::from_secs(5));
        }
    }

    pub fn stop(&self) {
        self.send(ConsumerCmd::Stop);
    }
}

struct Assigned {
    sink: PartitionSink,
    /// The next offset to hand over; anything below it is a redelivery.
    next: i64,
    pending: MessageBatch,
    /// The partition's own librdkafka queue.
    queue: Option<PartitionQueue<KafkaContext>>,
}

/// What handing a batch to a partition actor came to.
#[derive(PartialEq)]
enum Handover {
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
            // Only a stopping actor is gone: one still starting (its `pre_start` assigns the
            // partition) takes messages into its mailbox and must keep its partition.
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
    let credit = Credit {
        permit: Some(permit),
        wake: wake.clone(),
    };
    let fresh = MessageBatch::new(pending.partition);
    let batch = std::mem::replace(pending, fresh);
    match sink.actor.cast(PartitionMsg::Batch(batch, credit)) {
        Ok(()) => Handover::Sent,
        Err(_) => Handover::Gone,
    }
}

/// Hands the pending batch over once it is full; a batch still filling counts as sent.
fn offer_full(pending: &mut MessageBatch, sink: &PartitionSink, wake: &Waker) -> Handover {
    if pending.len() >= BATCH_MESSAGES {
        hand_over(pending, sink, wake)
    } else {
        Handover::Sent
    }
}

/// Counts a consume error and logs it at powers of two (a dead broker repeats it).
fn consume_error(errors: &mut u32, partition: Option<i32>, e: &KafkaError) {
    *errors += 1;
    if errors.is_power_of_two() {
        tracing::warn!(?partition, error = %e, errors = *errors, "kafka consume error, retrying");
    }
}

/// Appends a fetched message unless it is a redelivery (librdkafka may hand out again what it
/// had prefetched before a reassignment).
fn accept(next: &mut i64, pending: &mut MessageBatch, m: &BorrowedMessage<'_>) {
    if m.offset() >= *next {
        *next = m.offset() + 1;
        pending.push(m.offset(), m.payload().unwrap_or_default());
    }
}

impl Assigned {
    /// Moves what the partition's queue holds into batches for the actor, as long as credits
    /// last. Returns whether anything moved and how the last hand-over went.
    fn drain(&mut self, wake: &Waker, errors: &mut u32) -> (bool, Handover) {
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
            match queue.poll(Duration::ZERO) {
                Some(Ok(m)) => {
                    moved = true;
                    *errors = 0;
                    accept(next, pending, &m);
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

/// Starts the consumer thread.
pub fn spawn(bootstrap: &str, topic: &str, group: &str) -> Result<ConsumerHandle> {
    let mut consumer = create_consumer(bootstrap, group)?;
    let (tx, rx) = mpsc::channel();
    let (wake_tx, wake_rx) = mpsc::sync_channel(1);
    let wake = Waker(wake_tx);
    {
        let wake = wake.clone();
        consumer.set_nonempty_callback(move || wake.wake());
    }
    let topic = topic.to_string();
    let thread_wake = wake.clone();
    std::thread::Builder::new()
        .name("kafka-consumer".into())
        .spawn(move || run(Arc::new(consumer), topic, rx, wake_rx, thread_wake))
        .map_err(|e| WorkerError::Actor(format!("cannot start the consumer thread: {e}")))?;
    Ok(ConsumerHandle { tx, wake })
}

fn run(
    consumer: Arc<KafkaConsumer>,
    topic: String,
    rx: mpsc::Receiver<ConsumerCmd>,
    wake_rx: mpsc::Receiver<()>,
    wake: Waker,
) {
    let mut asg = Assignment::default();
    let mut errors = 0u32;
    loop {
        // Commands first, so a revoke is honoured before anything else is sent.
        let Some(changes) = asg.commands(&rx) else {
            return;
        };
        if !changes.is_empty() {
            apply(&consumer, &topic, &mut asg, &changes, &wake);
        }
        let mut moved = false;
        let mut gone = Vec::new();
        for (&p, a) in asg.parts.iter_mut() {
            let (m, handover) = a.drain(&wake, &mut errors);
            moved |= m;
            if handover == Handover::Gone {
                gone.push(p);
            }
        }
        // The main queue: client errors, and lines fetched before a partition's queue was split.
        while let Some(r) = consumer.poll(Duration::ZERO) {
            match r {
                Ok(m) => {
                    moved = true;
                    let p = m.partition();
                    if let Some(a) = asg.parts.get_mut(&p) {
                        accept(&mut a.next, &mut a.pending, &m);
                        if offer_full(&mut a.pending, &a.sink, &wake) == Handover::Gone {
                            gone.push(p);
                        }
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => {
                    consume_error(&mut errors, None, &e);
                    break;
                }
            }
        }
        for p in gone {
            tracing::warn!(
                partition = p,
                "partition actor is gone; dropping its assignment"
            );
            asg.retire(p);
        }
        if !moved {
            // Errors back off (capped) instead of spinning on a dead broker.
            let wait = if errors > 0 {
                Duration::from_millis(u64::from(errors.min(50)) * 20)
            } else {
                IDLE_WAIT
            };
            let _ = wake_rx.recv_timeout(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_iterates_lines_with_offsets() {
        let mut b = MessageBatch::new(2);
        b.push(10, b"a");
        b.push(12, b"");
        b.push(13, b"ccc");
        let got: Vec<(i64, &[u8])> = b.iter().collect();
        assert_eq!(
            got,
            vec![(10, &b"a"[..]), (12, &b""[..]), (13, &b"ccc"[..])]
        );
        assert_eq!((b.len(), b.bytes()), (3, 4));
    }

    #[test]
    fn dropping_a_credit_frees_it_before_waking() {
        let sem = Arc::new(Semaphore::new(1));
        let (tx, rx) = mpsc::sync_channel(1);
        let credit = Credit {
            permit: Some(sem.clone().try_acquire_owned().expect("a free permit")),
            wake: Waker(tx),
        };
        assert_eq!(sem.available_permits(), 0);
        let watcher = {
            let sem = sem.clone();
            std::thread::spawn(move || {
                rx.recv().expect("a wake-up");
                sem.available_permits()
            })
        };
        drop(credit);
        assert_eq!(watcher.join().expect("watcher"), 1);
    }
}
