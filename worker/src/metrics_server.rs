//! The worker's HTTP listener: `GET /metrics` (Prometheus text) and `GET /healthz`, for
//! `worker run` and `worker join` alike.

use crate::context::WorkerContext;
use crate::error::{Result, WorkerError};
use std::sync::Arc;

/// Serves `GET /metrics` (Prometheus text) and `GET /healthz` on `addr`.
pub(crate) async fn serve_metrics(
    addr: &str,
    ctx: Arc<WorkerContext>,
) -> Result<tokio::task::JoinHandle<()>> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        WorkerError::Config(format!(
            "cannot listen on {addr} for /metrics: {e} (pick another --metrics-listen)"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %bound, "serving /metrics");
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let ctx = ctx.clone();
                async move { ctx.metrics.render() }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    }))
}
