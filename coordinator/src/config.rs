//! The coordinator's configuration, layered: built-in defaults, then a JSON file (`--config`),
//! then the environment (`SAWMILL_*`), then flags. clap reads flags and environment together
//! (a flag wins over its variable), and only values actually given override the file.

use crate::error::{CoordinatorError, Result};
use sawmill_core::settings::PipelineSettings;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Everything `coordinator serve` needs. The pipeline settings are flattened, so a config file
/// is one JSON object: `{"listen": "0.0.0.0:7000", "topic": "logs", "shard_max_rows": 20000}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    /// gRPC address for workers (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// HTTP address of the JSON API and /metrics.
    pub http: String,
    /// Handed to every worker at Join.
    #[serde(flatten)]
    pub pipeline: PipelineSettings,
    /// A worker silent this long is declared dead and its partitions move.
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    /// A live owner that has not released a moving partition after this long is fenced anyway.
    pub release_timeout_ms: u64,
    /// Period of the assignment tick, which also re-reads the topic's partitions and offsets.
    pub tick_ms: u64,
    /// Period of the merge actor's poll of committed manifests.
    pub merge_poll_ms: u64,
    /// Summary tables are rewritten at most this often (and on shutdown) when they changed.
    pub summary_interval_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "0.0.0.0:7000".into(),
            http: "0.0.0.0:7001".into(),
            pipeline: PipelineSettings::default(),
            session_timeout_ms: 3000,
            heartbeat_interval_ms: 500,
            release_timeout_ms: 30_000,
            tick_ms: 1000,
            merge_poll_ms: 500,
            summary_interval_ms: 2000,
        }
    }
}

impl ServeConfig {
    /// Defaults overlaid with the JSON file at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CoordinatorError::Config(format!(
                "cannot read config file {}: {e} (check the --config path)",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            CoordinatorError::Config(format!(
                "config file {} is not valid JSON for the coordinator: {e} (see coordinator serve --help for field names)",
                path.display()
            ))
        })
    }

    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.session_timeout_ms))
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.heartbeat_interval_ms))
    }

    pub fn release_timeout(&self) -> Duration {
        Duration::from_millis(self.release_timeout_ms)
    }

    /// Rejects settings that cannot work, saying what to change.
    pub fn validate(&self) -> Result<()> {
        self.pipeline.validate()?;
        if self.heartbeat_interval_ms == 0 || self.session_timeout_ms == 0 {
            return Err(CoordinatorError::Config(
                "heartbeat interval and session timeout must be positive".into(),
            ));
        }
        if self.session_timeout_ms < 2 * self.heartbeat_interval_ms {
            return Err(CoordinatorError::Config(format!(
                "--session-timeout-ms {} must be at least twice --heartbeat-interval-ms {}, or live workers get declared dead",
                self.session_timeout_ms, self.heartbeat_interval_ms
            )));
        }
        if self.tick_ms == 0 || self.merge_poll_ms == 0 {
            return Err(CoordinatorError::Config(
                "tick and merge poll periods must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("sawmill-coord-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.json");
        std::fs::write(
            &f,
            r#"{"topic": "t1", "shard_max_rows": 7, "session_timeout_ms": 9000}"#,
        )
        .unwrap();
        let c = ServeConfig::from_file(&f).unwrap();
        assert_eq!(c.pipeline.topic, "t1");
        assert_eq!(c.pipeline.shard_max_rows, 7);
        assert_eq!(c.session_timeout_ms, 9000);
        assert_eq!(c.heartbeat_interval_ms, 500);
        assert_eq!(c.listen, "0.0.0.0:7000");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validate_rejects_a_timeout_shorter_than_two_heartbeats() {
        let c = ServeConfig {
            session_timeout_ms: 600,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("at least twice"), "{e}");
        assert!(ServeConfig::default().validate().is_ok());
    }
}
