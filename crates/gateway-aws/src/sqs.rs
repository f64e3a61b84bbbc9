//! [`JobQueue`] over SQS. A job is a JSON message `{"job": ..., "not_before": <ms>}`. SQS delays
//! a message at most 15 minutes, so a job due later hops: the consumer finds it early, sends it
//! again with the rest of the wait (up to 15 minutes more) and deletes the early copy. Failures
//! of the consumer itself are left to the queue's redrive policy, which moves a message that
//! keeps failing to the dead-letter queue; the sender also parks there the jobs of messages that
//! failed for good, so they are seen (and alarmed on).

use std::time::Duration;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use gateway::model::Job;
use gateway::ports::{Clock, JobQueue, ParkedJob};
use gateway::{GatewayError, Millis, Result};
use gateway_http::SystemClock;
use serde::{Deserialize, Serialize};

/// How long a dead letter being looked at stays out of sight (it is let go as soon as the look
/// ends; this is only for a look that dies midway).
const SCAN_VISIBILITY: i32 = 300;

/// The most dead letters one redrive looks through.
const MAX_SCAN: usize = 10_000;

/// SQS's longest delivery delay.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// A job as it travels through the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedJob {
    /// What to do.
    pub job: Job,
    /// Not to be run before this time.
    pub not_before: Millis,
}

impl QueuedJob {
    /// Reads a message body; a body that is not a job is an error naming what is wrong.
    pub fn parse(body: &str) -> Result<QueuedJob> {
        serde_json::from_str(body)
            .map_err(|e| GatewayError::port("sqs", format!("not a job message: {e}")))
    }

    /// The message body.
    pub fn body(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| GatewayError::port("sqs", e))
    }
}

/// The send queue (and its dead-letter queue).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
}

fn port<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    e: &SdkError<E>,
) -> GatewayError {
    GatewayError::port("sqs", format!("{op}: {}", crate::error::describe(e)))
}

/// Whole seconds to wait from `now` until `at`, at most [`MAX_DELAY`].
pub fn delay_seconds(now: Millis, at: Millis) -> i32 {
    let ms = (at.0 - now.0).max(0);
    let secs = (ms + 999) / 1000;
    secs.min(MAX_DELAY.as_secs() as i64) as i32
}

impl SqsQueue {
    /// The queue at `url`, with its dead-letter queue at `dead_letter_url`.
    pub fn new(client: Client, url: impl Into<String>, dead_letter_url: Option<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
            dead_letter_url,
        }
    }

    /// From an SDK configuration.
    pub fn from_conf(
        conf: &aws_config::SdkConfig,
        url: impl Into<String>,
        dead_letter_url: Option<String>,
    ) -> Self {
        Self::new(Client::new(conf), url, dead_letter_url)
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send(&self, url: &str, body: String, delay: i32, reason: Option<&str>) -> Result<()> {
        let mut req = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .delay_seconds(delay);
        if let Some(r) = reason {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(r.chars().take(1000).collect::<String>())
                .build()
                .map_err(|e| GatewayError::port("sqs", e))?;
            req = req.message_attributes("reason", value);
        }
        req.send().await.map_err(|e| port("SendMessage", &e))?;
        Ok(())
    }

    /// Sends an early job on: again, with the rest of its wait (at most 15 minutes).
    pub async fn defer(&self, queued: &QueuedJob, now: Millis) -> Result<()> {
        self.send(
            &self.url,
            queued.body()?,
            delay_seconds(now, queued.not_before),
            None,
        )
        .await
    }

    /// Parks a job in the dead-letter queue with the reason (a message that failed for good).
    /// Without a dead-letter queue, nothing is done.
    pub async fn park(&self, queued: &QueuedJob, reason: &str) -> Result<()> {
        self.park_body(&queued.body()?, reason).await
    }

    /// Parks a message body as it came (one that is not even a job) with the reason.
    pub async fn park_body(&self, body: &str, reason: &str) -> Result<()> {
        match &self.dead_letter_url {
            Some(dlq) => self.send(dlq, body.to_string(), 0, Some(reason)).await,
            None => {
                tracing::warn!(
                    reason,
                    "no dead-letter queue configured; the job is dropped"
                );
                Ok(())
            }
        }
    }

    /// The dead-letter queue's URL.
    pub fn dead_letter_url(&self) -> Option<&str> {
        self.dead_letter_url.as_deref()
    }

    fn dlq(&self) -> Result<&str> {
        self.dead_letter_url.as_deref().ok_or_else(|| {
            GatewayError::Config(
                "no dead-letter queue is configured (the stack's DeadLetterQueueUrl)".into(),
            )
        })
    }

    /// Up to `limit` messages of the dead-letter queue, left in it.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<ParkedJob>> {
        let mut out: Vec<ParkedJob> = self
            .scan(limit, |_| false)
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        out.sort_by_key(|p| p.parked_at);
        Ok(out)
    }

    /// Moves dead letters back to the send queue: all of them (at most `limit`), or those whose
    /// message ID or record id is `only`. Returns the jobs moved.
    pub async fn redrive(&self, only: Option<&str>, limit: usize) -> Result<Vec<ParkedJob>> {
        let mut moved = 0;
        let seen = self
            .scan(MAX_SCAN, |p| {
                let take =
                    moved < limit && only.is_none_or(|o| p.id == o || p.record_id() == Some(o));
                moved += usize::from(take);
                take
            })
            .await?;
        Ok(seen
            .into_iter()
            .filter_map(|(p, taken)| taken.then_some(p))
            .collect())
    }

    /// Goes through the dead-letter queue once, up to `limit` messages, each held out of sight
    /// while it is looked at (so none comes twice): those `take` picks are sent on to the send
    /// queue, then deleted (a failure between the two leaves a copy in each queue, and the
    /// sender runs a job twice without sending twice); the others are let go again at the end.
    async fn scan(
        &self,
        limit: usize,
        mut take: impl FnMut(&ParkedJob) -> bool,
    ) -> Result<Vec<(ParkedJob, bool)>> {
        let dlq = self.dlq()?;
        let mut seen = Vec::new();
        let mut held = Vec::new();
        let result = async {
            while seen.len() < limit {
                // Long polling (1 s): a short poll may answer empty while messages wait.
                let got = self.receive(dlq, SCAN_VISIBILITY, 1).await?;
                if got.is_empty() {
                    break;
                }
                for m in got {
                    let p = parked(&m);
                    let handle = m.receipt_handle().unwrap_or_default().to_string();
                    let taken = seen.len() < limit && take(&p);
                    if taken {
                        self.send(&self.url, m.body().unwrap_or_default().to_string(), 0, None)
                            .await?;
                        self.client
                            .delete_message()
                            .queue_url(dlq)
                            .receipt_handle(&handle)
                            .send()
                            .await
                            .map_err(|e| port("DeleteMessage", &e))?;
                    } else {
                        held.push(handle);
                    }
                    if seen.len() < limit {
                        seen.push((p, taken));
                    }
                }
            }
            Ok::<_, GatewayError>(())
        }
        .await;
        // Let go of what was only looked at, whatever happened meanwhile.
        for (n, batch) in held.chunks(10).enumerate() {
            let mut req = self.client.change_message_visibility_batch().queue_url(dlq);
            for (i, handle) in batch.iter().enumerate() {
                req = req.entries(
                    aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{n}-{i}"))
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| GatewayError::port("sqs", e))?,
                );
            }
            req.send()
                .await
                .map_err(|e| port("ChangeMessageVisibilityBatch", &e))?;
        }
        result.map(|()| seen)
    }

    async fn receive(
        &self,
        url: &str,
        visibility: i32,
        wait: i32,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        use aws_sdk_sqs::types::MessageSystemAttributeName as A;
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .wait_time_seconds(wait)
            .message_system_attribute_names(A::SentTimestamp)
            .message_system_attribute_names(A::ApproximateReceiveCount)
            .message_attribute_names("reason")
            .send()
            .await
            .map_err(|e| port("ReceiveMessage", &e))?;
        Ok(out.messages.unwrap_or_default())
    }
}

/// A dead letter as the operator sees it.
fn parked(m: &aws_sdk_sqs::types::Message) -> ParkedJob {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    let body = m.body().unwrap_or_default();
    let job = QueuedJob::parse(body).ok().map(|q| q.job);
    let attr = |a: A| m.attributes().and_then(|all| all.get(&a)).cloned();
    ParkedJob {
        id: m.message_id().unwrap_or_default().to_string(),
        body: if job.is_none() {
            Some(body.to_string())
        } else {
            None
        },
        job,
        reason: m
            .message_attributes()
            .and_then(|a| a.get("reason"))
            .and_then(|v| v.string_value())
            .map(str::to_string),
        parked_at: attr(A::SentTimestamp)
            .and_then(|t| t.parse().ok())
            .map(Millis),
        runs: attr(A::ApproximateReceiveCount).and_then(|c| c.parse().ok()),
    }
}

impl JobQueue for SqsQueue {
    async fn enqueue(&self, job: Job, not_before: Millis) -> Result<()> {
        let queued = QueuedJob { job, not_before };
        let delay = delay_seconds(SystemClock.now(), not_before);
        self.send(&self.url, queued.body()?, delay, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_whole_seconds_up_to_fifteen_minutes() {
        let now = Millis(1_000_000);
        assert_eq!(delay_seconds(now, Millis(999_000)), 0);
        assert_eq!(delay_seconds(now, now), 0);
        assert_eq!(delay_seconds(now, Millis(1_000_001)), 1);
        assert_eq!(delay_seconds(now, Millis(1_030_000)), 30);
        assert_eq!(delay_seconds(now, Millis(1_000_000 + 3_600_000)), 900);
        let j = QueuedJob {
            job: Job::Send { id: "x".into() },
            not_before: now,
        };
        assert_eq!(QueuedJob::parse(&j.body().unwrap()).unwrap(), j);
        assert!(QueuedJob::parse("{\"job\":{\"kind\":\"explode\"}}").is_err());
    }
}
