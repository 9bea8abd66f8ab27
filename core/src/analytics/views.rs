//! The notebook's derived views, computed from a [`Partial`].
//!
//! Rankings order by count descending, then key ascending (a missing endpoint sorts first, as
//! Spark sorts nulls first ascending), so every view is deterministic.

use super::partial::Partial;
use crate::record::{civil_from_days, format_date};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostCount {
    pub host: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointCount {
    /// `None` for requests without an endpoint (`"-"` request lines).
    pub endpoint: Option<String>,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DailyCount {
    /// `YYYY-MM-DD`, wall clock.
    pub date: String,
    /// Day of month.
    pub day: u8,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DailyRequestsPerHost {
    pub date: String,
    pub day: u8,
    pub requests: u64,
    pub distinct_hosts: u64,
    /// `requests / distinct_hosts`.
    pub avg_requests_per_host: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeekdayTop {
    /// Spark's `dayofweek`: 1 = Sunday ... 7 = Saturday.
    pub weekday: u8,
    pub weekday_name: &'static str,
    pub endpoint: Option<String>,
    pub count: u64,
}

/// Everything the notebook showed, ready to print or serialize.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Views {
    pub records: u64,
    pub rejects: u64,
    /// Distinct hosts over the whole input: exact unless `overflow`, then an upper bound.
    pub distinct_hosts: u64,
    /// Whether a cap folded hosts, endpoints or 404 rows: rankings then list only the keys
    /// held, and the tables' `(other)` rows hold the rest (see ARCHITECTURE.md).
    pub overflow: bool,
    pub top_hosts: Vec<HostCount>,
    /// Aggregated over weekdays.
    pub top_endpoints: Vec<EndpointCount>,
    /// By date ascending.
    pub daily_requests_per_host: Vec<DailyRequestsPerHost>,
    /// 404 responses per date ascending (dates without 404s omitted).
    pub daily_404: Vec<DailyCount>,
    pub top_404_endpoints: Vec<EndpointCount>,
    pub top_404_hosts: Vec<HostCount>,
    /// The most requested endpoint of each weekday that has requests, Sunday first; ties go to
    /// the smallest endpoint.
    pub top_endpoint_by_weekday: Vec<WeekdayTop>,
}

pub const WEEKDAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Count descending, then key ascending; keeps the first `n`.
fn top<K: Ord>(mut v: Vec<(K, u64)>, n: usize) -> Vec<(K, u64)> {
    let order = |a: &(K, u64), b: &(K, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    v.retain(|e| e.1 > 0);
    if n < v.len() {
        // Partial selection first: hosts run to the hundreds of thousands, N is small.
        v.select_nth_unstable_by(n, order);
        v.truncate(n);
    }
    v.sort_unstable_by(order);
    v
}

impl Partial {
    /// The notebook views; rankings keep `top_n` entries.
    pub fn views(&self, top_n: usize) -> Views {
        let hosts = |f: fn(&super::partial::HostStats) -> u64| -> Vec<HostCount> {
            let v: Vec<(&[u8], u64)> = self.hosts.iter().map(|(_, k, s)| (k, f(s))).collect();
            top(v, top_n)
                .into_iter()
                .map(|(k, count)| HostCount {
                    host: text(k),
                    count,
                })
                .collect()
        };
        let endpoints = |f: &dyn Fn(&super::partial::EndpointStats) -> u64| -> Vec<EndpointCount> {
            let v: Vec<_> = self.endpoints_with_null().map(|(k, s)| (k, f(s))).collect();
            top(v, top_n)
                .into_iter()
                .map(|(k, count)| EndpointCount {
                    endpoint: k.map(text),
                    count,
                })
                .collect()
        };

        let days = self.sorted_days();
        let daily_requests_per_host = days
            .iter()
            .map(|d| {
                let distinct = d.distinct_hosts();
                DailyRequestsPerHost {
                    date: format_date(d.date),
                    day: civil_from_days(d.date).2,
                    requests: d.requests,
                    distinct_hosts: distinct,
                    // Every day with a request has at least one host, so never 0 / 0.
                    avg_requests_per_host: d.requests as f64 / distinct.max(1) as f64,
                }
            })
            .collect();
        let daily_404 = days
            .iter()
            .filter(|d| d.c404 > 0)
            .map(|d| DailyCount {
                date: format_date(d.date),
                day: civil_from_days(d.date).2,
                count: d.c404,
            })
            .collect();

        let top_endpoint_by_weekday = (0..7)
            .filter_map(|w| {
                let v: Vec<_> = self
                    .endpoints_with_null()
                    .map(|(k, s)| (k, s.weekday[w]))
                    .collect();
                let (k, count) = top(v, 1).into_iter().next()?;
                Some(WeekdayTop {
                    weekday: w as u8 + 1,
                    weekday_name: WEEKDAY_NAMES[w],
                    endpoint: k.map(text),
                    count,
                })
            })
            .collect();

        Views {
            records: self.records,
            rejects: self.rejects,
            distinct_hosts: self.distinct_hosts(),
            overflow: self.overflowed(),
            top_hosts: hosts(|s| s.count),
            top_endpoints: endpoints(&|s| s.weekday.iter().sum()),
            daily_requests_per_host,
            daily_404,
            top_404_endpoints: endpoints(&|s| s.c404),
            top_404_hosts: hosts(|s| s.c404),
            top_endpoint_by_weekday,
        }
    }
}
