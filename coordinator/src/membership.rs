//! Membership helpers of the cluster actor: a worker's registration, the version check,
//! the generation counter persisted in etcd, and the refusals workers act on.

use sawmill_common::checkpoint::Checkpoints;
use sawmill_common::proto::v1::OwnedPartition;
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

pub async fn next_generation(cp: &Checkpoints, key: &str) -> Result<u64, String> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let mut client = cp.client();
    for _ in 0..100 {
        let resp = client.get(key, None).await.map_err(|e| e.to_string())?;
        let current: Option<String> = resp
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).to_string());
        let n: u64 = match &current {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("{key} holds {v:?}, not a number: delete the key"))?,
            None => 0,
        };
        let guard = match &current {
            Some(v) => Compare::value(key, CompareOp::Equal, v.as_str()),
            None => Compare::create_revision(key, CompareOp::Equal, 0),
        };
        let next = n + 1;
        let txn = Txn::new()
            .when([guard])
            .and_then([TxnOp::put(key, next.to_string(), None)]);
        if client
            .txn(txn)
            .await
            .map_err(|e| e.to_string())?
            .succeeded()
        {
            return Ok(next);
        }
    }
    Err(format!("too much contention on {key}"))
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
