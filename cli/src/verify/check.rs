//! The pure exactly-once check: the topic's lines on one side, the published rows on the other,
//! matched by `(partition, offset)` and compared by a fingerprint of what the row says.
//!
//! Memory is a fingerprint (8 bytes) and a row count (1 byte) per offset of the topic, so a few
//! million lines cost tens of megabytes; neither lines nor rows are kept.

use sawmill_core::generate::seq::Seq;
use sawmill_core::parse::{parse_line, strip_line_end};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Offsets of each kind of problem kept per partition for the report.
pub const EXAMPLES: usize = 5;

/// What a published row says about its line, reduced to what parsing keeps of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row<'a> {
    Record {
        host: &'a str,
        timestamp_micros: i64,
        endpoint: Option<&'a str>,
        status: i32,
        content_size: Option<i64>,
    },
    Reject {
        reason: &'a str,
        raw: &'a [u8],
    },
}

/// A 64-bit fingerprint, never 0 (0 marks "no message at this offset").
fn finish(h: DefaultHasher) -> u64 {
    h.finish() | 1
}

impl Row<'_> {
    pub fn fingerprint(&self) -> u64 {
        // `DefaultHasher::new()` has fixed keys: the same row hashes the same in every run.
        let mut h = DefaultHasher::new();
        match *self {
            Row::Record {
                host,
                timestamp_micros,
                endpoint,
                status,
                content_size,
            } => {
                0u8.hash(&mut h);
                (host, timestamp_micros, endpoint, status, content_size).hash(&mut h);
            }
            Row::Reject { reason, raw } => {
                1u8.hash(&mut h);
                (reason, raw).hash(&mut h);
            }
        }
        finish(h)
    }
}

/// The fingerprint of the row a line must become: the parser's verdict on it, as the worker
/// (and `sawmill run`) parse it.
pub fn line_fingerprint(line: &[u8]) -> u64 {
    match parse_line(line) {
        Ok(rec) => {
            // Text columns replace invalid UTF-8 the same way (`String::from_utf8_lossy`).
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let endpoint: Option<Cow<'_, str>> = rec.endpoint.map(String::from_utf8_lossy);
            Row::Record {
                host: &text(rec.host),
                timestamp_micros: rec.timestamp.utc_secs * 1_000_000,
                endpoint: endpoint.as_deref(),
                status: i32::from(rec.status),
                content_size: rec.content_size.map(|s| s as i64),
            }
            .fingerprint()
        }
        Err(reason) => Row::Reject {
            reason: reason.as_str(),
            raw: strip_line_end(line),
        }
        .fingerprint(),
    }
}

/// One partition: the topic's range and fingerprints, and the rows seen per offset.
#[derive(Debug, Clone, Default)]
pub struct PartitionCheck {
    /// The topic's range `low..end` (low watermark, end offset).
    pub low: i64,
    pub end: i64,
    fingerprints: Vec<u64>,
    rows: Vec<u8>,
    messages: u64,
    total_rows: u64,
    out_of_range: u64,
    mismatched: u64,
    out_of_range_examples: Vec<i64>,
    mismatched_examples: Vec<i64>,
}

impl PartitionCheck {
    /// A partition whose topic range is `low..end` (empty for a partition the topic lacks).
    pub fn new(low: i64, end: i64) -> Self {
        let len = usize::try_from(end.saturating_sub(low)).unwrap_or(0);
        PartitionCheck {
            low,
            end,
            fingerprints: vec![0; len],
            rows: vec![0; len],
            ..Default::default()
        }
    }

    fn index(&self, offset: i64) -> Option<usize> {
        (self.low..self.end)
            .contains(&offset)
            .then(|| (offset - self.low) as usize)
    }

    /// The topic's message at `offset` (ignored outside the range: it was produced after the
    /// end offset was read).
    pub fn message(&mut self, offset: i64, fingerprint: u64) {
        if let Some(i) = self.index(offset) {
            self.messages += u64::from(self.fingerprints[i] == 0);
            self.fingerprints[i] = fingerprint;
        }
    }

    /// A published row at `offset`.
    pub fn row(&mut self, offset: i64, fingerprint: u64) {
        self.total_rows += 1;
        let Some(i) = self.index(offset) else {
            self.out_of_range += 1;
            push_example(&mut self.out_of_range_examples, offset);
            return;
        };
        self.rows[i] = self.rows[i].saturating_add(1);
        if self.fingerprints[i] != fingerprint {
            self.mismatched += 1;
            push_example(&mut self.mismatched_examples, offset);
        }
    }

    /// The verdict on this partition.
    pub fn report(&self, partition: i32) -> PartitionReport {
        let mut r = PartitionReport {
            partition,
            low: self.low,
            end: self.end,
            messages: self.messages,
            rows: self.total_rows,
            out_of_range: self.out_of_range,
            mismatched: self.mismatched,
            out_of_range_examples: self.out_of_range_examples.clone(),
            mismatched_examples: self.mismatched_examples.clone(),
            ..Default::default()
        };
        for (i, (&fp, &n)) in self.fingerprints.iter().zip(&self.rows).enumerate() {
            let offset = self.low + i as i64;
            if fp != 0 && n == 0 {
                r.lost += 1;
                push_example(&mut r.lost_examples, offset);
            }
            if n > 1 {
                r.duplicated += 1;
                push_example(&mut r.duplicated_examples, offset);
            }
        }
        r
    }
}

fn push_example(v: &mut Vec<i64>, offset: i64) {
    if v.len() < EXAMPLES {
        v.push(offset);
    }
}

/// The verdict on one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionReport {
    pub partition: i32,
    pub low: i64,
    pub end: i64,
    /// Messages in the topic within `low..end`.
    pub messages: u64,
    /// Published rows of this partition (records and rejects).
    pub rows: u64,
    /// Messages in no row.
    pub lost: u64,
    /// Offsets in more than one row.
    pub duplicated: u64,
    /// Rows whose offset is outside `low..end`.
    pub out_of_range: u64,
    /// Rows whose offset holds a different line in the topic (or no message at all).
    pub mismatched: u64,
    pub lost_examples: Vec<i64>,
    pub duplicated_examples: Vec<i64>,
    pub out_of_range_examples: Vec<i64>,
    pub mismatched_examples: Vec<i64>,
}

impl PartitionReport {
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.out_of_range == 0 && self.mismatched == 0
    }
}

/// Tagged lines in the topic, per `(run, key)`: the producer's side of the story (a line the
/// producer sent twice, or never, is no fault of the pipeline, but a test wants to know).
#[derive(Debug, Clone, Default)]
pub struct SeqTally {
    /// `(run, key)` → how many times each `n` occurred.
    seen: BTreeMap<(u64, u32), Vec<u8>>,
    pub untagged: u64,
}

/// The tally of one `(run, key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqReport {
    pub run: u64,
    pub key: u32,
    /// Distinct `n` seen; `0..=max_n` should all be there.
    pub distinct: u64,
    pub max_n: u64,
    /// `n` below `max_n` never seen.
    pub gaps: u64,
    /// `n` seen more than once.
    pub duplicated: u64,
}

impl SeqTally {
    /// Counts the tag of one line of the topic, if it has one.
    pub fn line(&mut self, line: &[u8]) {
        let Some(Seq { run, key, n }) = Seq::find(line) else {
            self.untagged += 1;
            return;
        };
        let counts = self.seen.entry((run, key)).or_default();
        // A tag is the generator's line number: anything absurd is a foreign line, not a reason
        // to allocate gigabytes.
        let Some(i) = usize::try_from(n).ok().filter(|&i| i < 1 << 30) else {
            self.untagged += 1;
            return;
        };
        if counts.len() <= i {
            counts.resize(i + 1, 0);
        }
        counts[i] = counts[i].saturating_add(1);
    }

    pub fn report(&self) -> Vec<SeqReport> {
        self.seen
            .iter()
            .map(|(&(run, key), counts)| SeqReport {
                run,
                key,
                distinct: counts.iter().filter(|&&c| c > 0).count() as u64,
                max_n: counts.len().saturating_sub(1) as u64,
                gaps: counts.iter().filter(|&&c| c == 0).count() as u64,
                duplicated: counts.iter().filter(|&&c| c > 1).count() as u64,
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
