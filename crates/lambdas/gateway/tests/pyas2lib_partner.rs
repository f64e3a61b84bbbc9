//! The real Lambda binaries against moto, trading with a pyas2lib partner over HTTP: a file put
//! into the bucket under `AS2/send/ALPHA/PYAS2/` is delivered (raw message, headers and receipt in
//! the bucket, `delivered` in the table), and pyas2lib's messages POSTed through a Function URL
//! land in the inbox with the receipt pyas2lib asked for. Synchronous and asynchronous receipts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use gateway::layout::{Direction, MessagePaths};
use gateway::model::{MdnMode, Status};
use testkit::function_url::FunctionUrl;

#[test]
fn trading_with_a_pyas2lib_partner() {
    for (mode, py_mode) in [(MdnMode::Sync, "SYNC"), (MdnMode::Async, "ASYNC")] {
        let d = Deployment::new();
        let tmp = tempfile::tempdir().unwrap();
        // The station names neither a receipt URL nor a Message-ID domain: the deployment's
        // (template parameters As2Url and MessageIdDomain) apply.
        let receiver = FunctionUrl::start(d.function(
            "as2-receiver",
            "receiver",
            &[("MFTG_MESSAGE_ID_DOMAIN", "alpha.example")],
        ));
        let our_url = format!("{}/as2", receiver.url());
        let defaults = [
            ("MFTG_AS2_URL", our_url.as_str()),
            ("MFTG_MESSAGE_ID_DOMAIN", "alpha.example"),
        ];
        let port = free_port();
        let py = pyas2(
            &tmp.path().join("pyas2"),
            "PYAS2",
            port,
            "ALPHA",
            &our_url,
            py_mode,
        );
        d.keystores(&["ALPHA"], &["PYAS2"]);
        d.station("ALPHA", None);
        d.partnership(
            "ALPHA",
            "PYAS2",
            &format!("http://127.0.0.1:{port}/as2"),
            |p| {
                p.mdn = mode;
            },
        );
        let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
        let mut sender = d.function("as2-sender", "sender", &defaults);

        // ALPHA -> pyas2lib: the upload, as S3 announces it (key with spaces, brackets and
        // accents; the Subject carrying the name must reach pyas2lib as RFC 2047 ASCII).
        let name = "PO 2026 été (1).x12";
        let key = format!("AS2/send/ALPHA/PYAS2/{name}");
        let event = d.upload(&key, &edi(1));
        let out = trigger(&mut trigger_fn, &event);
        assert_eq!(out["outcome"], "queued", "{mode:?}: {out}");
        let id = out["id"].as_str().unwrap().to_string();
        assert_eq!(d.get(&key), None, "the upload is moved out of AS2/send");
        let paths = MessagePaths::new("ALPHA", "PYAS2", Direction::Outbox, &id).unwrap();
        assert_eq!(d.get(&paths.payload(name).unwrap()), Some(edi(1)));

        // S3 delivers an event more than once now and then: nothing more happens.
        let again = trigger(&mut trigger_fn, &event);
        assert_ne!(again["outcome"], "queued", "{again}");
        assert_eq!(d.records().len(), 1);

        d.pump_until(
            &mut sender,
            "delivery to pyas2lib",
            Duration::from_secs(60),
            |d| {
                let status = d.record(&id).status;
                assert_ne!(
                    status,
                    Status::Failed,
                    "{:?}",
                    std::fs::read_to_string(py.dir.join("stderr.log"))
                );
                status == Status::Delivered
            },
        );
        let record = d.record(&id);
        let mdn = record.mdn.clone().unwrap();
        assert_eq!(
            (mdn.disposition.as_str(), mdn.signed, mdn.mic.as_str()),
            ("processed", true, "matches"),
            "{mode:?}"
        );
        for k in [paths.raw_message(), paths.headers(), paths.mdn()] {
            assert!(
                d.get(&k).is_some_and(|b| !b.is_empty()),
                "{mode:?}: {k} missing"
            );
        }
        let headers = String::from_utf8(d.get(&paths.headers()).unwrap()).unwrap();
        assert!(
            record.message_id.ends_with("@alpha.example>") && headers.contains(&record.message_id),
            "{mode:?}: the deployment's Message-ID domain: {headers}"
        );
        if mode == MdnMode::Async {
            assert!(
                headers.contains(&format!("Receipt-Delivery-Option: {our_url}")),
                "{mode:?}: the deployment's AS2 URL: {headers}"
            );
        }
        let got = py.wait_event("pyas2lib got it", |e| e["kind"] == "message");
        assert_eq!(got["status"], "processed", "{got}");
        assert_eq!(
            // Python's email package reads the plain `filename`, our ASCII spelling, not the
            // RFC 2231 `filename*` with the real name.
            std::fs::read(py.dir.join("received/PYAS2").join("PO 2026 ete (1).x12")).unwrap(),
            edi(1)
        );

        // pyas2lib -> ALPHA through the Function URL; pyas2lib checks our receipt.
        let file = tmp.path().join("asn from pyas2.x12");
        std::fs::write(&file, edi(2)).unwrap();
        let result = py.send(&file);
        assert_eq!(result["http"], 200, "{result}");
        if mode == MdnMode::Sync {
            assert_eq!(
                result["mdn_status"], "processed",
                "pyas2lib on our receipt: {result}"
            );
        } else {
            d.pump_until(
                &mut sender,
                "our async receipt",
                Duration::from_secs(60),
                |_| py.events().iter().any(|e| e["kind"] == "mdn"),
            );
            let e = py.wait_event("our async receipt at pyas2lib", |e| e["kind"] == "mdn");
            assert_eq!(e["status"], "processed", "pyas2lib on our receipt: {e}");
        }
        let inbound: Vec<_> = d
            .records()
            .into_iter()
            .filter(|r| r.direction == Direction::Inbox)
            .collect();
        assert_eq!(inbound.len(), 1, "{inbound:#?}");
        let got = &inbound[0];
        assert_eq!(got.status, Status::Received, "{:#?}", got.history);
        assert_eq!(got.filename, "asn from pyas2.x12");
        let payload = got.payload_key.clone().unwrap();
        let folder = &got.id;
        assert_eq!(
            payload,
            format!("AS2/files/ALPHA/PYAS2/inbox/{folder}/asn from pyas2.x12")
        );
        assert_eq!(d.get(&payload), Some(edi(2)));
        let inbox = MessagePaths::new("ALPHA", "PYAS2", Direction::Inbox, folder).unwrap();
        assert!(d.get(&inbox.raw_message()).is_some());
        assert!(d.get(&inbox.headers()).is_some());

        let log = receiver.stop().log_text() + &sender.log_text() + &trigger_fn.log_text();
        assert!(!log.contains(KEYSTORE_PASSWORD), "a secret in the logs");
        assert!(!log.contains("PRIVATE KEY"), "key material in the logs");
    }
}
