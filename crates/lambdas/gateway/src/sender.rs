//! `as2-sender`: a batch of jobs from the send queue. A job due later goes back on the queue
//! with the rest of its wait; a send that ends `failed` (retry policy used up, the partner's
//! refusal, the file gone) is parked in the dead-letter queue with its reason, where it is seen
//! and alarmed on. A failure of the function's own services (S3, DynamoDB, SQS) reports the
//! message as failed (`ReportBatchItemFailures`): only it comes back, after the visibility
//! timeout, and the queue's redrive policy moves it aside if it keeps failing.

use std::future::Future;

use gateway::model::{Job, Status};
use gateway::ports::{Clock, Ports};
use gateway::{Gateway, GatewayError, Millis, SendOutcome};
use gateway_aws::sqs::{QueuedJob, SqsQueue};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::EventError;

/// Where jobs go that are early or have failed for good.
pub trait Parking {
    /// Puts an early job back with the rest of its wait.
    fn defer(&self, queued: &QueuedJob, now: Millis) -> impl Future<Output = gateway::Result<()>>;
    /// Parks a message body in the dead-letter queue with the reason.
    fn park(&self, body: &str, reason: &str) -> impl Future<Output = gateway::Result<()>>;
}

impl Parking for SqsQueue {
    async fn defer(&self, queued: &QueuedJob, now: Millis) -> gateway::Result<()> {
        SqsQueue::defer(self, queued, now).await
    }

    async fn park(&self, body: &str, reason: &str) -> gateway::Result<()> {
        self.park_body(body, reason).await
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The job ran (the status it left the message in, for sends).
    Ran(Option<Status>),
    /// Too early: put back on the queue.
    Deferred,
    /// Parked in the dead-letter queue, for the reason given.
    Parked(String),
}

/// Handles one message body.
pub async fn handle_message<P: Ports, Q: Parking>(
    gateway: &Gateway<P>,
    parking: &Q,
    body: &str,
) -> Result<Handled, EventError> {
    let queued = match QueuedJob::parse(body) {
        Ok(q) => q,
        Err(e) => {
            let reason = e.to_string();
            tracing::error!(error = %reason, "not a job; parked in the dead-letter queue");
            parking.park(body, &reason).await?;
            return Ok(Handled::Parked(reason));
        }
    };
    let now = gateway.ports.clock().now();
    if queued.not_before.0 > now.0 + 1000 {
        parking.defer(&queued, now).await?;
        tracing::debug!(job = ?queued.job, "early; deferred");
        return Ok(Handled::Deferred);
    }
    // The domain logs each attempt with the station, partner and Message-ID; the span adds the
    // record to everything logged here.
    let span = tracing::info_span!("job", id = %queued.job.record_id());
    run(gateway, parking, body, &queued).instrument(span).await
}

async fn run<P: Ports, Q: Parking>(
    gateway: &Gateway<P>,
    parking: &Q,
    body: &str,
    queued: &QueuedJob,
) -> Result<Handled, EventError> {
    let park = |reason: String| async move {
        tracing::error!(job = ?queued.job, "{reason}; parked in the dead-letter queue");
        parking.park(body, &reason).await?;
        Ok::<_, EventError>(Handled::Parked(reason))
    };
    match &queued.job {
        Job::Send { id } => match gateway.send(id).await {
            Ok(SendOutcome::Done {
                status: Status::Failed,
                reason,
                message_id,
            }) => {
                tracing::error!(%message_id, "send failed for good; the file stays in the outbox");
                park(if reason.is_empty() {
                    "failed".into()
                } else {
                    reason
                })
                .await
            }
            Ok(SendOutcome::Done { status, .. }) => {
                tracing::info!(status = status.as_str(), "sent");
                Ok(Handled::Ran(Some(status)))
            }
            Ok(SendOutcome::Retrying { at, reason }) => {
                tracing::warn!(%reason, retry_at = at.0, "attempt failed; another is queued");
                Ok(Handled::Ran(Some(Status::Queued)))
            }
            Ok(SendOutcome::Skipped(status)) => {
                tracing::info!(status = status.as_str(), "nothing to send");
                Ok(Handled::Ran(Some(status)))
            }
            // `send` reports only its record as not found (a missing payload fails the message).
            Err(GatewayError::NotFound(_)) => park(format!("no message record {id}")).await,
            Err(e) if e.is_permanent() => park(e.to_string()).await,
            Err(e) => Err(failed(&queued.job, e)),
        },
        job => match gateway.run_job(job).await {
            Ok(()) => Ok(Handled::Ran(None)),
            Err(GatewayError::NotFound(what)) => park(format!("{what} is gone")).await,
            Err(e) if e.is_permanent() => park(e.to_string()).await,
            Err(e) => Err(failed(job, e)),
        },
    }
}

fn failed(job: &Job, e: GatewayError) -> EventError {
    tracing::error!(job = ?job, error = %e, "job failed; it comes back after the visibility timeout");
    EventError::from(e)
}

/// Handles an SQS batch, its jobs at once; the reply lists the messages to retry.
pub async fn handle<P: Ports, Q: Parking>(
    gateway: &Gateway<P>,
    parking: &Q,
    event: Value,
) -> Result<Value, EventError> {
    let list = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| EventError::malformed("not an SQS event (no Records list)"))?;
    let mut jobs = Vec::new();
    for message in list {
        let id = message
            .get("messageId")
            .and_then(Value::as_str)
            .ok_or_else(|| EventError::malformed("SQS record without messageId"))?;
        jobs.push((id, message.get("body").and_then(Value::as_str)));
    }
    // The batch's jobs run at once: a send spends most of its time waiting for the partner, and
    // one slow partner does not hold up the others (each job is safe to run beside any other:
    // the record's revision stops two runs of one message).
    let results = futures_util::future::join_all(jobs.iter().map(|(id, body)| async move {
        match body {
            None => {
                tracing::error!(message_id = id, "SQS record without a body");
                false
            }
            Some(body) => handle_message(gateway, parking, body).await.is_ok(),
        }
    }))
    .await;
    let failures: Vec<Value> = jobs
        .iter()
        .zip(results)
        .filter(|(_, ok)| !ok)
        .map(|((id, _), _)| json!({"itemIdentifier": id}))
        .collect();
    Ok(json!({"batchItemFailures": failures}))
}

/// Whether `event` is the daily schedule's (an EventBridge `Scheduled Event`), not a batch.
pub fn is_schedule(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// The daily check: tells of every station and partner certificate that has expired or expires
/// soon (`certificate-expiring`, to EventBridge and the webhooks that want it).
pub async fn check_certificates(
    gateway: &Gateway<gateway_aws::ports::AwsPorts>,
) -> Result<Value, EventError> {
    let directory = &gateway.ports.directory;
    let (stations, partnerships) = (directory.stations().await?, directory.partnerships().await?);
    let told = gateway.announce_expiring(&stations, &partnerships).await;
    tracing::info!(
        certificates_ending = told,
        stations = stations.len(),
        partnerships = partnerships.len(),
        "certificates checked"
    );
    Ok(json!({"certificates_ending": told}))
}
