//! A Lambda Function URL in front of a function under the [`LambdaEmulator`]: HTTP requests on
//! 127.0.0.1 become payload-format-2.0 events (binary bodies base64-encoded, as Lambda sends
//! them), the function's reply becomes the HTTP response. Like Lambda, a request over 6 MB is
//! refused with 413 before the function sees it.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::lambda::{LambdaEmulator, LambdaError};

/// Lambda's limit on a synchronous request, base64 growth included.
pub const LAMBDA_REQUEST_LIMIT: usize = 6 * 1024 * 1024;

type Job = (Value, oneshot::Sender<Result<Value, LambdaError>>);

/// The URL and what serves it.
#[derive(Debug)]
pub struct FunctionUrl {
    url: String,
    runtime: Option<tokio::runtime::Runtime>,
    worker: Option<std::thread::JoinHandle<LambdaEmulator>>,
    jobs: Option<std_mpsc::Sender<Job>>,
}

impl FunctionUrl {
    /// Serves `function` at a new URL on 127.0.0.1.
    pub fn start(function: LambdaEmulator) -> FunctionUrl {
        let (tx, rx) = std_mpsc::channel::<Job>();
        // The emulator blocks on its own runtime, so it is driven from a plain thread.
        let worker = std::thread::spawn(move || {
            let mut function = function;
            while let Ok((event, reply)) = rx.recv() {
                let _ = reply.send(function.invoke(&event, Duration::from_secs(90)));
            }
            function
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let app = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(std::sync::Arc::new(std::sync::Mutex::new(tx.clone())));
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FunctionUrl {
            url: format!("http://{addr}"),
            runtime: Some(runtime),
            worker: Some(worker),
            jobs: Some(tx),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops serving and hands the function back (to read its log).
    pub fn stop(mut self) -> LambdaEmulator {
        self.shutdown().expect("the function")
    }

    fn shutdown(&mut self) -> Option<LambdaEmulator> {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        self.jobs.take();
        self.worker.take().and_then(|w| w.join().ok())
    }
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The payload-format-2.0 event for a request.
pub fn event(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut h = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let key = name.as_str().to_ascii_lowercase();
        match h.get_mut(&key) {
            Some(Value::String(v)) => {
                v.push(',');
                v.push_str(&value);
            }
            _ => {
                h.insert(key, Value::String(value));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut e = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": h,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "emulated",
            "domainName": "emulated.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "emulated",
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": format!("req-{now}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:09:30:00 +0000",
            "timeEpoch": now,
        },
        "isBase64Encoded": true,
    });
    if !body.is_empty() {
        e["body"] = Value::String(base64::engine::general_purpose::STANDARD.encode(body));
    }
    e
}

/// The HTTP response for a function's reply (`statusCode`, `headers`, `multiValueHeaders`,
/// `body`, `isBase64Encoded`).
pub fn response(reply: &Value) -> Response {
    let status = reply
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let body = match reply.get("body").and_then(Value::as_str) {
        None => Vec::new(),
        Some(b) if reply.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default()
        }
        Some(b) => b.as_bytes().to_vec(),
    };
    let mut r = Response::builder().status(status);
    if let Some(map) = reply.get("headers").and_then(Value::as_object) {
        for (k, v) in map {
            if let Some(v) = v.as_str() {
                r = r.header(k, v);
            }
        }
    }
    if let Some(map) = reply.get("multiValueHeaders").and_then(Value::as_object) {
        for (k, vs) in map {
            if reply.pointer(&format!("/headers/{k}")).is_some() {
                continue;
            }
            for v in vs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                r = r.header(k, v);
            }
        }
    }
    r.body(Body::from(body))
        .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

type Shared = std::sync::Arc<std::sync::Mutex<std_mpsc::Sender<Job>>>;

async fn handle(
    State(jobs): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event = event(&method, &uri, &headers, &body);
    if event.to_string().len() > LAMBDA_REQUEST_LIMIT {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        )
            .into_response();
    }
    let (tx, rx) = oneshot::channel();
    if jobs.lock().expect("lock").send((event, tx)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "function stopped").into_response();
    }
    match rx.await {
        Ok(Ok(reply)) => response(&reply),
        Ok(Err(e)) => (
            StatusCode::BAD_GATEWAY,
            format!("{}: {}", e.error_type, e.error_message),
        )
            .into_response(),
        Err(_) => (StatusCode::BAD_GATEWAY, "no reply").into_response(),
    }
}
