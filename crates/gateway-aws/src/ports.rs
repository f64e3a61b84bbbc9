//! Every port of the gateway on AWS: the account bucket on S3, the tables on DynamoDB, the send
//! queue on SQS, keystores read from the bucket with passwords from Secrets Manager or SSM, the
//! HTTP client, the wall clock, and events on EventBridge.

use gateway::keystore::{KeystorePasswords, StoreKeystore};
use gateway::ports::PortSet;
use gateway_http::HttpTransport;
use gateway_http::SystemClock;

use crate::dynamo::{Dynamo, Tables};
use crate::eventbridge::EventBridgeEvents;
use crate::s3::S3Store;
use crate::secrets::AwsSecrets;
use crate::sqs::SqsQueue;

/// Where everything is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The account bucket.
    pub bucket: String,
    /// The DynamoDB tables.
    pub tables: Tables,
    /// The send queue's URL.
    pub queue_url: String,
    /// Its dead-letter queue's URL.
    pub dead_letter_url: Option<String>,
    /// Names of the secrets holding the keystore passwords.
    pub keystore_passwords: KeystorePasswords,
    /// The EventBridge bus events are put on; `None` puts none.
    pub event_bus: Option<String>,
}

/// The ports over AWS services (one DynamoDB client for the duplicate index, the log and the
/// directory).
pub type AwsPorts = PortSet<
    S3Store,
    Dynamo,
    Dynamo,
    Dynamo,
    StoreKeystore<S3Store, AwsSecrets>,
    AwsSecrets,
    HttpTransport,
    SqsQueue,
    SystemClock,
    EventBridgeEvents,
>;

/// Clients built once from `conf`, for `settings`.
pub fn aws_ports(conf: &aws_config::SdkConfig, settings: &AwsSettings) -> AwsPorts {
    let store = S3Store::from_conf(conf, &settings.bucket);
    let secrets = AwsSecrets::from_conf(conf);
    let dynamo = Dynamo::from_conf(conf, settings.tables.clone());
    PortSet {
        keys: StoreKeystore::new(
            store.clone(),
            secrets.clone(),
            settings.keystore_passwords.clone(),
        ),
        store,
        duplicates: dynamo.clone(),
        log: dynamo.clone(),
        directory: dynamo,
        secrets,
        transport: HttpTransport::new(),
        queue: SqsQueue::from_conf(conf, &settings.queue_url, settings.dead_letter_url.clone()),
        clock: SystemClock,
        events: EventBridgeEvents::from_conf(conf, settings.event_bus.as_deref(), &settings.bucket),
    }
}
