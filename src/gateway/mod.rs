//! The environment listeners (sandbox, production): one request is routed
//! to the token endpoint, a service route (health, discovery) or the data
//! API (`pipeline.rs`: hygiene, the control chain in order, the data
//! source), then traced. Every answer carries `X-Correlation-ID`, and the
//! RateLimit headers once the caller's application is known.

mod est;
mod pipeline;
mod source;
mod transmission;

pub use pipeline::API_PREFIX;
pub use source::Sources;

use crate::audit::{self, Code, TraceEvent};
use crate::chain::{self, Control, Denial, Reason, certificate, hygiene::Correlation};
use crate::domain::{Environment, Plane};
use crate::oauth;
use crate::respond::{self, Body};
use crate::server::RequestBody;
use crate::tls::ConnInfo;
use hyper::{Method, Request, Response, StatusCode};
use pipeline::with_correlation;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

/// Where a request on an environment listener goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `/token` (the endpoint judges the method).
    Token,
    /// `GET` health and discovery routes, no chain.
    Service(Service),
    /// Under `/opale/v1/`: the data pipeline.
    Data,
    /// `GET /status…`: the public status page and documents (§11).
    Status(crate::status::public::Public),
    /// `/.well-known/est/…`: certificate renewal by machine (§12).
    Est(crate::est::Operation),
    /// Anything else: 910604.
    Unknown,
}

/// The routes answered without the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// `GET /opale/v1/etatSante`.
    Health,
    /// `GET /.well-known/oauth-authorization-server` (RFC 8414).
    Metadata,
    /// `GET /.well-known/jwks.json`.
    Jwks,
}

impl Route {
    fn of(method: &Method, path: &str) -> Route {
        match (method, path) {
            (_, "/token") => Route::Token,
            (&Method::GET, "/opale/v1/etatSante") => Route::Service(Service::Health),
            (&Method::GET, "/.well-known/oauth-authorization-server") => {
                Route::Service(Service::Metadata)
            }
            (&Method::GET, "/.well-known/jwks.json") => Route::Service(Service::Jwks),
            (m, p) if crate::est::Operation::of(m, p).is_some() => {
                crate::est::Operation::of(m, p).map_or(Route::Unknown, Route::Est)
            }
            (&Method::GET, p) if crate::status::public::Public::of(p).is_some() => {
                crate::status::public::Public::of(p).map_or(Route::Unknown, Route::Status)
            }
            (_, p) if p.starts_with(API_PREFIX) => Route::Data,
            _ => Route::Unknown,
        }
    }
}

/// What the environment listeners run on (built by `crate::app::App::planes`).
pub struct Gateway {
    /// Partners, applications, certificates (read as a snapshot per call).
    pub(crate) registry: Arc<crate::registry::Registry>,
    /// Token issuers of both environments and the deny-list.
    pub(crate) oauth: Arc<oauth::Oauth>,
    /// Per-application quota logs.
    pub(crate) quotas: Arc<crate::quota::Quotas>,
    /// Maintenance and the staleness cut-off per environment.
    pub(crate) availability: Arc<crate::availability::Availability>,
    /// The production data provider.
    pub(crate) upstream: Arc<crate::data::upstream::Upstream>,
    /// Claims transmitted by partners.
    pub(crate) transmissions: Arc<crate::data::transmitted::Transmissions>,
    /// The abnormal-usage detector.
    pub(crate) abuse: Arc<crate::abuse::Abuse>,
    /// The trail every call is appended to.
    pub(crate) audit: Arc<crate::audit::Auditor>,
    /// Series counted per call.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Draining before a stop: the health route then answers 503.
    pub(crate) drain: Arc<crate::server::Drain>,
    /// The status page's state, and where data calls are counted per minute.
    pub(crate) status: crate::status::public::Sources,
    /// The CAs and limit of certificate renewal by EST.
    pub(crate) est: crate::est::Est,
}

impl Gateway {
    /// What the control chain may read for one request on `env`.
    pub fn chain_context<'s>(
        &'s self,
        env: Environment,
        snapshot: &'s crate::registry::Snapshot,
    ) -> chain::Context<'s> {
        chain::Context {
            env,
            snapshot,
            authority: self.oauth.authority(env),
            denylist: &self.oauth.denylist,
            quotas: &self.quotas,
            availability: &self.availability,
            now: OffsetDateTime::now_utc(),
        }
    }

    /// The data sources of admitted reads and transmissions.
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            upstream: &self.upstream,
            transmissions: &self.transmissions,
        }
    }
}

/// Handles one request on an environment listener, and traces it.
pub async fn handle(
    gateway: &Arc<Gateway>,
    conn: &ConnInfo,
    env: Environment,
    correlation: &Correlation,
    req: Request<RequestBody>,
) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(Plane::Env(env), conn, &req);
    let route = Route::of(req.method(), req.uri().path());
    let resp = match route {
        Route::Data => pipeline::data_call(gateway, conn, env, correlation, req, &mut trace).await,
        Route::Token => token(gateway, conn, env, correlation, req, &mut trace).await,
        Route::Service(s) => service(gateway, conn, env, s, correlation, &mut trace),
        Route::Status(page) => {
            public_status(gateway, env, page, correlation, req, &mut trace).await
        }
        Route::Est(op) => est::answer(gateway, conn, env, op, correlation, req, &mut trace).await,
        Route::Unknown => unknown(correlation, &req, &mut trace),
    };
    let closed = trace.code == Some(Code::Catalogue(Reason::Unavailable));
    let caller = audit::http::Caller::known(trace.client_id.is_some());
    let resp = audit::http::finish(
        &gateway.audit,
        &gateway.metrics,
        (trace, caller),
        resp,
        started,
    )
    .await;
    if route == Route::Data {
        // A platform fault: a 5xx other than a closed environment's 910600.
        let fault = resp.status().is_server_error() && !closed;
        gateway.status.status.meter.call(env, fault);
    }
    resp
}

/// `GET /status…` (§11): public, no certificate, no chain; traced like
/// every request.
async fn public_status(
    gateway: &Gateway,
    env: Environment,
    page: crate::status::public::Public,
    correlation: &Correlation,
    req: Request<RequestBody>,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    let query = req.uri().query().unwrap_or("").to_owned();
    let resp = crate::status::public::answer(&gateway.status, env, page, &query).await;
    with_correlation(resp, &id)
}

/// `POST /token`: the authorization server; a refusal is traced with its
/// RFC 6749 error code. A node past the staleness cut-off issues no token
/// (docs/contract.md §10), as it serves no data call.
async fn token(
    gateway: &Arc<Gateway>,
    conn: &ConnInfo,
    env: Environment,
    correlation: &Correlation,
    req: Request<RequestBody>,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    name_caller(gateway, conn, trace);
    let stale = gateway.availability.is_stale();
    let context = oauth::TokenContext::new(&gateway.oauth, &gateway.registry, env, stale);
    let (resp, refused) = oauth::token_endpoint(context, conn, req).await;
    if let Some((error, description)) = refused {
        trace.refuse_with(Control::TokenEndpoint, Code::OAuth(error), &description);
    }
    with_correlation(resp, &id)
}

/// Health and discovery.
fn service(
    gateway: &Gateway,
    conn: &ConnInfo,
    env: Environment,
    which: Service,
    correlation: &Correlation,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    name_caller(gateway, conn, trace);
    let authority = gateway.oauth.authority(env);
    let (status, body) = match which {
        // A draining node tells the balancer's health check to take it
        // out, while it still serves (docs/cluster.md "Rolling restart").
        Service::Health if gateway.drain.is_draining() => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"statut": "DRAINING", "environnement": env}),
        ),
        Service::Health => (
            StatusCode::OK,
            json!({"statut": "UP", "environnement": env}),
        ),
        Service::Metadata => (StatusCode::OK, oauth::metadata(authority)),
        Service::Jwks => (StatusCode::OK, oauth::jwks(authority, oauth::unix_now())),
    };
    with_correlation(respond::json(status, &body), &id)
}

/// 910604 for a path outside the API.
fn unknown(
    correlation: &Correlation,
    req: &Request<RequestBody>,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    let denial = Denial::new(
        Reason::NoRoute,
        format!("no route for {}", req.uri().path()),
    );
    trace.refuse(&denial);
    let problem = chain::accepts_problem_json(req.headers());
    chain::render(&denial, &id, problem, OffsetDateTime::now_utc())
}

/// Outside the data pipeline (which learns the caller from step 1), the
/// trace names the application the presented certificate is registered to.
fn name_caller(gateway: &Gateway, conn: &ConnInfo, trace: &mut TraceEvent) {
    let snapshot = gateway.registry.snapshot();
    if let Some(application) = certificate::registered(conn, &snapshot) {
        trace.caller(application);
    }
}
