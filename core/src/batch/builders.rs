//! Arrow column builders for the records and rejects of one chunk, sized ahead from what the
//! parser learned, and the text borrowing that keeps UTF-8 checks to one per block of lines.

use crate::record::{LogRecord, RejectReason};
use crate::schema;
use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Int16Builder, Int32Array,
    Int32Builder, Int64Builder, StringArray, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::record_batch::RecordBatch;
use memchr::memchr2;
use std::borrow::Cow;
use std::sync::Arc;

/// The text of a line, or of a chunk of lines. Valid UTF-8 (nearly every log) is checked once,
/// and fields, which the parser cuts next to ASCII bytes and so on character boundaries, are
/// borrowed from it as `&str` at no cost; otherwise each field is converted with U+FFFD
/// replacement. (Checking each field separately was a tenth of the parse time.)
#[derive(Clone, Copy)]
pub(super) struct Text<'a> {
    /// The line, or the whole buffer it is a part of.
    pub(super) line: &'a [u8],
    pub(super) valid: Option<&'a str>,
}

impl<'a> Text<'a> {
    #[inline]
    pub(super) fn new(line: &'a [u8]) -> Self {
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

/// Bytes of lines checked as UTF-8 at once (a block ends at the first line end past it).
const TEXT_BLOCK: usize = 8 << 10;

/// UTF-8 checked a block of lines at a time, each line borrowed from its block's checked text:
/// one check per byte and per block instead of one per line. A block holding invalid bytes (a
/// few lines in a million; the generator writes some) leaves its lines to be checked one by
/// one, so they do not make a whole chunk's other lines pay a check each.
#[derive(Default)]
pub(super) struct TextBlock<'a> {
    start: usize,
    end: usize,
    valid: Option<&'a str>,
}

impl<'a> TextBlock<'a> {
    /// The checked text holding `buf[start..end]`, a line, when its block is valid UTF-8.
    #[inline]
    pub(super) fn text_of(&mut self, buf: &'a [u8], start: usize, end: usize) -> Option<Text<'a>> {
        if end > self.end || self.end == 0 {
            let from = (start + TEXT_BLOCK).min(buf.len());
            // Past the line's own end whether it is shorter or longer than a block.
            self.end = memchr2(b'\n', b'\r', &buf[from..]).map_or(buf.len(), |i| from + i + 1);
            self.start = start;
            self.valid = std::str::from_utf8(&buf[start..self.end]).ok();
        }
        self.valid.map(|valid| Text {
            line: &buf[self.start..self.end],
            valid: Some(valid),
        })
    }
}

/// Text columns filled row by row, as indices into the records schema, in the order of
/// [`RecordsBuilder::text`]: host, ident, user, method, endpoint, protocol, referer,
/// user_agent, format.
pub(super) const TEXT_COLUMNS: [usize; 9] = [3, 4, 5, 9, 10, 11, 14, 15, 16];

/// Bytes per row of the text columns, to size builders before they fill: growing a buffer by
/// doubling copies it and touches fresh pages each time, which was a fifth of the parse time.
/// Starts from NASA-like guesses; [`RowSizes::learn`] replaces them with what it saw.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowSizes {
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
    pub(super) fn rows_in(&self, bytes: usize) -> usize {
        (bytes / self.line.max(1)).max(1024)
    }

    pub(super) fn learn(&mut self, batch: &RecordBatch) {
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
pub(super) struct RecordsBuilder {
    offset: Int64Builder,
    text: [StringBuilder; TEXT_COLUMNS.len()],
    timestamp: TimestampMicrosecondBuilder,
    tz: Int16Builder,
    date: Date32Builder,
    status: Int32Builder,
    size: Int64Builder,
    truncated_field: BooleanBuilder,
}

impl RecordsBuilder {
    pub(super) fn with_capacity(rows: usize, sizes: &RowSizes) -> Self {
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
            truncated_field: BooleanBuilder::with_capacity(rows),
        }
    }

    #[inline]
    pub(super) fn append(&mut self, t: Text<'_>, offset: i64, date: i32, r: &LogRecord<'_>) {
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
        self.truncated_field.append_value(r.truncated_field);
    }

    pub(super) fn finish(&mut self, source: &str, partition: i32) -> crate::Result<RecordBatch> {
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
            Arc::new(self.truncated_field.finish()),
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
pub(super) struct RejectsBuilder {
    offset: Int64Builder,
    reason: StringBuilder,
    raw: BinaryBuilder,
    length: Int64Builder,
}

impl RejectsBuilder {
    /// `length` is the whole line's length when `raw` holds only its beginning.
    pub(super) fn append(
        &mut self,
        offset: i64,
        reason: RejectReason,
        raw: &[u8],
        length: Option<u64>,
    ) {
        self.offset.append_value(offset);
        self.reason.append_value(reason.as_str());
        self.raw.append_value(raw);
        self.length
            .append_option(length.map(|l| i64::try_from(l).unwrap_or(i64::MAX)));
    }

    pub(super) fn finish(&mut self, source: &str, partition: i32) -> crate::Result<RecordBatch> {
        let rows = self.offset.len();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(repeated(source, rows)),
            Arc::new(Int32Array::from_value(partition, rows)),
            Arc::new(self.offset.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.length.finish()),
        ];
        Ok(RecordBatch::try_new(schema::rejects(), cols)?)
    }
}
