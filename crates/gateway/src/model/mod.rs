//! Stations, partnerships, message records and jobs: the data the workflows read and write.
//! All of it serialises (serde) so any adapter can store it as it likes: configuration in
//! `partnership`, what happens to messages in `record`.

mod partnership;
mod record;

pub use partnership::*;
pub use record::*;
