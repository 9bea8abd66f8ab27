//! Every Prometheus metric of the coordinator, declared in one place (listed in
//! docs/http-api.md). Served as text at `GET /metrics`.

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub workers_alive: IntGauge,
    pub generation: IntGauge,
    pub rebalances: IntCounter,
    pub partition_moves: IntCounter,
    pub epoch_bumps: IntCounter,
    pub workers_dead: IntCounter,
    pub merges: IntCounter,
    pub merged_records: IntCounter,
    pub merged_rejects: IntCounter,
    pub summary_writes: IntCounter,
    pub folded_manifests: IntCounter,
    pub stale_staging_deleted: IntCounter,
    pub partition_lag: IntGaugeVec,
    /// 1 while this coordinator leads its pipeline, 0 while it stands by.
    pub leader: IntGauge,
    pub elections_won: IntCounter,
    pub step_downs: IntCounter,
    pub fenced_writes: IntCounter,
    pub watchdog_releases: IntCounter,
    errors: IntCounterVec,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    reg(
        r,
        IntCounter::new(name, help).expect("static metric definition"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    reg(
        r,
        IntGauge::new(name, help).expect("static metric definition"),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        Metrics {
            workers_alive: gauge(
                &r,
                "sawmill_coordinator_workers_alive",
                "Workers with a live session.",
            ),
            generation: gauge(
                &r,
                "sawmill_coordinator_generation",
                "Last generation handed out at Join.",
            ),
            rebalances: counter(
                &r,
                "sawmill_coordinator_rebalances_total",
                "Assignment passes that moved or granted at least one partition.",
            ),
            partition_moves: counter(
                &r,
                "sawmill_coordinator_partition_moves_total",
                "Partitions granted to a new owner (first owner included).",
            ),
            epoch_bumps: counter(
                &r,
                "sawmill_coordinator_epoch_bumps_total",
                "Owner epochs bumped in etcd.",
            ),
            workers_dead: counter(
                &r,
                "sawmill_coordinator_workers_declared_dead_total",
                "Workers declared dead after missing the session timeout.",
            ),
            merges: counter(
                &r,
                "sawmill_coordinator_merges_total",
                "Committed shards merged into the summary.",
            ),
            merged_records: counter(
                &r,
                "sawmill_coordinator_merged_records_total",
                "Records in the merged shards.",
            ),
            merged_rejects: counter(
                &r,
                "sawmill_coordinator_merged_rejects_total",
                "Rejected lines in the merged shards.",
            ),
            summary_writes: counter(
                &r,
                "sawmill_coordinator_summary_writes_total",
                "Times the summary tables were written.",
            ),
            folded_manifests: counter(
                &r,
                "sawmill_coordinator_folded_manifests_total",
                "Manifests folded out of etcd into manifest segments.",
            ),
            stale_staging_deleted: counter(
                &r,
                "sawmill_coordinator_stale_staging_deleted_total",
                "Stale staging files of fenced owners deleted by the sweep.",
            ),
            partition_lag: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "sawmill_coordinator_partition_lag",
                        "Kafka end offset minus the committed next offset, per partition.",
                    ),
                    &["partition"],
                )
                .expect("static metric definition"),
            ),
            leader: gauge(
                &r,
                "sawmill_coordinator_leader",
                "1 while this coordinator is the pipeline's leader, 0 while it is a standby.",
            ),
            elections_won: counter(
                &r,
                "sawmill_coordinator_elections_won_total",
                "Times this coordinator became the leader.",
            ),
            step_downs: counter(
                &r,
                "sawmill_coordinator_step_downs_total",
                "Times this coordinator stopped leading (lease lost, fenced, or shutdown).",
            ),
            fenced_writes: counter(
                &r,
                "sawmill_coordinator_fenced_writes_total",
                "etcd writes refused because this coordinator no longer led (its fence).",
            ),
            watchdog_releases: counter(
                &r,
                "sawmill_coordinator_watchdog_releases_total",
                "Partitions taken from a live owner because their committed offset did not advance for progress_timeout_ms while they had lag.",
            ),
            errors: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("sawmill_coordinator_errors_total", "Errors by kind."),
                    &["kind"],
                )
                .expect("static metric definition"),
            ),
            registry: r,
        }
    }
}

impl Metrics {
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
