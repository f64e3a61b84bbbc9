//! The lifecycle installer against moto: dry run, install, read back, re-run, foreign rules.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, Tag,
};
use gateway_aws::lifecycle::{self, Change, Effect};
use testkit::Moto;

async fn put_rules(s3: &aws_sdk_s3::Client, bucket: &str, rules: Vec<LifecycleRule>) {
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_merges_and_settles() {
    let moto = Moto::start();
    let conf = common::conf(&moto).await;
    let store = common::versioned_bucket(&conf).await;
    let (s3, bucket) = (store.client(), store.bucket());

    // The bucket's owner has a rule of their own (with a tag filter, which we do not model).
    let theirs = LifecycleRule::builder()
        .id("owner-archive")
        .status(ExpirationStatus::Enabled)
        .filter(
            LifecycleRuleFilter::builder()
                .tag(
                    Tag::builder()
                        .key("class")
                        .value("archive")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .expiration(LifecycleExpiration::builder().days(400).build())
        .build()
        .unwrap();
    put_rules(s3, bucket, vec![theirs.clone()]).await;

    // Dry run: says what it would do, writes nothing.
    let dry = lifecycle::install(s3, bucket, false).await.unwrap();
    assert_eq!(
        dry.changes
            .iter()
            .filter(|c| matches!(c, Change::Add(_)))
            .count(),
        7
    );
    assert_eq!(dry.foreign, ["owner-archive"]);
    assert_eq!(lifecycle::current(s3, bucket).await.unwrap().len(), 1);

    let done = lifecycle::install(s3, bucket, true).await.unwrap();
    assert_eq!(done, dry);
    let now = lifecycle::current(s3, bucket).await.unwrap();
    assert_eq!(now.len(), 8);
    let read = |id: &str| Effect::of(now.iter().find(|r| r.id() == Some(id)).unwrap());
    assert_eq!(
        Effect::of(
            now.iter()
                .find(|r| r.id() == Some("owner-archive"))
                .unwrap()
        ),
        Effect::of(&theirs)
    );
    for (id, prefix, days, noncurrent) in lifecycle::expiring() {
        let e = read(&id);
        assert_eq!(
            (
                e.prefix.as_deref(),
                e.expiration_days,
                e.noncurrent_days,
                e.enabled
            ),
            (Some(prefix), Some(days), Some(noncurrent), true),
            "{id}"
        );
    }
    assert!(read(lifecycle::DELETE_MARKERS_RULE).expired_delete_markers);
    assert_eq!(
        read(lifecycle::INCOMPLETE_UPLOADS_RULE).abort_incomplete_days,
        Some(7)
    );

    // Again: nothing to do.
    let again = lifecycle::install(s3, bucket, true).await.unwrap();
    assert!(again.is_noop(), "{again}");

    // Someone changed one of ours: put back, the rest untouched.
    let mut rules = now.clone();
    let tmp = rules
        .iter_mut()
        .find(|r| r.id() == Some("mftg-tmp"))
        .unwrap();
    *tmp = LifecycleRule::builder()
        .id("mftg-tmp")
        .status(ExpirationStatus::Disabled)
        .filter(LifecycleRuleFilter::builder().prefix("AS2/tmp/").build())
        .expiration(LifecycleExpiration::builder().days(1).build())
        .build()
        .unwrap();
    put_rules(s3, bucket, rules).await;
    let fixed = lifecycle::install(s3, bucket, true).await.unwrap();
    assert_eq!(
        fixed
            .changes
            .iter()
            .filter(|c| !matches!(c, Change::Keep(_)))
            .collect::<Vec<_>>(),
        [&Change::Replace("mftg-tmp".into())]
    );
    assert!(lifecycle::install(s3, bucket, false)
        .await
        .unwrap()
        .is_noop());

    // No such bucket: a clear error.
    let e = lifecycle::install(s3, "mftg-no-such-bucket-1", true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("mftg-no-such-bucket-1"), "{e}");
}
