//! Leader election: every `coordinator serve` of a pipeline campaigns for the leader key in
//! etcd (`sawmill_common::etcd`, `leader.rs`); the one that holds it runs a *term* — the merge
//! actor, the cluster actor and the topic poller, all writing through a fenced
//! [`Checkpoints`] — and the others stand by, answering status and pointing workers at the
//! leader. A term starts exactly like a restarted coordinator (state rebuilt from etcd and
//! storage, recorded owners given a grace period to rejoin), so a takeover reuses that path.
//!
//! A leader steps down at once — stops its term and becomes a standby again, never exits —
//! when its lease is lost or not renewed in time, or when any of its writes is refused by the
//! fence ([`step_down`], pure).

use crate::cluster::{ClusterActor, ClusterArgs, ClusterMsg};
use crate::config::ServeConfig;
use crate::error::{CoordinatorError, Result};
use crate::merge::{MergeActor, MergeArgs, MergeMsg};
use crate::metrics::Metrics;
use crate::role::{Role, SharedRole};
use crate::snapshot::{MergedSnapshot, SharedMerged};
use ractor::{Actor, ActorRef};
use sawmill_common::etcd::{Checkpoints, Fence, LeaseKeepAlive};
use sawmill_common::storage::Storage;
use sawmill_core::analytics::Partial;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The outcome of the last lease renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Acknowledged: the lease lives on.
    Renewed,
    /// etcd answered that the lease no longer exists.
    Expired,
    /// No answer (etcd unreachable or slow): retried at the next renewal.
    Failed,
}

/// Whether a leader must stop leading now, and why: deposed by a refused write, its lease
/// gone, or its lease possibly expired on the server (no renewal acknowledged in time). A
/// failed renewal alone is retried while the lease is certainly still alive.
pub fn step_down(
    deposed: bool,
    renewal: Renewal,
    now: Instant,
    valid_until: Instant,
) -> Option<&'static str> {
    if deposed {
        Some("a write was refused by the fence")
    } else if renewal == Renewal::Expired {
        Some("the lease expired")
    } else if now >= valid_until {
        Some("the lease was not renewed in time")
    } else {
        None
    }
}

/// The address this coordinator names to workers while it leads: `--advertise` if given, else
/// the bound gRPC address, with the host name instead of an unspecified IP (`0.0.0.0`), which
/// no worker could reach.
pub fn advertised(
    configured: Option<&str>,
    bound: std::net::SocketAddr,
    hostname: Option<&str>,
) -> String {
    if let Some(a) = configured {
        return a.trim().to_string();
    }
    match hostname.map(str::trim).filter(|h| !h.is_empty()) {
        Some(host) if bound.ip().is_unspecified() => format!("{host}:{}", bound.port()),
        _ => bound.to_string(),
    }
}

/// What the election loop needs.
pub struct Election {
    pub cfg: Arc<ServeConfig>,
    /// Unfenced: each term gets a fenced copy.
    pub checkpoints: Checkpoints,
    pub storage: Arc<dyn Storage>,
    pub merged: SharedMerged,
    pub metrics: Metrics,
    pub role: SharedRole,
    /// This coordinator's advertised gRPC address (the leader key's value while it leads).
    pub advertise: String,
}

/// How often a standby looks at the leader key: a small fraction of the TTL, so a takeover
/// follows the lease's expiry closely.
fn poll_interval(ttl: Duration) -> Duration {
    (ttl / 8).clamp(Duration::from_millis(50), Duration::from_millis(250))
}

/// Campaigns, leads and stands by until `shutdown` turns true; a leader then writes the final
/// summary and resigns, so a standby takes over at once. `ready` fires once the first campaign
/// has an outcome (leading with its term started, or standing by).
pub async fn run(
    e: Election,
    mut shutdown: watch::Receiver<bool>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<()> {
    let mut ready = Some(ready);
    let ttl = e.cfg.leader_ttl();
    let mut reported: Option<Option<String>> = None;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let mut checkpoints = e.checkpoints.clone();
        let leader = match checkpoints.leader().await {
            Ok(None) => match checkpoints.campaign(&e.advertise, ttl).await {
                Ok(Ok((fence, keepalive))) => {
                    let outcome = lead(&e, fence, keepalive, &mut shutdown, &mut ready).await;
                    reported = None;
                    if *shutdown.borrow() {
                        return outcome;
                    }
                    if let Err(err) = outcome {
                        tracing::warn!(error = %err, "term ended with an error; standing by");
                        tokio::select! {
                            _ = tokio::time::sleep(poll_interval(ttl)) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                    continue;
                }
                Ok(Err(other)) => other.map(|l| l.address),
                Err(err) => {
                    tracing::warn!(error = %err, "campaign failed; retrying");
                    None
                }
            },
            Ok(Some(l)) => Some(l.address),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the leader key; retrying");
                None
            }
        };
        if reported.as_ref() != Some(&leader) {
            tracing::info!(leader = ?leader, "standing by");
            reported = Some(leader.clone());
        }
        e.role.store(Arc::new(Role::Standby { leader }));
        fire(&mut ready);
        tokio::select! {
            _ = tokio::time::sleep(poll_interval(ttl)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

fn fire(ready: &mut Option<tokio::sync::oneshot::Sender<()>>) {
    if let Some(tx) = ready.take() {
        let _ = tx.send(());
    }
}

/// One term as leader, from election to step-down (or shutdown).
async fn lead(
    e: &Election,
    fence: Arc<Fence>,
    mut keepalive: LeaseKeepAlive,
    shutdown: &mut watch::Receiver<bool>,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<()> {
    let elected = Instant::now();
    e.metrics.elections_won.inc();
    tracing::info!(revision = fence.revision, advertise = %e.advertise, "elected leader: rebuilding the cluster state from etcd");
    let fenced = e.checkpoints.fenced(fence.clone());
    let term = match Term::start(e, fenced).await {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot start the term; resigning");
            let _ = e
                .checkpoints
                .clone()
                .resign(&fence, Some(keepalive.id()))
                .await;
            e.metrics.fenced_writes.inc_by(fence.refused());
            return Err(err);
        }
    };
    e.role.store(Arc::new(Role::Leader {
        cluster: term.cluster.clone(),
        fence: fence.clone(),
        advertise: e.advertise.clone(),
    }));
    e.metrics.leader.set(1);
    fire(ready);
    tracing::info!(
        ready_ms = elected.elapsed().as_millis() as u64,
        "leading: serving workers"
    );
    let ttl = e.cfg.leader_ttl();
    let mut renew = tokio::time::interval(ttl / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = loop {
        tokio::select! {
            _ = fence.deposed() => break "a write was refused by the fence",
            _ = shutdown.changed() => break "shutdown",
            _ = renew.tick() => {
                let renewal = match tokio::time::timeout(ttl / 3, keepalive.renew()).await {
                    Ok(Ok(Some((sent, granted)))) => {
                        fence.extend(sent, granted);
                        Renewal::Renewed
                    }
                    Ok(Ok(None)) => Renewal::Expired,
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "lease renewal failed; retrying");
                        Renewal::Failed
                    }
                    Err(_) => Renewal::Failed,
                };
                if let Some(reason) = step_down(fence.is_deposed(), renewal, Instant::now(), fence.valid_until()) {
                    break reason;
                }
            }
        }
    };
    // Refuse workers at once; the term stops below.
    e.role.store(Arc::new(Role::Standby { leader: None }));
    e.metrics.leader.set(0);
    e.metrics.step_downs.inc();
    let flush = reason == "shutdown" && fence.valid();
    if reason == "shutdown" {
        tracing::info!("shutting down: writing the summary, then resigning");
    } else {
        tracing::warn!(
            reason,
            "stepping down: stopping the term, standing by as a standby"
        );
        fence.depose();
    }
    let stopped = if flush {
        // The final summary is written under the fence, which lapses a TTL after the last
        // renewal: keep renewing until it is written, or its last tables would be refused.
        let stop = term.stop(true);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                stopped = &mut stop => break stopped,
                _ = renew.tick() => {
                    if let Ok(Ok(Some((sent, granted)))) =
                        tokio::time::timeout(ttl / 3, keepalive.renew()).await
                    {
                        fence.extend(sent, granted);
                    }
                }
            }
        }
    } else {
        term.stop(false).await
    };
    // Deletes the leader key if it is still ours (a standby takes over at once); a deposed
    // leader's attempt is refused by the fence and counted.
    if let Err(err) = e
        .checkpoints
        .clone()
        .resign(&fence, Some(keepalive.id()))
        .await
    {
        tracing::warn!(error = %err, "cannot resign; the lease expires on its own");
    }
    let refused = fence.refused();
    e.metrics.fenced_writes.inc_by(refused);
    if refused > 0 {
        tracing::warn!(refused, "writes refused by the fence during this term");
    }
    e.merged.store(Arc::new(MergedSnapshot::new(Partial::new(
        &e.cfg.pipeline.analytics(),
    ))));
    stopped
}

/// The actors and tasks of one leadership term.
struct Term {
    cluster: ActorRef<ClusterMsg>,
    cluster_join: tokio::task::JoinHandle<()>,
    merge: ActorRef<MergeMsg>,
    merge_join: tokio::task::JoinHandle<()>,
    poller: tokio::task::JoinHandle<()>,
}

/// Stops `actor`, killing it if it does not stop within 5 s (an etcd call stuck in a handler).
async fn stop_actor<M: ractor::Message>(actor: &ActorRef<M>, join: tokio::task::JoinHandle<()>) {
    actor.stop(None);
    let abort = join.abort_handle();
    if tokio::time::timeout(Duration::from_secs(5), join)
        .await
        .is_err()
    {
        actor.kill();
        abort.abort();
    }
}

impl Term {
    /// Starts a term as a restarted coordinator starts: merged state from empty (rebuilt from
    /// etcd and storage), recorded owners from etcd.
    async fn start(e: &Election, checkpoints: Checkpoints) -> Result<Term> {
        e.merged.store(Arc::new(MergedSnapshot::new(Partial::new(
            &e.cfg.pipeline.analytics(),
        ))));
        let (merge, merge_join) = Actor::spawn(
            None,
            MergeActor,
            MergeArgs {
                cfg: e.cfg.clone(),
                checkpoints: checkpoints.clone(),
                storage: e.storage.clone(),
                merged: e.merged.clone(),
                metrics: e.metrics.clone(),
            },
        )
        .await
        .map_err(|err| CoordinatorError::Actor(format!("merge actor: {err}")))?;
        // What etcd recorded before this term: owners get a grace period to rejoin.
        let recorded = match checkpoints.clone().partitions().await {
            Ok(r) => r,
            Err(err) => {
                stop_actor(&merge, merge_join).await;
                return Err(err.into());
            }
        };
        let spawned = Actor::spawn(
            None,
            ClusterActor,
            ClusterArgs {
                cfg: e.cfg.clone(),
                checkpoints: checkpoints.clone(),
                metrics: e.metrics.clone(),
                recorded,
            },
        )
        .await;
        let (cluster, cluster_join) = match spawned {
            Ok(c) => c,
            Err(err) => {
                stop_actor(&merge, merge_join).await;
                return Err(CoordinatorError::Actor(format!("cluster actor: {err}")));
            }
        };
        let poller = match crate::topic::spawn_poller(
            e.cfg.clone(),
            checkpoints,
            cluster.clone(),
            e.metrics.clone(),
        ) {
            Ok(p) => p,
            Err(err) => {
                stop_actor(&cluster, cluster_join).await;
                stop_actor(&merge, merge_join).await;
                return Err(err);
            }
        };
        Ok(Term {
            cluster,
            cluster_join,
            merge,
            merge_join,
            poller,
        })
    }

    /// Stops the term; with `flush` (a clean shutdown while leading) the summary is written
    /// one last time first.
    async fn stop(self, flush: bool) -> Result<()> {
        self.poller.abort();
        stop_actor(&self.cluster, self.cluster_join).await;
        let flushed = if flush {
            ractor::call_t!(self.merge, MergeMsg::Flush, 120_000)
                .map_err(|e| CoordinatorError::Actor(format!("final summary write: {e}")))
        } else {
            Ok(())
        };
        stop_actor(&self.merge, self.merge_join).await;
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_steps_down_when_fenced_expired_or_out_of_time() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(step_down(false, Renewal::Renewed, now, later), None);
        // A failed renewal is retried while the lease is certainly alive...
        assert_eq!(step_down(false, Renewal::Failed, now, later), None);
        // ...but not once it may have expired on the server.
        assert!(step_down(false, Renewal::Failed, later, later).is_some());
        assert!(step_down(false, Renewal::Renewed, later, now).is_some());
        assert!(step_down(false, Renewal::Expired, now, later).is_some());
        assert!(step_down(true, Renewal::Renewed, now, later).is_some());
    }

    #[test]
    fn the_advertised_address_is_reachable() {
        let any: std::net::SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let lo: std::net::SocketAddr = "127.0.0.1:7100".parse().unwrap();
        assert_eq!(advertised(Some("c:7000"), any, Some("h")), "c:7000");
        assert_eq!(advertised(None, any, Some("coord-a\n")), "coord-a:7000");
        assert_eq!(advertised(None, any, None), "0.0.0.0:7000");
        assert_eq!(advertised(None, lo, Some("h")), "127.0.0.1:7100");
    }

    #[test]
    fn standbys_poll_a_fraction_of_the_ttl() {
        assert_eq!(
            poll_interval(Duration::from_secs(2)),
            Duration::from_millis(250)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(1)),
            Duration::from_millis(125)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(60)),
            Duration::from_millis(250)
        );
    }
}
