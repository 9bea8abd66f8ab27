//! The summary tables, as Arrow record batches with a deterministic row order.
//!
//! Names and leading columns are the original pipeline's; columns after those are Sawmill's
//! additions (calendar `date`, input position). Counts are `Int64` (saturating at `i64::MAX`),
//! day/hour/day-of-week `Int32`, dates `Date32`, text `Utf8` (invalid UTF-8 replaced).
//! `day` is the day of month and `dayofweek`/`weekday` Spark's (1 = Sunday ... 7 = Saturday),
//! both of the wall-clock date. Per-date tables are keyed by calendar date, not day of month.
//!
//! | table | columns | rows, in order |
//! |---|---|---|
//! | `null_value_count` | host, timestamp, method, endpoint, protocol, status, content_size | one: records missing each field (host: empty) |
//! | `content_stats` | min/max_content_size, mean/std_content_size (`Float64`), count_content_size | one; see [`super::stats`] |
//! | `table_404` | endpoint (nullable), host, dayofweek, day, hour, date, partition, offset, count, overflow | each 404 (count 1), by (partition, offset); then the `(other)` row |
//! | `status_count` | status, count | by status |
//! | `host_count` | host, count, overflow | count desc, host; then the `(other)` row |
//! | `endpoint_count` | endpoint (nullable), weekday, count, overflow | count desc, endpoint (null first), weekday; then `(other)` rows per weekday |
//! | `unique_host_count` | day, count, date, overflow | distinct hosts (an upper bound where `overflow`), by date |
//! | `daily_request_count` | day, count, date | by date |
//! | `hourly_request_count` | hour, count | hours 0..=23, all of them |
//! | `daily_bytes` | date, day, bytes | sum of known sizes, by date |
//! | `daily_404_count` | date, day, count | dates with 404s, by date |
//! | `hourly_404_count` | hour, count | hours 0..=23, all of them |
//! | `reject_count` | reason, count | reasons that occurred, in [`RejectReason::ALL`] order |
//! | `reject_examples` | reason, partition, offset, raw (`Binary`) | by reason as above, then position |
//! | `totals` | records, rejects, bytes, distinct_hosts, overflow | one |
//!
//! Caps (`super::caps`): rows beyond `max_distinct_hosts` hosts, `max_distinct_endpoints`
//! endpoints or `max_404_rows` 404 rows are folded into one row keyed [`OTHER_KEY`] (host and
//! endpoint) with `overflow = true`, placed last; its `count` is exactly what was folded
//! (`table_404`'s `(other)` row has date 1970-01-01, zero day/hour fields and position -1).
//! `overflow` is false on every other row, and on `totals` says whether anything was folded.
//! A table without a folded row is exactly what it was without caps.

use super::caps::{add_endpoint, OTHER_KEY};
use super::partial::{EndpointStats, Partial};
use crate::record::{civil_from_days, spark_dayofweek, RejectReason};
use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use std::borrow::Cow;
use std::sync::Arc;

/// Every table [`Partial::tables`] returns, in that order.
pub const TABLE_NAMES: [&str; 15] = [
    "null_value_count",
    "content_stats",
    "table_404",
    "status_count",
    "host_count",
    "endpoint_count",
    "unique_host_count",
    "daily_request_count",
    "hourly_request_count",
    "daily_bytes",
    "daily_404_count",
    "hourly_404_count",
    "reject_count",
    "reject_examples",
    "totals",
];

/// The schema of summary table `name`, or `None` for an unknown name.
pub fn schema(name: &str) -> Option<SchemaRef> {
    Partial::new(&Default::default())
        .tables()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| b.schema())
}

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn count128(v: u128) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn text(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn day_of_month(date: i32) -> i32 {
    i32::from(civil_from_days(date).2)
}

/// Column builders: `(name, nullable?, array)`.
fn i64s(name: &str, v: impl IntoIterator<Item = i64>) -> (Field, ArrayRef) {
    let a = Int64Array::from_iter_values(v);
    (Field::new(name, DataType::Int64, false), Arc::new(a))
}

fn i32s(name: &str, v: impl IntoIterator<Item = i32>) -> (Field, ArrayRef) {
    let a = Int32Array::from_iter_values(v);
    (Field::new(name, DataType::Int32, false), Arc::new(a))
}

fn dates(name: &str, v: impl IntoIterator<Item = i32>) -> (Field, ArrayRef) {
    let a = Date32Array::from_iter_values(v);
    (Field::new(name, DataType::Date32, false), Arc::new(a))
}

fn bools(name: &str, v: impl IntoIterator<Item = bool>) -> (Field, ArrayRef) {
    let a: BooleanArray = v.into_iter().map(Some).collect();
    (Field::new(name, DataType::Boolean, false), Arc::new(a))
}

fn strs<'a>(name: &str, v: impl IntoIterator<Item = Cow<'a, str>>) -> (Field, ArrayRef) {
    let a = StringArray::from_iter_values(v);
    (Field::new(name, DataType::Utf8, false), Arc::new(a))
}

fn opt_strs<'a>(
    name: &str,
    v: impl IntoIterator<Item = Option<Cow<'a, str>>>,
) -> (Field, ArrayRef) {
    let a: StringArray = v.into_iter().collect();
    (Field::new(name, DataType::Utf8, true), Arc::new(a))
}

fn batch(name: &'static str, cols: Vec<(Field, ArrayRef)>) -> (&'static str, RecordBatch) {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols.into_iter().unzip();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let b = RecordBatch::try_new(schema, arrays)
        .expect("every column is built with its field and the same row count");
    (name, b)
}

/// An endpoint (`None`: missing) and its counts.
type EndpointEntry<'a> = (Option<&'a [u8]>, &'a EndpointStats);

impl Partial {
    /// The summary tables, named as in [`TABLE_NAMES`] and in that order. Row order is
    /// deterministic (see the table in the module docs), so merged partials give equal batches
    /// whatever the merge order.
    pub fn tables(&self) -> Vec<(&'static str, RecordBatch)> {
        TABLE_NAMES
            .iter()
            .filter_map(|&name| Some((name, self.table(name)?)))
            .collect()
    }

    /// The summary table `name` (one of [`TABLE_NAMES`]; `None` for another name), built on its
    /// own: whoever needs them all builds them on several threads (`summary::encode_changed`).
    pub fn table(&self, name: &str) -> Option<RecordBatch> {
        let days = self.sorted_days();
        let other_text = || Cow::Borrowed(OTHER_KEY);
        let by_date = |name, f: &dyn Fn(&super::partial::Day) -> u64| {
            batch(
                name,
                vec![
                    i32s("day", days.iter().map(|d| day_of_month(d.date))),
                    i64s("count", days.iter().map(|d| count(f(d)))),
                    dates("date", days.iter().map(|d| d.date)),
                ],
            )
        };
        let hourly = |name, v: &[u64; 24]| {
            batch(
                name,
                vec![
                    i32s("hour", 0..24),
                    i64s("count", v.iter().map(|&c| count(c))),
                ],
            )
        };
        let (_, table) = match name {
            "null_value_count" => {
                let n = &self.nulls;
                batch(
                    "null_value_count",
                    vec![
                        i64s("host", [count(n.host)]),
                        i64s("timestamp", [0]),
                        i64s("method", [count(n.method)]),
                        i64s("endpoint", [count(n.endpoint)]),
                        i64s("protocol", [count(n.protocol)]),
                        i64s("status", [0]),
                        i64s("content_size", [count(n.content_size)]),
                    ],
                )
            }
            "content_stats" => {
                let zeros = if self.cfg.missing_size_as_zero {
                    self.nulls.content_size
                } else {
                    0
                };
                let cs = self.sizes.content_stats(zeros);
                let opt_i64 =
                    |v: Option<u64>| Arc::new(Int64Array::from(vec![v.map(count)])) as ArrayRef;
                let opt_f64 = |v: Option<f64>| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
                batch(
                    "content_stats",
                    vec![
                        (
                            Field::new("min_content_size", DataType::Int64, true),
                            opt_i64(cs.min),
                        ),
                        (
                            Field::new("max_content_size", DataType::Int64, true),
                            opt_i64(cs.max),
                        ),
                        (
                            Field::new("mean_content_size", DataType::Float64, true),
                            opt_f64(cs.mean),
                        ),
                        (
                            Field::new("std_content_size", DataType::Float64, true),
                            opt_f64(cs.std),
                        ),
                        i64s("count_content_size", [count(cs.count)]),
                    ],
                )
            }
            "table_404" => {
                let mut rows = self.sorted_404();
                rows.truncate(self.cfg.max_404_rows);
                // Every 404 has a row until the cap: the status count says how many were folded.
                let folded_404 = self.status[404].saturating_sub(rows.len() as u64);
                let other = (folded_404 > 0).then_some(folded_404);
                batch(
                    "table_404",
                    vec![
                        opt_strs(
                            "endpoint",
                            rows.iter()
                                .map(|r| self.endpoint_key(r.endpoint).map(text))
                                .chain(other.map(|_| Some(other_text()))),
                        ),
                        strs(
                            "host",
                            rows.iter()
                                .map(|r| text(self.host_key(r.host)))
                                .chain(other.map(|_| other_text())),
                        ),
                        i32s(
                            "dayofweek",
                            rows.iter()
                                .map(|r| i32::from(spark_dayofweek(r.date)))
                                .chain(other.map(|_| 0)),
                        ),
                        i32s(
                            "day",
                            rows.iter()
                                .map(|r| day_of_month(r.date))
                                .chain(other.map(|_| 0)),
                        ),
                        i32s(
                            "hour",
                            rows.iter()
                                .map(|r| i32::from(r.hour))
                                .chain(other.map(|_| 0)),
                        ),
                        dates("date", rows.iter().map(|r| r.date).chain(other.map(|_| 0))),
                        i32s(
                            "partition",
                            rows.iter()
                                .map(|r| r.pos.partition)
                                .chain(other.map(|_| -1)),
                        ),
                        i64s(
                            "offset",
                            rows.iter().map(|r| r.pos.offset).chain(other.map(|_| -1)),
                        ),
                        i64s("count", rows.iter().map(|_| 1).chain(other.map(count))),
                        bools(
                            "overflow",
                            rows.iter().map(|_| false).chain(other.map(|_| true)),
                        ),
                    ],
                )
            }
            "status_count" => {
                let statuses: Vec<(i32, u64)> = self
                    .status
                    .iter()
                    .enumerate()
                    .map(|(s, &c)| (s as i32, c))
                    .chain(self.status_other.iter().map(|(&s, &c)| (i32::from(s), c)))
                    .filter(|&(_, c)| c > 0)
                    .collect();
                batch(
                    "status_count",
                    vec![
                        i32s("status", statuses.iter().map(|s| s.0)),
                        i64s("count", statuses.iter().map(|s| count(s.1))),
                    ],
                )
            }
            "host_count" => {
                let mut hosts = self.hosts_by_count(|h| h.count);
                let mut other_hosts = self.folded.host_requests;
                if hosts.len() > self.cfg.max_distinct_hosts {
                    let beyond = hosts.split_off(self.cfg.max_distinct_hosts);
                    other_hosts =
                        other_hosts.saturating_add(beyond.iter().map(|h| h.1).sum::<u64>());
                }
                let other = (other_hosts > 0).then_some(other_hosts);
                batch(
                    "host_count",
                    vec![
                        strs(
                            "host",
                            hosts
                                .iter()
                                .map(|&(k, _)| text(k))
                                .chain(other.map(|_| other_text())),
                        ),
                        i64s(
                            "count",
                            hosts.iter().map(|&(_, c)| count(c)).chain(other.map(count)),
                        ),
                        bools(
                            "overflow",
                            hosts.iter().map(|_| false).chain(other.map(|_| true)),
                        ),
                    ],
                )
            }
            "endpoint_count" => {
                let (kept, other_eps) = self.endpoints_capped();
                let mut eps: Vec<(Option<&[u8]>, i32, u64)> = kept
                    .into_iter()
                    .flat_map(|(k, s)| {
                        (0..7)
                            .filter(|&w| s.weekday[w] > 0)
                            .map(move |w| (k, w as i32 + 1, s.weekday[w]))
                    })
                    .collect();
                eps.sort_unstable_by(|a, b| {
                    b.2.cmp(&a.2).then_with(|| (a.0, a.1).cmp(&(b.0, b.1)))
                });
                let kept_rows = eps.len();
                eps.extend((0..7).filter(|&w| other_eps.weekday[w] > 0).map(|w| {
                    (
                        Some(OTHER_KEY.as_bytes()),
                        w as i32 + 1,
                        other_eps.weekday[w],
                    )
                }));
                batch(
                    "endpoint_count",
                    vec![
                        opt_strs("endpoint", eps.iter().map(|e| e.0.map(text))),
                        i32s("weekday", eps.iter().map(|e| e.1)),
                        i64s("count", eps.iter().map(|e| count(e.2))),
                        bools("overflow", (0..eps.len()).map(|i| i >= kept_rows)),
                    ],
                )
            }
            "unique_host_count" => batch(
                "unique_host_count",
                vec![
                    i32s("day", days.iter().map(|d| day_of_month(d.date))),
                    i64s("count", days.iter().map(|d| count(d.distinct_hosts()))),
                    dates("date", days.iter().map(|d| d.date)),
                    bools("overflow", days.iter().map(|d| d.folded_hosts > 0)),
                ],
            ),
            "daily_request_count" => by_date("daily_request_count", &|d| d.requests),
            "hourly_request_count" => hourly("hourly_request_count", &self.hourly),
            "daily_bytes" => batch(
                "daily_bytes",
                vec![
                    dates("date", days.iter().map(|d| d.date)),
                    i32s("day", days.iter().map(|d| day_of_month(d.date))),
                    i64s("bytes", days.iter().map(|d| count128(d.bytes))),
                ],
            ),
            "daily_404_count" => {
                let days_404: Vec<_> = days.iter().filter(|d| d.c404 > 0).collect();
                batch(
                    "daily_404_count",
                    vec![
                        dates("date", days_404.iter().map(|d| d.date)),
                        i32s("day", days_404.iter().map(|d| day_of_month(d.date))),
                        i64s("count", days_404.iter().map(|d| count(d.c404))),
                    ],
                )
            }
            "hourly_404_count" => hourly("hourly_404_count", &self.hourly_404),
            "reject_count" => {
                let reasons: Vec<(RejectReason, u64)> = RejectReason::ALL
                    .into_iter()
                    .map(|r| (r, self.reject_stats[r as usize].count))
                    .filter(|&(_, c)| c > 0)
                    .collect();
                batch(
                    "reject_count",
                    vec![
                        strs(
                            "reason",
                            reasons.iter().map(|r| Cow::Borrowed(r.0.as_str())),
                        ),
                        i64s("count", reasons.iter().map(|r| count(r.1))),
                    ],
                )
            }
            "reject_examples" => {
                let examples: Vec<_> = RejectReason::ALL
                    .into_iter()
                    .flat_map(|r| {
                        self.reject_stats[r as usize]
                            .examples
                            .iter()
                            .map(move |(pos, raw)| (r, *pos, &**raw))
                    })
                    .collect();
                let raw: BinaryArray = examples.iter().map(|e| Some(e.2)).collect();
                batch(
                    "reject_examples",
                    vec![
                        strs(
                            "reason",
                            examples.iter().map(|e| Cow::Borrowed(e.0.as_str())),
                        ),
                        i32s("partition", examples.iter().map(|e| e.1.partition)),
                        i64s("offset", examples.iter().map(|e| e.1.offset)),
                        (Field::new("raw", DataType::Binary, false), Arc::new(raw)),
                    ],
                )
            }
            "totals" => batch(
                "totals",
                vec![
                    i64s("records", [count(self.records)]),
                    i64s("rejects", [count(self.rejects)]),
                    i64s("bytes", [count128(self.sizes.sum)]),
                    i64s("distinct_hosts", [count(self.distinct_hosts())]),
                    bools("overflow", [self.overflowed()]),
                ],
            ),
            _ => return None,
        };
        Some(table)
    }

    /// Hosts with a non-zero `f`, sorted by that count descending, then host ascending.
    pub(super) fn hosts_by_count(
        &self,
        f: impl Fn(&super::partial::HostStats) -> u64,
    ) -> Vec<(&[u8], u64)> {
        let mut v: Vec<(&[u8], u64)> = self
            .hosts
            .iter()
            .map(|(_, k, s)| (k, f(s)))
            .filter(|&(_, c)| c > 0)
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// The endpoints a table lists (the missing one included) and what the endpoint cap folds:
    /// merges' folded endpoints plus, when more than the cap are held, the least requested.
    pub(super) fn endpoints_capped(&self) -> (Vec<EndpointEntry<'_>>, EndpointStats) {
        let mut kept: Vec<_> = self.endpoints_with_null().collect();
        let mut other = self.folded.endpoints;
        // The missing endpoint is not a key: it never counts against the cap.
        let cap = self.cfg.max_distinct_endpoints
            + usize::from(kept.last().is_some_and(|e| e.0.is_none()));
        if kept.len() > cap {
            let total =
                |s: &EndpointStats| s.weekday.iter().fold(0u64, |a, &c| a.saturating_add(c));
            kept.sort_unstable_by(|a, b| {
                (a.0.is_some(), std::cmp::Reverse(total(a.1)), a.0).cmp(&(
                    b.0.is_some(),
                    std::cmp::Reverse(total(b.1)),
                    b.0,
                ))
            });
            for (_, s) in kept.split_off(cap) {
                add_endpoint(&mut other, s);
            }
        }
        (kept, other)
    }

    /// Every endpoint's stats, the missing endpoint as `None` (when it occurred).
    pub(super) fn endpoints_with_null(
        &self,
    ) -> impl Iterator<Item = (Option<&[u8]>, &super::partial::EndpointStats)> {
        let null =
            (self.null_endpoint != Default::default()).then_some((None, &self.null_endpoint));
        self.endpoints
            .iter()
            .map(|(_, k, s)| (Some(k), s))
            .chain(null)
    }
}
