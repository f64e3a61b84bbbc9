//! The SQS job queue (delays, redrive to the dead-letter queue, parking) and the secrets
//! adapter (Secrets Manager and SSM SecureString, cached) against moto.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use gateway::model::Job;
use gateway::ports::{JobQueue, Secrets};
use gateway::{GatewayError, Millis};
use gateway_aws::secrets::AwsSecrets;
use gateway_aws::sqs::{QueuedJob, SqsQueue};
use testkit::Moto;

async fn receive(client: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// Receives until something comes, for at most `limit`.
async fn receive_within(
    client: &aws_sdk_sqs::Client,
    url: &str,
    limit: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let deadline = Instant::now() + limit;
    loop {
        let got = receive(client, url).await;
        if !got.is_empty() || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn now() -> Millis {
    Millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_delayed_redriven_and_parked() {
    let moto = Moto::start();
    let conf = common::conf(&moto).await;
    let client = aws_sdk_sqs::Client::new(&conf);
    let name = Moto::unique("mftg-send");
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let q = SqsQueue::new(client.clone(), &url, Some(dlq_url.clone()));

    // Due now: there at once, as sent.
    let job = Job::Send {
        id: "20261128060000000-00000001".into(),
    };
    let due = now();
    q.enqueue(job.clone(), due).await.unwrap();
    let got = receive(&client, &url).await;
    assert_eq!(got.len(), 1);
    let queued = QueuedJob::parse(got[0].body().unwrap()).unwrap();
    assert_eq!(
        queued,
        QueuedJob {
            job: job.clone(),
            not_before: due
        }
    );

    // Not received and deleted: visible again after the visibility timeout, then (after the
    // second receive) moved to the dead-letter queue by the redrive policy.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        receive_within(&client, &url, Duration::from_secs(5))
            .await
            .len(),
        1,
        "second delivery"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        receive(&client, &url).await.is_empty(),
        "moved on after two receives"
    );
    let dead = receive_within(&client, &dlq_url, Duration::from_secs(5)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(QueuedJob::parse(dead[0].body().unwrap()).unwrap().job, job);
    client
        .delete_message()
        .queue_url(&dlq_url)
        .receipt_handle(dead[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();

    // Due in two seconds: not visible before.
    let later = Job::MdnDeadline {
        id: "20261128060000000-00000002".into(),
        attempt: 1,
    };
    q.enqueue(later.clone(), Millis(now().0 + 2000))
        .await
        .unwrap();
    assert!(receive(&client, &url).await.is_empty(), "delayed");
    let got = receive_within(&client, &url, Duration::from_secs(10)).await;
    assert_eq!(QueuedJob::parse(got[0].body().unwrap()).unwrap().job, later);

    // A message that failed for good is parked in the dead-letter queue, with the reason.
    let failed = QueuedJob {
        job: Job::Send { id: "x".into() },
        not_before: due,
    };
    q.park(&failed, "partner down for good: connection refused")
        .await
        .unwrap();
    let dead = receive_within(&client, &dlq_url, Duration::from_secs(5)).await;
    assert_eq!(QueuedJob::parse(dead[0].body().unwrap()).unwrap(), failed);
    let reason = dead[0].message_attributes().unwrap()["reason"]
        .string_value()
        .unwrap();
    assert_eq!(reason, "partner down for good: connection refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_secrets_manager_and_ssm() {
    let moto = Moto::start();
    let conf = common::conf(&moto).await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let name = Moto::unique("mftg/keystore-password");
    sm.create_secret()
        .name(&name)
        .secret_string("Keystore-Pass-1")
        .send()
        .await
        .unwrap();
    let param = format!("/{}", Moto::unique("mftg/trust-password"));
    ssm.put_parameter()
        .name(&param)
        .value("Trust-Pass-2")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let secrets = AwsSecrets::from_conf(&conf);
    assert_eq!(secrets.secret(&name).await.unwrap(), "Keystore-Pass-1");
    assert_eq!(
        secrets.secret(&format!("ssm:{param}")).await.unwrap(),
        "Trust-Pass-2"
    );
    // Cached for the life of the execution environment.
    sm.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    assert_eq!(secrets.secret(&name).await.unwrap(), "Keystore-Pass-1");
    // A missing secret is a configuration error that names it.
    for missing in ["mftg/none", "ssm:/mftg/none"] {
        match secrets.secret(missing).await {
            Err(GatewayError::Config(m)) => assert!(m.contains(missing), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
