//! The report's content: every number of the original notebook's tables and charts, as read
//! from the summary tables. Serialized as-is by [`crate::Report::to_json`].

use serde::Serialize;

/// What the report shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// Rows of each top-N table (hosts, endpoints, 404 endpoints and hosts).
    pub top: usize,
    /// Raw lines shown per reject reason (the summary keeps a few per reason).
    pub reject_examples: usize,
    /// Where the summary tables came from, shown in the header (an output root).
    pub source: Option<String>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            top: 10,
            reject_examples: 3,
            source: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub records: i64,
    pub rejects: i64,
    /// Sum of known content sizes.
    pub bytes: i64,
    /// Distinct hosts over the whole input: exact unless `folded` says hosts were folded,
    /// then an upper bound.
    pub distinct_hosts: i64,
    /// What the coordinator's caps folded into `(other)` rows; all zero when every table is
    /// exact.
    pub folded: Folded,
}

/// Requests (and 404 rows) beyond the caps on distinct keys, from the tables' `(other)` rows.
/// Rankings list only the keys held; these say how much they leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Folded {
    pub host_requests: i64,
    pub endpoint_requests: i64,
    pub rows_404: i64,
}

impl Folded {
    pub fn any(&self) -> bool {
        *self != Folded::default()
    }

    /// One line for the reports, e.g. `caps reached: 1,200 requests of hosts beyond the cap
    /// counted as (other); ...`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.host_requests, "requests of hosts"),
            (self.endpoint_requests, "requests of endpoints"),
            (self.rows_404, "404 rows"),
        ] {
            if n > 0 {
                parts.push(format!("{} {what}", crate::format::thousands(n)));
            }
        }
        format!(
            "caps reached: {} beyond the caps are counted in (other) rows, not listed; distinct hosts is then an upper bound",
            parts.join(", ")
        )
    }
}

/// Records missing one field (`null_value_count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingCount {
    pub column: String,
    pub count: i64,
}

/// `content_stats`; `None` where there were no sizes at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentSize {
    pub count: i64,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    pub status: i32,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCount {
    pub host: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointCount {
    /// `None` for requests without an endpoint (`"-"` request lines).
    pub endpoint: Option<String>,
    pub count: i64,
}

/// One value of a per-date table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DateCount {
    /// `YYYY-MM-DD`, the wall-clock date of the lines.
    pub date: String,
    /// Day of month, as the original tables keyed it.
    pub day: i32,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyRequestsPerHost {
    pub date: String,
    pub day: i32,
    pub requests: i64,
    pub distinct_hosts: i64,
    /// `requests / distinct_hosts`.
    pub avg_requests_per_host: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourCount {
    pub hour: i32,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotFound {
    /// Rows of `table_404`.
    pub total: i64,
    pub top_endpoints: Vec<EndpointCount>,
    pub top_hosts: Vec<HostCount>,
    pub per_day: Vec<DateCount>,
    /// Hours 0..=23, all of them.
    pub per_hour: Vec<HourCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekdayTop {
    /// Spark's `dayofweek`: 1 = Sunday ... 7 = Saturday.
    pub weekday: i32,
    pub weekday_name: String,
    pub endpoint: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectExample {
    pub partition: i32,
    pub offset: i64,
    /// The raw line, non-printable bytes as `\xNN` (see [`crate::format::escape_bytes`]).
    pub escaped: String,
    /// Raw bytes, kept so the HTML can mark escapes (not serialized: `escaped` says it all).
    #[serde(skip)]
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectGroup {
    pub reason: String,
    pub count: i64,
    pub examples: Vec<RejectExample>,
}

/// An inline chart of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// Stable key, also the SVG's `data-chart` attribute: `status`, `daily_hosts`, ...
    pub id: &'static str,
    pub title: String,
    /// A standalone SVG document (see [`crate::render_chart_svg`]).
    pub svg: String,
}

/// The built report. Build with [`crate::build`]; render with `to_html`, `to_text`, `to_json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub source: Option<String>,
    pub top: usize,
    pub totals: Totals,
    pub missing: Vec<MissingCount>,
    pub content_size: ContentSize,
    /// Every status, ascending.
    pub status: Vec<StatusCount>,
    pub top_hosts: Vec<HostCount>,
    /// Aggregated over weekdays.
    pub top_endpoints: Vec<EndpointCount>,
    pub daily_distinct_hosts: Vec<DateCount>,
    pub daily_requests_per_host: Vec<DailyRequestsPerHost>,
    pub not_found: NotFound,
    /// Weekdays with requests, Sunday first.
    pub top_endpoint_by_weekday: Vec<WeekdayTop>,
    pub hourly_requests: Vec<HourCount>,
    /// Bytes served (known sizes) per date.
    pub daily_bytes: Vec<DateCount>,
    pub rejects: Vec<RejectGroup>,
    #[serde(skip)]
    pub charts: Vec<Chart>,
}
