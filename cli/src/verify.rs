//! `sawmill verify`: checks that a pipeline's published output holds every line of its topic
//! exactly once, and that the merged `summary/` equals a batch recomputation of the topic.
//!
//! Reads the topic (every partition, low watermark to end offset) and the output root
//! (`records/`, `rejects/`, `summary/`; local or `hdfs://`), and reports per partition the
//! lines in no row (lost), offsets in more than one row (duplicated), rows outside the topic's
//! range, and rows whose line differs from the topic's at their offset. The recomputation parses
//! the topic's lines with the code the worker and `sawmill run` use, at the same positions, so
//! every summary table must be equal, row for row (a table past an analytics cap: by what the caps
//! keep exact, [`capped`]). Zero of each is the only pass (exit 0);
//! anything else exits 1 after the report. With `--etcd` (or `SAWMILL_ETCD`) each partition's
//! committed next offset must also be the topic's end.

pub mod capped;
pub mod check;
pub mod output;
pub mod report;
pub mod tables;
pub mod topic;

use crate::CliError;
use check::{line_fingerprint, PartitionCheck, SeqTally};
use report::VerifyReport;
use sawmill_common::etcd::Checkpoints;
use sawmill_common::{storage, summary};
use sawmill_core::analytics::Partial;
use sawmill_core::batch::{ChunkParser, Push, ShardCaps};
use sawmill_core::settings::{ConfigFile, ConfigFlag, PipelineFlags};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rows a recomputation parser buffers before its (unused) Arrow batches are dropped.
const PARSER_ROWS: u64 = 1 << 16;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigFlag,
    /// The pipeline's settings (the same file or flags as its coordinator's): the topic, the
    /// output root, Kafka, etcd (checked only when given) and the analytics settings are used.
    #[command(flatten)]
    pub pipeline: PipelineFlags,
    /// Print the report as one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The recomputation of the summary: every topic line parsed at its position.
struct Recompute {
    topic: Arc<str>,
    partial: Partial,
    parsers: BTreeMap<i32, ChunkParser>,
    /// The pipeline's line and shard caps: a long line is a `line_too_long` reject here as in
    /// the worker.
    caps: ShardCaps,
}

impl Recompute {
    fn line(&mut self, partition: i32, offset: i64, line: &[u8]) -> Result<(), CliError> {
        let (topic, caps) = (&self.topic, self.caps);
        let parser = self
            .parsers
            .entry(partition)
            .or_insert_with(|| ChunkParser::new(topic.clone(), partition).with_caps(caps));
        if parser.push(line, offset, &mut self.partial) == Push::Full {
            // A shard cap: only the partial is wanted, so cut (drop the batches) and push again.
            parser.finish()?;
            let _ = parser.push(line, offset, &mut self.partial);
        }
        if parser.buffered() >= PARSER_ROWS {
            // Only the partial is wanted; the batches go, so memory stays flat.
            parser.finish()?;
        }
        Ok(())
    }
}

pub fn execute(args: VerifyArgs) -> Result<(), CliError> {
    let settings = ConfigFile::load(args.config.config.as_deref())?.pipeline(&args.pipeline)?;
    let root = settings.output.clone();
    let local = root.strip_prefix("file://").unwrap_or(&root);
    if !root.contains("://") || root.starts_with("file://") {
        // Opening a local root creates it; a checker must not.
        if !std::path::Path::new(local).is_dir() {
            return Err(CliError::Verify(format!(
                "output root {root} does not exist: pass the pipeline's --output"
            )));
        }
    }
    let topic = settings.topic.clone();

    let mut checks: BTreeMap<i32, PartitionCheck> = BTreeMap::new();
    let mut seq = SeqTally::default();
    let mut recompute = Recompute {
        topic: topic.as_str().into(),
        partial: Partial::new(&settings.analytics()),
        parsers: BTreeMap::new(),
        caps: settings.shard_caps(),
    };
    let mut failed: Option<CliError> = None;
    let ranges = topic::read(&settings.bootstrap_servers, &topic, |p, r, offset, line| {
        checks
            .entry(p)
            .or_insert_with(|| PartitionCheck::new(r.low, r.end))
            .message(offset, line_fingerprint(line));
        seq.line(line);
        if failed.is_none() {
            failed = recompute.line(p, offset, line).err();
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    for (&p, r) in &ranges {
        checks
            .entry(p)
            .or_insert_with(|| PartitionCheck::new(r.low, r.end));
    }
    let want: BTreeMap<String, _> = recompute
        .partial
        .tables()
        .into_iter()
        .map(|(n, b)| (n.to_string(), b))
        .collect();

    let check_etcd = args.pipeline.etcd.is_some();
    let mut other_sources = 0u64;
    let rt = crate::io_runtime()?;
    let (read, got, etcd) = rt.block_on(async {
        let out = storage::open(&root).await?;
        let read = output::read_rows(out.as_ref(), |row| {
            if row.source != topic {
                other_sources += 1;
                return;
            }
            checks
                .entry(row.partition)
                .or_insert_with(|| PartitionCheck::new(0, 0))
                .row(row.offset, row.fingerprint);
        })
        .await?;
        let got = summary::read(out.as_ref()).await?;
        let mut etcd = BTreeMap::new();
        if check_etcd {
            let mut cp = Checkpoints::connect(&settings.etcd, settings.pipeline_name()).await?;
            for &p in ranges.keys() {
                etcd.insert(p, cp.state(p).await?.next_offset);
            }
        }
        Ok::<_, CliError>((read, got, etcd))
    })?;

    let report = VerifyReport {
        topic,
        output: root,
        partitions: checks.iter().map(|(&p, c)| c.report(p)).collect(),
        other_sources,
        read,
        tables: want.len(),
        summary_found: !got.is_empty(),
        table_diffs: tables::compare(&want, &got),
        records: recompute.partial.records(),
        rejects: recompute.partial.rejects(),
        etcd: check_etcd.then_some(etcd),
        seq: seq.report(),
        untagged: seq.untagged,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    match report.failures() {
        0 => Ok(()),
        n => Err(CliError::Verify(format!(
            "verification failed: {n} problem(s), see the report above"
        ))),
    }
}
