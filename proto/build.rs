//! Compiles the gRPC contract in `proto/` (needs `protoc`, installed by scripts/setup.sh).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=sawmill/v1/coordinator.proto");
    tonic_prost_build::configure().compile_protos(&["sawmill/v1/coordinator.proto"], &["."])?;
    Ok(())
}
