//! The settings commands on the embedded backend (`mftg.toml` and the data directory's
//! keystores), the same commands `crates/lambdas/gateway/tests/operate.rs` runs on an AWS
//! deployment: stations, partnerships, keys, parked jobs; each refusal one line, exit 2,
//! nothing changed.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::process::Command;

use common::{mftg, send_to_beta, serve, sites, wait_for, Site, PASSWORD};
use gateway::model::Status;
use serde_json::Value;

/// Runs `mftg ARGS` at `site` expecting a refusal: exit 2 and one line; returns it.
fn refused(site: &Site, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mftg"))
        .args(args)
        .env("MFTG_CONFIG", &site.config)
        .env("MFTG_KEYSTORE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "mftg {args:?} should fail: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

fn json(site: &Site, args: &[&str]) -> Value {
    serde_json::from_str(&mftg(site, args)).unwrap()
}

#[test]
fn stations_partners_and_keys_in_the_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, beta) = sites(tmp.path());
    let config = || std::fs::read_to_string(&alpha.config).unwrap();

    // A second station, its key, a partnership of its own.
    let stations = json(&alpha, &["stations", "list", "--json"]);
    assert_eq!(stations[0]["as2_id"], "ALPHA", "{stations}");
    let err = refused(&alpha, &["stations", "add", "--station", "bad/id"]);
    assert!(err.contains("bad/id"), "{err}");
    mftg(
        &alpha,
        &[
            "stations",
            "add",
            "--station",
            "GAMMA",
            "--message-id-domain",
            "gamma.example",
        ],
    );
    let err = refused(
        &alpha,
        &[
            "stations",
            "add",
            "--station",
            "DELTA",
            "--mdn-url",
            "ftp://x",
        ],
    );
    assert!(err.contains("ftp://x"), "{err}");
    mftg(&alpha, &["keys", "generate", "--alias", "gamma"]);
    let keys = json(&alpha, &["keys", "list", "--json"]);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["alias"] == "gamma"
                && k["private_key"] == true
                && k["keystore"] == "AS2/keystore/identity.jks"),
        "{keys}"
    );
    let before = config();
    let err = refused(
        &alpha,
        &[
            "partners",
            "add",
            "--station",
            "GAMMA",
            "--partner",
            "BETA",
            "--url",
            "http://127.0.0.1:9/as2",
            "--cert-alias",
            "nobody",
        ],
    );
    assert!(
        err.contains("trust.jks has no certificate \"nobody\""),
        "{err}"
    );
    let err = refused(
        &alpha,
        &[
            "partners",
            "add",
            "--station",
            "NOSUCH",
            "--partner",
            "BETA",
            "--url",
            "http://127.0.0.1:9/as2",
            "--cert-alias",
            "beta",
        ],
    );
    assert!(err.contains("no station NOSUCH"), "{err}");
    assert_eq!(config(), before, "refusals change nothing");
    mftg(
        &alpha,
        &[
            "partners",
            "add",
            "--station",
            "GAMMA",
            "--partner",
            "BETA",
            "--url",
            "http://127.0.0.1:9/as2",
            "--cert-alias",
            "beta",
        ],
    );
    // update changes what it is given and keeps the rest.
    mftg(
        &alpha,
        &[
            "partners",
            "update",
            "--station",
            "GAMMA",
            "--partner",
            "BETA",
            "--cipher",
            "3des",
            "--unsigned-mdn",
        ],
    );
    let p = json(
        &alpha,
        &[
            "partners",
            "show",
            "--station",
            "GAMMA",
            "--partner",
            "BETA",
            "--json",
        ],
    );
    assert_eq!(
        (
            p["encryption"].as_str(),
            p["signed_mdn"].as_bool(),
            p["url"].as_str()
        ),
        (
            Some("3des-cbc"),
            Some(false),
            Some("http://127.0.0.1:9/as2")
        ),
        "{p}"
    );
    let shown = mftg(&alpha, &["stations", "show", "GAMMA"]);
    assert!(
        shown.contains("partner      BETA (http://127.0.0.1:9/as2)"),
        "{shown}"
    );
    let err = refused(
        &alpha,
        &[
            "partners",
            "update",
            "--station",
            "GAMMA",
            "--partner",
            "NOBODY",
            "--pss",
        ],
    );
    assert!(err.contains("no partnership GAMMA -> NOBODY"), "{err}");
    // The file keeps saying where the data directory is as it said it.
    let reread = gateway_local::Config::load(&alpha.config).unwrap();
    assert_eq!(reread.partnerships.len(), 2);

    // Removing: a key in use, a station with partnerships, refused; in order, done.
    let err = refused(&alpha, &["keys", "remove", "--alias", "beta"]);
    assert!(
        err.contains("partnership ALPHA -> BETA") && err.contains("partnership GAMMA -> BETA"),
        "{err}"
    );
    let err = refused(&alpha, &["keys", "remove", "--alias", "nobody"]);
    assert!(err.contains("no entry \"nobody\""), "{err}");
    let err = refused(&alpha, &["stations", "remove", "GAMMA"]);
    assert!(err.contains("still has partnerships (BETA)"), "{err}");
    mftg(
        &alpha,
        &[
            "partners",
            "remove",
            "--station",
            "GAMMA",
            "--partner",
            "BETA",
        ],
    );
    mftg(&alpha, &["stations", "remove", "GAMMA"]);
    mftg(
        &alpha,
        &["keys", "remove", "--alias", "gamma", "--store", "identity"],
    );
    assert_eq!(
        json(&alpha, &["stations", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let err = refused(
        &alpha,
        &["send", "/etc/hostname", "--from", "ALPHA", "--to", "NOBODY"],
    );
    assert!(err.contains("no partnership ALPHA -> NOBODY"), "{err}");

    // Nothing is parked; redriving nothing says so.
    assert!(mftg(&alpha, &["queue", "list"]).contains("No jobs are set aside."));
    let err = refused(&alpha, &["queue", "redrive"]);
    assert!(err.contains("no jobs are set aside"), "{err}");

    // A partnership with a message in flight (BETA is down; the message waits for its next
    // attempt) is kept unless --force.
    let _alpha = serve(&alpha, None);
    let file = tmp.path().join("po-77.x12");
    std::fs::write(&file, b"ISA*00*INFLIGHT~").unwrap();
    send_to_beta(&alpha, &file);
    let rs = wait_for(&alpha, "an attempt is made", |rs| {
        rs.iter().any(|r| r.attempts >= 1 && !r.status.is_final())
    });
    let busy = rs.iter().find(|r| r.status != Status::Delivered).unwrap();
    let err = refused(
        &alpha,
        &[
            "partners",
            "remove",
            "--station",
            "ALPHA",
            "--partner",
            "BETA",
        ],
    );
    assert!(err.contains("in flight") && err.contains(&busy.id), "{err}");
    mftg(
        &alpha,
        &[
            "partners",
            "remove",
            "--station",
            "ALPHA",
            "--partner",
            "BETA",
            "--force",
        ],
    );
    assert!(json(&alpha, &["partners", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    drop(beta);
}
