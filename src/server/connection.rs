//! One listener's accept loop and one connection's life: admission
//! (connection caps), the PROXY header of a trusted balancer and the TLS
//! handshake (within the handshake timeout), the
//! per-connection facts, one hyper connection (HTTP/1.1 or h2) watched for
//! the header-read and idle deadlines, and the dispatch of each request to
//! its plane. Refusals and timeouts are counted on `/metrics` and logged at
//! most once a second per listener.

use super::admission::{Admission, LogGate, Ticket};
use super::proxy;
use super::watchdog::{Activity, WatchedIo};
use crate::app::App;
use crate::audit;
use crate::chain::hygiene::Correlation;
use crate::chain::{self, Denial, Reason};
use crate::config::LimitsSettings;
use crate::domain::{Environment, Plane};
use crate::respond::Body;
use crate::tls::ConnInfo;
use crate::{admin, gateway};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{Instrument, debug, info_span, warn};

/// The admission tables and log gates of the three listeners, shared by
/// every worker thread.
#[derive(Debug)]
pub struct Edges {
    tables: [Arc<Admission>; 3],
    gates: [LogGate; 3],
}

impl Edges {
    /// Empty tables with the configured caps.
    pub fn new(limits: &LimitsSettings) -> Arc<Self> {
        let table = || Admission::new(limits.max_connections, limits.max_connections_per_ip);
        Arc::new(Edges {
            tables: [table(), table(), table()],
            gates: Default::default(),
        })
    }

    fn index(plane: Plane) -> usize {
        match plane {
            Plane::Env(Environment::Sandbox) => 0,
            Plane::Env(Environment::Production) => 1,
            Plane::Admin => 2,
        }
    }

    /// New caps after a reload of `[limits]`; open connections keep their
    /// places.
    pub fn apply(&self, limits: &LimitsSettings) {
        for table in &self.tables {
            table.set_caps(limits.max_connections, limits.max_connections_per_ip);
        }
    }

    /// Open connections on `plane`'s listener.
    pub fn open(&self, plane: Plane) -> usize {
        self.tables[Self::index(plane)].open()
    }

    /// Counts an edge event, and logs it unless the gate holds it back.
    fn report(&self, app: &App, plane: Plane, what: &'static str, remote: SocketAddr) {
        app.metrics.connection_closed(plane, what);
        if let Some(held_back) = self.gates[Self::index(plane)].pass() {
            warn!(listener = %plane, reason = what, %remote, held_back, "connection closed at the edge");
        }
    }
}

/// Accepts on `listener` until `stop` changes.
pub async fn accept_loop(
    app: Arc<App>,
    edges: Arc<Edges>,
    (listener, plane): (TcpListener, Plane),
    graceful: &GracefulShutdown,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let table = edges.tables[Edges::index(plane)].clone();
    let proxies = app.config.proxy_protocol_from(plane).clone();
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        // A balancer's connections are counted by caller once its header
        // names them (`Accepted::take_caller`).
        let proxied = proxies.trusts(remote.ip());
        let admitted = if proxied {
            table.admit_unkeyed()
        } else {
            table.admit(remote.ip())
        };
        let ticket = match admitted {
            Ok(ticket) => ticket,
            Err(refusal) => {
                edges.report(&app, plane, refusal.as_str(), remote);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        // The TLS state in force now (DESIGN §9: a reload affects new connections).
        let acceptor = TlsAcceptor::from(app.trust().server_config(plane));
        let (app, edges) = (app.clone(), edges.clone());
        let watcher = graceful.watcher();
        let span = info_span!("conn", %plane, %remote, caller = tracing::field::Empty);
        let connection = Accepted {
            app,
            edges,
            plane,
            remote,
            proxied,
            ticket,
        };
        tokio::spawn(connection.serve(tcp, acceptor, watcher).instrument(span));
    }
}

/// A connection admitted on one listener.
struct Accepted {
    app: Arc<App>,
    edges: Arc<Edges>,
    plane: Plane,
    /// The caller: the TCP peer, or the source its PROXY header names.
    remote: SocketAddr,
    /// The peer is in `proxy_protocol_from` and must send a PROXY header.
    proxied: bool,
    /// Its place in the admission table, given back when it ends.
    ticket: Ticket,
}

impl Accepted {
    /// Handshake, then HTTP until the client leaves or a deadline passes.
    async fn serve(mut self, tcp: TcpStream, acceptor: TlsAcceptor, watcher: Watcher) {
        let limits = self.app.limits();
        let stream =
            match tokio::time::timeout(limits.handshake_timeout(), self.open(tcp, &acceptor)).await
            {
                Ok(Some(s)) => s,
                Ok(None) => return,
                Err(_) => return self.report("handshake"),
            };
        let http1 = stream.get_ref().1.alpn_protocol() != Some(b"h2");
        let activity = Activity::new(http1, limits.header_read_timeout(), limits.idle_timeout());
        let trust = self.app.trust();
        let peer = stream.get_ref().1.peer_certificates();
        let conn = ConnInfo::new(self.plane, self.remote, peer, trust.verifier(self.plane));
        let conn = Arc::new(conn);
        let (app, watch) = (self.app.clone(), activity.clone());
        let service = service_fn(move |req: Request<Incoming>| {
            let in_flight = watch.begin();
            let (app, conn) = (app.clone(), conn.clone());
            async move {
                let resp = dispatch(&app, &conn, req).await;
                drop(in_flight);
                Ok::<_, Infallible>(resp)
            }
        });
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http2()
            .max_concurrent_streams(limits.h2_max_concurrent_streams);
        let io = TokioIo::new(WatchedIo::new(stream, activity.clone()));
        let connection = watcher.watch(builder.serve_connection(io, service).into_owned());
        tokio::select! {
            ended = connection => if let Err(e) = ended {
                debug!(error = %e, "connection ended with an error");
            },
            expiry = activity.expired() => self.report(expiry.as_str()),
        }
    }

    /// The PROXY header if the peer owes one, then the TLS handshake;
    /// `None` once a refusal is logged.
    async fn open(
        &mut self,
        mut tcp: TcpStream,
        acceptor: &TlsAcceptor,
    ) -> Option<TlsStream<TcpStream>> {
        if !self.take_caller(&mut tcp).await {
            return None;
        }
        match acceptor.accept(tcp).await {
            Ok(s) => Some(s),
            Err(e) => {
                debug!(error = %e, "TLS handshake failed");
                None
            }
        }
    }

    /// Learns the caller (DESIGN §9) and counts a balancer's connection
    /// against it; `false` once the connection is refused.
    async fn take_caller(&mut self, tcp: &mut TcpStream) -> bool {
        let caller = match proxy::caller(tcp, self.remote, self.proxied).await {
            Ok(caller) => caller,
            Err(e) => {
                debug!(error = %e, "PROXY protocol refused");
                if e.counted() {
                    self.report("proxy_protocol");
                }
                return false;
            }
        };
        if !self.proxied {
            return true;
        }
        tracing::Span::current().record("caller", tracing::field::display(caller));
        self.remote = caller;
        match self.ticket.key(caller.ip()) {
            Ok(()) => true,
            Err(refusal) => {
                self.report(refusal.as_str());
                false
            }
        }
    }

    fn report(&self, what: &'static str) {
        let _ = &self.ticket;
        self.edges.report(&self.app, self.plane, what, self.remote);
    }
}

/// Sends a request to its plane, in its span; a body declared larger than
/// `max_body_bytes` is refused (413) before anything reads it.
async fn dispatch(app: &Arc<App>, conn: &ConnInfo, req: Request<Incoming>) -> Response<Body> {
    let correlation = Correlation::read(req.headers());
    let span = info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        correlation_id = correlation.for_log()
    );
    let resp = async {
        if let Some(denial) = oversized(&req, app.limits().max_body_bytes) {
            return too_large(app, conn, &correlation, &req, denial).await;
        }
        match conn.plane {
            Plane::Env(env) => gateway::handle(app, conn, env, &correlation, req).await,
            // Boxed: the data plane's future, which hyper moves per
            // request, then does not carry the admin plane's (~3.6 KiB).
            Plane::Admin => Box::pin(admin::handle(app, conn, req)).await,
        }
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| debug!(status = resp.status().as_u16(), "answered"));
    resp
}

/// 910005 when `Content-Length` exceeds `max` bytes.
fn oversized(req: &Request<Incoming>, max: u64) -> Option<Denial> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    (declared > max).then(|| {
        Denial::new(
            Reason::BodyTooLarge,
            format!("the body ({declared} bytes) exceeds {max} bytes"),
        )
    })
}

/// Answers and traces a refused oversized request (the body is never read).
async fn too_large(
    app: &App,
    conn: &ConnInfo,
    correlation: &Correlation,
    req: &Request<Incoming>,
    denial: Denial,
) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(conn.plane, conn, req);
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    trace.refuse(&denial);
    let problem = chain::accepts_problem_json(req.headers());
    let resp = chain::render(&denial, &id, problem, time::OffsetDateTime::now_utc());
    audit::http::finish(&app.audit, &app.metrics, trace, resp, started).await
}
