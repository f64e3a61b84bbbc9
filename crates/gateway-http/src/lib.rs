//! What the embedded gateway and the Lambda functions share of the world outside the domain:
//! the HTTP(S) client towards partners (reqwest over OpenSSL), the conversions between the
//! `http` crate's requests and responses and what the domain reads and answers, and the wall
//! clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gateway::model::TlsOptions;
use gateway::ports::{As2Transport, Body, HttpRequest, HttpResponse, TransportError};

/// [`As2Transport`] with reqwest. Bodies always go with a Content-Length (some partners refuse
/// chunked requests).
///
/// One client per distinct TLS configuration (trust anchors, verification on or off), built on
/// first use and kept: building one loads the system's CA bundle, which costs more than signing
/// and encrypting a small message, and a kept client keeps its connections to each partner alive
/// between messages. Clones share the clients.
#[derive(Debug, Clone, Default)]
pub struct HttpTransport {
    clients: Arc<Mutex<HashMap<ClientKey, reqwest::Client>>>,
}

/// What makes two clients differ: the extra trust anchors (DER) and whether verification is off.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    trust: Vec<Vec<u8>>,
    insecure: bool,
}

/// Distinct TLS configurations kept at most; past it the kept ones are dropped and built again
/// as they are used (a deployment has a handful).
const MAX_CLIENTS: usize = 64;

impl HttpTransport {
    /// A transport with no clients built yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds now the client of the usual TLS configuration (the system's CA bundle,
    /// verification on), which is otherwise built by the first message sent: a long-running
    /// gateway pays for loading the bundle when it starts. Blocks for as long as that takes.
    pub fn warm(&self) -> std::result::Result<(), TransportError> {
        self.client(&TlsOptions::default(), &[]).map(drop)
    }

    /// How many clients are kept (one per TLS configuration used so far).
    pub fn clients(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, reqwest::Client>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn client(
        &self,
        tls: &TlsOptions,
        trust: &[openssl::x509::X509],
    ) -> std::result::Result<reqwest::Client, TransportError> {
        let key = ClientKey {
            trust: trust
                .iter()
                .map(|c| c.to_der())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| TransportError::Connect(e.to_string()))?,
            insecure: tls.insecure_skip_verify,
        };
        if let Some(c) = self.lock().get(&key) {
            return Ok(c.clone());
        }
        let built = Self::build(&key)?;
        let mut clients = self.lock();
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        Ok(clients.entry(key).or_insert(built).clone())
    }

    fn build(key: &ClientKey) -> std::result::Result<reqwest::Client, TransportError> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("mftg/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            // A kept connection a partner has closed meanwhile is not reused after this long.
            .pool_idle_timeout(std::time::Duration::from_secs(30));
        for der in &key.trust {
            let c = reqwest::Certificate::from_der(der)
                .map_err(|e| TransportError::Connect(e.to_string()))?;
            b = b.add_root_certificate(c);
        }
        if key.insecure {
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
        if request.tls.insecure_skip_verify {
            tracing::warn!(url = %request.url, "TLS certificate verification is off for this partner");
        }
        let client = self.client(&request.tls, &request.trust)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for h in request.headers.iter() {
            let name = reqwest::header::HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|e| TransportError::Io(format!("header {}: {e}", h.name)))?;
            let value = reqwest::header::HeaderValue::from_str(&h.value)
                .map_err(|e| TransportError::Io(format!("header {}: {e}", h.name)))?;
            headers.append(name, value);
        }
        let body = match request.body {
            Body::Bytes(b) => reqwest::Body::from(b),
            // A stream goes with the Content-Length it was given, not chunked.
            Body::Stream { length, chunks } => {
                headers.insert(reqwest::header::CONTENT_LENGTH, length.into());
                reqwest::Body::wrap_stream(chunks)
            }
        };
        let mut rb = client
            .post(&request.url)
            .headers(headers)
            .timeout(request.timeout)
            .body(body);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;
    use std::io::{BufRead as _, Read as _, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// An HTTP/1.1 server on 127.0.0.1 that answers every POST with 200 and keeps connections
    /// open; returns its port and the count of connections it accepted.
    fn keep_alive_server() -> (u16, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    for _ in 0..64 {
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap();
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    }
                });
            }
        });
        (port, accepted)
    }

    fn request(port: u16, trust: Vec<openssl::x509::X509>) -> HttpRequest {
        HttpRequest {
            url: format!("http://127.0.0.1:{port}/as2"),
            headers: as2::HeaderMap::new(),
            body: Body::Bytes(b"message".to_vec()),
            timeout: Duration::from_secs(10),
            basic_auth: None,
            tls: TlsOptions::default(),
            trust,
        }
    }

    #[tokio::test]
    async fn one_client_per_tls_configuration_and_its_connections_kept() {
        let (port, accepted) = keep_alive_server();
        let t = HttpTransport::new();
        // Warmed: the usual configuration's client is there before any message, and used.
        t.warm().unwrap();
        assert_eq!(t.clients(), 1);
        for _ in 0..5 {
            let r = t.post(request(port, Vec::new())).await.unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
        }
        assert_eq!(t.clients(), 1);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "five messages, one connection"
        );
        // Another trust anchor is another client; a clone shares what is built.
        let id =
            as2::keys::Identity::generate_self_signed("CA", 2048, as2::UnixTime(1_700_000_000), 30)
                .unwrap();
        t.clone()
            .post(request(port, vec![id.certificate.clone()]))
            .await
            .unwrap();
        assert_eq!(t.clients(), 2);
    }

    #[tokio::test]
    async fn a_streamed_body_goes_whole_with_its_content_length() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            (head, body)
        });
        let parts: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100_000]).collect();
        let whole = parts.concat();
        let chunks = futures_util::stream::iter(parts.into_iter().map(Ok));
        let mut req = request(port, Vec::new());
        req.body = Body::Stream {
            length: whole.len() as u64,
            chunks: Box::pin(chunks),
        };
        let r = HttpTransport::new().post(req).await.unwrap();
        assert_eq!(r.status, 200);
        let (head, body) = server.join().unwrap();
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.contains("content-length: 500000"), "{head}");
        assert_eq!(body, whole);
    }
}
