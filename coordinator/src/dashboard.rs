//! The live dashboard at `/`: the page from `sawmill_report::dashboard` and the JSON document it
//! polls at `/api/v1/dashboard` (the report's charts over the merged analytics so far, the cluster
//! status, and committed records per second over time).

use crate::http::ApiState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use sawmill_report::Tables;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Samples kept: 10 minutes at one sample every 2 seconds.
const SAMPLES: usize = 300;
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Merged record counts over time, for the throughput chart.
#[derive(Debug, Default)]
pub struct Throughput {
    samples: Mutex<VecDeque<(SystemTime, u64)>>,
}

impl Throughput {
    pub fn sample(&self, records: u64) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((SystemTime::now(), records));
        while s.len() > SAMPLES {
            s.pop_front();
        }
    }

    /// Records per second between consecutive samples, labelled `HH:MM:SS` (UTC).
    pub fn series(&self) -> Vec<(String, f64)> {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.iter()
            .zip(s.iter().skip(1))
            .map(|((t0, r0), (t1, r1))| {
                let dt = t1
                    .duration_since(*t0)
                    .unwrap_or_default()
                    .as_secs_f64()
                    .max(1e-3);
                let secs = t1
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    % 86_400;
                let label = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
                (label, r1.saturating_sub(*r0) as f64 / dt)
            })
            .collect()
    }
}

/// Samples the merged record count until the process ends.
pub fn spawn_sampler(state: ApiState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let records = state
                .merged
                .read()
                .map(|g| g.partial.records() + g.partial.rejects())
                .unwrap_or(0);
            state.throughput.sample(records);
        }
    });
}

pub async fn page() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(sawmill_report::dashboard::PAGE),
    )
        .into_response()
}

pub async fn document(State(s): State<ApiState>) -> Response {
    let status = match s.status().await {
        Ok(doc) => serde_json::to_value(doc).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e }),
    };
    let merged = s.merged.clone();
    let series = s.throughput.series();
    let r = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        let tables: Tables = {
            let g = merged
                .read()
                .map_err(|_| "the merged state lock is poisoned".to_string())?;
            if g.partial.records() + g.partial.rejects() == 0 {
                Tables::new()
            } else {
                g.partial
                    .tables()
                    .into_iter()
                    .map(|(n, b)| (n.to_string(), b))
                    .collect()
            }
        };
        Ok(sawmill_report::dashboard::document(
            &tables, &status, &series,
        ))
    })
    .await;
    match r {
        Ok(Ok(v)) => ([(header::CACHE_CONTROL, "no-store")], Json(v)).into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_a_rate_between_samples() {
        let t = Throughput::default();
        t.sample(0);
        std::thread::sleep(Duration::from_millis(50));
        t.sample(100);
        let s = t.series();
        assert_eq!(s.len(), 1);
        assert!(s[0].1 > 100.0 && s[0].1 < 100.0 / 0.04, "{s:?}");
        assert_eq!(s[0].0.len(), 8);
    }
}
