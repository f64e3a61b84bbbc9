//! The send trigger: a file appeared in the bucket. Only files uploaded directly to
//! `AS2/send/<station>/<partner>/` are sent; same-name uploads within the window are moved to
//! `AS2/duplicate/`; nothing is ever deleted before it has been copied somewhere.

use std::fmt;

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
use crate::layout::{self, Direction, MessagePaths, NotASend, SendKey};
use crate::model::{Job, MessageRecord, Status, StatusChange};
use crate::ports::{
    Claim, ClaimRequest, Clock, Created, DuplicateIndex, JobQueue, MessageLog, ObjectStore,
    PartnerDirectory, Ports, UploadRef,
};
use crate::time::Millis;

/// How the object came to be, as the store's event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A direct upload (S3 `Put`, `Post`, `CompleteMultipartUpload`; a new file locally).
    Upload,
    /// A copy or move inside the bucket (S3 `Copy`): never a trigger.
    Copy,
}

/// What happened to an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Not a send: left alone, for the reason given.
    Ignored(String),
    /// Moved to the outbox and queued for sending.
    Queued {
        /// The message record.
        id: String,
    },
    /// Moved to `AS2/duplicate/...`.
    Duplicate {
        /// The record of the duplicate.
        id: String,
        /// Where the file is now.
        moved_to: String,
    },
    /// Kept where it is and not sent (no such partnership); the reason is in the record.
    NotSent {
        /// The not-sent record (its id is the same each time the upload is seen).
        id: String,
        /// Why it is not sent, and how to make it go.
        reason: String,
    },
}

impl fmt::Display for UploadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadOutcome::Ignored(why) => write!(f, "ignored: {why}"),
            UploadOutcome::Queued { id } => write!(f, "queued as {id}"),
            UploadOutcome::Duplicate { moved_to, .. } => {
                write!(f, "duplicate, moved to {moved_to}")
            }
            UploadOutcome::NotSent { reason, .. } => write!(f, "not sent: {reason}"),
        }
    }
}

impl<P: Ports> Gateway<P> {
    /// Handles an object-created event for `key` (already URL-decoded). `upload` is what the event
    /// says of the object (version, etag); without it the store is asked.
    pub async fn on_upload(
        &self,
        key: &str,
        how: Origin,
        upload: Option<UploadRef>,
    ) -> Result<UploadOutcome> {
        if how == Origin::Copy {
            return Ok(UploadOutcome::Ignored(
                "copied or moved inside the bucket; only direct uploads are sent".into(),
            ));
        }
        // A file for a station and partner with a name that cannot be used is recorded (below,
        // once it is known to be there); anything else that is not a send is only ignored.
        let parsed = match SendKey::parse(key) {
            Ok(send) => Ok(send),
            Err(NotASend::UnusableName {
                station,
                partner,
                reason,
            }) => Err((station, partner, reason)),
            Err(why @ (NotASend::OutsideSend | NotASend::InProgress)) => {
                return Ok(UploadOutcome::Ignored(why.to_string()));
            }
            Err(why) => {
                tracing::info!(key, reason = %why, "upload not sent");
                return Ok(UploadOutcome::Ignored(why.to_string()));
            }
        };
        let store = self.ports.store();
        let Some(current) = store.head(key).await? else {
            return Ok(handled());
        };
        // Several uploads of one name are several versions of one key: act on the event's, and
        // name what is made once per upload from the event (its identity and time), not from
        // the newest version, which a later upload may have replaced by the next delivery.
        let upload = upload.unwrap_or_else(|| UploadRef::from(&current));
        let upload_id = upload.id().unwrap_or_else(|| current.upload_id());
        let (version, size) = (upload.version, upload.size.unwrap_or(current.size));
        let at = upload.at.unwrap_or(current.written);
        let send = match parsed {
            Ok(s) => s,
            Err((station, partner, reason)) => {
                let name = key.rsplit('/').next().unwrap_or(key);
                let reason = format!("{reason}; rename it to send it (it stays in {key})");
                let send = SendKey::new(&station, &partner, name);
                return self
                    .not_sent(&send, key, &upload_id, at, size, reason)
                    .await;
            }
        };
        let now = self.ports.clock().now();
        let dir = self.ports.directory();
        let known = dir.station(&send.station).await?.is_some()
            && dir
                .partnership(&send.station, &send.partner)
                .await?
                .is_some();
        if !known {
            let reason = format!(
                "no partnership between station {} and partner {}; the file stays in {}",
                send.station, send.partner, key
            );
            return self
                .not_sent(&send, key, &upload_id, at, size, reason)
                .await;
        }

        // The window is judged on the upload's time, not on when its event is handled, so a
        // duplicate whose move was cut short is a duplicate still when its event comes again
        // after the window has ended, as long as the index keeps the claim that stopped it.
        // DynamoDB's TTL lets it go 14 days after that window ([`ClaimRecord::KEPT`]); beyond
        // that an upload seen late looks for its copy under `AS2/duplicate/` first (most
        // uploads are seen at once, and pay nothing for this).
        let duplicate_folder = || duplicate_id(key, &upload_id, at);
        if now.since(at) >= SEEN_LATE {
            let id = duplicate_folder()?;
            if store.head(&layout::duplicate(&send, &id)).await?.is_some() {
                let why = format!(
                    "{} was a duplicate when first seen (that move was cut short)",
                    send.name
                );
                return self
                    .move_duplicate(&send, key, version.as_deref(), size, id, why)
                    .await;
            }
        }
        let folder = layout::new_folder(now);
        let claim = self
            .ports
            .duplicates()
            .claim(
                &send,
                &ClaimRequest {
                    upload_id: &upload_id,
                    record_id: &folder,
                    at: at.min(now),
                    window: self.settings.duplicate_window,
                },
            )
            .await?;
        let id = match claim {
            Claim::Accepted => folder,
            Claim::Redelivery { record_id } => record_id,
            Claim::Duplicate {
                accepted_at,
                record_id,
            } => {
                let why = format!(
                    "{} uploaded at {accepted_at} was accepted as {record_id} and its duplicate window has not ended",
                    send.name
                );
                return self
                    .move_duplicate(
                        &send,
                        key,
                        version.as_deref(),
                        size,
                        duplicate_folder()?,
                        why,
                    )
                    .await;
            }
        };

        // Copy to the outbox, record, queue, and only then remove the upload: a crash anywhere
        // leaves the file in one place or the other, and a redelivered event finishes the job.
        let paths = MessagePaths::new(&send.station, &send.partner, Direction::Outbox, &id)?;
        let outbox = paths.payload(&send.name)?;
        if !copied(store, key, version.as_deref(), &outbox).await? {
            return Ok(handled());
        }
        self.settings.failpoints.hit("upload.copied")?;
        let mut record = MessageRecord::upload(
            &id,
            &send,
            size,
            StatusChange::new(now, Status::Queued, Some(format!("uploaded as {key}"))),
        );
        record.payload_key = Some(outbox);
        let queue = match self.ports.log().create(&record).await? {
            Created::New => true,
            Created::Exists(existing) => existing.status == Status::Queued,
        };
        if queue {
            self.ports
                .queue()
                .enqueue(Job::Send { id: id.clone() }, now)
                .await?;
        }
        self.settings.failpoints.hit("upload.recorded")?;
        store.delete(key, version.as_deref()).await?;
        tracing::info!(key, id, "queued for sending");
        Ok(UploadOutcome::Queued { id })
    }

    /// Moves `version` of the duplicate upload `key` aside to `AS2/duplicate/` and records it as
    /// `id`, a folder named after the upload ([`duplicate_id`]): copy, record, tell, and only
    /// then remove the upload.
    /// A run that dies at any step leaves the file where a redelivered event (or, locally, the
    /// watcher seeing the file again) finds it and finishes the same move under the same record:
    /// one copy, one record, one event.
    async fn move_duplicate(
        &self,
        send: &SendKey,
        key: &str,
        version: Option<&str>,
        size: u64,
        id: String,
        why: String,
    ) -> Result<UploadOutcome> {
        let store = self.ports.store();
        let moved_to = layout::duplicate(send, &id);
        if !copied(store, key, version, &moved_to).await? {
            return Ok(handled());
        }
        self.settings.failpoints.hit("duplicate.copied")?;
        let now = self.ports.clock().now();
        let detail = format!("{why}; moved to {moved_to}");
        let mut record = MessageRecord::upload(
            &id,
            send,
            size,
            StatusChange::new(now, Status::Duplicate, Some(detail)),
        );
        record.payload_key = Some(moved_to.clone());
        match self.ports.log().create(&record).await? {
            Created::New => self.finished(&mut record).await,
            Created::Exists(mut earlier) => self.tell_if_untold(&mut earlier).await,
        }
        self.settings.failpoints.hit("duplicate.recorded")?;
        store.delete(key, version).await?;
        tracing::info!(key, %moved_to, "duplicate upload");
        Ok(UploadOutcome::Duplicate { id, moved_to })
    }

    /// Records, once per upload, that it cannot be sent and why: the record's id comes from
    /// the upload (its key, identity and the time it was written, `at`), so seeing the file
    /// again (the next poll, a restart, a redelivered event) finds the same record instead of
    /// writing another. `size` is the upload's.
    pub async fn not_sent(
        &self,
        send: &SendKey,
        key: &str,
        upload_id: &str,
        at: Millis,
        size: u64,
        reason: String,
    ) -> Result<UploadOutcome> {
        let id = upload_folder(at, &format!("{key}\n{upload_id}"))?;
        let now = self.ports.clock().now();
        let mut record = MessageRecord::upload(
            &id,
            send,
            size,
            StatusChange::new(now, Status::NotSent, Some(reason.clone())),
        );
        match self.ports.log().create(&record).await? {
            Created::New => {
                tracing::warn!(key, %reason, "upload not sent");
                self.finished(&mut record).await;
            }
            Created::Exists(mut earlier) => self.tell_if_untold(&mut earlier).await,
        }
        Ok(UploadOutcome::NotSent { id, reason })
    }
}

/// Copies the upload `key` (its `version`) to `to`: `false` if it is no longer there, because
/// another delivery of its event got there first and moved it.
async fn copied<S: ObjectStore>(
    store: &S,
    key: &str,
    version: Option<&str>,
    to: &str,
) -> Result<bool> {
    match store.copy(key, version, to).await {
        Ok(_) => Ok(true),
        Err(GatewayError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What an upload that is no longer there comes to.
fn handled() -> UploadOutcome {
    UploadOutcome::Ignored("no longer there (already handled)".into())
}

/// How long after it was written an upload counts as seen late ([`Gateway::on_upload`]).
const SEEN_LATE: std::time::Duration = std::time::Duration::from_secs(60);

/// The folder (and record id) a duplicate upload is moved to.
fn duplicate_id(key: &str, upload_id: &str, at: Millis) -> Result<String> {
    upload_folder(at, &format!("{key}\n{upload_id}\nduplicate"))
}

/// The folder (and record id) of what is made once per upload: the upload's time and a digest
/// of `what` names it (its key and identity, and what is made of it), so every delivery of one
/// upload names the same folder, and different uploads different ones.
fn upload_folder(at: Millis, what: &str) -> Result<String> {
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), what.as_bytes())
        .map_err(|e| GatewayError::port("digest", e))?;
    Ok(format!("{}-{}", at.compact(), as2::hex(&digest[..4])))
}
