//! A Lambda Runtime API emulator: runs a real Lambda binary as Lambda would (the function polls
//! `/2018-06-01/runtime/invocation/next`, posts a response or an error), and lets a test invoke
//! it with an event and read what it logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// What an invocation ended with, other than a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaError {
    /// `errorType`.
    pub error_type: String,
    /// `errorMessage`.
    pub error_message: String,
}

type Reply = Result<Value, LambdaError>;

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    init_error: Mutex<Option<String>>,
}

struct Emu {
    shared: Arc<Shared>,
    queue: tokio::sync::Mutex<mpsc::Receiver<(String, Value)>>,
}

/// A Lambda binary running under the emulator.
#[derive(Debug)]
pub struct LambdaEmulator {
    runtime: tokio::runtime::Runtime,
    sender: mpsc::Sender<(String, Value)>,
    shared: Arc<SharedHandle>,
    child: Child,
    log: PathBuf,
    counter: std::sync::atomic::AtomicU64,
}

struct SharedHandle(Arc<Shared>);

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl LambdaEmulator {
    /// Starts the Runtime API on 127.0.0.1 and the function `binary` against it, with the
    /// variables Lambda sets plus `env`. Its stdout and stderr go to a log file in `log_dir`.
    pub fn start(binary: &Path, env: &[(&str, &str)], log_dir: &Path) -> LambdaEmulator {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (sender, receiver) = mpsc::channel(16);
        let shared = Arc::new(Shared::default());
        let emu = Arc::new(Emu {
            shared: shared.clone(),
            queue: tokio::sync::Mutex::new(receiver),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(emu);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let name = binary
            .file_name()
            .map_or("function".into(), |n| n.to_string_lossy().into_owned());
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("function log");
        let err = out.try_clone().expect("function log");
        let mut cmd = Command::new(binary);
        cmd.env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/28/[$LATEST]emulator")
            .env("AWS_REGION", crate::REGION)
            .env("AWS_DEFAULT_REGION", crate::REGION)
            .env("AWS_ACCESS_KEY_ID", crate::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", crate::SECRET_KEY)
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Plain text logs unless a test asks for JSON (AWS_LAMBDA_LOG_FORMAT): lambda_runtime's
            // subscriber colours text wherever tracing-subscriber's `ansi` feature is built in.
            // On AWS the templates set the log format to JSON, which has no colours.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start the Lambda binary");
        LambdaEmulator {
            runtime,
            sender,
            shared: Arc::new(SharedHandle(shared)),
            child,
            log,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The function's process ID (for its memory figures in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Invokes the function with `event`; waits at most `limit` for its answer.
    pub fn invoke(&mut self, event: &Value, limit: Duration) -> Reply {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let (tx, rx) = oneshot::channel();
        self.shared
            .0
            .pending
            .lock()
            .expect("lock")
            .insert(id.clone(), tx);
        let sender = self.sender.clone();
        let event = event.clone();
        let waited = self.runtime.block_on(async move {
            sender.send((id, event)).await.expect("queue");
            tokio::time::timeout(limit, rx).await
        });
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the function exited ({status}); init error: {:?}; log:\n{}",
                self.shared.0.init_error.lock().expect("lock"),
                self.log_text()
            );
        }
        match waited {
            Ok(Ok(reply)) => reply,
            _ => panic!("no answer within {limit:?}; log:\n{}", self.log_text()),
        }
    }

    /// Waits at most `limit` for the function to exit (as it does when its configuration is
    /// wrong); `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the function wrote to stdout and stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LambdaEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next(State(emu): State<Arc<Emu>>) -> Response {
    // Long poll, as Lambda does: the function waits here until there is an event.
    let Some((id, event)) = emu.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 60_000)
        .unwrap_or_default();
    let pairs = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:eu-west-1:123456789012:function:emulated".into(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".into(),
        ),
        ("content-type", "application/json".into()),
    ];
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    (headers, event.to_string()).into_response()
}

fn finish(emu: &Emu, id: &str, reply: Reply) -> StatusCode {
    match emu.shared.pending.lock().expect("lock").remove(id) {
        Some(tx) => {
            let _ = tx.send(reply);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(emu): State<Arc<Emu>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&emu, &id, Ok(value))
}

async fn error(
    State(emu): State<Arc<Emu>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    finish(
        &emu,
        &id,
        Err(LambdaError {
            error_type: text("errorType"),
            error_message: text("errorMessage"),
        }),
    )
}

async fn init_error(State(emu): State<Arc<Emu>>, body: Bytes) -> StatusCode {
    *emu.shared.init_error.lock().expect("lock") = Some(String::from_utf8_lossy(&body).into());
    StatusCode::ACCEPTED
}
