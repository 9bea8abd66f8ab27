//! Every Prometheus metric of the worker, declared in one place. Names follow Prometheus
//! conventions (`_total` counters, base units); the list is in docs/metrics.md.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use sawmill_core::manifest::ShardManifest;
use sawmill_core::record::RejectReason;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Metrics {
    registry: Registry,
    records_consumed: IntCounterVec,
    /// The sum of `records_consumed` over partitions, for the heartbeat (not registered: the
    /// per-partition counter is what /metrics shows).
    records_consumed_sum: IntCounter,
    bytes_consumed: IntCounterVec,
    records_parsed: IntCounterVec,
    records_rejected: IntCounterVec,
    shards_written: IntCounterVec,
    shards_committed: IntCounterVec,
    commit_seconds: HistogramVec,
    committed_offset: IntGaugeVec,
    queued_batches: IntGaugeVec,
    commits_in_flight: IntGaugeVec,
    partition_starts: IntCounterVec,
    files_rederived: IntCounterVec,
    errors: IntCounterVec,
    health: Arc<PartitionHealth>,
}

/// Why one partition cannot make progress, while it lasts.
#[derive(Debug, Clone, PartialEq)]
pub struct Failing {
    /// The step that failed: `stage shard`, `commit shard`, `consume`, `pipeline`, ...
    pub what: String,
    /// The last error's text.
    pub error: String,
    /// Failed attempts since the partition last made progress.
    pub attempts: u64,
    /// The first failure since the partition last made progress.
    pub since: SystemTime,
    /// The last failed attempt.
    pub last: SystemTime,
}

/// Partitions that keep failing, with their last error: shared by the retry loops, the
/// consumer thread and the supervisor (which record), and the heartbeat and `/metrics` (which
/// report). A failure is recorded at every attempt, so it shows within one retry delay, and
/// cleared when the partition commits again or leaves this worker.
pub struct PartitionHealth {
    failing: Mutex<BTreeMap<i32, Failing>>,
    failing_gauge: IntGaugeVec,
    last_error_timestamp: IntGaugeVec,
    failures: IntCounterVec,
    consume_errors: IntCounterVec,
}

impl PartitionHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Failing>> {
        // A panic while holding it cannot leave the map inconsistent (single inserts/removes).
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An attempt at `what` failed for `partition`.
    pub fn failed(&self, partition: i32, what: &str, error: &dyn std::fmt::Display) {
        let now = SystemTime::now();
        let p = partition.to_string();
        {
            let mut failing = self.lock();
            let entry = failing.entry(partition).or_insert_with(|| Failing {
                what: String::new(),
                error: String::new(),
                attempts: 0,
                since: now,
                last: now,
            });
            entry.what = what.to_string();
            entry.error = error.to_string();
            entry.attempts += 1;
            entry.last = now;
        }
        self.failing_gauge.with_label_values(&[&p]).set(1);
        let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.last_error_timestamp
            .with_label_values(&[&p])
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
        self.failures.with_label_values(&[&p, what]).inc();
    }

    /// A Kafka consume error, for `partition` or (`None`) for the client as a whole.
    pub fn consume_error(&self, partition: Option<i32>) {
        let p = partition.map_or_else(|| "client".to_string(), |p| p.to_string());
        self.consume_errors.with_label_values(&[&p]).inc();
    }

    /// The partition made progress (or is no longer ours): forget its failure.
    pub fn recovered(&self, partition: i32) {
        if self.lock().remove(&partition).is_some() {
            self.failing_gauge
                .with_label_values(&[&partition.to_string()])
                .set(0);
        }
    }

    /// The partitions failing now.
    pub fn failing(&self) -> BTreeMap<i32, Failing> {
        self.lock().clone()
    }
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric =
        IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let commit_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sawmill_worker_commit_duration_seconds",
                "Time to encode, stage, commit and publish one shard.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["partition"],
        )
        .expect("static metric definition");
        registry
            .register(Box::new(commit_seconds.clone()))
            .expect("metric registered once");
        let health = Arc::new(PartitionHealth {
            failing: Mutex::default(),
            failing_gauge: gauge(
                &registry,
                "sawmill_worker_partition_failing",
                "1 while the partition cannot make progress (its shard cannot be staged, \
                 committed or published, or its consume errors persist), else 0.",
                &["partition"],
            ),
            last_error_timestamp: gauge(
                &registry,
                "sawmill_worker_partition_last_error_timestamp_seconds",
                "Unix time of the partition's last failed attempt.",
                &["partition"],
            ),
            failures: counter(
                &registry,
                "sawmill_worker_partition_failures_total",
                "Failed attempts to make progress on a partition, by step.",
                &["partition", "what"],
            ),
            consume_errors: counter(
                &registry,
                "sawmill_worker_consume_errors_total",
                "Kafka consume errors, per partition (`client` for the client as a whole).",
                &["partition"],
            ),
        });
        Metrics {
            health,
            committed_offset: gauge(
                &registry,
                "sawmill_worker_committed_offset",
                "Next offset committed in etcd, per partition.",
                &["partition"],
            ),
            queued_batches: gauge(
                &registry,
                "sawmill_worker_queued_batches",
                "Batches handed to a partition pipeline and not parsed yet; at the credit limit \
                 the partition's consumption is held back.",
                &["partition"],
            ),
            commits_in_flight: gauge(
                &registry,
                "sawmill_worker_commits_in_flight",
                "Shard commits running, per partition.",
                &["partition"],
            ),
            records_consumed: counter(
                &registry,
                "sawmill_worker_records_consumed_total",
                "Kafka records consumed.",
                &["partition"],
            ),
            bytes_consumed: counter(
                &registry,
                "sawmill_worker_bytes_consumed_total",
                "Kafka record bytes consumed.",
                &["partition"],
            ),
            records_parsed: counter(
                &registry,
                "sawmill_worker_records_parsed_total",
                "Records parsed and committed.",
                &["partition"],
            ),
            records_rejected: counter(
                &registry,
                "sawmill_worker_records_rejected_total",
                "Rejected lines committed, by reason.",
                &["partition", "reason"],
            ),
            shards_written: counter(
                &registry,
                "sawmill_worker_shards_written_total",
                "Shards staged on storage (committed or not).",
                &["partition"],
            ),
            shards_committed: counter(
                &registry,
                "sawmill_worker_shards_committed_total",
                "Shards committed in etcd and published.",
                &["partition"],
            ),
            partition_starts: counter(
                &registry,
                "sawmill_worker_partition_starts_total",
                "Partition pipelines started (including restarts).",
                &["partition"],
            ),
            files_rederived: counter(
                &registry,
                "sawmill_worker_files_rederived_total",
                "Committed files found lost before publishing and re-derived from Kafka.",
                &["partition"],
            ),
            errors: counter(
                &registry,
                "sawmill_worker_errors_total",
                "Errors by kind.",
                &["kind"],
            ),
            records_consumed_sum: IntCounter::new(
                "sawmill_worker_records_consumed_sum",
                "Kafka records consumed, all partitions.",
            )
            .expect("static metric definition"),
            commit_seconds,
            registry,
        }
    }
}

impl Metrics {
    pub fn consumed(&self, partition: i32, records: u64, bytes: u64) {
        let p = partition.to_string();
        self.records_consumed
            .with_label_values(&[&p])
            .inc_by(records);
        self.bytes_consumed.with_label_values(&[&p]).inc_by(bytes);
        self.records_consumed_sum.inc_by(records);
    }

    /// Records consumed so far, all partitions together.
    pub fn records_consumed(&self) -> u64 {
        self.records_consumed_sum.get()
    }

    /// A shard was staged; `committed` says whether its commit then landed.
    pub fn written(&self, partition: i32) {
        self.shards_written
            .with_label_values(&[&partition.to_string()])
            .inc();
    }

    /// `rejects` are the shard's rejected lines by reason.
    pub fn committed(
        &self,
        partition: i32,
        m: &ShardManifest,
        rejects: &[(RejectReason, u64)],
        took: Duration,
    ) {
        let p = partition.to_string();
        self.records_parsed
            .with_label_values(&[&p])
            .inc_by(m.records);
        for (reason, n) in rejects {
            self.records_rejected
                .with_label_values(&[&p, reason.as_str()])
                .inc_by(*n);
        }
        self.shards_written.with_label_values(&[&p]).inc();
        self.shards_committed.with_label_values(&[&p]).inc();
        self.commit_seconds
            .with_label_values(&[&p])
            .observe(took.as_secs_f64());
        self.committed_offset
            .with_label_values(&[&p])
            .set(m.next_offset());
    }

    /// A lost committed file was re-derived from Kafka and staged again.
    pub fn rederived(&self, partition: i32) {
        self.files_rederived
            .with_label_values(&[&partition.to_string()])
            .inc();
    }

    /// Lost committed files re-derived so far, all partitions together.
    pub fn files_rederived(&self) -> u64 {
        use prometheus::core::Collector;
        self.files_rederived
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|m| m.get_counter().value() as u64)
            .sum()
    }

    pub fn partition_started(&self, partition: i32, offset: i64) {
        let p = partition.to_string();
        self.partition_starts.with_label_values(&[&p]).inc();
        self.committed_offset.with_label_values(&[&p]).set(offset);
    }

    /// A partition pipeline's backlog: batches waiting for it and commits it is running.
    pub fn backlog(&self, partition: i32, queued: usize, commits: usize) {
        let p = partition.to_string();
        self.queued_batches
            .with_label_values(&[&p])
            .set(queued as i64);
        self.commits_in_flight
            .with_label_values(&[&p])
            .set(commits as i64);
    }

    /// The failing-partition record, shared with the retry loops and the consumer thread.
    pub fn health(&self) -> Arc<PartitionHealth> {
        self.health.clone()
    }

    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_records_are_summed_over_partitions() {
        let metrics = Metrics::default();
        metrics.consumed(0, 10, 100);
        metrics.consumed(1, 32, 999);
        assert_eq!(metrics.records_consumed(), 42);
        let text = metrics.render();
        assert!(text.contains("sawmill_worker_records_consumed_total{partition=\"1\"} 32"));
        assert!(!text.contains("records_consumed_sum"));
    }

    #[test]
    fn a_failing_partition_is_recorded_until_it_recovers() {
        let metrics = Metrics::default();
        let health = metrics.health();
        health.failed(3, "stage shard", &"permission denied");
        health.failed(3, "commit shard", &"etcd down");
        let failing = health.failing();
        let f = &failing[&3];
        assert_eq!(
            (f.what.as_str(), f.error.as_str(), f.attempts),
            ("commit shard", "etcd down", 2)
        );
        assert!(f.since <= f.last);
        let text = metrics.render();
        assert!(text.contains("sawmill_worker_partition_failing{partition=\"3\"} 1"));
        assert!(
            text.contains("sawmill_worker_partition_last_error_timestamp_seconds{partition=\"3\"}")
        );
        health.recovered(3);
        assert!(health.failing().is_empty());
        assert!(metrics
            .render()
            .contains("sawmill_worker_partition_failing{partition=\"3\"} 0"));
    }
}
