//! Terminal rendering of the headline analytics, read from the summary tables.

use crate::CliError;
use arrow::record_batch::RecordBatch;
use sawmill_core::analytics::Partial;

/// Tables shown after a run, in order, each cut to `top` rows.
const HEADLINE: [(&str, &str); 9] = [
    ("totals", "Totals"),
    ("content_stats", "Content size statistics"),
    ("null_value_count", "Missing values per column"),
    ("status_count", "Requests by status"),
    ("host_count", "Top hosts"),
    ("endpoint_count", "Top endpoints (by weekday)"),
    ("daily_request_count", "Requests per day"),
    ("unique_host_count", "Distinct hosts per day"),
    ("reject_count", "Rejected lines by reason"),
];

pub fn headline(partial: &Partial, top: usize) -> Result<String, CliError> {
    let tables = partial.tables();
    let mut out = String::new();
    for (name, title) in HEADLINE {
        let Some((_, batch)) = tables.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        out.push_str(&render(title, batch, top)?);
    }
    Ok(out)
}

fn render(title: &str, batch: &RecordBatch, top: usize) -> Result<String, CliError> {
    let rows = batch.num_rows();
    let shown = batch.slice(0, rows.min(top));
    let table = arrow::util::pretty::pretty_format_batches(&[shown])
        .map_err(sawmill_common::Error::from)?;
    let more = if rows > top {
        format!("  ({} of {rows} rows shown)\n", top)
    } else {
        String::new()
    };
    Ok(format!("{title}\n{table}\n{more}\n"))
}
