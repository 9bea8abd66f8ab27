//! The coordinator's live dashboard: one page (no external resources) that polls a JSON document
//! every two seconds and swaps in server-rendered SVG charts — the report's charts over the
//! merged analytics so far, plus the cluster view (workers, partitions, lag, throughput).
//!
//! The page is [`PAGE`]; the document it polls is built by [`document`] and served by the
//! coordinator at `/api/v1/dashboard`.

use crate::charts::{render_chart_svg, ChartSpec, ValueFormat};
use crate::{build, chart_data, ReportOptions, Tables};
use serde_json::{json, Value};

/// The dashboard page. Served as is; everything it needs comes from the coordinator.
pub const PAGE: &str = include_str!("dashboard.html");

/// The document the page polls.
///
/// `tables` are the merged summary tables so far (may be empty before the first commit),
/// `cluster` the coordinator's status document (`/api/v1/status`), and `throughput` the
/// records-per-second series, oldest first, labelled by time of day.
pub fn document(tables: &Tables, cluster: &Value, throughput: &[(String, f64)]) -> Value {
    document_with(&analytics(tables), cluster, throughput)
}

/// The half of the [`document`] drawn from the summary tables (`totals`, `charts`, `error`):
/// the costly half, which only changes when the analytics do, so a server can cache it per
/// merge and add the live half with [`document_with`].
pub fn analytics(tables: &Tables) -> Value {
    let mut charts = Vec::new();
    let mut totals = Value::Null;
    let mut error = Value::Null;
    if !tables.is_empty() {
        match build(tables, &ReportOptions::default()) {
            Ok(report) => {
                totals = report
                    .to_json()
                    .get("totals")
                    .cloned()
                    .unwrap_or(Value::Null);
                for (spec, data) in chart_data(&report) {
                    match render_chart_svg(&spec, &data) {
                        Ok(svg) => charts.push(json!({"id": spec.id, "title": spec.title, "svg": svg, "points": data.len()})),
                        Err(e) => error = json!(e.to_string()),
                    }
                }
            }
            Err(e) => error = json!(e.to_string()),
        }
    }
    json!({ "totals": totals, "charts": charts, "error": error })
}

/// The [`document`] from its [`analytics`] half, the cluster status and the throughput series.
pub fn document_with(analytics: &Value, cluster: &Value, throughput: &[(String, f64)]) -> Value {
    let spec = ChartSpec::line(
        "throughput",
        "Records committed per second",
        "time",
        "records/s",
    )
    .y_format(ValueFormat::Count);
    let throughput_svg = render_chart_svg(&spec, throughput).unwrap_or_default();
    json!({
        "totals": analytics["totals"],
        "charts": analytics["charts"],
        "throughput_svg": throughput_svg,
        "cluster": cluster,
        "error": analytics["error"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_cluster_renders_without_charts() {
        let doc = document(&Tables::new(), &json!({"workers": []}), &[]);
        assert_eq!(doc["charts"].as_array().map(|a| a.len()), Some(0));
        assert!(doc["throughput_svg"]
            .as_str()
            .is_some_and(|s| s.contains("<svg")));
    }

    #[test]
    fn page_is_self_contained() {
        for needle in ["http://", "https://", "src=", "<link"] {
            assert!(
                !PAGE.contains(needle),
                "dashboard page must not load {needle}"
            );
        }
        assert!(PAGE.contains("/api/v1/dashboard"));
    }
}
