//! The live dashboard at `/`: the page from `sawmill_report::dashboard` and the JSON document it
//! polls at `/api/v1/dashboard` (the report's charts over the merged analytics so far, the cluster
//! status, and committed records per second over time).

use crate::state::ApiState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use sawmill_report::Tables;
use std::sync::Arc;

pub async fn page() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(sawmill_report::dashboard::PAGE),
    )
        .into_response()
}

pub async fn document(State(state): State<ApiState>) -> Response {
    let status = match state.status().await {
        Ok(doc) => serde_json::to_value(doc).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    let merged = state.merged.load_full();
    let series = state.throughput.series();
    let built = tokio::task::spawn_blocking(move || {
        // Charts change only with a merge: drawn once per merge generation, not per poll.
        let drawn = merged
            .renders
            .dashboard
            .get_or_render(&merged.partial, 0, || {
                let tables: Tables = if merged.lines() == 0 {
                    Tables::new()
                } else {
                    merged
                        .partial
                        .tables()
                        .into_iter()
                        .map(|(name, batch)| (name.to_string(), batch))
                        .collect()
                };
                Ok::<_, std::convert::Infallible>(Arc::new(sawmill_report::dashboard::analytics(
                    &tables,
                )))
            });
        let drawn = match drawn {
            Ok(d) => d,
            Err(never) => match never {},
        };
        sawmill_report::dashboard::document_with(&drawn, &status, &series)
    })
    .await;
    match built {
        Ok(doc) => ([(header::CACHE_CONTROL, "no-store")], Json(doc)).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
