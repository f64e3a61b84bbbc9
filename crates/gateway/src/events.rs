//! What operators and other systems are told of: a message that reached a final status
//! (delivered, delivered with a warning, sent without a receipt, failed, received, rejected, a
//! duplicate, not sent) and a certificate about to expire. The workflows publish each once,
//! when the record's final status is written; the adapters count them (metrics), post them
//! (webhooks) or put them on a bus, and never hold up the AS2 exchange doing so.
//!
//! The types are part of the model ([`crate::model`]), since jobs carry them.

pub use crate::model::{Event, MessageFacts};
