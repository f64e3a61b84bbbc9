//! Every port of the gateway on AWS: the account bucket on S3, the tables on DynamoDB, the send
//! queue on SQS, keystores read from the bucket with passwords from Secrets Manager or SSM, the
//! HTTP client, and the wall clock.

use gateway::keystore::{KeystorePasswords, StoreKeystore};
use gateway::ports::Ports;
use gateway_http::HttpTransport;
use gateway_http::SystemClock;

use crate::dynamo::{Dynamo, Tables};
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
}

/// The ports over AWS services.
#[derive(Debug)]
pub struct AwsPorts {
    store: S3Store,
    dynamo: Dynamo,
    keys: StoreKeystore<S3Store, AwsSecrets>,
    secrets: AwsSecrets,
    transport: HttpTransport,
    queue: SqsQueue,
    clock: SystemClock,
}

impl AwsPorts {
    /// Clients built once from `conf`, for `settings`.
    pub fn new(conf: &aws_config::SdkConfig, settings: &AwsSettings) -> Self {
        let store = S3Store::from_conf(conf, &settings.bucket);
        let secrets = AwsSecrets::from_conf(conf);
        AwsPorts {
            keys: StoreKeystore::new(
                store.clone(),
                secrets.clone(),
                settings.keystore_passwords.clone(),
            ),
            store,
            dynamo: Dynamo::from_conf(conf, settings.tables.clone()),
            secrets,
            transport: HttpTransport,
            queue: SqsQueue::from_conf(conf, &settings.queue_url, settings.dead_letter_url.clone()),
            clock: SystemClock,
        }
    }

    /// The queue (for parking and deferring jobs).
    pub fn sqs(&self) -> &SqsQueue {
        &self.queue
    }

    /// The tables (for tools and tests).
    pub fn dynamo(&self) -> &Dynamo {
        &self.dynamo
    }
}

impl Ports for AwsPorts {
    type Store = S3Store;
    type Duplicates = Dynamo;
    type Log = Dynamo;
    type Directory = Dynamo;
    type Keys = StoreKeystore<S3Store, AwsSecrets>;
    type Secrets = AwsSecrets;
    type Transport = HttpTransport;
    type Queue = SqsQueue;
    type Clock = SystemClock;

    fn store(&self) -> &S3Store {
        &self.store
    }
    fn duplicates(&self) -> &Dynamo {
        &self.dynamo
    }
    fn log(&self) -> &Dynamo {
        &self.dynamo
    }
    fn directory(&self) -> &Dynamo {
        &self.dynamo
    }
    fn keys(&self) -> &Self::Keys {
        &self.keys
    }
    fn secrets(&self) -> &AwsSecrets {
        &self.secrets
    }
    fn transport(&self) -> &HttpTransport {
        &self.transport
    }
    fn queue(&self) -> &SqsQueue {
        &self.queue
    }
    fn clock(&self) -> &SystemClock {
        &self.clock
    }
}
