//! What `mftg doctor` checks of an AWS deployment's resources, one [`Check`] each: the bucket,
//! its versioning and the seed's lifecycle rules, the tables and the claims table's TTL, the send
//! queue's redrive to the dead-letter queue and what waits in it, the keystore password secret,
//! and the keystores opening with it. The stations' keys, partners' certificates and the
//! receiver's `/health` are checked by the caller (the same checks as the embedded gateway's).

use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_sqs::types::QueueAttributeName;
use gateway::check::Check;
use gateway::layout::keystore as ks;
use gateway::ports::{ObjectStore as _, Secrets as _};

use crate::lifecycle;
use crate::ports::{AwsPorts, AwsSettings};

/// Every check of the deployment's resources.
pub async fn deployment_checks(settings: &AwsSettings, ports: &AwsPorts) -> Vec<Check> {
    let mut out = Vec::new();
    let s3 = ports.store.client();
    let bucket = &settings.bucket;
    let what = format!("bucket {bucket}");
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => out.push(Check::ok(&what, "exists")),
        Err(e) => {
            let why = if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                format!("bucket {bucket} does not exist: check the profile's bucket (the stack's BucketName)")
            } else {
                crate::error::describe(&e)
            };
            out.push(Check::blocking(what, why));
            // Nothing else in the bucket can be looked at.
            return out;
        }
    }
    out.push(Check::of(
        "bucket versioning",
        match s3.get_bucket_versioning().bucket(bucket).send().await {
            Ok(v) if v.status().map(|s| s.as_str()) == Some("Enabled") => Ok("enabled".into()),
            Ok(v) => Err(format!(
                "versioning is {}: the templates enable it, and moves and retention rely on it",
                v.status().map_or("off", |s| s.as_str())
            )),
            Err(e) => Err(crate::error::describe(&e)),
        },
    ));
    out.push(Check::of(
        "lifecycle rules",
        match lifecycle::current(s3, bucket).await {
            Ok(rules) => {
                let plan = lifecycle::plan(&rules);
                let wrong: Vec<String> = plan
                    .changes
                    .iter()
                    .filter_map(|c| match c {
                        lifecycle::Change::Add(id) => Some(format!("{id} missing")),
                        lifecycle::Change::Replace(id) => Some(format!("{id} differs")),
                        lifecycle::Change::Keep(_) => None,
                    })
                    .collect();
                if wrong.is_empty() {
                    Ok(format!(
                        "the seed's {} rules are installed",
                        plan.changes.len()
                    ))
                } else {
                    Err(format!(
                        "{}: `mftg infra lifecycle --bucket {bucket}` puts them back",
                        wrong.join(", ")
                    ))
                }
            }
            Err(e) => Err(e.to_string()),
        },
    ));

    let dynamo = ports.directory.client();
    let tables = &settings.tables;
    for (role, table) in [
        ("claims", &tables.claims),
        ("messages", &tables.messages),
        ("partners", &tables.partners),
    ] {
        let what = format!("table {table}");
        let found = match dynamo.describe_table().table_name(table).send().await {
            Ok(t) => Ok(t
                .table()
                .and_then(|t| t.table_status())
                .map_or("found".to_string(), |s| s.as_str().to_lowercase())),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                Err(format!("does not exist: {}", crate::dynamo::MISSING_TABLE))
            }
            Err(e) => Err(crate::error::describe(&e)),
        };
        let ok = found.is_ok();
        out.push(Check::of(what, found));
        if role == "claims" && ok {
            out.push(Check::of(
                format!("table {table}: TTL"),
                match dynamo
                    .describe_time_to_live()
                    .table_name(table)
                    .send()
                    .await
                {
                    Ok(t) => {
                        let d = t.time_to_live_description();
                        let status = d.and_then(|d| d.time_to_live_status()).map(|s| s.as_str());
                        let attr = d.and_then(|d| d.attribute_name());
                        match (status, attr) {
                            (Some("ENABLED" | "ENABLING"), Some("expires_at")) => {
                                Ok("on expires_at (claims go 14 days after their window ends)"
                                    .into())
                            }
                            _ => Err(format!(
                                "TTL is {} on {}: ended duplicate windows are never removed",
                                status.unwrap_or("off"),
                                attr.unwrap_or("no attribute")
                            )),
                        }
                    }
                    Err(e) => Err(crate::error::describe(&e)),
                },
            ));
        }
    }

    let sqs = ports.queue.client();
    let attrs = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .map(|o| o.attributes().cloned().unwrap_or_default())
                .map_err(|e| crate::error::describe(&e))
        }
    };
    let dlq_arn = match &settings.dead_letter_url {
        Some(url) => match attrs(url.clone()).await {
            Ok(a) => {
                let waiting = a
                    .get(&QueueAttributeName::ApproximateNumberOfMessages)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                out.push(if waiting == 0 {
                    Check::ok("dead-letter queue", "empty")
                } else {
                    Check::warning(
                        "dead-letter queue",
                        format!("{waiting} job(s) set aside: see `mftg queue list`"),
                    )
                });
                a.get(&QueueAttributeName::QueueArn).cloned()
            }
            Err(e) => {
                out.push(Check::blocking("dead-letter queue", e));
                None
            }
        },
        None => {
            out.push(Check::warning(
                "dead-letter queue",
                "the profile names none: failed jobs are not kept",
            ));
            None
        }
    };
    out.push(Check::of(
        "send queue",
        match attrs(settings.queue_url.clone()).await {
            Ok(a) => {
                let redrive = a
                    .get(&QueueAttributeName::RedrivePolicy)
                    .cloned()
                    .unwrap_or_default();
                let waiting = a
                    .get(&QueueAttributeName::ApproximateNumberOfMessages)
                    .cloned()
                    .unwrap_or_default();
                match &dlq_arn {
                    Some(arn) if !redrive.contains(arn.as_str()) => Err(format!(
                        "its redrive policy does not lead to the dead-letter queue ({arn})"
                    )),
                    _ => Ok(format!("{waiting} job(s) waiting")),
                }
            }
            Err(e) => Err(e),
        },
    ));

    let secret = &settings.keystore_passwords.identity;
    let password = ports.secrets.secret(secret).await;
    out.push(Check::of(
        format!("secret {secret}"),
        match &password {
            Ok(_) => Ok("readable".into()),
            Err(e) => Err(e.to_string()),
        },
    ));
    if let Ok(password) = password {
        for (key, needed) in [(ks::IDENTITY, true), (ks::TRUST, true), (ks::HTTPS, false)] {
            let what = format!("keystore {key}");
            out.push(match ports.store.get(key).await {
                Ok(Some(o)) => match as2::keys::Keystore::load(&o.data, &password, None) {
                    Ok(k) => Check::ok(what, format!("opens; {} entries", k.entries().len())),
                    Err(e) => Check::blocking(what, e.to_string()),
                },
                Ok(None) if needed => Check::blocking(
                    what,
                    "is not in the bucket: `mftg keys generate` or `mftg keys trust` makes it",
                ),
                Ok(None) => Check::ok(what, "none (not needed)"),
                Err(e) => Check::blocking(what, e.to_string()),
            });
        }
    }
    out
}
