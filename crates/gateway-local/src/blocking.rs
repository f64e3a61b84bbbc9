//! Running the embedded adapters' blocking calls (SQLite statements that may wait for another
//! process's lock, file calls that wait for the disk) where blocking is allowed, never on the
//! async workers.
//!
//! A call made from a [`job`] runs in place: the job is on a blocking thread already. Anywhere
//! else it is handed to one of tokio's blocking threads and awaited, two thread switches at
//! least. Work that makes many such calls and no network call runs as one job: a look at the
//! send folder with the uploads it finds, and a received message once its body is in.
//!
//! A send job stays a task: its POST is driven by the async workers, and a job does not end
//! with them (only a task is dropped when its runtime is), so a send job running as a job
//! when its runtime went would record that as the partner's failure.

use std::cell::Cell;
use std::future::Future;

use gateway::{GatewayError, Result};

thread_local! {
    /// Set on a blocking thread while it runs a [`job`].
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with a clone of `adapter` (a cheap handle) where blocking is allowed; `port` names
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
    call(port, move || f(&adapter)).await
}

/// Runs `f` where blocking is allowed; `port` names what it calls should the thread itself fail.
pub(crate) async fn call<T>(
    port: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T>
where
    T: Send + 'static,
{
    if IN_JOB.with(Cell::get) {
        return f();
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GatewayError::port(port, e))?
}

/// Runs `work` to its end on one of tokio's blocking threads, where the blocking calls it makes
/// through [`run`] and [`call`] run in place. Its sockets and timers are still driven by the
/// async workers; tasks it spawns run there, and their blocking calls are handed off as usual.
/// It runs to its end even when what awaits it is dropped (a client gone while its message is
/// being stored), as blocking work does.
pub(crate) async fn job<F>(work: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Clears the mark when the job ends, however it ends: the thread goes back to the pool.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            IN_JOB.with(|j| j.set(false));
        }
    }
    let handle = tokio::runtime::Handle::current();
    let ran = tokio::task::spawn_blocking(move || {
        IN_JOB.with(|j| j.set(true));
        let _leave = Leave;
        handle.block_on(work)
    })
    .await;
    match ran {
        Ok(out) => out,
        Err(e) => match e.try_into_panic() {
            // The job's panic is its awaiter's, as it was before it moved to its own thread.
            Ok(panic) => std::panic::resume_unwind(panic),
            // A blocking task is never cancelled: only a runtime shutting down drops one.
            Err(e) => panic!("a job did not run: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::thread::ThreadId;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn this_thread() -> ThreadId {
        std::thread::current().id()
    }

    /// The thread it is polled on, and the threads a `run` and a `call` from there ran on.
    async fn where_calls_run() -> [ThreadId; 3] {
        let here = this_thread();
        let by_run = run(&(), "test", |_| Ok(this_thread())).await.unwrap();
        let by_call = call("test", || Ok(this_thread())).await.unwrap();
        [here, by_run, by_call]
    }

    fn runtimes() -> [tokio::runtime::Runtime; 2] {
        [
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ]
    }

    #[test]
    fn calls_from_a_job_run_in_place_and_any_other_is_handed_to_a_blocking_thread() {
        for rt in runtimes() {
            rt.block_on(async {
                let [here, by_run, by_call] = where_calls_run().await;
                assert_ne!(here, by_run, "a call from an async worker is handed off");
                assert_ne!(here, by_call, "a call from an async worker is handed off");

                let [here, by_run, by_call] = job(where_calls_run()).await;
                assert_eq!(here, by_run, "a call from a job runs in place");
                assert_eq!(here, by_call, "a call from a job runs in place");

                // A task a job spawns runs on the async workers, and is handed off as usual.
                let [here, by_run, _] =
                    job(async { tokio::spawn(where_calls_run()).await.unwrap() }).await;
                assert_ne!(here, by_run);

                // The thread that ran a job goes back to the pool as it was: what it runs next
                // is not in a job.
                for _ in 0..4 {
                    assert!(!call("test", || Ok(IN_JOB.with(Cell::get))).await.unwrap());
                }
            });
        }
    }

    #[test]
    fn a_job_drives_sockets_and_timers() {
        for rt in runtimes() {
            rt.block_on(async {
                let echoed = job(async {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let address = listener.local_addr().unwrap();
                    let echo = tokio::spawn(async move {
                        let (mut s, _) = listener.accept().await.unwrap();
                        let mut b = [0u8; 5];
                        s.read_exact(&mut b).await.unwrap();
                        s.write_all(&b).await.unwrap();
                    });
                    let mut c = tokio::net::TcpStream::connect(address).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    c.write_all(b"hello").await.unwrap();
                    let mut b = [0u8; 5];
                    c.read_exact(&mut b).await.unwrap();
                    echo.await.unwrap();
                    b
                });
                let echoed = tokio::time::timeout(Duration::from_secs(20), echoed)
                    .await
                    .expect("the job's socket and timer were driven");
                assert_eq!(&echoed, b"hello");
            });
        }
    }

    #[test]
    fn a_jobs_panic_is_its_awaiters() {
        for rt in runtimes() {
            rt.block_on(async {
                let awaited = tokio::spawn(job(async { panic!("the job's own panic") })).await;
                let panic = awaited.unwrap_err().into_panic();
                assert_eq!(panic.downcast_ref::<&str>(), Some(&"the job's own panic"));
            });
        }
    }
}
