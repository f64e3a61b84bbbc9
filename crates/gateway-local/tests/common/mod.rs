//! The embedded-gateway test harness: configured sites, nodes on their own runtimes (so they can
//! be killed outright), bounded waits.
#![allow(dead_code, clippy::unwrap_used)]

pub mod matrix;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use as2::keys::{Identity, Keystore};
use gateway::layout::{keystore as ks, Direction};
use gateway::model::{MessageRecord, Partnership, RetryPolicy, Station, Status};
use gateway::ports::MessageLog;
use gateway_local::{Config, Node, Shutdown};

pub const PASSWORD_ENV: &str = "MFTG_LOOPBACK_TEST_KEYSTORE";

pub fn identity(id: &str) -> &'static Identity {
    static A: OnceLock<Identity> = OnceLock::new();
    static B: OnceLock<Identity> = OnceLock::new();
    static C: OnceLock<Identity> = OnceLock::new();
    let cell = match id {
        "ALPHA" => &A,
        "BETA" => &B,
        _ => &C,
    };
    cell.get_or_init(|| {
        Identity::generate_self_signed(id, 2048, as2::UnixTime(1_700_000_000), 3650).unwrap()
    })
}

/// The TLS key and certificate of HTTPS listeners and partners' HTTPS servers in the tests:
/// self-signed for `localhost` and 127.0.0.1 (what clients check the host against).
pub fn tls_identity(name: &str) -> &'static Identity {
    static A: OnceLock<Identity> = OnceLock::new();
    static B: OnceLock<Identity> = OnceLock::new();
    let cell = if name == "ALPHA" { &A } else { &B };
    cell.get_or_init(|| {
        Identity::generate_self_signed_for(
            &format!("{name} TLS"),
            &["localhost", "127.0.0.1"],
            2048,
            as2::UnixTime(1_700_000_000),
            3650,
        )
        .unwrap()
    })
}

/// Changes a keystore of `site` (creating it if need be).
pub fn edit_keystore(site: &Site, key: &str, change: impl FnOnce(&mut Keystore)) {
    let path = site.config.data_dir.join(key);
    let password = "Loopback-Keystore-1";
    let mut ks = match std::fs::read(&path) {
        Ok(data) => Keystore::load(&data, password, None).unwrap(),
        Err(_) => Keystore::new(),
    };
    change(&mut ks);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        ks.to_jks(password, as2::UnixTime(1_700_000_000)).unwrap(),
    )
    .unwrap();
}

/// An HTTPS listener for `site` on `port`, with the station's TLS key in `https.jks`.
pub fn with_https(site: &mut Site, port: u16) {
    edit_keystore(site, ks::HTTPS, |ks| {
        ks.set_identity("https", tls_identity(site.id))
    });
    site.config.https = Some(gateway_local::HttpsConfig {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        alias: None,
    });
}

/// A configured station on disk, not yet running.
pub struct Site {
    pub id: &'static str,
    pub config: Config,
    pub root: PathBuf,
}

/// One station `id` listening on `port`, with one partnership to `them` at `url` whose
/// certificate is `their_cert`.
pub fn site(
    root: &Path,
    id: &'static str,
    port: u16,
    them: &str,
    url: String,
    their_cert: &openssl::x509::X509,
    tune: &dyn Fn(&mut Partnership),
) -> Site {
    std::env::set_var(PASSWORD_ENV, "Loopback-Keystore-1");
    let dir = root.join(id.to_lowercase());
    let mut c = Config::new(dir.join("data"));
    c.listen = format!("127.0.0.1:{port}").parse().unwrap();
    c.poll_interval_ms = 100;
    // A file whose event was missed (its folder was new) is taken after this.
    c.upload_quiet_ms = 300;
    c.keystore_password_env = PASSWORD_ENV.into();
    // Quick retries (1 s, 2 s, ...) for partnerships without their own policy.
    c.defaults.retry.first_interval_secs = 1;
    c.stations.push(Station {
        as2_id: id.into(),
        key_alias: id.to_lowercase(),
        mdn_url: Some(format!("http://127.0.0.1:{port}/as2")),
        mdn_email: None,
        message_id_domain: Some(format!("{}.test", id.to_lowercase())),
    });
    let mut p = Partnership::new(id, them, &url, &them.to_lowercase());
    p.timeout_secs = 2;
    tune(&mut p);
    c.partnerships.push(p);
    let mut identity_ks = Keystore::new();
    identity_ks.set_identity(&id.to_lowercase(), identity(id));
    let mut trust = Keystore::new();
    trust.set_certificate(&them.to_lowercase(), their_cert);
    for (key, store) in [(ks::IDENTITY, identity_ks), (ks::TRUST, trust)] {
        let path = c.data_dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let jks = store
            .to_jks("Loopback-Keystore-1", as2::UnixTime(1_700_000_000))
            .unwrap();
        std::fs::write(path, jks).unwrap();
    }
    Site {
        id,
        config: c,
        root: dir,
    }
}

/// A partnership's own policy: `attempts` in all, 1 s apart at first.
pub fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        first_interval_secs: 1,
        ..RetryPolicy::default()
    }
}

/// ALPHA and BETA configured for each other; `alpha_to` is the URL ALPHA sends to (BETA, or
/// something standing in front of it).
pub fn sites(
    root: &Path,
    alpha_port: u16,
    beta_port: u16,
    alpha_to: Option<String>,
    tune: &dyn Fn(&mut Partnership),
) -> (Site, Site) {
    let alpha_url = alpha_to.unwrap_or(format!("http://127.0.0.1:{beta_port}/as2"));
    let beta_cert = &identity("BETA").certificate;
    let alpha = site(
        root, "ALPHA", alpha_port, "BETA", alpha_url, beta_cert, tune,
    );
    let alpha_cert = &identity("ALPHA").certificate;
    let back = format!("http://127.0.0.1:{alpha_port}/as2");
    let beta = site(root, "BETA", beta_port, "ALPHA", back, alpha_cert, tune);
    (alpha, beta)
}

/// A node running on its own runtime, so it can be killed outright.
pub struct Running {
    pub node: Arc<Node>,
    stop: tokio::sync::watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Running {
    pub fn start(site: &Site) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let node = Arc::new(Node::open(site.config.clone()).unwrap());
        let (stop, shutdown) = Shutdown::new();
        let n = node.clone();
        let listen = site.config.listen;
        let https = site.config.https.as_ref().map(|h| h.listen);
        runtime.spawn(async move {
            let listener = bind_retrying(listen).await;
            let https = match https {
                Some(a) => Some(bind_retrying(a).await),
                None => None,
            };
            n.serve_listeners(listener, https, shutdown).await.unwrap();
        });
        Running {
            node,
            stop,
            runtime: Some(runtime),
        }
    }

    /// Stops at once, whatever is in flight: a crash, as far as the data can tell.
    pub fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }

    pub fn records(&self) -> Vec<MessageRecord> {
        let db = &self.node.gateway.ports.log;
        futures_lite(db.query(&gateway::ports::RecordQuery::of(None, None, 100))).unwrap()
    }
}

pub async fn bind_retrying(addr: std::net::SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..50 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr}");
}

/// Runs a future that only touches SQLite (it never waits on anything else).
pub fn futures_lite<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

pub use testkit::free_port;

pub fn drop_file(site: &Site, name: &str, body: &[u8]) {
    drop_file_to(site, &site.config.partnerships[0].partner, name, body);
}

/// Puts a file in `AS2/send/<station>/<partner>/` as an upload would: written aside, renamed in.
pub fn drop_file_to(site: &Site, partner: &str, name: &str, body: &[u8]) {
    let dir = site
        .config
        .data_dir
        .join("AS2/send")
        .join(site.id)
        .join(partner);
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

/// Waits (bounded) until `check` holds for the records of `r`.
pub fn wait_for(
    r: &Running,
    what: &str,
    limit: Duration,
    check: impl Fn(&[MessageRecord]) -> bool,
) -> Vec<MessageRecord> {
    let start = Instant::now();
    loop {
        let records = r.records();
        if check(&records) {
            return records;
        }
        if start.elapsed() > limit {
            panic!("{what}: not within {limit:?}: {records:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn outbound(records: &[MessageRecord]) -> Vec<&MessageRecord> {
    records
        .iter()
        .filter(|r| r.direction == Direction::Outbox)
        .collect()
}

pub fn inbound(records: &[MessageRecord]) -> Vec<&MessageRecord> {
    records
        .iter()
        .filter(|r| r.direction == Direction::Inbox)
        .collect()
}

pub fn delivered(records: &[MessageRecord]) -> bool {
    let out = outbound(records);
    !out.is_empty()
        && out
            .iter()
            .all(|r| r.status == Status::Delivered || r.status == Status::Sent)
}
