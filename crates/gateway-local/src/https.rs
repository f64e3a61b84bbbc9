//! The HTTPS listener: TLS 1.2 and 1.3 over OpenSSL, with the key and certificate of
//! `AS2/keystore/https.jks`, and the client certificate a partner presented handed to the
//! gateway (a partnership may require one).
//!
//! Handshakes run in their own tasks with a time limit, so a client that stalls one does not
//! hold up the others; finished connections are handed to the HTTP server in order.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use as2::keys::Identity;
use gateway::{GatewayError, Result};
use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_openssl::SslStream;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An OpenSSL acceptor for `identity`: TLS 1.2 or 1.3 (Mozilla's intermediate ciphers), asking
/// clients for a certificate when `ask_client_certificates` (any is let through the handshake;
/// the partnership decides whether it is the right one).
pub fn acceptor(identity: &Identity, ask_client_certificates: bool) -> Result<Arc<SslAcceptor>> {
    let tls = |e: openssl::error::ErrorStack| GatewayError::Config(format!("HTTPS: {e}"));
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(tls)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(tls)?;
    b.set_private_key(&identity.private_key).map_err(tls)?;
    b.set_certificate(&identity.certificate).map_err(tls)?;
    for c in &identity.chain {
        b.add_extra_chain_cert(c.clone()).map_err(tls)?;
    }
    b.check_private_key().map_err(tls)?;
    if ask_client_certificates {
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
    }
    Ok(Arc::new(b.build()))
}

/// TLS connections, handshaken, for [`crate::http::serve`].
#[derive(Debug)]
pub struct TlsListener {
    incoming: mpsc::Receiver<(SslStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` with `acceptor` until the returned listener is dropped.
    pub fn new(listener: TcpListener, acceptor: Arc<SslAcceptor>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "HTTPS accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, addr)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { incoming, local })
    }
}

async fn handshake(
    acceptor: &SslAcceptor,
    tcp: TcpStream,
) -> std::io::Result<SslStream<TcpStream>> {
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(std::io::Error::other)?;
    let mut stream = SslStream::new(ssl, tcp).map_err(std::io::Error::other)?;
    Pin::new(&mut stream)
        .accept()
        .await
        .map_err(std::io::Error::other)?;
    Ok(stream)
}

impl axum::serve::Listener for TlsListener {
    type Io = SslStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(c) => c,
            // The accepting task only ends with the listener; until then, wait.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
