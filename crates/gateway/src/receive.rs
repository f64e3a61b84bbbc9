//! Receiving: an HTTP POST of an AS2 message or an asynchronous receipt. The raw message and its
//! headers are stored before anything is parsed, so nothing received is ever lost.

use std::collections::BTreeMap;
use std::time::Duration;

use as2::envelope::Envelope;
use as2::mdn::{self, MdnOptions};
use as2::receive::{self, StaticKeys};
use as2::receive_stream::OpenStream;
use as2::{Disposition, HeaderMap};
use openssl::x509::X509;

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
use crate::layout::{self, capture, redacted, rejected_capture, Direction, MessagePaths};
use crate::model::{Job, MdnMic, MdnSummary, MessageRecord, Status, StatusChange};
use crate::ports::{
    Clock, Created, HttpResponse, JobQueue, Keystore, MessageLog, ObjectReader, ObjectStore,
    ObjectWriter as _, PartnerDirectory, Ports,
};

/// What a received message came to, before it is recorded.
enum Outcome {
    Delivered {
        name: String,
        size: u64,
        key: String,
        detail: String,
    },
    Refused(String),
}

impl HttpResponse {
    /// The answer when receiving failed for a passing reason (storage, database): 503 and
    /// `Retry-After`, with nothing of what failed (that goes to the log).
    pub fn unavailable() -> Self {
        Self::retry_later(
            60,
            "the gateway cannot receive this message just now; send it again later",
        )
    }

    /// 503 with `Retry-After`: the partner should send again (same Message-ID) later.
    pub fn retry_later(seconds: u32, text: &str) -> Self {
        let mut r = Self::text(503, text);
        r.headers.append("Retry-After", seconds.to_string());
        r
    }

    pub(crate) fn text(status: u16, text: &str) -> Self {
        HttpResponse {
            status,
            headers: [("Content-Type", "text/plain; charset=utf-8")]
                .into_iter()
                .collect(),
            body: format!("{text}\n").into_bytes(),
        }
    }

    fn mdn(headers: HeaderMap, body: Vec<u8>) -> Self {
        HttpResponse {
            status: 200,
            headers,
            body,
        }
    }
}

/// A request's body as the transport hands it over.
enum InboundBody<'a, R> {
    /// Read whole.
    Bytes(&'a [u8]),
    /// Too large to hold: read once, as the raw message is stored, and opened from the store.
    Reader(R),
}

/// The body of a message being received: in memory, or stored as the raw message under `key`.
enum Inbound<'a> {
    Bytes(&'a [u8]),
    Stored(String),
}

/// How much of a stored message the streaming opener is given at a time.
const OPEN_SLICE: usize = 16 * 1024;

/// What opening a message into the inbox came to.
struct Delivered {
    name: String,
    size: u64,
    key: String,
    layers: Vec<as2::Layer>,
    mic: as2::mic::Mic,
}

/// Who is at the other end of an inbound request, as far as the transport can tell.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The TLS client certificate presented, when the request came over HTTPS with one.
    pub client_certificate: Option<X509>,
}

impl<P: Ports> Gateway<P> {
    /// Handles a POST to the AS2 endpoint: a message from a partner, or a receipt for one of ours.
    pub async fn on_post(&self, headers: &HeaderMap, body: &[u8]) -> Result<HttpResponse> {
        self.on_post_from(&Peer::default(), headers, body).await
    }

    /// [`Gateway::on_post`] from `peer`: a partnership that names a TLS client certificate
    /// accepts messages only from a peer that presented it.
    pub async fn on_post_from(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<HttpResponse> {
        if mdn::is_mdn(headers, body) {
            return self.on_async_mdn(headers, body).await;
        }
        let body = InboundBody::<<P::Store as ObjectStore>::Reader>::Bytes(body);
        self.receive(peer, headers, body).await
    }

    /// [`Gateway::on_post_from`] for a body read as it comes (one too large to hold): it is
    /// stored as the raw message as it is read, then opened from the store a part at a time,
    /// its payload written to the inbox in parts and put there only once the message verified.
    pub async fn on_post_streamed<R: ObjectReader>(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        mut body: R,
    ) -> Result<HttpResponse> {
        // A receipt is small, and its first part says it is one.
        let first = body.next().await?.unwrap_or_default();
        if mdn::is_mdn(headers, &first) {
            let mut whole = first;
            while let Some(part) = body.next().await? {
                whole.extend_from_slice(&part);
            }
            return self.on_async_mdn(headers, &whole).await;
        }
        self.receive(
            peer,
            headers,
            InboundBody::Reader(Prefixed(Some(first), body)),
        )
        .await
    }

    async fn receive<R: ObjectReader>(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        body: InboundBody<'_, R>,
    ) -> Result<HttpResponse> {
        let now = self.ports.clock().now();
        let folder = layout::new_folder(now);
        let store = self.ports.store();
        // A request that is refused before it is a message of a partnership is kept aside (a
        // body too large to hold, by its headers only).
        let kept: &[u8] = match &body {
            InboundBody::Bytes(b) => b,
            InboundBody::Reader(_) => b"",
        };
        let refuse = |status: u16, why: String| self.refuse(status, why, headers, kept);
        let envelope = match Envelope::from_headers(headers) {
            Ok(e) => e,
            Err(e) => return refuse(400, format!("not an AS2 message: {e}")).await,
        };
        let agreement = match self.agreement(&envelope.to, &envelope.from).await {
            Ok(l) => l,
            Err(GatewayError::UnknownPartnership { station, partner }) => {
                let why = format!("no partnership between station {station} and partner {partner}");
                tracing::warn!(message_id = %envelope.message_id, %why, "message refused");
                return refuse(404, why).await;
            }
            Err(e) => return Err(e),
        };
        if let Some(why) = self
            .client_certificate_refusal(&agreement, peer, now)
            .await?
        {
            tracing::warn!(message_id = %envelope.message_id, station = %envelope.to, partner = %envelope.from, %why, "message refused");
            return refuse(403, why).await;
        }

        // The raw message and its headers first: whatever happens next, they are kept.
        let paths = MessagePaths::new(&envelope.to, &envelope.from, Direction::Inbox, &folder)?;
        let kept_headers = redacted(headers, &agreement.partnership.secret_headers).to_bytes();
        let body = match body {
            InboundBody::Bytes(b) => {
                store
                    .put_all(vec![
                        (paths.raw_message(), b.to_vec()),
                        (paths.headers(), kept_headers),
                    ])
                    .await?;
                Inbound::Bytes(b)
            }
            InboundBody::Reader(mut reader) => {
                let mut raw = store.writer(&paths.raw_message(), BTreeMap::new()).await?;
                while let Some(part) = reader.next().await? {
                    raw.write(&part).await?;
                }
                raw.finish().await?;
                store
                    .put(&paths.headers(), kept_headers, BTreeMap::new())
                    .await?;
                Inbound::Stored(paths.raw_message())
            }
        };
        self.settings.failpoints.hit("receive.stored-raw")?;

        // The record (and with it the Message-ID) is taken before the message is opened, but
        // says `receiving`, with a lease, until the payload and the receipt are stored.
        let mut record = MessageRecord::new(
            &folder,
            Direction::Inbox,
            &envelope.to,
            &envelope.from,
            "",
            StatusChange::new(
                now,
                Status::Receiving,
                Some("raw message and headers stored".into()),
            ),
        );
        record.message_id = envelope.message_id.clone();
        record.raw_key = Some(paths.raw_message());
        record.headers_key = Some(paths.headers());
        record.async_mdn_url = envelope.mdn.as_ref().and_then(|m| m.async_url.clone());
        record.lease_until = Some(now.plus(self.settings.receive_lease));
        if let Created::Exists(earlier) = self.ports.log().create(&record).await? {
            return self
                .received_before(&envelope, &agreement, *earlier, &paths, headers, &body)
                .await;
        }
        self.settings.failpoints.hit("receive.took-id")?;
        self.complete_receive(record, &envelope, &agreement, headers, &body)
            .await
    }

    /// Opens a message whose record says `receiving`, stores its payload and its receipt, then
    /// records the outcome in one write (`received` or `rejected`, with the payload's key and
    /// the receipt's), and answers. Whatever fails before that write leaves the record
    /// `receiving` with its lease given up, so the partner's retry processes the message again
    /// (into the same inbox folder: one file, never two).
    async fn complete_receive(
        &self,
        mut record: MessageRecord,
        envelope: &Envelope,
        agreement: &crate::gateway::Agreement,
        headers: &HeaderMap,
        body: &Inbound<'_>,
    ) -> Result<HttpResponse> {
        match self
            .store_outcome(&mut record, envelope, agreement, headers, body)
            .await
        {
            Ok(reply) => Ok(reply),
            Err(e) => {
                let now = self.ports.clock().now();
                let why = format!("attempt given up: {e}");
                let _ = self
                    .save(&mut record, |r| {
                        r.lease_until = Some(now);
                        r.set_status(r.status, now, Some(why.clone()));
                    })
                    .await;
                Err(e)
            }
        }
    }

    async fn store_outcome(
        &self,
        record: &mut MessageRecord,
        envelope: &Envelope,
        agreement: &crate::gateway::Agreement,
        headers: &HeaderMap,
        body: &Inbound<'_>,
    ) -> Result<HttpResponse> {
        let now = self.ports.clock().now();
        let store = self.ports.store();
        let paths = record.paths()?;
        let keys = StaticKeys {
            identities: vec![agreement.identity.clone()],
            partner_certificates: vec![agreement.partner_cert.clone()],
        };
        let policy = agreement.policy(self.settings.max_decompressed_size);
        let style = agreement.name_style();
        // What the record will say, once everything is stored.
        let (disposition, mic, outcome) = match self
            .open_into_inbox(&paths, envelope, headers, body, &keys, &policy, now)
            .await?
        {
            Ok(d) => {
                self.settings.failpoints.hit("receive.stored-payload")?;
                let layers: Vec<String> = d.layers.iter().map(|l| l.to_string()).collect();
                let detail = if layers.is_empty() {
                    "plain".to_string()
                } else {
                    layers.join("; ")
                };
                let outcome = Outcome::Delivered {
                    name: d.name,
                    size: d.size,
                    detail: format!("delivered to {} ({detail})", d.key),
                    key: d.key,
                };
                (Disposition::Processed, Some(d.mic), outcome)
            }
            Err(e) => {
                let disposition = e.disposition();
                let why = format!("{disposition}: {e}");
                (disposition, None, Outcome::Refused(why))
            }
        };

        let receipt = match &envelope.mdn {
            None => None,
            Some(_) => {
                let opts = agreement.mdn_options(&self.settings.reporting_ua);
                let receipt_id =
                    as2::envelope::new_message_id(&agreement.message_id_domain, now.unix());
                let receipt = mdn::build(
                    envelope,
                    &disposition,
                    mic.as_ref(),
                    &opts,
                    &receipt_id,
                    now.unix(),
                )?;
                let key = paths.mdn();
                store
                    .put(
                        &key,
                        capture(&receipt.headers, &receipt.body),
                        BTreeMap::new(),
                    )
                    .await?;
                self.settings.failpoints.hit("receive.stored-receipt")?;
                let summary = MdnSummary {
                    disposition: disposition.to_field(),
                    signed: receipt.signed,
                    mic: if mic.is_some() {
                        MdnMic::Sent
                    } else {
                        MdnMic::NotSent
                    },
                    key,
                };
                Some((receipt, summary))
            }
        };

        let mic_field = mic.as_ref().map(|m| m.to_field(style));
        let summary = receipt.as_ref().map(|(_, s)| s.clone());
        self.save(record, |r| {
            r.lease_until = None;
            r.mdn = summary.clone();
            match &outcome {
                Outcome::Delivered {
                    name,
                    size,
                    key,
                    detail,
                } => {
                    r.filename = name.clone();
                    r.size = *size;
                    r.payload_key = Some(key.clone());
                    r.mic = mic_field.clone();
                    r.set_status(Status::Received, now, Some(detail.clone()));
                }
                Outcome::Refused(why) => r.set_status(Status::Rejected, now, Some(why.clone())),
            }
        })
        .await?;
        if !matches!(record.status, Status::Received | Status::Rejected) {
            return Err(GatewayError::Conflict(format!(
                "record {} moved on while it was being received",
                record.id
            )));
        }
        self.settings.failpoints.hit("receive.recorded")?;

        let Some((receipt, _)) = receipt else {
            return Ok(HttpResponse::text(
                200,
                "received; no receipt was requested",
            ));
        };
        if receipt.async_url.is_some() {
            self.queue_async_receipt(&record.id).await?;
            return Ok(HttpResponse::text(
                200,
                "received; the receipt will be sent asynchronously",
            ));
        }
        Ok(HttpResponse::mdn(receipt.headers, receipt.body))
    }

    /// Opens the message and puts its payload in the inbox; the inner error is why the message
    /// is refused (what its receipt says). The message is read a part at a time (a stored body
    /// from the store) and the payload written in parts, under its name only once the message
    /// verified: an inflating payload is never held whole either. What only the in-memory opener
    /// can check (a signature without signed attributes, or one whose digest is not the micalg
    /// declared) is opened in memory when the body is.
    #[allow(clippy::too_many_arguments)]
    async fn open_into_inbox(
        &self,
        paths: &MessagePaths,
        envelope: &Envelope,
        headers: &HeaderMap,
        body: &Inbound<'_>,
        keys: &StaticKeys,
        policy: &receive::Policy,
        now: crate::time::Millis,
    ) -> Result<std::result::Result<Delivered, as2::Error>> {
        let store = self.ports.store();
        let parts = match body {
            Inbound::Bytes(b) => Parts::Bytes(Some(b)),
            Inbound::Stored(key) => match store.reader(key).await? {
                Some((_, raw)) => Parts::Reader(raw),
                None => return Err(GatewayError::NotFound(key.clone())),
            },
        };
        let streamed = self
            .open_parts(paths, envelope, headers, parts, keys, policy, now)
            .await?;
        let (Err(as2::Error::NotStreamable(why)), Inbound::Bytes(body)) = (&streamed, body) else {
            return Ok(streamed);
        };
        tracing::debug!(message_id = %envelope.message_id, %why, "opened in memory");
        let received = match receive::open(envelope, headers, body, keys, policy, now.unix()) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let name = payload_name(&received.filename);
        let key = paths.payload(&name)?;
        let size = received.payload.len() as u64;
        store.put(&key, received.payload, BTreeMap::new()).await?;
        Ok(Ok(Delivered {
            name,
            size,
            key,
            layers: received.layers,
            mic: received.mic,
        }))
    }

    /// [`Self::open_into_inbox`] with the streaming opener, the message read from `raw`.
    #[allow(clippy::too_many_arguments)]
    async fn open_parts<R: ObjectReader>(
        &self,
        paths: &MessagePaths,
        envelope: &Envelope,
        headers: &HeaderMap,
        mut raw: Parts<'_, R>,
        keys: &StaticKeys,
        policy: &receive::Policy,
        now: crate::time::Millis,
    ) -> Result<std::result::Result<Delivered, as2::Error>> {
        let store = self.ports.store();
        let name_of = payload_name;
        let mut opener = match OpenStream::new(envelope, headers, keys, policy, now.unix()) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        // Created once the payload's name is known (before its first byte comes out).
        let mut payload: Option<(String, String, <P::Store as ObjectStore>::Writer)> = None;
        let mut out = Vec::new();
        while let Some(part) = raw.next().await? {
            // Fed a slice at a time: what inflates from one is at most zlib's ratio (about a
            // thousand) times its size, so the payload bytes held at once stay bounded.
            for slice in part.chunks(OPEN_SLICE) {
                out.clear();
                if let Err(e) = opener.update(slice, &mut out) {
                    return Ok(Err(e));
                }
                if payload.is_none() {
                    if let Some(info) = opener.payload() {
                        let name = name_of(&info.filename);
                        let key = paths.payload(&name)?;
                        let writer = store.writer(&key, BTreeMap::new()).await?;
                        payload = Some((name, key, writer));
                    }
                }
                if let Some((_, _, w)) = &mut payload {
                    w.write(&out).await?;
                }
            }
        }
        out.clear();
        let opened = match opener.finish(&mut out) {
            Ok(o) => o,
            // The payload written so far is dropped with its writer: nothing reaches the inbox.
            Err(e) => return Ok(Err(e)),
        };
        let (name, key, mut writer) = match payload {
            Some(p) => p,
            None => {
                let name = name_of(&opened.payload.filename);
                let key = paths.payload(&name)?;
                let writer = store.writer(&key, BTreeMap::new()).await?;
                (name, key, writer)
            }
        };
        writer.write(&out).await?;
        writer.finish().await?;
        Ok(Ok(Delivered {
            name,
            size: opened.size,
            key,
            layers: opened.layers,
            mic: opened.mic,
        }))
    }

    /// A Message-ID the partner sent before. Received (or refused) already: the earlier receipt
    /// is answered and nothing is delivered twice. Still being received by another attempt:
    /// wait for it (bounded) and answer its receipt. Taken by an attempt that died or gave up
    /// (its lease is over): this copy takes over and is processed into the earlier record.
    async fn received_before(
        &self,
        envelope: &Envelope,
        agreement: &crate::gateway::Agreement,
        mut earlier: MessageRecord,
        this_copy: &MessagePaths,
        headers: &HeaderMap,
        body: &Inbound<'_>,
    ) -> Result<HttpResponse> {
        let clock = self.ports.clock();
        let give_up = clock.now().plus(self.settings.duplicate_wait);
        loop {
            if earlier.status != Status::Receiving {
                self.tell_if_untold(&mut earlier).await;
                return self.answer_again(envelope, agreement, &earlier).await;
            }
            let now = clock.now();
            if earlier.lease_until.is_none_or(|l| l <= now) {
                let mut taken = earlier.clone();
                taken.lease_until = Some(now.plus(self.settings.receive_lease));
                taken.raw_key = Some(this_copy.raw_message());
                taken.headers_key = Some(this_copy.headers());
                taken.set_status(
                    Status::Receiving,
                    now,
                    Some(format!(
                        "received again ({}): the earlier attempt did not finish",
                        this_copy.raw_message()
                    )),
                );
                match self.ports.log().update(&mut taken).await {
                    Ok(()) => {
                        tracing::info!(id = %taken.id, message_id = %taken.message_id, "taking over a receive that did not finish");
                        return self
                            .complete_receive(taken, envelope, agreement, headers, body)
                            .await;
                    }
                    Err(GatewayError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            } else if now >= give_up {
                return Ok(HttpResponse::retry_later(
                    30,
                    "this message is being received by another request; try again shortly",
                ));
            } else {
                clock.sleep(Duration::from_millis(200)).await;
            }
            earlier = self
                .ports
                .log()
                .get(&earlier.id)
                .await?
                .ok_or_else(|| GatewayError::NotFound(format!("record {}", earlier.id)))?;
        }
    }

    /// Finishes a receive that a crash interrupted (record `receiving`, raw message stored): the
    /// stored message is opened, its payload and receipt stored, an asynchronous receipt queued.
    /// A synchronous receipt waits for the partner's retry, which is answered with it.
    pub async fn resume_receive(&self, id: &str) -> Result<Status> {
        let Some(record) = self.ports.log().get(id).await? else {
            return Err(GatewayError::NotFound(format!("record {id}")));
        };
        if record.status != Status::Receiving {
            return Ok(record.status);
        }
        let store = self.ports.store();
        let read = |key: &Option<String>| {
            let key = key.clone().unwrap_or_default();
            async move {
                store
                    .get(&key)
                    .await?
                    .ok_or_else(|| GatewayError::NotFound(key.clone()))
            }
        };
        let headers = read(&record.headers_key).await?;
        let (headers, _) = as2::mime::parse_header_block(&headers.data, &Default::default())?;
        let envelope = Envelope::from_headers(&headers).map_err(GatewayError::from)?;
        let agreement = self.agreement(&envelope.to, &envelope.from).await?;
        let raw_key = record.raw_key.clone().unwrap_or_default();
        let size = store
            .head(&raw_key)
            .await?
            .ok_or_else(|| GatewayError::NotFound(raw_key.clone()))?
            .size;
        if size > self.settings.stream_above {
            let body = Inbound::Stored(raw_key);
            self.complete_receive(record, &envelope, &agreement, &headers, &body)
                .await?;
        } else {
            let raw = read(&record.raw_key).await?;
            let body = Inbound::Bytes(&raw.data);
            self.complete_receive(record, &envelope, &agreement, &headers, &body)
                .await?;
        }
        Ok(self
            .ports
            .log()
            .get(id)
            .await?
            .map_or(Status::Receiving, |r| r.status))
    }

    /// What can be said of a request from its headers alone, before its body is read: refused
    /// at once (and its headers kept in `_rejected`) when it is not an AS2 request or names no
    /// partnership of ours, so nobody can make the gateway read a large body for nothing.
    /// `None`: read the body and hand it to [`Gateway::on_post_from`].
    pub async fn precheck(&self, headers: &HeaderMap) -> Result<Option<HttpResponse>> {
        // Messages and asynchronous receipts alike name the partner in AS2-From and our
        // station in AS2-To; the rest of the headers is for the full check.
        let id = |name: &'static str| {
            headers
                .get(name)
                .map(as2::envelope::unquote_as2_id)
                .filter(|v| !v.trim().is_empty())
                .ok_or(name)
        };
        let refusal = match (id("AS2-From"), id("AS2-To")) {
            (Err(name), _) | (_, Err(name)) => Some((
                400,
                format!("not an AS2 message: the {name} header is missing"),
            )),
            (Ok(from), Ok(to)) => {
                let dir = self.ports.directory();
                let known = dir.station(&to).await?.is_some()
                    && dir.partnership(&to, &from).await?.is_some();
                (!known).then(|| {
                    let why = format!("no partnership between station {to} and partner {from}");
                    tracing::warn!(
                        message_id = headers.get("Message-ID").unwrap_or(""),
                        %why,
                        "request refused before its body was read"
                    );
                    (404, why)
                })
            }
        };
        match refusal {
            Some((status, why)) => Ok(Some(self.refuse(status, why, headers, b"").await?)),
            None => Ok(None),
        }
    }

    /// Answers `status` with `why`, keeping the request in `_rejected` (see [`rejected_capture`]).
    async fn refuse(
        &self,
        status: u16,
        why: String,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<HttpResponse> {
        let key = layout::rejected(&layout::new_folder(self.ports.clock().now()));
        self.ports
            .store()
            .put(&key, rejected_capture(headers, body), BTreeMap::new())
            .await?;
        Ok(HttpResponse::text(status, &why))
    }

    /// Removes what `_rejected` holds from longer ago than `older_than` (refused requests are
    /// kept for a while to look at, not for ever); returns how many.
    pub async fn purge_rejected(&self, older_than: Duration) -> Result<usize> {
        let store = self.ports.store();
        let now = self.ports.clock().now();
        let mut n = 0;
        for prefix in [layout::REJECTED, layout::UNMATCHED_MDN] {
            for (key, meta) in store.list(prefix).await? {
                if now.since(meta.modified) > older_than {
                    store.delete(&key, meta.version.as_deref()).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Why `peer` may not send for this partnership, if it may not: the partnership names a TLS
    /// client certificate (alias in `AS2/keystore/https.jks`) and the peer presented none,
    /// another one, or one outside its validity.
    async fn client_certificate_refusal(
        &self,
        agreement: &crate::gateway::Agreement,
        peer: &Peer,
        now: crate::time::Millis,
    ) -> Result<Option<String>> {
        let p = &agreement.partnership;
        let Some(alias) = &p.client_certificate_alias else {
            return Ok(None);
        };
        let partner = &p.partner;
        let Some(presented) = &peer.client_certificate else {
            return Ok(Some(format!(
                "partner {partner} must send over HTTPS with its TLS client certificate; none was presented"
            )));
        };
        let want = self.ports.keys().tls_certificate(alias).await?;
        if presented != &want {
            return Ok(Some(format!(
                "the TLS client certificate presented ({}) is not partner {partner}'s",
                as2::keys::subject_name(presented)
            )));
        }
        if let Err(e) = as2::keys::check_validity(presented, now.unix()) {
            return Ok(Some(format!(
                "partner {partner}'s TLS client certificate is not valid now: {e}"
            )));
        }
        Ok(None)
    }

    /// Queues the first attempt at POSTing record `id`'s receipt to the URL its sender asked for.
    async fn queue_async_receipt(&self, id: &str) -> Result<()> {
        let now = self.ports.clock().now();
        let job = Job::SendMdn {
            id: id.to_string(),
            attempt: 0,
        };
        self.ports.queue().enqueue(job, now).await
    }

    /// A Message-ID this partner sent before: the file is not delivered again; the earlier
    /// receipt is returned (or re-sent), or a duplicate-document warning if there is none yet.
    async fn answer_again(
        &self,
        envelope: &Envelope,
        agreement: &crate::gateway::Agreement,
        earlier: &MessageRecord,
    ) -> Result<HttpResponse> {
        tracing::info!(message_id = %envelope.message_id, earlier = %earlier.id, "message received again");
        if let Some(summary) = &earlier.mdn {
            if let Some(object) = self.ports.store().get(&summary.key).await? {
                if earlier.async_mdn_url.is_some() {
                    self.queue_async_receipt(&earlier.id).await?;
                    return Ok(HttpResponse::text(
                        200,
                        "received again; the earlier receipt will be sent again",
                    ));
                }
                let (headers, at) =
                    as2::mime::parse_header_block(&object.data, &Default::default())?;
                return Ok(HttpResponse::mdn(headers, object.data[at..].to_vec()));
            }
        }
        if envelope.mdn.is_none() {
            return Ok(HttpResponse::text(
                200,
                "received again; not delivered twice",
            ));
        }
        let now = self.ports.clock().now();
        let opts: MdnOptions = agreement.mdn_options(&self.settings.reporting_ua);
        let id = as2::envelope::new_message_id(&agreement.message_id_domain, now.unix());
        let receipt = mdn::build(
            envelope,
            &Disposition::duplicate_document(),
            None,
            &opts,
            &id,
            now.unix(),
        )?;
        Ok(HttpResponse::mdn(receipt.headers, receipt.body))
    }
}

/// The name a payload is stored under.
fn payload_name(filename: &Option<String>) -> String {
    filename.clone().unwrap_or_else(|| "payload.bin".into())
}

/// A message's bytes a part at a time: one part in memory, or read from the store.
enum Parts<'a, R> {
    Bytes(Option<&'a [u8]>),
    Reader(R),
}

impl<R: ObjectReader> Parts<'_, R> {
    async fn next(&mut self) -> Result<Option<std::borrow::Cow<'_, [u8]>>> {
        match self {
            Parts::Bytes(b) => Ok(b.take().map(std::borrow::Cow::Borrowed)),
            Parts::Reader(r) => Ok(r.next().await?.map(std::borrow::Cow::Owned)),
        }
    }
}

/// A reader that hands out a part already taken from it first.
struct Prefixed<R>(Option<Vec<u8>>, R);

impl<R: ObjectReader> ObjectReader for Prefixed<R> {
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        match self.0.take() {
            Some(first) if !first.is_empty() => Ok(Some(first)),
            _ => self.1.next().await,
        }
    }
}
