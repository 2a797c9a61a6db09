//! One listener's accept loop and one connection's life: admission
//! (connection caps), the PROXY header of a trusted balancer and the TLS
//! handshake (within the handshake timeout), the
//! per-connection facts, one hyper connection (HTTP/1.1 or h2) watched for
//! the header-read and idle deadlines, and the dispatch of each request to
//! its plane. Refusals and timeouts are counted on `/metrics` and logged at
//! most once a second per listener.

use super::Server;
use super::admission::{Admission, LogGate, Ticket};
use super::balance::Balance;
use super::body::RequestBody;
use super::proxy;
use super::watchdog::{Activity, Deadlines, Expiry, Sending, WatchedIo};
use crate::audit;
use crate::audit::Auditor;
use crate::audit::unidentified::this_minute;
use crate::chain::hygiene::Correlation;
use crate::chain::{self, Denial, Reason};
use crate::config::LimitsSettings;
use crate::domain::{Environment, Plane};
use crate::metrics::Metrics;
use crate::reload::{Live, Trust};
use crate::respond::{Body, CloseConnection};
use crate::tls::ConnInfo;
use crate::{admin, gateway};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_LENGTH, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::{Builder, Connection};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls_pki_types::CertificateDer;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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
    fn report(&self, metrics: &Metrics, plane: Plane, what: &'static str, remote: SocketAddr) {
        metrics.connection_closed(plane, what);
        if let Some(held_back) = self.gates[Self::index(plane)].pass() {
            warn!(listener = %plane, reason = what, %remote, held_back, "connection closed at the edge");
        }
    }
}

/// Accepts on `listener` until `stop` changes, when `balance` (this
/// worker's share of the connections) says it is this worker's turn.
pub async fn accept_loop(
    server: Arc<Server>,
    (listener, plane): (TcpListener, Plane),
    balance: Option<Balance>,
    graceful: &GracefulShutdown,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let edges = &server.edges;
    let table = edges.tables[Edges::index(plane)].clone();
    let proxies = server.proxies(plane);
    loop {
        let next = async {
            if let Some(balance) = &balance {
                balance.turn().await;
            }
            listener.accept().await
        };
        let (tcp, remote) = tokio::select! {
            accepted = next => match accepted {
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
                edges.report(&server.metrics, plane, refusal.as_str(), remote);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        // The TLS state in force now (docs/contract.md §9: a reload affects new connections).
        let acceptor = TlsAcceptor::from(server.live.trust().server_config(plane));
        let watcher = graceful.watcher();
        let span = info_span!("conn", %plane, %remote, caller = tracing::field::Empty);
        let connection = Accepted {
            server: server.clone(),
            plane,
            remote,
            proxied,
            ticket,
        };
        let stopping = (watcher, stop.clone());
        let held = balance.as_ref().map(Balance::hold);
        let serving = connection.serve(tcp, acceptor, stopping);
        tokio::spawn(
            async move {
                serving.await;
                drop(held);
            }
            .instrument(span),
        );
    }
}

/// A connection admitted on one listener.
struct Accepted {
    server: Arc<Server>,
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
    async fn serve(
        mut self,
        tcp: TcpStream,
        acceptor: TlsAcceptor,
        (watcher, stop): (Watcher, tokio::sync::watch::Receiver<bool>),
    ) {
        let limits = self.server.live.limits();
        let stream =
            match tokio::time::timeout(limits.handshake_timeout(), self.open(tcp, &acceptor)).await
            {
                Ok(Some(s)) => s,
                Ok(None) => return,
                Err(_) => return self.report("handshake"),
            };
        let http1 = stream.get_ref().1.alpn_protocol() != Some(b"h2");
        let activity = Activity::new(http1, deadlines(&limits));
        let judge = Judge::new(&self.server.live, self.plane, self.remote, &stream);
        let builder = builder(&limits, judge.verified());
        let service = Service {
            server: self.server.clone(),
            judge: Arc::new(judge),
            activity: activity.clone(),
        };
        let io = TokioIo::new(WatchedIo::new(stream, activity.clone()));
        let connection = builder.serve_connection(io, service).into_owned();
        if let Some(expiry) = run(connection, &activity, stop).await {
            self.report(expiry.as_str());
        }
        drop(watcher);
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

    /// Learns the caller (docs/contract.md §9) and counts a balancer's connection
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
        let server = &self.server;
        server
            .edges
            .report(&server.metrics, self.plane, what, self.remote);
    }
}

/// Drives `connection` until it ends; asks it to close gracefully at its
/// age, when retired or when the server stops; drops it when a deadline
/// passes (returned).
async fn run(
    connection: HttpConnection,
    activity: &Activity,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<Expiry> {
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    debug!(error = %e, "connection ended with an error");
                }
                return None;
            }
            expiry = activity.expired() => return Some(expiry),
            _ = activity.closing(), if !closing => {
                closing = true;
                // HTTP/1: `Connection: close` on the next response (see
                // `Service`); closing an idle HTTP/1 connection now would
                // race a request the client is sending.
                if !activity.http1() {
                    connection.as_mut().graceful_shutdown();
                }
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One hyper connection (HTTP/1.1 or h2) over the watched TLS stream.
type HttpConnection =
    Connection<'static, TokioIo<WatchedIo<TlsStream<TcpStream>>>, Service, TokioExecutor>;

/// The deadlines of a connection accepted under `limits`.
fn deadlines(limits: &LimitsSettings) -> Deadlines {
    Deadlines {
        header: limits.header_read_timeout(),
        idle: limits.idle_timeout(),
        send: limits.send_timeout(),
        age: limits.max_connection_age(),
        grace: CLOSE_GRACE,
    }
}

/// How long a connection asked to close may take to finish what it holds.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// The HTTP/2 receive window of a stream, and of the whole connection, on a
/// connection without a verified client certificate: what one such
/// connection can make the server buffer.
const UNAUTHENTICATED_WINDOW: (u32, u32) = (65_535, 131_072);

/// The connection builder: without a verified client certificate, few
/// HTTP/2 streams and small windows, so that memory per connection stays
/// small (contract §8).
fn builder(limits: &LimitsSettings, verified: bool) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    let mut h2 = builder.http2();
    if verified {
        h2.max_concurrent_streams(limits.h2_max_concurrent_streams);
    } else {
        let (stream, connection) = UNAUTHENTICATED_WINDOW;
        h2.max_concurrent_streams(limits.unauthenticated_h2_streams)
            .initial_stream_window_size(stream)
            .initial_connection_window_size(connection)
            .max_send_buf_size(stream as usize);
    }
    builder
}

/// The per-connection facts, judged again on the first request after a
/// reload or a CRL change swapped the TLS state (contract §8: a revocation
/// re-judges open connections at once).
struct Judge {
    plane: Plane,
    /// The peer chain of the handshake (empty without a certificate).
    chain: Vec<CertificateDer<'static>>,
    judged: Mutex<(Arc<Trust>, Arc<ConnInfo>)>,
}

impl Judge {
    fn new(live: &Live, plane: Plane, remote: SocketAddr, stream: &TlsStream<TcpStream>) -> Self {
        let trust = live.trust();
        let peer = stream.get_ref().1.peer_certificates();
        let conn = ConnInfo::new(plane, remote, peer, trust.verifier(plane));
        let chain = peer
            .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
            .unwrap_or_default();
        Judge {
            plane,
            chain,
            judged: Mutex::new((trust, Arc::new(conn))),
        }
    }

    fn verified(&self) -> bool {
        self.lock().1.verified()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Arc<Trust>, Arc<ConnInfo>)> {
        self.judged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The facts under the TLS state in force, and whether the certificate
    /// has just lost its verdict (the connection must then close).
    fn facts(&self, live: &Live) -> (Arc<ConnInfo>, bool) {
        let mut judged = self.lock();
        if self.chain.is_empty() || live.still_trusts(&judged.0) {
            return (judged.1.clone(), false);
        }
        let trust = live.trust();
        let again = judged
            .1
            .judged_again(&self.chain, trust.verifier(self.plane));
        let lost = judged.1.verified() && !again.verified();
        *judged = (trust, Arc::new(again));
        (judged.1.clone(), lost)
    }
}

/// The service of one connection: each request gets the connection's
/// facts, a body with a deadline, and a response body the watchdog sees.
#[derive(Clone)]
struct Service {
    server: Arc<Server>,
    judge: Arc<Judge>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Sending<Body>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let this = self.clone();
        Box::pin(async move {
            let (conn, lost) = this.judge.facts(&this.server.live);
            if lost {
                this.activity.retire();
            }
            let limits = this.server.live.limits();
            // HTTP/1 only: an HTTP/2 stream answered early is reset with
            // NO_ERROR, and its client keeps the answer (RFC 9113 §8.1).
            let linger = req.version() < hyper::Version::HTTP_2;
            let req = req.map(|b| {
                RequestBody::new(b, limits.body_read_timeout(), this.activity.clone())
                    .lingering(linger)
            });
            let mut resp = dispatch(&this.server, &conn, &limits, req).await;
            // Draining (docs/cluster.md "Rolling restart"): the connection
            // closes after this response, so that the client reconnects
            // through the balancer to another node. Not before a response:
            // an HTTP/2 GOAWAY sent to a connection that has not asked
            // anything yet races the client's first request.
            if resp.extensions().get::<CloseConnection>().is_some()
                || this.server.drain.is_draining()
            {
                this.activity.retire();
            }
            if this.activity.is_closing() && this.activity.http1() {
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(resp.map(|body| in_flight.answered(body)))
        })
    }
}

/// Sends a request to its plane, in its span; a body declared larger than
/// `max_body_bytes` (or `unauthenticated_max_body_bytes` without a verified
/// certificate) is refused (413) before anything reads it.
async fn dispatch(
    server: &Server,
    conn: &ConnInfo,
    limits: &LimitsSettings,
    req: Request<RequestBody>,
) -> Response<Body> {
    let correlation = Correlation::read(req.headers());
    let span = info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        correlation_id = correlation.for_log()
    );
    let resp = async {
        let max = limits.body_cap(conn.verified());
        if let Some(denial) = oversized(&req, max).or_else(|| flooding(&server.audit, conn)) {
            return refuse(server, conn, &correlation, &req, denial).await;
        }
        match conn.plane {
            Plane::Env(env) => gateway::handle(&server.gateway, conn, env, &correlation, req).await,
            // Boxed: the data plane's future, which hyper moves per
            // request, then does not carry the admin plane's (~3.6 KiB).
            Plane::Admin => Box::pin(admin::handle(&server.admin, conn, req)).await,
        }
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| debug!(status = resp.status().as_u16(), "answered"));
    resp
}

/// 910007 for a caller without a verified certificate whose address was
/// refused more than `unauthenticated_per_minute` times this minute.
fn flooding(audit: &Auditor, conn: &ConnInfo) -> Option<Denial> {
    let minute = this_minute();
    if conn.verified() || !audit.unidentified.over_limit(conn.remote.ip(), minute) {
        return None;
    }
    let next = (minute + 1) * 60 - time::OffsetDateTime::now_utc().unix_timestamp();
    let mut denial = Denial::new(
        Reason::TooManyUnidentified,
        "too many refused requests from this address this minute",
    );
    denial.retry_after = Some(next.clamp(1, 60) as u64);
    Some(denial)
}

/// 910005 when `Content-Length` exceeds `max` bytes.
fn oversized(req: &Request<RequestBody>, max: u64) -> Option<Denial> {
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

/// Answers and traces a request refused before its plane sees it (the body
/// is never read).
async fn refuse(
    server: &Server,
    conn: &ConnInfo,
    correlation: &Correlation,
    req: &Request<RequestBody>,
    denial: Denial,
) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(conn.plane, conn, req);
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    trace.refuse(&denial);
    let problem = chain::accepts_problem_json(req.headers());
    let resp = chain::render(&denial, &id, problem, time::OffsetDateTime::now_utc());
    let caller = audit::http::Caller::Unidentified;
    audit::http::finish(
        &server.audit,
        &server.metrics,
        (trace, caller),
        resp,
        started,
    )
    .await
}
