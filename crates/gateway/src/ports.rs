//! The gateway's ports: everything it needs from the world, as traits. Adapters implement them
//! (a directory and an embedded database locally; S3, DynamoDB and SQS on AWS); the workflows
//! never see which.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use as2::keys::Identity;
use as2::HeaderMap;
use openssl::x509::X509;

use crate::error::Result;
use crate::layout::{Direction, SendKey};
use crate::model::{Job, MessageRecord, Partnership, Station, Status, TlsOptions};
use crate::time::Millis;

/// What a store knows about an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// A content hash or the store's entity tag.
    pub etag: String,
    /// The version id, where the store keeps versions.
    pub version: Option<String>,
    /// The current version's modification time: when it was written on S3, but locally the
    /// file's, which an SFTP client may set (most keep the time of the file they upload).
    pub modified: Millis,
    /// When the current version came into the store, which no client sets: on S3 the same as
    /// `modified`, locally the file's change time (made, written or renamed into place).
    pub written: Millis,
    /// What the writer attached (S3 user metadata; a side file locally).
    pub metadata: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// What identifies this upload among the writes of its key ([`UploadRef::id`]).
    pub fn upload_id(&self) -> String {
        UploadRef::from(self).id().unwrap_or_default()
    }
}

/// What an object-created event says of the object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadRef {
    /// Version id, in a versioned bucket.
    pub version: Option<String>,
    /// The entity tag: the same for identical content, so the last resort to tell uploads apart.
    pub etag: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// S3's event sequencer: the same for a redelivered event, different for each write of a
    /// key, so it tells uploads apart where there is no version id (identical content in an
    /// unversioned bucket has one etag).
    pub sequencer: Option<String>,
    /// When the store says the upload was written (S3's `eventTime`): the same for every
    /// delivery of one event, so what is named once per upload can carry it.
    pub at: Option<Millis>,
}

impl UploadRef {
    /// What identifies this upload among the writes of its key: the version id where the bucket
    /// keeps versions, else S3's event sequencer, else the entity tag.
    pub fn id(&self) -> Option<String> {
        (self.version.clone())
            .or_else(|| self.sequencer.clone())
            .or_else(|| self.etag.clone())
    }
}

impl From<&ObjectMeta> for UploadRef {
    fn from(meta: &ObjectMeta) -> UploadRef {
        UploadRef {
            version: meta.version.clone(),
            etag: Some(meta.etag.clone()),
            size: Some(meta.size),
            sequencer: None,
            at: Some(meta.written),
        }
    }
}

/// An object and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The whole object.
    pub data: Vec<u8>,
    /// What the store knows of it.
    pub meta: ObjectMeta,
}

/// The bucket (or the directory standing in for it).
pub trait ObjectStore: Send + Sync {
    /// Writes an object whole (replacing any current version).
    fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<ObjectMeta>> + Send;
    /// Writes objects whole, without metadata, each as [`ObjectStore::put`] would: one call
    /// for what a step stores together (a message and its headers), which a store may write at
    /// once. When it returns, all are there; when it fails, some may be.
    fn put_all(&self, objects: Vec<(String, Vec<u8>)>) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (key, data) in objects {
                self.put(&key, data, BTreeMap::new()).await?;
            }
            Ok(())
        }
    }
    /// Reads an object; `None` if it does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Object>>> + Send;
    /// An object's metadata; `None` if it does not exist.
    fn head(&self, key: &str) -> impl Future<Output = Result<Option<ObjectMeta>>> + Send;
    /// Copies an object inside the store: the given version of `from` where versions exist, else
    /// its current one.
    fn copy(
        &self,
        from: &str,
        version: Option<&str>,
        to: &str,
    ) -> impl Future<Output = Result<ObjectMeta>> + Send;
    /// Deletes an object (the given version only, where versions exist). Deleting what is not
    /// there is not an error.
    fn delete(&self, key: &str, version: Option<&str>) -> impl Future<Output = Result<()>> + Send;
    /// Keys under `prefix`, in key order.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<(String, ObjectMeta)>>> + Send;

    /// An object written in parts, for what is too large to hold in memory.
    type Writer: ObjectWriter;
    /// An object read in parts.
    type Reader: ObjectReader;
    /// Starts writing `key` in parts: nothing is under the key until the writer's
    /// [`ObjectWriter::finish`], and a writer dropped unfinished leaves nothing there.
    fn writer(
        &self,
        key: &str,
        metadata: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Self::Writer>> + Send;
    /// Reads an object in parts; `None` if it does not exist.
    fn reader(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(ObjectMeta, Self::Reader)>>> + Send;
}

/// The size of the parts objects are read and written in: S3's smallest multipart part, and
/// few enough calls for a file.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// An object being written in parts (a temporary file, an S3 multipart upload).
pub trait ObjectWriter: Send {
    /// Appends `data`.
    fn write(&mut self, data: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Puts what was written under the key, whole, and says what the store knows of it.
    fn finish(self) -> impl Future<Output = Result<ObjectMeta>> + Send;
}

/// An object being read in parts.
pub trait ObjectReader: Send + 'static {
    /// The next part (at most [`PART_SIZE`] bytes); `None` at the end.
    fn next(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
}

/// A request body read as it goes out.
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send>>;

/// An object's parts as a stream, for a request body; a read that fails ends it with the error.
pub fn byte_stream<R: ObjectReader>(reader: R) -> ByteStream {
    Box::pin(futures_util::stream::unfold(
        Some(reader),
        |reader| async move {
            let mut reader = reader?;
            match reader.next().await {
                Ok(Some(part)) => Some((Ok(part), Some(reader))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        },
    ))
}

/// What an object's parts add up to, read whole (for what is known to be small).
pub async fn read_all<R: ObjectReader>(mut reader: R) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(part) = reader.next().await? {
        out.extend_from_slice(&part);
    }
    Ok(out)
}

/// What the duplicate index says of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The first upload of this name in the window: it is now the one the window runs from.
    Accepted,
    /// The same upload again (a redelivered event): it was accepted before, as `record_id`.
    Redelivery {
        /// The record made when it was first accepted.
        record_id: String,
    },
    /// Another upload of a name, less than the window after the accepted one's upload.
    Duplicate {
        /// When the accepted upload was uploaded.
        accepted_at: Millis,
        /// The message record of that upload.
        record_id: String,
    },
}

/// What the duplicate index keeps per station, partner and file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The accepted upload's identity ([`ObjectMeta::upload_id`]).
    pub upload_id: String,
    /// Its message record.
    pub record_id: String,
    /// When it was uploaded ([`ClaimRequest::at`]).
    pub accepted_at: Millis,
    /// The end of its duplicate window, fixed when it was accepted: changing the window later
    /// changes only the windows of uploads accepted after that.
    pub window_ends: Millis,
}

impl ClaimRecord {
    /// How long past its window's end an index that lets claims go (DynamoDB's TTL) keeps it:
    /// far longer than an upload's event is retried (S3 stops 6 hours after the event). An event
    /// of an upload it judged that comes after its window, as a cut-short run's may, is judged
    /// against it as the first one was, instead of finding the name free: a redelivery, not a
    /// second send.
    pub const KEPT: Duration = Duration::from_secs(14 * 86_400);

    /// Until when an index that lets claims go keeps this one ([`ClaimRecord::KEPT`]).
    pub fn kept_until(&self) -> Millis {
        self.window_ends.plus(Self::KEPT)
    }
}

/// An upload asking for its name in the duplicate window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRequest<'a> {
    /// The upload's identity ([`ObjectMeta::upload_id`]).
    pub upload_id: &'a str,
    /// The record it is to be sent as, if accepted.
    pub record_id: &'a str,
    /// When the upload was written (no later than now): the window is a rule on upload times,
    /// so every delivery of one upload's event gets the same answer, however late it comes.
    pub at: Millis,
    /// How long same-name uploads after it are duplicates, if accepted.
    pub window: Duration,
}

impl ClaimRequest<'_> {
    /// What the index keeps if the claim is accepted.
    pub fn accepted(&self) -> ClaimRecord {
        ClaimRecord {
            upload_id: self.upload_id.to_string(),
            record_id: self.record_id.to_string(),
            accepted_at: self.at,
            window_ends: self.at.plus(self.window),
        }
    }
}

impl Claim {
    /// The rule, for adapters to apply inside their one atomic step: the same upload again is a
    /// redelivery; another upload before the accepted one's window ends is a duplicate;
    /// anything else is accepted (and becomes the record a new window runs from).
    pub fn judge(existing: Option<&ClaimRecord>, request: &ClaimRequest<'_>) -> Claim {
        match existing {
            Some(c) if c.upload_id == request.upload_id => Claim::Redelivery {
                record_id: c.record_id.clone(),
            },
            Some(c) if request.at < c.window_ends => Claim::Duplicate {
                accepted_at: c.accepted_at,
                record_id: c.record_id.clone(),
            },
            _ => Claim::Accepted,
        }
    }
}

/// The same-name duplicate window (seed section 3.1). One atomic operation per upload.
pub trait DuplicateIndex: Send + Sync {
    /// Claims the name of `send` (per station and partner) for the upload `request` describes.
    fn claim(
        &self,
        send: &SendKey,
        request: &ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Claim>> + Send;
}

/// Which records [`MessageLog::query`] returns: every filter that is set must hold. Adapters
/// may narrow with their indexes first but decide with [`RecordQuery::matches`], the one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    /// Our station's AS2 ID.
    pub station: Option<String>,
    /// The partner's AS2 ID.
    pub partner: Option<String>,
    /// Sent or received.
    pub direction: Option<Direction>,
    /// The current status.
    pub status: Option<Status>,
    /// Made at or after this time.
    pub since: Option<Millis>,
    /// Made before this time.
    pub until: Option<Millis>,
    /// The AS2 Message-ID, with or without angle brackets.
    pub message_id: Option<String>,
    /// Part of the file name, in any case.
    pub filename: Option<String>,
    /// Only records older than this one (the last id of the page before): paging.
    pub before: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl RecordQuery {
    /// Where the page after `page`, this query's answer, starts ([`RecordQuery::before`]): its
    /// last record when the page is full; `None` on the last page.
    pub fn next_page<'a>(&self, page: &'a [MessageRecord]) -> Option<&'a str> {
        if page.len() < self.limit {
            return None;
        }
        page.last().map(|r| r.id.as_str())
    }

    /// The newest `limit` records, of one station and partner where given.
    pub fn of(station: Option<&str>, partner: Option<&str>, limit: usize) -> RecordQuery {
        RecordQuery {
            station: station.map(str::to_string),
            partner: partner.map(str::to_string),
            direction: None,
            status: None,
            since: None,
            until: None,
            message_id: None,
            filename: None,
            before: None,
            limit,
        }
    }

    /// Whether `record` is one the query selects.
    pub fn matches(&self, record: &MessageRecord) -> bool {
        let made = record.history.first().map_or(Millis(0), |h| h.at);
        let core = as2::envelope::message_id_core;
        self.station.as_ref().is_none_or(|s| *s == record.station)
            && self.partner.as_ref().is_none_or(|p| *p == record.partner)
            && self.direction.is_none_or(|d| d == record.direction)
            && self.status.is_none_or(|s| s == record.status)
            && self.since.is_none_or(|t| made >= t)
            && self.until.is_none_or(|t| made < t)
            && (self.message_id.as_ref()).is_none_or(|m| core(m) == core(&record.message_id))
            && self
                .filename
                .as_ref()
                .is_none_or(|f| record.filename.to_lowercase().contains(&f.to_lowercase()))
            && self.before.as_ref().is_none_or(|b| record.id < *b)
    }
}

/// Whether [`MessageLog::create`] made a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The record was stored; nobody had it.
    New,
    /// A record with this id, or (inbound) this partner's Message-ID, exists already.
    Exists(Box<MessageRecord>),
}

/// The message log: every message's record and status history.
pub trait MessageLog: Send + Sync {
    /// Stores a new record. Refused (returning the existing one) when the id exists, or when an
    /// inbound record with the same station, partner and Message-ID exists: the check and the
    /// write are one atomic step.
    fn create(&self, record: &MessageRecord) -> impl Future<Output = Result<Created>> + Send;
    /// Reads a record.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<MessageRecord>>> + Send;
    /// Writes a changed record if nobody else wrote it since it was read (its `revision`), and
    /// bumps the revision; a stale write fails with [`crate::GatewayError::Conflict`].
    fn update(&self, record: &mut MessageRecord) -> impl Future<Output = Result<()>> + Send;
    /// The outbound record whose Message-ID (without brackets) is `message_id`.
    fn find_outbound(
        &self,
        station: &str,
        partner: &str,
        message_id: &str,
    ) -> impl Future<Output = Result<Option<MessageRecord>>> + Send;
    /// The records `query` selects, newest first, at most its `limit`.
    fn query(&self, query: &RecordQuery)
        -> impl Future<Output = Result<Vec<MessageRecord>>> + Send;
}

/// The optimistic lock every [`MessageLog::update`] applies, with [`MessageRecord::next_revision`]:
/// the adapter writes `next` only where the stored revision is still `record`'s and says
/// whether it did; a stale write is a [`crate::GatewayError::Conflict`] and leaves `record` as it
/// was, a successful one makes `record` the one written.
pub fn apply_update(record: &mut MessageRecord, next: MessageRecord, written: bool) -> Result<()> {
    if !written {
        return Err(crate::GatewayError::Conflict(format!(
            "record {} changed or is gone",
            record.id
        )));
    }
    *record = next;
    Ok(())
}

/// Stations and partnerships.
pub trait PartnerDirectory: Send + Sync {
    /// A station by AS2 ID.
    fn station(&self, as2_id: &str) -> impl Future<Output = Result<Option<Station>>> + Send;
    /// The partnership of `station` with `partner`.
    fn partnership(
        &self,
        station: &str,
        partner: &str,
    ) -> impl Future<Output = Result<Option<Partnership>>> + Send;
}

/// Keys and certificates by alias (`AS2/keystore/*.jks` in the layout).
pub trait Keystore: Send + Sync {
    /// A station identity from `identity.jks`.
    fn identity(&self, alias: &str) -> impl Future<Output = Result<Identity>> + Send;
    /// A partner certificate from `trust.jks`.
    fn partner_certificate(&self, alias: &str) -> impl Future<Output = Result<X509>> + Send;
    /// A TLS trust anchor from `https.jks`.
    fn tls_certificate(&self, alias: &str) -> impl Future<Output = Result<X509>> + Send;
}

/// Named secrets (environment variables locally; Secrets Manager or SSM on AWS).
pub trait Secrets: Send + Sync {
    /// The secret called `name`.
    fn secret(&self, name: &str) -> impl Future<Output = Result<String>> + Send;
}

/// A request's body: in memory, or read from the store as it goes out.
pub enum Body {
    /// The whole body.
    Bytes(Vec<u8>),
    /// A body of `length` bytes, read as it is sent.
    Stream {
        /// Its length, for the Content-Length header.
        length: u64,
        /// Its bytes.
        chunks: ByteStream,
    },
}

impl Body {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Stream { length, .. } => *length,
        }
    }

    /// True if it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body, a stream read to its end.
    pub async fn collect(self) -> std::io::Result<Vec<u8>> {
        use futures_util::StreamExt as _;
        match self {
            Body::Bytes(b) => Ok(b),
            Body::Stream { length, mut chunks } => {
                let mut out = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
                while let Some(part) = chunks.next().await {
                    out.extend_from_slice(&part?);
                }
                Ok(out)
            }
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream { length, .. } => write!(f, "Body::Stream({length} bytes)"),
        }
    }
}

/// One HTTP POST to a partner.
#[derive(Debug)]
pub struct HttpRequest {
    /// The partner's URL.
    pub url: String,
    /// Headers (the transport adds Content-Length; never chunked, as some partners refuse it).
    pub headers: HeaderMap,
    /// The AS2 message or receipt, exactly as it goes over the wire.
    pub body: Body,
    /// Give up after this long.
    pub timeout: Duration,
    /// Basic auth user and password.
    pub basic_auth: Option<(String, String)>,
    /// Which TLS versions and certificate checks the partnership allows.
    pub tls: TlsOptions,
    /// Extra trust anchors for the partner's server certificate.
    pub trust: Vec<X509>,
}

/// An HTTP answer: the partner's to a POST of ours, or ours to a POST we received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status: 200 with a synchronous receipt, 2xx without one, 4xx/5xx refused.
    pub status: u16,
    /// The HTTP headers (for a receipt, its AS2 and MIME headers).
    pub headers: HeaderMap,
    /// The body: a synchronous receipt, or the text of an answer without one.
    pub body: Vec<u8>,
}

/// Why a POST got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The connection could not be made (refused, DNS, TLS handshake).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The partner's TLS certificate was refused (unknown issuer, expired, wrong host name).
    #[error("the partner's TLS certificate was refused: {0}")]
    Certificate(String),
    /// No complete answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The connection broke during the exchange.
    #[error("connection failed: {0}")]
    Io(String),
}

/// HTTP(S) client for AS2 messages and asynchronous receipts.
pub trait As2Transport: Send + Sync {
    /// POSTs and returns whatever the partner answered.
    fn post(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = std::result::Result<HttpResponse, TransportError>> + Send;
}

/// Where work waits until it is due.
pub trait JobQueue: Send + Sync {
    /// Queues `job` to run at `not_before` or later.
    fn enqueue(&self, job: Job, not_before: Millis) -> impl Future<Output = Result<()>> + Send;
}

/// A job set aside because running it failed for good or too often (the dead-letter queue on
/// AWS, parked rows in the embedded gateway's database), for an operator to look at and redrive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParkedJob {
    /// What names it for `redrive --id` (the SQS message ID, the row's number).
    pub id: String,
    /// The job, if its body is one.
    pub job: Option<Job>,
    /// Its body as it was queued, when it is not a job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why it was set aside; `None` when the queue moved it after too many failed runs.
    pub reason: Option<String>,
    /// When it was set aside.
    pub parked_at: Option<Millis>,
    /// How often it was run.
    pub runs: Option<u32>,
}

impl ParkedJob {
    /// The message record the job is for.
    pub fn record_id(&self) -> Option<&str> {
        self.job
            .as_ref()
            .map(Job::record_id)
            .filter(|id| !id.is_empty())
    }
}

/// Where events go: counted, posted to webhooks, put on a bus. Publishing never fails the AS2
/// exchange and never waits for a slow receiver: an adapter queues what it cannot hand over at
/// once, and says (logs) what it could not.
pub trait Events: Send + Sync {
    /// Tells of `event`; whether it was handed over (`false`: it was not, and that was logged).
    fn publish(&self, event: crate::events::Event) -> impl Future<Output = bool> + Send;
    /// Whether what it is handed outlives the process (a bus does; counting in memory does
    /// not): only then is an event it never got worth telling later.
    fn keeps(&self) -> bool;
}

/// Events nobody subscribes to, said in the log only (where a backend has no subscriber yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogEvents;

impl Events for LogEvents {
    async fn publish(&self, event: crate::events::Event) -> bool {
        tracing::debug!(kind = %event.kind, "event (no subscriber)");
        true
    }

    fn keeps(&self) -> bool {
        false
    }
}

/// The time. Injected, so time-dependent rules are tested without sleeping.
pub trait Clock: Send + Sync {
    /// The current time, to the millisecond.
    fn now(&self) -> Millis;
    /// Waits `d` (a clock of tests moves on by `d` at once).
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// Every port the gateway uses, bundled so the workflows are written once over them.
pub trait Ports: Send + Sync {
    /// Where files, raw messages, receipts and keystores are kept.
    type Store: ObjectStore;
    /// The same-name duplicate window.
    type Duplicates: DuplicateIndex;
    /// Message records and their history.
    type Log: MessageLog;
    /// Stations and partnerships.
    type Directory: PartnerDirectory;
    /// Keys and certificates.
    type Keys: Keystore;
    /// Passwords by name.
    type Secrets: Secrets;
    /// The HTTP(S) client towards partners.
    type Transport: As2Transport;
    /// Where sends, receipts and deadlines wait until they are due.
    type Queue: JobQueue;
    /// The time, and waiting.
    type Clock: Clock;
    /// Where events go.
    type Events: Events;

    /// See [`Ports::Store`].
    fn store(&self) -> &Self::Store;
    /// See [`Ports::Duplicates`].
    fn duplicates(&self) -> &Self::Duplicates;
    /// See [`Ports::Log`].
    fn log(&self) -> &Self::Log;
    /// See [`Ports::Directory`].
    fn directory(&self) -> &Self::Directory;
    /// Keys and certificates.
    fn keys(&self) -> &Self::Keys;
    /// See [`Ports::Secrets`].
    fn secrets(&self) -> &Self::Secrets;
    /// See [`Ports::Transport`].
    fn transport(&self) -> &Self::Transport;
    /// See [`Ports::Queue`].
    fn queue(&self) -> &Self::Queue;
    /// See [`Ports::Clock`].
    fn clock(&self) -> &Self::Clock;
    /// See [`Ports::Events`].
    fn events(&self) -> &Self::Events;
}

/// The one port set: every adapter fills it with its own types (a directory and SQLite for the
/// embedded gateway; S3, DynamoDB and SQS on AWS; memory for tests), and it is [`Ports`] for
/// any types that implement the ports. One value may serve several (SQLite is the duplicate
/// index, the log and the queue): each field holds a clone.
#[derive(Debug, Clone)]
pub struct PortSet<S, D, L, R, K, X, T, Q, C, E> {
    /// The bucket (or the directory standing in for it).
    pub store: S,
    /// The same-name duplicate window.
    pub duplicates: D,
    /// Message records and their history.
    pub log: L,
    /// Stations and partnerships.
    pub directory: R,
    /// Keys and certificates.
    pub keys: K,
    /// Passwords by name (keystores, partners' basic auth).
    pub secrets: X,
    /// The HTTP client towards partners.
    pub transport: T,
    /// Where work waits until it is due.
    pub queue: Q,
    /// The time, and waiting.
    pub clock: C,
    /// Where events go.
    pub events: E,
}

impl<S, D, L, R, K, X, T, Q, C, E> Ports for PortSet<S, D, L, R, K, X, T, Q, C, E>
where
    S: ObjectStore,
    D: DuplicateIndex,
    L: MessageLog,
    R: PartnerDirectory,
    K: Keystore,
    X: Secrets,
    T: As2Transport,
    Q: JobQueue,
    C: Clock,
    E: Events,
{
    type Store = S;
    type Duplicates = D;
    type Log = L;
    type Directory = R;
    type Keys = K;
    type Secrets = X;
    type Transport = T;
    type Queue = Q;
    type Clock = C;
    type Events = E;

    fn store(&self) -> &S {
        &self.store
    }
    fn duplicates(&self) -> &D {
        &self.duplicates
    }
    fn log(&self) -> &L {
        &self.log
    }
    fn directory(&self) -> &R {
        &self.directory
    }
    fn keys(&self) -> &K {
        &self.keys
    }
    fn secrets(&self) -> &X {
        &self.secrets
    }
    fn transport(&self) -> &T {
        &self.transport
    }
    fn queue(&self) -> &Q {
        &self.queue
    }
    fn clock(&self) -> &C {
        &self.clock
    }
    fn events(&self) -> &E {
        &self.events
    }
}
