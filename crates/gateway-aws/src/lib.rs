//! The gateway's AWS adapters. Each implements a port of the domain crates over an AWS SDK client
//! and is tested against moto server (see `tests/`).

pub mod config;
pub mod dynamo;
pub mod s3;
pub mod transfer;
