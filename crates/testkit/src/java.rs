//! A BouncyCastle trading partner (`tests/interop/java/As2Partner.java`, on Debian's
//! BouncyCastle and JavaMail jars: the libraries OpenAS2 and Mendelson use): compiled once per
//! source version into `target/java-partner/`, started on a port, its events read back, and
//! files sent from it through its control port. Stopped when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// Debian's jars (packages libbcprov-java libbcpkix-java libbcutil-java libbcmail-java
/// libmail-java libactivation-java), installed by `tests/bootstrap.sh`.
const JARS: [&str; 6] = [
    "/usr/share/java/bcprov.jar",
    "/usr/share/java/bcpkix.jar",
    "/usr/share/java/bcutil.jar",
    "/usr/share/java/bcmail.jar",
    "/usr/share/java/javax.mail.jar",
    "/usr/share/java/javax.activation.jar",
];

fn source() -> PathBuf {
    crate::repo_root().join("tests/interop/java/As2Partner.java")
}

/// The classpath with the compiled partner, compiling it first if this version of the source
/// has not been compiled yet (one compile per test run, shared by the tests of a binary).
pub fn classpath() -> String {
    static COMPILED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut done = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    if done.is_none() {
        for jar in JARS {
            assert!(
                Path::new(jar).exists(),
                "{jar} is missing: run tests/bootstrap.sh (make test) to install the BouncyCastle jars"
            );
        }
        let src = std::fs::read(source()).expect("As2Partner.java");
        let stamp = format!("{:016x}", fnv1a(&src));
        let out = crate::repo_root().join("target/java-partner").join(stamp);
        if !out.join("As2Partner.class").exists() {
            let tmp = out.with_extension("tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).expect("java output dir");
            let status = Command::new("javac")
                .args(["-nowarn", "-encoding", "UTF-8", "-d"])
                .arg(&tmp)
                .arg("-cp")
                .arg(JARS.join(":"))
                .arg(source())
                .status()
                .expect("javac (install default-jdk-headless: tests/bootstrap.sh)");
            assert!(status.success(), "javac As2Partner.java failed");
            let _ = std::fs::remove_dir_all(&out);
            std::fs::rename(&tmp, &out).expect("java output dir");
        }
        *done = Some(out);
    }
    let out = done.as_ref().expect("compiled");
    format!("{}:{}", JARS.join(":"), out.display())
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Who the Java partner trades with.
#[derive(Debug, Clone)]
pub struct Station<'a> {
    /// The station's AS2 ID.
    pub as2_id: &'a str,
    /// Its certificate (PEM).
    pub cert_pem: &'a [u8],
    /// Where the partner sends to.
    pub url: &'a str,
}

/// TLS settings of the Java partner.
#[derive(Debug, Clone, Default)]
pub struct Tls<'a> {
    /// Serve HTTPS, with this certificate and key (PEM).
    pub serve_https: Option<(&'a [u8], &'a [u8])>,
    /// A certificate (PEM) its client trusts for `https://` URLs.
    pub trust_pem: Option<&'a [u8]>,
    /// A TLS client certificate and key (PEM) to present.
    pub client: Option<(&'a [u8], &'a [u8])>,
}

/// The running partner.
#[derive(Debug)]
pub struct JavaPartner {
    child: Child,
    /// Its directory: `events.jsonl`, `received/`, `stderr.log`.
    pub dir: PathBuf,
    control_port: u16,
}

impl Drop for JavaPartner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl JavaPartner {
    /// The partner with key and certificate `identity` (PEM) on 127.0.0.1:`port`, in `dir`;
    /// returns once it listens. It answers to whatever AS2 ID it is sent to.
    pub fn start(
        dir: &Path,
        (cert_pem, key_pem): (&[u8], &[u8]),
        port: u16,
        station: &Station,
        tls: &Tls,
    ) -> JavaPartner {
        std::fs::create_dir_all(dir).expect("partner dir");
        let file = |n: &str, data: &[u8]| {
            let p = dir.join(n);
            std::fs::write(&p, data).expect("PEM file");
            p.display().to_string()
        };
        let control_port = crate::free_port();
        let mut config = vec![
            ("port".to_string(), port.to_string()),
            ("control_port".to_string(), control_port.to_string()),
            ("dir".to_string(), dir.display().to_string()),
            ("key".to_string(), file("partner.key", key_pem)),
            ("cert".to_string(), file("partner.crt", cert_pem)),
            (
                "partner_cert".to_string(),
                file("station.crt", station.cert_pem),
            ),
            ("url".to_string(), station.url.to_string()),
            ("station".to_string(), station.as2_id.to_string()),
            ("https".to_string(), tls.serve_https.is_some().to_string()),
        ];
        if let Some((c, k)) = tls.serve_https {
            config.push(("tls_cert".into(), file("tls.crt", c)));
            config.push(("tls_key".into(), file("tls.key", k)));
        }
        if let Some(t) = tls.trust_pem {
            config.push(("trust".into(), file("trust.crt", t)));
        }
        if let Some((c, k)) = tls.client {
            config.push(("client_cert".into(), file("client.crt", c)));
            config.push(("client_key".into(), file("client.key", k)));
        }
        let path = dir.join("partner.properties");
        std::fs::write(&path, properties(&config)).expect("config");
        let child = Command::new("java")
            .arg("-cp")
            .arg(classpath())
            .arg("As2Partner")
            .arg("serve")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr.log"))
            .spawn()
            .expect("start java (install default-jre-headless: tests/bootstrap.sh)");
        let p = JavaPartner {
            child,
            dir: dir.to_path_buf(),
            control_port,
        };
        p.wait_event("the Java partner listening", Duration::from_secs(60), |e| {
            e["kind"] == "listening"
        });
        p
    }

    /// What it has seen so far, one JSON object each.
    pub fn events(&self) -> Vec<Value> {
        crate::events(&self.dir)
    }

    /// Waits (at most `limit`) for an event `f` accepts.
    pub fn wait_event(&self, what: &str, limit: Duration, f: impl Fn(&Value) -> bool) -> Value {
        crate::wait_event(&self.dir, what, limit, f)
    }

    /// The partner sends a file as `order` says (keys: `file`, `name`, `as2_from`,
    /// `content_type`, `sign`, `pss`, `encrypt`, `oaep`, `compress`, `mdn`, `signed_mdn`,
    /// `micalg`, `url`); returns its report: `http`, `message_id`, `mic`, and for synchronous
    /// receipts `mdn` (`disposition`, `signed`, `mic`, `mic_check` as OpenAS2 checks it).
    pub fn send(&self, order: &[(&str, String)]) -> Value {
        let body = properties(
            &order
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect::<Vec<_>>(),
        );
        let reply = http_post(self.control_port, "/control/send", body.as_bytes());
        let report: Value = serde_json::from_slice(&reply).unwrap_or_else(|e| {
            panic!(
                "the Java partner's report: {e}: {}",
                String::from_utf8_lossy(&reply)
            )
        });
        assert!(
            report.get("error").is_none(),
            "the Java partner could not send: {report}\nstderr: {}",
            std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
        );
        report
    }
}

/// A Java properties text (UTF-8; `Properties.load(Reader)` reads it as characters).
fn properties(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        let v = v
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

/// A bounded HTTP/1.1 POST to 127.0.0.1:`port`; returns the response body (status 200 expected).
fn http_post(port: u16, path: &str, body: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("control port");
    s.set_read_timeout(Some(Duration::from_secs(180)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("request");
    s.write_all(body).expect("request body");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("response");
    let at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response headers");
    let status = String::from_utf8_lossy(&reply[..at]).into_owned();
    assert!(status.starts_with("HTTP/1.1 200"), "control: {status}");
    let head = status.to_ascii_lowercase();
    let body = reply[at + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || eol + 2 + size > data.len() {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 4 + size).min(data.len())..];
    }
}
