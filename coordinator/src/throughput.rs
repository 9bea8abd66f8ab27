//! Merged lines over time, for the dashboard's throughput chart: a sampler started by `serve`
//! reads the merged snapshot every two seconds.

use crate::snapshot::SharedMerged;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
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
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((SystemTime::now(), records));
        while samples.len() > SAMPLES {
            samples.pop_front();
        }
    }

    /// Records per second between consecutive samples, labelled `HH:MM:SS` (UTC).
    pub fn series(&self) -> Vec<(String, f64)> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples
            .iter()
            .zip(samples.iter().skip(1))
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

/// Samples the merged line count every [`SAMPLE_EVERY`] until aborted (`serve` does at
/// shutdown).
pub fn spawn_sampler(
    merged: SharedMerged,
    throughput: Arc<Throughput>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            throughput.sample(merged.load().lines());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_a_rate_between_samples() {
        let throughput = Throughput::default();
        throughput.sample(0);
        std::thread::sleep(Duration::from_millis(50));
        throughput.sample(100);
        let s = throughput.series();
        assert_eq!(s.len(), 1);
        assert!(s[0].1 > 100.0 && s[0].1 < 100.0 / 0.04, "{s:?}");
        assert_eq!(s[0].0.len(), 8);
    }
}
