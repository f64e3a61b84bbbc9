//! `tests/console/webhook_receiver.py` on 127.0.0.1: a webhook endpoint that checks each POST's
//! HMAC-SHA256 signature with Python's own hmac module and writes one JSON line per request.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A running receiver; stopped when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    child: Child,
    /// Where it POSTs go: `http://127.0.0.1:<port>/hook`.
    pub url: String,
    out: PathBuf,
}

impl WebhookReceiver {
    /// Starts one on a free port that checks signatures under `secret` and writes to `out`; its
    /// first `fail` requests are answered 500, the next `slow` only after `slow_secs`.
    pub fn start(secret: &str, out: &Path, fail: u32, slow: u32, slow_secs: f64) -> Self {
        let port = crate::free_port();
        let child = Command::new(crate::python())
            .arg(crate::repo_root().join("tests/console/webhook_receiver.py"))
            .args([&port.to_string(), secret])
            .arg(out)
            .args([fail.to_string(), slow.to_string(), slow_secs.to_string()])
            .spawn()
            .unwrap();
        crate::wait_listening(port, "the webhook receiver");
        WebhookReceiver {
            child,
            url: format!("http://127.0.0.1:{port}/hook"),
            out: out.to_path_buf(),
        }
    }

    /// Every request so far: `{"ok", "delivery", "event", "answered", "late"}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
