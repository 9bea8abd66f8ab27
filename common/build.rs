//! Compiles the gRPC contract in `proto/` (needs `protoc`, installed by scripts/setup.sh).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto/sawmill/v1/coordinator.proto");
    tonic_prost_build::configure()
        .compile_protos(&["../proto/sawmill/v1/coordinator.proto"], &["../proto"])?;
    Ok(())
}
