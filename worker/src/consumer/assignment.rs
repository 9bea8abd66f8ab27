//! The consumer thread's assignment bookkeeping: which partitions it feeds, which it has let go
//! of, and how changes reach librdkafka.

use super::feed::Assigned;
use crate::kafka::{KafkaConsumer, KafkaContext};
use crate::messages::{MessageBatch, PartitionSink, Waker};
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a revoked partition stays assigned in librdkafka (not polled) before it is removed.
/// A partition assigned again meanwhile (a restarted actor) is only repositioned.
const RETIRE_AFTER: Duration = Duration::from_secs(2);

/// A command to the consumer thread.
pub(super) enum ConsumerCmd {
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

/// Assignment changes for librdkafka.
#[derive(Default)]
pub(super) struct Changes {
    /// Newly assigned partitions, with their start offsets.
    pub(super) added: BTreeMap<i32, i64>,
    /// Partitions still assigned in librdkafka that must restart at an offset.
    pub(super) moved: BTreeMap<i32, i64>,
    pub(super) removed: Vec<i32>,
}

impl Changes {
    pub(super) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.moved.is_empty() && self.removed.is_empty()
    }
}

/// The consumer thread's view of the assignment.
#[derive(Default)]
pub(super) struct Assignment {
    pub(super) parts: BTreeMap<i32, Assigned>,
    /// Revoked partitions still assigned in librdkafka, since when.
    retired: BTreeMap<i32, Instant>,
}

fn partition_list(
    topic: &str,
    parts: impl IntoIterator<Item = (i32, Option<i64>)>,
) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in parts {
        let added = match offset {
            Some(o) => tpl
                .add_partition_offset(topic, p, Offset::Offset(o))
                .map(|_| ()),
            None => {
                tpl.add_partition(topic, p);
                Ok(())
            }
        };
        if let Err(e) = added {
            tracing::error!(partition = p, error = %e, "cannot build the assignment");
        }
    }
    tpl
}

fn unassign(consumer: &KafkaConsumer, topic: &str, parts: impl IntoIterator<Item = i32>) {
    let tpl = partition_list(topic, parts.into_iter().map(|p| (p, None)));
    if let Err(e) = consumer.incremental_unassign(&tpl) {
        tracing::error!(error = %e, "kafka unassign failed");
    }
}

fn assign(consumer: &KafkaConsumer, topic: &str, parts: impl IntoIterator<Item = (i32, i64)>) {
    let tpl = partition_list(topic, parts.into_iter().map(|(p, o)| (p, Some(o))));
    if let Err(e) = consumer.incremental_assign(&tpl) {
        tracing::error!(error = %e, "kafka assign failed");
    }
}

/// The partition's own queue, waking the consumer thread when data arrives in it. A split queue
/// stays split (librdkafka leaves its forwarding alone from then on, across assignment changes).
fn open_queue(
    consumer: &Arc<KafkaConsumer>,
    topic: &str,
    partition: i32,
    wake: &Waker,
) -> Option<PartitionQueue<KafkaContext>> {
    let queue = consumer
        .split_partition_queue(topic, partition)
        .map(|mut q| {
            let wake = wake.clone();
            q.set_nonempty_callback(move || wake.wake());
            q
        });
    if queue.is_none() {
        tracing::error!(partition, "cannot open the partition's queue");
    }
    queue
}

/// Applies assignment changes to librdkafka incrementally and gives every partition without
/// one its own queue.
///
/// Incremental, and removals delayed by [`RETIRE_AFTER`], because librdkafka (2.12) aborts on an
/// assertion (`rd_kafka_assignment_partition_stopped: rktp_started`, confluentinc/librdkafka#5573)
/// when a partition is removed, added and removed again before the first stop has completed —
/// which a full `assign()` per change did on every quick succession of revokes (at shutdown).
pub(super) fn apply(
    consumer: &Arc<KafkaConsumer>,
    topic: &str,
    assignment: &mut Assignment,
    changes: &Changes,
    wake: &Waker,
) {
    if !changes.removed.is_empty() {
        unassign(consumer, topic, changes.removed.iter().copied());
    }
    if !changes.added.is_empty() {
        // Refresh metadata so a partition created after start can be assigned at once. Short:
        // every partition waits while this thread does (librdkafka refreshes on its own too).
        let _ = consumer.fetch_metadata(Some(topic), Duration::from_secs(2));
        // Split before the fetcher starts: the first fetch of a partition split only after its
        // assignment lands in the main queue (megabytes at once).
        for &p in changes.added.keys() {
            if let Some(a) = assignment.parts.get_mut(&p) {
                a.queue = open_queue(consumer, topic, p, wake);
            }
        }
        assign(consumer, topic, changes.added.iter().map(|(&p, &o)| (p, o)));
    }
    let mut reset = BTreeMap::new();
    for (&p, &offset) in &changes.moved {
        // A seek bumps the partition's version: what was fetched before it is never handed out.
        if let Err(e) = consumer.seek(topic, p, Offset::Offset(offset), Duration::from_secs(10)) {
            // librdkafka refuses to seek a partition whose fetcher is not running (yet). Its
            // position may be past `offset`, which would skip lines: assign it afresh instead.
            tracing::warn!(partition = p, offset, error = %e, "kafka seek failed; assigning the partition again");
            reset.insert(p, offset);
        }
    }
    if !reset.is_empty() {
        unassign(consumer, topic, reset.keys().copied());
        assign(consumer, topic, reset);
    }
    // Re-assigned partitions (a restarted actor) come with a fresh entry and no queue yet.
    for (&p, a) in assignment.parts.iter_mut() {
        if a.queue.is_none() {
            a.queue = open_queue(consumer, topic, p, wake);
        }
    }
}

impl Assignment {
    /// Takes `partition` out of the data path; librdkafka lets go of it later (see [`apply`]).
    pub(super) fn retire(&mut self, partition: i32) {
        self.parts.remove(&partition);
        self.retired.insert(partition, Instant::now());
    }

    /// Applies pending commands; returns the changes for librdkafka, or `None` to stop.
    pub(super) fn commands(&mut self, rx: &mpsc::Receiver<ConsumerCmd>) -> Option<Changes> {
        let mut changes = Changes::default();
        loop {
            let cmd = match rx.try_recv() {
                Ok(cmd) => cmd,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return None,
            };
            match cmd {
                ConsumerCmd::Assign {
                    partition,
                    offset,
                    sink,
                } => {
                    tracing::info!(partition, offset, "consuming partition");
                    let fresh = Assigned {
                        sink,
                        next: offset,
                        pending: MessageBatch::new(partition),
                        queue: None,
                    };
                    let known = self.parts.insert(partition, fresh).is_some()
                        | self.retired.remove(&partition).is_some();
                    if known && !changes.added.contains_key(&partition) {
                        changes.moved.insert(partition, offset);
                    } else {
                        changes.added.insert(partition, offset);
                    }
                }
                ConsumerCmd::Revoke {
                    partition,
                    actor,
                    done,
                } => {
                    if self
                        .parts
                        .get(&partition)
                        .is_some_and(|a| a.sink.actor.get_id() == actor)
                    {
                        tracing::info!(partition, "stopped consuming partition");
                        changes.moved.remove(&partition);
                        if changes.added.remove(&partition).is_some() {
                            // Not yet known to librdkafka: nothing to undo there.
                            self.parts.remove(&partition);
                        } else {
                            self.retire(partition);
                        }
                    }
                    let _ = done.send(());
                }
                ConsumerCmd::Stop => return None,
            }
        }
        let due: Vec<i32> = self
            .retired
            .iter()
            .filter(|(_, since)| since.elapsed() >= RETIRE_AFTER)
            .map(|(&p, _)| p)
            .collect();
        for p in due {
            self.retired.remove(&p);
            changes.removed.push(p);
        }
        Some(changes)
    }
}
