//! `as2-receiver`: AS2 over HTTP behind a Lambda Function URL or API Gateway (binary bodies
//! arrive base64-encoded; the runtime decodes them). `POST` takes a message from a partner (the
//! reply is the synchronous receipt, or 200 with the asynchronous one queued) or a partner's
//! asynchronous receipt for one of ours. `GET /health` answers `ok`.
//!
//! The request size limit is `MFTG_MAX_BODY_BYTES` (default 4,500,000 bytes, see
//! [`crate::config`]); a larger body is refused with 413 and nothing is stored. Larger still,
//! Lambda itself refuses the request before the function runs (also 413).

use gateway::ports::Ports;
use gateway::{Gateway, HttpResponse};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::Text(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The gateway's reply as an HTTP response (a receipt goes back as bytes, exactly as built).
pub fn response(reply: HttpResponse) -> Response<Body> {
    let (status, headers) = gateway_http::reply_head(&reply);
    let mut r = Response::new(Body::Binary(reply.body));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

/// Handles one HTTP request.
pub async fn handle<P: Ports>(
    gateway: &Gateway<P>,
    max_body_bytes: usize,
    request: Request,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    match *request.method() {
        Method::GET | Method::HEAD => {
            return if path.ends_with("/health") || path == "/" {
                text(StatusCode::OK, "ok\n".into())
            } else {
                text(
                    StatusCode::NOT_FOUND,
                    "not found; AS2 messages are POSTed\n".into(),
                )
            };
        }
        Method::POST => {}
        _ => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "AS2 messages are POSTed\n".into(),
            );
            r.headers_mut().insert(
                "allow",
                lambda_http::http::HeaderValue::from_static("POST, GET"),
            );
            return r;
        }
    }
    let body: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let from = request
        .headers()
        .get("as2-from")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let message_id = request
        .headers()
        .get("message-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if body.len() > max_body_bytes {
        tracing::warn!(%from, %message_id, size = body.len(), limit = max_body_bytes, "request too large; refused");
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the message is {} bytes; this endpoint takes at most {max_body_bytes} bytes\n",
                body.len()
            ),
        );
    }
    let headers = gateway_http::as2_headers(request.headers());
    match gateway.on_post(&headers, body).await {
        Ok(reply) => {
            tracing::info!(%from, %message_id, status = reply.status, size = body.len(), "AS2 request");
            response(reply)
        }
        Err(e) => {
            // A storage or database failure: the partner sends again later (same Message-ID)
            // and the message is processed then; what failed is for our log, not for it.
            tracing::error!(%from, %message_id, error = %e, "receiving failed; the partner is asked to send again");
            response(gateway::HttpResponse::unavailable())
        }
    }
}
