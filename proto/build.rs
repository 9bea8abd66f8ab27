//! Compiles the gRPC contract in `proto/` (needs `protoc`, installed by scripts/setup.sh).

/// The status document's messages, which also serialize to the JSON of `GET /api/v1/status`.
const STATUS_MESSAGES: [&str; 5] = [
    ".sawmill.v1.ClusterStatus",
    ".sawmill.v1.WorkerStatus",
    ".sawmill.v1.PartitionStatus",
    ".sawmill.v1.MergedStatus",
    ".sawmill.v1.PartitionError",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=sawmill/v1/coordinator.proto");
    let mut config = tonic_prost_build::configure()
        // Ordered, so the JSON's `next_offsets` lists partitions in order.
        .btree_map(".sawmill.v1.MergedStatus.next_offsets");
    for message in STATUS_MESSAGES {
        config = config.message_attribute(message, "#[derive(serde::Serialize)]");
    }
    config.compile_protos(&["sawmill/v1/coordinator.proto"], &["."])?;
    Ok(())
}
