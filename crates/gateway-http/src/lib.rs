//! What the embedded gateway and the Lambda functions share of the world outside the domain:
//! the HTTP(S) client towards partners (reqwest over OpenSSL), the conversions between the
//! `http` crate's requests and responses and what the domain reads and answers, and the wall
//! clock.

use gateway::model::TlsOptions;
use gateway::ports::{As2Transport, HttpRequest, HttpResponse, TransportError};

/// [`As2Transport`] with reqwest. Bodies always go with a Content-Length (some partners refuse
/// chunked requests).
#[derive(Debug, Clone, Default)]
pub struct HttpTransport;

impl HttpTransport {
    fn client(
        tls: &TlsOptions,
        trust: &[openssl::x509::X509],
    ) -> std::result::Result<reqwest::Client, TransportError> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("mftg/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        for cert in trust {
            let der = cert
                .to_der()
                .map_err(|e| TransportError::Connect(e.to_string()))?;
            let c = reqwest::Certificate::from_der(&der)
                .map_err(|e| TransportError::Connect(e.to_string()))?;
            b = b.add_root_certificate(c);
        }
        if tls.insecure_skip_verify {
            tracing::warn!("TLS certificate verification is off for this partner");
            b = b.danger_accept_invalid_certs(true);
        }
        b.build()
            .map_err(|e| TransportError::Connect(e.to_string()))
    }
}

impl As2Transport for HttpTransport {
    async fn post(
        &self,
        request: HttpRequest,
    ) -> std::result::Result<HttpResponse, TransportError> {
        let client = Self::client(&request.tls, &request.trust)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for h in request.headers.iter() {
            let name = reqwest::header::HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|e| TransportError::Io(format!("header {}: {e}", h.name)))?;
            let value = reqwest::header::HeaderValue::from_str(&h.value)
                .map_err(|e| TransportError::Io(format!("header {}: {e}", h.name)))?;
            headers.append(name, value);
        }
        let mut rb = client
            .post(&request.url)
            .headers(headers)
            .timeout(request.timeout)
            .body(request.body);
        if let Some((user, password)) = &request.basic_auth {
            rb = rb.basic_auth(user, Some(password));
        }
        let classify = |e: reqwest::Error| {
            let text = describe(&e);
            if e.is_timeout() {
                TransportError::Timeout
            } else if text.to_ascii_lowercase().contains("certificate") {
                TransportError::Certificate(text)
            } else if e.is_connect() {
                TransportError::Connect(text)
            } else {
                TransportError::Io(text)
            }
        };
        let response = rb.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let mut out = as2::HeaderMap::new();
        for (name, value) in response.headers() {
            out.append(name.as_str(), as2::mime::header_text(value.as_bytes()));
        }
        let body = response.bytes().await.map_err(classify)?.to_vec();
        Ok(HttpResponse {
            status,
            headers: out,
            body,
        })
    }
}

/// An error and its causes, each once: reqwest's own message ("error sending request") says
/// nothing of why; the TLS library's, further down, does.
fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// An incoming request's headers as the AS2 engine reads them (8-bit values as UTF-8 when they
/// are UTF-8, else as ISO-8859-1: a file name in a header is never mangled).
pub fn as2_headers(headers: &http::HeaderMap) -> as2::HeaderMap {
    let mut h = as2::HeaderMap::new();
    for (name, value) in headers {
        h.append(name.as_str(), as2::mime::header_text(value.as_bytes()));
    }
    h
}

/// The status and headers of the gateway's answer, for the HTTP response. A header HTTP cannot
/// carry is left out, with a warning.
pub fn reply_head(reply: &HttpResponse) -> (http::StatusCode, http::HeaderMap) {
    let status =
        http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = http::HeaderMap::new();
    for f in reply.headers.iter() {
        match (
            http::HeaderName::from_bytes(f.name.as_bytes()),
            http::HeaderValue::from_str(&f.value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::warn!(header = %f.name, "a reply header HTTP cannot carry; left out"),
        }
    }
    (status, headers)
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl gateway::ports::Clock for SystemClock {
    fn now(&self) -> gateway::Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        gateway::Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    async fn sleep(&self, d: std::time::Duration) {
        tokio::time::sleep(d).await;
    }
}
