//! The Lambda suite (station ALPHA, real binaries against moto, a Function URL in front of
//! `as2-receiver`) trading with the embedded gateway (`mftg serve`'s node, station BETA) both
//! ways, with synchronous and asynchronous receipts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use as2::keys::Keystore;
use common::*;
use gateway::layout::{keystore as ks, Direction};
use gateway::model::{MdnMode, MessageRecord, Partnership, RetryPolicy, Station, Status};
use gateway::ports::MessageLog;
use gateway_local::{Config, Node, Shutdown};
use testkit::function_url::FunctionUrl;

const PASSWORD_ENV: &str = "MFTG_LAMBDA_TEST_EMBEDDED_KEYSTORE";

struct Embedded {
    node: Arc<Node>,
    stop: tokio::sync::watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
    config: Config,
}

impl Embedded {
    fn start(root: &std::path::Path, port: u16, alpha_url: &str, mode: MdnMode) -> Embedded {
        std::env::set_var(PASSWORD_ENV, KEYSTORE_PASSWORD);
        let mut c = Config::new(root.join("beta"));
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.poll_interval_ms = 100;
        c.keystore_password_env = PASSWORD_ENV.into();
        c.stations.push(Station {
            as2_id: "BETA".into(),
            key_alias: "beta".into(),
            mdn_url: Some(format!("http://127.0.0.1:{port}/as2")),
            mdn_email: None,
            message_id_domain: Some("beta.example".into()),
        });
        let mut p = Partnership::new("BETA", "ALPHA", alpha_url, "alpha");
        p.mdn = mode;
        p.retry = Some(RetryPolicy {
            first_interval_secs: 1,
            ..RetryPolicy::default()
        });
        p.timeout_secs = 30;
        c.partnerships.push(p);
        let mut identities = Keystore::new();
        identities.set_identity("beta", identity("BETA"));
        let mut trust = Keystore::new();
        trust.set_certificate("alpha", &identity("ALPHA").certificate);
        for (key, store) in [(ks::IDENTITY, identities), (ks::TRUST, trust)] {
            let path = c.data_dir.join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let jks = store
                .to_jks(KEYSTORE_PASSWORD, as2::UnixTime(1_700_000_000))
                .unwrap();
            std::fs::write(path, jks).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let node = Arc::new(Node::open(c.clone()).unwrap());
        let (stop, shutdown) = Shutdown::new();
        let n = node.clone();
        let listen = c.listen;
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
            n.serve_on(listener, shutdown).await.unwrap();
        });
        Embedded {
            node,
            stop,
            runtime: Some(runtime),
            config: c,
        }
    }

    fn records(&self) -> Vec<MessageRecord> {
        let db = &self.node.gateway.ports.log;
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(db.query(&gateway::ports::RecordQuery::of(None, None, 100)))
            .unwrap()
    }

    fn drop_file(&self, name: &str, body: &[u8]) {
        let dir = self.config.data_dir.join("AS2/send/BETA/ALPHA");
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!(".{name}.part"));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(tmp, dir.join(name)).unwrap();
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

#[test]
fn trading_with_the_embedded_gateway() {
    for mode in [MdnMode::Sync, MdnMode::Async] {
        let d = Deployment::new();
        let tmp = tempfile::tempdir().unwrap();
        let receiver = FunctionUrl::start(d.function("as2-receiver", "receiver", &[]));
        let alpha_url = format!("{}/as2", receiver.url());
        let port = free_port();
        let beta = Embedded::start(tmp.path(), port, &alpha_url, mode);
        d.keystores(&["ALPHA"], &["BETA"]);
        d.station("ALPHA", Some(alpha_url.clone()));
        d.partnership(
            "ALPHA",
            "BETA",
            &format!("http://127.0.0.1:{port}/as2"),
            |p| {
                p.mdn = mode;
                // Room for the large message's POST (1 GiB in `make bench`).
                p.timeout_secs = 900;
            },
        );
        let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
        let mut sender = d.function("as2-sender", "sender", &[]);

        // ALPHA (Lambda) -> BETA (embedded).
        let out = trigger(
            &mut trigger_fn,
            &d.upload("AS2/send/ALPHA/BETA/orders 11.edi", &edi(11)),
        );
        let id = out["id"].as_str().unwrap().to_string();
        d.pump_until(
            &mut sender,
            "delivery to BETA",
            Duration::from_secs(60),
            |d| d.record(&id).status == Status::Delivered,
        );
        let mdn = d.record(&id).mdn.unwrap();
        assert_eq!(
            (mdn.disposition.as_str(), mdn.mic.as_str()),
            ("processed", "matches")
        );
        let got: Vec<_> = beta
            .records()
            .into_iter()
            .filter(|r| r.direction == Direction::Inbox)
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].filename, "orders 11.edi");
        assert_eq!(
            std::fs::read(
                beta.config
                    .data_dir
                    .join(got[0].payload_key.as_ref().unwrap())
            )
            .unwrap(),
            edi(11)
        );

        if mode == MdnMode::Sync {
            large_message(&d, &mut trigger_fn, &mut sender, &beta);
        }

        // BETA (embedded) -> ALPHA (Lambda, through the Function URL).
        beta.drop_file("asn 12.edi", &edi(12));
        let start = Instant::now();
        loop {
            let done = beta
                .records()
                .iter()
                .any(|r| r.direction == Direction::Outbox && r.status == Status::Delivered);
            if done {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{mode:?}: BETA's message not delivered: {:#?}",
                beta.records()
            );
            // Asynchronous receipts are sent by as2-sender.
            d.deliver_once(&mut sender);
        }
        let inbound: Vec<_> = d
            .records()
            .into_iter()
            .filter(|r| r.direction == Direction::Inbox)
            .collect();
        assert_eq!(inbound.len(), 1);
        assert_eq!(inbound[0].status, Status::Received);
        assert_eq!(
            d.get(inbound[0].payload_key.as_ref().unwrap()),
            Some(edi(12))
        );
        assert!(inbound[0]
            .payload_key
            .as_ref()
            .unwrap()
            .starts_with("AS2/files/ALPHA/BETA/inbox/"));
    }
}

/// A payload of 48 MiB (`MFTG_LAMBDA_LARGE_MIB`; `make bench` runs 1024) from ALPHA's bucket:
/// as2-sender reads it from S3 as it arrives, writes the message as sent in a multipart upload
/// and posts it from there, never holding either whole.
fn large_message(
    d: &Deployment,
    trigger_fn: &mut testkit::lambda::LambdaEmulator,
    sender: &mut testkit::lambda::LambdaEmulator,
    beta: &Embedded,
) {
    let mib: usize = std::env::var("MFTG_LAMBDA_LARGE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let size = mib << 20;
    let baseline = testkit::memory_kib(sender.pid(), "VmHWM");
    let payload = testkit::incompressible(size);
    let out = trigger(
        trigger_fn,
        &d.upload("AS2/send/ALPHA/BETA/big.bin", &payload),
    );
    let id = out["id"].as_str().unwrap().to_string();
    d.pump_until(
        sender,
        "the large message delivered to BETA",
        Duration::from_secs(120 + mib as u64 / 2),
        |d| d.record(&id).status.is_final(),
    );
    let r = d.record(&id);
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert_eq!(r.mdn.unwrap().mic, "matches");
    let peak = testkit::memory_kib(sender.pid(), "VmHWM");
    eprintln!("as2-sender: peak {baseline} KiB after a small message, {peak} KiB after {mib} MiB");
    // In memory it held the payload and the message, three times the payload; streaming, a few
    // parts and the SDK's buffers (1 GiB in `make bench`: about 62 MiB). The target: 128 MiB.
    assert!(
        peak < baseline + 48 * 1024 && peak < 128 * 1024,
        "as2-sender's peak went from {baseline} KiB to {peak} KiB for a {mib} MiB payload"
    );
    let got = beta
        .records()
        .into_iter()
        .find(|r| r.direction == Direction::Inbox && r.filename == "big.bin")
        .unwrap();
    let file = std::fs::read(beta.config.data_dir.join(got.payload_key.unwrap())).unwrap();
    assert!(file == payload, "BETA has the payload, byte for byte");
}
