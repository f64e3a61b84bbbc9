//! A deployment of the Lambda suite against moto: the account bucket (versioned), the tables,
//! the send queue with its dead-letter queue (redrive after 3 receives), the keystore password
//! in Secrets Manager, keystores in the bucket; the real binaries under the Runtime API emulator,
//! fed with the sample events from `events/`; and an event source mapping's work done by hand
//! (receive from SQS, invoke, delete what did not fail).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use as2::keys::{Identity, Keystore};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use gateway::layout::keystore as ks;
use gateway::model::{MessageRecord, Partnership, Station};
use gateway::ports::MessageLog;
use gateway_aws::dynamo::{Dynamo, Tables};
use serde_json::{json, Value};
#[allow(unused_imports)] // not every test binary needs it
pub use testkit::free_port;
use testkit::lambda::LambdaEmulator;
use testkit::pyas2::{self, Pyas2Partner};
use testkit::{repo_root, Moto};

pub const KEYSTORE_PASSWORD: &str = "Lambda-Keystore-1";

pub fn identity(id: &str) -> &'static Identity {
    static CELLS: OnceLock<std::sync::Mutex<Vec<(String, &'static Identity)>>> = OnceLock::new();
    let cells = CELLS.get_or_init(Default::default);
    let mut cells = cells.lock().unwrap();
    if let Some((_, i)) = cells.iter().find(|(n, _)| n == id) {
        return i;
    }
    let made: &'static Identity = Box::leak(Box::new(
        Identity::generate_self_signed(id, 2048, as2::UnixTime(1_700_000_000), 3650).unwrap(),
    ));
    cells.push((id.to_string(), made));
    made
}

/// A sample event from `events/`.
pub fn sample(path: &str) -> Value {
    let p = repo_root().join("events").join(path);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// A key as S3 writes it in an event: `+` for a space, `%XX` for bytes other than
/// letters, digits and `-_.~/`... and `*` left as is.
pub fn s3_event_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'*' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub struct Deployment {
    pub rt: tokio::runtime::Runtime,
    pub moto: Moto,
    pub conf: aws_config::SdkConfig,
    pub bucket: String,
    pub prefix: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub secret: String,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamo: Dynamo,
    pub logs: tempfile::TempDir,
    sequencer: AtomicU64,
}

impl Deployment {
    pub fn new() -> Deployment {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let moto = Moto::start();
        let conf = rt.block_on(gateway_aws::config::load(&gateway_aws::config::Endpoint {
            url: Some(moto.url().into()),
            region: Some(testkit::REGION.into()),
        }));
        let bucket = Moto::unique("mftg");
        let prefix = Moto::unique("mftg");
        let store = gateway_aws::s3::S3Store::from_conf(&conf, &bucket);
        let s3 = store.client().clone();
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let dynamo = Dynamo::from_conf(&conf, Tables::with_prefix(&prefix));
        let secret = format!("{prefix}/keystore-password");
        let (queue_url, dlq_url) = rt.block_on(async {
            store
                .create_bucket(testkit::REGION, true)
                .await
                .expect("bucket");
            dynamo.create_tables().await.expect("tables");
            let dlq = sqs
                .create_queue()
                .queue_name(format!("{prefix}-send-dlq"))
                .send()
                .await
                .expect("dlq");
            let dlq_url = dlq.queue_url().unwrap().to_string();
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes()
                .unwrap()[&QueueAttributeName::QueueArn]
                .clone();
            let queue = sqs
                .create_queue()
                .queue_name(format!("{prefix}-send"))
                .attributes(QueueAttributeName::VisibilityTimeout, "2")
                .attributes(
                    QueueAttributeName::RedrivePolicy,
                    json!({"deadLetterTargetArn": arn, "maxReceiveCount": "3"}).to_string(),
                )
                .send()
                .await
                .expect("queue");
            aws_sdk_secretsmanager::Client::new(&conf)
                .create_secret()
                .name(&secret)
                .secret_string(KEYSTORE_PASSWORD)
                .send()
                .await
                .expect("secret");
            (queue.queue_url().unwrap().to_string(), dlq_url)
        });
        Deployment {
            rt,
            moto,
            conf,
            bucket,
            prefix,
            queue_url,
            dlq_url,
            secret,
            s3,
            sqs,
            dynamo,
            logs: tempfile::tempdir().unwrap(),
            sequencer: AtomicU64::new(0x0055_AED6_DCD9_0281),
        }
    }

    /// The functions' environment (the SAM template and CDK app set the same variables).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.moto.url()),
            ("MFTG_BUCKET", &self.bucket),
            ("MFTG_TABLE_PREFIX", &self.prefix),
            ("MFTG_QUEUE_URL", &self.queue_url),
            ("MFTG_DLQ_URL", &self.dlq_url),
            ("MFTG_IDENTITY_PASSWORD_SECRET", &self.secret),
            // Quick retries (1 s, 2 s, ...) for partnerships without their own policy.
            ("MFTG_RETRY_INTERVAL_SECONDS", "1"),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Starts one execution environment of `name` (`send-trigger`, `as2-sender`,
    /// `as2-receiver`), logging to `<logs>/<tag>/<name>.log`.
    pub fn function(&self, name: &str, tag: &str, extra: &[(&str, &str)]) -> LambdaEmulator {
        let binary = match name {
            "send-trigger" => env!("CARGO_BIN_EXE_send-trigger"),
            "as2-sender" => env!("CARGO_BIN_EXE_as2-sender"),
            "as2-receiver" => env!("CARGO_BIN_EXE_as2-receiver"),
            other => panic!("no function {other}"),
        };
        let dir = self.logs.path().join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let mut env = self.env();
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        LambdaEmulator::start(Path::new(binary), &env, &dir)
    }

    /// A station with the receipt URL `mdn_url`, or the deployment's (`MFTG_AS2_URL`), and the
    /// deployment's Message-ID domain.
    pub fn station(&self, id: &str, mdn_url: Option<String>) {
        self.rt
            .block_on(self.dynamo.put_station(&Station {
                as2_id: id.into(),
                key_alias: id.to_lowercase(),
                mdn_url,
                mdn_email: None,
                message_id_domain: None,
            }))
            .unwrap();
    }

    /// A partnership with a short timeout; its retry policy is the deployment's (see `env`).
    pub fn partnership(
        &self,
        station: &str,
        partner: &str,
        url: &str,
        tune: impl Fn(&mut Partnership),
    ) {
        let mut p = Partnership::new(station, partner, url, &partner.to_lowercase());
        p.timeout_secs = 5;
        tune(&mut p);
        self.rt.block_on(self.dynamo.put_partnership(&p)).unwrap();
    }

    /// `identity.jks` with the stations' keys, `trust.jks` with the partners' certificates.
    pub fn keystores(&self, stations: &[&str], partners: &[&str]) {
        let mut identities = Keystore::new();
        for s in stations {
            identities.set_identity(&s.to_lowercase(), identity(s));
        }
        let mut trust = Keystore::new();
        for p in partners {
            trust.set_certificate(&p.to_lowercase(), &identity(p).certificate);
        }
        for (key, store) in [(ks::IDENTITY, identities), (ks::TRUST, trust)] {
            let jks = store
                .to_jks(KEYSTORE_PASSWORD, as2::UnixTime(1_700_000_000))
                .unwrap();
            self.put(key, &jks);
        }
    }

    /// Puts an object; returns (version id, etag without quotes).
    pub fn put(&self, key: &str, body: &[u8]) -> (String, String) {
        let out = self
            .rt
            .block_on(
                self.s3
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(body.to_vec().into())
                    .send(),
            )
            .unwrap();
        (
            out.version_id().unwrap_or("").to_string(),
            out.e_tag().unwrap_or("").trim_matches('"').to_string(),
        )
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self
            .rt
            .block_on(self.s3.get_object().bucket(&self.bucket).key(key).send())
            .ok()?;
        Some(self.rt.block_on(out.body.collect()).unwrap().to_vec())
    }

    /// Current objects under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.s3
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .send(),
            )
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// Every version (not delete markers) of objects under `prefix`.
    pub fn versions(&self, prefix: &str) -> usize {
        let out = self
            .rt
            .block_on(
                self.s3
                    .list_object_versions()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .send(),
            )
            .unwrap();
        out.versions().len()
    }

    /// The S3 event S3 would send for an upload of `key` (from `events/send-trigger/s3-put.json`).
    pub fn s3_event(
        &self,
        event_name: &str,
        key: &str,
        version: &str,
        etag: &str,
        size: usize,
    ) -> Value {
        let mut e = sample("send-trigger/s3-put.json");
        let r = &mut e["Records"][0];
        r["eventName"] = json!(event_name);
        let now = gateway::ports::Clock::now(&gateway_http::SystemClock);
        r["eventTime"] = json!(now.to_string());
        r["s3"]["bucket"]["name"] = json!(self.bucket);
        r["s3"]["bucket"]["arn"] = json!(format!("arn:aws:s3:::{}", self.bucket));
        let o = &mut r["s3"]["object"];
        o["key"] = json!(s3_event_key(key));
        o["size"] = json!(size);
        o["eTag"] = json!(etag);
        o["versionId"] = json!(version);
        let seq = self.sequencer.fetch_add(1, Ordering::SeqCst);
        o["sequencer"] = json!(format!("{seq:018X}"));
        e
    }

    /// Uploads `body` as `key` and returns the event for it.
    pub fn upload(&self, key: &str, body: &[u8]) -> Value {
        let (version, etag) = self.put(key, body);
        self.s3_event("ObjectCreated:Put", key, &version, &etag, body.len())
    }

    /// Takes `m` off the send queue, as an event source mapping does after a success.
    pub fn delete(&self, m: &Message) {
        self.delete_from(&self.queue_url, m);
    }

    /// Deletes `m`, received from `queue`.
    pub fn delete_from(&self, queue: &str, m: &Message) {
        self.rt
            .block_on(
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send(),
            )
            .unwrap();
    }

    /// Messages waiting in `queue` (at most 10), waiting up to a second for some.
    pub fn receive(&self, queue: &str) -> Vec<Message> {
        self.rt
            .block_on(
                self.sqs
                    .receive_message()
                    .queue_url(queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send(),
            )
            .unwrap()
            .messages()
            .to_vec()
    }

    /// Messages in the dead-letter queue, each as (body, reason attribute).
    pub fn dead_letters(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for _ in 0..5 {
            let got = self.receive(&self.dlq_url);
            if got.is_empty() {
                break;
            }
            for m in got {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get("reason"))
                    .and_then(|v| v.string_value())
                    .unwrap_or("")
                    .to_string();
                all.push((m.body().unwrap_or("").to_string(), reason));
            }
        }
        all
    }

    /// The SQS event Lambda would send for `messages` (from `events/as2-sender/sqs-batch.json`).
    pub fn sqs_event(&self, messages: &[Message]) -> Value {
        let template = sample("as2-sender/sqs-batch.json")["Records"][0].clone();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut r = template.clone();
                r["messageId"] = json!(m.message_id().unwrap());
                r["receiptHandle"] = json!(m.receipt_handle().unwrap());
                r["body"] = json!(m.body().unwrap());
                r["eventSourceARN"] = json!(format!(
                    "arn:aws:sqs:{}:123456789012:{}-send",
                    testkit::REGION,
                    self.prefix
                ));
                r
            })
            .collect();
        json!({ "Records": records })
    }

    /// What the SQS event source mapping does, once: receive a batch, invoke the function,
    /// delete the messages not reported as failed. Returns the batch size and the failures.
    pub fn deliver_once(&self, sender: &mut LambdaEmulator) -> (usize, Vec<String>) {
        let messages = self.receive(&self.queue_url);
        if messages.is_empty() {
            return (0, Vec::new());
        }
        let reply = sender
            .invoke(&self.sqs_event(&messages), Duration::from_secs(90))
            .unwrap_or_else(|e| panic!("as2-sender failed: {e:?}\n{}", sender.log_text()));
        let failed: Vec<String> = reply["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
            .collect();
        for m in &messages {
            if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                self.delete(m);
            }
        }
        (messages.len(), failed)
    }

    /// Runs the queue through `sender` until `done` holds (at most `limit`).
    pub fn pump_until(
        &self,
        sender: &mut LambdaEmulator,
        what: &str,
        limit: Duration,
        done: impl Fn(&Deployment) -> bool,
    ) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; records: {:#?}\nsender log:\n{}",
                self.records(),
                sender.log_text()
            );
            self.deliver_once(sender);
        }
    }

    pub fn records(&self) -> Vec<MessageRecord> {
        self.rt
            .block_on(
                self.dynamo
                    .query(&gateway::ports::RecordQuery::of(None, None, 200)),
            )
            .unwrap()
    }

    pub fn record(&self, id: &str) -> MessageRecord {
        self.rt.block_on(self.dynamo.get(id)).unwrap().unwrap()
    }
}

/// Invokes `send-trigger` with `event` and returns its single record's reply.
pub fn trigger(function: &mut LambdaEmulator, event: &Value) -> Value {
    let reply = function
        .invoke(event, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("send-trigger failed: {e:?}\n{}", function.log_text()));
    reply["records"][0].clone()
}

/// pyas2lib as `name` on `port`, trading with our `station` at `url`.
pub fn pyas2(
    dir: &Path,
    name: &str,
    port: u16,
    station: &str,
    url: &str,
    mdn: &str,
) -> Pyas2Partner {
    let id = identity(name);
    let (cert, key) = (
        id.certificate.to_pem().unwrap(),
        id.private_key.private_key_to_pem_pkcs8().unwrap(),
    );
    let station_cert = identity(station).certificate.to_pem().unwrap();
    Pyas2Partner::start(
        dir,
        name,
        (&cert, &key),
        port,
        &pyas2::Station {
            as2_id: station,
            cert_pem: &station_cert,
            url,
            trust_pem: None,
        },
        mdn,
    )
}

/// pyas2lib as PYAS2 on `port`, answering ALPHA's messages with synchronous receipts.
pub fn pyas2_sync(dir: &Path, port: u16) -> Pyas2Partner {
    pyas2(dir, "PYAS2", port, "ALPHA", "http://127.0.0.1:9/", "SYNC")
}

/// ALPHA and its partner PYAS2 at `url`, with a retry policy of `attempts` quick attempts of
/// its own, or (`None`) the deployment's.
pub fn alpha_with_pyas2(d: &Deployment, url: &str, attempts: Option<u32>) {
    d.keystores(&["ALPHA"], &["PYAS2"]);
    d.station("ALPHA", None);
    d.partnership("ALPHA", "PYAS2", url, |p| {
        p.retry = attempts.map(|attempts| gateway::model::RetryPolicy {
            attempts,
            first_interval_secs: 1,
            max_interval_secs: 60,
        })
    });
}

/// X12 text with CRLF line ends (pyas2lib rewrites bare LFs in non-binary parts).
pub fn edi(n: u32) -> Vec<u8> {
    format!("ISA*00*          *00*          *ZZ*ALPHA*ZZ*PYAS2*{n:09}~\r\nST*850*0001~\r\nBEG*00*SA*PO-{n}~\r\nSE*3*0001~\r\nIEA*1*{n:09}~\r\n").into_bytes()
}
