//! The `sawmill` command's library: argument parsing ([`Cli`]) and one module per subcommand.
//!
//! - [`run`]: the embedded end-to-end run over local files.
//! - [`generate`]: synthetic access logs for scale tests and benchmarks.
//! - [`produce`]: streams a log file into a Kafka topic, one message per line.
//! - [`summarize`]: merges a cluster pipeline's committed partials into `summary/`.
//! - [`show`]: renders the headline analytics as terminal tables.
//! - [`status`]: a coordinator's workers, partitions, lag and throughput.
//! - [`report`]: the EDA report (tables and charts) from an output root's summary tables.
//! - [`verify`]: checks a pipeline's output against its topic: every line exactly once, summary exact.

pub mod generate;
pub mod produce;
pub mod report;
pub mod run;
pub mod show;
pub mod status;
pub mod summarize;
pub mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sawmill",
    version,
    about = "Access-log analytics: parse, aggregate, write Parquet."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process log files end to end on this machine (no Kafka, HDFS or etcd needed).
    Run(run::RunArgs),
    /// Write realistic synthetic access logs.
    Generate(generate::GenerateArgs),
    /// Merge every committed shard of a cluster pipeline into the summary tables.
    Summarize(summarize::SummarizeArgs),
    /// Produce a log file into a Kafka topic, one message per line.
    Produce(produce::ProduceArgs),
    /// Build the EDA report (the notebook's tables and charts) from an output root.
    Report(report::ReportArgs),
    /// Show a cluster's workers, partitions, lag and throughput (asks the coordinator).
    Status(status::StatusArgs),
    /// Check a pipeline's output against its topic: every line in exactly one row, summary exact.
    Verify(verify::VerifyArgs),
}

/// Errors of the `sawmill` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Common(#[from] sawmill_common::Error),
    #[error(transparent)]
    Report(#[from] sawmill_report::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// A Kafka failure; the message says what went wrong and what to check or do next.
    #[error("{0}")]
    Kafka(String),
    /// A coordinator failure (`sawmill status`); the message says what to check.
    #[error("{0}")]
    Coordinator(String),
    /// `sawmill produce --oversized fail` met lines larger than the broker accepts (every other
    /// line was delivered); exits with [`CliError::OVERSIZED_EXIT`].
    #[error("{0}")]
    Oversized(String),
    /// `sawmill verify` found problems (the report says which) or could not start.
    #[error("{0}")]
    Verify(String),
    /// A command refused to destroy what something else still needs (`produce --reset` on a
    /// topic with pipeline state, `run --output` on a cluster's root); the message says how.
    #[error("{0}")]
    Refused(String),
}

impl CliError {
    /// The exit status of `sawmill produce` when lines were too large (documented in README.md).
    pub const OVERSIZED_EXIT: u8 = 3;

    /// The process exit status for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Oversized(_) => ExitCode::from(Self::OVERSIZED_EXIT),
            _ => ExitCode::FAILURE,
        }
    }
}

/// The runtime storage calls run on. Multi-threaded, because plain threads (`sawmill run`'s
/// parsers) block on its handle and only runtime threads drive the I/O.
fn io_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    sawmill_common::process::runtime()
        .map_err(|e| CliError::Common(sawmill_common::Error::Pipeline(e)))
}

impl From<sawmill_core::Error> for CliError {
    fn from(e: sawmill_core::Error) -> Self {
        CliError::Common(e.into())
    }
}

impl Cli {
    /// The command line, with every pipeline setting's default in its help.
    pub fn command_with_defaults() -> clap::Command {
        use clap::CommandFactory;
        sawmill_core::settings::with_defaults(
            Cli::command(),
            sawmill_core::settings::PIPELINE_HEADING,
            &sawmill_core::settings::PipelineSettings::default(),
        )
    }
}

pub fn main() -> ExitCode {
    use clap::FromArgMatches;
    let matches = Cli::command_with_defaults().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    sawmill_common::process::init_tracing("warn");
    let result = match cli.command {
        Command::Run(args) => run::execute(args),
        Command::Generate(args) => generate::execute(args),
        Command::Produce(args) => produce::execute(args),
        Command::Summarize(args) => summarize::execute(args),
        Command::Report(args) => report::execute(args),
        Command::Status(args) => status::execute(args),
        Command::Verify(args) => verify::execute(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
