//! Resending: an operator's new attempt at an outbound message that ended (failed, sent, or
//! delivered and wanted again). By default the message goes again with its Message-ID, so a
//! partner that already has it recognises it and answers with its first receipt instead of
//! delivering it twice; `as_new` sends it as a new message with a new Message-ID. Either way the
//! record's history keeps what happened before, and the retry policy starts over.

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
use crate::layout::Direction;
use crate::model::{Job, Status};
use crate::ports::{Clock, JobQueue, MessageLog, ObjectStore, Ports};

/// What a resend did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resent {
    /// The record, queued again.
    pub id: String,
    /// The Message-ID it goes with; `None` when a new one is made as it is built.
    pub message_id: Option<String>,
}

impl<P: Ports> Gateway<P> {
    /// Queues the record `name` names (its id, or its Message-ID: [`Gateway::find_record`]) to
    /// be sent again. Refused ([`GatewayError::Refused`]) for a message we
    /// received, one still queued, being sent or awaiting its receipt, one never accepted for
    /// sending, and one whose payload is gone; nothing is changed then.
    pub async fn resend(&self, name: &str, as_new: bool) -> Result<Resent> {
        let log = self.ports.log();
        let mut record = self.find_record(name).await?;
        let id = record.id.clone();
        let id = id.as_str();
        let refuse = |why: String| Err(GatewayError::Refused(format!("message {id}: {why}")));
        if record.direction == Direction::Inbox {
            return refuse("it was received, not sent; only the partner can send it again".into());
        }
        if !record.status.is_final() {
            return refuse(format!("it is still {}", record.status));
        }
        if record.status == Status::NotSent {
            return refuse(
                "it was never accepted for sending; rename the upload to send it".into(),
            );
        }
        let payload = record.payload_key.clone().unwrap_or_default();
        if payload.is_empty() || self.ports.store().head(&payload).await?.is_none() {
            return refuse(format!("its payload {payload} is gone"));
        }
        let now = self.ports.clock().now();
        let before = record.message_id.clone();
        let detail = match (as_new, before.is_empty()) {
            (true, false) => format!("resent as a new message (it was {before})"),
            (false, false) => format!("resent with the same Message-ID {before}"),
            (_, true) => "resent".to_string(),
        };
        if as_new {
            record.message_id.clear();
        }
        record.mic = None;
        record.alternative_mics.clear();
        record.mdn = None;
        record.resent_after = record.attempts;
        record.set_status(Status::Queued, now, Some(detail));
        log.update(&mut record).await?;
        self.ports
            .queue()
            .enqueue(Job::Send { id: id.to_string() }, now)
            .await?;
        tracing::info!(id, message_id = %record.message_id, as_new, "resend queued");
        Ok(Resent {
            id: id.to_string(),
            message_id: (!record.message_id.is_empty()).then(|| record.message_id.clone()),
        })
    }
}
