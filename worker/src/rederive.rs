//! Re-deriving the files of a committed shard that were lost before they were published
//! (deleted outside Sawmill between the etcd commit and the renames, or a torn staging
//! directory): the shard's lines are still in Kafka and parsing is deterministic, so reading
//! its offset range again and parsing it with the same line bound gives the same rows.
//!
//! Nothing is guessed: every re-derived file must be the one the manifest names (same final
//! path, same rows), and the range must hold exactly the manifest's records and rejects;
//! otherwise nothing is written and recovery reports the lost files as before. A file is
//! written under a temporary name and renamed to the manifest's staging name, so a crash
//! midway leaves no torn file that recovery would publish (the temporary one is unreferenced
//! staging, which recovery deletes).

use crate::context::WorkerContext;
use crate::error::{Result, WorkerError};
use crate::kafka::create_consumer_with;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sawmill_core::analytics::Partial;
use sawmill_core::batch::{ChunkParser, Push, ShardCaps};
use sawmill_core::manifest::{LostFile, ShardManifest};
use sawmill_core::shard::encode_chunk;
use std::time::{Duration, Instant};

/// Longest wait for a shard's range from Kafka.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Re-derives every lost file of `manifests` (those `lost` names) from Kafka and stages it
/// under its manifest's staging name; returns how many files were written.
pub async fn lost_files(
    ctx: &WorkerContext,
    manifests: &[ShardManifest],
    lost: &[LostFile],
) -> Result<usize> {
    let mut written = 0;
    for m in manifests {
        let mine: Vec<&LostFile> = lost
            .iter()
            .filter(|l| m.all_files().any(|f| f.staging == l.staging))
            .collect();
        if mine.is_empty() {
            continue;
        }
        tracing::warn!(
            partition = m.partition,
            first = m.first,
            last = m.last,
            files = mine.len(),
            "committed files are missing: reading the shard's range from kafka again to re-derive them"
        );
        let files = derive(ctx, m).await?;
        for l in mine {
            let bytes = files
                .iter()
                .find(|(path, _, _)| *path == l.path)
                .map(|(_, _, bytes)| bytes)
                .ok_or_else(|| {
                    mismatch(m, &format!("{} is not among the re-derived files", l.path))
                })?;
            let tmp = format!("{}.rederive", l.staging);
            ctx.storage.write(&tmp, bytes).await?;
            ctx.storage.rename(&tmp, &l.staging).await?;
            ctx.metrics.rederived(m.partition);
            written += 1;
        }
    }
    Ok(written)
}

/// Every file of the shard `m` names, re-derived: `(final path, rows, bytes)`.
async fn derive(ctx: &WorkerContext, m: &ShardManifest) -> Result<Vec<(String, u64, Vec<u8>)>> {
    let lines = read_range(ctx, m.partition, m.first, m.last).await?;
    // Only the line bound changes rows (`line_too_long`); the cut caps decided where the shard
    // ended, which the manifest's range already says.
    let caps = ShardCaps {
        line: ctx.settings.max_line_bytes,
        ..ShardCaps::default()
    };
    let mut parser = ChunkParser::new(m.source.as_str().into(), m.partition).with_caps(caps);
    let mut partial = Partial::new(&ctx.analytics);
    for (offset, line) in &lines {
        if parser.push(line, *offset, &mut partial) == Push::Full {
            return Err(mismatch(m, "the range no longer fits one shard"));
        }
    }
    if (partial.records(), partial.rejects()) != (m.records, m.rejects) {
        return Err(mismatch(
            m,
            &format!(
                "Kafka gave {} records and {} rejects for the range, the manifest says {} and {}",
                partial.records(),
                partial.rejects(),
                m.records,
                m.rejects
            ),
        ));
    }
    let parsed = parser.finish()?;
    let (range, opts) = (m.range(), ctx.parquet.clone());
    let (encoded, partial_bytes) = tokio::task::spawn_blocking(move || {
        Ok::<_, sawmill_core::Error>((encode_chunk(&parsed, &range, &opts)?, partial.to_bytes()?))
    })
    .await
    .map_err(|e| WorkerError::Actor(format!("encode task failed: {e}")))??;
    let mut files: Vec<(String, u64, Vec<u8>)> = Vec::with_capacity(encoded.len() + 1);
    for f in encoded {
        let want = m.files.iter().find(|w| w.path == f.path);
        if want.is_none_or(|w| w.rows != f.rows) {
            return Err(mismatch(
                m,
                &format!(
                    "re-derived {} ({} rows) is not in the manifest as such",
                    f.path, f.rows
                ),
            ));
        }
        files.push((f.path, f.rows, f.bytes));
    }
    files.push((m.partial.path.clone(), 0, partial_bytes));
    Ok(files)
}

/// The lines of offsets `first..=last` of `partition` (fewer where Kafka holds no message:
/// transaction markers; the record count check catches retention).
async fn read_range(
    ctx: &WorkerContext,
    partition: i32,
    first: i64,
    last: i64,
) -> Result<Vec<(i64, Vec<u8>)>> {
    let settings = &ctx.settings;
    let properties = settings.connection.kafka_client_properties()?;
    let (bootstrap, topic) = (settings.bootstrap_servers.clone(), settings.topic.clone());
    let group = format!("sawmill-{}-rederive", settings.pipeline_name());
    tokio::task::spawn_blocking(move || {
        let consumer = create_consumer_with(&bootstrap, &group, &properties)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Offset(first))?;
        consumer.assign(&tpl)?;
        let started = Instant::now();
        let mut lines = Vec::new();
        while started.elapsed() < READ_TIMEOUT {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(msg)) if msg.offset() > last => break,
                Some(Ok(msg)) if msg.offset() >= first => {
                    lines.push((msg.offset(), msg.payload().unwrap_or_default().to_vec()));
                    if msg.offset() == last {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => {
                    tracing::warn!(partition, error = %e, "re-deriving: kafka read error, retrying")
                }
                None => {}
            }
        }
        if lines.last().is_none_or(|(o, _)| *o < last) && started.elapsed() >= READ_TIMEOUT {
            return Err(WorkerError::Kafka(format!(
                "partition {partition}: could not read offsets {first}..={last} again within {}s",
                READ_TIMEOUT.as_secs()
            )));
        }
        Ok(lines)
    })
    .await
    .map_err(|e| WorkerError::Actor(format!("kafka read task failed: {e}")))?
}

fn mismatch(m: &ShardManifest, why: &str) -> WorkerError {
    WorkerError::Common(sawmill_common::Error::Corrupt {
        what: format!("partition {} shard {}..={}", m.partition, m.first, m.last),
        message: format!(
            "its lost files cannot be re-derived from Kafka: {why}; restore them from a backup or reset the pipeline"
        ),
    })
}
