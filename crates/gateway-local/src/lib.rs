//! The embedded single-machine gateway: the gateway domain over a data directory laid out like
//! the bucket, SQLite for the duplicate index, message log and job queue, an HTTP endpoint for AS2
//! messages and asynchronous receipts, an HTTP(S) client, and a watcher that treats files dropped
//! in `AS2/send/<station>/<partner>/` as uploads.

mod blocking;
pub mod config;
pub mod db;
pub mod http;
pub mod https;
pub mod metrics;
pub mod node;
pub mod store;
pub mod transport;

pub use config::{Config, ConfigDirectory, HttpsConfig};
pub use db::Db;
pub use node::{local_ports, Check, LocalPorts, Node, Shutdown, SystemClock, Verdict};
pub use store::DirStore;
pub use transport::{EnvSecrets, HttpTransport};
