//! Sending: one attempt per `Send` job, receipts (sync in the response, async later), retries
//! with backoff, and every state change in the message log.

use std::collections::BTreeMap;
use std::time::Duration;

use as2::message::{self, Payload};
use as2::message_stream::BuildStream;
use as2::HeaderMap;

use crate::error::{GatewayError, Result};
use crate::gateway::{Agreement, Gateway};
use crate::model::{Job, MdnMode, MessageRecord, Status};
use crate::ports::{
    byte_stream, As2Transport, Body, Clock, HttpRequest, JobQueue, Keystore, MessageLog,
    ObjectReader as _, ObjectStore, ObjectWriter as _, Ports, Secrets, TransportError,
};
use crate::time::Millis;

/// What one send attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Nothing to do: the message is not waiting to be sent (done, or another worker has it).
    Skipped(Status),
    /// Sent, or failed for good: the record has the final or awaiting status.
    Done {
        /// The record's status now.
        status: Status,
        /// The detail of that status (why it failed, what the receipt said).
        reason: String,
        /// The message's Message-ID.
        message_id: String,
    },
    /// The attempt failed and another is queued.
    Retrying {
        /// When the next attempt is due.
        at: Millis,
        /// Why the attempt failed.
        reason: String,
    },
}

impl SendOutcome {
    /// Done, as `record` now says.
    fn done(record: &MessageRecord) -> SendOutcome {
        SendOutcome::Done {
            status: record.status,
            reason: record.last_detail().unwrap_or_default().to_string(),
            message_id: record.message_id.clone(),
        }
    }
}

/// A message built to go out: a streamed one (`Body::Stream`) stored as sent already and read
/// from the store, one held in memory (`Body::Bytes`) not stored yet.
struct Prepared {
    headers: HeaderMap,
    body: Body,
    mic: as2::mic::Mic,
    alternative_mics: Vec<as2::mic::Mic>,
}

/// How much of the payload the streaming builder is given at a time.
const FEED_SLICE: usize = 1024 * 1024;

/// The longest a partner's Retry-After is followed: a day (a longer one is read as a day).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// How long a Retry-After header (seconds, or an HTTP date) asks to wait from `now`.
fn retry_after(headers: &as2::HeaderMap, now: Millis) -> Option<Duration> {
    let value = headers.get("Retry-After")?.trim();
    let secs = match value.parse::<u64>() {
        Ok(n) => n,
        Err(_) => {
            // IMF-fixdate, as HTTP writes dates: `Sun, 06 Nov 1994 08:49:37 GMT`.
            let parts: Vec<&str> = value.split_whitespace().collect();
            let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
                return None;
            };
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(month))? + 1;
            let at = as2::UnixTime::parse(&format!("{year}-{m:02}-{day:0>2}T{time}Z"))?;
            u64::try_from(at.0.saturating_sub(now.0 / 1000)).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The first line of a body, for a log entry.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.lines().next().unwrap_or("").trim().to_string()
}

impl<P: Ports> Gateway<P> {
    /// Runs a job from the queue.
    pub async fn run_job(&self, job: &Job) -> Result<()> {
        match job {
            Job::Send { id } => self.send(id).await.map(|_| ()),
            Job::SendMdn { id, attempt } => self.send_async_mdn(id, *attempt).await,
            Job::MdnDeadline { id, attempt } => self.mdn_deadline(id, *attempt).await,
            Job::Notify {
                webhook,
                attempt,
                event,
            } => self.notify(webhook, *attempt, event).await,
        }
    }

    /// Makes one attempt to send message `id`.
    pub async fn send(&self, id: &str) -> Result<SendOutcome> {
        let outcome = self.attempt(id).await?;
        self.settings.failpoints.hit("send.recorded")?;
        Ok(outcome)
    }

    async fn attempt(&self, id: &str) -> Result<SendOutcome> {
        let log = self.ports.log();
        let mut record = log
            .get(id)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("message {id}")))?;
        // `Sending` means an earlier attempt died midway: it is made again, with the same
        // Message-ID, which a receiver recognises.
        if !matches!(record.status, Status::Queued | Status::Sending) {
            self.tell_if_untold(&mut record).await;
            return Ok(SendOutcome::Skipped(record.status));
        }
        let now = self.ports.clock().now();
        let agreement = match self.agreement(&record.station, &record.partner).await {
            Ok(l) => l,
            Err(e) if e.is_permanent() => {
                return self.fail(&mut record, now, e.to_string()).await;
            }
            Err(e) => return Err(e),
        };
        record.attempts += 1;
        let attempt = record.attempts;
        record.set_status(Status::Sending, now, Some(format!("attempt {attempt}")));
        match log.update(&mut record).await {
            Ok(()) => {}
            Err(GatewayError::Conflict(_)) => return Ok(SendOutcome::Skipped(Status::Sending)),
            Err(e) => return Err(e),
        }

        let payload_key = record.payload_key.clone().unwrap_or_default();
        let opts = match agreement.message_options(&format!("AS2 message {}", record.filename)) {
            Ok(o) => o,
            Err(e) => return self.fail(&mut record, now, e.to_string()).await,
        };
        if record.message_id.is_empty() {
            record.message_id =
                as2::envelope::new_message_id(&agreement.message_id_domain, now.unix());
        }
        let paths = record.paths()?;
        let built = match self
            .prepare(&record, &agreement, &opts, &payload_key, now)
            .await?
        {
            Ok(b) => b,
            Err(why) => return self.fail(&mut record, now, why).await,
        };
        // The message as sent and its headers, stored together (a streamed message is stored
        // already: it is sent from the store).
        let mut stored = Vec::new();
        if let Body::Bytes(body) = &built.body {
            stored.push((paths.raw_message(), body.clone()));
        }
        stored.push((paths.headers(), built.headers.to_bytes()));
        self.ports.store().put_all(stored).await?;
        let style = agreement.name_style();
        let (mic, alternatives) = (
            built.mic.to_field(style),
            built
                .alternative_mics
                .iter()
                .map(|m| m.to_field(style))
                .collect::<Vec<_>>(),
        );
        let message_id = record.message_id.clone();
        // Saved before the POST: an asynchronous receipt may arrive before the response does.
        self.save(&mut record, |r| {
            r.message_id = message_id.clone();
            r.mic = Some(mic.clone());
            r.alternative_mics = alternatives.clone();
            r.raw_key = Some(paths.raw_message());
            r.headers_key = Some(paths.headers());
        })
        .await?;

        self.settings.failpoints.hit("send.built")?;
        let request = match self.request(&agreement, built.headers, built.body).await {
            Ok(r) => r,
            // A missing password secret or TLS trust anchor: nothing a retry would fix.
            Err(e) if e.is_permanent() => {
                return self
                    .fail(&mut record, now, format!("cannot prepare the request: {e}"))
                    .await;
            }
            Err(e) => return Err(e),
        };
        let response = self.ports.transport().post(request).await;
        self.settings.failpoints.hit("send.posted")?;
        let now = self.ports.clock().now();
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return self
                    .retry_or_fail(&mut record, &agreement, now, e.to_string())
                    .await
            }
        };
        // 5xx is the partner's trouble, 429 its asking us to slow down: both pass, and the
        // next attempt waits at least as long as its Retry-After says.
        if response.status >= 500 || response.status == 429 {
            let wait = retry_after(&response.headers, now);
            let why = format!(
                "the partner answered HTTP {}: {}{}",
                response.status,
                first_line(&response.body),
                wait.map_or(String::new(), |w| format!(
                    " (Retry-After: {} s)",
                    w.as_secs()
                ))
            );
            return self
                .retry_or_fail_after(&mut record, &agreement, now, why, wait)
                .await;
        }
        if !(200..300).contains(&response.status) {
            // A 4xx is the partner refusing this message; sending it again would not help.
            let why = format!(
                "the partner refused it with HTTP {}: {}",
                response.status,
                first_line(&response.body)
            );
            return self.fail(&mut record, now, why).await;
        }
        match agreement.partnership.mdn {
            MdnMode::None => {
                self.save(&mut record, |r| {
                    r.set_status(Status::Sent, now, Some(format!("HTTP {}", response.status)))
                })
                .await?;
                Ok(SendOutcome::done(&record))
            }
            MdnMode::Async => {
                let wait = Duration::from_secs(agreement.partnership.mdn_wait_secs);
                self.save(&mut record, |r| {
                    r.set_status(
                        Status::AwaitingMdn,
                        now,
                        Some(format!(
                            "HTTP {}; receipt expected by {}",
                            response.status,
                            now.plus(wait)
                        )),
                    )
                })
                .await?;
                // The receipt may have come in already, while the answer was being read: then the
                // record stays as the receipt left it and there is nothing to wait for.
                if record.status == Status::AwaitingMdn {
                    self.ports
                        .queue()
                        .enqueue(
                            Job::MdnDeadline {
                                id: record.id.clone(),
                                attempt: record.attempts,
                            },
                            now.plus(wait),
                        )
                        .await?;
                }
                Ok(SendOutcome::done(&record))
            }
            MdnMode::Sync => match self
                .take_mdn(&mut record, &agreement, &response.headers, &response.body)
                .await?
            {
                Ok(_) => Ok(SendOutcome::done(&record)),
                Err(not_an_mdn) => {
                    self.retry_or_fail(&mut record, &agreement, now, not_an_mdn)
                        .await
                }
            },
        }
    }

    /// Builds the message: in memory when the payload is small (the caller stores it with its
    /// headers), else read, built and written in parts to `AS2/raw-message/`, and sent from the
    /// store as it goes out. The inner error is why the message can never be sent.
    async fn prepare(
        &self,
        record: &MessageRecord,
        agreement: &Agreement,
        opts: &message::MessageOptions,
        payload_key: &str,
        now: Millis,
    ) -> Result<std::result::Result<Prepared, String>> {
        let store = self.ports.store();
        // One read of the payload, whole or in parts as its size says.
        let Some((meta, mut payload)) = store.reader(payload_key).await? else {
            return Ok(Err(format!("the payload {payload_key} is gone")));
        };
        let content_type = &agreement.partnership.content_type;
        let raw_key = record.paths()?.raw_message();
        let cannot = |e: as2::Error| Ok(Err(format!("cannot build the message: {e}")));
        if meta.size <= self.settings.stream_above
            || opts.body_encoding != message::BodyEncoding::Binary
        {
            let data = crate::ports::read_all(payload).await?;
            let built = message::build(
                opts,
                &Payload {
                    data: &data,
                    filename: Some(&record.filename),
                    content_type,
                },
                &record.message_id,
                now.unix(),
            );
            drop(data);
            let built = match built {
                Ok(b) => b,
                Err(e) => return cannot(e),
            };
            return Ok(Ok(Prepared {
                headers: built.headers,
                body: Body::Bytes(built.body),
                mic: built.mic,
                alternative_mics: built.alternative_mics,
            }));
        }
        let mut raw = store.writer(&raw_key, BTreeMap::new()).await?;
        let mut out = Vec::new();
        let (mut builder, headers) = match BuildStream::start(
            opts,
            content_type,
            Some(&record.filename),
            &record.message_id,
            now.unix(),
            &mut out,
        ) {
            Ok(b) => b,
            Err(e) => return cannot(e),
        };
        raw.write(&out).await?;
        while let Some(part) = payload.next().await? {
            // Fed a slice at a time, so what one call puts out stays small.
            for slice in part.chunks(FEED_SLICE) {
                out.clear();
                if let Err(e) = builder.update(slice, &mut out) {
                    return cannot(e);
                }
                raw.write(&out).await?;
            }
        }
        out.clear();
        let built = match builder.finish(&mut out) {
            Ok(b) => b,
            Err(e) => return cannot(e),
        };
        raw.write(&out).await?;
        drop(out);
        let length = raw.finish().await?.size;
        let Some((_, body)) = store.reader(&raw_key).await? else {
            return Err(GatewayError::NotFound(raw_key));
        };
        Ok(Ok(Prepared {
            headers,
            body: Body::Stream {
                length,
                chunks: byte_stream(body),
            },
            mic: built.mic,
            alternative_mics: built.alternative_mics,
        }))
    }

    async fn request(
        &self,
        agreement: &Agreement,
        headers: HeaderMap,
        body: Body,
    ) -> Result<HttpRequest> {
        let p = &agreement.partnership;
        let basic_auth = match &p.auth {
            Some(a) => Some((
                a.user.clone(),
                self.ports.secrets().secret(&a.password_secret).await?,
            )),
            None => None,
        };
        let trust = match &p.tls.ca_alias {
            Some(alias) => vec![self.ports.keys().tls_certificate(alias).await?],
            None => Vec::new(),
        };
        Ok(HttpRequest {
            url: p.url.clone(),
            headers,
            body,
            timeout: Duration::from_secs(p.timeout_secs),
            basic_auth,
            tls: p.tls.clone(),
            trust,
        })
    }

    pub(crate) async fn fail(
        &self,
        record: &mut MessageRecord,
        now: Millis,
        reason: String,
    ) -> Result<SendOutcome> {
        self.save(record, |r| {
            r.set_status(Status::Failed, now, Some(reason.clone()))
        })
        .await?;
        Ok(SendOutcome::done(record))
    }

    async fn retry_or_fail(
        &self,
        record: &mut MessageRecord,
        agreement: &Agreement,
        now: Millis,
        reason: String,
    ) -> Result<SendOutcome> {
        self.retry_or_fail_after(record, agreement, now, reason, None)
            .await
    }

    /// [`Self::retry_or_fail`], the next attempt no sooner than `at_least` from now (what the
    /// partner's Retry-After asked for), unless that is longer than the policy's longest wait.
    async fn retry_or_fail_after(
        &self,
        record: &mut MessageRecord,
        agreement: &Agreement,
        now: Millis,
        reason: String,
        at_least: Option<Duration>,
    ) -> Result<SendOutcome> {
        // The policy counts the attempts since the last resend; the detail shows them all.
        let attempt = record.attempts.saturating_sub(record.resent_after);
        match agreement.retry.delay_after(attempt) {
            Some(delay) => {
                // The partner's Retry-After is followed up to the policy's longest wait.
                let longest = Duration::from_secs(agreement.retry.max_interval_secs);
                let delay = delay.max(at_least.unwrap_or_default().min(longest));
                let at = now.plus(delay);
                let detail = format!("attempt {attempt} failed: {reason}; next attempt at {at}");
                tracing::info!(id = %record.id, message_id = %record.message_id, %detail, "send will be retried");
                let queued = self
                    .save(record, |r| {
                        r.set_status(Status::Queued, now, Some(detail.clone()))
                    })
                    .await?;
                if !queued {
                    return Ok(SendOutcome::done(record));
                }
                self.ports
                    .queue()
                    .enqueue(
                        Job::Send {
                            id: record.id.clone(),
                        },
                        at,
                    )
                    .await?;
                Ok(SendOutcome::Retrying { at, reason })
            }
            None => {
                self.fail(
                    record,
                    now,
                    format!("gave up after {attempt} attempts: {reason}"),
                )
                .await
            }
        }
    }

    /// POSTs a receipt we built to the URL the sender asked for.
    async fn send_async_mdn(&self, id: &str, attempt: u32) -> Result<()> {
        let log = self.ports.log();
        let Some(mut record) = log.get(id).await? else {
            return Ok(());
        };
        let (Some(url), Some(mdn)) = (record.async_mdn_url.clone(), record.mdn.clone()) else {
            return Ok(());
        };
        let Some(object) = self.ports.store().get(&mdn.key).await? else {
            return Err(GatewayError::NotFound(mdn.key));
        };
        let (headers, at) = as2::mime::parse_header_block(&object.data, &Default::default())?;
        let agreement = self.agreement(&record.station, &record.partner).await?;
        let mut request = match self
            .request(&agreement, headers, Body::Bytes(object.data[at..].to_vec()))
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_permanent() => {
                let now = self.ports.clock().now();
                let note = format!("asynchronous receipt to {url} not sent: {e}");
                return self
                    .save(&mut record, |r| {
                        r.set_status(r.status, now, Some(note.clone()))
                    })
                    .await
                    .map(|_| ());
            }
            Err(e) => return Err(e),
        };
        request.url = url.clone();
        let result = self.ports.transport().post(request).await;
        let now = self.ports.clock().now();
        let failure = match result {
            Ok(r) if (200..300).contains(&r.status) => None,
            Ok(r) => Some(format!("HTTP {}: {}", r.status, first_line(&r.body))),
            Err(TransportError::Timeout) => Some("timed out".into()),
            Err(e) => Some(e.to_string()),
        };
        let attempt = attempt + 1;
        let note = match (&failure, agreement.retry.delay_after(attempt)) {
            (None, _) => format!("asynchronous receipt delivered to {url}"),
            (Some(why), Some(delay)) => {
                self.ports
                    .queue()
                    .enqueue(
                        Job::SendMdn {
                            id: id.into(),
                            attempt,
                        },
                        now.plus(delay),
                    )
                    .await?;
                format!(
                    "asynchronous receipt to {url} failed ({why}); trying again at {}",
                    now.plus(delay)
                )
            }
            (Some(why), None) => format!(
                "asynchronous receipt to {url} failed ({why}); gave up after {attempt} attempts"
            ),
        };
        self.save(&mut record, |r| {
            r.set_status(r.status, now, Some(note.clone()))
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let mut h = as2::HeaderMap::new();
        let now = Millis(784_111_777_000); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(&h, now), None);
        h.append("Retry-After", "120");
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        let mut d = as2::HeaderMap::new();
        d.append("Retry-After", "Sun, 06 Nov 1994 08:51:37 GMT");
        assert_eq!(retry_after(&d, now), Some(Duration::from_secs(120)));
        let mut past = as2::HeaderMap::new();
        past.append("Retry-After", "Sun, 06 Nov 1994 08:00:00 GMT");
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        for bad in ["soon", "-5", "Sun, 06 Foo 1994 08:51:37 GMT"] {
            let mut b = as2::HeaderMap::new();
            b.append("Retry-After", bad);
            assert_eq!(retry_after(&b, now), None, "{bad}");
        }
        let mut far = as2::HeaderMap::new();
        far.append("Retry-After", "99999999");
        assert_eq!(retry_after(&far, now), Some(MAX_RETRY_AFTER));
    }
}
