//! The S3 object store against moto: a versioned bucket, metadata, keys with spaces and
//! non-ASCII characters, exact-version copies and deletes (moves), multipart copies, listing
//! past one page, and a store that cannot be reached.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::BTreeMap;

use gateway::ports::ObjectStore;
use gateway::GatewayError;
use testkit::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_head_copy_delete_in_a_versioned_bucket() {
    let moto = Moto::start();
    let conf = common::conf(&moto).await;
    let store = common::versioned_bucket(&conf).await;

    let key = "AS2/send/ALPHA/BETA/order 1 ü+x.edi";
    let meta = BTreeMap::from([("origin".to_string(), "sftp".to_string())]);
    let first = store
        .put(key, b"first".to_vec(), meta.clone())
        .await
        .unwrap();
    assert_eq!(first.size, 5);
    assert!(
        first.version.is_some(),
        "a versioned bucket gives version ids"
    );
    let second = store
        .put(key, b"second!".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    assert_ne!(first.version, second.version);

    let got = store.get(key).await.unwrap().unwrap();
    assert_eq!(got.data, b"second!");
    assert_eq!(got.meta.version, second.version);
    let head = store.head(key).await.unwrap().unwrap();
    assert_eq!(
        (head.size, head.version.clone()),
        (7, second.version.clone())
    );
    assert_eq!(head.etag, second.etag);

    // Copy the first version, not the current one, metadata and all; then delete exactly it.
    let moved = "AS2/duplicate/ALPHA/BETA/order 1 ü+x.edi";
    let copied = store
        .copy(key, first.version.as_deref(), moved)
        .await
        .unwrap();
    assert_eq!(copied.size, 5);
    let copy = store.get(moved).await.unwrap().unwrap();
    assert_eq!(copy.data, b"first");
    assert_eq!(copy.meta.metadata, meta);
    store.delete(key, first.version.as_deref()).await.unwrap();
    assert_eq!(store.get(key).await.unwrap().unwrap().data, b"second!");
    store.delete(key, second.version.as_deref()).await.unwrap();
    assert!(store.get(key).await.unwrap().is_none());
    assert!(store.head(key).await.unwrap().is_none());
    // Deleting what is not there is not an error; copying it is NotFound.
    store.delete(key, None).await.unwrap();
    match store.copy(key, None, "AS2/tmp/x").await {
        Err(GatewayError::NotFound(k)) => assert_eq!(k, key),
        other => panic!("{other:?}"),
    }
    match store
        .copy(moved, Some("no-such-version"), "AS2/tmp/x")
        .await
    {
        Err(GatewayError::NotFound(_) | GatewayError::Port { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_goes_past_one_page() {
    let moto = Moto::start();
    let conf = common::conf(&moto).await;
    let store = common::versioned_bucket(&conf).await;
    for i in 0..1003 {
        store
            .put(
                &format!("AS2/files/A/B/inbox/{i:05}/f"),
                vec![b'x'; i % 7],
                BTreeMap::new(),
            )
            .await
            .unwrap();
    }
    store
        .put("AS2/files/A/C/inbox/x/f", vec![], BTreeMap::new())
        .await
        .unwrap();
    let listed = store.list("AS2/files/A/B/").await.unwrap();
    assert_eq!(listed.len(), 1003);
    assert!(listed.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
    assert_eq!(listed[8].1.size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_are_copied_in_parts() {
    let moto = Moto::start();
    let conf = common::conf(&moto).await;
    let store = common::versioned_bucket(&conf)
        .await
        .with_multipart_copy(5 * 1024 * 1024, 5 * 1024 * 1024);
    let data: Vec<u8> = (0..12 * 1024 * 1024 + 17)
        .map(|i| (i % 251) as u8)
        .collect();
    let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let put = store
        .put("AS2/send/A/B/big.bin", data.clone(), meta.clone())
        .await
        .unwrap();
    let copied = store
        .copy(
            "AS2/send/A/B/big.bin",
            put.version.as_deref(),
            "AS2/files/A/B/outbox/1/big.bin",
        )
        .await
        .unwrap();
    assert_eq!(copied.size, data.len() as u64);
    let got = store
        .get("AS2/files/A/B/outbox/1/big.bin")
        .await
        .unwrap()
        .unwrap();
    assert!(got.data == data, "the parts make up the object");
    assert_eq!(got.meta.metadata, meta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_written_in_a_multipart_upload_and_read_as_they_arrive() {
    use gateway::ports::{ObjectReader as _, ObjectWriter as _, PART_SIZE};
    let moto = Moto::start();
    let conf = common::conf(&moto).await;
    let store = common::versioned_bucket(&conf).await;
    let key = "AS2/raw-message/A/B/outbox/m1/m1.msg";
    let data: Vec<u8> = (0..2 * PART_SIZE + 1234).map(|i| (i % 253) as u8).collect();
    let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let mut w = store.writer(key, meta.clone()).await.unwrap();
    for piece in data.chunks(3 * 1024 * 1024) {
        w.write(piece).await.unwrap();
    }
    assert!(
        store.head(key).await.unwrap().is_none(),
        "nothing is there before the upload completes"
    );
    let put = w.finish().await.unwrap();
    assert_eq!(put.size, data.len() as u64);
    assert!(put.version.is_some());
    let (head, mut r) = store.reader(key).await.unwrap().unwrap();
    assert_eq!((head.size, &head.metadata), (data.len() as u64, &meta));
    let mut read = Vec::new();
    while let Some(part) = r.next().await.unwrap() {
        assert!(part.len() <= PART_SIZE);
        read.extend_from_slice(&part);
    }
    assert!(read == data, "the parts make up the object");

    // Under a part's size it is one PutObject; an upload dropped unfinished leaves nothing.
    let mut w = store.writer("AS2/small", BTreeMap::new()).await.unwrap();
    w.write(b"small").await.unwrap();
    assert_eq!(w.finish().await.unwrap().size, 5);
    assert_eq!(
        store.get("AS2/small").await.unwrap().unwrap().data,
        b"small"
    );
    let mut w = store.writer("AS2/dropped", BTreeMap::new()).await.unwrap();
    w.write(&data[..PART_SIZE + 1]).await.unwrap();
    drop(w);
    assert!(store.head("AS2/dropped").await.unwrap().is_none());
    let s3 = aws_sdk_s3::Client::new(&conf);
    let mut left = usize::MAX;
    for _ in 0..50 {
        let uploads = s3
            .list_multipart_uploads()
            .bucket(store.bucket())
            .send()
            .await
            .unwrap();
        left = uploads.uploads().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the dropped upload was aborted");
    assert!(store.reader("AS2/nothing").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_a_port_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint {
        url: Some(format!("http://127.0.0.1:{port}")),
        region: Some(testkit::REGION.into()),
    })
    .await;
    let store = gateway_aws::s3::S3Store::from_conf(&conf, "mftg-nowhere");
    match store.get("AS2/send/A/B/x").await {
        Err(GatewayError::Port { port, message }) => {
            assert_eq!(port, "s3");
            assert!(message.contains("GetObject AS2/send/A/B/x"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
