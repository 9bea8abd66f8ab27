//! The report as terminal tables. Charts become tables of their data, with a bar column where
//! the shape matters (statuses, hours).

use crate::format::{bytes, decimal, printable, thousands};
use crate::model::{DateCount, EndpointCount, HostCount, HourCount, Report};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};
use std::fmt::Write;

/// Wide enough for a reject example and a top-endpoints table; long cells wrap.
const WIDTH: u16 = 120;
const BAR: usize = 32;

fn render(title: &str, header: &[&str], rows: Vec<Vec<String>>, right: &[usize]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH)
        .set_header(header.to_vec());
    let empty = rows.is_empty();
    for r in rows {
        t.add_row(r);
    }
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let body = if empty {
        "  (none)".to_string()
    } else {
        t.to_string()
    };
    format!("{title}\n{body}\n\n")
}

fn bar(v: i64, max: i64) -> String {
    if max <= 0 || v <= 0 {
        return String::new();
    }
    let n = ((v as f64 / max as f64) * BAR as f64).round().max(1.0) as usize;
    "█".repeat(n)
}

fn endpoint(e: &Option<String>) -> String {
    e.as_deref()
        .map_or_else(|| "(missing)".to_string(), |e| printable(e).into_owned())
}

fn hosts(title: &str, v: &[HostCount]) -> String {
    let rows = v
        .iter()
        .map(|h| vec![printable(&h.host).into_owned(), thousands(h.count)])
        .collect();
    render(title, &["host", "count"], rows, &[1])
}

fn endpoints(title: &str, v: &[EndpointCount]) -> String {
    let rows = v
        .iter()
        .map(|e| vec![endpoint(&e.endpoint), thousands(e.count)])
        .collect();
    render(title, &["endpoint", "count"], rows, &[1])
}

fn dates(title: &str, what: &str, v: &[DateCount], fmt: fn(i64) -> String) -> String {
    let rows = v
        .iter()
        .map(|d| vec![d.date.clone(), d.day.to_string(), fmt(d.count)])
        .collect();
    render(title, &["date", "day", what], rows, &[1, 2])
}

fn hours(title: &str, v: &[HourCount]) -> String {
    let max = v.iter().map(|h| h.count).max().unwrap_or(0);
    let rows = v
        .iter()
        .map(|h| {
            vec![
                format!("{:02}", h.hour),
                thousands(h.count),
                bar(h.count, max),
            ]
        })
        .collect();
    render(title, &["hour", "count", ""], rows, &[1])
}

impl Report {
    /// The report as terminal tables, section by section in the HTML's order.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let source = self.source.as_deref().unwrap_or("summary tables");
        let _ = writeln!(out, "Sawmill EDA report: {source}\n");
        let t = &self.totals;
        let totals = vec![
            vec!["records".into(), thousands(t.records)],
            vec!["rejected lines".into(), thousands(t.rejects)],
            vec![
                "bytes served".into(),
                format!("{} ({})", thousands(t.bytes), bytes(t.bytes as f64)),
            ],
            vec!["distinct hosts".into(), thousands(t.distinct_hosts)],
            vec!["404 responses".into(), thousands(self.not_found.total)],
        ];
        out.push_str(&render("Totals", &["", "value"], totals, &[1]));
        if t.folded.any() {
            out.push_str(&t.folded.describe());
            out.push_str("\n\n");
        }

        let rows = self
            .missing
            .iter()
            .map(|m| vec![m.column.clone(), thousands(m.count)])
            .collect();
        out.push_str(&render(
            "Missing values per column",
            &["column", "missing"],
            rows,
            &[1],
        ));

        let c = &self.content_size;
        let opt_f = |v: Option<f64>| v.map_or_else(|| "-".into(), decimal);
        let opt_i = |v: Option<i64>| v.map_or_else(|| "-".into(), thousands);
        let rows = vec![vec![
            thousands(c.count),
            opt_f(c.mean),
            opt_f(c.stddev),
            opt_i(c.min),
            opt_i(c.max),
        ]];
        out.push_str(&render(
            "Content size (bytes)",
            &["count", "mean", "stddev", "min", "max"],
            rows,
            &[0, 1, 2, 3, 4],
        ));

        let max = self.status.iter().map(|s| s.count).max().unwrap_or(0);
        let total: i64 = self.status.iter().map(|s| s.count).sum();
        let rows = self
            .status
            .iter()
            .map(|s| {
                vec![
                    s.status.to_string(),
                    thousands(s.count),
                    format!("{:.2}%", 100.0 * s.count as f64 / total.max(1) as f64),
                    bar(s.count, max),
                ]
            })
            .collect();
        out.push_str(&render(
            "HTTP status codes",
            &["status", "count", "share", ""],
            rows,
            &[1, 2],
        ));

        out.push_str(&hosts(&format!("Top {} hosts", self.top), &self.top_hosts));
        out.push_str(&endpoints(
            &format!("Top {} endpoints", self.top),
            &self.top_endpoints,
        ));

        let rows = self
            .daily_requests_per_host
            .iter()
            .map(|d| {
                vec![
                    d.date.clone(),
                    thousands(d.requests),
                    thousands(d.distinct_hosts),
                    decimal(d.avg_requests_per_host),
                ]
            })
            .collect();
        out.push_str(&render(
            "Distinct hosts and average requests per host, per day",
            &["date", "requests", "distinct hosts", "requests per host"],
            rows,
            &[1, 2, 3],
        ));

        let nf = &self.not_found;
        let _ = writeln!(out, "404 responses: {}\n", thousands(nf.total));
        out.push_str(&endpoints(
            &format!("Top {} 404 endpoints", self.top),
            &nf.top_endpoints,
        ));
        out.push_str(&hosts(
            &format!("Top {} 404 hosts", self.top),
            &nf.top_hosts,
        ));
        out.push_str(&dates(
            "404 responses per day",
            "404s",
            &nf.per_day,
            thousands,
        ));
        out.push_str(&hours("404 responses per hour of day", &nf.per_hour));

        let rows = self
            .top_endpoint_by_weekday
            .iter()
            .map(|w| {
                vec![
                    w.weekday_name.clone(),
                    endpoint(&w.endpoint),
                    thousands(w.count),
                ]
            })
            .collect();
        out.push_str(&render(
            "Top endpoint of each weekday",
            &["weekday", "endpoint", "count"],
            rows,
            &[2],
        ));

        out.push_str(&hours("Requests per hour of day", &self.hourly_requests));
        out.push_str(&dates(
            "Bytes served per day",
            "bytes",
            &self.daily_bytes,
            |b| format!("{} ({})", thousands(b), bytes(b as f64)),
        ));

        let rows = self
            .rejects
            .iter()
            .map(|g| {
                let examples: Vec<String> = g
                    .examples
                    .iter()
                    .map(|e| format!("[{}@{}] {}", e.partition, e.offset, e.escaped))
                    .collect();
                vec![g.reason.clone(), thousands(g.count), examples.join("\n")]
            })
            .collect();
        out.push_str(&render(
            "Rejected lines by reason",
            &["reason", "count", "examples ([input@offset] line)"],
            rows,
            &[1],
        ));
        out
    }
}
