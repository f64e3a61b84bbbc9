//! The AS2 gateway's business rules, written once over ports (see `ports`): the storage layout
//! of the seed, the send trigger and its 6-hour duplicate window, sending with retries and
//! receipts, receiving with receipts and duplicate Message-ID handling. No AWS SDK, no HTTP
//! framework, no filesystem: adapters bring those.

pub mod check;
mod error;
pub mod events;
pub mod failpoint;
mod gateway;
pub mod keystore;
pub mod layout;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod model;
mod notify;
mod operate;
pub mod ports;
pub mod receipt;
mod receive;
mod resend;
mod send;
mod time;
mod upload;

pub use error::{GatewayError, Result};
pub use gateway::{
    Gateway, Settings, DEFAULT_DUPLICATE_WINDOW, DEFAULT_MAX_DECOMPRESSED_BYTES,
    DEFAULT_STREAM_ABOVE,
};
pub use ports::HttpResponse;
pub use ports::UploadRef;
pub use receive::Peer;
pub use resend::Resent;
pub use send::SendOutcome;
pub use time::Millis;
pub use upload::{Origin, UploadOutcome};
