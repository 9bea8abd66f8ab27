//! `sawmill status`: asks a coordinator (gRPC `Status`) for the cluster document and prints its
//! workers and partitions (owner, epoch, committed and end offsets, lag, throughput), or the raw
//! JSON with `--json`. The document's fields are described in docs/http-api.md.

use crate::CliError;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use sawmill_proto::v1::coordinator_client::CoordinatorClient;
use sawmill_proto::v1::StatusRequest;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The coordinator's gRPC address, host:port.
    #[arg(long, env = "SAWMILL_COORDINATOR", default_value = "localhost:7000")]
    pub coordinator: String,
    /// Print the raw status document (JSON) instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: StatusArgs) -> Result<(), CliError> {
    let json = fetch(&args.coordinator)?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    let doc: Value = serde_json::from_str(&json).map_err(|e| {
        CliError::Coordinator(format!(
            "the coordinator sent a status this version cannot read ({e}): use --json"
        ))
    })?;
    print!("{}", render(&doc));
    Ok(())
}

/// The status document as JSON text.
pub fn fetch(coordinator: &str) -> Result<String, CliError> {
    let uri = if coordinator.contains("://") {
        coordinator.to_string()
    } else {
        format!("http://{coordinator}")
    };
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
        let channel = tonic::transport::Endpoint::from_shared(uri)
            .map_err(|e| CliError::Coordinator(format!("bad address {coordinator:?}: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = CoordinatorClient::new(channel)
            .status(StatusRequest {})
            .await
            .map_err(|e| unreachable(e.message().to_string()))?;
        Ok(resp.into_inner().json)
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

fn num(v: &Value) -> Cell {
    Cell::new(text(v)).set_alignment(CellAlignment::Right)
}

/// Human-readable tables of a status document.
pub fn render(doc: &Value) -> String {
    let mut out = format!(
        "pipeline {} (topic {}), output {}, generation {}, total lag {}\n",
        text(&doc["pipeline"]),
        text(&doc["topic"]),
        text(&doc["output"]),
        text(&doc["generation"]),
        text(&doc["total_lag"]),
    );
    let mut w = table(&[
        "worker",
        "health",
        "generation",
        "last heartbeat",
        "partitions",
        "records consumed",
        "records/s",
    ]);
    let empty = Vec::new();
    for x in doc["workers"].as_array().unwrap_or(&empty) {
        let health = if x["alive"].as_bool().unwrap_or(false) {
            "alive"
        } else {
            "dead"
        };
        w.add_row(vec![
            Cell::new(text(&x["id"])),
            Cell::new(health),
            num(&x["generation"]),
            num(&Value::String(format!(
                "{} ms ago",
                text(&x["last_heartbeat_ms_ago"])
            ))),
            Cell::new(text(&x["owned"])),
            num(&x["records_consumed"]),
            num(&Value::String(format!(
                "{:.0}",
                x["throughput"].as_f64().unwrap_or(0.0)
            ))),
        ]);
    }
    out.push_str(&format!("{w}\n"));
    let mut p = table(&[
        "partition",
        "owner",
        "epoch",
        "state",
        "committed",
        "end",
        "lag",
    ]);
    for x in doc["partitions"].as_array().unwrap_or(&empty) {
        let mut state = text(&x["state"]);
        if let Some(to) = x["moving_to"].as_str() {
            state = format!("{state} → {to}");
        }
        p.add_row(vec![
            num(&x["partition"]),
            Cell::new(text(&x["owner"])),
            num(&x["epoch"]),
            Cell::new(state),
            num(&x["committed_offset"]),
            num(&x["end_offset"]),
            num(&x["lag"]),
        ]);
    }
    out.push_str(&format!("{p}\n"));
    let m = &doc["merged"];
    out.push_str(&format!(
        "merged: {} shards, {} records, {} rejects; summary written {} times{}\n",
        text(&m["shards"]),
        text(&m["records"]),
        text(&m["rejects"]),
        text(&m["summary_writes"]),
        match m["last_error"].as_str() {
            Some(e) => format!("; last error: {e}"),
            None => String::new(),
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_workers_and_partitions() {
        let doc = serde_json::json!({
            "pipeline": "t", "topic": "t", "output": "/o", "generation": 4, "total_lag": 5,
            "workers": [{"id": "w1", "alive": true, "generation": 4, "last_heartbeat_ms_ago": 120,
                         "owned": [0, 1], "records_consumed": 1000, "throughput": 250.4}],
            "partitions": [{"partition": 0, "owner": "w1", "epoch": 2, "state": "owned",
                            "moving_to": null, "committed_offset": 10, "end_offset": 15, "lag": 5}],
            "merged": {"shards": 3, "records": 9, "rejects": 1, "summary_writes": 2, "last_error": null}
        });
        let s = render(&doc);
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
}
