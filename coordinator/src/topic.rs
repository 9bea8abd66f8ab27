//! The topic poller: every tick it reads the topic's partitions and end offsets from Kafka and
//! every partition's state from etcd, and hands them to the cluster actor. New partitions are
//! picked up here without a restart. Kafka's client blocks, so it runs on the blocking pool.

use crate::cluster::ClusterMsg;
use crate::config::ServeConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use ractor::ActorRef;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use sawmill_common::etcd::{Checkpoints, StoredPartition};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One reading; `None` where the source could not be read this time.
#[derive(Debug, Default)]
pub struct TopicView {
    pub partitions: Option<Vec<i32>>,
    pub ends: BTreeMap<i32, i64>,
    pub etcd: Option<BTreeMap<i32, StoredPartition>>,
}

/// A metadata-only Kafka client (never subscribes, never commits).
pub fn client(bootstrap: &str) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sawmill-coordinator")
        .set("enable.auto.commit", "false")
        .set("socket.timeout.ms", "5000")
        .create()?)
}

/// Partitions and high watermarks of `topic`, or why they cannot be read.
pub fn read_topic(
    c: &BaseConsumer,
    topic: &str,
) -> std::result::Result<(Vec<i32>, BTreeMap<i32, i64>), String> {
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .map_err(|e| {
            format!("cannot read metadata: {e} (is Kafka running? check --bootstrap-servers)")
        })?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic:?} not found"))?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(format!(
            "topic {topic:?} does not exist yet: create it (sawmill produce does) or fix --topic"
        ));
    }
    let parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    let mut ends = BTreeMap::new();
    for &p in &parts {
        match c.fetch_watermarks(topic, p, Duration::from_secs(5)) {
            Ok((_, high)) => {
                ends.insert(p, high);
            }
            Err(e) => return Err(format!("cannot read watermarks of partition {p}: {e}")),
        }
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
    let kafka = Arc::new(client(&cfg.pipeline.bootstrap_servers)?);
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut kafka_ok = true;
        let mut etcd_ok = true;
        loop {
            tick.tick().await;
            let mut view = TopicView::default();
            let (k, topic) = (kafka.clone(), cfg.pipeline.topic.clone());
            match tokio::task::spawn_blocking(move || read_topic(&k, &topic)).await {
                Ok(Ok((parts, ends))) => {
                    if !kafka_ok {
                        tracing::info!("kafka readable again");
                    }
                    kafka_ok = true;
                    view.partitions = Some(parts);
                    view.ends = ends;
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
            let mut cp = checkpoints.clone();
            match cp.partitions().await {
                Ok(st) => {
                    if !etcd_ok {
                        tracing::info!("etcd readable again");
                    }
                    etcd_ok = true;
                    view.etcd = Some(st);
                }
                Err(e) => {
                    metrics.error("etcd_read");
                    if etcd_ok {
                        tracing::warn!(error = %e, "cannot read partition states from etcd; retrying every tick");
                    }
                    etcd_ok = false;
                }
            }
            if cluster.cast(ClusterMsg::Topic(view)).is_err() {
                return;
            }
        }
    }))
}
