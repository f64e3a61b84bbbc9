//! `mftg doctor` on a real site: every check passes while `mftg serve` runs, and each thing
//! broken on purpose is named on its own line with a non-zero exit.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{serve, sites, Site, PASSWORD};

fn doctor(site: &Site, password: &str) -> (i32, String) {
    testkit::run(
        Command::new(env!("CARGO_BIN_EXE_mftg"))
            .arg("doctor")
            .env("MFTG_CONFIG", &site.config)
            .env("MFTG_KEYSTORE_PASSWORD", password),
    )
}

#[test]
fn doctor_passes_a_working_site_and_names_what_is_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, _beta) = sites(tmp.path());
    let running = serve(&alpha, None);
    let start = Instant::now();
    let (code, out) = loop {
        let (code, out) = doctor(&alpha, PASSWORD);
        if code == 0 || start.elapsed() > Duration::from_secs(30) {
            break (code, out);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .all(|l| l.starts_with("ok ") || l.starts_with("warn")),
        "{out}"
    );
    for what in [
        "configuration",
        "data directory",
        "database",
        "keystore password (MFTG_KEYSTORE_PASSWORD): set",
        "station ALPHA: key \"alpha\": CN=ALPHA",
        "partnership ALPHA -> BETA: certificate \"beta\": CN=BETA",
        "partnership ALPHA -> BETA: URL",
        "endpoint: http://127.0.0.1:",
    ] {
        assert!(out.contains(what), "{what}: {out}");
    }

    // The wrong keystore password: the key and the certificate fail, the password is not shown.
    let (code, out) = doctor(&alpha, "Not-The-Password-3");
    assert_eq!(code, 1, "{out}");
    let failed: Vec<_> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 2, "{out}");
    assert!(failed[0].contains("station ALPHA: key"), "{out}");
    assert!(failed[1].contains("certificate \"beta\""), "{out}");
    assert!(!out.contains("Not-The-Password-3"), "{out}");

    // The gateway stopped: the endpoint fails, and says what to do.
    drop(running);
    let (code, out) = doctor(&alpha, PASSWORD);
    assert_eq!(code, 1, "{out}");
    let failed: Vec<_> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].starts_with("FAIL  endpoint") && failed[0].contains("is `mftg serve` running?"),
        "{out}"
    );

    // A configuration that does not load: one line.
    std::fs::write(&alpha.config, "listen = ").unwrap();
    let (code, out) = doctor(&alpha, PASSWORD);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(out.starts_with("FAIL  configuration"), "{out}");
}
