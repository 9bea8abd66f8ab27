//! The coordinator's configuration: its own settings (`[coordinator]` in the config file) and the
//! pipeline's (`[pipeline]`), layered by `sawmill_core::settings::layer`: defaults → file →
//! environment (`SAWMILL_*`) → flags.

use crate::error::{CoordinatorError, Result};
use sawmill_core::settings::{layer, ConfigFile, PipelineFlags, PipelineSettings};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Everything `coordinator serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// gRPC address for workers (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// HTTP address of the JSON API and /metrics.
    pub http: String,
    /// Handed to every worker at Join; layered from `[pipeline]`, not from `[coordinator]`.
    #[serde(skip)]
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
    /// PEM certificate (chain) and key of the gRPC and HTTP listeners: TLS on both.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Workers must show a client certificate signed by this CA (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// With mutual TLS: patterns (`*` wildcards) one of a worker certificate's names (common
    /// name or DNS names) must match; empty allows any certificate the CA signed.
    pub allowed_workers: Vec<String>,
    /// A shared token (read from this file): every gRPC call, and every HTTP request but
    /// /healthz (and /metrics with `metrics_open`), must carry `authorization: Bearer TOKEN`.
    pub token_file: Option<PathBuf>,
    /// Serve /metrics without the token (for a Prometheus without credentials).
    pub metrics_open: bool,
    /// Allow the HTTP API on a non-loopback address without TLS and token.
    pub http_insecure: bool,
    /// HTTP requests served at once, and the time limit of each.
    pub http_max_concurrency: usize,
    pub http_timeout_ms: u64,
    /// The gRPC address workers and other coordinators reach this one at (`host:port`),
    /// stored in the leader key while it leads; by default the bound gRPC address (with the
    /// host name for an unspecified IP).
    pub advertise: Option<String>,
    /// TTL of the leader's lease (rounded up to whole seconds; etcd grants at least its own
    /// minimum): a leader that stops renewing is replaced after about this long.
    pub leader_ttl_ms: u64,
    /// A partition whose committed offset has not advanced for this long while it has lag is
    /// taken from its (live) owner: released, or fenced after the release timeout. 0 disables.
    pub progress_timeout_ms: u64,
}

/// The help heading under which the coordinator's own defaults are shown.
pub const COORDINATOR_HEADING: &str = "Coordinator settings";

/// The coordinator's own settings as flags; each also reads `SAWMILL_<NAME>`.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
#[command(next_help_heading = COORDINATOR_HEADING)]
pub struct CoordinatorFlags {
    /// gRPC address for workers; port 0 picks a free port.
    #[arg(long, env = "SAWMILL_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// HTTP address of the dashboard, JSON API and /metrics.
    #[arg(long, env = "SAWMILL_HTTP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// A worker silent this long is declared dead.
    #[arg(long, env = "SAWMILL_SESSION_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_timeout_ms: Option<u32>,
    /// How often workers heartbeat.
    #[arg(long, env = "SAWMILL_HEARTBEAT_INTERVAL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u32>,
    /// A live owner that has not released a moving partition after this long is fenced.
    #[arg(long, env = "SAWMILL_RELEASE_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_timeout_ms: Option<u64>,
    /// Period of the assignment tick.
    #[arg(long, env = "SAWMILL_TICK_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<u64>,
    /// Period of the merge poll of committed manifests.
    #[arg(long, env = "SAWMILL_MERGE_POLL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_poll_ms: Option<u64>,
    /// Summary tables are rewritten at most this often when they changed.
    #[arg(long, env = "SAWMILL_SUMMARY_INTERVAL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_interval_ms: Option<u64>,
    /// PEM certificate of the gRPC and HTTP listeners (turns TLS on, with --tls-key).
    #[arg(long, value_name = "PATH", env = "SAWMILL_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", env = "SAWMILL_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Require worker client certificates signed by this CA (mutual TLS).
    #[arg(long, value_name = "PATH", env = "SAWMILL_TLS_CLIENT_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,
    /// Worker certificate name patterns allowed to join (repeatable, `*` wildcards).
    #[arg(
        long = "allow-worker",
        value_name = "PATTERN",
        env = "SAWMILL_ALLOWED_WORKERS",
        value_delimiter = ','
    )]
    #[serde(rename = "allowed_workers", skip_serializing_if = "Vec::is_empty")]
    pub allowed_workers: Vec<String>,
    /// File holding the shared token every call must carry (never the token itself).
    #[arg(long, value_name = "PATH", env = "SAWMILL_TOKEN_FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Serve /metrics without the token.
    #[arg(long, env = "SAWMILL_METRICS_OPEN", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_open: Option<bool>,
    /// Allow the HTTP API on a non-loopback address without TLS and token.
    #[arg(long, env = "SAWMILL_HTTP_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_insecure: Option<bool>,
    /// HTTP requests served at once.
    #[arg(long, env = "SAWMILL_HTTP_MAX_CONCURRENCY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_max_concurrency: Option<usize>,
    /// Time limit of one HTTP request.
    #[arg(long, env = "SAWMILL_HTTP_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_timeout_ms: Option<u64>,
    /// The gRPC address workers reach this coordinator at, named to them while it leads
    /// (default: the bound --listen address; the host name for 0.0.0.0).
    #[arg(long, value_name = "HOST:PORT", env = "SAWMILL_ADVERTISE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// TTL of the leader's etcd lease: a standby takes over about this long after the leader
    /// stops renewing it.
    #[arg(long, env = "SAWMILL_LEADER_TTL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_ttl_ms: Option<u64>,
    /// Take a partition from its owner when its committed offset has not advanced for this
    /// long while it has lag (0 disables).
    #[arg(long, env = "SAWMILL_PROGRESS_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_timeout_ms: Option<u64>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            // Loopback by default: exposing the ports is a decision (with TLS and a token, see
            // docs/security.md).
            listen: "127.0.0.1:7000".into(),
            http: "127.0.0.1:7001".into(),
            pipeline: PipelineSettings::default(),
            session_timeout_ms: 3000,
            heartbeat_interval_ms: 500,
            release_timeout_ms: 30_000,
            tick_ms: 1000,
            merge_poll_ms: 500,
            summary_interval_ms: 2000,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            allowed_workers: Vec::new(),
            token_file: None,
            metrics_open: false,
            http_insecure: false,
            http_max_concurrency: 64,
            http_timeout_ms: 10_000,
            advertise: None,
            // etcd's smallest lease (2 s with its default timing): a takeover then lands well
            // within a worker's session timeout plus a second.
            leader_ttl_ms: 2000,
            // Far above a shard's age and commit time: only a partition that is really stuck.
            progress_timeout_ms: 120_000,
        }
    }
}

impl ServeConfig {
    /// Defaults → `file` → environment and flags, validated.
    pub fn layered(
        file: &ConfigFile,
        coordinator: &CoordinatorFlags,
        pipeline: &PipelineFlags,
    ) -> Result<Self> {
        let overrides = serde_json::to_value(coordinator)
            .map_err(|e| CoordinatorError::Config(format!("cannot read the flags: {e}")))?;
        let mut cfg: ServeConfig = layer(
            "coordinator",
            &ServeConfig::default(),
            file.table("coordinator"),
            &overrides,
        )?;
        cfg.pipeline = file.pipeline(pipeline)?;
        cfg.validate()?;
        Ok(cfg)
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

    /// The leader lease's TTL as etcd takes it: whole seconds.
    pub fn leader_ttl(&self) -> Duration {
        Duration::from_secs(self.leader_ttl_ms.div_ceil(1000).max(1))
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
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(CoordinatorError::Config(
                "--tls-cert and --tls-key go together: give both or neither".into(),
            ));
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(CoordinatorError::Config(
                "--tls-client-ca (mutual TLS) needs TLS: give --tls-cert and --tls-key".into(),
            ));
        }
        if !self.allowed_workers.is_empty() && self.tls_client_ca.is_none() {
            return Err(CoordinatorError::Config(
                "--allow-worker patterns match client certificates: give --tls-client-ca too"
                    .into(),
            ));
        }
        if self.leader_ttl_ms < 1000 {
            return Err(CoordinatorError::Config(format!(
                "--leader-ttl-ms {} is below etcd's lease granularity: give at least 1000",
                self.leader_ttl_ms
            )));
        }
        if self
            .advertise
            .as_deref()
            .is_some_and(|a| a.trim().is_empty() || a.contains(','))
        {
            return Err(CoordinatorError::Config(
                "--advertise must be one host:port".into(),
            ));
        }
        if self.http_max_concurrency == 0 || self.http_timeout_ms == 0 {
            return Err(CoordinatorError::Config(
                "--http-max-concurrency and --http-timeout-ms must be positive".into(),
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
        let file = ConfigFile::parse(
            "[pipeline]\ntopic = \"t1\"\nshard_max_rows = 7\n[coordinator]\nsession_timeout_ms = 9000\n",
            false,
        )
        .unwrap();
        let flags = CoordinatorFlags {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let c = ServeConfig::layered(&file, &flags, &PipelineFlags::default()).unwrap();
        assert_eq!(c.pipeline.topic, "t1");
        assert_eq!(c.pipeline.shard_max_rows, 7);
        assert_eq!(c.session_timeout_ms, 9000);
        assert_eq!(c.heartbeat_interval_ms, 500);
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.http, "127.0.0.1:7001");
    }

    #[test]
    fn unknown_coordinator_keys_are_refused() {
        let file = ConfigFile::parse("[coordinator]\nlisten_addr = \"x\"\n", false).unwrap();
        let err = ServeConfig::layered(&file, &Default::default(), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
        // A pipeline key in the coordinator table is a mistake too.
        let file = ConfigFile::parse("[coordinator]\ntopic = \"x\"\n", false).unwrap();
        assert!(ServeConfig::layered(&file, &Default::default(), &Default::default()).is_err());
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

    #[test]
    fn the_leader_ttl_is_whole_seconds_and_at_least_one() {
        let c = ServeConfig {
            leader_ttl_ms: 2500,
            ..Default::default()
        };
        assert_eq!(c.leader_ttl(), Duration::from_secs(3));
        assert_eq!(ServeConfig::default().leader_ttl(), Duration::from_secs(2));
        let short = ServeConfig {
            leader_ttl_ms: 500,
            ..Default::default()
        };
        assert!(short.validate().is_err());
    }
}
