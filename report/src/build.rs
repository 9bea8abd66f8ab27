//! Builds a [`Report`] from the summary tables.
//!
//! Every number is read from a table; the only derivations are the notebook's own: requests per
//! host (two per-date tables joined by date), top endpoints over all weekdays (`endpoint_count`
//! summed per endpoint), the top 404 endpoints and hosts (counted from `table_404`'s rows) and the
//! first row of each weekday in `endpoint_count`. Rankings order by count descending, then key
//! ascending with a missing endpoint first, as the summary tables themselves do.

use crate::columns::{complete, opt, opt_str, table, Tables};
use crate::error::Result;
use crate::model::*;
use sawmill_core::record::format_date;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Spark's `dayofweek` 1..=7.
pub const WEEKDAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Builds the report: reads every table it needs, then draws the charts. An absent table is
/// taken as empty (that is how a table without rows reads back); an absent one-row table
/// (`totals`, `content_stats`, `null_value_count`) is an error naming it.
pub fn build(tables: &Tables, opts: &ReportOptions) -> Result<Report> {
    let tables = &complete(tables);
    let mut report = Report {
        source: opts.source.clone(),
        top: opts.top,
        totals: totals(tables)?,
        missing: missing(tables)?,
        content_size: content_size(tables)?,
        status: status(tables)?,
        top_hosts: top_hosts(tables, opts.top)?,
        top_endpoints: top_endpoints(tables, opts.top)?,
        daily_distinct_hosts: per_date(tables, "unique_host_count", "count")?,
        daily_requests_per_host: requests_per_host(tables)?,
        not_found: not_found(tables, opts.top)?,
        top_endpoint_by_weekday: weekday_tops(tables)?,
        hourly_requests: hourly(tables, "hourly_request_count")?,
        daily_bytes: per_date(tables, "daily_bytes", "bytes")?,
        rejects: rejects(tables, opts.reject_examples)?,
        charts: Vec::new(),
    };
    report.charts = crate::report_charts::charts(&report)?;
    Ok(report)
}

fn totals(tables: &Tables) -> Result<Totals> {
    let t = table(tables, "totals")?;
    t.one_row()?;
    Ok(Totals {
        records: t.i64s("records")?.value(0),
        rejects: t.i64s("rejects")?.value(0),
        bytes: t.i64s("bytes")?.value(0),
        distinct_hosts: t.i64s("distinct_hosts")?.value(0),
        folded: folded(tables)?,
    })
}

/// Sums the `(other)` rows of the capped tables.
fn folded(tables: &Tables) -> Result<Folded> {
    let sum = |name: &str| -> Result<i64> {
        let t = table(tables, name)?;
        let c = t.i64s("count")?;
        Ok((0..t.rows())
            .filter(|&i| t.overflow(i))
            .map(|i| c.value(i))
            .fold(0i64, i64::saturating_add))
    };
    Ok(Folded {
        host_requests: sum("host_count")?,
        endpoint_requests: sum("endpoint_count")?,
        rows_404: sum("table_404")?,
    })
}

fn missing(tables: &Tables) -> Result<Vec<MissingCount>> {
    let t = table(tables, "null_value_count")?;
    t.one_row()?;
    t.column_names()
        .into_iter()
        .map(|column| {
            let count = t.i64s(&column)?.value(0);
            Ok(MissingCount { column, count })
        })
        .collect()
}

fn content_size(tables: &Tables) -> Result<ContentSize> {
    let t = table(tables, "content_stats")?;
    t.one_row()?;
    let (min, max) = (t.i64s("min_content_size")?, t.i64s("max_content_size")?);
    let (mean, std) = (t.f64s("mean_content_size")?, t.f64s("std_content_size")?);
    Ok(ContentSize {
        count: t.i64s("count_content_size")?.value(0),
        mean: opt(mean, 0, |a, i| a.value(i)),
        stddev: opt(std, 0, |a, i| a.value(i)),
        min: opt(min, 0, |a, i| a.value(i)),
        max: opt(max, 0, |a, i| a.value(i)),
    })
}

fn status(tables: &Tables) -> Result<Vec<StatusCount>> {
    let t = table(tables, "status_count")?;
    let (s, c) = (t.i32s("status")?, t.i64s("count")?);
    Ok((0..t.rows())
        .map(|i| StatusCount {
            status: s.value(i),
            count: c.value(i),
        })
        .collect())
}

/// `host_count` is already ranked: its first rows are the top hosts.
fn top_hosts(tables: &Tables, top: usize) -> Result<Vec<HostCount>> {
    let t = table(tables, "host_count")?;
    let (h, c) = (t.strs("host")?, t.i64s("count")?);
    Ok((0..t.rows())
        .filter(|&i| !t.overflow(i))
        .take(top)
        .map(|i| HostCount {
            host: h.value(i).to_string(),
            count: c.value(i),
        })
        .collect())
}

/// Count descending, then key ascending (`None` first); keeps the first `n`.
fn ranked<K: Ord + Clone>(counts: impl IntoIterator<Item = (K, i64)>, n: usize) -> Vec<(K, i64)> {
    let mut v: Vec<(K, i64)> = counts.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn tally<K: Eq + Hash>(keys: impl IntoIterator<Item = (K, i64)>) -> HashMap<K, i64> {
    let mut m = HashMap::new();
    for (k, c) in keys {
        let e = m.entry(k).or_insert(0i64);
        *e = e.saturating_add(c);
    }
    m
}

fn top_endpoints(tables: &Tables, top: usize) -> Result<Vec<EndpointCount>> {
    let t = table(tables, "endpoint_count")?;
    let (e, c) = (t.strs("endpoint")?, t.i64s("count")?);
    let listed = (0..t.rows()).filter(|&i| !t.overflow(i));
    let sums = tally(listed.map(|i| (opt_str(e, i), c.value(i))));
    Ok(ranked(sums, top)
        .into_iter()
        .map(|(endpoint, count)| EndpointCount {
            endpoint: endpoint.map(str::to_string),
            count,
        })
        .collect())
}

/// A `(date, day, <value column>)` table as rows, in the table's (date) order.
fn per_date(tables: &Tables, name: &str, value: &str) -> Result<Vec<DateCount>> {
    let t = table(tables, name)?;
    let (d, day, v) = (t.dates("date")?, t.i32s("day")?, t.i64s(value)?);
    Ok((0..t.rows())
        .map(|i| DateCount {
            date: format_date(d.value(i)),
            day: day.value(i),
            count: v.value(i),
        })
        .collect())
}

fn requests_per_host(tables: &Tables) -> Result<Vec<DailyRequestsPerHost>> {
    let requests = per_date(tables, "daily_request_count", "count")?;
    let hosts: BTreeMap<String, i64> = per_date(tables, "unique_host_count", "count")?
        .into_iter()
        .map(|d| (d.date, d.count))
        .collect();
    Ok(requests
        .into_iter()
        .map(|r| {
            let distinct_hosts = hosts.get(&r.date).copied().unwrap_or(0);
            DailyRequestsPerHost {
                // A date with requests has a host; `max(1)` only guards a corrupt summary.
                avg_requests_per_host: r.count as f64 / distinct_hosts.max(1) as f64,
                date: r.date,
                day: r.day,
                requests: r.count,
                distinct_hosts,
            }
        })
        .collect())
}

fn hourly(tables: &Tables, name: &str) -> Result<Vec<HourCount>> {
    let t = table(tables, name)?;
    let (h, c) = (t.i32s("hour")?, t.i64s("count")?);
    Ok((0..t.rows())
        .map(|i| HourCount {
            hour: h.value(i),
            count: c.value(i),
        })
        .collect())
}

fn not_found(tables: &Tables, top: usize) -> Result<NotFound> {
    let t = table(tables, "table_404")?;
    let (e, h) = (t.strs("endpoint")?, t.strs("host")?);
    // The `(other)` row stands for the 404s beyond the cap: counted, never ranked.
    let listed: Vec<usize> = (0..t.rows()).filter(|&i| !t.overflow(i)).collect();
    let endpoints = tally(listed.iter().map(|&i| (opt_str(e, i), 1)));
    let hosts = tally(listed.iter().map(|&i| (h.value(i), 1)));
    let total = (0..t.rows())
        .map(|i| t.i64_or("count", i, 1))
        .fold(0i64, i64::saturating_add);
    Ok(NotFound {
        total,
        top_endpoints: ranked(endpoints, top)
            .into_iter()
            .map(|(endpoint, count)| EndpointCount {
                endpoint: endpoint.map(str::to_string),
                count,
            })
            .collect(),
        top_hosts: ranked(hosts, top)
            .into_iter()
            .map(|(host, count)| HostCount {
                host: host.to_string(),
                count,
            })
            .collect(),
        per_day: per_date(tables, "daily_404_count", "count")?,
        per_hour: hourly(tables, "hourly_404_count")?,
    })
}

/// `endpoint_count` is ranked by count, then endpoint: the first row of a weekday is its top.
fn weekday_tops(tables: &Tables) -> Result<Vec<WeekdayTop>> {
    let t = table(tables, "endpoint_count")?;
    let (e, w, c) = (t.strs("endpoint")?, t.i32s("weekday")?, t.i64s("count")?);
    let mut first: BTreeMap<i32, usize> = BTreeMap::new();
    for i in 0..t.rows() {
        first.entry(w.value(i)).or_insert(i);
        if first.len() == 7 {
            break;
        }
    }
    Ok(first
        .into_iter()
        .map(|(weekday, i)| WeekdayTop {
            weekday,
            weekday_name: usize::try_from(weekday - 1)
                .ok()
                .and_then(|k| WEEKDAY_NAMES.get(k))
                .map_or_else(|| format!("day {weekday}"), |n| n.to_string()),
            endpoint: opt(e, i, |a, i| a.value(i).to_string()),
            count: c.value(i),
        })
        .collect())
}

fn rejects(tables: &Tables, examples: usize) -> Result<Vec<RejectGroup>> {
    let t = table(tables, "reject_count")?;
    let (r, c) = (t.strs("reason")?, t.i64s("count")?);
    let mut groups: Vec<RejectGroup> = (0..t.rows())
        .map(|i| RejectGroup {
            reason: r.value(i).to_string(),
            count: c.value(i),
            examples: Vec::new(),
        })
        .collect();
    let x = table(tables, "reject_examples")?;
    let (reason, part, off, raw) = (
        x.strs("reason")?,
        x.i32s("partition")?,
        x.i64s("offset")?,
        x.bins("raw")?,
    );
    for i in 0..x.rows() {
        let Some(g) = groups.iter_mut().find(|g| g.reason == reason.value(i)) else {
            continue;
        };
        if g.examples.len() < examples {
            let raw = raw.value(i).to_vec();
            g.examples.push(RejectExample {
                partition: part.value(i),
                offset: off.value(i),
                escaped: crate::format::escape_bytes(&raw),
                raw,
            });
        }
    }
    Ok(groups)
}
