//! `sawmill summarize`: merges every shard a cluster pipeline has committed (manifests in etcd,
//! partial aggregates on storage) and writes the `summary/` tables, exactly as `sawmill run`
//! would for the same lines. The coordinator does this continuously; this command does it once.

use crate::{show, CliError};
use sawmill_common::committed::merge_committed;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::{storage, summary};
use sawmill_core::connection::ConnectionFlags;
use sawmill_core::settings::{ConfigFile, ConfigFlag, PipelineFlags};

#[derive(Debug, clap::Args)]
pub struct SummarizeArgs {
    #[command(flatten)]
    pub config: ConfigFlag,
    /// The pipeline's settings (the same file or flags as its coordinator's); the output root,
    /// etcd, topic or pipeline name and the encoding are used.
    #[command(flatten)]
    pub pipeline: PipelineFlags,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    /// Rows shown in each top-N table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn execute(args: SummarizeArgs) -> Result<(), CliError> {
    let file = ConfigFile::load(args.config.config.as_deref())?;
    let settings = file.pipeline(&args.pipeline)?;
    let conn = file.connection(&args.connection)?;
    let parquet = settings.parquet()?;
    let (out, committed) = crate::io_runtime()?.block_on(async {
        let out = storage::open_with(&settings.output, &conn).await?;
        let mut etcd =
            Checkpoints::connect_with(&settings.etcd, settings.pipeline_name(), &conn.etcd_auth()?)
                .await?;
        let committed = merge_committed(&mut etcd, out.clone(), &settings.analytics()).await?;
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
