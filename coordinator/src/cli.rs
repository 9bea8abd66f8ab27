//! The `coordinator` command. Settings are layered by `sawmill_core::settings`: defaults, then
//! `--config FILE` (`[coordinator]` and `[pipeline]` tables), then the environment (`SAWMILL_*`),
//! then flags.

use crate::config::{CoordinatorFlags, ServeConfig, COORDINATOR_HEADING};
use crate::error::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sawmill_core::connection::ConnectionFlags;
use sawmill_core::settings::{self, ConfigFile, ConfigFlag, PipelineFlags, PipelineSettings};
use std::io::Write;
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

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigFlag,
    #[command(flatten)]
    pub coordinator: CoordinatorFlags,
    #[command(flatten)]
    pub pipeline: PipelineFlags,
    #[command(flatten)]
    pub connection: ConnectionFlags,
}

impl ServeArgs {
    /// Defaults → file → (environment and flags, as clap resolved them).
    pub fn config(&self) -> Result<ServeConfig> {
        let file = ConfigFile::load(self.config.config.as_deref())?;
        let mut cfg = ServeConfig::layered(&file, &self.coordinator, &self.pipeline)?;
        cfg.pipeline.connection = file.connection(&self.connection)?;
        Ok(cfg)
    }
}

impl Cli {
    /// The command line, with every setting's default in its help.
    pub fn command_with_defaults() -> clap::Command {
        let cmd = settings::with_defaults(
            Cli::command(),
            settings::PIPELINE_HEADING,
            &PipelineSettings::default(),
        );
        settings::with_defaults(cmd, COORDINATOR_HEADING, &ServeConfig::default())
    }

    pub fn parse_with_defaults() -> Self {
        let matches = Self::command_with_defaults().get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse_with_defaults();
    sawmill_common::process::run_main("info", async {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[pipeline]\ntopic = \"from-file\"\nshard_max_rows = 5\n[coordinator]\nlisten = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let matches = Cli::command_with_defaults()
            .try_get_matches_from([
                "coordinator",
                "serve",
                "--config",
                f.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .unwrap();
        let Command::Serve(args) = Cli::from_arg_matches(&matches).unwrap().command;
        let c = args.config().unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.pipeline.topic, "from-file");
        assert_eq!(c.pipeline.shard_max_rows, 5);
        assert_eq!(c.http, "127.0.0.1:7001");
    }

    #[test]
    fn help_shows_both_tables_defaults() {
        let mut cmd = Cli::command_with_defaults();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_help().to_string();
        assert!(help.contains("Coordinator settings"), "{help}");
        assert!(help.contains("[default: 3000]"), "{help}");
        assert!(help.contains("[default: 127.0.0.1:7000]"), "{help}");
        assert!(help.contains("[default: 500000]"), "{help}");
    }

    #[test]
    fn switches_take_no_value() {
        let cli =
            Cli::try_parse_from(["coordinator", "serve", "--http-insecure", "--metrics-open"])
                .expect("bare switches parse");
        let Command::Serve(args) = cli.command;
        assert_eq!(args.coordinator.http_insecure, Some(true));
        assert_eq!(args.coordinator.metrics_open, Some(true));
    }
}
