//! Shared by the adapter tests: SDK configuration for moto.

#![allow(dead_code)] // not every test binary uses everything

use gateway_aws::config::{self, Endpoint};
use testkit::Moto;

/// The SDK configuration for `moto`.
pub async fn conf(moto: &Moto) -> aws_config::SdkConfig {
    config::load(&Endpoint {
        url: Some(moto.url().into()),
        region: Some(testkit::REGION.into()),
    })
    .await
}

/// A new versioned bucket with a unique name.
pub async fn versioned_bucket(conf: &aws_config::SdkConfig) -> gateway_aws::s3::S3Store {
    let name = Moto::unique("mftg-test");
    let store = gateway_aws::s3::S3Store::from_conf(conf, &name);
    store
        .create_bucket(testkit::REGION, true)
        .await
        .expect("create a versioned bucket");
    store
}
