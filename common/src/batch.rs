//! Parses lines straight into Arrow arrays, one [`RecordBatch`] per wall-clock date, and feeds
//! the same parsed records to a [`Partial`] so parsing happens once per line.

use crate::analytics::Partial;
use crate::parse::parse_line;
use crate::record::{LogRecord, Position, RejectReason};
use crate::schema;
use arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Int16Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::record_batch::RecordBatch;
use memchr::memchr2;
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
    by_date: BTreeMap<i32, RecordsBuilder>,
    rejects: RejectsBuilder,
    records: u64,
    rejected: u64,
}

impl ChunkParser {
    pub fn new(source: Arc<str>, partition: i32) -> Self {
        ChunkParser {
            source,
            partition,
            by_date: BTreeMap::new(),
            rejects: RejectsBuilder::default(),
            records: 0,
            rejected: 0,
        }
    }

    /// Parses one line at `offset`, appends it to the right batch and observes it in `partial`.
    #[inline]
    pub fn push(&mut self, line: &[u8], offset: i64, partial: &mut Partial) {
        self.push_observed(line, offset, Some(partial));
    }

    /// Parses every line of `buf`, the first being at `first_offset`. Returns the next offset.
    pub fn push_lines(&mut self, buf: &[u8], first_offset: i64, partial: &mut Partial) -> i64 {
        let mut offset = first_offset;
        for line in lines(buf) {
            self.push_observed(line, offset, Some(&mut *partial));
            offset += 1;
        }
        offset
    }

    /// [`ChunkParser::push_lines`] without analytics: Arrow batches only. Lets a benchmark (or a
    /// caller that aggregates elsewhere) see the cost of parsing apart from aggregating.
    pub fn parse_lines(&mut self, buf: &[u8], first_offset: i64) -> i64 {
        let mut offset = first_offset;
        for line in lines(buf) {
            self.push_observed(line, offset, None);
            offset += 1;
        }
        offset
    }

    #[inline]
    fn push_observed(&mut self, line: &[u8], offset: i64, partial: Option<&mut Partial>) {
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
                self.by_date.entry(date).or_default().append(
                    &self.source,
                    self.partition,
                    offset,
                    date,
                    &rec,
                );
                self.records += 1;
            }
            Err(reason) => {
                let raw = crate::parse::strip_line_end(line);
                if let Some(partial) = partial {
                    partial.observe_reject(reason, raw, pos);
                }
                self.rejects
                    .append(&self.source, self.partition, offset, reason, raw);
                self.rejected += 1;
            }
        }
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
        for (date, mut b) in std::mem::take(&mut self.by_date) {
            out.by_date.insert(date, b.finish()?);
        }
        if out.rejected > 0 {
            out.rejects = Some(self.rejects.finish()?);
        }
        Ok(out)
    }
}

/// Appends bytes as UTF-8, replacing invalid sequences with U+FFFD (raw bytes of such lines stay
/// available in the source; the common case, valid UTF-8, copies without allocating).
#[inline]
fn append_str(b: &mut StringBuilder, v: &[u8]) {
    match std::str::from_utf8(v) {
        Ok(s) => b.append_value(s),
        Err(_) => b.append_value(String::from_utf8_lossy(v)),
    }
}

#[inline]
fn append_opt(b: &mut StringBuilder, v: Option<&[u8]>) {
    match v {
        Some(v) => append_str(b, v),
        None => b.append_null(),
    }
}

#[derive(Default)]
struct RecordsBuilder {
    source: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    host: StringBuilder,
    ident: StringBuilder,
    user: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    tz: Int16Builder,
    date: Date32Builder,
    method: StringBuilder,
    endpoint: StringBuilder,
    protocol: StringBuilder,
    status: Int32Builder,
    size: Int64Builder,
    referer: StringBuilder,
    agent: StringBuilder,
    format: StringBuilder,
}

impl RecordsBuilder {
    #[inline]
    fn append(&mut self, source: &str, partition: i32, offset: i64, date: i32, r: &LogRecord<'_>) {
        self.source.append_value(source);
        self.partition.append_value(partition);
        self.offset.append_value(offset);
        append_str(&mut self.host, r.host);
        append_opt(&mut self.ident, r.ident);
        append_opt(&mut self.user, r.user);
        self.timestamp
            .append_value(r.timestamp.utc_secs * 1_000_000);
        self.tz.append_value(r.timestamp.offset_minutes);
        self.date.append_value(date);
        append_opt(&mut self.method, r.method);
        append_opt(&mut self.endpoint, r.endpoint);
        append_opt(&mut self.protocol, r.protocol);
        self.status.append_value(i32::from(r.status));
        // Sizes above i64::MAX are rejected by the parser, so this conversion is lossless.
        self.size.append_option(r.content_size.map(|v| v as i64));
        append_opt(&mut self.referer, r.referer);
        append_opt(&mut self.agent, r.user_agent);
        self.format.append_value(r.format.as_str());
    }

    fn finish(&mut self) -> crate::Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.ident.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.timestamp.finish().with_timezone("UTC")),
            Arc::new(self.tz.finish()),
            Arc::new(self.date.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.endpoint.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.size.finish()),
            Arc::new(self.referer.finish()),
            Arc::new(self.agent.finish()),
            Arc::new(self.format.finish()),
        ];
        Ok(RecordBatch::try_new(schema::records(), cols)?)
    }
}

#[derive(Default)]
struct RejectsBuilder {
    source: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    reason: StringBuilder,
    raw: BinaryBuilder,
}

impl RejectsBuilder {
    fn append(
        &mut self,
        source: &str,
        partition: i32,
        offset: i64,
        reason: RejectReason,
        raw: &[u8],
    ) {
        self.source.append_value(source);
        self.partition.append_value(partition);
        self.offset.append_value(offset);
        self.reason.append_value(reason.as_str());
        self.raw.append_value(raw);
    }

    fn finish(&mut self) -> crate::Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.partition.finish()),
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
