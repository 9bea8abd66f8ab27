//! `sawmill run FILE...`: the embedded default, one command from log files to Parquet and
//! analytics on this machine.

use crate::{show, CliError};
use indicatif::{ProgressBar, ProgressStyle};
use sawmill_common::embedded::input::InputSpec;
use sawmill_common::embedded::pipeline::{self, Progress, RunConfig};
use sawmill_common::storage;
use sawmill_core::connection::ConnectionFlags;
use sawmill_core::layout;
use sawmill_core::settings::{ConfigFile, ConfigFlag, OutputFlags, PipelineFlags};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Log files (plain or gzip), or `-` for stdin.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Parser threads (default: all cores).
    #[arg(long, env = "SAWMILL_THREADS")]
    pub threads: Option<usize>,
    /// Input chunk size in MiB; each chunk becomes one shard per date it covers.
    #[arg(long, default_value_t = 16)]
    pub chunk_mib: usize,
    /// Fail (naming the file) when a gzip input decompresses to more than this many bytes;
    /// off by default. A guard against decompression bombs.
    #[arg(long, env = "SAWMILL_MAX_DECOMPRESSED_BYTES", value_name = "BYTES")]
    pub max_decompressed_bytes: Option<u64>,
    /// Rows shown in each top-N table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub config: ConfigFlag,
    /// Where and how: `records/`, `rejects/` and `summary/` are (re)written under the output
    /// root.
    #[command(flatten)]
    pub output: OutputFlags,
    /// HDFS Kerberos for an hdfs:// output (the Kafka and etcd settings are not used here).
    #[command(flatten)]
    pub connection: ConnectionFlags,
}

pub fn execute(args: RunArgs) -> Result<(), CliError> {
    // The embedded run uses the output half of the pipeline settings, layered like everywhere.
    let file = ConfigFile::load(args.config.config.as_deref())?;
    let settings = file.pipeline(&PipelineFlags {
        output: args.output.clone(),
        ..PipelineFlags::default()
    })?;
    let conn = file.connection(&args.connection)?;
    let mut cfg = RunConfig::default();
    if let Some(t) = args.threads {
        cfg.threads = t.max(1);
    }
    cfg.chunk_bytes = args.chunk_mib.max(1) << 20;
    cfg.parquet = settings.parquet()?;
    cfg.analytics = settings.analytics();
    cfg.max_line_bytes = settings.max_line_bytes;
    cfg.shard_max_dates = settings.shard_max_dates;

    let inputs: Vec<InputSpec> = args
        .files
        .iter()
        .enumerate()
        .map(|(i, p)| {
            InputSpec::new(p, i as i32).with_max_decompressed(args.max_decompressed_bytes)
        })
        .collect();
    let io = crate::io_runtime()?;
    let out = io.block_on(storage::open_batch_output(&settings.output, &conn))?;
    let cluster_files = io.block_on(async {
        let mut files = out.list(layout::PARTIALS_DIR).await?;
        files.extend(out.list(layout::STAGING_DIR).await?);
        Ok::<_, sawmill_common::Error>(files)
    })?;
    if let Some(file) = cluster_file(&cluster_files) {
        return Err(CliError::Refused(format!(
            "{} holds a cluster's shards ({file}): `sawmill run` would replace its records/, \
             rejects/ and summary/ and leave the cluster's etcd state naming deleted files. \
             Choose another --output; to reuse this root, stop its cluster and delete the root first",
            out.root()
        )));
    }
    let removed = io.block_on(pipeline::clear_output(out.as_ref()))?;
    if removed > 0 && !args.quiet {
        eprintln!(
            "replacing the previous run's {removed} files in {}",
            out.root()
        );
    }

    let progress = Arc::new(Progress::default());
    let bar = progress_bar(args.quiet, progress.clone());
    let outcome = pipeline::run(&inputs, out.clone(), io.handle(), &cfg, &progress);
    bar.finish_and_clear();
    let outcome = outcome?;

    if !args.quiet {
        let secs = outcome.elapsed.as_secs_f64().max(1e-9);
        println!(
            "processed {} lines ({:.1} MB) in {:.2}s: {:.0} lines/s, {} rejected; {} files written to {}",
            outcome.lines,
            outcome.bytes as f64 / 1e6,
            secs,
            outcome.lines as f64 / secs,
            outcome.partial.rejects(),
            outcome.files,
            out.root()
        );
        println!();
        print!("{}", show::headline(&outcome.partial, args.top)?);
    }
    Ok(())
}

/// The first of `paths` that only a cluster's workers write: a shard's partial under
/// `_partials/`, or a file staged for a partition (`_staging/<source>/p<partition>/...`). The
/// embedded run writes neither (its temporary files sit directly in `_staging/`).
fn cluster_file(paths: &[String]) -> Option<&String> {
    paths.iter().find(|path| {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [dir, _, ..] if *dir == layout::PARTIALS_DIR => true,
            [dir, _source, partition, _, ..] if *dir == layout::STAGING_DIR => partition
                .strip_prefix('p')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            _ => false,
        }
    })
}

/// A progress bar on stderr fed by the pipeline's counters; hidden when stderr is no terminal.
fn progress_bar(quiet: bool, progress: Arc<Progress>) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let b = bar.clone();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while !b.is_finished() {
            let lines = progress.lines.load(Ordering::Relaxed);
            let bytes = progress.bytes.load(Ordering::Relaxed);
            let rate = lines as f64 / start.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!(
                "{lines} lines, {:.1} MB, {rate:.0} lines/s, {} rejected",
                bytes as f64 / 1e6,
                progress.rejects.load(Ordering::Relaxed)
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use sawmill_core::layout::{partition_staging_dir, ShardRange};

    #[test]
    fn a_cluster_root_is_recognised_by_its_partials_or_partition_staging() {
        let range = ShardRange {
            source: "logs".into(),
            partition: 2,
            first: 0,
            last: 9,
        };
        let partial = range.partial_path();
        let staged = range.staging_path(3, &layout::staging_nonce(), &partial);
        assert!(staged.starts_with(&partition_staging_dir("logs", 2)));
        let embedded_tmp = layout::temp_staging_path("summary/hosts.parquet");
        assert_eq!(cluster_file(std::slice::from_ref(&embedded_tmp)), None);
        assert_eq!(cluster_file(&[]), None);
        assert_eq!(
            cluster_file(&[embedded_tmp.clone(), partial.clone()]),
            Some(&partial)
        );
        assert_eq!(cluster_file(&[embedded_tmp, staged.clone()]), Some(&staged));
    }

    #[test]
    fn run_refuses_an_output_root_holding_a_cluster_s_shards() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("out");
        let range = ShardRange {
            source: "logs".into(),
            partition: 0,
            first: 0,
            last: 0,
        };
        let partial = root.join(range.partial_path());
        std::fs::create_dir_all(partial.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&partial, b"x").expect("write partial");
        let input = dir.path().join("in.log");
        std::fs::write(
            &input,
            b"1.2.3.4 - - [01/Jul/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 1\n",
        )
        .expect("write input");
        let args = RunArgs {
            files: vec![input],
            threads: Some(1),
            chunk_mib: 1,
            max_decompressed_bytes: None,
            top: 1,
            quiet: true,
            config: ConfigFlag::default(),
            output: OutputFlags {
                output: Some(root.display().to_string()),
                ..OutputFlags::default()
            },
            connection: ConnectionFlags::default(),
        };
        let err = execute(args).expect_err("a cluster's root is refused");
        assert!(matches!(err, CliError::Refused(_)), "{err}");
        assert!(err.to_string().contains("another --output"), "{err}");
        assert!(partial.exists(), "nothing of the cluster's was deleted");
    }
}
