//! The gateway's AWS adapters. Each implements a port of the domain crates over an AWS SDK client
//! and is tested against moto server (see `tests/`).

pub mod config;
pub mod doctor;
pub mod dynamo;
pub mod error;
pub mod eventbridge;
pub mod lifecycle;
pub mod ports;
pub mod profile;
pub mod s3;
pub mod secrets;
pub mod sqs;
pub mod transfer;
