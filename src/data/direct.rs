//! Plain-HTTP upstream connections, kept per worker thread: each worker
//! (one current-thread runtime) holds a stack of idle HTTP/1.1 connections
//! to an `http://` upstream and sends on them directly
//! (`hyper::client::conn::http1`), without the pooled client's dispatch
//! task, its locks and its per-call URI parsing. `https://` upstreams keep
//! the pooled client (`upstream.rs`), which handles TLS and h2.

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HeaderValue;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpStream;

/// Idle connections kept per worker and upstream.
const MAX_IDLE: usize = 256;

thread_local! {
    static IDLE: RefCell<HashMap<usize, Vec<SendRequest<Empty<Bytes>>>>> =
        RefCell::new(HashMap::new());
}

/// Why a direct exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    /// No connection within the connect timeout.
    #[error("connect timeout")]
    ConnectTimeout,
    /// The TCP connection could not be made.
    #[error("connect {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP/1.1 handshake or exchange failed.
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// An `http://` upstream: where to connect and what to put in `Host`.
#[derive(Debug, Clone)]
pub struct Direct {
    id: usize,
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header.
    host: HeaderValue,
    /// The base path, without a trailing `/`.
    prefix: String,
    connect_timeout: Duration,
}

/// A connection in use: give it back with [`Direct::release`] once its
/// response body has been read whole.
pub struct Lease(SendRequest<Empty<Bytes>>);

impl Direct {
    /// For an `http://` base URI; `None` for any other scheme.
    pub fn new(id: usize, base: &Uri, connect_timeout: Duration) -> Option<Self> {
        if base.scheme_str() != Some("http") {
            return None;
        }
        let authority = base.authority()?;
        let port = authority.port_u16().unwrap_or(80);
        Some(Direct {
            id,
            addr: format!("{}:{port}", authority.host()),
            host: HeaderValue::from_str(authority.as_str()).ok()?,
            prefix: base.path().trim_end_matches('/').to_owned(),
            connect_timeout,
        })
    }

    /// The origin-form target for `path` (which starts with `/`).
    pub fn target(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// Sends `req` (origin-form URI, `Host` added here) on an idle
    /// connection of this worker, or a new one.
    pub async fn send(
        &self,
        mut req: Request<Empty<Bytes>>,
    ) -> Result<(Response<hyper::body::Incoming>, Lease), DirectError> {
        req.headers_mut()
            .insert(hyper::header::HOST, self.host.clone());
        let mut sender = self.ready_connection().await?;
        let resp = sender.send_request(req).await?;
        Ok((resp, Lease(sender)))
    }

    /// Keeps `lease` for the next call on this worker.
    pub fn release(&self, lease: Lease) {
        if lease.0.is_closed() {
            return;
        }
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let stack = idle.entry(self.id).or_default();
            if stack.len() < MAX_IDLE {
                stack.push(lease.0);
            }
        });
    }

    /// An idle connection that is still usable, else a new one.
    async fn ready_connection(&self) -> Result<SendRequest<Empty<Bytes>>, DirectError> {
        while let Some(mut sender) = self.take_idle() {
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        // Boxed: rare, and the connect and handshake futures are large
        // (the request's future, which hyper moves per request, would
        // carry them).
        Box::pin(self.connect()).await
    }

    fn take_idle(&self) -> Option<SendRequest<Empty<Bytes>>> {
        IDLE.with(|idle| idle.borrow_mut().get_mut(&self.id).and_then(Vec::pop))
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, DirectError> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| DirectError::ConnectTimeout)?
            .map_err(|source| DirectError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}
