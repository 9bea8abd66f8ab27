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

use crate::embedded::input::{check_readable, Chunk, Chunker, InputSpec};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::summary;
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::batch::{ChunkParser, Push, ShardCaps, DEFAULT_MAX_LINE_BYTES};
use sawmill_core::layout::{self, ShardRange};
use sawmill_core::shard::{self, ParquetOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Parser threads; defaults to the number of cores.
    pub threads: usize,
    /// Target chunk size; one chunk becomes one shard (one file per date it covers), or
    /// several when it passes `shard_max_dates` or the parser's byte bound.
    pub chunk_bytes: usize,
    /// Longer lines are rejected as `line_too_long`, keeping this many bytes; lines longer
    /// than `chunk_bytes` as well are cut off by the reader, never read whole.
    pub max_line_bytes: usize,
    /// A chunk's shard is cut before a line whose date would make it span more dates: bounds
    /// the files (and open builders) one chunk fans out into.
    pub shard_max_dates: usize,
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
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            shard_max_dates: 64,
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
    // Parsed chunks' buffers go back to the reader (see `Chunker::next_chunk_in`); a new one is
    // made only while none is free, so no more exist than chunks in flight.
    let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(2 * threads + 1);
    let stop = AtomicBool::new(false);

    let partials = std::thread::scope(|scope| -> Result<Vec<Partial>> {
        let reader = scope.spawn(|| -> Result<()> {
            for spec in inputs {
                let mut chunker =
                    Chunker::with_max_line(spec.clone(), cfg.chunk_bytes, cfg.max_line_bytes)?
                        .with_tail_split(2 * threads);
                while let Some(chunk) =
                    chunker.next_chunk_in(free_rx.try_recv().unwrap_or_default())?
                {
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
                let free_tx = free_tx.clone();
                let storage = storage.clone();
                let stop = &stop;
                scope.spawn(move || {
                    let result = parse_worker(&rx, &free_tx, storage.as_ref(), io, cfg, progress);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        drop((rx, free_tx));
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

    let merged = merge_all(partials, &cfg.analytics);
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

/// Merges the threads' partials. This runs on one core after the parallel part, so it merges
/// into the partial holding the most keys instead of a fresh one (whose keys would all be
/// interned again), unless a partial is past a cap: then into a fresh one, so the caps fold
/// exactly as a merge at the coordinator would (merge is exact and order-free below the caps).
fn merge_all(mut partials: Vec<Partial>, cfg: &AnalyticsConfig) -> Partial {
    let largest = partials
        .iter()
        .enumerate()
        .max_by_key(|(_, p)| p.keyed_entries())
        .map(|(i, _)| i);
    let base = match largest {
        Some(i) if !partials.iter().any(Partial::overflowed) => partials.swap_remove(i),
        _ => Partial::new(cfg),
    };
    partials.into_iter().fold(base, |mut merged, p| {
        merged.merge(p);
        merged
    })
}

fn parse_worker(
    rx: &crossbeam_channel::Receiver<Chunk>,
    free: &crossbeam_channel::Sender<Vec<u8>>,
    storage: &dyn Storage,
    io: &tokio::runtime::Handle,
    cfg: &RunConfig,
    progress: &Progress,
) -> Result<Partial> {
    let mut partial = Partial::new(&cfg.analytics);
    // One parser per thread, not per chunk: it sizes its builders from the chunks it has seen.
    let caps = ShardCaps {
        dates: cfg.shard_max_dates,
        line: cfg.max_line_bytes,
        ..ShardCaps::default()
    };
    let mut parser = ChunkParser::new("".into(), 0).with_caps(caps);
    let out = Out {
        storage,
        io,
        cfg,
        progress,
    };
    for chunk in rx.iter() {
        parser.set_source(chunk.source.clone(), chunk.partition);
        let mut first = chunk.first_line;
        let mut rejected = 0;
        match &chunk.cut_line {
            // Cut off by the reader: a reject whatever its first bytes look like.
            Some(cut) => {
                let taken = parser.push_cut_line(&cut.raw, cut.len, first, &mut partial);
                debug_assert_eq!(taken, Push::Taken, "an empty parser takes any line");
                rejected += out.write_shard(&mut parser, &chunk, first, first + 1)?;
                first += 1;
            }
            // A chunk that passes a cap (dates, bytes) becomes several shards, cut at a line.
            None => {
                let mut data = &chunk.data[..];
                loop {
                    let pushed = parser.push_lines(data, first, &mut partial);
                    rejected += out.write_shard(&mut parser, &chunk, first, pushed.next)?;
                    first = pushed.next;
                    data = &data[pushed.consumed..];
                    if data.is_empty() {
                        break;
                    }
                }
            }
        }
        debug_assert_eq!(first - chunk.first_line, chunk.lines as i64);
        progress.lines.fetch_add(chunk.lines, Ordering::Relaxed);
        progress
            .bytes
            .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
        progress.rejects.fetch_add(rejected, Ordering::Relaxed);
        // Full only if the reader stopped taking buffers: then this one is simply freed.
        let _ = free.try_send(chunk.data);
    }
    Ok(partial)
}

/// Where a parser thread's shards go.
struct Out<'a> {
    storage: &'a dyn Storage,
    io: &'a tokio::runtime::Handle,
    cfg: &'a RunConfig,
    progress: &'a Progress,
}

impl Out<'_> {
    /// Finishes the parser into the shard of lines `first..next` of `chunk` and writes its
    /// files. Returns the lines rejected.
    fn write_shard(
        &self,
        parser: &mut ChunkParser,
        chunk: &Chunk,
        first: i64,
        next: i64,
    ) -> Result<u64> {
        let parsed = parser.finish()?;
        if next > first {
            let range = ShardRange {
                source: chunk.source.to_string(),
                partition: chunk.partition,
                first,
                last: next - 1,
            };
            let mut written = 0;
            for f in shard::encode_chunk(&parsed, &range, &self.cfg.parquet)? {
                let write = crate::storage::write_atomic(self.storage, &f.path, &f.bytes);
                self.io.block_on(write)?;
                written += 1;
            }
            self.progress.files.fetch_add(written, Ordering::Relaxed);
        }
        Ok(parsed.rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalFs;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use sawmill_core::record::RejectReason;

    fn run_one(content: &[u8], cfg: &RunConfig) -> (RunOutcome, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.log");
        std::fs::write(&input, content).unwrap();
        let out = dir.path().join("out");
        let storage: Arc<dyn Storage> = Arc::new(LocalFs::create(&out).unwrap());
        let io = tokio::runtime::Runtime::new().unwrap();
        let inputs = [InputSpec::new(&input, 0)];
        let outcome = run(&inputs, storage, io.handle(), cfg, &Progress::default()).unwrap();
        (outcome, dir)
    }

    /// Every Parquet file under `dir`, relative to it.
    fn files_under(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "parquet") {
                    out.push(path.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out
    }

    #[test]
    fn long_lines_are_line_too_long_rejects_with_their_length() {
        let good = "127.0.0.1 - - [01/Aug/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 10\n";
        // Valid lines with a 20 kB and a 3 kB user agent: read whole, they would be records.
        let long = format!("{} \"-\" \"{}\"\n", good.trim_end(), "x".repeat(20_000));
        let mid = format!("{} \"-\" \"{}\"\n", good.trim_end(), "y".repeat(3_000));
        let cfg = RunConfig {
            threads: 1,
            chunk_bytes: 1024,
            max_line_bytes: 2048,
            ..RunConfig::default()
        };
        // The 20 kB line passes the chunk size (the reader cuts it off), the 3 kB one does not
        // (the parser rejects it): both end the same way.
        let (outcome, dir) = run_one(format!("{good}{long}{good}{mid}").as_bytes(), &cfg);
        assert_eq!(outcome.lines, 4);
        assert_eq!(outcome.partial.records(), 2);
        assert_eq!(
            outcome.partial.reject_counts(),
            vec![(RejectReason::LineTooLong, 2)]
        );
        let mut rejects = Vec::new();
        for f in files_under(&dir.path().join("out")) {
            if f.starts_with("rejects/") {
                let bytes = std::fs::read(dir.path().join("out").join(&f)).unwrap();
                rejects.extend(shard::decode(bytes, &f).unwrap().0);
            }
        }
        let mut seen = Vec::new();
        for b in &rejects {
            let col = |name| b.column_by_name(name).unwrap();
            let offset = col("offset").as_primitive::<Int64Type>();
            let raw = col("raw").as_binary::<i32>();
            let length = col("length").as_primitive::<Int64Type>();
            let reason = col("reason").as_string::<i32>();
            for i in 0..b.num_rows() {
                assert_eq!(reason.value(i), "line_too_long");
                assert_eq!(raw.value(i).len(), 2048);
                seen.push((offset.value(i), length.value(i)));
            }
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            [(1, long.len() as i64 - 1), (3, mid.len() as i64 - 1)]
        );
    }

    #[test]
    fn a_chunk_over_many_dates_is_cut_into_shards_of_few_dates() {
        // 5,000 lines, each on its own day, in chunks big enough to hold them all.
        let mut content = String::new();
        for i in 0..5000 {
            let (y, m, d) = sawmill_core::record::civil_from_days(9000 + i);
            let month = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ][usize::from(m) - 1];
            content.push_str(&format!(
                "h - - [{d:02}/{month}/{y}:00:00:01 +0000] \"GET / HTTP/1.0\" 200 1\n"
            ));
        }
        let cfg = RunConfig {
            threads: 1,
            shard_max_dates: 64,
            ..RunConfig::default()
        };
        let (outcome, dir) = run_one(content.as_bytes(), &cfg);
        assert_eq!(outcome.partial.records(), 5000);
        let files = files_under(&dir.path().join("out").join("records"));
        assert_eq!(files.len(), 5000, "one file per date");
        // Files of one shard share its range in their name.
        let mut per_shard = std::collections::BTreeMap::<String, usize>::new();
        for f in &files {
            let name = f.rsplit('/').next().unwrap().to_string();
            *per_shard.entry(name).or_default() += 1;
        }
        assert!(per_shard.len() >= 5000 / 64, "{} shards", per_shard.len());
        assert!(
            per_shard.values().all(|&n| n <= 64),
            "a shard over {:?} dates",
            per_shard.values().max()
        );
    }
}
