//! The `coordinator` command. Configuration is layered: defaults, then `--config FILE` (JSON),
//! then the environment (`SAWMILL_*`), then flags.

use crate::config::ServeConfig;
use crate::error::Result;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "coordinator",
    version,
    about = "Sawmill coordinator: assigns Kafka partitions to workers, merges their results."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve workers (gRPC) and the status/analytics API (HTTP) until SIGINT/SIGTERM.
    Serve(ServeArgs),
}

/// Every flag also reads `SAWMILL_<NAME>`; only values given override the config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// JSON file with any of the settings below (snake_case names), applied before env and flags.
    #[arg(long, env = "SAWMILL_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC address for workers [default: 0.0.0.0:7000]; port 0 picks a free port.
    #[arg(long, env = "SAWMILL_LISTEN")]
    pub listen: Option<String>,
    /// HTTP address of the JSON API and /metrics [default: 0.0.0.0:7001].
    #[arg(long, env = "SAWMILL_HTTP")]
    pub http: Option<String>,
    /// Kafka bootstrap servers as workers should see them [default: localhost:9092].
    #[arg(long, env = "SAWMILL_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    #[arg(long, env = "SAWMILL_TOPIC")]
    pub topic: Option<String>,
    /// Output root: a local path or hdfs://host:port/path.
    #[arg(long, env = "SAWMILL_OUTPUT")]
    pub output: Option<String>,
    /// etcd endpoints [default: http://localhost:2379].
    #[arg(long, env = "SAWMILL_ETCD")]
    pub etcd: Option<String>,
    /// etcd subtree name (default: the topic).
    #[arg(long, env = "SAWMILL_PIPELINE")]
    pub pipeline: Option<String>,
    #[arg(long, env = "SAWMILL_SHARD_MAX_ROWS")]
    pub shard_max_rows: Option<u64>,
    #[arg(long, env = "SAWMILL_SHARD_MAX_BYTES")]
    pub shard_max_bytes: Option<u64>,
    #[arg(long, env = "SAWMILL_SHARD_MAX_AGE_MS")]
    pub shard_max_age_ms: Option<u64>,
    #[arg(long, env = "SAWMILL_COMPRESSION")]
    pub compression: Option<String>,
    /// A worker silent this long is declared dead [default: 3000].
    #[arg(long, env = "SAWMILL_SESSION_TIMEOUT_MS")]
    pub session_timeout_ms: Option<u32>,
    /// How often workers heartbeat [default: 500].
    #[arg(long, env = "SAWMILL_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u32>,
    /// A live owner that has not released a moving partition after this long is fenced
    /// [default: 30000].
    #[arg(long, env = "SAWMILL_RELEASE_TIMEOUT_MS")]
    pub release_timeout_ms: Option<u64>,
    /// Summary tables are rewritten at most this often when they changed [default: 2000].
    #[arg(long, env = "SAWMILL_SUMMARY_INTERVAL_MS")]
    pub summary_interval_ms: Option<u64>,
}

impl ServeArgs {
    /// Defaults → file → (environment and flags, as clap resolved them).
    pub fn config(&self) -> Result<ServeConfig> {
        let mut c = match &self.config {
            Some(path) => ServeConfig::from_file(path)?,
            None => ServeConfig::default(),
        };
        fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *dst = v.clone();
            }
        }
        set(&mut c.listen, &self.listen);
        set(&mut c.http, &self.http);
        let p = &mut c.pipeline;
        set(&mut p.bootstrap_servers, &self.bootstrap_servers);
        set(&mut p.topic, &self.topic);
        set(&mut p.output, &self.output);
        set(&mut p.etcd, &self.etcd);
        if self.pipeline.is_some() {
            p.pipeline = self.pipeline.clone();
        }
        set(&mut p.shard_max_rows, &self.shard_max_rows);
        set(&mut p.shard_max_bytes, &self.shard_max_bytes);
        set(&mut p.shard_max_age_ms, &self.shard_max_age_ms);
        set(&mut p.compression, &self.compression);
        set(&mut c.session_timeout_ms, &self.session_timeout_ms);
        set(&mut c.heartbeat_interval_ms, &self.heartbeat_interval_ms);
        set(&mut c.release_timeout_ms, &self.release_timeout_ms);
        set(&mut c.summary_interval_ms, &self.summary_interval_ms);
        c.validate()?;
        Ok(c)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    sawmill_common::process::init_tracing("info");
    let rt = match sawmill_common::process::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                let cfg = args.config()?;
                let handle = crate::serve(cfg, sawmill_common::process::shutdown_signal()).await?;
                // One parseable line on stdout, for scripts and tests that bind port 0.
                println!("listening grpc={} http={}", handle.grpc, handle.http);
                let _ = std::io::stdout().flush();
                handle.wait().await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("sawmill-coord-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.json");
        std::fs::write(
            &f,
            r#"{"topic": "from-file", "listen": "127.0.0.1:9", "shard_max_rows": 5}"#,
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(f),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let c = args.config().unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.pipeline.topic, "from-file");
        assert_eq!(c.pipeline.shard_max_rows, 5);
        assert_eq!(c.http, "0.0.0.0:7001");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
