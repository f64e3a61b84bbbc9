//! Stations, partnerships, message records and jobs: the data the workflows read and write.
//! All of it serialises (serde) so any adapter can store it as it likes: configuration in
//! `partnership`, what happens to messages in `record`.

mod certificate;
mod event;
mod partnership;
mod record;
mod webhook;

pub use certificate::*;
pub use event::*;
pub use partnership::*;
pub use record::*;
pub use webhook::*;
