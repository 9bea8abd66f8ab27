//! What every actor of a worker shares, read-only: settings, clients, metrics.

use crate::consumer::ConsumerHandle;
use crate::error::{Result, WorkerError};
use crate::kafka::{create_consumer_with, topic_partitions, KafkaConsumer};
use crate::metrics::Metrics;
use rdkafka::consumer::Consumer;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::storage::Storage;
use sawmill_core::analytics::AnalyticsConfig;
use sawmill_core::settings::PipelineSettings;
use sawmill_core::shard::ParquetOptions;
use std::sync::Arc;
use std::time::Duration;

pub struct WorkerContext {
    pub worker_id: String,
    pub settings: PipelineSettings,
    pub parquet: ParquetOptions,
    pub analytics: AnalyticsConfig,
    pub storage: Arc<dyn Storage>,
    pub checkpoints: Checkpoints,
    pub consumer: ConsumerHandle,
    /// A separate client for metadata and watermarks, so queries never wait behind fetches.
    pub meta: Arc<KafkaConsumer>,
    pub metrics: Metrics,
    /// One gate per partition: every commit in flight holds it shared; a starting partition
    /// pipeline takes it exclusively for recovery, so commits left running by a failed
    /// incarnation settle first and recovery never deletes files they are about to reference.
    commit_gates: std::sync::Mutex<std::collections::HashMap<i32, Arc<tokio::sync::RwLock<()>>>>,
}

impl WorkerContext {
    /// Connects to everything the settings name, failing fast with a clear error on bad config.
    pub async fn connect(worker_id: String, settings: PipelineSettings) -> Result<Arc<Self>> {
        settings.validate()?;
        let t0 = std::time::Instant::now();
        let parquet = settings.parquet()?;
        let analytics = settings.analytics();
        let conn = &settings.connection;
        let kafka_properties = conn.kafka_client_properties()?;
        let storage = sawmill_common::storage::open_with(&settings.output, conn).await?;
        let t_storage = t0.elapsed();
        let checkpoints =
            Checkpoints::connect_with(&settings.etcd, settings.pipeline_name(), &conn.etcd_auth()?)
                .await?;
        let t_etcd = t0.elapsed();
        let group = format!("sawmill-{}", settings.pipeline_name());
        let meta = Arc::new(create_consumer_with(
            &settings.bootstrap_servers,
            &group,
            &kafka_properties,
        )?);
        {
            let meta = meta.clone();
            let (bootstrap, topic) = (settings.bootstrap_servers.clone(), settings.topic.clone());
            tokio::task::spawn_blocking(move || topic_partitions(&meta, &bootstrap, &topic))
                .await
                .map_err(|e| WorkerError::Actor(e.to_string()))??;
        }
        let metrics = Metrics::default();
        let consumer = crate::consumer::spawn_with(
            &settings.bootstrap_servers,
            &settings.topic,
            &group,
            metrics.health(),
            &kafka_properties,
        )?;
        tracing::debug!(
            storage_ms = t_storage.as_millis() as u64,
            etcd_ms = (t_etcd - t_storage).as_millis() as u64,
            kafka_ms = (t0.elapsed() - t_etcd).as_millis() as u64,
            "connected"
        );
        Ok(Arc::new(WorkerContext {
            worker_id,
            settings,
            parquet,
            analytics,
            storage,
            checkpoints,
            consumer,
            meta,
            metrics,
            commit_gates: Default::default(),
        }))
    }

    /// The topic's partitions now (new partitions appear here without a restart).
    pub async fn partitions(&self) -> Result<Vec<i32>> {
        let meta = self.meta.clone();
        let (bootstrap, topic) = (
            self.settings.bootstrap_servers.clone(),
            self.settings.topic.clone(),
        );
        tokio::task::spawn_blocking(move || topic_partitions(&meta, &bootstrap, &topic))
            .await
            .map_err(|e| WorkerError::Actor(e.to_string()))?
    }

    /// `(low, high)` watermarks of a partition.
    pub async fn watermarks(&self, partition: i32) -> Result<(i64, i64)> {
        let meta = self.meta.clone();
        let topic = self.settings.topic.clone();
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(10);
            meta.fetch_watermarks(&topic, partition, timeout)
                .or_else(|_| {
                    // A partition added after start is unknown to the cached metadata: refresh once.
                    let _ = meta.fetch_metadata(Some(&topic), timeout);
                    meta.fetch_watermarks(&topic, partition, timeout)
                })
        })
        .await
        .map_err(|e| WorkerError::Actor(e.to_string()))?
        .map_err(|e| {
            WorkerError::Kafka(format!(
                "cannot read watermarks of partition {partition}: {e}"
            ))
        })
    }

    pub fn commit_gate(&self, partition: i32) -> Arc<tokio::sync::RwLock<()>> {
        let mut gates = self.commit_gates.lock().unwrap_or_else(|e| e.into_inner());
        gates.entry(partition).or_default().clone()
    }

    pub async fn low_watermark(&self, partition: i32) -> Result<i64> {
        Ok(self.watermarks(partition).await?.0)
    }
}
