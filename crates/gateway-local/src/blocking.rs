//! Running the embedded adapters' blocking calls (SQLite statements that may wait for another
//! process's lock, file calls that wait for the disk) where blocking is allowed, never on the
//! async workers.

use gateway::{GatewayError, Result};

/// Runs `f` with a clone of `adapter` (a cheap handle) on tokio's blocking threads; `port` names
/// the adapter should the thread itself fail.
pub(crate) async fn run<A, T>(
    adapter: &A,
    port: &'static str,
    f: impl FnOnce(&A) -> Result<T> + Send + 'static,
) -> Result<T>
where
    A: Clone + Send + 'static,
    T: Send + 'static,
{
    let adapter = adapter.clone();
    tokio::task::spawn_blocking(move || f(&adapter))
        .await
        .map_err(|e| GatewayError::port(port, e))?
}
