//! `sawmill status`: asks a coordinator (gRPC `Status`) for the typed cluster status and prints
//! its workers and partitions (owner, epoch, committed and end offsets, lag, throughput), or the
//! status document as JSON with `--json` (the shape of `GET /api/v1/status`, docs/http-api.md).

use crate::CliError;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use sawmill_common::coordinator_client;
use sawmill_core::connection::CoordinatorAccess;
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::{ClusterStatus, StatusRequest};
use std::fmt::Display;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The coordinator's gRPC address, host:port.
    #[arg(long, env = "SAWMILL_COORDINATOR", default_value = "localhost:7000")]
    pub coordinator: String,
    /// Print the status document (JSON) instead of tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub access: CoordinatorAccess,
}

pub fn execute(args: StatusArgs) -> Result<(), CliError> {
    let status = fetch(&args.coordinator, &args.access)?;
    if args.json {
        let json = serde_json::to_string(&status)
            .map_err(|e| CliError::Coordinator(format!("cannot encode the status: {e}")))?;
        println!("{json}");
        return Ok(());
    }
    print!("{}", render(&status));
    Ok(())
}

/// The cluster status.
pub fn fetch(coordinator: &str, access: &CoordinatorAccess) -> Result<ClusterStatus, CliError> {
    let endpoint = coordinator_client::endpoint(coordinator, access)?;
    let bearer = coordinator_client::bearer(access)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Coordinator(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        let unreachable = |e: String| {
            CliError::Coordinator(format!(
                "cannot reach the coordinator at {coordinator}: {e} (is `coordinator serve` running? check --coordinator)"
            ))
        };
        let channel = endpoint
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = CoordinatorClient::new(channel)
            .status(coordinator_client::authorized(StatusRequest {}, &bearer))
            .await
            .map_err(|e| unreachable(e.message().to_string()))?;
        resp.into_inner().status.ok_or_else(|| {
            CliError::Coordinator(format!(
                "the coordinator at {coordinator} runs an earlier release that sends no typed status: upgrade it, or read GET /api/v1/status"
            ))
        })
    })
}

/// A known value, or `-` when absent.
fn text<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A duration in milliseconds, as people read it: `850 ms`, `12 s`, `3 min 5 s`.
fn age(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{} s", ms / 1_000),
        _ => format!("{} min {} s", ms / 60_000, ms / 1_000 % 60),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

fn num(value: impl Display) -> Cell {
    Cell::new(value).set_alignment(CellAlignment::Right)
}

/// Human-readable tables of a cluster status.
pub fn render(status: &ClusterStatus) -> String {
    let mut out = format!(
        "pipeline {} (topic {}), output {}, generation {}, total lag {}\n",
        status.pipeline, status.topic, status.output, status.generation, status.total_lag,
    );
    // Coordinators of earlier releases send no role: they are the only, leading one.
    let role = if status.role.is_empty() {
        "leader"
    } else {
        status.role.as_str()
    };
    out.push_str(&format!(
        "coordinator role {role}, leader {}\n",
        text(status.leader.as_ref())
    ));
    if role == "standby" {
        out.push_str("this coordinator stands by: ask the leader for workers and partitions\n");
    }
    let mut workers = table(&[
        "worker",
        "health",
        "generation",
        "last heartbeat",
        "partitions",
        "records consumed",
        "records/s",
    ]);
    for worker in &status.workers {
        let owned: Vec<String> = worker.owned.iter().map(i32::to_string).collect();
        workers.add_row(vec![
            Cell::new(&worker.id),
            Cell::new(if worker.alive { "alive" } else { "dead" }),
            num(worker.generation),
            num(format!("{} ms ago", worker.last_heartbeat_ms_ago)),
            Cell::new(owned.join(",")),
            num(worker.records_consumed),
            num(format!("{:.0}", worker.throughput)),
        ]);
    }
    out.push_str(&format!("{workers}\n"));
    let mut partitions = table(&[
        "partition",
        "owner",
        "epoch",
        "state",
        "committed",
        "end",
        "lag",
    ]);
    for partition in &status.partitions {
        let state = match &partition.moving_to {
            Some(to) => format!("{} → {to}", partition.state),
            None => partition.state.clone(),
        };
        partitions.add_row(vec![
            num(partition.partition),
            Cell::new(text(partition.owner.as_ref())),
            num(text(partition.epoch)),
            Cell::new(state),
            num(text(partition.committed_offset)),
            num(text(partition.end_offset)),
            num(text(partition.lag)),
        ]);
    }
    out.push_str(&format!("{partitions}\n"));
    for partition in &status.partitions {
        if let Some(e) = &partition.last_error {
            out.push_str(&format!(
                "partition {} FAILING for {} ({} attempts, last {} ago): {}: {}\n",
                partition.partition,
                age(e.failing_for_ms),
                e.attempts,
                age(e.last_error_ms_ago),
                e.what,
                e.message,
            ));
        }
    }
    let merged = status.merged.clone().unwrap_or_default();
    out.push_str(&format!(
        "merged: {} shards, {} records, {} rejects; summary written {} times{}\n",
        merged.shards,
        merged.records,
        merged.rejects,
        merged.summary_writes,
        match &merged.last_error {
            Some(e) => format!("; last error: {e}"),
            None => String::new(),
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sawmill_proto::v1::{MergedStatus, PartitionError, PartitionStatus, WorkerStatus};

    #[test]
    fn renders_workers_and_partitions() {
        let status = ClusterStatus {
            pipeline: "t".into(),
            topic: "t".into(),
            output: "/o".into(),
            generation: 4,
            total_lag: 5,
            workers: vec![WorkerStatus {
                id: "w1".into(),
                alive: true,
                generation: 4,
                last_heartbeat_ms_ago: 120,
                owned: vec![0, 1],
                records_consumed: 1000,
                throughput: 250.4,
                ..Default::default()
            }],
            partitions: vec![PartitionStatus {
                partition: 0,
                owner: Some("w1".into()),
                epoch: Some(2),
                state: "owned".into(),
                moving_to: None,
                committed_offset: Some(10),
                end_offset: Some(15),
                lag: Some(5),
                last_error: None,
            }],
            merged: Some(MergedStatus {
                shards: 3,
                records: 9,
                rejects: 1,
                summary_writes: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = render(&status);
        for want in [
            "w1",
            "alive",
            "0,1",
            "250",
            "owned",
            "15",
            "merged: 3 shards",
        ] {
            assert!(s.contains(want), "{want} missing from\n{s}");
        }
    }

    #[test]
    fn a_failing_partition_is_printed_with_its_error_and_age() {
        let status = ClusterStatus {
            partitions: vec![PartitionStatus {
                partition: 3,
                state: "owned".into(),
                last_error: Some(PartitionError {
                    what: "stage shard".into(),
                    message: "Permission denied".into(),
                    attempts: 7,
                    failing_for_ms: 65_000,
                    last_error_ms_ago: 400,
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = render(&status);
        assert!(
            s.contains("partition 3 FAILING for 1 min 5 s (7 attempts, last 400 ms ago): stage shard: Permission denied"),
            "{s}"
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["partitions"][0]["last_error"]["attempts"], 7);
    }

    #[test]
    fn a_standby_names_its_leader() {
        let status = ClusterStatus {
            role: "standby".into(),
            leader: Some("10.0.0.2:7000".into()),
            ..Default::default()
        };
        let s = render(&status);
        assert!(
            s.contains("coordinator role standby, leader 10.0.0.2:7000"),
            "{s}"
        );
        assert!(s.contains("ask the leader"), "{s}");
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["role"], "standby");
        assert_eq!(json["leader"], "10.0.0.2:7000");
        // An earlier coordinator sends no role: it leads.
        assert!(render(&ClusterStatus::default()).contains("coordinator role leader, leader -"));
    }

    #[test]
    fn json_has_the_http_api_shape() {
        let status = ClusterStatus {
            partitions: vec![PartitionStatus {
                partition: 2,
                state: "unassigned".into(),
                ..Default::default()
            }],
            merged: Some(MergedStatus {
                next_offsets: [(0, 7)].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["partitions"][0]["owner"], serde_json::Value::Null);
        assert_eq!(
            json["partitions"][0]["committed_offset"],
            serde_json::Value::Null
        );
        assert_eq!(json["merged"]["next_offsets"]["0"], 7);
        assert_eq!(json["merged"]["last_error"], serde_json::Value::Null);
    }
}
