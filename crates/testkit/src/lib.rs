//! Test support: the repository's test venv, and a moto server on 127.0.0.1 standing in for S3,
//! DynamoDB, SQS and Transfer Family. Used by tests only.
//!
//! `make test` starts one moto server for the whole run and passes its URL in `MFTG_TEST_MOTO_URL`
//! (see `tests/with-moto.sh`); a test run by hand without it starts its own and stops it when done.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the failure report

pub mod function_url;
pub mod http;
pub mod java;
pub mod lambda;
pub mod proxy;
pub mod pyas2;
pub mod webhook;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Waits (at most 30 s) until something listens on `port` of 127.0.0.1; panics naming `what`.
pub fn wait_listening(port: u16, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never listened on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
/// The `events.jsonl` a test partner (pyas2lib, Java) writes, one JSON object a line.
pub fn events(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits (at most `limit`) for an event of a test partner in `dir` that `f` accepts; panics with
/// every event and the partner's `stderr.log` otherwise.
pub fn wait_event(
    dir: &Path,
    what: &str,
    limit: Duration,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        if let Some(e) = events(dir).into_iter().find(|e| f(e)) {
            return e;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: {:#?}\nstderr: {}",
            events(dir),
            std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A port on 127.0.0.1 a test can listen on a moment later.
///
/// Taken below Linux's ephemeral range (32768 and up), where the kernel never puts the local end
/// of a connection: a port the kernel handed out for a listener and took back can become the
/// local port of another test's keep-alive connection, and be refused to the listener for as long
/// as that lasts. Each call in a process gets another port; each process starts at its own place.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..COUNT {
        let port = (FIRST + start.wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst)) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no port free on 127.0.0.1 between {FIRST} and {}",
        FIRST + COUNT
    )
}

/// Runs `cmd` to its end: its exit code (-1 when a signal ended it) and its stdout then stderr.
pub fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Makes `dir/file` with `keytool` as Java before 8u301 wrote PKCS#12 (certificates under
/// pbeWithSHA1And40BitRC2-CBC, the key under 3DES): one 2048-bit RSA key entry `alias` with a
/// self-signed certificate for `CN=<cn>`, store and key protected by `password`.
pub fn legacy_keytool_pkcs12(dir: &Path, file: &str, alias: &str, cn: &str, password: &str) {
    let (code, out) = run(Command::new("keytool").current_dir(dir).args([
        "-J-Dkeystore.pkcs12.legacy",
        "-genkeypair",
        "-alias",
        alias,
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-dname",
        &format!("CN={cn}"),
        "-validity",
        "30",
        "-storetype",
        "PKCS12",
        "-keystore",
        file,
        "-storepass",
        password,
        "-keypass",
        password,
    ]));
    // (keytool's output names no password; it is safe to show.)
    assert_eq!(code, 0, "keytool: {out}");
}

/// The rest of the first line of `out` that starts with `label`, trimmed.
pub fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
}

/// A binary of another package of the workspace (`mftg` for the Lambda tests), where
/// `cargo test --workspace` builds it: beside the test binaries' `deps/` folder.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut dir = exe.parent().expect("its folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run the workspace's tests (make test), or cargo build --bin {name}",
        bin.display()
    );
    bin
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python of the test venv (made by `make test`), with pyas2lib and moto installed.
pub fn python() -> PathBuf {
    let p = std::env::var_os("MFTG_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run `make test` (it creates the test venv), or set MFTG_TEST_PYTHON",
        p.display()
    );
    p
}

/// A moto server: the one `make test` started, or one of our own.
#[derive(Debug)]
pub struct Moto {
    url: String,
    child: Option<Child>,
}

/// Credentials moto accepts (any will do; these name no real account).
pub const ACCESS_KEY: &str = "testing";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testing";
/// The region tests use.
pub const REGION: &str = "eu-west-1";

impl Moto {
    /// The shared server if `MFTG_TEST_MOTO_URL` names one, else a new one on a free port.
    pub fn start() -> Moto {
        if let Ok(url) = std::env::var("MFTG_TEST_MOTO_URL") {
            if !url.is_empty() {
                wait_ready(&url, None);
                return Moto { url, child: None };
            }
        }
        let port = free_port();
        let log = std::env::temp_dir().join(format!("mftg-moto-{port}.log"));
        let child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("moto log"))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("moto log"),
            ))
            .spawn()
            .expect("start moto server (make test installs it into .venv)");
        let mut moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let url = moto.url.clone();
        wait_ready(&url, moto.child.as_mut());
        moto
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A name no other test using the same server has: `<prefix>-<pid>-<n>`, lowercase.
    pub fn unique(prefix: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (at most 60 s) until the server answers `GET /moto-api/`.
fn wait_ready(url: &str, mut child: Option<&mut Child>) {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("moto server exited at start ({status}); see its log in the temp directory");
            }
        }
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!("GET /moto-api/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut head = [0u8; 12];
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_exact(&mut head).is_ok()
                && head.ends_with(b"200")
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "moto server at {url} did not answer within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A figure of `/proc/<pid>/status`, in KiB: `VmHWM` (peak resident set), `VmRSS` (now).
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `len` bytes that do not compress (xorshift), the same for the same `len`.
pub fn incompressible(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = vec![0u8; len];
    for b in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    out
}
