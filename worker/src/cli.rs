//! The `worker` command. Settings come from defaults, then environment (`SAWMILL_*`), then flags.

use crate::standalone::{self, StandaloneOptions};
use clap::{Parser, Subcommand};
use sawmill_core::settings::PipelineSettings;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "worker",
    version,
    about = "Sawmill worker: Kafka partitions → Parquet shards, exactly once."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process given partitions directly, without a coordinator.
    Run(RunArgs),
    /// Join a coordinator and process the partitions it assigns, until SIGINT/SIGTERM.
    Join(JoinArgs),
}

/// `worker join`: the pipeline settings come from the coordinator; these flags replace a few
/// of them as seen from this worker's host.
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The coordinator's gRPC address, host:port.
    #[arg(long, env = "SAWMILL_COORDINATOR", default_value = "localhost:7000")]
    pub coordinator: String,
    /// This worker's id (default: hostname-pid). Joining with an id already registered
    /// replaces that registration.
    #[arg(long, env = "SAWMILL_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Kafka bootstrap servers as seen from this host (default: the coordinator's setting).
    #[arg(long)]
    pub bootstrap_servers: Option<String>,
    /// Output root as seen from this host (default: the coordinator's setting).
    #[arg(long)]
    pub output: Option<String>,
    /// etcd endpoints as seen from this host (default: the coordinator's setting).
    #[arg(long)]
    pub etcd: Option<String>,
    /// Serve this worker's Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "SAWMILL_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The version reported at Join (tests of the version check only).
    #[arg(long, hide = true)]
    pub report_version: Option<String>,
}

/// Pipeline settings as flags; each also reads `SAWMILL_<NAME>` from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
    #[arg(
        long,
        env = "SAWMILL_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    #[arg(long, env = "SAWMILL_TOPIC", default_value = "kafka_test")]
    pub topic: String,
    /// Output root: a local path or hdfs://host:port/path.
    #[arg(long, env = "SAWMILL_OUTPUT", default_value = "./sawmill-out")]
    pub output: String,
    #[arg(long, env = "SAWMILL_ETCD", default_value = "http://localhost:2379")]
    pub etcd: String,
    /// etcd subtree name (default: the topic).
    #[arg(long, env = "SAWMILL_PIPELINE")]
    pub pipeline: Option<String>,
    #[arg(long, env = "SAWMILL_SHARD_MAX_ROWS", default_value_t = 500_000)]
    pub shard_max_rows: u64,
    #[arg(long, env = "SAWMILL_SHARD_MAX_BYTES", default_value_t = 64 << 20)]
    pub shard_max_bytes: u64,
    #[arg(long, env = "SAWMILL_SHARD_MAX_AGE_MS", default_value_t = 10_000)]
    pub shard_max_age_ms: u64,
    #[arg(long, env = "SAWMILL_COMPRESSION", default_value = "zstd")]
    pub compression: String,
}

impl PipelineArgs {
    pub fn settings(&self) -> PipelineSettings {
        PipelineSettings {
            bootstrap_servers: self.bootstrap_servers.clone(),
            topic: self.topic.clone(),
            output: self.output.clone(),
            etcd: self.etcd.clone(),
            pipeline: self.pipeline.clone(),
            shard_max_rows: self.shard_max_rows,
            shard_max_bytes: self.shard_max_bytes,
            shard_max_age_ms: self.shard_max_age_ms,
            compression: self.compression.clone(),
            ..PipelineSettings::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Partitions to own, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// This worker's id (default: hostname-pid).
    #[arg(long, env = "SAWMILL_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Exit once everything that was in the partitions at start is committed (the last shard of
    /// each partition is committed as soon as it reaches that end, without the idle wait).
    #[arg(long)]
    pub until_caught_up: bool,
    /// Serve this worker's Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long, env = "SAWMILL_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
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
            Command::Run(args) => {
                let opts = StandaloneOptions {
                    worker_id: args.worker_id.unwrap_or_else(default_worker_id),
                    partitions: args.partitions,
                    until_caught_up: args.until_caught_up,
                    metrics_listen: args.metrics_listen,
                };
                let report = standalone::run(args.pipeline.settings(), opts).await?;
                println!(
                    "committed {} shards, {} records, {} rejects in {:.2}s; next offsets {:?}",
                    report.shards,
                    report.records,
                    report.rejects,
                    report.elapsed.as_secs_f64(),
                    report.next_offsets
                );
                Ok(())
            }
            Command::Join(args) => {
                let opts = crate::session::JoinOptions {
                    coordinator: args.coordinator,
                    worker_id: args.worker_id.unwrap_or_else(default_worker_id),
                    overrides: crate::session::SettingsOverrides {
                        bootstrap_servers: args.bootstrap_servers,
                        output: args.output,
                        etcd: args.etcd,
                    },
                    metrics_listen: args.metrics_listen,
                    version: args
                        .report_version
                        .unwrap_or_else(|| sawmill_core::VERSION.to_string()),
                };
                crate::session::run(opts).await
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
