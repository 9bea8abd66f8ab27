//! The `worker` command. `worker run` layers its pipeline settings with
//! `sawmill_core::settings`: defaults, then `--config FILE`, then the environment (`SAWMILL_*`),
//! then flags; `worker join` takes them from the coordinator.

use crate::standalone::{self, StandaloneOptions};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sawmill_core::connection::{ConnectionFlags, CoordinatorAccess};
use sawmill_core::settings::{self, ConfigFile, ConfigFlag, PipelineFlags, PipelineSettings};
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
    // Boxed: the pipeline flags make it far larger than `Join` (clippy::large_enum_variant).
    Run(Box<RunArgs>),
    /// Join a coordinator and process the partitions it assigns, until SIGINT/SIGTERM.
    // Boxed too: with the connection and coordinator-access flags it is as large.
    Join(Box<JoinArgs>),
}

/// `worker join`: the pipeline settings come from the coordinator; these flags replace a few
/// of them as seen from this worker's host.
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The coordinators' gRPC addresses, host:port[,host:port...] (or one name resolving to
    /// several): the worker follows the leader among them.
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
    /// `[connection]` table of this file (the pipeline settings come from the coordinator).
    #[command(flatten)]
    pub config: ConfigFlag,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    #[command(flatten)]
    pub access: CoordinatorAccess,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigFlag,
    #[command(flatten)]
    pub pipeline: PipelineFlags,
    #[command(flatten)]
    pub connection: ConnectionFlags,
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

impl Cli {
    /// The command line, with every pipeline setting's default in its help.
    pub fn command_with_defaults() -> clap::Command {
        settings::with_defaults(
            Cli::command(),
            settings::PIPELINE_HEADING,
            &PipelineSettings::default(),
        )
    }
}

impl RunArgs {
    pub fn settings(&self) -> crate::Result<PipelineSettings> {
        let file = ConfigFile::load(self.config.config.as_deref())?;
        let mut settings = file.pipeline(&self.pipeline)?;
        settings.connection = file.connection(&self.connection)?;
        Ok(settings)
    }
}

pub fn main() -> ExitCode {
    let matches = Cli::command_with_defaults().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    sawmill_common::process::run_main("info", async {
        sawmill_common::failpoints::arm_from_env()?;
        match cli.command {
            Command::Run(args) => {
                let settings = args.settings()?;
                let opts = StandaloneOptions {
                    worker_id: args.worker_id.unwrap_or_else(default_worker_id),
                    partitions: args.partitions,
                    until_caught_up: args.until_caught_up,
                    metrics_listen: args.metrics_listen,
                };
                let report = standalone::run(settings, opts).await?;
                println!(
                    "committed {} shards, {} records, {} rejects in {:.2}s; next offsets {:?}",
                    report.shards,
                    report.records,
                    report.rejects,
                    report.elapsed.as_secs_f64(),
                    report.next_offsets
                );
                if report.files_rederived > 0 {
                    println!(
                        "re-derived {} lost committed files from Kafka (see the warnings above)",
                        report.files_rederived
                    );
                }
                Ok(())
            }
            Command::Join(args) => {
                let file = ConfigFile::load(args.config.config.as_deref())?;
                let connection = file.connection(&args.connection)?;
                let opts = crate::session::JoinOptions {
                    coordinator: args.coordinator,
                    worker_id: args.worker_id.unwrap_or_else(default_worker_id),
                    overrides: crate::session::SettingsOverrides {
                        bootstrap_servers: args.bootstrap_servers,
                        output: args.output,
                        etcd: args.etcd,
                        connection,
                    },
                    metrics_listen: args.metrics_listen,
                    access: args.access,
                    version: args
                        .report_version
                        .unwrap_or_else(|| sawmill_core::VERSION.to_string()),
                };
                crate::session::run(opts).await
            }
        }
    })
}
