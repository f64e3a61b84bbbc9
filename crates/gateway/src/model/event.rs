//! What operators and other systems are told of: a message that reached a final status
//! (delivered, delivered with a warning, sent without a receipt, failed, received, rejected, a
//! duplicate, not sent) and a certificate about to expire. The workflows publish each once,
//! when the record's final status is written; the adapters count them (metrics), post them
//! (webhooks) or put them on a bus, and never hold up the AS2 exchange doing so.

use serde::{Deserialize, Serialize};

use super::{MessageRecord, Status};
use crate::layout::Direction;
use crate::time::Millis;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Names it: the same event delivered twice (a webhook retried) has the same id.
    pub id: String,
    /// What happened: a final status (`delivered`, `delivered-with-warning`, `sent`, `failed`,
    /// `received`, `rejected`, `duplicate`, `not-sent`) or `certificate-expiring`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When.
    pub at: Millis,
    /// The message, for a message's event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageFacts>,
    /// The certificate, for `certificate-expiring`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<super::Certificate>,
}

/// What an event says of a message (never its content, keys or credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFacts {
    /// The record's id.
    pub id: String,
    /// Our station.
    pub station: String,
    /// The partner.
    pub partner: String,
    /// Which way it went.
    pub direction: Direction,
    /// Its AS2 Message-ID (empty for an upload never built).
    pub message_id: String,
    /// The file's name.
    pub filename: String,
    /// The payload's size in bytes.
    pub size: u64,
    /// The final status.
    pub status: Status,
    /// Why, as the history's entry of the final status says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The receipt's disposition, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// Milliseconds from the record's first status to this one.
    pub millis: u64,
}

impl Event {
    /// The event of `record` reaching its final status; `None` while it is not final. It is
    /// the same event after notes made under that status since: told again, it has the same id.
    pub fn of_record(record: &MessageRecord) -> Option<Event> {
        if !record.status.is_final() {
            return None;
        }
        let reached = record.reached()?;
        let (first, last) = (record.started_at(), reached.at);
        Some(Event {
            id: format!("{}/{}/{}", record.id, record.status.as_str(), last.0),
            kind: record.status.as_str().to_string(),
            at: last,
            message: Some(MessageFacts {
                id: record.id.clone(),
                station: record.station.clone(),
                partner: record.partner.clone(),
                direction: record.direction,
                message_id: record.message_id.clone(),
                filename: record.filename.clone(),
                size: record.size,
                status: record.status,
                detail: reached.detail.clone(),
                disposition: record.mdn.as_ref().map(|m| m.disposition.clone()),
                millis: u64::try_from(last.0 - first.0).unwrap_or(0),
            }),
            certificate: None,
        })
    }

    /// A certificate expiring within [`as2::keys::EXPIRY_WARNING_DAYS`] (or expired).
    /// Its id names the certificate and the day, so it is told of at most once a day.
    pub fn certificate_expiring(at: Millis, cert: super::Certificate) -> Event {
        Event {
            id: format!(
                "certificate/{}/{}/{}/{}",
                cert.kind.as_str(),
                cert.owner,
                cert.alias,
                at.0.div_euclid(86_400_000)
            ),
            kind: "certificate-expiring".into(),
            at,
            message: None,
            certificate: Some(cert),
        }
    }
}
