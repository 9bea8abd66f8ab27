//! `sawmill produce --reset` and the pipelines reading the topic: a pipeline keeps each
//! partition's next offset (and epochs, manifests) in etcd, so deleting and recreating its topic
//! under it would leave offsets pointing past the new topic's end — the pipeline would skip the
//! new lines or refuse them. A reset is refused while such state exists, unless
//! `--reset-pipeline-state` asks to delete that state too.

use super::ProduceArgs;
use crate::CliError;
use sawmill_common::etcd::Checkpoints;
use sawmill_core::settings::ConfigFile;

/// Where etcd is looked for when neither `--etcd` nor `SAWMILL_ETCD` says.
const DEFAULT_ETCD: &str = "http://localhost:2379";

/// Before a `--reset`: refuses if the pipeline (by default named after the topic) has state in
/// etcd, or deletes that state with `--reset-pipeline-state`. `notice` prints a line.
pub(super) fn check_before_reset(
    cfg: &ProduceArgs,
    notice: impl Fn(String),
) -> Result<(), CliError> {
    if !cfg.reset {
        return Ok(());
    }
    let pipeline = cfg.pipeline.as_deref().unwrap_or(&cfg.topic);
    let endpoints = cfg.etcd.as_deref().unwrap_or(DEFAULT_ETCD);
    let io = crate::io_runtime()?;
    let auth = ConfigFile::default()
        .connection(&cfg.connection)?
        .etcd_auth()?;
    let mut checkpoints = match io.block_on(Checkpoints::connect_with(endpoints, pipeline, &auth)) {
        Ok(c) => c,
        // Nobody said where etcd is and there is none at the default: no pipeline to protect
        // that this command could know of.
        Err(e) if cfg.etcd.is_none() => {
            notice(format!(
                "no etcd at {endpoints} ({e}): not checking for pipeline state (pass --etcd to check)"
            ));
            return Ok(());
        }
        Err(e) => {
            return Err(CliError::Refused(format!(
                "cannot check etcd at {endpoints} for pipeline {pipeline}'s state before resetting topic {}: {e} (start etcd, or fix --etcd)",
                cfg.topic
            )))
        }
    };
    let partitions = io.block_on(checkpoints.partitions())?;
    if partitions.is_empty() {
        return Ok(());
    }
    if cfg.reset_pipeline_state {
        io.block_on(checkpoints.delete_all())?;
        notice(format!(
            "deleted pipeline {pipeline}'s state in etcd ({} partitions: offsets, epochs, manifests); its output root still holds the old shards",
            partitions.len()
        ));
        return Ok(());
    }
    let offsets: Vec<String> = partitions
        .iter()
        .filter_map(|(p, s)| s.next_offset.map(|n| format!("{p}:{n}")))
        .collect();
    Err(CliError::Refused(format!(
        "refusing to reset topic {}: pipeline {pipeline} has state for it in etcd at {endpoints} \
         ({} partitions, next offsets {}), which would point past the new topic's end. Stop that \
         pipeline's coordinator and workers, then re-run with --reset-pipeline-state to delete \
         its etcd state too (and clear its output root), or produce into a new topic",
        cfg.topic,
        partitions.len(),
        if offsets.is_empty() {
            "none yet".to_string()
        } else {
            offsets.join(", ")
        },
    )))
}
