//! Kafka client set-up shared by the consumer thread, the metadata client and the benchmarks.

use crate::error::{Result, WorkerError};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use std::time::Duration;

/// Our rdkafka client context: librdkafka's own log lines go through `log` (bridged to
/// `tracing`) as before; client errors are logged once at `warn`, except end-of-partition, which
/// is a normal event here (the consumer thread acts on it from the partition queue).
pub struct KafkaContext;

impl ClientContext for KafkaContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::warn!(error = %error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for KafkaContext {}

/// The consumer type every part of the worker uses.
pub type KafkaConsumer = BaseConsumer<KafkaContext>;

/// Kafka client settings for consuming: explicit assignment, nothing stored in Kafka.
pub fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // EOF events hand a partition's last lines over at once, not after a poll timeout.
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "4194304")
        // The prefetch bound. The worker reads each partition from its own queue, so this is
        // per partition there (and per consumer for a plain `poll` loop).
        .set("queued.max.messages.kbytes", "16384")
        // librdkafka stops prefetching once a queue holds `queued.min.messages` (default
        // 100,000, ~10 MB of log lines) and then waits `fetch.queue.backoff.ms` (default 1 s)
        // before it looks again: with short lines that idled the consumer most of the time
        // (430k lines/s instead of 2.1M on the reference machine). The byte bound above caps
        // memory instead.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "10")
        .set("socket.timeout.ms", "10000")
        .set("session.timeout.ms", "10000")
        // Partitions added to the topic at run time must become known quickly.
        .set("topic.metadata.refresh.interval.ms", "5000");
    c
}

/// Creates a consumer with [`consumer_config`] and our context.
pub fn create_consumer(bootstrap: &str, group: &str) -> Result<KafkaConsumer> {
    create_consumer_with(bootstrap, group, &[])
}

/// [`create_consumer`] with this process's librdkafka properties (security) on top.
pub fn create_consumer_with(
    bootstrap: &str,
    group: &str,
    properties: &[(String, String)],
) -> Result<KafkaConsumer> {
    let mut c = consumer_config(bootstrap, group);
    for (k, v) in properties {
        c.set(k, v);
    }
    Ok(c.create_with_context(KafkaContext)?)
}

/// Checks the topic exists and returns its partition ids, or a clear error.
pub fn topic_partitions(
    consumer: &KafkaConsumer,
    bootstrap: &str,
    topic: &str,
) -> Result<Vec<i32>> {
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
