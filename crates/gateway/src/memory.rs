//! In-memory implementations of every port, for domain tests (feature `memory`). They keep the
//! ports' contracts (atomic claims, unique inbound Message-IDs, optimistic record revisions) so
//! tests of the rules mean something; they prove nothing about any real adapter.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use as2::keys::Identity;
use openssl::x509::X509;

use crate::error::{GatewayError, Result};
use crate::layout::{Direction, SendKey};
use crate::model::{Job, MessageRecord, Partnership, Station};
use crate::ports::*;
use crate::time::Millis;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A bucket in memory that keeps versions, as a versioned S3 bucket does: each put adds a
/// version, the newest is the one read, and a delete names the version it removes.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    objects: Arc<Mutex<BTreeMap<String, Vec<Object>>>>,
    versions: Arc<AtomicU64>,
    clock: ManualClock,
    /// Puts under this prefix fail, as on a full disk.
    pub failing_prefix: Arc<Mutex<Option<String>>>,
}

impl MemoryStore {
    /// A store stamping objects with `clock`'s time.
    pub fn new(clock: ManualClock) -> Self {
        MemoryStore {
            clock,
            ..Default::default()
        }
    }

    /// Every key that has a version, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.objects)
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The newest version's bytes.
    pub fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.objects)
            .get(key)
            .and_then(|v| v.last())
            .map(|o| o.data.clone())
    }

    /// How many versions `key` has.
    pub fn version_count(&self, key: &str) -> usize {
        lock(&self.objects).get(key).map_or(0, Vec::len)
    }
}

impl ObjectStore for MemoryStore {
    async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectMeta> {
        if lock(&self.failing_prefix)
            .as_deref()
            .is_some_and(|p| key.starts_with(p))
        {
            return Err(GatewayError::port(
                "memory store",
                "No space left on device",
            ));
        }
        let etag = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), &data)
            .map(|d| as2::hex(&d))
            .map_err(|e| GatewayError::port("memory store", e))?;
        let now = self.clock.now();
        let meta = ObjectMeta {
            size: data.len() as u64,
            etag,
            version: Some(self.versions.fetch_add(1, Ordering::SeqCst).to_string()),
            modified: now,
            written: now,
            metadata,
        };
        lock(&self.objects)
            .entry(key.into())
            .or_default()
            .push(Object {
                data,
                meta: meta.clone(),
            });
        Ok(meta)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        Ok(lock(&self.objects).get(key).and_then(|v| v.last()).cloned())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        Ok(lock(&self.objects)
            .get(key)
            .and_then(|v| v.last())
            .map(|o| o.meta.clone()))
    }

    async fn copy(&self, from: &str, version: Option<&str>, to: &str) -> Result<ObjectMeta> {
        let o = {
            let objects = lock(&self.objects);
            let versions = objects
                .get(from)
                .ok_or_else(|| GatewayError::NotFound(from.into()))?;
            match version {
                Some(v) => versions
                    .iter()
                    .find(|o| o.meta.version.as_deref() == Some(v)),
                None => versions.last(),
            }
            .cloned()
            .ok_or_else(|| GatewayError::NotFound(format!("{from} version {version:?}")))?
        };
        self.put(to, o.data, o.meta.metadata).await
    }

    async fn delete(&self, key: &str, version: Option<&str>) -> Result<()> {
        let mut objects = lock(&self.objects);
        if let Some(versions) = objects.get_mut(key) {
            match version {
                Some(v) => versions.retain(|o| o.meta.version.as_deref() != Some(v)),
                None => versions.clear(),
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectMeta)>> {
        Ok(lock(&self.objects)
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, v)| v.last().map(|o| (k.clone(), o.meta.clone())))
            .collect())
    }

    type Writer = MemoryWriter;
    type Reader = MemoryReader;

    async fn writer(&self, key: &str, metadata: BTreeMap<String, String>) -> Result<MemoryWriter> {
        Ok(MemoryWriter {
            store: self.clone(),
            key: key.to_string(),
            metadata,
            data: Vec::new(),
        })
    }

    async fn reader(&self, key: &str) -> Result<Option<(ObjectMeta, MemoryReader)>> {
        Ok(self
            .get(key)
            .await?
            .map(|o| (o.meta, MemoryReader::parts(o.data, PART_SIZE))))
    }
}

/// An object written in parts to a [`MemoryStore`]: put whole at the end.
#[derive(Debug)]
pub struct MemoryWriter {
    store: MemoryStore,
    key: String,
    metadata: BTreeMap<String, String>,
    data: Vec<u8>,
}

impl ObjectWriter for MemoryWriter {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    async fn finish(self) -> Result<ObjectMeta> {
        self.store.put(&self.key, self.data, self.metadata).await
    }
}

/// An object of a [`MemoryStore`] read in parts (or any bytes, in parts of a given size).
#[derive(Debug)]
pub struct MemoryReader {
    data: Vec<u8>,
    at: usize,
    part: usize,
}

impl MemoryReader {
    /// `data` read in parts of `part` bytes.
    pub fn parts(data: Vec<u8>, part: usize) -> Self {
        MemoryReader {
            data,
            at: 0,
            part: part.clamp(1, PART_SIZE),
        }
    }
}

impl ObjectReader for MemoryReader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        if self.at >= self.data.len() {
            return Ok(None);
        }
        let end = self.data.len().min(self.at + self.part);
        let part = self.data[self.at..end].to_vec();
        self.at = end;
        Ok(Some(part))
    }
}

/// Station, partner and file name.
type ClaimKey = (String, String, String);

/// The duplicate window in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryDuplicates {
    claims: Arc<Mutex<HashMap<ClaimKey, ClaimRecord>>>,
}

impl DuplicateIndex for MemoryDuplicates {
    async fn claim(&self, send: &SendKey, request: &ClaimRequest<'_>) -> Result<Claim> {
        let mut claims = lock(&self.claims);
        let key = (
            send.station.clone(),
            send.partner.clone(),
            send.name.clone(),
        );
        let claim = Claim::judge(claims.get(&key), request);
        if claim == Claim::Accepted {
            claims.insert(key, request.accepted());
        }
        Ok(claim)
    }
}

/// The message log in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    records: Arc<Mutex<BTreeMap<String, MessageRecord>>>,
    /// While set, updates fail (a process that died cannot write either).
    pub failing_updates: Arc<std::sync::atomic::AtomicBool>,
}

fn core(id: &str) -> &str {
    as2::envelope::message_id_core(id)
}

impl MessageLog for MemoryLog {
    async fn create(&self, record: &MessageRecord) -> Result<Created> {
        let mut records = lock(&self.records);
        if let Some(r) = records.get(&record.id) {
            return Ok(Created::Exists(Box::new(r.clone())));
        }
        if record.direction == Direction::Inbox && !record.message_id.is_empty() {
            if let Some(r) = records.values().find(|r| {
                r.direction == Direction::Inbox
                    && r.station == record.station
                    && r.partner == record.partner
                    && core(&r.message_id) == core(&record.message_id)
            }) {
                return Ok(Created::Exists(Box::new(r.clone())));
            }
        }
        records.insert(record.id.clone(), record.clone());
        Ok(Created::New)
    }

    async fn get(&self, id: &str) -> Result<Option<MessageRecord>> {
        Ok(lock(&self.records).get(id).cloned())
    }

    async fn update(&self, record: &mut MessageRecord) -> Result<()> {
        if self.failing_updates.load(Ordering::SeqCst) {
            return Err(GatewayError::port("memory log", "unavailable"));
        }
        let mut records = lock(&self.records);
        let stored = records
            .get(&record.id)
            .ok_or_else(|| GatewayError::NotFound(record.id.clone()))?;
        let written = stored.revision == record.revision;
        let next = record.next_revision();
        if written {
            records.insert(next.id.clone(), next.clone());
        }
        apply_update(record, next, written)
    }

    async fn find_outbound(
        &self,
        station: &str,
        partner: &str,
        message_id: &str,
    ) -> Result<Option<MessageRecord>> {
        Ok(lock(&self.records)
            .values()
            .find(|r| {
                r.direction == Direction::Outbox
                    && r.station == station
                    && r.partner == partner
                    && core(&r.message_id) == core(message_id)
            })
            .cloned())
    }

    async fn query(&self, query: &RecordQuery) -> Result<Vec<MessageRecord>> {
        Ok(lock(&self.records)
            .values()
            .rev()
            .filter(|r| query.matches(r))
            .take(query.limit)
            .cloned()
            .collect())
    }
}

/// Stations and partnerships in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryDirectory {
    /// Stations by AS2 ID.
    pub stations: Arc<Mutex<HashMap<String, Station>>>,
    /// Partnerships by (station, partner).
    pub partnerships: Arc<Mutex<HashMap<(String, String), Partnership>>>,
}

impl MemoryDirectory {
    /// Adds a station.
    pub fn add_station(&self, s: Station) {
        lock(&self.stations).insert(s.as2_id.clone(), s);
    }

    /// Adds or replaces a partnership.
    pub fn add_partnership(&self, p: Partnership) {
        lock(&self.partnerships).insert((p.station.clone(), p.partner.clone()), p);
    }
}

impl PartnerDirectory for MemoryDirectory {
    async fn station(&self, as2_id: &str) -> Result<Option<Station>> {
        Ok(lock(&self.stations).get(as2_id).cloned())
    }

    async fn partnership(&self, station: &str, partner: &str) -> Result<Option<Partnership>> {
        Ok(lock(&self.partnerships)
            .get(&(station.to_string(), partner.to_string()))
            .cloned())
    }
}

/// Keys and certificates in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryKeys {
    /// Identities by alias.
    pub identities: Arc<Mutex<HashMap<String, Identity>>>,
    /// Certificates by alias (partner and TLS alike).
    pub certificates: Arc<Mutex<HashMap<String, X509>>>,
}

impl Keystore for MemoryKeys {
    async fn identity(&self, alias: &str) -> Result<Identity> {
        lock(&self.identities)
            .get(alias)
            .cloned()
            .ok_or_else(|| GatewayError::Config(format!("no key {alias:?}")))
    }

    async fn partner_certificate(&self, alias: &str) -> Result<X509> {
        lock(&self.certificates)
            .get(alias)
            .cloned()
            .ok_or_else(|| GatewayError::Config(format!("no certificate {alias:?}")))
    }

    async fn tls_certificate(&self, alias: &str) -> Result<X509> {
        self.partner_certificate(alias).await
    }
}

/// Secrets in memory.
#[derive(Debug, Clone, Default)]
pub struct MemorySecrets {
    /// Values by name.
    pub values: Arc<Mutex<HashMap<String, String>>>,
}

impl Secrets for MemorySecrets {
    async fn secret(&self, name: &str) -> Result<String> {
        lock(&self.values)
            .get(name)
            .cloned()
            .ok_or_else(|| GatewayError::Config(format!("no secret {name:?}")))
    }
}

type Handler = dyn Fn(&Posted) -> std::result::Result<HttpResponse, TransportError> + Send + Sync;

/// A request as a scripted partner received it: the body read whole.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The URL posted to.
    pub url: String,
    /// The request's headers.
    pub headers: as2::HeaderMap,
    /// The body as it arrived.
    pub body: Vec<u8>,
    /// Basic auth user and password.
    pub basic_auth: Option<(String, String)>,
}

/// A transport that hands each request to a function: a scripted partner.
#[derive(Clone)]
pub struct FnTransport {
    handler: Arc<Handler>,
    /// Every request made, in order.
    pub requests: Arc<Mutex<Vec<Posted>>>,
}

impl std::fmt::Debug for FnTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnTransport").finish_non_exhaustive()
    }
}

impl FnTransport {
    /// A transport answering with `handler`.
    pub fn new(
        handler: impl Fn(&Posted) -> std::result::Result<HttpResponse, TransportError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        FnTransport {
            handler: Arc::new(handler),
            requests: Arc::default(),
        }
    }
}

impl As2Transport for FnTransport {
    async fn post(
        &self,
        request: HttpRequest,
    ) -> std::result::Result<HttpResponse, TransportError> {
        let request = Posted {
            url: request.url,
            headers: request.headers,
            body: request
                .body
                .collect()
                .await
                .map_err(|e| TransportError::Io(e.to_string()))?,
            basic_auth: request.basic_auth,
        };
        let r = (self.handler)(&request);
        lock(&self.requests).push(request);
        r
    }
}

/// A job queue in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    jobs: Arc<Mutex<Vec<(Millis, Job)>>>,
}

impl MemoryQueue {
    /// Removes and returns the jobs due at `now`, earliest first.
    pub fn take_due(&self, now: Millis) -> Vec<Job> {
        let mut jobs = lock(&self.jobs);
        jobs.sort_by_key(|(at, _)| *at);
        let split = jobs
            .iter()
            .position(|(at, _)| *at > now)
            .unwrap_or(jobs.len());
        jobs.drain(..split).map(|(_, j)| j).collect()
    }

    /// Every queued job with its due time.
    pub fn pending(&self) -> Vec<(Millis, Job)> {
        lock(&self.jobs).clone()
    }
}

impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: Job, not_before: Millis) -> Result<()> {
        lock(&self.jobs).push((not_before, job));
        Ok(())
    }
}

/// A clock the test moves.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn at(at: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(at.0)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(self.0.load(Ordering::SeqCst))
    }

    async fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

/// [`Events`] kept in order, for tests to read.
#[derive(Debug, Clone, Default)]
pub struct MemoryEvents {
    told: Arc<Mutex<Vec<crate::events::Event>>>,
    /// While set, events are refused (as a bus that cannot be reached refuses them).
    pub refusing: Arc<std::sync::atomic::AtomicBool>,
    /// While set, it stands for a port that keeps nothing beyond the process (as counting in
    /// memory does); otherwise for a bus.
    pub forgets: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryEvents {
    /// Every event published so far.
    pub fn all(&self) -> Vec<crate::events::Event> {
        self.told.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Events for MemoryEvents {
    async fn publish(&self, event: crate::events::Event) -> bool {
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        self.told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
        true
    }

    fn keeps(&self) -> bool {
        !self.forgets.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Every port in memory (the partner a function, the clock moved by hand).
pub type MemoryPorts = PortSet<
    MemoryStore,
    MemoryDuplicates,
    MemoryLog,
    MemoryDirectory,
    MemoryKeys,
    MemorySecrets,
    FnTransport,
    MemoryQueue,
    ManualClock,
    MemoryEvents,
>;

impl MemoryPorts {
    /// Empty ports at time `now`, sending to `transport`.
    pub fn new(now: Millis, transport: FnTransport) -> Self {
        let clock = ManualClock::at(now);
        PortSet {
            store: MemoryStore::new(clock.clone()),
            duplicates: MemoryDuplicates::default(),
            log: MemoryLog::default(),
            directory: MemoryDirectory::default(),
            keys: MemoryKeys::default(),
            secrets: MemorySecrets::default(),
            transport,
            queue: MemoryQueue::default(),
            clock,
            events: MemoryEvents::default(),
        }
    }
}

/// The duplicate window's contract, for every adapter's tests to run against its own index
/// (memory here, SQLite, DynamoDB): a claim's window is the one in force when it was accepted,
/// so changing the setting moves no window already running. Panics on the first breach.
pub async fn check_window_fixed_at_acceptance<D: DuplicateIndex>(index: &D) {
    let send = SendKey::new("ALPHA", "BETA", "window.edi");
    let hour = std::time::Duration::from_secs(3600);
    let ask = |upload_id: &'static str, at: u64, hours: u32| ClaimRequest {
        upload_id,
        record_id: upload_id,
        at: Millis(1_795_845_423_007).plus(hour * at as u32),
        window: hour * hours,
    };
    let send = &send;
    let claim =
        |r: ClaimRequest<'static>| async move { index.claim(send, &r).await.expect("claim") };
    assert_eq!(claim(ask("v1", 0, 6)).await, Claim::Accepted);
    // The window became 1 hour: the upload accepted under 6 hours still holds its name.
    let Claim::Duplicate { record_id, .. } = claim(ask("v2", 2, 1)).await else {
        panic!("a shorter window cut short a running one");
    };
    assert_eq!(record_id, "v1");
    assert_eq!(claim(ask("v3", 6, 1)).await, Claim::Accepted);
    // The window became 12 hours: the upload accepted under 1 hour no longer holds its name.
    assert_eq!(claim(ask("v4", 7, 12)).await, Claim::Accepted);
    assert!(matches!(
        claim(ask("v5", 18, 12)).await,
        Claim::Duplicate { .. }
    ));
}

/// The message log's query contract, for every adapter's tests to run against its own log:
/// each filter of [`RecordQuery`] alone and together, newest first, and paging with `before`
/// through more records than one page. Panics on the first breach. Writes 30 records of its
/// own (station `QUERY`), so it can share a log with other tests.
pub async fn check_record_queries<L: MessageLog>(log: &L) {
    use crate::model::{MessageRecord, Status, StatusChange};
    let t0 = Millis(1_795_845_423_000);
    for n in 0..30u32 {
        let direction = if n % 3 == 0 {
            Direction::Inbox
        } else {
            Direction::Outbox
        };
        let status = match n % 4 {
            0 => Status::Received,
            1 => Status::Delivered,
            2 => Status::Failed,
            _ => Status::Sent,
        };
        let at = t0.plus(std::time::Duration::from_secs(60 * u64::from(n)));
        let mut r = MessageRecord::new(
            &format!("{}-{n:08}", at.compact()),
            direction,
            "QUERY",
            if n % 2 == 0 { "EVEN" } else { "ODD" },
            &format!("PO-{n}.x12"),
            StatusChange::new(at, status, None),
        );
        r.message_id = format!("<q-{n}@query>");
        log.create(&r).await.expect("create");
    }
    let ids = |q: RecordQuery| async move {
        let got = log.query(&q).await.expect("query");
        got.iter().map(|r| r.filename.clone()).collect::<Vec<_>>()
    };
    let all = RecordQuery::of(Some("QUERY"), None, 100);
    let newest: Vec<String> = (0..30).rev().map(|n| format!("PO-{n}.x12")).collect();
    assert_eq!(ids(all.clone()).await, newest, "newest first");
    let q = RecordQuery {
        status: Some(Status::Failed),
        ..RecordQuery::of(Some("QUERY"), Some("EVEN"), 100)
    };
    let failed: Vec<String> = (0..30)
        .rev()
        .filter(|n| n % 4 == 2)
        .map(|n| format!("PO-{n}.x12"))
        .collect();
    assert_eq!(ids(q).await, failed, "status and partner");
    let q = RecordQuery {
        direction: Some(Direction::Inbox),
        since: Some(t0.plus(std::time::Duration::from_secs(60 * 10))),
        until: Some(t0.plus(std::time::Duration::from_secs(60 * 20))),
        ..all.clone()
    };
    assert_eq!(
        ids(q).await,
        ["PO-18.x12", "PO-15.x12", "PO-12.x12"],
        "direction and time range"
    );
    let q = RecordQuery {
        message_id: Some("q-7@query".into()),
        ..RecordQuery::of(None, None, 10)
    };
    assert_eq!(ids(q).await, ["PO-7.x12"], "Message-ID without brackets");
    let q = RecordQuery {
        filename: Some("po-2".into()),
        ..all.clone()
    };
    assert_eq!(
        ids(q).await,
        [
            "PO-29.x12",
            "PO-28.x12",
            "PO-27.x12",
            "PO-26.x12",
            "PO-25.x12",
            "PO-24.x12",
            "PO-23.x12",
            "PO-22.x12",
            "PO-21.x12",
            "PO-20.x12",
            "PO-2.x12"
        ],
        "part of the file name, any case"
    );
    // Pages of 7, each from where the one before says the next starts, cover everything once.
    let mut seen = Vec::new();
    let mut before = None;
    for _ in 0..10 {
        let q = RecordQuery {
            before: before.clone(),
            ..RecordQuery::of(Some("QUERY"), None, 7)
        };
        let page = log.query(&q).await.expect("page");
        assert!(page.len() <= 7);
        seen.extend(page.iter().map(|r| r.filename.clone()));
        match q.next_page(&page) {
            Some(last) => before = Some(last.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, newest, "paging");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_window_is_fixed_at_acceptance() {
        check_window_fixed_at_acceptance(&MemoryDuplicates::default()).await;
    }

    #[tokio::test]
    async fn record_queries() {
        check_record_queries(&MemoryLog::default()).await;
    }
}
