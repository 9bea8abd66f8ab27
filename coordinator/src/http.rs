//! The HTTP API (axum): cluster status, merged analytics, Prometheus metrics, health.
//! Paths and JSON fields are documented in docs/http-api.md.

use crate::snapshot::MergedSnapshot;
use crate::state::ApiState;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(crate::dashboard::page))
        .route("/api/v1/dashboard", get(crate::dashboard::document))
        .route("/api/v1/status", get(status))
        .route("/api/v1/analytics", get(analytics))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": e.to_string() })),
    )
        .into_response()
}

async fn status(State(state): State<ApiState>) -> Response {
    match state.status().await {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AnalyticsQuery {
    /// Rows kept in each ranking of the views (default 10).
    pub top: Option<usize>,
}

async fn analytics(State(state): State<ApiState>, Query(q): Query<AnalyticsQuery>) -> Response {
    let top = q.top.unwrap_or(10).min(10_000);
    let merged = state.merged.load_full();
    let built = tokio::task::spawn_blocking(move || analytics_body(&merged, top)).await;
    match built {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(format!("analytics task failed: {e}")),
    }
}

/// The `/api/v1/analytics` body for `top`, rendered once per merge generation (see
/// [`crate::snapshot::Renders`]): building every table and view of a large merged state costs
/// far more than serving bytes, and dashboards poll it every few seconds. CPU work.
pub fn analytics_body(merged: &MergedSnapshot, top: usize) -> serde_json::Result<Bytes> {
    merged
        .renders
        .analytics
        .get_or_render(&merged.partial, top as u64, || {
            let views = serde_json::to_value(merged.partial.views(top))?;
            let mut tables = Map::new();
            for (name, batch) in merged.partial.tables() {
                tables.insert(name.to_string(), Value::Array(rows(&batch)));
            }
            let doc = json!({
                "records": merged.partial.records(),
                "rejects": merged.partial.rejects(),
                "shards": merged.shards,
                "next_offsets": merged.next,
                "views": views,
                "tables": tables,
            });
            serde_json::to_vec(&doc).map(Bytes::from)
        })
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// A record batch as JSON objects, one per row: integers and floats as numbers, text as
/// strings, binary as lossy UTF-8, dates as `YYYY-MM-DD`, nulls as `null`.
pub fn rows(batch: &RecordBatch) -> Vec<Value> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|r| {
            let mut obj = Map::new();
            for (f, col) in schema.fields().iter().zip(batch.columns()) {
                obj.insert(f.name().clone(), cell(col.as_ref(), r));
            }
            Value::Object(obj)
        })
        .collect()
}

fn cell(col: &dyn Array, r: usize) -> Value {
    if col.is_null(r) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Int32 => json!(col.as_primitive::<Int32Type>().value(r)),
        DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(r)),
        DataType::UInt64 => json!(col.as_primitive::<UInt64Type>().value(r)),
        DataType::Float64 => json!(col.as_primitive::<Float64Type>().value(r)),
        DataType::Utf8 => json!(col.as_string::<i32>().value(r)),
        DataType::Binary => json!(String::from_utf8_lossy(col.as_binary::<i32>().value(r))),
        _ => json!(arrow::util::display::array_value_to_string(col, r).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn analytics_between_merges_are_rendered_once() {
        use sawmill_core::analytics::Partial;
        let mut partial = Partial::new(&Default::default());
        let line = br#"a - - [01/Jul/1995:00:00:01 -0400] "GET /x HTTP/1.0" 404 7"#;
        let rec = sawmill_core::parse::parse_line(line).unwrap();
        partial.observe(
            &rec,
            sawmill_core::record::Position {
                partition: 0,
                offset: 0,
            },
        );
        let mut merged = MergedSnapshot::new(partial);
        let first = analytics_body(&merged, 10).unwrap();
        let second = analytics_body(&merged, 10).unwrap();
        assert_eq!(first, second);
        assert_eq!(
            merged.renders.analytics.renders(),
            1,
            "two requests, one render"
        );
        let doc: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(doc["records"], 1);
        assert_eq!(doc["tables"]["host_count"][0]["host"], "a");
        // A merge (a new partial) is a new generation: rendered again, with the new data.
        let mut next = Partial::clone(&merged.partial);
        next.observe(
            &rec,
            sawmill_core::record::Position {
                partition: 0,
                offset: 1,
            },
        );
        merged.partial = Arc::new(next);
        let third: Value = serde_json::from_slice(&analytics_body(&merged, 10).unwrap()).unwrap();
        assert_eq!(third["records"], 2);
        assert_eq!(merged.renders.analytics.renders(), 2);
    }

    #[test]
    fn batches_become_json_rows() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, true),
            Field::new("count", DataType::Int64, false),
            Field::new("date", DataType::Date32, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("a"), None])),
                Arc::new(Int64Array::from(vec![3, 4])),
                Arc::new(Date32Array::from(vec![0, 1])),
            ],
        )
        .unwrap();
        assert_eq!(
            rows(&b),
            vec![
                json!({"host": "a", "count": 3, "date": "1970-01-01"}),
                json!({"host": null, "count": 4, "date": "1970-01-02"}),
            ]
        );
    }
}
