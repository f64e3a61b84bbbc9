//! Telling of events: to the Events port (metrics, a bus) at once, and to each webhook that asks
//! for them through the job queue, so a webhook that is down, slow or failing is retried with
//! backoff (bounded by its policy) and never holds up an AS2 exchange.
//!
//! A webhook's POST carries the event as JSON and `X-MFTG-Event` (its kind), `X-MFTG-Delivery`
//! (its id: the same on every retry), `X-MFTG-Timestamp` (Unix seconds) and
//! `X-MFTG-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the secret>`.

use std::time::Duration;

use crate::error::Result;
use crate::events::Event;
use crate::gateway::Gateway;
use crate::model::{Job, TlsOptions};
use crate::ports::{
    As2Transport as _, Body, Clock as _, Events as _, HttpRequest, JobQueue as _, MessageLog as _,
    Ports, Secrets as _,
};
use crate::time::Millis;

/// The signature header's value for `body` sent at `timestamp` (Unix seconds) under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> Result<String> {
    let stamp = format!("{timestamp}.");
    let mac = as2::hmac_sha256(secret, &[stamp.as_bytes(), body])?;
    Ok(format!("sha256={}", as2::hex(&mac)))
}

impl<P: Ports> Gateway<P> {
    /// Tells of every certificate of `stations` and `partnerships` that has expired or expires
    /// within [`as2::keys::EXPIRY_WARNING_DAYS`] (one `certificate-expiring` event each; its id
    /// names the day, so a daily check tells of each once a day). Returns how many.
    pub async fn announce_expiring(
        &self,
        stations: &[crate::model::Station],
        partnerships: &[crate::model::Partnership],
    ) -> usize {
        let now = self.ports.clock().now();
        let mut told = 0;
        for cert in self.certificates(stations, partnerships).await {
            if cert.is_ending() {
                self.announce(Event::certificate_expiring(now, cert)).await;
                told += 1;
            }
        }
        told
    }

    /// Tells of `event`: the Events port now, each webhook that wants it through the queue. A
    /// webhook's job that cannot be queued is logged, never an error of the exchange. Returns
    /// whether all of it was handed over.
    pub async fn announce(&self, event: Event) -> bool {
        let queued = self.queue_for_webhooks(&event, None).await;
        let published = self.ports.events().publish(event).await;
        queued && published
    }

    /// Queues `event` for each webhook that wants it (of those named in `only`, if given);
    /// whether every job was queued.
    async fn queue_for_webhooks(&self, event: &Event, only: Option<&[String]>) -> bool {
        let now = self.ports.clock().now();
        let mut queued = true;
        for w in
            self.settings.webhooks.iter().filter(|w| {
                w.wants(&event.kind) && only.is_none_or(|names| names.contains(&w.name))
            })
        {
            let job = Job::Notify {
                webhook: w.name.clone(),
                attempt: 0,
                event: Box::new(event.clone()),
            };
            if let Err(e) = self.ports.queue().enqueue(job, now).await {
                tracing::error!(webhook = %w.name, event = %event.id, error = %e, "webhook event not queued");
                queued = false;
            }
        }
        queued
    }

    /// After a run that did not stop cleanly (started at `since`, with `webhooks`): queues again
    /// the webhook events of every message that reached its final status since then, for the
    /// webhooks of that run still configured. A run that died between writing a record and
    /// queueing its events would otherwise never tell of it; a queue that takes each first post
    /// of an event once per webhook (the embedded gateway's) drops those already queued, so each
    /// is posted once. Messages made up to 7 days before `since` are looked at; returns how many
    /// events were queued again (those a record notes as told are not).
    pub async fn announce_missed(&self, since: Millis, webhooks: &[String]) -> Result<usize> {
        if webhooks.is_empty() || self.settings.webhooks.is_empty() {
            return Ok(0);
        }
        let mut query = crate::ports::RecordQuery::of(None, None, 10_000);
        query.since = Some(Millis(since.0 - 7 * 86_400_000));
        let records = self.ports.log().query(&query).await?;
        let mut told = 0;
        for event in records
            .iter()
            .filter(|r| r.changed_at() >= since)
            // Those noted as told had every webhook's job queued.
            .filter_map(|r| Event::of_record(r).filter(|e| r.told.as_ref() != Some(&e.id)))
        {
            self.queue_for_webhooks(&event, Some(webhooks)).await;
            told += 1;
        }
        Ok(told)
    }

    /// One attempt to POST `event` to webhook `name`; a failure queues the next attempt after
    /// the webhook's backoff, until its policy gives up (logged).
    pub(crate) async fn notify(&self, name: &str, attempt: u32, event: &Event) -> Result<()> {
        let Some(w) = self.settings.webhooks.iter().find(|w| w.name == name) else {
            tracing::info!(webhook = name, event = %event.id, "webhook no longer configured; event dropped");
            return Ok(());
        };
        let failure = self.post_event(w, event).await.err();
        let attempt = attempt + 1;
        let Some(why) = failure else {
            tracing::debug!(webhook = name, event = %event.id, attempt, "webhook delivered");
            return Ok(());
        };
        match w.retry.delay_after(attempt) {
            Some(delay) => {
                let at = self.ports.clock().now().plus(delay);
                tracing::warn!(webhook = name, event = %event.id, attempt, %why, next = %at, "webhook failed; trying again");
                let job = Job::Notify {
                    webhook: name.to_string(),
                    attempt,
                    event: Box::new(event.clone()),
                };
                self.ports.queue().enqueue(job, at).await
            }
            None => {
                tracing::error!(webhook = name, event = %event.id, attempt, %why, "webhook failed; gave up");
                Ok(())
            }
        }
    }

    /// POSTs `event` to `w`; why not, when it was not taken (2xx).
    async fn post_event(
        &self,
        w: &crate::model::Webhook,
        event: &Event,
    ) -> std::result::Result<(), String> {
        let secret = self
            .ports
            .secrets()
            .secret(&w.secret)
            .await
            .map_err(|e| format!("its secret: {e}"))?;
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let timestamp = self.ports.clock().now().0.div_euclid(1000);
        let signed = signature(secret.as_bytes(), timestamp, &body).map_err(|e| e.to_string())?;
        let mut headers = as2::HeaderMap::new();
        headers.append("Content-Type", "application/json");
        headers.append("User-Agent", &self.settings.reporting_ua);
        headers.append("X-MFTG-Event", &event.kind);
        headers.append("X-MFTG-Delivery", &event.id);
        headers.append("X-MFTG-Timestamp", timestamp.to_string());
        headers.append("X-MFTG-Signature", &signed);
        let request = HttpRequest {
            url: w.url.clone(),
            headers,
            body: Body::Bytes(body),
            timeout: Duration::from_secs(w.timeout_secs.max(1)),
            basic_auth: None,
            tls: TlsOptions::default(),
            trust: Vec::new(),
        };
        match self.ports.transport().post(request).await {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status)),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_body() {
        let a = signature(b"secret", 1_700_000_000, b"{\"type\":\"failed\"}").unwrap();
        let b = signature(b"secret", 1_700_000_001, b"{\"type\":\"failed\"}").unwrap();
        // As Python's hmac module computes it.
        assert_eq!(
            a,
            "sha256=2835a36c880a0c5b75fad31106aea1b87b66586ce2a3ef09f377a32b63f2c5b3"
        );
        assert_ne!(a, b, "the timestamp is signed");
        assert_ne!(
            a,
            signature(b"other", 1_700_000_000, b"{\"type\":\"failed\"}").unwrap()
        );
    }
}
