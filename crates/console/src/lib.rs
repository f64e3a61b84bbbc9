//! The operator console and its REST API, served from the `mftg` binary against either backend
//! (an embedded gateway's data directory, or an AWS deployment) through the domain's ports: what
//! the command line shows and does, over HTTP.
//!
//! Every request must carry the console's token (`Authorization: Bearer <token>`, or HTTP Basic
//! with the token as the password); a state-changing request made with Basic credentials (which
//! a browser sends by itself) must also carry `X-CSRF-Token` (`GET /api/v1/session` says it).
//! Errors are JSON with a stable `code`.

mod api;
mod auth;
mod certs;
mod error;
mod pages;
mod settings;

use std::future::Future;
use std::sync::Arc;

use gateway::model::{Partnership, Station};
use gateway::ports::{ParkedJob, Ports};
use gateway::{Gateway, Result};

pub use auth::Auth;
pub use certs::certificates;
pub use error::ApiError;

/// What the console acts on: a gateway over some backend's ports, and what only the backend
/// knows how to list or do (its stations and partnerships, the jobs it set aside).
pub trait Backend: Send + Sync + 'static {
    /// The backend's ports.
    type Ports: Ports + 'static;

    /// The gateway over them.
    fn gateway(&self) -> &Gateway<Self::Ports>;

    /// Every station.
    fn stations(&self) -> impl Future<Output = Result<Vec<Station>>> + Send;

    /// Every partnership.
    fn partnerships(&self) -> impl Future<Output = Result<Vec<Partnership>>> + Send;

    /// Adds `station` or replaces the one of its AS2 ID (already checked); says where it was
    /// saved and when it is used, for people.
    fn put_station(&self, station: Station) -> impl Future<Output = Result<String>> + Send;

    /// Adds `partnership` or replaces the one of its station and partner (already checked);
    /// says where it was saved and when it is used.
    fn put_partnership(
        &self,
        partnership: Partnership,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Up to `limit` jobs set aside (the dead-letter queue; the database's parked jobs).
    fn parked(&self, limit: usize) -> impl Future<Output = Result<Vec<ParkedJob>>> + Send;

    /// Puts set-aside jobs back in the queue: all (at most `limit`), or those whose id or
    /// message record is `only`; returns those moved.
    fn redrive(
        &self,
        only: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ParkedJob>>> + Send;

    /// The running gateway's figures in the OpenMetrics text format; `None` where this process
    /// keeps none (a console beside a gateway: the gateway's own `[console]` listener serves
    /// them; a deployment on AWS).
    fn metrics(&self) -> impl Future<Output = Result<Option<String>>> + Send;

    /// What it is, for people: `data directory /srv/mftg/data`, `deployment mftg (eu-west-1)`.
    fn describe(&self) -> String;
}

/// The console's routes over `backend`, every one behind `auth`.
pub fn router<B: Backend>(backend: Arc<B>, auth: Auth) -> axum::Router {
    api::routes(backend, Arc::new(auth))
}

/// Serves `router` on `listener` until `stop` resolves, then lets the requests in progress end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}
