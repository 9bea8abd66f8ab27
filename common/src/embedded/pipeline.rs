//! The embedded run (`sawmill run`): the same parse → aggregate → Parquet path the workers run,
//! in one process on all cores.
//!
//! One reader thread cuts inputs into newline-aligned chunks; `threads` parser threads each
//! parse a chunk into Arrow batches, fold it into their own [`Partial`], and publish its shards.
//! The chunk queue is bounded, so memory stays at roughly `(2 × threads + 1) × chunk_bytes`
//! whatever the input size. Partials merge once at the end, exactly as partials from workers
//! merge at the coordinator.
//!
//! # Threads
//!
//! The reader and parser threads are plain threads doing CPU work. Storage is async, so they
//! block on `io`, a handle of the multi-thread runtime the storage was opened on (a plain thread
//! may block on it; a current-thread runtime would not drive the I/O). For the same reason
//! [`run`] itself must be called from a plain thread, never from an async task.

use crate::embedded::input::{check_readable, Chunk, Chunker, InputSpec, MAX_LINE_BYTES};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::summary;
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::batch::ChunkParser;
use sawmill_core::layout::{self, ShardRange};
use sawmill_core::record::RejectReason;
use sawmill_core::shard::{self, ParquetOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Parser threads; defaults to the number of cores.
    pub threads: usize,
    /// Target chunk size; one chunk becomes one shard per date it covers.
    pub chunk_bytes: usize,
    /// Lines longer than this (or than `chunk_bytes`, if larger) are cut off and rejected as
    /// `truncated`; see [`MAX_LINE_BYTES`].
    pub max_line_bytes: usize,
    pub parquet: ParquetOptions,
    pub analytics: AnalyticsConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            chunk_bytes: 16 << 20,
            max_line_bytes: MAX_LINE_BYTES,
            parquet: ParquetOptions::default(),
            analytics: AnalyticsConfig::default(),
        }
    }
}

/// Live counters, read by a progress bar while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    pub lines: AtomicU64,
    pub bytes: AtomicU64,
    pub rejects: AtomicU64,
    pub files: AtomicU64,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub partial: Partial,
    pub lines: u64,
    pub bytes: u64,
    pub files: u64,
    pub elapsed: Duration,
}

/// Removes a previous run's output (only Sawmill's own directories). Returns files removed.
pub async fn clear_output(storage: &dyn Storage) -> Result<usize> {
    let mut n = 0;
    for dir in layout::EMBEDDED_RUN_DIRS {
        for path in storage.list(dir).await? {
            storage.delete(&path).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Runs inputs end to end into `storage`, then writes the merged summary tables. `io` runs the
/// storage calls (see the module docs for the threading rule).
pub fn run(
    inputs: &[InputSpec],
    storage: Arc<dyn Storage>,
    io: &tokio::runtime::Handle,
    cfg: &RunConfig,
    progress: &Progress,
) -> Result<RunOutcome> {
    if inputs.is_empty() {
        return Err(Error::Config("no input files given".into()));
    }
    check_readable(inputs)?;
    let started = Instant::now();
    let threads = cfg.threads.max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Chunk>(threads);
    let stop = AtomicBool::new(false);

    let partials = std::thread::scope(|scope| -> Result<Vec<Partial>> {
        let reader = scope.spawn(|| -> Result<()> {
            for spec in inputs {
                let mut chunker =
                    Chunker::with_max_line(spec.clone(), cfg.chunk_bytes, cfg.max_line_bytes)?;
                while let Some(chunk) = chunker.next_chunk()? {
                    if stop.load(Ordering::Relaxed) || tx.send(chunk).is_err() {
                        return Ok(());
                    }
                }
            }
            drop(tx);
            Ok(())
        });
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let storage = storage.clone();
                let stop = &stop;
                scope.spawn(move || {
                    let result = parse_worker(&rx, storage.as_ref(), io, cfg, progress);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        drop(rx);
        let mut partials = Vec::with_capacity(threads);
        let mut first_err = None;
        for w in workers {
            match w.join() {
                Ok(Ok(p)) => partials.push(p),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(Error::Pipeline("a parser thread panicked".into()));
                }
            }
        }
        match reader.join() {
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::Pipeline("the reader thread panicked".into())),
            Ok(Ok(())) => {}
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(partials),
        }
    })?;

    let mut merged = Partial::new(&cfg.analytics);
    for p in partials {
        merged.merge(p);
    }
    let tables = summary::encode(&merged, &cfg.parquet)?;
    let written = io.block_on(summary::write(storage.as_ref(), tables))?;
    progress
        .files
        .fetch_add(written.len() as u64, Ordering::Relaxed);
    Ok(RunOutcome {
        lines: progress.lines.load(Ordering::Relaxed),
        bytes: progress.bytes.load(Ordering::Relaxed),
        files: progress.files.load(Ordering::Relaxed),
        partial: merged,
        elapsed: started.elapsed(),
    })
}

fn parse_worker(
    rx: &crossbeam_channel::Receiver<Chunk>,
    storage: &dyn Storage,
    io: &tokio::runtime::Handle,
    cfg: &RunConfig,
    progress: &Progress,
) -> Result<Partial> {
    let mut partial = Partial::new(&cfg.analytics);
    // One parser per thread, not per chunk: it sizes its builders from the chunks it has seen.
    let mut parser = ChunkParser::new("".into(), 0);
    for chunk in rx.iter() {
        parser.set_source(chunk.source.clone(), chunk.partition);
        let next = match &chunk.cut_line {
            // Cut off by the reader: a reject whatever its first bytes look like.
            Some(cut) => parser.push_reject(
                &cut.raw,
                chunk.first_line,
                RejectReason::Truncated,
                &mut partial,
            ),
            None => parser.push_lines(&chunk.data, chunk.first_line, &mut partial),
        };
        debug_assert_eq!(next - chunk.first_line, chunk.lines as i64);
        let parsed = parser.finish()?;
        if chunk.lines > 0 {
            let range = ShardRange {
                source: chunk.source.to_string(),
                partition: chunk.partition,
                first: chunk.first_line,
                last: chunk.first_line + chunk.lines as i64 - 1,
            };
            let mut paths = Vec::new();
            for f in shard::encode_chunk(&parsed, &range, &cfg.parquet)? {
                io.block_on(crate::storage::write_atomic(storage, &f.path, &f.bytes))?;
                paths.push(f.path);
            }
            progress
                .files
                .fetch_add(paths.len() as u64, Ordering::Relaxed);
        }
        progress.lines.fetch_add(chunk.lines, Ordering::Relaxed);
        progress
            .bytes
            .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
        progress
            .rejects
            .fetch_add(parsed.rejected, Ordering::Relaxed);
    }
    Ok(partial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalFs;

    #[test]
    fn a_cut_off_line_is_a_truncated_reject_at_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("long.log");
        let good = "127.0.0.1 - - [01/Aug/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 10\n";
        // A valid line with a 20 kB user agent: read whole, it would be a record.
        let long = format!("{} \"-\" \"{}\"\n", good.trim_end(), "x".repeat(20_000));
        std::fs::write(&input, format!("{good}{long}{good}")).unwrap();
        let out = dir.path().join("out");
        let storage: Arc<dyn Storage> = Arc::new(LocalFs::create(&out).unwrap());
        let io = tokio::runtime::Runtime::new().unwrap();
        let cfg = RunConfig {
            threads: 1,
            chunk_bytes: 1024,
            max_line_bytes: 4096,
            ..RunConfig::default()
        };
        let inputs = [InputSpec::new(&input, 0)];
        let outcome = run(&inputs, storage, io.handle(), &cfg, &Progress::default()).unwrap();
        assert_eq!(outcome.lines, 3);
        assert_eq!(outcome.partial.records(), 2);
        let rejects = outcome.partial.reject_counts();
        assert!(
            rejects.contains(&(RejectReason::Truncated, 1)) && outcome.partial.rejects() == 1,
            "{rejects:?}"
        );
    }
}
