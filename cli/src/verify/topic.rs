//! Reads every partition of a topic from its low watermark to the end offset it had when the
//! read began, one message at a time (nothing is kept here; the caller folds each message in).

use crate::CliError;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long each metadata or watermark request, and the read between two messages, may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A partition's range: `low` (first offset still in the topic) to `end` (the next offset to be
/// written), as they were when the read began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub low: i64,
    pub end: i64,
}

fn kafka(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Kafka(format!(
        "{what}: {e}; check --bootstrap-servers and that the topic exists"
    ))
}

/// Every partition's range, and every message in it: `on_message(partition, its range, offset,
/// payload)`.
pub fn read(
    bootstrap: &str,
    topic: &str,
    mut on_message: impl FnMut(i32, Range, i64, &[u8]),
) -> Result<BTreeMap<i32, Range>, CliError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // Required by the client, never joined: partitions are assigned explicitly and no
        // offset is committed.
        .set("group.id", "sawmill-verify")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| kafka("cannot create a Kafka consumer", e))?;
    let md = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| kafka(&format!("no metadata for topic {topic}"), e))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(CliError::Kafka(format!(
            "topic {topic} has no partitions: is the name right? (`sawmill produce` creates it)"
        )));
    }
    let mut ranges = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (low, end) = consumer
            .fetch_watermarks(topic, p, TIMEOUT)
            .map_err(|e| kafka(&format!("no watermarks for {topic}/{p}"), e))?;
        ranges.insert(p, Range { low, end });
        if end > low {
            assignment
                .add_partition_offset(topic, p, Offset::Offset(low))
                .map_err(|e| kafka("cannot assign", e))?;
        }
    }
    consumer
        .assign(&assignment)
        .map_err(|e| kafka("cannot assign the topic's partitions", e))?;
    // Partitions not yet read up to their end.
    let mut pending: BTreeSet<i32> = ranges
        .iter()
        .filter(|(_, r)| r.end > r.low)
        .map(|(&p, _)| p)
        .collect();
    let mut last_progress = Instant::now();
    while !pending.is_empty() {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            // Transaction markers take offsets without a message: a partition may end in one,
            // so its position (not a message) says it is done.
            if let Ok(positions) = consumer.position() {
                for e in positions.elements() {
                    if let (Offset::Offset(at), Some(r)) = (e.offset(), ranges.get(&e.partition()))
                    {
                        if at >= r.end {
                            pending.remove(&e.partition());
                        }
                    }
                }
            }
            if last_progress.elapsed() > TIMEOUT {
                return Err(CliError::Kafka(format!(
                    "no message from {topic} for {TIMEOUT:?} while partitions {:?} are not read to their end: is the broker up?",
                    pending
                )));
            }
            continue;
        };
        let msg = msg.map_err(|e| kafka(&format!("cannot read {topic}"), e))?;
        last_progress = Instant::now();
        let (p, offset) = (msg.partition(), msg.offset());
        let Some(&range) = ranges.get(&p) else {
            continue;
        };
        if offset < range.end {
            on_message(p, range, offset, msg.payload().unwrap_or_default());
        }
        if offset + 1 >= range.end {
            pending.remove(&p);
        }
    }
    Ok(ranges)
}
