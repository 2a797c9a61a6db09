//! The environment listeners (sandbox, production): one request is routed
//! to the token endpoint, a service route (health, discovery) or the data
//! API (`pipeline.rs`: hygiene, the control chain in order, the data
//! source), then traced. Every answer carries `X-Correlation-ID`, and the
//! RateLimit headers once the caller's application is known.

mod pipeline;
mod source;
mod transmission;

pub use pipeline::API_PREFIX;
pub use source::Sources;

use crate::app::App;
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
            (_, p) if p.starts_with(API_PREFIX) => Route::Data,
            _ => Route::Unknown,
        }
    }
}

/// Handles one request on an environment listener, and traces it.
pub async fn handle(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    correlation: &Correlation,
    req: Request<RequestBody>,
) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(Plane::Env(env), conn, &req);
    let resp = match Route::of(req.method(), req.uri().path()) {
        Route::Data => pipeline::data_call(app, conn, env, correlation, req, &mut trace).await,
        Route::Token => token(app, conn, env, correlation, req, &mut trace).await,
        Route::Service(s) => service(app, conn, env, s, correlation, &mut trace),
        Route::Unknown => unknown(correlation, &req, &mut trace),
    };
    let caller = audit::http::Caller::known(trace.client_id.is_some());
    audit::http::finish(&app.audit, &app.metrics, (trace, caller), resp, started).await
}

/// `POST /token`: the authorization server; a refusal is traced with its
/// RFC 6749 error code.
async fn token(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    correlation: &Correlation,
    req: Request<RequestBody>,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    name_caller(app, conn, trace);
    let context = oauth::TokenContext::new(&app.oauth, &app.registry, env);
    let (resp, refused) = oauth::token_endpoint(context, conn, req).await;
    if let Some((error, description)) = refused {
        trace.refuse_with(Control::TokenEndpoint, Code::OAuth(error), &description);
    }
    with_correlation(resp, &id)
}

/// Health and discovery.
fn service(
    app: &App,
    conn: &ConnInfo,
    env: Environment,
    which: Service,
    correlation: &Correlation,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    name_caller(app, conn, trace);
    let authority = app.oauth.authority(env);
    let body = match which {
        Service::Health => json!({"statut": "UP", "environnement": env}),
        Service::Metadata => oauth::metadata(authority),
        Service::Jwks => oauth::jwks(authority),
    };
    with_correlation(respond::json(StatusCode::OK, &body), &id)
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
fn name_caller(app: &App, conn: &ConnInfo, trace: &mut TraceEvent) {
    let snapshot = app.registry.snapshot();
    if let Some(application) = certificate::registered(conn, &snapshot) {
        trace.caller(application);
    }
}
