//! The Kafka side of the data path: one consumer thread per worker with an explicit assignment
//! (no consumer-group rebalancing, no offset commits to Kafka), cutting the stream into
//! per-partition [`MessageBatch`]es for the partition actors.
//!
//! Flow control is by credits: each partition has a small semaphore, and a batch travels with
//! its permit, released when the partition actor has parsed it. When a partition falls behind
//! (slow HDFS, slow etcd), its credits run out and this thread *pauses* that partition in
//! librdkafka (other partitions keep flowing) until a credit is back; librdkafka's fetch queue is
//! bounded, so consumption slows instead of memory growing.

use crate::error::{Result, WorkerError};
use crate::partition::PartitionMsg;
use ractor::ActorRef;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Messages per batch handed to a partition actor.
const BATCH_MESSAGES: usize = 4096;
/// Batches in flight per partition (the credits).
pub const CREDITS: usize = 4;

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
    /// Stop consuming `partition`; nothing more is sent to its old sink after `done` fires.
    Revoke {
        partition: i32,
        done: mpsc::Sender<()>,
    },
    Stop,
}

/// Handle to the consumer thread.
#[derive(Clone)]
pub struct ConsumerHandle {
    tx: mpsc::Sender<ConsumerCmd>,
}

impl ConsumerHandle {
    pub fn assign(&self, partition: i32, offset: i64, sink: PartitionSink) {
        let _ = self.tx.send(ConsumerCmd::Assign {
            partition,
            offset,
            sink,
        });
    }

    /// Revokes and waits (bounded) until the consumer thread no longer sends to the partition.
    pub fn revoke(&self, partition: i32) {
        let (done, wait) = mpsc::channel();
        if self
            .tx
            .send(ConsumerCmd::Revoke { partition, done })
            .is_ok()
        {
            let _ = wait.recv_timeout(Duration::from_secs(5));
        }
    }

    pub fn stop(&self) {
        let _ = self.tx.send(ConsumerCmd::Stop);
    }
}

/// Kafka client settings for consuming: explicit assignment, nothing stored in Kafka.
pub fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608")
        .set("queued.max.messages.kbytes", "65536")
        .set("socket.timeout.ms", "10000")
        .set("session.timeout.ms", "10000")
        // Partitions added to the topic at run time must become known quickly.
        .set("topic.metadata.refresh.interval.ms", "5000");
    c
}

/// Checks the topic exists and returns its partition ids, or a clear error.
pub fn topic_partitions(consumer: &BaseConsumer, bootstrap: &str, topic: &str) -> Result<Vec<i32>> {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| {
        WorkerError::Kafka(format!(
            "cannot reach Kafka at {bootstrap}: {e} (is the broker running? check --bootstrap-servers)"
        ))
    })?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| WorkerError::Config(format!("topic {topic:?} not found at {bootstrap}")))?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(WorkerError::Config(format!(
            "topic {topic:?} does not exist at {bootstrap}: create it (sawmill produce creates it) or fix --topic"
        )));
    }
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

struct Assigned {
    sink: PartitionSink,
    next: i64,
    pending: MessageBatch,
    paused: bool,
}

/// Starts the consumer thread.
pub fn spawn(bootstrap: &str, topic: &str, group: &str) -> Result<ConsumerHandle> {
    let consumer: BaseConsumer = consumer_config(bootstrap, group).create()?;
    let (tx, rx) = mpsc::channel();
    let topic = topic.to_string();
    std::thread::Builder::new()
        .name("kafka-consumer".into())
        .spawn(move || run(consumer, topic, rx))
        .map_err(|e| WorkerError::Actor(format!("cannot start the consumer thread: {e}")))?;
    Ok(ConsumerHandle { tx })
}

fn reassign(consumer: &BaseConsumer, topic: &str, parts: &BTreeMap<i32, Assigned>) {
    let mut tpl = TopicPartitionList::new();
    for (&p, a) in parts {
        if let Err(e) = tpl.add_partition_offset(topic, p, Offset::Offset(a.next)) {
            tracing::error!(partition = p, error = %e, "cannot build the assignment");
        }
    }
    if let Err(e) = consumer.assign(&tpl) {
        tracing::error!(error = %e, "kafka assign failed");
    }
}

fn run(consumer: BaseConsumer, topic: String, rx: mpsc::Receiver<ConsumerCmd>) {
    let mut parts: BTreeMap<i32, Assigned> = BTreeMap::new();
    let mut errors = 0u32;
    loop {
        // Commands first, so a revoke is honoured before anything else is sent.
        let mut changed = false;
        loop {
            let cmd = if parts.is_empty() {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(c) => c,
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.try_recv() {
                    Ok(c) => c,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            };
            match cmd {
                ConsumerCmd::Assign {
                    partition,
                    offset,
                    sink,
                } => {
                    tracing::info!(partition, offset, "consuming partition");
                    parts.insert(
                        partition,
                        Assigned {
                            sink,
                            next: offset,
                            pending: MessageBatch::new(partition),
                            paused: false,
                        },
                    );
                    changed = true;
                }
                ConsumerCmd::Revoke { partition, done } => {
                    if parts.remove(&partition).is_some() {
                        tracing::info!(partition, "stopped consuming partition");
                        changed = true;
                    }
                    let _ = done.send(());
                }
                ConsumerCmd::Stop => return,
            }
        }
        if changed {
            // librdkafka keeps a partition's pause flag across assign(), so resume every
            // partition explicitly to match our state; full ones pause again at the next flush.
            // (Without this, a partition paused during a reassignment never resumed.)
            // Refresh metadata so a partition created after start can be assigned at once.
            let _ = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10));
            reassign(&consumer, &topic, &parts);
            for (&p, a) in parts.iter_mut() {
                a.paused = false;
                set_paused(&consumer, &topic, p, false);
            }
        }
        if parts.is_empty() {
            continue;
        }
        // Hand over what waits for a credit; poll briefly while anything is waiting.
        let waiting = retry_paused(&consumer, &topic, &mut parts);
        let timeout = if waiting {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(100)
        };
        match consumer.poll(timeout) {
            None => {
                let ids: Vec<i32> = parts.keys().copied().collect();
                for p in ids {
                    flush(&consumer, &topic, &mut parts, p);
                }
            }
            Some(Err(e)) => {
                errors += 1;
                if errors.is_power_of_two() {
                    tracing::warn!(error = %e, errors, "kafka consume error, retrying");
                }
                std::thread::sleep(Duration::from_millis(u64::from(errors.min(50)) * 20));
            }
            Some(Ok(m)) => {
                errors = 0;
                let p = m.partition();
                let Some(a) = parts.get_mut(&p) else { continue };
                // After a reassign librdkafka may redeliver what was already handed out.
                if m.offset() < a.next {
                    continue;
                }
                a.next = m.offset() + 1;
                a.pending.push(m.offset(), m.payload().unwrap_or_default());
                if a.pending.len() >= BATCH_MESSAGES && !a.paused {
                    flush(&consumer, &topic, &mut parts, p);
                }
            }
        }
    }
}

fn set_paused(consumer: &BaseConsumer, topic: &str, p: i32, pause: bool) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, p);
    let r = if pause {
        consumer.pause(&tpl)
    } else {
        consumer.resume(&tpl)
    };
    if let Err(e) = r {
        tracing::warn!(partition = p, pause, error = %e, "kafka pause/resume failed");
    }
}

/// Retries the hand-over of paused partitions; returns whether any is still waiting.
fn retry_paused(consumer: &BaseConsumer, topic: &str, parts: &mut BTreeMap<i32, Assigned>) -> bool {
    let paused: Vec<i32> = parts
        .iter()
        .filter(|(_, a)| a.paused)
        .map(|(p, _)| *p)
        .collect();
    for &p in &paused {
        flush(consumer, topic, parts, p);
    }
    parts.values().any(|a| a.paused)
}

/// Sends a partition's pending batch if a credit is free; otherwise pauses the partition (its
/// pending lines stay here) so the other partitions keep flowing. Drops the partition when its
/// actor is gone (the supervisor restarts it and assigns it again).
fn flush(consumer: &BaseConsumer, topic: &str, parts: &mut BTreeMap<i32, Assigned>, p: i32) {
    let Some(a) = parts.get_mut(&p) else { return };
    if a.pending.is_empty() {
        if a.paused {
            a.paused = false;
            set_paused(consumer, topic, p, false);
        }
        return;
    }
    let permit: OwnedSemaphorePermit = match a.sink.credits.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(tokio::sync::TryAcquireError::NoPermits) => {
            if !a.paused {
                a.paused = true;
                set_paused(consumer, topic, p, true);
            }
            if a.sink.actor.get_status() != ractor::ActorStatus::Running {
                parts.remove(&p);
            }
            return;
        }
        Err(tokio::sync::TryAcquireError::Closed) => {
            parts.remove(&p);
            return;
        }
    };
    let batch = std::mem::replace(&mut a.pending, MessageBatch::new(p));
    if a.paused {
        a.paused = false;
        set_paused(consumer, topic, p, false);
    }
    if a.sink
        .actor
        .cast(PartitionMsg::Batch(batch, permit))
        .is_err()
    {
        tracing::warn!(
            partition = p,
            "partition actor is gone; dropping its assignment"
        );
        parts.remove(&p);
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
}
