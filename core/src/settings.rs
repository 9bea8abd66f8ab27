//! The settings of one pipeline (topic → output), shared by the worker, the coordinator and the
//! `sawmill` command. Serializable, because the coordinator hands them to joining workers.

use crate::error::{Error, Result};
use crate::shard::ParquetOptions;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineSettings {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub bootstrap_servers: String,
    pub topic: String,
    /// Output root: a local path or `hdfs://host:port/path`.
    pub output: String,
    /// etcd endpoints, `http://host:port[,...]`.
    pub etcd: String,
    /// Name of the pipeline's etcd subtree (`/sawmill/<pipeline>/`); defaults to the topic.
    pub pipeline: Option<String>,
    /// A shard is cut when it holds this many lines...
    pub shard_max_rows: u64,
    /// ...or this many bytes of input...
    pub shard_max_bytes: u64,
    /// ...or has been open this long...
    pub shard_max_age_ms: u64,
    /// ...or has received nothing for this long (a partition gone quiet commits promptly).
    pub shard_idle_ms: u64,
    /// Parquet compression (`zstd`, `snappy`, `lz4`, `none`, `zstd:N`).
    pub compression: String,
    pub row_group_rows: usize,
    /// Count a missing size as 0 in content statistics (the original's meaning).
    pub missing_size_as_zero: bool,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            bootstrap_servers: "localhost:9092".into(),
            topic: "kafka_test".into(),
            output: "./sawmill-out".into(),
            etcd: "http://localhost:2379".into(),
            pipeline: None,
            shard_max_rows: 500_000,
            shard_max_bytes: 64 << 20,
            shard_max_age_ms: 10_000,
            shard_idle_ms: 1_000,
            compression: "zstd".into(),
            row_group_rows: 128 * 1024,
            missing_size_as_zero: true,
        }
    }
}

impl PipelineSettings {
    pub fn pipeline_name(&self) -> &str {
        self.pipeline.as_deref().unwrap_or(&self.topic)
    }

    pub fn shard_max_age(&self) -> Duration {
        Duration::from_millis(self.shard_max_age_ms.max(1))
    }

    pub fn shard_idle(&self) -> Duration {
        Duration::from_millis(self.shard_idle_ms.clamp(1, self.shard_max_age_ms.max(1)))
    }

    pub fn parquet(&self) -> Result<ParquetOptions> {
        Ok(ParquetOptions {
            compression: ParquetOptions::parse_compression(&self.compression)?,
            row_group_rows: self.row_group_rows,
        })
    }

    pub fn analytics(&self) -> crate::analytics::AnalyticsConfig {
        crate::analytics::AnalyticsConfig {
            missing_size_as_zero: self.missing_size_as_zero,
            ..Default::default()
        }
    }

    /// Rejects settings that can never work, with what to change.
    pub fn validate(&self) -> Result<()> {
        if self.topic.trim().is_empty() {
            return Err(Error::Config("the topic is empty: pass --topic".into()));
        }
        if self.bootstrap_servers.trim().is_empty() {
            return Err(Error::Config(
                "no Kafka bootstrap servers: pass --bootstrap-servers host:9092".into(),
            ));
        }
        if self.shard_max_rows == 0 || self.shard_max_bytes == 0 {
            return Err(Error::Config("shard limits must be positive".into()));
        }
        self.parquet()?;
        Ok(())
    }
}
