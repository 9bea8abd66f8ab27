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
//!
//! [`MessageBatch`]: crate::messages::MessageBatch
//! [`Credit`]: crate::messages::Credit

mod assignment;
mod feed;

use crate::error::{Result, WorkerError};
use crate::kafka::{create_consumer_with, KafkaConsumer};
use crate::messages::{PartitionSink, Waker};
use crate::metrics::PartitionHealth;
use assignment::{apply, Assignment, ConsumerCmd};
use feed::{accept, consume_error, offer_full, ConsumeErrors, Handover};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Longest sleep without a wake-up (a safety net; every event that matters wakes the thread).
const IDLE_WAIT: Duration = Duration::from_millis(100);

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

/// Starts the consumer thread; persistent consume errors are reported to `health`.
pub fn spawn(
    bootstrap: &str,
    topic: &str,
    group: &str,
    health: Arc<PartitionHealth>,
) -> Result<ConsumerHandle> {
    spawn_with(bootstrap, topic, group, health, &[])
}

/// [`spawn`] with this process's librdkafka properties (security) on top.
pub fn spawn_with(
    bootstrap: &str,
    topic: &str,
    group: &str,
    health: Arc<PartitionHealth>,
    properties: &[(String, String)],
) -> Result<ConsumerHandle> {
    let mut consumer = create_consumer_with(bootstrap, group, properties)?;
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
        .spawn(move || run(Arc::new(consumer), topic, rx, wake_rx, thread_wake, health))
        .map_err(|e| WorkerError::Actor(format!("cannot start the consumer thread: {e}")))?;
    Ok(ConsumerHandle { tx, wake })
}

fn run(
    consumer: Arc<KafkaConsumer>,
    topic: String,
    rx: mpsc::Receiver<ConsumerCmd>,
    wake_rx: mpsc::Receiver<()>,
    wake: Waker,
    health: Arc<PartitionHealth>,
) {
    let mut assignment = Assignment::default();
    let mut errors = ConsumeErrors { count: 0, health };
    loop {
        // Commands first, so a revoke is honoured before anything else is sent.
        let Some(changes) = assignment.commands(&rx) else {
            return;
        };
        if !changes.is_empty() {
            apply(&consumer, &topic, &mut assignment, &changes, &wake);
        }
        let mut moved = false;
        let mut gone = Vec::new();
        for (&p, a) in assignment.parts.iter_mut() {
            let (drained, handover) = a.drain(&wake, &mut errors);
            moved |= drained;
            if handover == Handover::Gone {
                gone.push(p);
            }
        }
        // The main queue: client errors, and lines fetched before a partition's queue was split.
        // Those are taken even by a partition out of credits (the main queue cannot hold one
        // partition's lines back), which is why line ends are `usize`; they are few.
        while let Some(polled) = consumer.poll(Duration::ZERO) {
            match polled {
                Ok(message) => {
                    moved = true;
                    let p = message.partition();
                    if let Some(a) = assignment.parts.get_mut(&p) {
                        accept(&mut a.next, &mut a.pending, &message);
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
            assignment.retire(p);
        }
        if !moved {
            // Errors back off (capped) instead of spinning on a dead broker.
            let wait = if errors.count > 0 {
                Duration::from_millis(u64::from(errors.count.min(50)) * 20)
            } else {
                IDLE_WAIT
            };
            let _ = wake_rx.recv_timeout(wait);
        }
    }
}
