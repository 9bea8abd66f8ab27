//! What every actor of a worker shares, read-only: settings, clients, metrics.

use crate::consumer::{consumer_config, ConsumerHandle};
use crate::error::{Result, WorkerError};
use crate::metrics::Metrics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sawmill_common::analytics::AnalyticsConfig;
use sawmill_common::checkpoint::Checkpoints;
use sawmill_common::settings::PipelineSettings;
use sawmill_common::shard::ParquetOptions;
use sawmill_common::storage::Storage;
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
    pub meta: Arc<BaseConsumer>,
    pub metrics: Metrics,
    /// One lock per partition, held by a commit in flight. A restarted partition pipeline takes
    /// it before recovery, so a commit left running by a failed incarnation settles first and
    /// recovery never deletes files that commit is about to reference.
    commit_locks: std::sync::Mutex<std::collections::HashMap<i32, Arc<tokio::sync::Mutex<()>>>>,
}

impl WorkerContext {
    /// Connects to everything the settings name, failing fast with a clear error on bad config.
    pub async fn connect(worker_id: String, settings: PipelineSettings) -> Result<Arc<Self>> {
        settings.validate()?;
        let parquet = settings.parquet()?;
        let analytics = settings.analytics();
        let output = settings.output.clone();
        let storage = tokio::task::spawn_blocking(move || sawmill_common::storage::open(&output))
            .await
            .map_err(|e| WorkerError::Actor(e.to_string()))??;
        let checkpoints = Checkpoints::connect(&settings.etcd, settings.pipeline_name()).await?;
        let group = format!("sawmill-{}", settings.pipeline_name());
        let meta: BaseConsumer = consumer_config(&settings.bootstrap_servers, &group).create()?;
        let meta = Arc::new(meta);
        {
            let meta = meta.clone();
            let (b, t) = (settings.bootstrap_servers.clone(), settings.topic.clone());
            tokio::task::spawn_blocking(move || crate::consumer::topic_partitions(&meta, &b, &t))
                .await
                .map_err(|e| WorkerError::Actor(e.to_string()))??;
        }
        let consumer =
            crate::consumer::spawn(&settings.bootstrap_servers, &settings.topic, &group)?;
        Ok(Arc::new(WorkerContext {
            worker_id,
            settings,
            parquet,
            analytics,
            storage,
            checkpoints,
            consumer,
            meta,
            metrics: Metrics::default(),
            commit_locks: Default::default(),
        }))
    }

    /// The topic's partitions now (new partitions appear here without a restart).
    pub async fn partitions(&self) -> Result<Vec<i32>> {
        let meta = self.meta.clone();
        let (b, t) = (
            self.settings.bootstrap_servers.clone(),
            self.settings.topic.clone(),
        );
        tokio::task::spawn_blocking(move || crate::consumer::topic_partitions(&meta, &b, &t))
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

    pub fn commit_lock(&self, partition: i32) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.commit_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(partition).or_default().clone()
    }

    pub async fn low_watermark(&self, partition: i32) -> Result<i64> {
        Ok(self.watermarks(partition).await?.0)
    }
}
