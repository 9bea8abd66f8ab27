//! Membership helpers of the cluster actor: a worker's registration, the version check, and its
//! line in the status document. (The generation counter is persisted by `sawmill_common::etcd`.)

use sawmill_proto::v1::{OwnedPartition, PartitionError, WorkerStatus};
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

pub struct Member {
    pub generation: u64,
    pub version: String,
    pub metrics_address: String,
    pub last_seen: Instant,
    pub alive: bool,
    /// What it reported last: partition → (epoch, committed next offset if known).
    pub owned: BTreeMap<i32, (u64, Option<i64>)>,
    /// Partitions it reported failing last, with their ages as of `last_seen`.
    pub failing: BTreeMap<i32, PartitionError>,
    pub records: u64,
    /// `(when, records_consumed)` over the last few seconds, for throughput.
    pub samples: VecDeque<(Instant, u64)>,
}

impl Member {
    pub fn throughput(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) if last.0 > first.0 => {
                last.1.saturating_sub(first.1) as f64 / (last.0 - first.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Its line in the status document.
    pub fn status(&self, id: &str, now: Instant) -> WorkerStatus {
        WorkerStatus {
            id: id.to_string(),
            generation: self.generation,
            version: self.version.clone(),
            metrics_address: self.metrics_address.clone(),
            last_heartbeat_ms_ago: now.saturating_duration_since(self.last_seen).as_millis() as u64,
            alive: self.alive,
            owned: self.owned.keys().copied().collect(),
            records_consumed: self.records,
            throughput: self.throughput(),
        }
    }
}

/// What a worker reports it runs: partition → (epoch, committed next offset if known).
pub fn owned(reported: &[OwnedPartition]) -> BTreeMap<i32, (u64, Option<i64>)> {
    reported
        .iter()
        .map(|o| (o.partition, (o.epoch, o.committed_offset)))
        .collect()
}

/// What a worker reports failing: partition → its last error.
pub fn failing(reported: &[OwnedPartition]) -> BTreeMap<i32, PartitionError> {
    reported
        .iter()
        .filter_map(|o| Some((o.partition, o.last_error.clone()?)))
        .collect()
}

impl Member {
    /// The partition's last error as of `now`: the reported ages plus the time since the report.
    pub fn last_error(&self, partition: i32, now: Instant) -> Option<PartitionError> {
        let mut error = self.failing.get(&partition)?.clone();
        let since = now.saturating_duration_since(self.last_seen).as_millis() as u64;
        error.failing_for_ms = error.failing_for_ms.saturating_add(since);
        error.last_error_ms_ago = error.last_error_ms_ago.saturating_add(since);
        Some(error)
    }
}

/// `major.minor` must match between worker and coordinator.
pub fn compatible(worker: &str, ours: &str) -> bool {
    let major_minor = |version: &str| {
        let mut parts = version.split('.');
        (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        )
    };
    !worker.is_empty() && major_minor(worker) == major_minor(ours)
}

pub fn reported(owned: &[OwnedPartition]) -> BTreeMap<i32, u64> {
    owned.iter().map(|o| (o.partition, o.epoch)).collect()
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn versions_must_share_major_and_minor() {
        assert!(compatible("0.1.0", "0.1.7"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("", "0.1.0"));
    }
}
