//! A pyas2lib trading partner over HTTP (`tests/interop/pyas2_server.py`): started on a port,
//! its events read back, and files sent from it to our station. Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Who pyas2lib trades with.
#[derive(Debug, Clone)]
pub struct Station<'a> {
    /// Our AS2 ID.
    pub as2_id: &'a str,
    /// Our certificate (PEM).
    pub cert_pem: &'a [u8],
    /// Where pyas2lib sends to.
    pub url: &'a str,
    /// For an `https://` URL, the certificate (PEM) to trust.
    pub trust_pem: Option<&'a [u8]>,
}

/// The running partner.
#[derive(Debug)]
pub struct Pyas2Partner {
    child: Child,
    /// Its directory: `events.jsonl`, `received/`, `stderr.log`.
    pub dir: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
}

impl Drop for Pyas2Partner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> PathBuf {
    crate::repo_root().join("tests/interop/pyas2_server.py")
}

impl Pyas2Partner {
    /// pyas2lib as `name` (key and certificate in PEM) on 127.0.0.1:`port`, in `dir`, with
    /// receipts `mdn` (`SYNC` or `ASYNC`); returns once it listens.
    pub fn start(
        dir: &Path,
        name: &str,
        keys: (&[u8], &[u8]),
        port: u16,
        station: &Station,
        mdn: &str,
    ) -> Pyas2Partner {
        Self::start_with_profiles(dir, name, keys, port, station, mdn, json!({}))
    }

    /// [`Pyas2Partner::start`], with `profiles`: for an AS2 ID pyas2lib answers to (and sends
    /// as), what it expects and how it sends (`sign`, `digest`, `encrypt`, `cipher`, `compress`,
    /// `mdn`, `mdn_digest`; see tests/interop/pyas2_server.py).
    pub fn start_with_profiles(
        dir: &Path,
        name: &str,
        (cert_pem, key_pem): (&[u8], &[u8]),
        port: u16,
        station: &Station,
        mdn: &str,
        profiles: Value,
    ) -> Pyas2Partner {
        std::fs::create_dir_all(dir).expect("partner dir");
        let file = |n: &str, data: &[u8]| {
            let p = dir.join(n);
            std::fs::write(&p, data).expect("PEM file");
            p
        };
        let config = json!({
            "port": port, "dir": dir, "name": name,
            "cert": file("partner.crt", cert_pem), "key": file("partner.key", key_pem),
            "partner": {"name": station.as2_id, "cert": file("station.crt", station.cert_pem), "url": station.url,
                        "trust": station.trust_pem.map(|t| file("trust.crt", t))},
            "mdn": mdn,
            "profiles": profiles,
        });
        let path = dir.join("config.json");
        std::fs::write(&path, config.to_string()).expect("config");
        let child = Command::new(crate::python())
            .arg(script())
            .arg("serve")
            .arg(&path)
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr.log"))
            .spawn()
            .expect("start pyas2lib");
        let p = Pyas2Partner {
            child,
            dir: dir.to_path_buf(),
            config: path,
        };
        p.wait_event("pyas2lib listening", |e| e["kind"] == "listening");
        p
    }

    /// What it has seen so far, one JSON object each.
    pub fn events(&self) -> Vec<Value> {
        crate::events(&self.dir)
    }

    /// Waits (at most 30 s) for an event `f` accepts.
    pub fn wait_event(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        crate::wait_event(&self.dir, what, Duration::from_secs(30), f)
    }

    /// pyas2lib sends `file` to the station (at most 90 s); returns its report
    /// (`http`, `message_id`, `mic`, and for synchronous receipts `mdn_status`, `mdn_detail`).
    pub fn send(&self, file: &Path) -> Value {
        self.send_as(file, None)
    }

    /// Sends each `(file, AS2 ID, content type)` in one pyas2lib process (at most `limit` in
    /// all); returns a report each, in order (as [`Pyas2Partner::send`], or `error`). pyas2lib
    /// sends `application/octet-stream` as binary and canonicalises the line ends of the rest.
    pub fn send_many(&self, items: &[(PathBuf, String, String)], limit: Duration) -> Vec<Value> {
        let list: Vec<Value> = items
            .iter()
            .map(|(f, id, ct)| json!({"file": f, "as2_id": id, "content_type": ct}))
            .collect();
        let path = self.dir.join("send-list.json");
        std::fs::write(&path, Value::from(list).to_string()).expect("send list");
        let mut child = Command::new(crate::python())
            .arg(script())
            .arg("send-many")
            .arg(&self.config)
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("pyas2lib send-many");
        let mut out = String::new();
        let mut stdout = child.stdout.take().expect("stdout");
        let start = Instant::now();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
            s
        });
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                panic!("pyas2lib send-many did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        out.push_str(&reader.join().unwrap_or_default());
        assert!(status.success(), "pyas2lib send-many: {out}");
        out.lines()
            .map(|l| serde_json::from_str(l).expect("pyas2lib's report"))
            .collect()
    }

    /// [`Pyas2Partner::send`] as the AS2 ID of a profile (`AS2-From`), sent as it says.
    pub fn send_as(&self, file: &Path, as2_id: Option<&str>) -> Value {
        let mut cmd = Command::new(crate::python());
        cmd.arg(script()).arg("send").arg(&self.config).arg(file);
        if let Some(id) = as2_id {
            cmd.arg(id);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("pyas2lib send");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "pyas2lib send hung"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut out);
        }
        assert!(status.success(), "pyas2lib send: {out}");
        serde_json::from_str(out.trim()).expect("pyas2lib's report")
    }
}
