//! The production data source: a reverse proxy to the configured upstream
//! data provider over a pooled hyper client (HTTP/1.1 or h2, `http://` or
//! `https://` with optional mTLS). Only the requested dataset is asked for;
//! `X-Correlation-ID` is propagated; the partner's `Authorization` header
//! and certificate never leave the gateway; the body is streamed back.

use super::direct::{Direct, DirectError};
use crate::config::ProductionSettings;
use crate::domain::{Dataset, Siren};
use crate::respond::Body;
use crate::tls::{self, TlsError};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::{ClientConfig, RootCertStore};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Why the upstream gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Connect or answer timeout (504, 910601).
    #[error("the data provider did not answer within {0} ms")]
    Timeout(u64),
    /// The upstream answered with a 5xx (502, 910602).
    #[error("the data provider failed: status {0}")]
    Status(StatusCode),
    /// Connection refused, reset or bad HTTP on an `http://` upstream (502,
    /// 910602).
    #[error("the data provider failed: {0}")]
    Direct(#[source] DirectError),
    /// Connection refused, reset, TLS or bad HTTP through the pooled client
    /// (502, 910602); the message walks the chain (`describe`).
    #[error("the data provider failed: {}", describe(.0))]
    Pooled(#[source] hyper_util::client::legacy::Error),
    /// The upstream URL and the call's path make no URI.
    #[error("the data provider failed: bad upstream URL: {0}")]
    Url(#[source] hyper::http::uri::InvalidUri),
    /// The request could not be built.
    #[error("the data provider failed: {0}")]
    Request(#[source] hyper::http::Error),
    /// Building the client failed (at start-up).
    #[error(transparent)]
    Tls(#[from] TlsError),
}

type Pool = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// One connection pool per thread and upstream: with thread-per-core
    /// workers, a request and its upstream connection share a thread.
    static POOLS: RefCell<HashMap<usize, Pool>> = RefCell::new(HashMap::new());
}

/// A client of the upstream (pooled per thread).
pub struct Upstream {
    id: usize,
    /// For an `http://` upstream: connections kept per worker, used directly.
    direct: Option<Direct>,
    connector: HttpsConnector<HttpConnector>,
    base: Uri,
    timeout: Duration,
}

impl Upstream {
    /// A client of `[production] upstream` with its timeouts and TLS.
    pub fn new(settings: &ProductionSettings) -> Result<Self, UpstreamError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_millis(
            settings.upstream_connect_timeout_ms,
        )));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(settings)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let connect_timeout = Duration::from_millis(settings.upstream_connect_timeout_ms);
        Ok(Upstream {
            id,
            direct: Direct::new(id, &settings.upstream.0, connect_timeout),
            connector,
            base: settings.upstream.0.clone(),
            timeout: Duration::from_millis(settings.upstream_timeout_ms),
        })
    }

    /// This thread's pool (created on first use).
    fn pool(&self) -> Pool {
        POOLS.with(|pools| {
            pools
                .borrow_mut()
                .entry(self.id)
                .or_insert_with(|| {
                    Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(Duration::from_secs(60))
                        .pool_max_idle_per_host(256)
                        .build(self.connector.clone())
                })
                .clone()
        })
    }

    /// `GET {upstream}/opale/v1/entreprises/{siren}/{dataset}?annee={year}`.
    /// 2xx and 4xx answers are passed through (body streamed); 5xx, network
    /// errors and timeouts are errors.
    pub async fn fetch(
        &self,
        siren: &Siren,
        dataset: Dataset,
        year: i32,
        correlation_id: &str,
    ) -> Result<Response<Body>, UpstreamError> {
        let path = format!("/opale/v1/entreprises/{siren}/{dataset}?annee={year}");
        let ms = self.timeout.as_millis() as u64;
        if let Some(direct) = &self.direct {
            let req = request(direct.target(&path), correlation_id)?;
            let (resp, lease) = match tokio::time::timeout(self.timeout, direct.send(req)).await {
                Err(_) | Ok(Err(DirectError::ConnectTimeout)) => {
                    return Err(UpstreamError::Timeout(ms));
                }
                Ok(Err(e)) => return Err(UpstreamError::Direct(e)),
                Ok(Ok(pair)) => pair,
            };
            if resp.status().is_server_error() {
                return Err(UpstreamError::Status(resp.status()));
            }
            let (out, read_whole) = pass_through(resp, self.timeout).await;
            if read_whole {
                direct.release(lease);
            }
            return Ok(out);
        }
        // Boxed: hyper-util's pooled client future is ~3 KiB, and the
        // request's future (moved by hyper per request) would carry it.
        Box::pin(self.fetch_pooled(&path, correlation_id)).await
    }

    /// The exchange over hyper-util's pooled client (`https://`: TLS, h2).
    async fn fetch_pooled(
        &self,
        path: &str,
        correlation_id: &str,
    ) -> Result<Response<Body>, UpstreamError> {
        let ms = self.timeout.as_millis() as u64;
        let base = self.base.to_string();
        let uri = format!("{}{path}", base.trim_end_matches('/'));
        let req = request(uri, correlation_id)?;
        let resp = match tokio::time::timeout(self.timeout, self.pool().request(req)).await {
            Err(_) => return Err(UpstreamError::Timeout(ms)),
            Ok(Err(e)) if is_timeout(&e) => return Err(UpstreamError::Timeout(ms)),
            Ok(Err(e)) => return Err(UpstreamError::Pooled(e)),
            Ok(Ok(resp)) => resp,
        };
        if resp.status().is_server_error() {
            return Err(UpstreamError::Status(resp.status()));
        }
        Ok(pass_through(resp, self.timeout).await.0)
    }
}

/// `GET uri` asking for JSON, with the caller's correlation id.
fn request(uri: String, correlation_id: &str) -> Result<Request<Empty<Bytes>>, UpstreamError> {
    let uri: Uri = uri.try_into().map_err(UpstreamError::Url)?;
    let mut req = Request::get(uri)
        .header(ACCEPT, "application/json")
        .body(Empty::new())
        .map_err(UpstreamError::Request)?;
    if let Ok(v) = HeaderValue::from_str(correlation_id) {
        req.headers_mut()
            .insert(crate::chain::hygiene::CORRELATION_HEADER, v);
    }
    Ok(req)
}

const BUFFER_UP_TO: u64 = 64 * 1024;

/// Keeps the status, content type and length; drops every other upstream
/// header (cookies, server banners, hop-by-hop headers).
/// The upstream's answer for the partner, and whether its body was read
/// whole (the connection can then carry another call).
async fn pass_through(
    resp: Response<hyper::body::Incoming>,
    timeout: Duration,
) -> (Response<Body>, bool) {
    let (parts, body) = resp.into_parts();
    let small = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= BUFFER_UP_TO);
    let body = if small {
        match tokio::time::timeout(timeout, body.collect()).await {
            Ok(Ok(collected)) => crate::respond::full(collected.to_bytes()),
            _ => return (crate::respond::empty(StatusCode::BAD_GATEWAY), false),
        }
    } else {
        body.boxed()
    };
    let mut out = Response::new(body);
    *out.status_mut() = if parts.status.is_success() || parts.status.is_client_error() {
        parts.status
    } else {
        StatusCode::BAD_GATEWAY
    };
    for name in [CONTENT_TYPE, CONTENT_LENGTH] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    (out, small)
}

/// Whether a timeout caused `e`: somewhere in its `source()` chain an
/// `io::Error` of kind `TimedOut` (what hyper-util's connect timeout and the
/// OS report) or tokio's `Elapsed`, bare or inside an `io::Error` (whose
/// `source()` skips its payload).
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    use tokio::time::error::Elapsed;
    let mut cause = Some(e);
    while let Some(c) = cause {
        let io_timeout = c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::TimedOut
                || io.get_ref().is_some_and(|inner| inner.is::<Elapsed>())
        });
        if io_timeout || c.is::<Elapsed>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn tls_config(settings: &ProductionSettings) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &settings.upstream_ca {
        for c in tls::load_certs(ca)? {
            roots.add(c)?;
        }
    }
    let builder = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    // ALPN is set by hyper-rustls from enable_http1/enable_http2.
    let config = match (&settings.upstream_cert, &settings.upstream_key) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(tls::load_certs(cert)?, tls::load_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamUrl;
    use std::time::Instant;
    use tokio::net::{TcpSocket, TcpStream};

    fn settings(upstream: &str, connect_ms: u64, answer_ms: u64) -> ProductionSettings {
        ProductionSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: UpstreamUrl(upstream.parse().unwrap()),
            crls: Vec::new(),
            public_url: None,
            upstream_connect_timeout_ms: connect_ms,
            upstream_timeout_ms: answer_ms,
            upstream_ca: None,
            upstream_cert: None,
            upstream_key: None,
            proxy_protocol_from: Default::default(),
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapper")]
    struct Wrapper(#[source] std::io::Error);

    #[tokio::test]
    async fn timeouts_are_found_by_type_anywhere_in_the_chain() {
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        assert!(is_timeout(&Wrapper(timed_out)));
        let elapsed = tokio::time::timeout(Duration::from_millis(1), std::future::pending::<()>())
            .await
            .unwrap_err();
        let wrapped = std::io::Error::other(elapsed);
        assert!(is_timeout(&Wrapper(wrapped)));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!is_timeout(&Wrapper(refused)));
        // The words alone no longer count (the former Debug-string match).
        assert!(!is_timeout(&Wrapper(std::io::Error::other("timed out"))));
    }

    /// Regression: a connect timeout (a listener whose accept queue is full
    /// drops SYNs) is 504/910601's `Timeout`, found through hyper-util's
    /// error chain, well before the 10 s answer timeout.
    #[tokio::test]
    async fn connect_timeout_is_a_timeout() {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let _listener = socket.listen(1).unwrap();
        let mut held = Vec::new();
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
        }
        let upstream = Upstream::new(&settings(&format!("http://{addr}"), 150, 10_000)).unwrap();
        let siren = Siren::parse("732829320").unwrap();
        let started = Instant::now();
        let r = upstream
            .fetch(&siren, Dataset::Declarations, 2024, "c")
            .await;
        assert!(matches!(r, Err(UpstreamError::Timeout(10_000))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
