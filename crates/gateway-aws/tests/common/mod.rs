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
    let s3 = store.client();
    s3.create_bucket()
        .bucket(&name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    testkit::REGION,
                ))
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
    s3.put_bucket_versioning()
        .bucket(&name)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
    store
}
