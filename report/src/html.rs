//! The report as one self-contained HTML page: inline CSS, inline SVG charts, a few lines of
//! inline script, and no external URL (a Content-Security-Policy forbids loading any).

use crate::charts::inline_svg;
use crate::format::{bytes, decimal, escape_bytes_html, html as esc, thousands};
use crate::model::{EndpointCount, HostCount, Report};
use std::fmt::Write;

/// Bytes of a reject example shown; a line can be megabytes of garbage.
const MAX_RAW: usize = 2000;

const CSS: &str = include_str!("report.css");

/// Records script errors and marks a page that ran to the end, so a headless browser's DOM
/// dump shows whether the page loaded cleanly (`data-ok="1"`, `data-errors` empty).
const SCRIPT: &str = r#"(function () {
  var errors = [];
  window.onerror = function (msg) { errors.push(String(msg)); };
  document.addEventListener("DOMContentLoaded", function () {
    document.body.dataset.errors = errors.join(" | ");
    document.body.dataset.ok = errors.length ? "0" : "1";
  });
})();"#;

/// A table cell: HTML content and whether it is a number (right-aligned).
struct Cell(String, bool);

fn text(s: &str) -> Cell {
    Cell(esc(s), false)
}

fn num(v: i64) -> Cell {
    Cell(thousands(v), true)
}

fn endpoint(e: &Option<String>) -> Cell {
    match e {
        Some(e) => text(e),
        None => Cell("<em>(missing)</em>".into(), false),
    }
}

fn table(out: &mut String, caption: &str, header: &[&str], rows: Vec<Vec<Cell>>) {
    let _ = write!(out, "<table><caption>{}</caption><thead><tr>", esc(caption));
    for (i, h) in header.iter().enumerate() {
        // Headings of number columns align with their numbers.
        let numeric = rows.first().and_then(|r| r.get(i)).is_some_and(|c| c.1);
        let class = if numeric { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"none\">none</td></tr>",
            header.len()
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for Cell(html, numeric) in row {
            let class = if numeric { "num" } else { "key" };
            let _ = write!(out, "<td class=\"{class}\">{html}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn hosts_table(out: &mut String, caption: &str, v: &[HostCount]) {
    let rows = v
        .iter()
        .map(|h| vec![text(&h.host), num(h.count)])
        .collect();
    table(out, caption, &["host", "requests"], rows);
}

fn endpoints_table(out: &mut String, caption: &str, v: &[EndpointCount]) {
    let rows = v
        .iter()
        .map(|e| vec![endpoint(&e.endpoint), num(e.count)])
        .collect();
    table(out, caption, &["endpoint", "requests"], rows);
}

fn section(out: &mut String, id: &str, title: &str) {
    let _ = writeln!(out, "<section id=\"{id}\"><h2>{}</h2>", esc(title));
}

fn card(out: &mut String, label: &str, value: &str, detail: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"detail\">{}</div></div>",
        esc(label),
        esc(value),
        esc(detail)
    );
}

const NAV: [(&str, &str); 8] = [
    ("quality", "Data quality"),
    ("status", "Status codes"),
    ("top", "Top hosts & endpoints"),
    ("hosts", "Hosts per day"),
    ("not-found", "404s"),
    ("weekday", "Weekdays"),
    ("traffic", "Traffic"),
    ("rejects", "Rejected lines"),
];

impl Report {
    fn chart(&self, out: &mut String, id: &str) {
        if let Some(c) = self.charts.iter().find(|c| c.id == id) {
            let _ = writeln!(
                out,
                "<figure class=\"chart-box\">{}</figure>",
                inline_svg(&c.svg)
            );
        }
    }

    /// The report as one HTML page with nothing to fetch.
    pub fn to_html(&self) -> String {
        let mut o = String::with_capacity(256 * 1024);
        let source = self.source.as_deref().unwrap_or("summary tables");
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
             <title>Sawmill EDA report: {src}</title>\n<style>\n{CSS}</style>\n<script>\n{SCRIPT}\n</script></head>\n<body>\n\
             <header><h1>Sawmill EDA report</h1><p class=\"source\">{src}</p>\n<div class=\"cards\">",
            src = esc(source)
        );
        let t = &self.totals;
        card(&mut o, "records", &thousands(t.records), "parsed lines");
        card(
            &mut o,
            "rejected",
            &thousands(t.rejects),
            "lines that did not parse",
        );
        card(
            &mut o,
            "bytes served",
            &bytes(t.bytes as f64),
            &format!("{} bytes", thousands(t.bytes)),
        );
        card(
            &mut o,
            "distinct hosts",
            &thousands(t.distinct_hosts),
            "over the whole input",
        );
        card(
            &mut o,
            "404 responses",
            &thousands(self.not_found.total),
            "not found",
        );
        if t.folded.any() {
            card(&mut o, "overflow", "(other)", &t.folded.describe());
        }
        o.push_str("</div>\n<nav>");
        for (id, label) in NAV {
            let _ = write!(o, "<a href=\"#{id}\">{}</a>", esc(label));
        }
        o.push_str("</nav></header>\n<main>\n");

        section(&mut o, "quality", "Data quality");
        o.push_str("<div class=\"grid\">");
        let rows = self
            .missing
            .iter()
            .map(|m| vec![text(&m.column), num(m.count)])
            .collect();
        table(
            &mut o,
            "Missing values per column",
            &["column", "missing"],
            rows,
        );
        let c = &self.content_size;
        let f = |v: Option<f64>| Cell(v.map_or_else(|| "–".into(), decimal), true);
        let i = |v: Option<i64>| Cell(v.map_or_else(|| "–".into(), thousands), true);
        let rows = vec![
            vec![text("count"), num(c.count)],
            vec![text("mean"), f(c.mean)],
            vec![text("stddev"), f(c.stddev)],
            vec![text("min"), i(c.min)],
            vec![text("max"), i(c.max)],
        ];
        table(
            &mut o,
            "Content size (bytes)",
            &["statistic", "value"],
            rows,
        );
        o.push_str("</div></section>\n");

        section(&mut o, "status", "HTTP status codes");
        let total: i64 = self.status.iter().map(|s| s.count).sum();
        let rows = self
            .status
            .iter()
            .map(|s| {
                let share = 100.0 * s.count as f64 / total.max(1) as f64;
                vec![
                    text(&s.status.to_string()),
                    num(s.count),
                    Cell(format!("{share:.2}%"), true),
                ]
            })
            .collect();
        o.push_str("<div class=\"grid wide-right\">");
        table(
            &mut o,
            "Requests by status",
            &["status", "requests", "share"],
            rows,
        );
        o.push_str("<div>");
        self.chart(&mut o, "status");
        self.chart(&mut o, "status_log");
        o.push_str("</div></div></section>\n");

        section(&mut o, "top", "Top hosts and endpoints");
        o.push_str("<div class=\"grid\">");
        hosts_table(&mut o, &format!("Top {} hosts", self.top), &self.top_hosts);
        endpoints_table(
            &mut o,
            &format!("Top {} endpoints", self.top),
            &self.top_endpoints,
        );
        o.push_str("</div></section>\n");

        section(&mut o, "hosts", "Distinct hosts per day");
        let _ = write!(
            o,
            "<p class=\"big\">{} distinct hosts in total</p>",
            thousands(t.distinct_hosts)
        );
        self.chart(&mut o, "daily_hosts");
        self.chart(&mut o, "requests_per_host");
        let rows = self
            .daily_requests_per_host
            .iter()
            .map(|d| {
                vec![
                    text(&d.date),
                    num(d.requests),
                    num(d.distinct_hosts),
                    Cell(decimal(d.avg_requests_per_host), true),
                ]
            })
            .collect();
        o.push_str("<details><summary>Daily numbers</summary>");
        table(
            &mut o,
            "Requests and distinct hosts per day",
            &["date", "requests", "distinct hosts", "requests per host"],
            rows,
        );
        o.push_str("</details></section>\n");

        let nf = &self.not_found;
        section(&mut o, "not-found", "404 Not Found");
        let _ = write!(
            o,
            "<p class=\"big\">{} 404 responses</p>",
            thousands(nf.total)
        );
        o.push_str("<div class=\"grid\">");
        endpoints_table(
            &mut o,
            &format!("Top {} 404 endpoints", self.top),
            &nf.top_endpoints,
        );
        hosts_table(
            &mut o,
            &format!("Top {} 404 hosts", self.top),
            &nf.top_hosts,
        );
        o.push_str("</div>");
        self.chart(&mut o, "daily_404");
        self.chart(&mut o, "hourly_404");
        o.push_str("</section>\n");

        section(&mut o, "weekday", "Top endpoint of each weekday");
        let rows = self
            .top_endpoint_by_weekday
            .iter()
            .map(|w| vec![text(&w.weekday_name), endpoint(&w.endpoint), num(w.count)])
            .collect();
        table(
            &mut o,
            "Most requested endpoint per weekday",
            &["weekday", "endpoint", "requests"],
            rows,
        );
        o.push_str("</section>\n");

        section(&mut o, "traffic", "Traffic by hour and day");
        self.chart(&mut o, "hourly_requests");
        self.chart(&mut o, "daily_bytes");
        o.push_str("</section>\n");

        section(&mut o, "rejects", "Rejected lines");
        self.rejects_html(&mut o);
        o.push_str("</section>\n</main>\n");
        let _ = write!(
            o,
            "<footer>Sawmill {} · numbers read from the summary tables</footer>\n</body></html>\n",
            esc(sawmill_core::VERSION)
        );
        o
    }

    fn rejects_html(&self, o: &mut String) {
        let rows = self
            .rejects
            .iter()
            .map(|g| vec![text(&g.reason), num(g.count)])
            .collect();
        table(o, "Rejected lines by reason", &["reason", "lines"], rows);
        for g in &self.rejects {
            let _ = write!(
                o,
                "<div class=\"reject\" data-reason=\"{r}\"><h3>{r} <span class=\"count\">{} line{}</span></h3>",
                thousands(g.count),
                if g.count == 1 { "" } else { "s" },
                r = esc(&g.reason)
            );
            for e in &g.examples {
                let _ = write!(
                    o,
                    "<div class=\"example\"><span class=\"pos\">input {}, offset {}</span><pre>{}</pre></div>",
                    e.partition,
                    thousands(e.offset),
                    escape_bytes_html(&e.raw[..e.raw.len().min(MAX_RAW)]),
                );
                if e.raw.len() > MAX_RAW {
                    let _ = write!(
                        o,
                        "<p class=\"more\">… {} more bytes</p>",
                        thousands((e.raw.len() - MAX_RAW) as i64)
                    );
                }
            }
            o.push_str("</div>\n");
        }
    }
}
