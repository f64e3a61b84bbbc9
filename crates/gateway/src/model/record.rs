//! What the workflows write as they go: message records with their status history, the
//! receipts' summaries, and the jobs queued.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::layout::{Direction, MessagePaths, SendKey};
use crate::time::Millis;

/// A message's state. Every change is kept in the record's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Accepted for sending, waiting for an attempt.
    Queued,
    /// An attempt is under way.
    Sending,
    /// Sent; no receipt was asked for.
    Sent,
    /// Sent; waiting for an asynchronous receipt.
    AwaitingMdn,
    /// The partner's receipt says processed and its MIC matches.
    Delivered,
    /// The partner's receipt says processed with a warning.
    DeliveredWithWarning,
    /// Given up, or refused by the partner; the reason is in the history.
    Failed,
    /// Received from a partner; being opened and stored (a lease says until when).
    Receiving,
    /// Received from a partner and delivered to the inbox.
    Received,
    /// Received but refused (the receipt says why); the raw message is kept.
    Rejected,
    /// An upload with a name already sent within the window; moved to `AS2/duplicate`.
    Duplicate,
    /// An upload that cannot be sent (unknown partnership); the file stays where it is.
    NotSent,
}

impl Status {
    /// True when nothing more will happen to the message by itself.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Status::Queued | Status::Sending | Status::AwaitingMdn | Status::Receiving
        )
    }

    /// Whether a record in this status may move to `next`: what has happened never un-happens
    /// (a receipt that came in before the attempt that sent the message finished recording its
    /// HTTP answer keeps the message delivered). The same status again is a note in the history.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        self == next
            || match self {
                // A receipt for an earlier attempt may come while the next one waits.
                Queued => matches!(
                    next,
                    Sending | Failed | NotSent | Delivered | DeliveredWithWarning
                ),
                Sending => matches!(
                    next,
                    Queued | Sent | AwaitingMdn | Delivered | DeliveredWithWarning | Failed
                ),
                AwaitingMdn => matches!(next, Delivered | DeliveredWithWarning | Failed),
                // A receipt that comes after the deadline still counts.
                Failed => matches!(next, Delivered | DeliveredWithWarning),
                Receiving => matches!(next, Received | Rejected),
                Sent | Delivered | DeliveredWithWarning | Received | Rejected | Duplicate
                | NotSent => false,
            }
    }

    /// Every status, in the order a message meets them.
    pub const ALL: [Status; 12] = [
        Status::Queued,
        Status::Sending,
        Status::Sent,
        Status::AwaitingMdn,
        Status::Delivered,
        Status::DeliveredWithWarning,
        Status::Failed,
        Status::Receiving,
        Status::Received,
        Status::Rejected,
        Status::Duplicate,
        Status::NotSent,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::AwaitingMdn => "awaiting-mdn",
            Status::Delivered => "delivered",
            Status::DeliveredWithWarning => "delivered-with-warning",
            Status::Failed => "failed",
            Status::Receiving => "receiving",
            Status::Received => "received",
            Status::Rejected => "rejected",
            Status::Duplicate => "duplicate",
            Status::NotSent => "not-sent",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    /// A status by its kebab-case name; the error lists the names.
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Status::ALL.iter().map(|st| st.as_str()).collect();
                format!("unknown status {s:?} (one of {})", names.join(", "))
            })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a record's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// When the status changed.
    pub at: Millis,
    /// The new status.
    pub status: Status,
    /// Why, when there is something to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl StatusChange {
    /// A status at a time, with an optional reason.
    pub fn new(at: Millis, status: Status, detail: Option<String>) -> Self {
        StatusChange { at, status, detail }
    }
}

/// What a receipt said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdnSummary {
    /// The disposition, as in the receipt (`processed`, `processed/error: decryption-failed`).
    pub disposition: String,
    /// Whether the receipt was signed (and verified).
    pub signed: bool,
    /// What became of the MIC.
    pub mic: MdnMic,
    /// Where the raw receipt is stored.
    pub key: String,
}

/// What became of the MIC a receipt returns (stored as its lowercase name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MdnMic {
    /// Of a message we sent: the partner's receipt returned the MIC we computed.
    Matches,
    /// Of a message we sent: it returned another (the content was altered in transit).
    Mismatch,
    /// Of a message we sent: it returned none.
    Missing,
    /// Of a message we received: our receipt returned the MIC of what we received.
    Sent,
    /// Of a message we received: our receipt returned none.
    #[serde(rename = "none")]
    NotSent,
}

impl MdnMic {
    /// The check of a partner's receipt against the MIC we sent.
    pub fn of(check: &as2::mdn::MicCheck) -> MdnMic {
        match check {
            as2::mdn::MicCheck::Match => MdnMic::Matches,
            as2::mdn::MicCheck::Mismatch { .. } => MdnMic::Mismatch,
            as2::mdn::MicCheck::Missing => MdnMic::Missing,
        }
    }

    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            MdnMic::Matches => "matches",
            MdnMic::Mismatch => "mismatch",
            MdnMic::Missing => "missing",
            MdnMic::Sent => "sent",
            MdnMic::NotSent => "none",
        }
    }
}

impl std::fmt::Display for MdnMic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for MdnMic {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One of the files a message record points at, as an operator downloads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The file sent or received.
    Payload,
    /// The AS2 message as it went over the wire.
    Raw,
    /// Its HTTP headers.
    Headers,
    /// The receipt (headers, blank line, body).
    Receipt,
}

impl Part {
    /// Every part.
    pub const ALL: [Part; 4] = [Part::Payload, Part::Raw, Part::Headers, Part::Receipt];

    /// Its name: `payload`, `raw`, `headers`, `receipt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Payload => "payload",
            Part::Raw => "raw",
            Part::Headers => "headers",
            Part::Receipt => "receipt",
        }
    }

    /// What it is called in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Part::Payload => "payload",
            Part::Raw => "raw message",
            Part::Headers => "headers",
            Part::Receipt => "receipt",
        }
    }
}

impl std::str::FromStr for Part {
    type Err = String;

    /// A part by its name; the error lists the names.
    fn from_str(s: &str) -> Result<Self, String> {
        Part::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Part::ALL.iter().map(|p| p.as_str()).collect();
                format!("unknown part {s:?} (one of {})", names.join(", "))
            })
    }
}

/// The log entry for one message, sent or received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The message's folder name: unique, sortable by time.
    pub id: String,
    /// Which way it went.
    pub direction: Direction,
    /// Our station's AS2 ID.
    pub station: String,
    /// The partner's AS2 ID.
    pub partner: String,
    /// The AS2 Message-ID (empty until the first build of an outbound message).
    pub message_id: String,
    /// The file name.
    pub filename: String,
    /// Payload size in bytes.
    pub size: u64,
    /// Where the message is now (the last entry of `history`).
    pub status: Status,
    /// Every status, oldest first.
    pub history: Vec<StatusChange>,
    /// The MIC the receipt must echo (outbound) or that we echoed (inbound), `<b64>, <alg>`.
    #[serde(default)]
    pub mic: Option<String>,
    /// The same MIC under other algorithms the receipt may use.
    #[serde(default)]
    pub alternative_mics: Vec<String>,
    /// The receipt, once there is one: the partner's for what we sent, ours for what we received.
    #[serde(default)]
    pub mdn: Option<MdnSummary>,
    /// Where the payload is.
    #[serde(default)]
    pub payload_key: Option<String>,
    /// Where the raw message is.
    #[serde(default)]
    pub raw_key: Option<String>,
    /// Where its HTTP headers are.
    #[serde(default)]
    pub headers_key: Option<String>,
    /// Attempts made so far (outbound), across resends.
    #[serde(default)]
    pub attempts: u32,
    /// How many of `attempts` came before the last resend: the retry policy counts the rest.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resent_after: u32,
    /// Where the MDN must be POSTed (inbound, async).
    #[serde(default)]
    pub async_mdn_url: Option<String>,
    /// Until when the attempt receiving the message has it (inbound, `receiving`): a copy of
    /// the message that comes after takes over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Millis>,
    /// The event of the final status last told of ([`crate::events::Event::of_record`]'s id):
    /// a job or request that finds the record final and this not its event's id tells of it,
    /// as the run that wrote the status died (or failed) before telling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told: Option<String>,
    /// Bumped on every write; a write with a stale revision is refused (optimistic locking).
    #[serde(default)]
    pub revision: u64,
}

impl MessageRecord {
    /// When its history starts (the upload, or the message's arrival).
    pub fn started_at(&self) -> Millis {
        self.history.first().map_or(Millis(0), |h| h.at)
    }

    /// When its status last changed.
    pub fn changed_at(&self) -> Millis {
        self.history.last().map_or(self.started_at(), |h| h.at)
    }

    /// The entry of its history where the record took its current status: the notes made under
    /// that status since (a receipt again, ours posted) come after it.
    pub fn reached(&self) -> Option<&StatusChange> {
        let notes = self
            .history
            .iter()
            .rev()
            .take_while(|h| h.status == self.status)
            .count();
        self.history
            .len()
            .checked_sub(notes.max(1))
            .and_then(|i| self.history.get(i))
    }

    /// The parts the message has, in [`Part::ALL`]'s order.
    pub fn parts(&self) -> impl Iterator<Item = Part> + '_ {
        Part::ALL
            .into_iter()
            .filter(|p| self.part_key(*p).is_some())
    }

    /// Where `part` is stored, if the message has it.
    pub fn part_key(&self, part: Part) -> Option<&str> {
        match part {
            Part::Payload => self.payload_key.as_deref(),
            Part::Raw => self.raw_key.as_deref(),
            Part::Headers => self.headers_key.as_deref(),
            Part::Receipt => self.mdn.as_ref().map(|m| m.key.as_str()),
        }
    }

    /// A new record whose history starts with `first`.
    /// The record of an upload to send: `send`'s file from its station to its partner, `size`
    /// bytes, first at `first`.
    pub fn upload(id: &str, send: &SendKey, size: u64, first: StatusChange) -> Self {
        let mut record = MessageRecord::new(
            id,
            Direction::Outbox,
            &send.station,
            &send.partner,
            &send.name,
            first,
        );
        record.size = size;
        record
    }

    /// What an update writes: this record with its revision bumped, to be stored only where the
    /// stored revision is still this one's (see [`crate::ports::apply_update`]).
    pub fn next_revision(&self) -> MessageRecord {
        let mut next = self.clone();
        next.revision += 1;
        next
    }

    /// Where this message's files are kept.
    pub fn paths(&self) -> crate::Result<MessagePaths> {
        MessagePaths::new(&self.station, &self.partner, self.direction, &self.id)
    }

    /// A new record.
    pub fn new(
        id: &str,
        direction: Direction,
        station: &str,
        partner: &str,
        filename: &str,
        first: StatusChange,
    ) -> Self {
        MessageRecord {
            id: id.into(),
            direction,
            station: station.into(),
            partner: partner.into(),
            message_id: String::new(),
            filename: filename.into(),
            size: 0,
            status: first.status,
            history: vec![first],
            mic: None,
            alternative_mics: Vec::new(),
            mdn: None,
            payload_key: None,
            raw_key: None,
            headers_key: None,
            attempts: 0,
            resent_after: 0,
            async_mdn_url: None,
            lease_until: None,
            told: None,
            revision: 0,
        }
    }

    /// Moves to `status`, keeping the change in the history.
    pub fn set_status(&mut self, status: Status, at: Millis, detail: Option<String>) {
        self.status = status;
        self.history.push(StatusChange { at, status, detail });
    }

    /// The latest history entry's detail, if any.
    pub fn last_detail(&self) -> Option<&str> {
        self.history.last().and_then(|h| h.detail.as_deref())
    }
}

/// Work for the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Job {
    /// Make the next attempt to send an outbound message.
    Send {
        /// The record id.
        id: String,
    },
    /// POST a receipt we built to the URL the sender asked for.
    SendMdn {
        /// The inbound record id.
        id: String,
        /// Attempts made so far.
        attempt: u32,
    },
    /// Mark a message overdue if its asynchronous receipt has not come.
    MdnDeadline {
        /// The attempt whose receipt is awaited (0: any; jobs queued before attempts were
        /// named).
        #[serde(default)]
        attempt: u32,
        /// The record id.
        id: String,
    },
    /// POST an event to a webhook.
    Notify {
        /// The webhook's name.
        webhook: String,
        /// Attempts made so far.
        attempt: u32,
        /// The event.
        event: Box<super::Event>,
    },
}

impl Job {
    /// The record the job is about (empty for an event about no message).
    pub fn record_id(&self) -> &str {
        match self {
            Job::Send { id } | Job::SendMdn { id, .. } | Job::MdnDeadline { id, .. } => id,
            Job::Notify { event, .. } => event.message.as_ref().map_or("", |m| m.id.as_str()),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_never_go_back() {
        use Status::*;
        assert!(Sending.can_become(AwaitingMdn));
        assert!(AwaitingMdn.can_become(Delivered));
        assert!(!Delivered.can_become(AwaitingMdn), "the fast receipt race");
        assert!(!Delivered.can_become(Failed));
        assert!(Failed.can_become(Delivered), "a late receipt counts");
        assert!(!Failed.can_become(Queued));
        assert!(Received.can_become(Received), "notes");
        assert!(!Received.can_become(Rejected));
    }

    #[test]
    fn the_final_status_is_one_event_whatever_notes_come_after_it() {
        use crate::events::Event;
        use Status::*;
        let change = |at: i64, status, detail: &str| {
            StatusChange::new(Millis(at), status, Some(detail.into()))
        };
        let mut r = MessageRecord::new(
            "m1",
            Direction::Outbox,
            "A",
            "B",
            "f",
            change(1, Queued, "up"),
        );
        assert_eq!(r.reached().map(|h| h.at), Some(Millis(1)));
        assert!(Event::of_record(&r).is_none());
        r.set_status(Failed, Millis(5), Some("overdue".into()));
        let failed = Event::of_record(&r).unwrap();
        r.set_status(Failed, Millis(9), Some("a note".into()));
        assert_eq!(Event::of_record(&r).unwrap(), failed);
        assert_eq!(
            failed.message.as_ref().unwrap().detail.as_deref(),
            Some("overdue")
        );
        assert_eq!(failed.message.as_ref().unwrap().millis, 4);
        // A late receipt: another final status, another event.
        r.set_status(Delivered, Millis(12), Some("processed".into()));
        r.set_status(Delivered, Millis(20), Some("receipt again".into()));
        let delivered = Event::of_record(&r).unwrap();
        assert_eq!(delivered.id, "m1/delivered/12");
        assert_eq!(delivered.at, Millis(12));
    }
}
