//! Parses lines straight into Arrow arrays, one [`RecordBatch`] per wall-clock date, and feeds
//! the same parsed records to a [`Partial`] so parsing happens once per line.
//!
//! This is the hot path of every run: see `common/benches/parse.rs` and `BENCHMARKS.md`.
//!
//! A parser is bounded by [`ShardCaps`]: it refuses a line that would pass one, so the caller
//! cuts the shard at that line instead of after a whole batch or chunk.

mod builders;
mod sink;

use crate::analytics::Partial;
use crate::parse::parse_line;
use crate::record::{Position, RejectReason};
use arrow::record_batch::RecordBatch;
use builders::{RecordsBuilder, RejectsBuilder, RowSizes, Text, TextBlock};
use memchr::memchr2;
use sink::{Sink, OBSERVE_BATCH};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Default longest line, in bytes without its line end: longer ones become `line_too_long`
/// rejects holding their first this-many bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 10;

/// Most input bytes one parser takes before it must be finished. Arrow's text columns use `i32`
/// offsets, so a column past 2 GiB cannot be built; a field holds at most its line's bytes,
/// three times that when invalid UTF-8 is replaced by U+FFFD (counted so, see
/// [`ChunkParser::push`]), so 1.5 GiB of input leaves room.
pub const MAX_SHARD_BYTES: u64 = 3 << 29;

/// Where a [`ChunkParser`] stops taking lines: past any of these the open shard must be cut
/// (finished) first. A line alone in an empty parser is always taken, so a cut always makes
/// progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardCaps {
    /// Lines (records and rejects).
    pub rows: u64,
    /// Input bytes, line ends counted as one byte; at most [`MAX_SHARD_BYTES`].
    pub bytes: u64,
    /// Distinct wall-clock dates among the records: each is a file and a manifest entry.
    pub dates: usize,
    /// Longest line; a longer one is a `line_too_long` reject cut to this length.
    pub line: usize,
}

impl Default for ShardCaps {
    fn default() -> Self {
        ShardCaps {
            rows: u64::MAX,
            bytes: MAX_SHARD_BYTES,
            dates: usize::MAX,
            line: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// What [`ChunkParser::push`] did with a line.
#[must_use = "a line refused as Full was not taken: cut the shard and push it again"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Taken,
    /// The line would pass a cap: nothing was parsed into the parser or observed; finish the
    /// parser (cut the shard) and push the line again.
    Full,
}

/// How far [`ChunkParser::push_lines`] got.
#[must_use = "the lines after `consumed` were not taken when the parser filled"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Offset of the first line not taken.
    pub next: i64,
    /// Bytes of the buffer taken: all of it, unless the parser filled (finish it, then push
    /// `buf[consumed..]` at `next`).
    pub consumed: usize,
}

/// How far [`ChunkParser::push_messages`] got.
#[must_use = "a refused message was not taken: cut the shard and push it again"]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushedMessages<'l> {
    /// Messages taken.
    pub taken: u64,
    /// Offset of the last message taken.
    pub last: Option<i64>,
    /// The message that would have passed a cap, when one did.
    pub refused: Option<(i64, &'l [u8])>,
}

/// Splits a buffer into lines. A line ends at `\n`, `\r\n` or a bare `\r`; the terminator is not
/// part of the line. A final line without terminator is still a line; an empty buffer has none.
/// [`count_lines`] uses the same rule, so line numbers agree everywhere.
pub fn lines(buf: &[u8]) -> Lines<'_> {
    Lines { rest: buf }
}

pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match memchr2(b'\n', b'\r', self.rest) {
            Some(i) => {
                let line = &self.rest[..i];
                let skip = if self.rest[i] == b'\r' && self.rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[i + skip..];
                Some(line)
            }
            None => {
                let line = self.rest;
                self.rest = &[];
                Some(line)
            }
        }
    }
}

/// Number of lines [`lines`] yields for `buf`.
pub fn count_lines(buf: &[u8]) -> u64 {
    if memchr::memchr(b'\r', buf).is_none() {
        // Nearly every log ends its lines with `\n` alone: then counting them (vectorized) is
        // the whole answer, plus a last line without one. Several times faster than splitting.
        let unterminated = buf.last().is_some_and(|&b| b != b'\n');
        // Counted per block of 255 bytes in a `u8`, which the compiler vectorizes: 27 ms for
        // 225 MB where `memchr_iter(..).count()` took about 45.
        let newlines: usize = buf
            .chunks(255)
            .map(|block| usize::from(block.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
            .sum();
        return newlines as u64 + u64::from(unterminated);
    }
    lines(buf).count() as u64
}

/// One parsed chunk: records grouped by wall-clock date (days since epoch), plus rejects.
#[derive(Debug, Default)]
pub struct ParsedChunk {
    pub by_date: BTreeMap<i32, RecordBatch>,
    pub rejects: Option<RecordBatch>,
    pub records: u64,
    pub rejected: u64,
}

/// Builds record and reject batches for one source/partition.
pub struct ChunkParser {
    source: Arc<str>,
    partition: i32,
    caps: ShardCaps,
    /// One builder per wall-clock date, in first-seen order. Logs are time ordered, so the
    /// previous line's date (`last`) is nearly always the next line's: a compare, not a lookup.
    dates: Vec<(i32, RecordsBuilder)>,
    last: usize,
    rejects: RejectsBuilder,
    records: u64,
    rejected: u64,
    /// Input bytes taken since the last finish, as [`ShardCaps::bytes`] counts them.
    bytes: u64,
    /// Input bytes not yet parsed by the running `push_lines`: sizes a new date's builders.
    bytes_left: usize,
    /// Bytes per record of each text column, learned from the last finished chunk.
    sizes: RowSizes,
}

impl ChunkParser {
    pub fn new(source: Arc<str>, partition: i32) -> Self {
        ChunkParser {
            source,
            partition,
            caps: ShardCaps::default(),
            dates: Vec::new(),
            last: 0,
            rejects: RejectsBuilder::default(),
            records: 0,
            rejected: 0,
            bytes: 0,
            bytes_left: 0,
            sizes: RowSizes::default(),
        }
    }

    /// The same parser bounded by `caps` (bytes at most [`MAX_SHARD_BYTES`], line at least 1).
    pub fn with_caps(mut self, caps: ShardCaps) -> Self {
        self.caps = ShardCaps {
            bytes: caps.bytes.min(MAX_SHARD_BYTES),
            line: caps.line.max(1),
            ..caps
        };
        self
    }

    pub fn caps(&self) -> ShardCaps {
        self.caps
    }

    /// Switches to another source/partition between chunks (nothing may be buffered), keeping
    /// what the parser learned about row sizes.
    pub fn set_source(&mut self, source: Arc<str>, partition: i32) {
        assert_eq!(self.buffered(), 0, "set_source with rows buffered");
        self.source = source;
        self.partition = partition;
    }

    /// Parses one line at `offset`, appends it to the right batch and observes it in `partial`,
    /// unless it would pass a cap ([`Push::Full`]).
    #[inline]
    pub fn push(&mut self, line: &[u8], offset: i64, partial: &mut Partial) -> Push {
        self.push_observed(line, offset, &mut Sink::Now(partial), None)
    }

    /// Parses messages `(offset, line)` (offsets ascending) as [`ChunkParser::push`] on each
    /// would, but observes the records in batches (`Partial::observe_batch`, faster), until one
    /// would pass a cap: that one is returned in [`PushedMessages::refused`], not taken; cut the
    /// shard (finish) and push it again. Messages after it stay in `messages`.
    pub fn push_messages<'l>(
        &mut self,
        messages: &mut impl Iterator<Item = (i64, &'l [u8])>,
        partial: &mut Partial,
    ) -> PushedMessages<'l> {
        let mut pending = Vec::with_capacity(OBSERVE_BATCH);
        let mut sink = Sink::Batch(partial, &mut pending);
        let mut out = PushedMessages::default();
        for (offset, line) in messages.by_ref() {
            if self.push_observed(line, offset, &mut sink, None) == Push::Full {
                out.refused = Some((offset, line));
                break;
            }
            out.taken += 1;
            out.last = Some(offset);
        }
        sink.flush();
        out
    }

    /// Parses the lines of `buf`, the first being at `first_offset`, until one would pass a cap.
    pub fn push_lines(&mut self, buf: &[u8], first_offset: i64, partial: &mut Partial) -> Pushed {
        self.push_all(buf, first_offset, Some(partial))
    }

    /// Appends a line the reader had to cut off (`sawmill run` reads no line past a bound) as a
    /// `line_too_long` reject at `offset`: `raw` is its beginning, `len` its whole length. Cut
    /// to the line cap like any long line. Refused only by the rows cap.
    pub fn push_cut_line(
        &mut self,
        raw: &[u8],
        len: u64,
        offset: i64,
        partial: &mut Partial,
    ) -> Push {
        let raw = &raw[..raw.len().min(self.caps.line)];
        if self.full(raw.len() as u64 + 1) {
            return Push::Full;
        }
        self.reject(
            offset,
            RejectReason::LineTooLong,
            raw,
            Some(len),
            Some(partial),
        );
        self.bytes += raw.len() as u64 + 1;
        Push::Taken
    }

    /// [`ChunkParser::push_lines`] without analytics: Arrow batches only. Lets a benchmark (or a
    /// caller that aggregates elsewhere) see the cost of parsing apart from aggregating.
    pub fn parse_lines(&mut self, buf: &[u8], first_offset: i64) -> Pushed {
        self.push_all(buf, first_offset, None)
    }

    fn push_all(&mut self, buf: &[u8], first: i64, partial: Option<&mut Partial>) -> Pushed {
        let mut offset = first;
        let mut block = TextBlock::default();
        let mut pending = Vec::new();
        let mut sink = match partial {
            Some(partial) => {
                pending.reserve_exact(OBSERVE_BATCH);
                Sink::Batch(partial, &mut pending)
            }
            None => Sink::Off,
        };
        let mut it = lines(buf);
        let mut consumed = 0;
        loop {
            let start = buf.len() - it.rest.len();
            let Some(line) = it.next() else {
                break;
            };
            self.bytes_left = it.rest.len() + line.len();
            let text = block.text_of(buf, start, start + line.len());
            if self.push_observed(line, offset, &mut sink, text) == Push::Full {
                break;
            }
            consumed = buf.len() - it.rest.len();
            offset += 1;
        }
        sink.flush();
        self.bytes_left = 0;
        Pushed {
            next: offset,
            consumed,
        }
    }

    /// Whether a line weighing `bytes` would pass the rows or bytes cap (never when empty).
    #[inline]
    fn full(&self, bytes: u64) -> bool {
        let rows = self.buffered();
        rows > 0 && (rows >= self.caps.rows || self.bytes + bytes > self.caps.bytes)
    }

    /// `text` is the checked text of a buffer holding `line`, when there is one.
    #[inline]
    fn push_observed<'l>(
        &mut self,
        line: &'l [u8],
        offset: i64,
        sink: &mut Sink<'_, 'l>,
        text: Option<Text<'_>>,
    ) -> Push {
        let raw = crate::parse::strip_line_end(line);
        if raw.len() > self.caps.line {
            let kept = &raw[..self.caps.line];
            if self.full(kept.len() as u64 + 1) {
                return Push::Full;
            }
            let len = raw.len() as u64;
            let partial = sink.partial();
            self.reject(offset, RejectReason::LineTooLong, kept, Some(len), partial);
            self.bytes += kept.len() as u64 + 1;
            return Push::Taken;
        }
        let text = text.unwrap_or_else(|| Text::new(line));
        // Invalid UTF-8 grows threefold in the text columns (U+FFFD): weigh it so.
        let weight = (line.len() as u64 + 1) * if text.valid.is_some() { 1 } else { 3 };
        if self.full(weight) {
            return Push::Full;
        }
        match parse_line(line) {
            Ok(rec) => {
                let date = rec.timestamp.local_date();
                let Some(builder) = self.builder(date) else {
                    return Push::Full;
                };
                builder.append(text, offset, &rec);
                let pos = Position {
                    partition: self.partition,
                    offset,
                };
                sink.observe(rec, pos);
                self.records += 1;
            }
            Err(reason) => self.reject(offset, reason, raw, None, sink.partial()),
        }
        self.bytes += weight;
        Push::Taken
    }

    fn reject(
        &mut self,
        offset: i64,
        reason: RejectReason,
        raw: &[u8],
        len: Option<u64>,
        partial: Option<&mut Partial>,
    ) {
        if let Some(partial) = partial {
            let pos = Position {
                partition: self.partition,
                offset,
            };
            partial.observe_reject(reason, raw, pos);
        }
        self.rejects.append(offset, reason, raw, len);
        self.rejected += 1;
    }

    /// The builder of `date`, created (sized for the rest of the input) when new; `None` when
    /// the date is new and the dates cap is reached (and something is buffered).
    #[inline]
    fn builder(&mut self, date: i32) -> Option<&mut RecordsBuilder> {
        if self.dates.get(self.last).is_none_or(|(d, _)| *d != date) {
            self.last = match self.dates.iter().position(|(d, _)| *d == date) {
                Some(i) => i,
                None if self.dates.len() >= self.caps.dates && self.buffered() > 0 => return None,
                None => {
                    let rows = self.sizes.rows_in(self.bytes_left);
                    let b = RecordsBuilder::with_capacity(date, rows, &self.sizes);
                    self.dates.push((date, b));
                    self.dates.len() - 1
                }
            };
        }
        Some(&mut self.dates[self.last].1)
    }

    /// Rows buffered so far (records and rejects).
    pub fn buffered(&self) -> u64 {
        self.records + self.rejected
    }

    /// Input bytes buffered so far, as [`ShardCaps::bytes`] counts them.
    pub fn buffered_bytes(&self) -> u64 {
        self.bytes
    }

    /// Distinct dates among the buffered records.
    pub fn buffered_dates(&self) -> usize {
        self.dates.len()
    }

    /// Finishes the batches and resets the parser for reuse.
    pub fn finish(&mut self) -> crate::Result<ParsedChunk> {
        let mut out = ParsedChunk {
            records: std::mem::take(&mut self.records),
            rejected: std::mem::take(&mut self.rejected),
            ..ParsedChunk::default()
        };
        self.bytes = 0;
        self.last = 0;
        for (date, mut b) in std::mem::take(&mut self.dates) {
            let batch = b.finish(&self.source, self.partition)?;
            self.sizes.learn(&batch);
            out.by_date.insert(date, batch);
        }
        if out.rejected > 0 {
            out.rejects = Some(self.rejects.finish(&self.source, self.partition)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
