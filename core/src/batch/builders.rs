//! Arrow column builders for the records and rejects of one chunk, sized ahead from what the
//! parser learned, and the text borrowing that keeps UTF-8 checks to one per block of lines.

use crate::record::{LogRecord, RejectReason};
use crate::schema;
use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Array, Int16Array, Int16Builder,
    Int32Array, Int32Builder, Int64Builder, StringArray, StringBuilder,
    TimestampMicrosecondBuilder,
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
/// [`RowSizes`]'s `text`: host, ident, user, method, endpoint, protocol, referer, user_agent,
/// format.
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

/// Column builders of one date's records. `source`, `partition` and `date` are the same on every
/// row, so [`RecordsBuilder::finish`] builds them whole instead of copying them row by row; the
/// columns that are usually one value on every row (the common format's missing ident, user,
/// referer and user agent, the format, the time zone) are only counted until a row differs.
pub(super) struct RecordsBuilder {
    date: i32,
    offset: Int64Builder,
    host: StringBuilder,
    method: StringBuilder,
    endpoint: StringBuilder,
    protocol: StringBuilder,
    ident: TextRun,
    user: TextRun,
    referer: TextRun,
    agent: TextRun,
    format: TextRun,
    timestamp: TimestampMicrosecondBuilder,
    tz: TzRun,
    status: Int32Builder,
    size: Int64Builder,
    truncated_field: BooleanBuilder,
}

impl RecordsBuilder {
    pub(super) fn with_capacity(date: i32, rows: usize, sizes: &RowSizes) -> Self {
        let [host, ident, user, method, endpoint, protocol, referer, agent, format] = sizes.text;
        let text = |b: usize| StringBuilder::with_capacity(rows, rows * b);
        let run = |b: usize| TextRun::new(rows, rows * b);
        RecordsBuilder {
            date,
            offset: Int64Builder::with_capacity(rows),
            host: text(host),
            method: text(method),
            endpoint: text(endpoint),
            protocol: text(protocol),
            ident: run(ident),
            user: run(user),
            referer: run(referer),
            agent: run(agent),
            format: run(format),
            timestamp: TimestampMicrosecondBuilder::with_capacity(rows),
            tz: TzRun::new(rows),
            status: Int32Builder::with_capacity(rows),
            size: Int64Builder::with_capacity(rows),
            truncated_field: BooleanBuilder::with_capacity(rows),
        }
    }

    #[inline]
    pub(super) fn append(&mut self, t: Text<'_>, offset: i64, r: &LogRecord<'_>) {
        self.offset.append_value(offset);
        self.host.append_value(t.of(r.host));
        let opt = |b: &mut StringBuilder, v: Option<&[u8]>| match v {
            Some(v) => b.append_value(t.of(v)),
            None => b.append_null(),
        };
        opt(&mut self.method, r.method);
        opt(&mut self.endpoint, r.endpoint);
        opt(&mut self.protocol, r.protocol);
        self.ident.append(t, r.ident);
        self.user.append(t, r.user);
        self.referer.append(t, r.referer);
        self.agent.append(t, r.user_agent);
        self.format.append_str(r.format.as_str());
        self.timestamp
            .append_value(r.timestamp.utc_secs * 1_000_000);
        self.tz.append(r.timestamp.offset_minutes);
        self.status.append_value(i32::from(r.status));
        // Sizes above i64::MAX are rejected by the parser, so this conversion is lossless.
        self.size.append_option(r.content_size.map(|v| v as i64));
        self.truncated_field.append_value(r.truncated_field);
    }

    pub(super) fn finish(&mut self, source: &str, partition: i32) -> crate::Result<RecordBatch> {
        let rows = self.offset.len();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(repeated(source, rows)),
            Arc::new(Int32Array::from_value(partition, rows)),
            Arc::new(self.offset.finish()),
            Arc::new(self.host.finish()),
            self.ident.finish(),
            self.user.finish(),
            Arc::new(self.timestamp.finish().with_timezone("UTC")),
            self.tz.finish(),
            Arc::new(Date32Array::from_value(self.date, rows)),
            Arc::new(self.method.finish()),
            Arc::new(self.endpoint.finish()),
            Arc::new(self.protocol.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.size.finish()),
            self.referer.finish(),
            self.agent.finish(),
            self.format.finish(),
            Arc::new(self.truncated_field.finish()),
        ];
        Ok(RecordBatch::try_new(schema::records(), cols)?)
    }
}

/// A text column counted while every row holds the same value (or null), built only once a row
/// differs: the missing fields of the common format and the format itself cost a compare per
/// row instead of an append.
pub(super) struct TextRun {
    /// Rows so far, while they are all `first` (and `built` is `None`).
    same: usize,
    first: Option<String>,
    built: Option<StringBuilder>,
    /// Capacity for the builder, should the column turn out not to be one value.
    rows: usize,
    bytes: usize,
}

impl TextRun {
    fn new(rows: usize, bytes: usize) -> Self {
        TextRun {
            same: 0,
            first: None,
            built: None,
            rows,
            bytes,
        }
    }

    #[inline]
    fn append(&mut self, t: Text<'_>, v: Option<&[u8]>) {
        match (&mut self.built, v) {
            (Some(b), Some(v)) => b.append_value(t.of(v)),
            (Some(b), None) => b.append_null(),
            (None, None) if self.first.is_none() => self.same += 1,
            (None, v) => self.append_slow(v.map(|v| t.of(v)).as_deref()),
        }
    }

    #[inline]
    fn append_str(&mut self, v: &str) {
        match &mut self.built {
            Some(b) => b.append_value(v),
            None if self.first.as_deref() == Some(v) => self.same += 1,
            None => self.append_slow(Some(v)),
        }
    }

    /// The first row, or the first that differs (the column is built from then on).
    #[cold]
    fn append_slow(&mut self, v: Option<&str>) {
        if self.same == 0 {
            self.first = v.map(String::from);
            self.same = 1;
            return;
        }
        if self.first.as_deref() == v {
            self.same += 1;
            return;
        }
        let mut b = StringBuilder::with_capacity(self.rows.max(self.same + 1), self.bytes);
        match &self.first {
            Some(first) => (0..self.same).for_each(|_| b.append_value(first)),
            None => b.append_nulls(self.same),
        }
        b.append_option(v);
        self.built = Some(b);
    }

    fn finish(&mut self) -> ArrayRef {
        let same = std::mem::take(&mut self.same);
        let first = self.first.take();
        match (self.built.take(), first) {
            (Some(mut b), _) => Arc::new(b.finish()),
            (None, Some(v)) => Arc::new(repeated(&v, same)),
            (None, None) => arrow::array::new_null_array(&arrow::datatypes::DataType::Utf8, same),
        }
    }
}

/// The time-zone column, counted while every row has the same offset (one server's logs).
pub(super) struct TzRun {
    same: usize,
    first: i16,
    built: Option<Int16Builder>,
    rows: usize,
}

impl TzRun {
    fn new(rows: usize) -> Self {
        TzRun {
            same: 0,
            first: 0,
            built: None,
            rows,
        }
    }

    #[inline]
    fn append(&mut self, v: i16) {
        match &mut self.built {
            Some(b) => b.append_value(v),
            None if self.same > 0 && self.first == v => self.same += 1,
            None => self.append_slow(v),
        }
    }

    #[cold]
    fn append_slow(&mut self, v: i16) {
        if self.same == 0 {
            self.first = v;
            self.same = 1;
            return;
        }
        let mut b = Int16Builder::with_capacity(self.rows.max(self.same + 1));
        b.append_value_n(self.first, self.same);
        b.append_value(v);
        self.built = Some(b);
    }

    fn finish(&mut self) -> ArrayRef {
        let same = std::mem::take(&mut self.same);
        match self.built.take() {
            Some(mut b) => Arc::new(b.finish()),
            None => Arc::new(Int16Array::from_value(self.first, same)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use proptest::prelude::*;

    proptest! {
        /// Counted or built, a run column holds exactly the values appended, in order.
        #[test]
        fn runs_hold_what_was_appended(
            values in proptest::collection::vec(proptest::option::of(0u8..3), 0..40),
            tzs in proptest::collection::vec(-2i16..2, 0..40),
        ) {
            let words: Vec<Option<String>> = values.iter().map(|v| v.map(|v| format!("w{v}"))).collect();
            let line = words.iter().flatten().cloned().collect::<Vec<_>>().join(" ");
            let t = Text::new(line.as_bytes());
            let mut run = TextRun::new(4, 8);
            let mut strs = TextRun::new(4, 8);
            let mut at = 0;
            for w in &words {
                // Fields are sub-slices of the line, as the parser gives them.
                let field = w.as_ref().map(|w| {
                    let f = &line.as_bytes()[at..at + w.len()];
                    at += w.len() + 1;
                    f
                });
                run.append(t, field);
                strs.append_str(w.as_deref().unwrap_or(""));
            }
            let got = run.finish();
            let got = got.as_string::<i32>();
            prop_assert_eq!(got.len(), words.len());
            for (i, w) in words.iter().enumerate() {
                prop_assert_eq!(got.is_valid(i).then(|| got.value(i)), w.as_deref());
            }
            let got = strs.finish();
            let got = got.as_string::<i32>();
            prop_assert_eq!(got.null_count(), 0);
            for (i, w) in words.iter().enumerate() {
                prop_assert_eq!(got.value(i), w.as_deref().unwrap_or(""));
            }
            let mut tz = TzRun::new(4);
            tzs.iter().for_each(|&v| tz.append(v));
            let got = tz.finish();
            let got = got.as_primitive::<arrow::datatypes::Int16Type>();
            prop_assert_eq!(got.values().to_vec(), tzs.clone());
            prop_assert_eq!(got.null_count(), 0);
            // Finished, it starts over empty.
            prop_assert_eq!(run.finish().len(), 0);
            prop_assert_eq!(tz.finish().len(), 0);
        }
    }
}
