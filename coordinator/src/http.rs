//! The HTTP API (axum): cluster status, merged analytics, Prometheus metrics, health.
//! Paths and JSON fields are documented in docs/http-api.md.

use crate::cluster::ClusterMsg;
use crate::config::ServeConfig;
use crate::merge::SharedMerged;
use crate::metrics::Metrics;
use crate::status::StatusDoc;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ractor::ActorRef;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// What every handler reads.
#[derive(Clone)]
pub struct ApiState {
    pub cfg: Arc<ServeConfig>,
    pub cluster: ActorRef<ClusterMsg>,
    pub merged: SharedMerged,
    pub metrics: Metrics,
    pub started: Instant,
    /// Merged records over time, for the dashboard's throughput chart.
    pub throughput: Arc<crate::dashboard::Throughput>,
}

impl ApiState {
    /// The status document (also returned by the gRPC `Status` call).
    pub async fn status(&self) -> Result<StatusDoc, String> {
        let snap = ractor::call_t!(self.cluster, ClusterMsg::Snapshot, 5000)
            .map_err(|e| format!("the cluster actor does not answer: {e}"))?;
        let merged = self
            .merged
            .read()
            .map_err(|_| "the merged state lock is poisoned".to_string())?
            .status();
        Ok(StatusDoc {
            version: sawmill_core::VERSION.to_string(),
            pipeline: self.cfg.pipeline.pipeline_name().to_string(),
            topic: self.cfg.pipeline.topic.clone(),
            output: self.cfg.pipeline.output.clone(),
            generation: snap.generation,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            total_lag: snap.partitions.iter().filter_map(|p| p.lag).sum(),
            workers: snap.workers,
            partitions: snap.partitions,
            merged,
        })
    }
}

pub fn router(state: ApiState) -> Router {
    crate::dashboard::spawn_sampler(state.clone());
    Router::new()
        .route("/", get(crate::dashboard::page))
        .route("/api/v1/dashboard", get(crate::dashboard::document))
        .route("/api/v1/status", get(status))
        .route("/api/v1/analytics", get(analytics))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

fn unavailable(e: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e }))).into_response()
}

async fn status(State(s): State<ApiState>) -> Response {
    match s.status().await {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AnalyticsQuery {
    /// Rows kept in each ranking of the views (default 10).
    pub top: Option<usize>,
}

async fn analytics(State(s): State<ApiState>, Query(q): Query<AnalyticsQuery>) -> Response {
    let top = q.top.unwrap_or(10).min(10_000);
    let merged = s.merged.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let g = merged
            .read()
            .map_err(|_| "the merged state lock is poisoned".to_string())?;
        let views = serde_json::to_value(g.partial.views(top)).map_err(|e| e.to_string())?;
        let mut tables = Map::new();
        for (name, batch) in g.partial.tables() {
            tables.insert(name.to_string(), Value::Array(rows(&batch)));
        }
        Ok(json!({
            "records": g.partial.records(),
            "rejects": g.partial.rejects(),
            "shards": g.shards,
            "next_offsets": g.next,
            "views": views,
            "tables": tables,
        }))
    })
    .await;
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => unavailable(e),
        Err(e) => unavailable(format!("analytics task failed: {e}")),
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
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
