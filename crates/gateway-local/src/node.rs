//! A running embedded gateway: the AS2 endpoint, the send-folder watcher and the job worker,
//! over a directory and SQLite.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use gateway::keystore::{KeystorePasswords, StoreKeystore};
use gateway::ports::{Clock, ObjectStore, PortSet, Ports};
use gateway::{Gateway, Origin, Result, Settings, UploadOutcome};
use tokio::sync::watch;

pub use gateway::check::{Check, Verdict};
pub use gateway_http::SystemClock;

use crate::config::{Config, ConfigDirectory};
use crate::db::Db;
use crate::store::DirStore;
use crate::transport::{EnvSecrets, HttpTransport};

/// Every port of the embedded gateway: the data directory, SQLite (duplicate index, log and
/// queue), the stations and partnerships of `mftg.toml`, keystores in the directory with
/// passwords from the environment.
pub type LocalPorts = PortSet<
    DirStore,
    Db,
    Db,
    ConfigDirectory,
    StoreKeystore<DirStore, EnvSecrets>,
    EnvSecrets,
    HttpTransport,
    Db,
    SystemClock,
    crate::metrics::LocalEvents,
>;

/// Ports for `config`: its data directory, its database, its stations and partnerships; its
/// events counted in new metrics.
pub fn local_ports(config: &Config) -> Result<LocalPorts> {
    let store = DirStore::new(&config.data_dir)?;
    let env = config.keystore_password_env.clone();
    let db = Db::open(&config.database())?;
    Ok(PortSet {
        duplicates: db.clone(),
        log: db.clone(),
        queue: db,
        directory: ConfigDirectory::new(config),
        keys: StoreKeystore::new(
            store.clone(),
            EnvSecrets,
            KeystorePasswords {
                identity: env.clone(),
                trust: env.clone(),
                https: env,
            },
        ),
        store,
        secrets: EnvSecrets,
        transport: HttpTransport::new(),
        clock: SystemClock,
        events: crate::metrics::LocalEvents::new(crate::metrics::Metrics::new()),
    })
}

/// An embedded gateway, ready to serve.
#[derive(Debug)]
pub struct Node {
    /// The gateway over the local ports.
    pub gateway: Gateway<LocalPorts>,
    /// The configuration it was started with (`mftg.toml`).
    pub config: Config,
}

/// A request to stop, shared by the node's loops.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A trigger and the signal it sends.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Resolves when a stop is requested.
    pub async fn requested(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

impl Node {
    /// Opens the node's ports.
    pub fn open(config: Config) -> Result<Self> {
        let ports = local_ports(&config)?;
        let failpoints = gateway::failpoint::Failpoints::from_var(
            std::env::var(gateway::failpoint::Failpoints::VAR).ok(),
        )
        .map_err(|e| {
            gateway::GatewayError::Config(format!("{}: {e}", gateway::failpoint::Failpoints::VAR))
        })?;
        let settings = Settings {
            failpoints,
            duplicate_window: Duration::from_secs(config.duplicate_window_secs),
            max_decompressed_size: config.max_decompressed_bytes,
            stream_above: config.stream_above_bytes,
            defaults: config.defaults.clone(),
            webhooks: config.webhooks.clone(),
            ..Settings::default()
        };
        Ok(Node {
            gateway: Gateway { ports, settings },
            config,
        })
    }

    /// Serves until `shutdown`: the endpoint on the configured address (and the HTTPS one, if
    /// configured), the watcher, the worker. Jobs queued or in flight when the node last stopped
    /// are picked up again.
    pub async fn serve(self: Arc<Self>, shutdown: Shutdown) -> Result<()> {
        let bind = |addr: std::net::SocketAddr| async move {
            tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                gateway::GatewayError::port("http", format!("cannot listen on {addr}: {e}"))
            })
        };
        let plain = bind(self.config.listen).await?;
        let https = match &self.config.https {
            Some(h) => Some(bind(h.listen).await?),
            None => None,
        };
        self.serve_listeners(plain, https, shutdown).await
    }

    /// [`Node::serve`] on a listener bound by the caller (plain HTTP only).
    pub async fn serve_on(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: Shutdown,
    ) -> Result<()> {
        self.serve_listeners(listener, None, shutdown).await
    }

    /// The TLS acceptor of the `[https]` listener: its key from `https.jks`, and client
    /// certificates asked for when a partnership requires one.
    pub async fn https_acceptor(&self) -> Result<Arc<openssl::ssl::SslAcceptor>> {
        let alias = self.config.https.as_ref().and_then(|h| h.alias.as_deref());
        let identity = self
            .gateway
            .ports
            .keys
            .https_identity(alias)
            .await
            .map_err(|e| match e {
                gateway::GatewayError::NotFound(_) => gateway::GatewayError::Config(format!(
                    "HTTPS listener: {} does not exist: it needs a key and its certificate \
                     (mftg keys generate --store https, or mftg keys import --store https)",
                    gateway::layout::keystore::HTTPS
                )),
                e => gateway::GatewayError::Config(format!("HTTPS listener: {e}")),
            })?;
        let ask = self
            .config
            .partnerships
            .iter()
            .any(|p| p.client_certificate_alias.is_some());
        crate::https::acceptor(&identity, ask)
    }

    /// [`Node::serve`] on listeners bound by the caller: `plain` for HTTP, `https` (if any) for
    /// the `[https]` listener.
    pub async fn serve_listeners(
        self: Arc<Self>,
        plain: tokio::net::TcpListener,
        https: Option<tokio::net::TcpListener>,
        shutdown: Shutdown,
    ) -> Result<()> {
        let address = plain
            .local_addr()
            .map_err(|e| gateway::GatewayError::port("http", e))?;
        let tls = match https {
            Some(l) => {
                let acceptor = self.https_acceptor().await?;
                let l = crate::https::TlsListener::new(l, acceptor)
                    .map_err(|e| gateway::GatewayError::port("https", e))?;
                let at = axum::serve::Listener::local_addr(&l)
                    .map_err(|e| gateway::GatewayError::port("https", e))?;
                tracing::info!(address = %at, "AS2 endpoint listening (HTTPS, TLS 1.2 and 1.3)");
                Some(l)
            }
            None => None,
        };
        self.preflight().await?;
        let files = crate::http::raise_open_files_limit();
        if files.is_some_and(|n| n < self.config.max_connections as u64 + 64) {
            tracing::warn!(
                open_files = files,
                max_connections = self.config.max_connections,
                "the open files limit is below max_connections; connections past it are refused"
            );
        }
        tracing::info!(%address, data = %self.config.data_dir.display(), "AS2 endpoint listening");
        self.recover().await?;
        let resumed = self.gateway.ports.queue.reset_leases().await?;
        if resumed > 0 {
            tracing::info!(
                jobs = resumed,
                "resuming work left in flight by the last run"
            );
        }
        self.tell_what_the_last_run_missed().await?;
        let warmed = crate::blocking::run(&self.gateway.ports.transport, "http", |t| {
            t.warm().map_err(|e| gateway::GatewayError::port("http", e))
        })
        .await;
        if let Err(e) = warmed {
            // Each message sent says so again, with its partner's URL.
            tracing::warn!(error = %e, "the HTTP client cannot be built");
        }
        let app = Router::new()
            .route("/as2", post(receive))
            .route("/", post(receive))
            .route("/health", get(|| async { "ok\n" }))
            .with_state(self.clone());
        let limits = crate::http::Limits::of(&self.config);
        let watcher = tokio::spawn(self.clone().watch(shutdown.clone()));
        let worker = tokio::spawn(self.clone().work(shutdown.clone()));
        let purger = tokio::spawn(self.clone().purge(shutdown.clone()));
        let expiry = tokio::spawn(self.clone().expiry(shutdown.clone()));
        let https_served = async {
            if let Some(l) = tls {
                crate::http::serve(l, app.clone(), limits, shutdown.clone()).await;
            }
        };
        let plain_served = crate::http::serve(plain, app.clone(), limits, shutdown.clone());
        tokio::join!(plain_served, https_served);
        let _ = watcher.await;
        let _ = worker.await;
        let _ = purger.await;
        let _ = expiry.await;
        self.gateway.ports.queue.end_run()
    }

    /// Notes this run's start; after a run that did not stop cleanly, queues the webhook events
    /// it may not have queued (see [`Gateway::announce_missed`]).
    async fn tell_what_the_last_run_missed(&self) -> Result<()> {
        let names: Vec<String> = self
            .config
            .webhooks
            .iter()
            .map(|w| w.name.clone())
            .collect();
        let now = gateway::ports::Clock::now(&self.gateway.ports.clock);
        if let Some((since, webhooks)) = self.gateway.ports.queue.begin_run(now, &names)? {
            let looked = self.gateway.announce_missed(since, &webhooks).await?;
            if looked > 0 {
                tracing::info!(
                    events = looked,
                    "the last run did not stop cleanly: its webhook events are queued again where they were not"
                );
            }
        }
        Ok(())
    }

    /// Tells, at start and then once a day, of every certificate that has expired or expires
    /// within 30 days (a `certificate-expiring` event each, to the webhooks that want them).
    async fn expiry(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            let n = self
                .gateway
                .announce_expiring(&self.config.stations, &self.config.partnerships)
                .await;
            if n > 0 {
                tracing::warn!(
                    certificates = n,
                    "certificates expired or expiring within 30 days"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(86_400)) => {}
                _ = shutdown.clone().requested() => return,
            }
        }
    }

    /// Removes, every hour, refused requests and unmatched receipts older than
    /// `rejected_retention_days` (none when it is 0).
    async fn purge(self: Arc<Self>, shutdown: Shutdown) {
        let days = self.config.rejected_retention_days;
        if days == 0 {
            return;
        }
        let older_than = Duration::from_secs(days.saturating_mul(86_400));
        loop {
            match self.gateway.purge_rejected(older_than).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, days, "old refused requests removed"),
                Err(e) => tracing::warn!(error = %e, "removing old refused requests"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = shutdown.clone().requested() => return,
            }
        }
    }

    /// Checks what the gateway needs before it can trade: the keystore password is set, every
    /// station's key and every partner's certificate (and TLS certificates) are in the keystores
    /// and valid, the partners' HTTP password variables are set. One entry per thing checked;
    /// `mftg doctor` prints them all, [`Node::preflight`] refuses to start on a blocking one.
    pub async fn checks(&self) -> Vec<Check> {
        let mut out = Vec::new();
        let env = &self.config.keystore_password_env;
        out.push(match std::env::var(env) {
            Ok(_) => Check::ok(format!("keystore password ({env})"), "set"),
            Err(_) => Check::blocking(
                format!("keystore password ({env})"),
                format!("{env} is not set: it must hold the keystores' password (keystore_password_env)"),
            ),
        });
        out.extend(
            self.gateway
                .setting_checks(&self.config.stations, &self.config.partnerships)
                .await,
        );
        out
    }

    /// Refuses to start when a check that blocks fails; expired or soon-expiring certificates
    /// are logged and the gateway starts (partners may still accept them).
    pub async fn preflight(&self) -> Result<()> {
        let mut problems = Vec::new();
        for c in self.checks().await {
            match &c.verdict {
                Verdict::Failed(why) if c.blocks_start => {
                    problems.push(format!("{}: {why}", c.what))
                }
                Verdict::Failed(why) | Verdict::Warning(why) => {
                    tracing::warn!(what = %c.what, "{why}");
                }
                Verdict::Ok(_) => {}
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(gateway::GatewayError::Config(format!(
            "cannot start:\n  - {}",
            problems.join("\n  - ")
        )))
    }

    /// What a crash left: partial writes under `AS2/tmp/` are removed, and messages whose raw
    /// copy was stored but whose processing was cut off are finished (their receipts stored,
    /// asynchronous ones queued; a partner waiting for a synchronous one gets it when it sends
    /// the message again).
    async fn recover(&self) -> Result<()> {
        let cleaned = self.gateway.ports.store().clean_scratch()?;
        if cleaned > 0 {
            tracing::info!(
                files = cleaned,
                "removed partial writes left by the last run"
            );
        }
        for id in self.gateway.ports.log.unfinished_receives().await? {
            match self.gateway.resume_receive(&id).await {
                Ok(status) => tracing::info!(%id, %status, "finished a receive the last run left"),
                Err(e) => {
                    tracing::warn!(%id, error = %e, "a receive the last run left could not be finished now; the partner's retry will")
                }
            }
        }
        Ok(())
    }

    /// Runs due jobs until `shutdown`, `send_workers` at a time and at most
    /// `partner_concurrency` for any one partnership (1 keeps its messages in order), so a
    /// partner that never answers holds up only its own messages.
    async fn work(self: Arc<Self>, shutdown: Shutdown) {
        const LEASE: Duration = Duration::from_secs(300);
        let workers = self.config.send_workers.max(1);
        let per_partner = self.config.partner_concurrency.max(1);
        let busy: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
        let mut running = tokio::task::JoinSet::new();
        while !shutdown.is_requested() {
            while running.try_join_next().is_some() {}
            let free = workers.saturating_sub(running.len());
            let jobs = if free == 0 {
                Vec::new()
            } else {
                let now = self.gateway.ports.clock().now();
                let running_now = busy.lock().unwrap_or_else(|p| p.into_inner()).clone();
                self.gateway
                    .ports
                    .queue
                    .take_due_for(now, LEASE, free, per_partner, running_now)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "job queue");
                        Vec::new()
                    })
            };
            // Fewer than there was room for: nothing more can start until a job ends (freeing
            // its partnership's turn) or new work is due, so the queue is not asked again at once.
            let wait = free == 0 || jobs.len() < free;
            for leased in jobs {
                let pair = leased.pair.clone();
                *busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(pair.clone())
                    .or_default() += 1;
                let (node, busy) = (self.clone(), busy.clone());
                running.spawn(async move {
                    node.run_leased(leased).await;
                    let mut b = busy.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(n) = b.get_mut(&pair) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            b.remove(&pair);
                        }
                    }
                });
            }
            if wait {
                tokio::select! {
                    _ = running.join_next(), if !running.is_empty() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
        while running.join_next().await.is_some() {}
    }

    async fn run_leased(&self, leased: crate::db::Leased) {
        let result = self.gateway.run_job(&leased.job).await;
        let queue = &self.gateway.ports.queue;
        let done = match result {
            Ok(()) => queue.ack(leased.seq).await,
            Err(gateway::GatewayError::NotFound(what)) => {
                tracing::warn!(job = ?leased.job, %what, "job for something that is gone");
                queue.ack(leased.seq).await
            }
            // Trying again cannot help (the partnership is gone, its configuration cannot work).
            Err(e) if e.is_permanent() => {
                tracing::error!(job = ?leased.job, error = %e, "job parked: it cannot run (mftg queue list)");
                let now = self.gateway.ports.clock().now();
                queue.park(leased.seq, e.to_string(), now).await
            }
            Err(e) => {
                // A port failed (disk, database): the job runs again shortly, and is parked
                // when that keeps happening.
                let now = self.gateway.ports.clock().now();
                let retry = Duration::from_secs(30);
                match queue.fail(leased.seq, e.to_string(), now, retry).await {
                    Ok(true) => {
                        tracing::error!(job = ?leased.job, error = %e, "job parked after failing again and again (mftg queue list)");
                        Ok(())
                    }
                    Ok(false) => {
                        tracing::error!(job = ?leased.job, error = %e, "job failed; will run again");
                        Ok(())
                    }
                    Err(q) => Err(q),
                }
            }
        };
        if let Err(e) = done {
            tracing::error!(error = %e, "job queue");
        }
    }

    /// Treats files that appear under `AS2/send/<station>/<partner>/` as uploads once they are
    /// complete: when their writer closes them or renames them into place (inotify), or, where
    /// no such event comes (a file there before the gateway started, a file system without
    /// inotify, `upload_events = false`), once their size and time have held still for
    /// `upload_quiet_ms`. A file that is being written to is never sent.
    async fn watch(self: Arc<Self>, shutdown: Shutdown) {
        let interval = Duration::from_millis(self.config.poll_interval_ms.max(50));
        let quiet = Duration::from_millis(self.config.upload_quiet_ms);
        let events = Arc::new(std::sync::Mutex::new(UploadEvents::default()));
        let _watcher = if self.config.upload_events {
            self.watch_events(events.clone())
        } else {
            None
        };
        let mut seen = Seen::new();
        while !shutdown.is_requested() {
            // One look at the folder and the uploads it finds, in one blocking job.
            let (node, events) = (self.clone(), events.clone());
            seen = crate::blocking::job(async move { node.look(seen, &events, quiet).await }).await;
            tokio::time::sleep(interval).await;
        }
    }

    /// One look at `AS2/send/`: handles the files that are complete now and were not yet
    /// handled, and returns what it saw.
    async fn look(
        &self,
        mut seen: Seen,
        events: &std::sync::Mutex<UploadEvents>,
        quiet: Duration,
    ) -> Seen {
        let files = match self.gateway.ports.store().list(gateway::layout::SEND).await {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the send folder");
                return seen;
            }
        };
        let mut next = HashMap::new();
        for (key, meta) in files {
            let (closed, writing, noticed) = {
                let mut e = events.lock().unwrap_or_else(|p| p.into_inner());
                (
                    e.closed.remove(&key),
                    e.writing.contains(&key),
                    e.noticed.contains(&key),
                )
            };
            let (etag, since, mut handled) = match seen.remove(&key) {
                Some((etag, since, handled)) if etag == meta.etag => {
                    (etag, since, handled && !closed)
                }
                _ => (meta.etag.clone(), std::time::Instant::now(), false),
            };
            let settle = if self.config.upload_events && !noticed {
                quiet.max(UNNOTICED_QUIET)
            } else {
                quiet
            };
            let complete = closed || (!writing && since.elapsed() >= settle);
            if !handled && complete {
                handled = self.upload(&key, &meta).await;
            }
            next.insert(key, (etag, since, handled));
        }
        events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .noticed
            .retain(|k| next.contains_key(k));
        next
    }

    /// inotify on `AS2/send/`: files closed after writing, or renamed into place, are complete;
    /// files written to are not. `None` (and the quiet-time rule alone) when it cannot start.
    fn watch_events(
        &self,
        events: Arc<std::sync::Mutex<UploadEvents>>,
    ) -> Option<notify::RecommendedWatcher> {
        use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
        use notify::{EventKind, RecursiveMode, Watcher as _};
        let root = self.config.data_dir.clone();
        let send = root.join(gateway::layout::SEND);
        // Every partnership's folder exists before it is watched: an event in a folder made
        // after the watch started can come too late.
        for p in &self.config.partnerships {
            if let Err(e) = std::fs::create_dir_all(send.join(&p.station).join(&p.partner)) {
                tracing::warn!(error = %e, "cannot create the send folder");
                return None;
            }
        }
        if let Err(e) = std::fs::create_dir_all(&send) {
            tracing::warn!(error = %e, "cannot create the send folder");
            return None;
        }
        let key_of = move |p: &std::path::PathBuf| -> Option<String> {
            let rel = p.strip_prefix(&root).ok()?;
            Some(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            )
        };
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            let mut e = events.lock().unwrap_or_else(|p| p.into_inner());
            e.noticed.extend(ev.paths.iter().filter_map(&key_of));
            match ev.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    for k in ev.paths.iter().filter_map(&key_of) {
                        e.writing.remove(&k);
                        e.closed.insert(k);
                    }
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
                    // A file written aside and renamed in is complete (the last path is the new name).
                    if let Some(k) = ev.paths.last().and_then(&key_of) {
                        e.writing.remove(&k);
                        e.closed.insert(k);
                    }
                }
                EventKind::Modify(ModifyKind::Data(_)) | EventKind::Create(_) => {
                    for k in ev.paths.iter().filter_map(&key_of) {
                        e.closed.remove(&k);
                        e.writing.insert(k);
                    }
                }
                _ => {}
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "no file events; uploads are taken once they have held still");
                return None;
            }
        };
        if let Err(e) = watcher.watch(&send, RecursiveMode::Recursive) {
            tracing::warn!(error = %e, "no file events; uploads are taken once they have held still");
            return None;
        }
        Some(watcher)
    }

    /// Handles one upload; false when it failed and should be tried on a later poll.
    async fn upload(&self, key: &str, meta: &gateway::ports::ObjectMeta) -> bool {
        // A name the directory listing could only spell lossily (not UTF-8) names no object:
        // recorded as not sent, once, and left where it is. (Any other file that is gone by
        // now was renamed or handled since the listing.)
        if key.contains(char::REPLACEMENT_CHARACTER) && !self.config.data_dir.join(key).exists() {
            let parts: Vec<&str> = key.split('/').collect();
            if let [_, _, station, partner, name] = parts.as_slice() {
                let reason = format!(
                    "the file name {name:?} is not valid UTF-8; rename it to send it (it stays in {}{station}/{partner}/)",
                    gateway::layout::SEND
                );
                return self
                    .gateway
                    .not_sent(
                        &gateway::layout::SendKey::new(station, partner, name),
                        key,
                        &meta.upload_id(),
                        meta.written,
                        meta.size,
                        reason,
                    )
                    .await
                    .is_ok();
            }
            return true;
        }
        match self.gateway.on_upload(key, Origin::Upload, None).await {
            Ok(UploadOutcome::Ignored(why)) => {
                tracing::debug!(key, %why, "not a send");
                true
            }
            Ok(outcome) => {
                tracing::info!(key, %outcome, "upload");
                true
            }
            Err(e) => {
                tracing::error!(key, error = %e, "upload failed; it stays in place and is tried again");
                false
            }
        }
    }

    /// Processes a request whose body is in: read back whole, or past `stream_above` bytes read
    /// as it is processed (its scratch file is removed once that is done).
    async fn take_post(
        &self,
        peer: &gateway::Peer,
        headers: &as2::HeaderMap,
        spooled: crate::http::Spooled,
    ) -> Result<gateway::HttpResponse> {
        if spooled.length > self.gateway.settings.stream_above {
            let reader = spooled.reader()?;
            return self.gateway.on_post_streamed(peer, headers, reader).await;
        }
        let body = spooled.read().await?;
        self.gateway.on_post_from(peer, headers, &body).await
    }
}

async fn receive(
    State(node): State<Arc<Node>>,
    Extension(peer): Extension<gateway::Peer>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = gateway_http::as2_headers(&parts.headers);
    let reply = match node.gateway.precheck(&headers).await {
        Ok(None) => {
            let scratch = node.config.data_dir.join(gateway::layout::TMP);
            let taken = crate::http::Limits::of(&node.config)
                .take_body(headers.get("Content-Length"), body, &scratch)
                .await;
            let spooled = match taken {
                Ok(spooled) => spooled,
                Err(e) => {
                    tracing::warn!(
                        message_id = headers.get("Message-ID").unwrap_or(""),
                        from = headers.get("AS2-From").unwrap_or(""),
                        error = ?e,
                        "request body not taken"
                    );
                    return e.response();
                }
            };
            // Whole now: the rest is storing and opening it, one blocking job.
            let node = node.clone();
            crate::blocking::job(async move { node.take_post(&peer, &headers, spooled).await })
                .await
        }
        Ok(Some(refused)) => Ok(refused),
        Err(e) => Err(e),
    };
    crate::http::respond(reply.unwrap_or_else(|e| {
        // A full disk or a database failure: the partner sends again later (same
        // Message-ID) and the message is processed then; what failed is for our log only.
        tracing::error!(error = %e, "receiving failed; the partner is asked to send again");
        gateway::HttpResponse::unavailable()
    }))
}

/// The watcher's files: key -> (etag when last seen changing, since when it has held still,
/// handled).
type Seen = HashMap<String, (String, std::time::Instant, bool)>;

/// What inotify said of the files under `AS2/send/` since the last poll.
#[derive(Debug, Default)]
struct UploadEvents {
    /// Closed after writing, or renamed into place: complete.
    closed: std::collections::HashSet<String>,
    /// Written to and not closed since.
    writing: std::collections::HashSet<String>,
    /// Every file any event was seen for (while it is in the send folder).
    noticed: std::collections::HashSet<String>,
}

/// How long a file no event has been seen for must hold still while file events are on: the
/// events of a file being written can come later than the listing that finds it (a loaded
/// machine), and a file there before the gateway started has none at all.
const UNNOTICED_QUIET: Duration = Duration::from_secs(2);
