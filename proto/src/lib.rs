//! The coordinator ↔ worker gRPC contract, generated from `sawmill/v1/coordinator.proto` in this
//! crate (`proto/` at the workspace root).
//! Field contracts are documented in the `.proto` file. The status messages (`ClusterStatus` and
//! its parts) also derive `serde::Serialize` into the JSON of `GET /api/v1/status`.

#![allow(clippy::all, missing_docs)]

pub mod v1 {
    tonic::include_proto!("sawmill.v1");
}
