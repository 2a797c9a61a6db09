//! The environment listeners (sandbox, production): health, the OAuth
//! endpoints, and the data API. A data call runs request hygiene, then the
//! control chain in order, then the environment's data source; every
//! answer carries `X-Correlation-ID`, and the RateLimit headers once the
//! caller's application is known.

mod data;
mod transmission;

use crate::app::App;
use crate::audit::{self, TraceEvent};
use crate::chain::{self, Denial, Reason, hygiene};
use crate::domain::Environment;
use crate::oauth;
use crate::quota::Decision;
use crate::respond::{self, Body};
use crate::tls::ConnInfo;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

/// Path prefix of the data API.
pub const API_PREFIX: &str = "/opale/v1/";

/// A refused data call, with what the response headers need.
#[derive(Debug)]
struct Failure {
    denial: Denial,
    correlation: Option<String>,
    quota: Option<Decision>,
}

impl Failure {
    fn new(denial: Denial, correlation: Option<&str>) -> Self {
        Failure {
            denial,
            correlation: correlation.map(str::to_owned),
            quota: None,
        }
    }

    /// A refusal of the chain for the call `correlation`.
    fn refused(r: chain::Refused, correlation: &str) -> Self {
        Failure {
            denial: r.denial,
            correlation: Some(correlation.to_owned()),
            quota: r.quota,
        }
    }

    /// A refusal after the chain admitted the call.
    fn admitted(denial: Denial, correlation: &str, quota: Decision) -> Self {
        Failure {
            denial,
            correlation: Some(correlation.to_owned()),
            quota: Some(quota),
        }
    }
}

/// Handles one request on an environment listener, and traces it.
pub async fn handle(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(env.as_str(), conn, &req);
    let resp = respond_to(app, conn, env, req, &mut trace).await;
    audit::http::finish(app, conn, trace, resp, started).await
}

async fn respond_to(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: Request<Incoming>,
    trace: &mut TraceEvent,
) -> Response<Body> {
    if req.uri().path() == "/token" {
        let id = req_correlation(&req);
        trace.correlation_id = Some(id.clone());
        let (resp, refused) = oauth::token_endpoint(
            oauth::TokenContext::new(&app.oauth, &app.registry, env),
            conn,
            req,
        )
        .await;
        if let Some((error, description)) = refused {
            trace.decision = "denied".into();
            trace.control = Some("token_endpoint".into());
            trace.code = Some(error.into());
            trace.detail = Some(description);
        }
        return with_correlation(resp, id);
    }
    if let Some(resp) = service_route(app, env, &req) {
        let id = req_correlation(&req);
        trace.correlation_id = Some(id.clone());
        return with_correlation(resp, id);
    }
    let problem = chain::accepts_problem_json(req.headers());
    match api(app, conn, env, req, trace).await {
        Ok(resp) => resp,
        Err(f) => {
            // `api` keeps the caller's id whenever it is a valid UUID.
            let id = f
                .correlation
                .unwrap_or_else(crate::domain::fresh_correlation_id);
            trace.correlation_id = Some(id.clone());
            audit::http::deny(trace, &f.denial);
            let mut resp = chain::render(&f.denial, &id, problem, OffsetDateTime::now_utc());
            if let Some(q) = &f.quota {
                chain::rate_limit_headers(resp.headers_mut(), q);
            }
            resp
        }
    }
}

/// Health and discovery routes (no chain).
fn service_route(app: &App, env: Environment, req: &Request<Incoming>) -> Option<Response<Body>> {
    let authority = app.oauth.authority(env);
    let body = match (req.method(), req.uri().path()) {
        (&Method::GET, "/opale/v1/etatSante") => json!({"statut": "UP", "environnement": env}),
        (&Method::GET, "/.well-known/oauth-authorization-server") => oauth::metadata(authority),
        (&Method::GET, "/.well-known/jwks.json") => oauth::jwks(authority),
        _ => return None,
    };
    Some(respond::json(StatusCode::OK, &body))
}

/// The caller's correlation id if it is a UUID (echoed as sent), else a
/// fresh one.
fn req_correlation(req: &Request<Incoming>) -> String {
    hygiene::correlation_id(req.headers())
        .map(|_| hygiene::raw_correlation_id(req.headers()))
        .unwrap_or_else(|_| crate::domain::fresh_correlation_id())
}

fn with_correlation(mut resp: Response<Body>, id: String) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(hygiene::CORRELATION_HEADER, v);
    }
    resp
}

/// `/opale/v1/entreprises/{siren}/{dataset}`: hygiene, then GET or POST.
async fn api(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: Request<Incoming>,
    trace: &mut TraceEvent,
) -> Result<Response<Body>, Failure> {
    let path = req.uri().path().to_owned();
    let rest = path.strip_prefix(API_PREFIX).ok_or_else(|| {
        let valid = hygiene::correlation_id(req.headers()).is_ok();
        let id = valid.then(|| hygiene::raw_correlation_id(req.headers()));
        Failure::new(
            Denial::new(Reason::NoRoute, format!("no route for {path}")),
            id.as_deref(),
        )
    })?;
    hygiene::correlation_id(req.headers()).map_err(|d| Failure::new(d, None))?;
    let correlation = hygiene::raw_correlation_id(req.headers());
    trace.correlation_id = Some(correlation.clone());
    let cid = Some(correlation.as_str());
    let segments: Vec<&str> = rest.split('/').collect();
    let ["entreprises", siren, dataset] = segments.as_slice() else {
        let d = Denial::new(Reason::NoRoute, format!("no route for {path}"));
        return Err(Failure::new(d, cid));
    };
    let dataset = crate::domain::Dataset::parse(dataset).ok_or_else(|| {
        let d = Denial::new(Reason::NoRoute, format!("no dataset {dataset:?}"));
        Failure::new(d, cid)
    })?;
    trace.dataset = Some(dataset.to_string());
    let siren = hygiene::siren(siren).map_err(|d| Failure::new(d, cid))?;
    trace.siren = Some(siren.to_string());
    if let Some(m) = app.availability.maintenance(env) {
        let detail = m
            .message
            .clone()
            .unwrap_or_else(|| format!("the {env} environment is under maintenance"));
        let mut d = Denial::new(Reason::Unavailable, detail);
        d.retry_after = Some(m.retry_after);
        return Err(Failure::new(d, cid));
    }
    let resp = match *req.method() {
        Method::GET => {
            data::get(app, conn, env, &req, (siren, dataset), &correlation, trace).await?
        }
        Method::POST if dataset == crate::domain::Dataset::Creances => {
            transmission::post(app, conn, env, req, siren, &correlation, trace).await?
        }
        _ => {
            let d = Denial::new(
                Reason::NoRoute,
                format!("{} is not allowed here", req.method()),
            );
            return Err(Failure::new(d, cid));
        }
    };
    Ok(with_correlation(resp, correlation))
}
