//! Coordinator leader election and the fence every coordinator write carries.
//!
//! One coordinator of a pipeline leads: it holds the leader key ([`super::Keys::leader`]),
//! created in a transaction only if absent and attached to a lease it keeps alive. The key's
//! create revision is the *fencing token*: a [`Checkpoints`] carrying a [`Fence`] adds "the
//! leader key still has my revision" to every transaction it writes, so a coordinator whose
//! lease expired (paused, partitioned, slow) can never change anything once another one took
//! the key, even if it has not noticed yet. A refused fenced write marks the fence deposed;
//! the coordinator watches that and steps down.

use super::{etcd_err, Checkpoints};
use crate::error::{Error, Result};
use etcd_client::{Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The current leader as the leader key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader's advertised gRPC address (the key's value).
    pub address: String,
    /// The key's create revision: the leader's fencing token.
    pub revision: i64,
}

/// A leader's fencing token and what its holder knows about its own tenure.
#[derive(Debug)]
pub struct Fence {
    /// The leader key's create revision when this coordinator created it.
    pub revision: i64,
    base: Instant,
    /// Milliseconds after `base` until which the lease is certainly alive on the server: the
    /// last acknowledged keep-alive's send time plus the TTL it granted.
    valid_until_ms: AtomicU64,
    deposed: AtomicBool,
    refused: AtomicU64,
    notify: tokio::sync::Notify,
}

impl Fence {
    /// A fence for `revision`, valid for `ttl` from `granted` (when the lease was requested).
    pub fn new(revision: i64, granted: Instant, ttl: Duration) -> Arc<Self> {
        let fence = Fence {
            revision,
            base: granted,
            valid_until_ms: AtomicU64::new(0),
            deposed: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            notify: tokio::sync::Notify::new(),
        };
        fence.extend(granted, ttl);
        Arc::new(fence)
    }

    /// A keep-alive sent at `sent` was acknowledged with `ttl`.
    pub fn extend(&self, sent: Instant, ttl: Duration) {
        let until = sent.saturating_duration_since(self.base) + ttl;
        self.valid_until_ms
            .fetch_max(until.as_millis() as u64, Ordering::SeqCst);
    }

    /// Until when the lease is certainly alive.
    pub fn valid_until(&self) -> Instant {
        self.base + Duration::from_millis(self.valid_until_ms.load(Ordering::SeqCst))
    }

    /// Whether this coordinator may still act as leader: not deposed and its lease certainly
    /// alive. Checked before every write, so a leader resumed after its lease expired stops
    /// without even trying.
    pub fn valid(&self) -> bool {
        !self.is_deposed() && Instant::now() < self.valid_until()
    }

    pub fn is_deposed(&self) -> bool {
        self.deposed.load(Ordering::SeqCst)
    }

    /// Marks the tenure over (lease lost, write refused, shutdown) and wakes [`Self::deposed`].
    pub fn depose(&self) {
        self.deposed.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Writes refused because this coordinator was no longer the leader.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::SeqCst);
        self.depose();
    }

    /// Completes once the fence is deposed.
    pub async fn deposed(&self) {
        while !self.is_deposed() {
            self.notify.notified().await;
        }
    }
}

/// What a campaign ends with: elected (the fence and the lease's keep-alive), or the current
/// leader (if the key vanished again meanwhile, none).
pub type Campaign = std::result::Result<(Arc<Fence>, LeaseKeepAlive), Option<LeaderInfo>>;

/// A lease being kept alive: [`Self::renew`] once per third of its TTL.
pub struct LeaseKeepAlive {
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
    /// When each request still unanswered was sent, oldest first: answers come in order, so a
    /// late answer (its wait timed out) is credited to its own request, never to a later one.
    sent: std::collections::VecDeque<Instant>,
}

impl LeaseKeepAlive {
    /// The lease's id (to revoke it).
    pub fn id(&self) -> i64 {
        self.keeper.id()
    }

    /// One keep-alive round trip: the answered request's send time and the TTL granted from
    /// then, `None` when the lease is gone (expired). A caller may time it out; the request
    /// stays queued and its answer is read by the next call.
    pub async fn renew(&mut self) -> Result<Option<(Instant, Duration)>> {
        let err = |e: etcd_client::Error| Error::Etcd(format!("lease keep-alive failed: {e}"));
        // Queued before sending: a call cancelled in between leaves an extra, older entry, so
        // later answers are credited to earlier sends (a shorter tenure), never to later ones.
        self.sent.push_back(Instant::now());
        self.keeper.keep_alive().await.map_err(err)?;
        let answer = self.stream.message().await.map_err(err)?;
        let sent = self.sent.pop_front().unwrap_or_else(Instant::now);
        match answer {
            Some(r) if r.ttl() > 0 => Ok(Some((sent, Duration::from_secs(r.ttl() as u64)))),
            _ => Ok(None),
        }
    }
}

impl Checkpoints {
    /// A copy whose every coordinator write is guarded by `fence` (see the module docs).
    pub fn fenced(&self, fence: Arc<Fence>) -> Checkpoints {
        let mut c = self.clone();
        c.fence = Some(fence);
        c
    }

    /// The fence this copy writes under, if any.
    pub fn fence(&self) -> Option<&Arc<Fence>> {
        self.fence.as_ref()
    }

    /// The guard every fenced transaction carries (none without a fence).
    pub(super) fn fence_guard(&self) -> Result<Vec<Compare>> {
        match &self.fence {
            None => Ok(Vec::new()),
            Some(f) if !f.valid() => {
                f.refuse();
                tracing::warn!(
                    revision = f.revision,
                    "write refused: this coordinator's leadership is over"
                );
                Err(self.not_leader())
            }
            Some(f) => Ok(vec![Compare::create_revision(
                self.keys.leader(),
                CompareOp::Equal,
                f.revision,
            )]),
        }
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader(format!(
            "the leader key {} no longer carries this coordinator's revision",
            self.keys.leader()
        ))
    }

    /// After a refused fenced transaction: `Err(NotLeader)` (and the fence deposed) if the
    /// leader key is no longer ours, `Ok` if another guard refused it.
    pub(super) async fn check_fence(&mut self) -> Result<()> {
        let Some(fence) = self.fence.clone() else {
            return Ok(());
        };
        let current = self.leader().await?.map(|l| l.revision);
        if current == Some(fence.revision) {
            return Ok(());
        }
        fence.refuse();
        tracing::warn!(
            revision = fence.revision,
            current,
            "write refused by the fence: another coordinator leads now"
        );
        Err(self.not_leader())
    }

    /// A fenced transaction of `ops` with `guards`; `Ok(false)` when a guard other than the
    /// fence refused it, `Err(NotLeader)` when the fence did.
    pub(super) async fn fenced_txn(
        &mut self,
        guards: Vec<Compare>,
        ops: Vec<TxnOp>,
    ) -> Result<bool> {
        let mut all = self.fence_guard()?;
        all.extend(guards);
        let resp = self
            .client
            .txn(Txn::new().when(all).and_then(ops))
            .await
            .map_err(etcd_err(&self.endpoints, "etcd transaction failed"))?;
        if resp.succeeded() {
            return Ok(true);
        }
        self.check_fence().await?;
        Ok(false)
    }

    /// The current leader, if any.
    pub async fn leader(&mut self) -> Result<Option<LeaderInfo>> {
        let key = self.keys.leader();
        let resp = self
            .client
            .get(key.as_str(), None)
            .await
            .map_err(etcd_err(&self.endpoints, "etcd read failed"))?;
        Ok(resp.kvs().first().map(|kv| LeaderInfo {
            address: String::from_utf8_lossy(kv.value()).to_string(),
            revision: kv.create_revision(),
        }))
    }

    /// Tries to become the leader: grants a lease of `ttl` (whole seconds, at least 1) and
    /// creates the leader key with `address` under it, only if no leader key exists. Returns
    /// the fence and the lease's keep-alive when elected, else the current leader (the lease
    /// is revoked).
    pub async fn campaign(&mut self, address: &str, ttl: Duration) -> Result<Campaign> {
        let seconds = ttl.as_secs().max(1) as i64;
        let requested = Instant::now();
        let lease = self
            .client
            .lease_grant(seconds, None)
            .await
            .map_err(etcd_err(&self.endpoints, "cannot grant a lease"))?;
        let key = self.keys.leader();
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.as_str(),
                address,
                Some(PutOptions::new().with_lease(lease.id())),
            )]);
        let resp = self
            .client
            .txn(txn)
            .await
            .map_err(etcd_err(&self.endpoints, "election transaction failed"))?;
        if !resp.succeeded() {
            let _ = self.client.lease_revoke(lease.id()).await;
            return Ok(Err(self.leader().await?));
        }
        let revision = resp.header().map_or(0, |h| h.revision());
        let granted = Duration::from_secs(lease.ttl().max(1) as u64);
        let fence = Fence::new(revision, requested, granted);
        let (keeper, stream) = self
            .client
            .lease_keep_alive(lease.id())
            .await
            .map_err(etcd_err(&self.endpoints, "cannot keep the lease alive"))?;
        Ok(Ok((
            fence,
            LeaseKeepAlive {
                keeper,
                stream,
                sent: Default::default(),
            },
        )))
    }

    /// Gives leadership up: deletes the leader key if it still carries `fence`'s revision (so
    /// a standby takes over at once instead of after the TTL) and revokes `lease`. A deposed
    /// leader's attempt is refused and counted. Returns whether the key was ours.
    pub async fn resign(&mut self, fence: &Fence, lease: Option<i64>) -> Result<bool> {
        let key = self.keys.leader();
        let resp = self
            .client
            .txn(
                Txn::new()
                    .when([Compare::create_revision(
                        key.as_str(),
                        CompareOp::Equal,
                        fence.revision,
                    )])
                    .and_then([TxnOp::delete(key.as_str(), None)]),
            )
            .await
            .map_err(etcd_err(&self.endpoints, "resign transaction failed"))?;
        if !resp.succeeded() {
            fence.refuse();
            tracing::warn!(
                revision = fence.revision,
                "resign refused by the fence: another coordinator leads already"
            );
        }
        fence.depose();
        if let Some(id) = lease {
            let _ = self.client.lease_revoke(id).await;
        }
        Ok(resp.succeeded())
    }

    /// Records, under the fence, that the leader is about to replace the summary tables for
    /// the `writes`-th time: a deposed leader is refused here and never replaces a table.
    pub async fn record_summary(&mut self, writes: u64) -> Result<()> {
        let key = self.keys.summary_writer();
        let revision = self.fence.as_ref().map_or(0, |f| f.revision);
        let body = serde_json::json!({ "leader_revision": revision, "writes": writes });
        let ok = self
            .fenced_txn(Vec::new(), vec![TxnOp::put(key, body.to_string(), None)])
            .await?;
        if ok {
            Ok(())
        } else {
            Err(self.not_leader())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_valid_until_its_lease_could_have_expired() {
        let t0 = Instant::now();
        let fence = Fence::new(7, t0, Duration::from_secs(3600));
        assert!(fence.valid());
        // A renewal acknowledged for an earlier send never shortens the tenure.
        fence.extend(t0, Duration::from_secs(1));
        assert!(fence.valid_until() >= t0 + Duration::from_secs(3600));
        fence.depose();
        assert!(!fence.valid());
        let expired = Fence::new(8, t0 - Duration::from_secs(10), Duration::from_secs(2));
        assert!(!expired.valid(), "a lease granted 10 s ago for 2 s is over");
    }
}
