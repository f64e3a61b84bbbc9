//! Two `mftg serve` processes trading over 127.0.0.1, one of them killed at every step of
//! uploading, sending and receiving (the failpoints of `gateway::failpoint`, which abort the
//! process there as `kill -9` would), then started again: every time the file is delivered
//! exactly once, with the same bytes, and the sender's record says so.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::layout::Direction;
use gateway::model::{MessageRecord, RetryPolicy, Status};
use gateway::ports::MessageLog;
use gateway_local::{Config, Db};

const PASSWORD: &str = "Crash-Test-Keystore-1";

struct Site {
    id: &'static str,
    config: PathBuf,
}

fn mftg(site: &Site, args: &[&str]) -> String {
    let (code, out) = testkit::run(
        Command::new(env!("CARGO_BIN_EXE_mftg"))
            .args(args)
            .env("MFTG_CONFIG", &site.config)
            .env("MFTG_KEYSTORE_PASSWORD", PASSWORD),
    );
    assert_eq!(code, 0, "mftg {args:?}: {out}");
    out
}

/// ALPHA and BETA, set up as a user would with `mftg init`, `keys` and `partners add`, with
/// quick retries.
fn sites(root: &Path) -> (Site, Site) {
    let ports = [testkit::free_port(), testkit::free_port()];
    let ids = ["ALPHA", "BETA"];
    let sites: Vec<Site> = ids
        .iter()
        .map(|id| Site {
            id,
            config: root.join(id.to_lowercase()).join("mftg.toml"),
        })
        .collect();
    for (n, s) in sites.iter().enumerate() {
        std::fs::create_dir_all(s.config.parent().unwrap()).unwrap();
        mftg(
            s,
            &[
                "init",
                "--station",
                s.id,
                "--listen",
                &format!("127.0.0.1:{}", ports[n]),
            ],
        );
        mftg(s, &["keys", "generate", "--alias", &s.id.to_lowercase()]);
        let pem = mftg(s, &["keys", "export", "--alias", &s.id.to_lowercase()]);
        std::fs::write(root.join(format!("{}.crt", s.id)), pem).unwrap();
    }
    for (n, s) in sites.iter().enumerate() {
        let other = &sites[1 - n];
        let alias = other.id.to_lowercase();
        let cert = root.join(format!("{}.crt", other.id));
        mftg(
            s,
            &[
                "keys",
                "trust",
                "--alias",
                &alias,
                "--cert",
                cert.to_str().unwrap(),
            ],
        );
        mftg(
            s,
            &[
                "partners",
                "add",
                "--station",
                s.id,
                "--partner",
                other.id,
                "--url",
                &format!("http://127.0.0.1:{}/as2", ports[1 - n]),
                "--cert-alias",
                &alias,
            ],
        );
        let mut c = Config::load(&s.config).unwrap();
        c.poll_interval_ms = 100;
        c.upload_quiet_ms = 500;
        let p = &mut c.partnerships[0];
        p.timeout_secs = 5;
        p.retry = Some(RetryPolicy {
            attempts: 30,
            first_interval_secs: 1,
            max_interval_secs: 1,
        });
        c.save(&s.config).unwrap();
    }
    let mut it = sites.into_iter();
    (it.next().unwrap(), it.next().unwrap())
}

/// A running `mftg serve`; killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(site: &Site, failpoint: Option<&str>) -> Serve {
    let log = site.config.with_file_name("serve.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mftg"));
    cmd.arg("serve")
        .env("MFTG_CONFIG", &site.config)
        .env("MFTG_KEYSTORE_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        );
    if let Some(f) = failpoint {
        cmd.env("MFTG_FAILPOINTS", format!("{f}=abort"));
    }
    Serve(cmd.spawn().unwrap())
}

/// Waits (bounded) until the process dies at its failpoint.
fn died(s: &mut Serve, point: &str, site: &Site) {
    let start = Instant::now();
    loop {
        if let Some(status) = s.0.try_wait().unwrap() {
            assert_eq!(status.signal(), Some(6), "{point}: {status:?}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{point}: never reached; log: {}",
            std::fs::read_to_string(site.config.with_file_name("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn records(site: &Site) -> Vec<MessageRecord> {
    let c = Config::load(&site.config).unwrap();
    let db = Db::open(&c.database()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(db.list(None, None, 100))
        .unwrap()
}

fn wait_for(
    site: &Site,
    what: &str,
    check: impl Fn(&[MessageRecord]) -> bool,
) -> Vec<MessageRecord> {
    let start = Instant::now();
    loop {
        let rs = records(site);
        if check(&rs) {
            return rs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: {rs:#?}\nlog: {}",
            std::fs::read_to_string(site.config.with_file_name("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn data_dir(site: &Site) -> PathBuf {
    Config::load(&site.config).unwrap().data_dir
}

#[test]
fn killed_at_every_step_the_file_is_delivered_exactly_once() {
    for point in gateway::failpoint::Failpoints::POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let (alpha, beta) = sites(tmp.path());
        let payload = format!("ISA*00*{point}~\r\nST*850*0001~\r\nSE*2*0001~\r\n").into_bytes();
        let receiver_dies = point.starts_with("receive.");
        let (victim, other) = if receiver_dies {
            (&beta, &alpha)
        } else {
            (&alpha, &beta)
        };
        let _other = serve(other, None);
        let mut dying = serve(victim, Some(point));
        let file = tmp.path().join("po.x12");
        std::fs::write(&file, &payload).unwrap();
        mftg(
            &alpha,
            &[
                "send",
                file.to_str().unwrap(),
                "--from",
                "ALPHA",
                "--to",
                "BETA",
            ],
        );
        died(&mut dying, point, victim);
        drop(dying);
        let _again = serve(victim, None);

        let sent = wait_for(&alpha, point, |rs| {
            rs.iter()
                .any(|r| r.direction == Direction::Outbox && r.status.is_final())
        });
        let out: Vec<_> = sent
            .iter()
            .filter(|r| r.direction == Direction::Outbox)
            .collect();
        assert_eq!(out.len(), 1, "{point}: {out:#?}");
        assert_eq!(
            out[0].status,
            Status::Delivered,
            "{point}: {:#?}",
            out[0].history
        );
        assert_eq!(
            out[0].mdn.as_ref().unwrap().disposition,
            "processed",
            "{point}: {:#?}",
            out[0].history
        );
        let got = wait_for(&beta, point, |rs| {
            rs.iter()
                .any(|r| r.direction == Direction::Inbox && r.status == Status::Received)
        });
        let inbound: Vec<_> = got
            .iter()
            .filter(|r| r.direction == Direction::Inbox)
            .collect();
        assert_eq!(inbound.len(), 1, "{point}: {inbound:#?}");
        let files = files_under(&data_dir(&beta).join("AS2/files/BETA/ALPHA/inbox"));
        assert_eq!(files.len(), 1, "{point}: {files:?}");
        assert_eq!(std::fs::read(&files[0]).unwrap(), payload, "{point}");
        // Nothing left in the send folder (the watcher removes an upload it had copied, once
        // it sees it again), nothing half-written where SFTP users look.
        let start = Instant::now();
        while !files_under(&data_dir(&alpha).join("AS2/send")).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{point}: upload left"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for site in [&alpha, &beta] {
            let leftovers: Vec<_> = files_under(&data_dir(site).join("AS2/files"))
                .into_iter()
                .filter(|p| p.to_string_lossy().contains(".mftg-tmp-"))
                .collect();
            assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
        }
    }
}
