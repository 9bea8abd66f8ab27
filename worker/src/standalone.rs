//! `worker run`: a worker driven directly with the partitions it should own, without a
//! coordinator. It takes ownership by bumping each partition's epoch (fencing any earlier
//! owner), then streams until stopped — or, with `until_caught_up`, until it has committed
//! everything that was in the partitions when it started.

use crate::context::WorkerContext;
use crate::error::{Result, WorkerError};
use crate::messages::{SupervisorMsg, WorkerEvent};
use crate::supervisor::{SupervisorArgs, WorkerSupervisor};
use ractor::Actor;
use sawmill_common::process::shutdown_signal;
use sawmill_core::settings::PipelineSettings;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct StandaloneOptions {
    pub worker_id: String,
    /// Partitions to own; empty = all partitions of the topic.
    pub partitions: Vec<i32>,
    /// Exit once every owned partition's committed offset reaches its end offset at start.
    pub until_caught_up: bool,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Default)]
pub struct StandaloneReport {
    pub shards: u64,
    pub records: u64,
    pub rejects: u64,
    /// Committed files found lost at a partition's start and re-derived from Kafka.
    pub files_rederived: u64,
    pub next_offsets: BTreeMap<i32, i64>,
    pub elapsed: Duration,
}

pub async fn run(settings: PipelineSettings, opts: StandaloneOptions) -> Result<StandaloneReport> {
    let started = Instant::now();
    let ctx = WorkerContext::connect(opts.worker_id.clone(), settings).await?;
    let metrics_server = match &opts.metrics_listen {
        Some(addr) => Some(crate::metrics_server::serve_metrics(addr, ctx.clone()).await?),
        None => None,
    };
    let all = ctx.partitions().await?;
    let partitions = if opts.partitions.is_empty() {
        all.clone()
    } else {
        opts.partitions.clone()
    };
    if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
        return Err(WorkerError::Config(format!(
            "partition {p} does not exist in topic {:?} (it has {})",
            ctx.settings.topic,
            all.len()
        )));
    }
    let mut targets = BTreeMap::new();
    if opts.until_caught_up {
        for &p in &partitions {
            targets.insert(p, ctx.watermarks(p).await?.1);
        }
    }
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (supervisor, supervisor_handle) = Actor::spawn(
        None,
        WorkerSupervisor,
        SupervisorArgs {
            ctx: ctx.clone(),
            events: events_tx,
        },
    )
    .await
    .map_err(|e| WorkerError::Actor(e.to_string()))?;
    let mut checkpoints = ctx.checkpoints.clone();
    let mut report = StandaloneReport::default();
    let mut epochs = BTreeMap::new();
    for &p in &partitions {
        let epoch = checkpoints.bump_epoch(p, &opts.worker_id).await?;
        epochs.insert(p, epoch);
        tracing::info!(partition = p, epoch, worker = %opts.worker_id, "took ownership");
        let _ = supervisor.cast(SupervisorMsg::Own {
            partition: p,
            epoch,
            cut_at: targets.get(&p).copied(),
        });
        let next = checkpoints.state(p).await?.next_offset.unwrap_or(0);
        report.next_offsets.insert(p, next);
    }
    let caught_up = |targets: &BTreeMap<i32, i64>, next: &BTreeMap<i32, i64>| -> bool {
        opts.until_caught_up
            && targets
                .iter()
                .all(|(p, end)| next.get(p).is_some_and(|n| n >= end))
    };
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut check = tokio::time::interval(Duration::from_secs(1));
    while !caught_up(&targets, &report.next_offsets) {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down: committing open shards");
                break;
            }
            ev = events.recv() => match ev {
                Some(WorkerEvent::Committed(m)) => {
                    report.shards += 1;
                    report.records += m.records;
                    report.rejects += m.rejects;
                    report.next_offsets.insert(m.partition, m.next_offset());
                }
                Some(WorkerEvent::Lost { partition, epoch }) => {
                    tracing::warn!(partition, epoch, "lost partition to a newer owner");
                    targets.remove(&partition);
                }
                None => break,
            },
            _ = check.tick() => {
                // An idle partition may already be at its end (nothing to commit): read etcd.
                if opts.until_caught_up {
                    for (p, n) in report.next_offsets.iter_mut() {
                        if let Ok(state) = checkpoints.state(*p).await {
                            *n = state.next_offset.unwrap_or(*n).max(*n);
                        }
                    }
                }
            }
        }
    }
    let released = ractor::call_t!(supervisor, SupervisorMsg::ReleaseAll, 120_000)
        .map_err(|e| WorkerError::Actor(e.to_string()))?;
    report.next_offsets.extend(released);
    ctx.consumer.stop();
    supervisor.stop(None);
    let _ = supervisor_handle.await;
    if let Some(server) = metrics_server {
        server.abort();
    }
    // The totals from etcd: a commit that finished after its pipeline had failed sent no event.
    match committed_by(&mut checkpoints, &epochs).await {
        Ok((shards, records, rejects)) => {
            report.shards = shards;
            report.records = records;
            report.rejects = rejects;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read back this run's manifests; the totals count events only")
        }
    }
    report.files_rederived = ctx.metrics.files_rederived();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Shards, records and rejects committed at these (partition, epoch) pairs: this run's own.
async fn committed_by(
    checkpoints: &mut sawmill_common::etcd::Checkpoints,
    epochs: &BTreeMap<i32, u64>,
) -> Result<(u64, u64, u64)> {
    let mut totals = (0, 0, 0);
    for (&p, &epoch) in epochs {
        for m in checkpoints
            .manifests(Some(p))
            .await?
            .iter()
            .filter(|m| m.epoch == epoch)
        {
            totals.0 += 1;
            totals.1 += m.records;
            totals.2 += m.rejects;
        }
    }
    Ok(totals)
}
