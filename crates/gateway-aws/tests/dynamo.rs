//! The DynamoDB adapters against moto: the duplicate window's conditional write (with TTL and
//! 50 racing claims), the message log (optimistic locking, a Message-ID received once, lookups and
//! listings) and the partner directory.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use gateway::layout::{Direction, SendKey};
use gateway::model::{MessageRecord, Partnership, Station, Status, StatusChange};
use gateway::ports::{
    Claim, ClaimRecord, ClaimRequest, Created, DuplicateIndex, MessageLog, PartnerDirectory,
};
use gateway::{GatewayError, Millis};
use gateway_aws::dynamo::{Dynamo, Tables};
use testkit::Moto;

const T0: Millis = Millis(1_795_845_423_000);
const WINDOW: Duration = Duration::from_secs(6 * 3600);

async fn tables(moto: &Moto) -> Dynamo {
    let conf = common::conf(moto).await;
    let d = Dynamo::from_conf(&conf, Tables::with_prefix(&Moto::unique("mftg")));
    d.create_tables().await.unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duplicate_window_is_one_conditional_write() {
    let moto = Moto::start();
    let d = tables(&moto).await;
    let claim = |upload: &'static str, record: &'static str, at: Millis| {
        let d = d.clone();
        async move {
            d.claim(
                &SendKey::new("ALPHA", "BETA", "order 1.edi"),
                &ClaimRequest {
                    upload_id: upload,
                    record_id: record,
                    at,
                    window: WINDOW,
                },
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(claim("v1", "r1", T0).await, Claim::Accepted);
    // The same upload again (a redelivered event), even much later: a redelivery of r1.
    assert_eq!(
        claim("v1", "r9", T0.plus(Duration::from_secs(60))).await,
        Claim::Redelivery {
            record_id: "r1".into()
        }
    );
    // Another upload of the name inside the window: a duplicate of r1.
    assert_eq!(
        claim("v2", "r2", T0.plus(WINDOW - Duration::from_millis(1))).await,
        Claim::Duplicate {
            accepted_at: T0,
            record_id: "r1".into()
        }
    );
    // At the window's end it is accepted, and the window starts again from it.
    let later = T0.plus(WINDOW);
    assert_eq!(claim("v3", "r3", later).await, Claim::Accepted);
    assert_eq!(
        claim("v4", "r4", later.plus(Duration::from_secs(1))).await,
        Claim::Duplicate {
            accepted_at: later,
            record_id: "r3".into()
        }
    );
    // Another name, partner or station is another window.
    assert_eq!(
        d.claim(
            &SendKey::new("ALPHA", "GAMMA", "order 1.edi"),
            &ClaimRequest {
                upload_id: "v5",
                record_id: "r5",
                at: later,
                window: WINDOW
            },
        )
        .await
        .unwrap(),
        Claim::Accepted
    );

    // The item's TTL attribute is the window's end, in epoch seconds, and TTL is on.
    let item = d
        .client()
        .get_item()
        .table_name(&d.tables().claims)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("ALPHA/BETA/order 1.edi".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires_at: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    // Kept well past its window (longer than an event is retried), so a late redelivery of an
    // upload it judged is judged the same way.
    assert_eq!(
        expires_at,
        later.plus(WINDOW).plus(ClaimRecord::KEPT).0 / 1000 + 1
    );
    assert_eq!(item["upload_id"].as_s().unwrap(), "v3");
    let ttl = d
        .client()
        .describe_time_to_live()
        .table_name(&d.tables().claims)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_queries() {
    let moto = Moto::start();
    gateway::memory::check_record_queries(&tables(&moto).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_is_fixed_at_acceptance() {
    let moto = Moto::start();
    gateway::memory::check_window_fixed_at_acceptance(&tables(&moto).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_claims_accept_exactly_one() {
    let moto = Moto::start();
    let d = Arc::new(tables(&moto).await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            d.claim(
                &SendKey::new("ALPHA", "BETA", "race.edi"),
                &ClaimRequest {
                    upload_id: &format!("v{i}"),
                    record_id: &format!("r{i}"),
                    at: T0,
                    window: WINDOW,
                },
            )
            .await
            .unwrap()
        }));
    }
    let mut accepted = 0;
    let mut duplicates = 0;
    for t in tasks {
        match t.await.unwrap() {
            Claim::Accepted => accepted += 1,
            Claim::Duplicate { .. } => duplicates += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((accepted, duplicates), (1, 49));
}

fn record(
    id: &str,
    direction: Direction,
    partner: &str,
    message_id: &str,
    at: Millis,
) -> MessageRecord {
    let mut r = MessageRecord::new(
        id,
        direction,
        "ALPHA",
        partner,
        "order.edi",
        StatusChange::new(at, Status::Queued, None),
    );
    r.message_id = message_id.into();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_log() {
    let moto = Moto::start();
    let d = tables(&moto).await;

    // Outbound: created without a Message-ID, which the first attempt sets.
    let mut out = record(
        "20261128060000000-00000001",
        Direction::Outbox,
        "BETA",
        "",
        T0,
    );
    assert_eq!(d.create(&out).await.unwrap(), Created::New);
    assert!(matches!(d.create(&out).await.unwrap(), Created::Exists(_)));
    out.message_id = "<m1@alpha.example>".into();
    out.set_status(Status::Sending, T0, None);
    d.update(&mut out).await.unwrap();
    assert_eq!(out.revision, 1);
    let found = d
        .find_outbound("ALPHA", "BETA", "m1@alpha.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, out);
    assert_eq!(
        d.find_outbound("ALPHA", "GAMMA", "m1@alpha.example")
            .await
            .unwrap(),
        None
    );
    // A stale writer is refused.
    let mut stale = found.clone();
    stale.revision = 0;
    match d.update(&mut stale).await {
        Err(GatewayError::Conflict(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.get(&out.id).await.unwrap().unwrap().status,
        Status::Sending
    );
    // Updating a record that is not there is a conflict too.
    let mut ghost = record(
        "20261128060000000-0000ffff",
        Direction::Outbox,
        "BETA",
        "",
        T0,
    );
    assert!(matches!(
        d.update(&mut ghost).await,
        Err(GatewayError::Conflict(_))
    ));

    // Inbound: a partner's Message-ID is received once, whatever record id the second try has.
    let first = record(
        "20261128060001000-00000002",
        Direction::Inbox,
        "BETA",
        "<in-1@beta>",
        T0,
    );
    assert_eq!(d.create(&first).await.unwrap(), Created::New);
    let again = record(
        "20261128060002000-00000003",
        Direction::Inbox,
        "BETA",
        "in-1@beta",
        T0,
    );
    match d.create(&again).await.unwrap() {
        Created::Exists(existing) => assert_eq!(existing.id, first.id),
        Created::New => panic!("a Message-ID was received twice"),
    }
    assert_eq!(d.get(&again.id).await.unwrap(), None);
    // The same Message-ID from another partner is another message.
    let other = record(
        "20261128060003000-00000004",
        Direction::Inbox,
        "GAMMA",
        "in-1@beta",
        T0,
    );
    assert_eq!(d.create(&other).await.unwrap(), Created::New);

    // Listings, newest first.
    let ids = |v: Vec<MessageRecord>| v.into_iter().map(|r| r.id).collect::<Vec<String>>();
    assert_eq!(
        ids(d
            .query(&gateway::ports::RecordQuery::of(None, None, 10))
            .await
            .unwrap()),
        [other.id.as_str(), first.id.as_str(), out.id.as_str()]
    );
    assert_eq!(
        ids(d
            .query(&gateway::ports::RecordQuery::of(None, None, 2))
            .await
            .unwrap()),
        [other.id.as_str(), first.id.as_str()]
    );
    assert_eq!(
        ids(d
            .query(&gateway::ports::RecordQuery::of(
                Some("ALPHA"),
                Some("BETA"),
                10
            ))
            .await
            .unwrap()),
        [first.id.as_str(), out.id.as_str()]
    );
    assert_eq!(
        ids(d
            .query(&gateway::ports::RecordQuery::of(Some("ALPHA"), None, 1))
            .await
            .unwrap()),
        [other.id.as_str()]
    );
    assert_eq!(
        ids(d
            .query(&gateway::ports::RecordQuery::of(None, Some("GAMMA"), 10))
            .await
            .unwrap()),
        [other.id.as_str()]
    );
    assert!(d
        .query(&gateway::ports::RecordQuery::of(Some("NOBODY"), None, 10))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_directory() {
    let moto = Moto::start();
    let d = tables(&moto).await;
    let station = Station {
        as2_id: "ALPHA".into(),
        key_alias: "alpha".into(),
        mdn_url: Some("https://as2.alpha.example/as2".into()),
        mdn_email: None,
        message_id_domain: Some("alpha.example".into()),
    };
    d.put_station(&station).await.unwrap();
    let mut p = Partnership::new("ALPHA", "BETA", "https://beta.example/as2", "beta");
    p.retry = Some(gateway::model::RetryPolicy {
        attempts: 7,
        ..Default::default()
    });
    d.put_partnership(&p).await.unwrap();
    assert_eq!(d.station("ALPHA").await.unwrap(), Some(station));
    assert_eq!(d.partnership("ALPHA", "BETA").await.unwrap(), Some(p));
    // What a station or partnership leaves unset stays unset, for the deployment's defaults.
    let bare = Station {
        as2_id: "OMEGA".into(),
        key_alias: "omega".into(),
        mdn_url: None,
        mdn_email: None,
        message_id_domain: None,
    };
    d.put_station(&bare).await.unwrap();
    assert_eq!(d.station("OMEGA").await.unwrap(), Some(bare));
    let q = Partnership::new("OMEGA", "BETA", "https://beta.example/as2", "beta");
    d.put_partnership(&q).await.unwrap();
    assert_eq!(
        d.partnership("OMEGA", "BETA").await.unwrap().unwrap().retry,
        None
    );
    assert_eq!(d.partnership("ALPHA", "GAMMA").await.unwrap(), None);
    assert_eq!(d.station("BETA").await.unwrap(), None);

    // Plain: neither signed nor encrypted nor compressed, and it reads back that way.
    let mut plain = Partnership::new("ALPHA", "PLAIN", "https://plain.example/as2", "plain");
    (plain.encryption, plain.signing) = (None, None);
    plain.compression = as2::message::Compression::None;
    d.put_partnership(&plain).await.unwrap();
    assert_eq!(d.partnership("ALPHA", "PLAIN").await.unwrap(), Some(plain));

    // An item written by hand with a cipher the gateway does not know: refused when read, as a
    // configuration error naming the partnership, the field and what is accepted.
    let doc = r#"{"station":"ALPHA","partner":"TYPO","url":"https://t.example/as2","certificate_alias":"t","encryption":"aes-512-cbc"}"#;
    d.client()
        .put_item()
        .table_name(&d.tables().partners)
        .item("pk", AttributeValue::S("partnership#ALPHA/TYPO".into()))
        .item("doc", AttributeValue::S(doc.into()))
        .send()
        .await
        .unwrap();
    match d.partnership("ALPHA", "TYPO").await {
        Err(GatewayError::Config(e)) => assert!(
            e.contains("ALPHA -> TYPO")
                && e.contains("encryption: \"aes-512-cbc\"")
                && e.contains("accepted: none, 3des-cbc"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_and_removes_what_the_cli_writes() {
    let moto = Moto::start();
    let d = tables(&moto).await;
    for id in ["ZULU", "ALPHA"] {
        d.put_station(&Station {
            as2_id: id.into(),
            key_alias: id.to_lowercase(),
            mdn_url: None,
            mdn_email: None,
            message_id_domain: None,
        })
        .await
        .unwrap();
    }
    for partner in ["GAMMA", "BETA"] {
        d.put_partnership(&Partnership::new(
            "ALPHA",
            partner,
            "https://p.example/as2",
            "p",
        ))
        .await
        .unwrap();
    }
    let ids: Vec<_> = d
        .stations()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.as2_id)
        .collect();
    assert_eq!(ids, ["ALPHA", "ZULU"]);
    let pairs: Vec<_> = d
        .partnerships()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.partner)
        .collect();
    assert_eq!(pairs, ["BETA", "GAMMA"]);
    d.delete_partnership("ALPHA", "BETA").await.unwrap();
    d.delete_station("ZULU").await.unwrap();
    // Removing what is not there is not an error.
    d.delete_station("NOBODY").await.unwrap();
    assert_eq!(d.partnership("ALPHA", "BETA").await.unwrap(), None);
    assert_eq!(d.partnerships().await.unwrap().len(), 1);
    assert_eq!(d.stations().await.unwrap().len(), 1);
}
