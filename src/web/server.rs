//! The accept loop (R-SEC-5, R-SEC-1): TCP connections are admitted against a per-IP and
//! a total connection limit, TLS (rustls, TLS 1.2/1.3, ALPN h2 and http/1.1) must finish
//! within `limits.header_read_timeout`, and hyper serves HTTP/1.1 and HTTP/2 with a
//! bounded request head (`limits.header_bytes`, `limits.header_count`: 431 beyond) that
//! must arrive within `limits.header_read_timeout` (a slowloris client is cut off).
//! Graceful shutdown: stop accepting, let in-flight requests finish (10 s at most).
//!
//! Written on hyper-util rather than `axum::serve`, which does not expose the HTTP/1
//! header timeout or head size, nor a hook to refuse a connection by its peer address.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tower::ServiceExt;

use crate::config::LimitsConfig;
use crate::monitor::metrics::Metrics;
use crate::web::proxy::{client_address, Network};

/// How long in-flight requests may run on after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// Connection limits and HTTP settings taken from `[limits]`.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// See [`LimitsConfig::header_bytes`].
    pub header_bytes: usize,
    /// See [`LimitsConfig::header_count`].
    pub header_count: usize,
    /// See [`LimitsConfig::header_read_timeout`].
    pub header_read_timeout: Duration,
    /// See [`LimitsConfig::connections_per_ip`].
    pub connections_per_ip: usize,
    /// See [`LimitsConfig::max_connections`].
    pub max_connections: usize,
    /// See [`LimitsConfig::trusted_proxies`].
    pub trusted_proxies: Arc<[Network]>,
}

impl From<&LimitsConfig> for ServerLimits {
    fn from(l: &LimitsConfig) -> Self {
        Self {
            header_bytes: l.header_bytes,
            header_count: l.header_count,
            header_read_timeout: l.header_read_timeout,
            connections_per_ip: l.connections_per_ip,
            max_connections: l.max_connections,
            trusted_proxies: l.trusted_proxies.clone().into(),
        }
    }
}

/// Open connections per peer address and in total.
#[derive(Debug, Default)]
struct ConnectionTable {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    PerIp,
    Total,
}

/// Counts one admitted connection until dropped.
struct Admitted {
    table: Arc<Mutex<ConnectionTable>>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut t = match self.table.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        t.total = t.total.saturating_sub(1);
        if let Some(n) = t.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_ip.remove(&self.ip);
            }
        }
    }
}

fn admit(table: &Arc<Mutex<ConnectionTable>>, ip: IpAddr, limits: &ServerLimits) -> Result<Admitted, Refusal> {
    let mut t = match table.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    if t.total >= limits.max_connections {
        return Err(Refusal::Total);
    }
    let n = t.per_ip.entry(ip).or_insert(0);
    if *n >= limits.connections_per_ip {
        return Err(Refusal::PerIp);
    }
    *n += 1;
    t.total += 1;
    Ok(Admitted {
        table: table.clone(),
        ip,
    })
}

/// TLS server set-up errors.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Certificate or key unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// Socket I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A rustls acceptor from PEM files (TLS 1.2 and 1.3, ALPN h2 and http/1.1).
pub fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Tls(format!("certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ServeError::Tls(format!("key {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` (the routes in their transport stack) on `listener` (TLS when `tls` is given) until `shutdown` completes,
/// then drains in-flight requests for up to 10 s.
pub async fn run<S>(
    router: S,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ServerLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError>
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.header_bytes.saturating_mul(2).max(8192))
        .max_headers(limits.header_count);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(Some(256));
    let graceful = GracefulShutdown::new();
    let table = Arc::new(Mutex::new(ConnectionTable::default()));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: yield and try again, as
                    // hyper's and axum's loops do.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let admitted = match admit(&table, super::limits::client_key(peer.ip()), &limits) {
            Ok(a) => a,
            Err(why) => {
                metrics.connection_refused();
                tracing::warn!(peer = %peer.ip(), reason = ?why, "connection refused by a connection limit");
                tokio::spawn(refuse(stream, why, tls.is_none()));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxies = limits.trusted_proxies.clone();
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                // Behind a trusted proxy the client is named by X-Forwarded-For.
                let client = if proxies.is_empty() {
                    peer
                } else {
                    let forwarded = req.headers().get_all("x-forwarded-for").iter();
                    SocketAddr::new(client_address(peer.ip(), forwarded, &proxies), peer.port())
                };
                req.extensions_mut().insert(ConnectInfo(client));
                req.map(axum::body::Body::new)
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake = limits.header_read_timeout;
        tokio::spawn(async move {
            let _admitted = admitted;
            match tls {
                None => serve_connection(&builder, watcher, stream, service, peer).await,
                Some(acceptor) => match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(&builder, watcher, stream, service, peer).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("connections still open after the drain period"),
    }
    Ok(())
}

async fn serve_connection<I, S>(
    builder: &Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    stream: I,
    service: S,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            axum::http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Answers a refused plain-HTTP connection with a short problem+json (429 for the per-IP
/// limit, 503 for the total) and closes it; a TLS connection is just closed.
async fn refuse(mut stream: tokio::net::TcpStream, why: Refusal, plain: bool) {
    if plain {
        let (status, title) = match why {
            Refusal::PerIp => ("429 Too Many Requests", "Too many connections from this address"),
            Refusal::Total => ("503 Service Unavailable", "Too many connections"),
        };
        let code = &status[..3];
        let body = format!(
            "{{\"type\":\"urn:eidgate:problem:too-many-connections\",\"title\":\"{title}\",\"status\":{code}}}"
        );
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let write = async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            stream.shutdown().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sec_5_connections_are_counted_per_ip_and_released() {
        let limits = ServerLimits {
            header_bytes: 8192,
            header_count: 100,
            header_read_timeout: Duration::from_secs(1),
            connections_per_ip: 2,
            max_connections: 3,
            trusted_proxies: Arc::from([]),
        };
        let table = Arc::new(Mutex::new(ConnectionTable::default()));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admit(&table, a, &limits).unwrap();
        let _second = admit(&table, a, &limits).unwrap();
        assert_eq!(admit(&table, a, &limits).err(), Some(Refusal::PerIp));
        let _third = admit(&table, b, &limits).unwrap();
        assert_eq!(admit(&table, b, &limits).err(), Some(Refusal::Total));
        drop(first);
        assert!(admit(&table, a, &limits).is_ok());
    }
}
