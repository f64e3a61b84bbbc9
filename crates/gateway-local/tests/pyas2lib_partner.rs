//! The embedded gateway trading with a pyas2lib partner over HTTP (tests/interop/pyas2_server.py),
//! both ways, with synchronous and asynchronous receipts.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gateway::model::{MdnMode, Status};
use serde_json::Value;

use testkit::{python, repo_root as repo};

struct Py(Child);

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_event(dir: &Path, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(e) = events(dir).into_iter().find(|e| f(e)) {
            return e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: {:#?}",
            events(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pem(dir: &Path, name: &str, id: &as2::keys::Identity) -> (String, String) {
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, id.certificate.to_pem().unwrap()).unwrap();
    std::fs::write(&k, id.private_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c.to_str().unwrap().into(), k.to_str().unwrap().into())
}

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
        std::fs::create_dir_all(&py_dir).unwrap();
        let (py_cert, py_key) = pem(&py_dir, "pyas2", identity("PYAS2"));
        let (alpha_cert, _) = pem(&py_dir, "alpha", identity("ALPHA"));
        let a = site(
            root,
            "ALPHA",
            alpha_port,
            "PYAS2",
            format!("http://127.0.0.1:{py_port}/as2"),
            &identity("PYAS2").certificate,
            &|p| p.mdn = mode,
        );
        let config = serde_json::json!({
            "port": py_port,
            "dir": py_dir,
            "name": "PYAS2",
            "cert": py_cert,
            "key": py_key,
            "partner": {"name": "ALPHA", "cert": alpha_cert, "url": format!("http://127.0.0.1:{alpha_port}/as2")},
            "mdn": py_mode,
        });
        let cfg = py_dir.join("config.json");
        std::fs::write(&cfg, config.to_string()).unwrap();
        let script = repo().join("tests/interop/pyas2_server.py");
        let _server = Py(Command::new(python())
            .arg(&script)
            .arg("serve")
            .arg(&cfg)
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        wait_event(&py_dir, "pyas2lib listening", |e| e["kind"] == "listening");
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
        let got = wait_event(&py_dir, "pyas2lib got it", |e| e["kind"] == "message");
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
        let mut child = Command::new(python())
            .arg(&script)
            .arg("send")
            .arg(&cfg)
            .arg(&file)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "pyas2lib send hung"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(status.success(), "{out}");
        let result: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(result["http"], 200, "{result}");
        if mode == MdnMode::Sync {
            assert_eq!(
                result["mdn_status"], "processed",
                "pyas2lib on our receipt: {result}"
            );
        } else {
            let e = wait_event(&py_dir, "our async receipt at pyas2lib", |e| {
                e["kind"] == "mdn"
            });
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
