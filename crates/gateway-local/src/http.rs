//! The AS2 endpoint's HTTP server: hyper under the axum router, with what a server anyone can
//! reach needs. A connection has `header_timeout` to send each request's headers (an idle
//! keep-alive connection too), a body that stops coming for `idle_timeout` is dropped, at most
//! `max_connections` are served at once (the rest wait to be accepted), a body is refused as
//! soon as it is known to be over `max_body` (by its Content-Length, or counted as it comes),
//! and it is written to a file under `AS2/tmp/` as it comes rather than gathered in memory.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_openssl::SslStream;
use tower::ServiceExt as _;

use crate::node::Shutdown;

/// The limits of the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a request's headers (an idle keep-alive connection's next one too).
    pub header_timeout: Duration,
    /// Longest pause in a body.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest body accepted, in bytes; a larger one is answered 413.
    pub max_body: usize,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &crate::Config) -> Self {
        Limits {
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            max_connections: config.max_connections.max(1),
            max_body: config.max_body_bytes,
        }
    }

    /// Takes a request's body: refused at once when its `Content-Length` is over the limit,
    /// else written to a scratch file in `scratch_dir` as it comes (so a slow or large upload
    /// holds disk, not memory, until it is complete), counted against the limit, each pause at
    /// most the idle timeout.
    pub async fn take_body(
        &self,
        content_length: Option<&str>,
        body: Body,
        scratch_dir: &std::path::Path,
    ) -> Result<Spooled, BodyError> {
        let length = content_length.and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|n| n > self.max_body as u64) {
            return Err(BodyError::TooLarge(self.max_body));
        }
        let (scratch, length) = spool(body, scratch_dir, self.max_body, self.idle_timeout).await?;
        Ok(Spooled { scratch, length })
    }
}

/// A request body in a scratch file, removed when this is dropped.
#[derive(Debug)]
pub struct Spooled {
    scratch: Scratch,
    /// Its length in bytes.
    pub length: u64,
}

impl Spooled {
    /// The body read in parts.
    pub fn reader(&self) -> gateway::Result<crate::store::DirReader> {
        std::fs::File::open(&self.scratch.0)
            .map(crate::store::DirReader::of)
            .map_err(|e| gateway::GatewayError::port("request spool", e))
    }

    /// The body read whole.
    pub async fn read(&self) -> gateway::Result<Vec<u8>> {
        let path = self.scratch.0.clone();
        crate::blocking::call("request spool", move || {
            std::fs::read(&path).map_err(|e| gateway::GatewayError::port("request spool", e))
        })
        .await
    }
}

/// A reply of the gateway as the HTTP server sends it.
pub fn respond(reply: gateway::HttpResponse) -> Response {
    let (status, headers) = gateway_http::reply_head(&reply);
    (status, headers, reply.body).into_response()
}

/// What a connection can tell of its peer.
pub trait Peer {
    /// The peer, for the AS2 endpoint.
    fn peer(&self) -> gateway::Peer;
}

impl Peer for TcpStream {
    fn peer(&self) -> gateway::Peer {
        gateway::Peer::default()
    }
}

impl Peer for SslStream<TcpStream> {
    fn peer(&self) -> gateway::Peer {
        gateway::Peer {
            client_certificate: self.ssl().peer_certificate(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets the requests in progress finish
/// (bounded).
pub async fn serve<L>(mut listener: L, app: Router, limits: Limits, shutdown: Shutdown)
where
    L: axum::serve::Listener,
    L::Io: Peer,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.clone().requested() => break,
        };
        let (io, _addr) = tokio::select! {
            c = listener.accept() => c,
            _ = shutdown.clone().requested() => break,
        };
        let peer = io.peer();
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (app, peer) = (app.clone(), peer.clone());
            async move {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(peer);
                Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {}))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

/// Why a body could not be taken.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit.
    TooLarge(usize),
    /// It stopped coming.
    Stalled,
    /// The connection broke, or the scratch file could not be written.
    Io(String),
}

impl BodyError {
    /// The answer to the client.
    pub fn response(&self) -> Response {
        use axum::http::StatusCode;
        match self {
            BodyError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the message is larger than the {limit} bytes this endpoint takes\n"),
            )
                .into_response(),
            BodyError::Stalled => (
                StatusCode::REQUEST_TIMEOUT,
                "the message stopped coming; send it again\n",
            )
                .into_response(),
            BodyError::Io(_) => respond(gateway::HttpResponse::unavailable()),
        }
    }
}

/// A scratch file that is removed when dropped.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Takes `body` into a file in `scratch_dir` as it comes (each pause at most `idle`, all of it
/// at most `max` bytes); returns the file and the body's length.
async fn spool(
    body: Body,
    scratch_dir: &std::path::Path,
    max: usize,
    idle: Duration,
) -> Result<(Scratch, u64), BodyError> {
    let io = |e: std::io::Error| BodyError::Io(e.to_string());
    let dir = scratch_dir.to_path_buf();
    let (file, path) =
        tokio::task::spawn_blocking(move || crate::store::new_scratch_file(&dir, "recv-", 0o600))
            .await
            .map_err(|e| BodyError::Io(e.to_string()))?
            .map_err(io)?;
    let scratch = Scratch(path);
    let mut file = tokio::fs::File::from_std(file);
    let mut body = body;
    let mut total = 0usize;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::Stalled),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Io(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total > max {
                return Err(BodyError::TooLarge(max));
            }
            file.write_all(&data).await.map_err(io)?;
        }
    }
    file.flush().await.map_err(io)?;
    drop(file);
    Ok((scratch, total as u64))
}

/// Raises this process's limit of open files to its hard limit (a Debian default of 1024
/// would refuse connections well before `max_connections`); returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "cannot raise the open files limit");
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}
