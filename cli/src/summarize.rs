//! `sawmill summarize`: merges every shard a cluster pipeline has committed (manifests in etcd,
//! partial aggregates on storage) and writes the `summary/` tables, exactly as `sawmill run`
//! would for the same lines. The coordinator does this continuously; this command does it once.

use crate::{show, CliError};
use sawmill_common::committed::merge_committed;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::{storage, summary};
use sawmill_core::settings::PipelineSettings;

#[derive(Debug, clap::Args)]
pub struct SummarizeArgs {
    /// Output root of the pipeline: a local path or hdfs://host:port/path.
    #[arg(long, env = "SAWMILL_OUTPUT")]
    pub output: String,
    #[arg(long, env = "SAWMILL_ETCD", default_value = "http://localhost:2379")]
    pub etcd: String,
    #[arg(long, env = "SAWMILL_TOPIC", default_value = "kafka_test")]
    pub topic: String,
    /// etcd subtree name (default: the topic).
    #[arg(long, env = "SAWMILL_PIPELINE")]
    pub pipeline: Option<String>,
    /// Rows shown in each top-N table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn execute(args: SummarizeArgs) -> Result<(), CliError> {
    let settings = PipelineSettings {
        topic: args.topic.clone(),
        pipeline: args.pipeline.clone(),
        etcd: args.etcd.clone(),
        output: args.output.clone(),
        ..PipelineSettings::default()
    };
    let parquet = settings.parquet()?;
    let (out, committed) = crate::io_runtime()?.block_on(async {
        let out = storage::open(&args.output).await?;
        let mut cp = Checkpoints::connect(&settings.etcd, settings.pipeline_name()).await?;
        let committed = merge_committed(&mut cp, out.clone(), &settings.analytics()).await?;
        // Encoding (CPU work) inline is fine: `block_on` polls this future on the calling
        // thread, not on one of the runtime's threads.
        let tables = summary::encode(&committed.partial, &parquet)?;
        summary::write(out.as_ref(), tables).await?;
        Ok::<_, CliError>((out, committed))
    })?;
    if !args.quiet {
        println!(
            "merged {} committed shards ({} records, {} rejects; next offsets {:?}) into {}/summary",
            committed.shards,
            committed.partial.records(),
            committed.partial.rejects(),
            committed.next_offsets,
            out.root()
        );
        println!();
        print!("{}", show::headline(&committed.partial, args.top)?);
    }
    Ok(())
}
