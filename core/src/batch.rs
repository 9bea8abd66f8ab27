//! Parses lines straight into Arrow arrays, one [`RecordBatch`] per wall-clock date, and feeds
//! the same parsed records to a [`Partial`] so parsing happens once per line.
//!
//! This is the hot path of every run: see `common/benches/parse.rs` and `BENCHMARKS.md`.

use crate::analytics::Partial;
use crate::parse::parse_line;
use crate::record::{LogRecord, Position, RejectReason};
use crate::schema;
use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, Date32Builder, Int16Builder, Int32Array, Int32Builder,
    Int64Builder, StringArray, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::record_batch::RecordBatch;
use memchr::memchr2;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// One builder per wall-clock date, in first-seen order. Logs are time ordered, so the
    /// previous line's date (`last`) is nearly always the next line's: a compare, not a lookup.
    dates: Vec<(i32, RecordsBuilder)>,
    last: usize,
    rejects: RejectsBuilder,
    records: u64,
    rejected: u64,
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
            dates: Vec::new(),
            last: 0,
            rejects: RejectsBuilder::default(),
            records: 0,
            rejected: 0,
            bytes_left: 0,
            sizes: RowSizes::default(),
        }
    }

    /// Switches to another source/partition between chunks (nothing may be buffered), keeping
    /// what the parser learned about row sizes.
    pub fn set_source(&mut self, source: Arc<str>, partition: i32) {
        assert_eq!(self.buffered(), 0, "set_source with rows buffered");
        self.source = source;
        self.partition = partition;
    }

    /// Parses one line at `offset`, appends it to the right batch and observes it in `partial`.
    #[inline]
    pub fn push(&mut self, line: &[u8], offset: i64, partial: &mut Partial) {
        self.push_observed(line, offset, Some(partial), None);
    }

    /// Parses every line of `buf`, the first being at `first_offset`. Returns the next offset.
    pub fn push_lines(&mut self, buf: &[u8], first_offset: i64, partial: &mut Partial) -> i64 {
        self.push_all(buf, first_offset, Some(partial))
    }

    /// Appends `raw` at `offset` as a reject with `reason`, unparsed, and observes it in
    /// `partial`: for a line the reader had to cut off (`sawmill run`'s bounded line length).
    /// Returns the next offset.
    pub fn push_reject(
        &mut self,
        raw: &[u8],
        offset: i64,
        reason: RejectReason,
        partial: &mut Partial,
    ) -> i64 {
        let pos = Position {
            partition: self.partition,
            offset,
        };
        partial.observe_reject(reason, raw, pos);
        self.rejects.append(offset, reason, raw);
        self.rejected += 1;
        offset + 1
    }

    /// [`ChunkParser::push_lines`] without analytics: Arrow batches only. Lets a benchmark (or a
    /// caller that aggregates elsewhere) see the cost of parsing apart from aggregating.
    pub fn parse_lines(&mut self, buf: &[u8], first_offset: i64) -> i64 {
        self.push_all(buf, first_offset, None)
    }

    fn push_all(&mut self, buf: &[u8], first: i64, mut partial: Option<&mut Partial>) -> i64 {
        let mut offset = first;
        // One UTF-8 check for the whole chunk (nearly always valid) instead of one per line.
        let text = std::str::from_utf8(buf).ok().map(|valid| Text {
            line: buf,
            valid: Some(valid),
        });
        let mut it = lines(buf);
        while let Some(line) = it.next() {
            self.bytes_left = it.rest.len() + line.len();
            self.push_observed(line, offset, partial.as_deref_mut(), text);
            offset += 1;
        }
        self.bytes_left = 0;
        offset
    }

    /// `text` is the checked text of a buffer holding `line`, when there is one.
    #[inline]
    fn push_observed(
        &mut self,
        line: &[u8],
        offset: i64,
        partial: Option<&mut Partial>,
        text: Option<Text<'_>>,
    ) {
        let pos = Position {
            partition: self.partition,
            offset,
        };
        match parse_line(line) {
            Ok(rec) => {
                if let Some(partial) = partial {
                    partial.observe(&rec, pos);
                }
                let date = rec.timestamp.local_date();
                let text = text.unwrap_or_else(|| Text::new(line));
                self.builder(date).append(text, offset, date, &rec);
                self.records += 1;
            }
            Err(reason) => {
                let raw = crate::parse::strip_line_end(line);
                if let Some(partial) = partial {
                    partial.observe_reject(reason, raw, pos);
                }
                self.rejects.append(offset, reason, raw);
                self.rejected += 1;
            }
        }
    }

    /// The builder of `date`, created (sized for the rest of the input) when new.
    #[inline]
    fn builder(&mut self, date: i32) -> &mut RecordsBuilder {
        if self.dates.get(self.last).is_none_or(|(d, _)| *d != date) {
            self.last = match self.dates.iter().position(|(d, _)| *d == date) {
                Some(i) => i,
                None => {
                    let rows = self.sizes.rows_in(self.bytes_left);
                    let b = RecordsBuilder::with_capacity(rows, &self.sizes);
                    self.dates.push((date, b));
                    self.dates.len() - 1
                }
            };
        }
        &mut self.dates[self.last].1
    }

    /// Rows buffered so far (records and rejects).
    pub fn buffered(&self) -> u64 {
        self.records + self.rejected
    }

    /// Finishes the batches and resets the parser for reuse.
    pub fn finish(&mut self) -> crate::Result<ParsedChunk> {
        let mut out = ParsedChunk {
            records: std::mem::take(&mut self.records),
            rejected: std::mem::take(&mut self.rejected),
            ..ParsedChunk::default()
        };
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

/// The text of a line, or of a chunk of lines. Valid UTF-8 (nearly every log) is checked once,
/// and fields, which the parser cuts next to ASCII bytes and so on character boundaries, are
/// borrowed from it as `&str` at no cost; otherwise each field is converted with U+FFFD
/// replacement. (Checking each field separately was a tenth of the parse time.)
#[derive(Clone, Copy)]
struct Text<'a> {
    /// The line, or the whole buffer it is a part of.
    line: &'a [u8],
    valid: Option<&'a str>,
}

impl<'a> Text<'a> {
    #[inline]
    fn new(line: &'a [u8]) -> Self {
        Text {
            line,
            valid: std::str::from_utf8(line).ok(),
        }
    }

    /// `field`, a sub-slice of the line, as text.
    #[inline]
    fn of(self, field: &'a [u8]) -> Cow<'a, str> {
        if let Some(text) = self.valid {
            // Where the field starts in the line, from the two addresses (no unsafe needed).
            let start = (field.as_ptr() as usize).wrapping_sub(self.line.as_ptr() as usize);
            // `get` re-checks the bounds and boundaries, so a field that is not a sub-slice
            // falls through to the lossy copy instead of being misread.
            if let Some(s) = text.get(start..start.wrapping_add(field.len())) {
                if s.as_ptr() == field.as_ptr() {
                    return Cow::Borrowed(s);
                }
            }
        }
        String::from_utf8_lossy(field)
    }
}

/// Text columns filled row by row, as indices into the records schema, in the order of
/// [`RecordsBuilder::text`]: host, ident, user, method, endpoint, protocol, referer,
/// user_agent, format.
const TEXT_COLUMNS: [usize; 9] = [3, 4, 5, 9, 10, 11, 14, 15, 16];

/// Bytes per row of the text columns, to size builders before they fill: growing a buffer by
/// doubling copies it and touches fresh pages each time, which was a fifth of the parse time.
/// Starts from NASA-like guesses; [`RowSizes::learn`] replaces them with what it saw.
#[derive(Debug, Clone, Copy)]
struct RowSizes {
    /// Input bytes per line.
    line: usize,
    text: [usize; TEXT_COLUMNS.len()],
}

impl Default for RowSizes {
    fn default() -> Self {
        RowSizes {
            line: 100,
            text: [24, 1, 1, 4, 40, 9, 0, 0, 6],
        }
    }
}

impl RowSizes {
    /// Rows expected in `bytes` of input; a small batch for line-at-a-time callers (`push`).
    fn rows_in(&self, bytes: usize) -> usize {
        (bytes / self.line.max(1)).max(1024)
    }

    fn learn(&mut self, batch: &RecordBatch) {
        let rows = batch.num_rows();
        if rows < 1024 {
            return; // too few rows to go by: keep the last estimate
        }
        let mut text = 0;
        for (i, &col) in TEXT_COLUMNS.iter().enumerate() {
            let bytes = batch.column(col).to_data().buffers()[1].len();
            self.text[i] = bytes.div_ceil(rows);
            text += bytes;
        }
        // Besides its text, a line holds the timestamp, status, size and delimiters.
        self.line = text / rows + 45;
    }
}

/// Column builders of one date's records. `source` and `partition` are the same on every row,
/// so [`RecordsBuilder::finish`] builds them whole instead of copying them row by row.
struct RecordsBuilder {
    offset: Int64Builder,
    text: [StringBuilder; TEXT_COLUMNS.len()],
    timestamp: TimestampMicrosecondBuilder,
    tz: Int16Builder,
    date: Date32Builder,
    status: Int32Builder,
    size: Int64Builder,
}

impl RecordsBuilder {
    fn with_capacity(rows: usize, sizes: &RowSizes) -> Self {
        RecordsBuilder {
            offset: Int64Builder::with_capacity(rows),
            text: sizes
                .text
                .map(|b| StringBuilder::with_capacity(rows, rows * b)),
            timestamp: TimestampMicrosecondBuilder::with_capacity(rows),
            tz: Int16Builder::with_capacity(rows),
            date: Date32Builder::with_capacity(rows),
            status: Int32Builder::with_capacity(rows),
            size: Int64Builder::with_capacity(rows),
        }
    }

    #[inline]
    fn append(&mut self, t: Text<'_>, offset: i64, date: i32, r: &LogRecord<'_>) {
        self.offset.append_value(offset);
        let [host, ident, user, method, endpoint, protocol, referer, agent, format] =
            &mut self.text;
        host.append_value(t.of(r.host));
        let opt = |b: &mut StringBuilder, v: Option<&[u8]>| match v {
            Some(v) => b.append_value(t.of(v)),
            None => b.append_null(),
        };
        opt(ident, r.ident);
        opt(user, r.user);
        opt(method, r.method);
        opt(endpoint, r.endpoint);
        opt(protocol, r.protocol);
        opt(referer, r.referer);
        opt(agent, r.user_agent);
        format.append_value(r.format.as_str());
        self.timestamp
            .append_value(r.timestamp.utc_secs * 1_000_000);
        self.tz.append_value(r.timestamp.offset_minutes);
        self.date.append_value(date);
        self.status.append_value(i32::from(r.status));
        // Sizes above i64::MAX are rejected by the parser, so this conversion is lossless.
        self.size.append_option(r.content_size.map(|v| v as i64));
    }

    fn finish(&mut self, source: &str, partition: i32) -> crate::Result<RecordBatch> {
        let rows = self.offset.len();
        let [host, ident, user, method, endpoint, protocol, referer, agent, format] =
            &mut self.text;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(repeated(source, rows)),
            Arc::new(Int32Array::from_value(partition, rows)),
            Arc::new(self.offset.finish()),
            Arc::new(host.finish()),
            Arc::new(ident.finish()),
            Arc::new(user.finish()),
            Arc::new(self.timestamp.finish().with_timezone("UTC")),
            Arc::new(self.tz.finish()),
            Arc::new(self.date.finish()),
            Arc::new(method.finish()),
            Arc::new(endpoint.finish()),
            Arc::new(protocol.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.size.finish()),
            Arc::new(referer.finish()),
            Arc::new(agent.finish()),
            Arc::new(format.finish()),
        ];
        Ok(RecordBatch::try_new(schema::records(), cols)?)
    }
}

/// A text column of `rows` copies of `value`, built in one pass.
fn repeated(value: &str, rows: usize) -> StringArray {
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(value.len(), rows));
    StringArray::new(offsets, Buffer::from(value.repeat(rows).into_bytes()), None)
}

#[derive(Default)]
struct RejectsBuilder {
    offset: Int64Builder,
    reason: StringBuilder,
    raw: BinaryBuilder,
}

impl RejectsBuilder {
    fn append(&mut self, offset: i64, reason: RejectReason, raw: &[u8]) {
        self.offset.append_value(offset);
        self.reason.append_value(reason.as_str());
        self.raw.append_value(raw);
    }

    fn finish(&mut self, source: &str, partition: i32) -> crate::Result<RecordBatch> {
        let rows = self.offset.len();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(repeated(source, rows)),
            Arc::new(Int32Array::from_value(partition, rows)),
            Arc::new(self.offset.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw.finish()),
        ];
        Ok(RecordBatch::try_new(schema::rejects(), cols)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{AnalyticsConfig, Partial};

    #[test]
    fn line_splitting_handles_every_line_end() {
        let buf = b"a\nb\r\nc\rd";
        assert_eq!(
            lines(buf).collect::<Vec<_>>(),
            vec![&b"a"[..], b"b", b"c", b"d"]
        );
        assert_eq!(count_lines(b"a\n\nb\n"), 3);
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"\n"), 1);
    }

    #[test]
    fn chunk_groups_by_wall_clock_date_and_keeps_rejects() {
        let buf = b"h - - [01/Jul/1995:23:30:00 -0400] \"GET /a HTTP/1.0\" 200 1\n\
                    garbage\n\
                    h - - [02/Jul/1995:00:00:01 -0400] \"GET /b HTTP/1.0\" 404 -\n";
        let mut partial = Partial::new(&AnalyticsConfig::default());
        let mut p = ChunkParser::new("t".into(), 3);
        assert_eq!(p.push_lines(buf, 10, &mut partial), 13);
        let out = p.finish().unwrap();
        assert_eq!((out.records, out.rejected), (2, 1));
        let dates: Vec<String> = out
            .by_date
            .keys()
            .map(|d| crate::record::format_date(*d))
            .collect();
        assert_eq!(dates, vec!["1995-07-01", "1995-07-02"]);
        let rej = out.rejects.unwrap();
        assert_eq!(rej.num_rows(), 1);
        let offsets = rej
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        assert_eq!(offsets.value(0), 11);
        assert_eq!(partial.records(), 2);
        assert_eq!(partial.rejects(), 1);
        // The parser is reusable after finish.
        assert_eq!(p.buffered(), 0);
    }
}
