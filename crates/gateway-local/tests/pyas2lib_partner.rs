//! The embedded gateway trading with a pyas2lib partner over HTTP (tests/interop/pyas2_server.py),
//! both ways, with synchronous and asynchronous receipts.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use gateway::model::{MdnMode, Status};
use testkit::pyas2::{self, Pyas2Partner};

/// Text with CRLF line ends: pyas2lib rewrites bare LFs in non-binary parts.
fn edi(n: u32) -> Vec<u8> {
    format!("ISA*00*          *00*          *ZZ*PYAS2*ZZ*ALPHA*{n:09}~\r\nST*850*0001~\r\nBEG*00*SA*PO-{n}~\r\nSE*3*0001~\r\nIEA*1*{n:09}~\r\n").into_bytes()
}

#[test]
fn trading_with_a_pyas2lib_partner() {
    for (mode, py_mode) in [(MdnMode::Sync, "SYNC"), (MdnMode::Async, "ASYNC")] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let (alpha_port, py_port) = (free_port(), free_port());
        let py_dir = root.join("pyas2");
        let a = site(
            root,
            "ALPHA",
            alpha_port,
            "PYAS2",
            format!("http://127.0.0.1:{py_port}/as2"),
            &identity("PYAS2").certificate,
            &|p| p.mdn = mode,
        );
        let py_id = identity("PYAS2");
        let alpha_cert = identity("ALPHA").certificate.to_pem().unwrap();
        let alpha_url = format!("http://127.0.0.1:{alpha_port}/as2");
        let py = Pyas2Partner::start(
            &py_dir,
            "PYAS2",
            (
                &py_id.certificate.to_pem().unwrap(),
                &py_id.private_key.private_key_to_pem_pkcs8().unwrap(),
            ),
            py_port,
            &pyas2::Station {
                as2_id: "ALPHA",
                cert_pem: &alpha_cert,
                url: &alpha_url,
            },
            py_mode,
        );
        let ra = Running::start(&a);

        // ALPHA -> pyas2lib: signed, compressed, encrypted; pyas2lib's receipt verified here.
        drop_file(&a, "po-to-pyas2.x12", &edi(1));
        let records = wait_for(
            &ra,
            "delivery to pyas2lib",
            Duration::from_secs(30),
            delivered,
        );
        let sent = outbound(&records)[0];
        assert_eq!(
            sent.status,
            Status::Delivered,
            "{mode:?}: {:#?}",
            sent.history
        );
        let mdn = sent.mdn.clone().unwrap();
        assert_eq!(
            (mdn.disposition.as_str(), mdn.signed, mdn.mic.as_str()),
            ("processed", true, "matches")
        );
        let got = py.wait_event("pyas2lib got it", |e| e["kind"] == "message");
        assert_eq!(got["status"], "processed", "{got}");
        assert_eq!(
            (
                got["signed"].as_bool(),
                got["encrypted"].as_bool(),
                got["compressed"].as_bool()
            ),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(
            std::fs::read(py_dir.join("received/po-to-pyas2.x12")).unwrap(),
            edi(1)
        );

        // pyas2lib -> ALPHA; pyas2lib verifies our receipt (in the response, or POSTed back).
        let file = py_dir.join("asn-from-pyas2.x12");
        std::fs::write(&file, edi(2)).unwrap();
        let result = py.send(&file);
        assert_eq!(result["http"], 200, "{result}");
        if mode == MdnMode::Sync {
            assert_eq!(
                result["mdn_status"], "processed",
                "pyas2lib on our receipt: {result}"
            );
        } else {
            let e = py.wait_event("our async receipt at pyas2lib", |e| e["kind"] == "mdn");
            assert_eq!(e["status"], "processed", "pyas2lib on our receipt: {e}");
        }
        let records = wait_for(
            &ra,
            "the file from pyas2lib",
            Duration::from_secs(10),
            |rs| !inbound(rs).is_empty(),
        );
        let got = inbound(&records)[0];
        assert_eq!(got.status, Status::Received, "{:#?}", got.history);
        assert_eq!(got.filename, "asn-from-pyas2.x12");
        assert_eq!(
            std::fs::read(a.config.data_dir.join(got.payload_key.as_ref().unwrap())).unwrap(),
            edi(2)
        );
        ra.stop();
    }
}
