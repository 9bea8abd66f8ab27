//! The topic poller, above the cluster actor: every tick it reads the topic's partitions and end
//! offsets from Kafka and every partition's state from etcd, and hands them to the actor as
//! [`TopicFacts`]. New partitions are picked up here without a restart. Kafka's client blocks,
//! so it runs on the blocking pool.

use crate::cluster::{ClusterMsg, TopicFacts};
use crate::config::ServeConfig;
use crate::error::{Result, TopicError};
use crate::metrics::Metrics;
use ractor::ActorRef;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use sawmill_common::etcd::Checkpoints;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A metadata-only Kafka client (never subscribes, never commits).
/// `properties`: this process's librdkafka properties (security), applied last.
pub fn client(bootstrap: &str, properties: &[(String, String)]) -> Result<BaseConsumer> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", "sawmill-coordinator")
        .set("enable.auto.commit", "false")
        .set("socket.timeout.ms", "5000");
    for (k, v) in properties {
        c.set(k, v);
    }
    Ok(c.create()?)
}

/// Partitions and high watermarks of `topic`, or why they cannot be read.
pub fn read_topic(
    kafka: &BaseConsumer,
    topic: &str,
) -> Result<(Vec<i32>, BTreeMap<i32, i64>), TopicError> {
    let metadata = kafka
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .map_err(TopicError::Metadata)?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| TopicError::NotFound(topic.to_string()))?;
    if found.error().is_some() || found.partitions().is_empty() {
        return Err(TopicError::Missing(topic.to_string()));
    }
    let parts: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    let mut ends = BTreeMap::new();
    for &partition in &parts {
        let (_, high) = kafka
            .fetch_watermarks(topic, partition, Duration::from_secs(5))
            .map_err(|source| TopicError::Watermarks { partition, source })?;
        ends.insert(partition, high);
    }
    Ok((parts, ends))
}

/// Polls until the cluster actor is gone.
pub fn spawn_poller(
    cfg: Arc<ServeConfig>,
    checkpoints: Checkpoints,
    cluster: ActorRef<ClusterMsg>,
    metrics: Metrics,
) -> Result<tokio::task::JoinHandle<()>> {
    let properties = cfg.pipeline.connection.kafka_client_properties()?;
    let kafka = Arc::new(client(&cfg.pipeline.bootstrap_servers, &properties)?);
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut kafka_ok = true;
        let mut etcd_ok = true;
        loop {
            tick.tick().await;
            let mut facts = TopicFacts::default();
            let (client, topic) = (kafka.clone(), cfg.pipeline.topic.clone());
            match tokio::task::spawn_blocking(move || read_topic(&client, &topic)).await {
                Ok(Ok((parts, ends))) => {
                    if !kafka_ok {
                        tracing::info!("kafka readable again");
                    }
                    kafka_ok = true;
                    facts.partitions = Some(parts);
                    facts.ends = ends;
                }
                Ok(Err(e)) => {
                    metrics.error("kafka_metadata");
                    if kafka_ok {
                        tracing::warn!(error = %e, "cannot read the topic; retrying every tick");
                    }
                    kafka_ok = false;
                }
                Err(e) => tracing::error!(error = %e, "topic poll task failed"),
            }
            let mut reader = checkpoints.clone();
            match reader.partitions().await {
                Ok(stored) => {
                    if !etcd_ok {
                        tracing::info!("etcd readable again");
                    }
                    etcd_ok = true;
                    facts.stored = Some(stored);
                }
                Err(e) => {
                    metrics.error("etcd_read");
                    if etcd_ok {
                        tracing::warn!(error = %e, "cannot read partition states from etcd; retrying every tick");
                    }
                    etcd_ok = false;
                }
            }
            if cluster.cast(ClusterMsg::Topic(facts)).is_err() {
                return;
            }
        }
    }))
}
