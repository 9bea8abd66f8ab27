//! The report's charts: which data of a [`Report`] each one shows, with titles and axes.

use crate::charts::{render_chart_svg, ChartSpec, ValueFormat, ALERT};
use crate::error::Result;
use crate::model::{Chart, DateCount, HourCount, Report};

/// Every chart's id (its SVG's `data-chart`), in report order.
pub const CHART_IDS: [&str; 8] = [
    "status",
    "status_log",
    "daily_hosts",
    "requests_per_host",
    "daily_404",
    "hourly_404",
    "hourly_requests",
    "daily_bytes",
];

fn dates(v: &[DateCount]) -> Vec<(String, f64)> {
    v.iter().map(|d| (d.date.clone(), d.count as f64)).collect()
}

/// Hours as `00`..`23`: two characters keep all 24 tick labels readable side by side.
fn hours(v: &[HourCount]) -> Vec<(String, f64)> {
    v.iter()
        .map(|h| (format!("{:02}", h.hour), h.count as f64))
        .collect()
}

/// The chart specs and data of a report, in [`CHART_IDS`] order.
pub fn chart_data(r: &Report) -> Vec<(ChartSpec, Vec<(String, f64)>)> {
    let status: Vec<(String, f64)> = r
        .status
        .iter()
        .map(|s| (s.status.to_string(), s.count as f64))
        .collect();
    let per_host = r
        .daily_requests_per_host
        .iter()
        .map(|d| (d.date.clone(), d.avg_requests_per_host))
        .collect();
    vec![
        (
            ChartSpec::bar("status", "HTTP status codes", "status", "requests"),
            status.clone(),
        ),
        (
            ChartSpec::bar(
                "status_log",
                "HTTP status codes (log scale)",
                "status",
                "requests (log)",
            )
            .log_y(),
            status,
        ),
        (
            ChartSpec::line("daily_hosts", "Distinct hosts per day", "date", "hosts"),
            dates(&r.daily_distinct_hosts),
        ),
        (
            ChartSpec::line(
                "requests_per_host",
                "Average daily requests per host",
                "date",
                "requests per host",
            )
            .y_format(ValueFormat::Decimal),
            per_host,
        ),
        (
            ChartSpec::bar("daily_404", "404 responses per day", "date", "404s").color(ALERT),
            dates(&r.not_found.per_day),
        ),
        (
            ChartSpec::bar(
                "hourly_404",
                "404 responses per hour of day",
                "hour",
                "404s",
            )
            .color(ALERT),
            hours(&r.not_found.per_hour),
        ),
        (
            ChartSpec::bar(
                "hourly_requests",
                "Requests per hour of day",
                "hour",
                "requests",
            ),
            hours(&r.hourly_requests),
        ),
        (
            ChartSpec::bar("daily_bytes", "Bytes served per day", "date", "bytes")
                .y_format(ValueFormat::Bytes),
            dates(&r.daily_bytes),
        ),
    ]
}

pub(crate) fn charts(r: &Report) -> Result<Vec<Chart>> {
    chart_data(r)
        .into_iter()
        .zip(CHART_IDS)
        .map(|((spec, data), id)| {
            Ok(Chart {
                id,
                title: spec.title.clone(),
                svg: render_chart_svg(&spec, &data)?,
            })
        })
        .collect()
}
