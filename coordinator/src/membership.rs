//! Membership helpers of the cluster actor: a worker's registration, the version check, and the
//! refusals workers act on. (The generation counter is persisted by `sawmill_common::etcd`.)

use sawmill_proto::v1::OwnedPartition;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;
use tonic::Status;

pub struct Member {
    pub generation: u64,
    pub version: String,
    pub metrics_address: String,
    pub last_seen: Instant,
    pub alive: bool,
    /// What it reported last: partition → (epoch, committed next offset or -1).
    pub owned: BTreeMap<i32, (u64, i64)>,
    pub records: u64,
    /// `(when, records_consumed)` over the last few seconds, for throughput.
    pub samples: VecDeque<(Instant, u64)>,
}

impl Member {
    pub fn throughput(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                b.1.saturating_sub(a.1) as f64 / (b.0 - a.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

pub fn compatible(worker: &str, ours: &str) -> bool {
    let mm = |v: &str| {
        let mut it = v.split('.');
        (
            it.next().unwrap_or("").to_string(),
            it.next().unwrap_or("").to_string(),
        )
    };
    !worker.is_empty() && mm(worker) == mm(ours)
}

pub fn unknown(id: &str) -> Status {
    Status::not_found(format!("unknown worker {id}: join first"))
}

pub fn stale(id: &str, got: u64, current: u64) -> Status {
    Status::failed_precondition(format!(
        "stale generation {got} for worker {id} (current {current}): rejoin"
    ))
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
