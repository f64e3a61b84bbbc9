//! Two `mftg serve` sites, ALPHA and BETA, set up as a user would, for the tests that run the
//! real binary against faults.

#![allow(dead_code)] // each test file uses its own part of this
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::model::{MessageRecord, RetryPolicy};
use gateway::ports::MessageLog;
use gateway_local::{Config, Db};

pub const PASSWORD: &str = "Crash-Test-Keystore-1";
/// The webhook secret `mftg serve` finds in `MFTG_TEST_WEBHOOK_SECRET`.
pub const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

pub struct Site {
    pub id: &'static str,
    pub config: PathBuf,
}

pub fn mftg(site: &Site, args: &[&str]) -> String {
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
pub fn sites(root: &Path) -> (Site, Site) {
    sites_with(root, |_| {})
}

/// [`sites`], each configuration changed by `tune` before it is saved.
pub fn sites_with(root: &Path, tune: impl Fn(&mut Config)) -> (Site, Site) {
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
        tune(&mut c);
        c.save(&s.config).unwrap();
    }
    let mut it = sites.into_iter();
    (it.next().unwrap(), it.next().unwrap())
}

/// A running `mftg serve`; killed when dropped.
pub struct Serve(pub Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn serve(site: &Site, failpoint: Option<&str>) -> Serve {
    let mut cmd = serve_under(site, &[]);
    if let Some(f) = failpoint {
        cmd.env("MFTG_FAILPOINTS", format!("{f}=abort"));
    }
    Serve(cmd.spawn().unwrap())
}

/// `mftg serve` at `site`, run by `wrapper` (a command and its arguments, the binary's path
/// and `serve` after them) when it is not empty; its log in `serve.log` beside the
/// configuration.
pub fn serve_under(site: &Site, wrapper: &[&str]) -> Command {
    let log = site.config.with_file_name("serve.log");
    let mftg = env!("CARGO_BIN_EXE_mftg");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(mftg);
            c
        }
        None => Command::new(mftg),
    };
    cmd.arg("serve")
        .env("MFTG_CONFIG", &site.config)
        .env("MFTG_KEYSTORE_PASSWORD", PASSWORD)
        .env("MFTG_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        );
    cmd
}

/// Waits (bounded) until the process dies at its failpoint.
pub fn died(s: &mut Serve, point: &str, site: &Site) {
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

pub fn records(site: &Site) -> Vec<MessageRecord> {
    let c = Config::load(&site.config).unwrap();
    let db = Db::open(&c.database()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(db.query(&gateway::ports::RecordQuery::of(None, None, 100)))
        .unwrap()
}

pub fn wait_for(
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

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
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

pub fn data_dir(site: &Site) -> PathBuf {
    Config::load(&site.config).unwrap().data_dir
}

/// `mftg send FILE --from ALPHA --to BETA` at `alpha`.
pub fn send_to_beta(alpha: &Site, file: &Path) {
    mftg(alpha, &send_to_beta_args(file));
}

/// The arguments of `mftg send FILE --from ALPHA --to BETA`.
pub fn send_to_beta_args(file: &Path) -> [&str; 6] {
    let file = file.to_str().unwrap();
    ["send", file, "--from", "ALPHA", "--to", "BETA"]
}

/// The arguments of `mftg partners add` for ALPHA's partnership with GAMMA (at a port nothing
/// listens on), its certificate under `cert_alias`.
pub fn add_gamma_args(cert_alias: &str) -> [&str; 10] {
    [
        "partners",
        "add",
        "--station",
        "ALPHA",
        "--partner",
        "GAMMA",
        "--url",
        "http://127.0.0.1:9/as2",
        "--cert-alias",
        cert_alias,
    ]
}

/// ALPHA and BETA with two quick attempts per message; ALPHA running, BETA not. A file named
/// `name` sent to BETA fails; returns the sites, ALPHA's process and the failed record.
pub fn failed_while_beta_down(root: &Path, name: &str) -> (Site, Site, Serve, MessageRecord) {
    failed_while_beta_down_with(root, name, |_| {})
}

/// [`failed_while_beta_down`], each configuration changed by `tune` as well.
pub fn failed_while_beta_down_with(
    root: &Path,
    name: &str,
    tune: impl Fn(&mut Config),
) -> (Site, Site, Serve, MessageRecord) {
    let (alpha, beta) = sites_with(root, |c| {
        c.partnerships[0].retry = Some(RetryPolicy {
            attempts: 2,
            first_interval_secs: 1,
            max_interval_secs: 1,
        });
        tune(c);
    });
    let running = serve(&alpha, None);
    let file = root.join(name);
    std::fs::write(&file, format!("ISA*00*{name}~")).unwrap();
    send_to_beta(&alpha, &file);
    // BETA is not running: both attempts are refused and the message fails.
    let failed = wait_for(&alpha, "the message fails", |rs| {
        rs.iter()
            .any(|r| r.filename == name && r.status == gateway::model::Status::Failed)
    })
    .into_iter()
    .find(|r| r.filename == name)
    .unwrap();
    (alpha, beta, running, failed)
}

/// A running `mftg console`; killed when dropped.
pub struct Console {
    pub child: Child,
    pub port: u16,
    pub token: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mftg console` over `site`'s data directory on a free port, its token made in a file beside
/// the configuration (checked to be its owner's only).
pub fn console(site: &Site) -> Console {
    let port = testkit::free_port();
    let token_file = site.config.with_file_name("console.token");
    let child = Command::new(env!("CARGO_BIN_EXE_mftg"))
        .args(["console", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--token-file")
        .arg(&token_file)
        .env("MFTG_CONFIG", &site.config)
        .env("MFTG_KEYSTORE_PASSWORD", PASSWORD)
        .env_remove("MFTG_CONSOLE_TOKEN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(site.config.with_file_name("console.log")).unwrap())
        .spawn()
        .unwrap();
    testkit::wait_listening(port, "the console");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the token file must be its owner's only"
    );
    Console { child, port, token }
}
