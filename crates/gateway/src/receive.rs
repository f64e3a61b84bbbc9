//! Receiving: an HTTP POST of an AS2 message or an asynchronous receipt. The raw message and its
//! headers are stored before anything is parsed, so nothing received is ever lost.

use std::collections::BTreeMap;

use as2::mdn::{self, MdnOptions};
use as2::receive::{self, Envelope, StaticKeys};
use as2::{Disposition, HeaderMap};
use openssl::x509::X509;

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
use crate::layout::{self, Direction, MessagePaths};
use crate::model::{Job, MdnSummary, MessageRecord, Status, StatusChange};
use crate::ports::{Clock, Created, JobQueue, Keystore, MessageLog, ObjectStore, Ports};
use crate::send::capture;

/// The HTTP answer to a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpReply {
    fn text(status: u16, text: &str) -> Self {
        HttpReply {
            status,
            headers: [("Content-Type", "text/plain; charset=utf-8")]
                .into_iter()
                .collect(),
            body: format!("{text}\n").into_bytes(),
        }
    }

    fn mdn(headers: HeaderMap, body: Vec<u8>) -> Self {
        HttpReply {
            status: 200,
            headers,
            body,
        }
    }
}

/// Who is at the other end of an inbound request, as far as the transport can tell.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The TLS client certificate presented, when the request came over HTTPS with one.
    pub client_certificate: Option<X509>,
}

impl<P: Ports> Gateway<P> {
    /// Handles a POST to the AS2 endpoint: a message from a partner, or a receipt for one of ours.
    pub async fn on_post(&self, headers: &HeaderMap, body: &[u8]) -> Result<HttpReply> {
        self.on_post_from(&Peer::default(), headers, body).await
    }

    /// [`Gateway::on_post`] from `peer`: a partnership that names a TLS client certificate
    /// accepts messages only from a peer that presented it.
    pub async fn on_post_from(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<HttpReply> {
        if mdn::is_mdn(headers, body) {
            return self.on_async_mdn(headers, body).await;
        }
        let now = self.ports.clock().now();
        let folder = layout::new_folder(now);
        let store = self.ports.store();
        // A request that is refused before it is a message of a partnership is kept aside.
        let rejected = layout::rejected(&folder);
        let refuse = |status: u16, why: String| async move {
            store
                .put(&rejected, capture(headers, body), BTreeMap::new())
                .await?;
            Ok::<_, GatewayError>(HttpReply::text(status, &why))
        };
        let envelope = match Envelope::from_headers(headers) {
            Ok(e) => e,
            Err(e) => return refuse(400, format!("not an AS2 message: {e}")).await,
        };
        let loaded = match self.load(&envelope.to, &envelope.from).await {
            Ok(l) => l,
            Err(GatewayError::UnknownPartnership { station, partner }) => {
                let why = format!("no partnership between station {station} and partner {partner}");
                tracing::warn!(message_id = %envelope.message_id, %why, "message refused");
                return refuse(404, why).await;
            }
            Err(e) => return Err(e),
        };
        if let Some(why) = self.client_certificate_refusal(&loaded, peer, now).await? {
            tracing::warn!(message_id = %envelope.message_id, station = %envelope.to, partner = %envelope.from, %why, "message refused");
            return refuse(403, why).await;
        }

        // The raw message and its headers first: whatever happens next, they are kept.
        let paths = MessagePaths::new(&envelope.to, &envelope.from, Direction::Inbox, &folder)?;
        store
            .put(&paths.raw_message(), body.to_vec(), BTreeMap::new())
            .await?;
        store
            .put(&paths.headers(), headers.to_bytes(), BTreeMap::new())
            .await?;

        let mut record = MessageRecord::new(
            &folder,
            Direction::Inbox,
            &envelope.to,
            &envelope.from,
            "",
            StatusChange::new(
                now,
                Status::Received,
                Some("raw message and headers stored".into()),
            ),
        );
        record.message_id = envelope.message_id.clone();
        record.raw_key = Some(paths.raw_message());
        record.headers_key = Some(paths.headers());
        record.async_mdn_url = envelope.mdn.as_ref().and_then(|m| m.async_url.clone());
        if let Created::Exists(earlier) = self.ports.log().create(&record).await? {
            return self.answer_again(&envelope, &loaded, &earlier).await;
        }

        let keys = StaticKeys {
            identities: vec![loaded.identity.clone()],
            partner_certificates: vec![loaded.partner_cert.clone()],
        };
        let policy = loaded.policy(self.settings.max_decompressed_size);
        let (disposition, mic) = match receive::open(
            &envelope,
            headers,
            body,
            &keys,
            &policy,
            now.unix(),
        ) {
            Ok(received) => {
                let name = received
                    .filename
                    .clone()
                    .unwrap_or_else(|| "payload.bin".into());
                let key = paths.payload(&name)?;
                let size = received.payload.len() as u64;
                store.put(&key, received.payload, BTreeMap::new()).await?;
                let style = loaded.name_style();
                let mic = received.mic.to_field(style);
                let layers: Vec<String> = received.layers.iter().map(|l| l.to_string()).collect();
                self.save(&mut record, |r| {
                    r.filename = name.clone();
                    r.size = size;
                    r.payload_key = Some(key.clone());
                    r.mic = Some(mic.clone());
                    let detail = if layers.is_empty() {
                        "plain".to_string()
                    } else {
                        layers.join("; ")
                    };
                    r.set_status(
                        Status::Received,
                        now,
                        Some(format!("delivered to {key} ({detail})")),
                    );
                })
                .await?;
                tracing::info!(message_id = %envelope.message_id, station = %envelope.to, partner = %envelope.from, %key, "received");
                (Disposition::Processed, Some(received.mic))
            }
            Err(e) => {
                let disposition = e.disposition();
                let why = e.to_string();
                self.save(&mut record, |r| {
                    r.set_status(Status::Rejected, now, Some(format!("{disposition}: {why}")))
                })
                .await?;
                tracing::warn!(message_id = %envelope.message_id, station = %envelope.to, partner = %envelope.from, error = %why, "message refused");
                (disposition, None)
            }
        };

        let Some(request) = &envelope.mdn else {
            return Ok(HttpReply::text(200, "received; no receipt was requested"));
        };
        let opts = loaded.mdn_options(&self.settings.reporting_ua);
        let receipt_id = as2::message::new_message_id(&loaded.message_id_domain, now.unix());
        let receipt = mdn::build(
            &envelope,
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
        let summary = MdnSummary {
            disposition: disposition.to_field(),
            signed: receipt.signed,
            mic: if mic.is_some() {
                "sent".into()
            } else {
                "none".into()
            },
            key,
        };
        self.save(&mut record, |r| r.mdn = Some(summary.clone()))
            .await?;
        if request.async_url.is_some() {
            self.ports
                .queue()
                .enqueue(
                    Job::SendMdn {
                        id: record.id.clone(),
                        attempt: 0,
                    },
                    now,
                )
                .await?;
            return Ok(HttpReply::text(
                200,
                "received; the receipt will be sent asynchronously",
            ));
        }
        Ok(HttpReply::mdn(receipt.headers, receipt.body))
    }

    /// Why `peer` may not send for this partnership, if it may not: the partnership names a TLS
    /// client certificate (alias in `AS2/keystore/https.jks`) and the peer presented none,
    /// another one, or one outside its validity.
    async fn client_certificate_refusal(
        &self,
        loaded: &crate::gateway::Loaded,
        peer: &Peer,
        now: crate::time::Millis,
    ) -> Result<Option<String>> {
        let p = &loaded.partnership;
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
        let der = |c: &X509| c.to_der().unwrap_or_default();
        if der(presented) != der(&want) {
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

    /// A Message-ID this partner sent before: the file is not delivered again; the earlier
    /// receipt is returned (or re-sent), or a duplicate-document warning if there is none yet.
    async fn answer_again(
        &self,
        envelope: &Envelope,
        loaded: &crate::gateway::Loaded,
        earlier: &MessageRecord,
    ) -> Result<HttpReply> {
        tracing::info!(message_id = %envelope.message_id, earlier = %earlier.id, "message received again");
        if let Some(summary) = &earlier.mdn {
            if let Some(object) = self.ports.store().get(&summary.key).await? {
                if earlier.async_mdn_url.is_some() {
                    let now = self.ports.clock().now();
                    self.ports
                        .queue()
                        .enqueue(
                            Job::SendMdn {
                                id: earlier.id.clone(),
                                attempt: 0,
                            },
                            now,
                        )
                        .await?;
                    return Ok(HttpReply::text(
                        200,
                        "received again; the earlier receipt will be sent again",
                    ));
                }
                let (headers, at) =
                    as2::mime::parse_header_block(&object.data, &Default::default())?;
                return Ok(HttpReply::mdn(headers, object.data[at..].to_vec()));
            }
        }
        if envelope.mdn.is_none() {
            return Ok(HttpReply::text(200, "received again; not delivered twice"));
        }
        let now = self.ports.clock().now();
        let opts: MdnOptions = loaded.mdn_options(&self.settings.reporting_ua);
        let id = as2::message::new_message_id(&loaded.message_id_domain, now.unix());
        let receipt = mdn::build(
            envelope,
            &Disposition::duplicate_document(),
            None,
            &opts,
            &id,
            now.unix(),
        )?;
        Ok(HttpReply::mdn(receipt.headers, receipt.body))
    }

    /// An asynchronous receipt for a message we sent.
    async fn on_async_mdn(&self, headers: &HeaderMap, body: &[u8]) -> Result<HttpReply> {
        let now = self.ports.clock().now();
        let store = self.ports.store();
        let folder = layout::new_folder(now);
        let unmatched = |why: String| async move {
            store
                .put(
                    &layout::unmatched_mdn(&folder),
                    capture(headers, body),
                    BTreeMap::new(),
                )
                .await?;
            tracing::warn!(%why, "receipt not matched");
            Ok::<_, GatewayError>(HttpReply::text(400, &why))
        };
        // The receipt's AS2-From is the partner, its AS2-To our station.
        let (Some(partner), Some(station)) = (headers.get("AS2-From"), headers.get("AS2-To"))
        else {
            return unmatched("a receipt without AS2-From and AS2-To".into()).await;
        };
        let (partner, station) = (
            as2::message::unquote_as2_id(partner),
            as2::message::unquote_as2_id(station),
        );
        let unverified = match mdn::parse(headers, body, None, None, &Default::default()) {
            Ok(m) => m,
            Err(e) => return unmatched(format!("not a readable receipt: {e}")).await,
        };
        let original = as2::receive::message_id_core(&unverified.original_message_id).to_string();
        let Some(mut record) = self
            .ports
            .log()
            .find_outbound(&station, &partner, &original)
            .await?
        else {
            return unmatched(format!(
                "no message {original} was sent from {station} to {partner}"
            ))
            .await;
        };
        let loaded = match self.load(&station, &partner).await {
            Ok(l) => l,
            Err(e) => return unmatched(e.to_string()).await,
        };
        if record.mdn.is_some() && record.status != Status::AwaitingMdn {
            return Ok(HttpReply::text(
                200,
                "a receipt for this message was already received",
            ));
        }
        match self.take_mdn(&mut record, &loaded, headers, body).await? {
            Ok(status) => Ok(HttpReply::text(
                200,
                &format!("receipt accepted; message {original} is {status}"),
            )),
            Err(why) => Ok(HttpReply::text(400, &why)),
        }
    }
}
