//! One data call, read top to bottom in the contract's order (docs/contract.md §2):
//!
//! hygiene (X-Correlation-ID) → route → hygiene (SIREN) → availability →
//! hygiene (annee) → certificate → ip → token → identity → rights → quota →
//! data source → abuse detector (`crate::abuse`, once the outcome is
//! known) → response (→ trace, in `gateway::handle`).
//!
//! A transmission (POST creances) authenticates (certificate … identity)
//! before its body is read, then judges the body's `annee` (rights, quota).
//! Each step is a function of its own module; this file only orders them.

use super::Gateway;
use super::source::{self, Query, Reader, Sources};
use super::transmission;
use crate::audit::TraceEvent;
use crate::chain::{self, Context, Credentials, Denial, Outcome, Reason, hygiene};
use crate::domain::{Dataset, Environment, Scope};
use crate::respond::Body;
use crate::server::RequestBody;
use crate::tls::ConnInfo;
use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::{Method, Request, Response};

/// Path prefix of the data API.
pub const API_PREFIX: &str = "/opale/v1/";

/// What a data call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// `GET …/{dataset}?annee=`.
    Read,
    /// `POST …/creances`.
    Transmit,
}

/// Runs a data call on `env` and answers it; what was learnt goes into
/// `trace` (the caller, the SIREN, dataset and year, the refusal).
pub async fn data_call(
    gateway: &Gateway,
    conn: &ConnInfo,
    env: Environment,
    correlation: &hygiene::Correlation,
    req: Request<RequestBody>,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let snapshot = gateway.registry.snapshot();
    let cx = gateway.chain_context(env, &snapshot);
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    let problem = chain::accepts_problem_json(req.headers());
    let mut out = Outcome::default();
    let result = steps(
        &cx,
        gateway.sources(),
        conn,
        correlation,
        req,
        &mut out,
        trace,
    )
    .await;
    // A call refused before step 1 (hygiene, route, availability) is still
    // shown to its partner: the trace names the certificate's application.
    let caller = out
        .caller
        .or_else(|| chain::certificate::registered(conn, &snapshot));
    let found = caller.and_then(|application| {
        trace.caller(application);
        let ip = conn.remote.ip().to_canonical();
        let denial = result.as_ref().err();
        gateway.abuse.observe(application, ip, denial, cx.now)
    });
    // The detector's Redis round trip (a denial counted across nodes) runs
    // alongside the quota's, so a call never waits for both in turn.
    let act = async {
        if let Some(found) = found {
            act_on(gateway, found).await;
        }
    };
    let ((), quota) = tokio::join!(act, out.quota_state(cx.quotas, env));
    let mut resp = match result {
        Ok(resp) => resp,
        Err(denial) => {
            trace.refuse(&denial);
            chain::render(&denial, &id, problem, cx.now)
        }
    };
    if let Some(quota) = quota {
        chain::rate_limit_headers(resp.headers_mut(), &quota);
    }
    with_correlation(resp, &id)
}

/// How long the call that raised a security event waits for it to be
/// stored and traced (and the application suspended, if configured).
/// Normally a few milliseconds, so that the next call already meets the
/// suspension; with the store stalled, the call goes on after this and the
/// event is stored when the store answers (docs/contract.md §10: a slow
/// database slows only the calls that need it).
const ACT_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Acts on what the abuse detector found, on a task of its own that the
/// call waits for [`ACT_WAIT`] at most.
async fn act_on(gateway: &Gateway, found: crate::abuse::Pending) {
    let (abuse, audit, metrics) = (
        gateway.abuse.clone(),
        gateway.audit.clone(),
        gateway.metrics.clone(),
    );
    let acting = tokio::spawn(async move { abuse.act(found, &audit, &metrics).await });
    if tokio::time::timeout(ACT_WAIT, acting).await.is_err() {
        tracing::warn!(
            wait_ms = ACT_WAIT.as_millis() as u64,
            "security event not stored yet; the call goes on"
        );
    }
}

/// The steps, in order; the first refusal ends the call.
async fn steps<'s>(
    cx: &Context<'s>,
    sources: Sources<'_>,
    conn: &ConnInfo,
    correlation: &hygiene::Correlation,
    req: Request<RequestBody>,
    out: &mut Outcome<'s>,
    trace: &mut TraceEvent,
) -> Result<Response<Body>, Denial> {
    let id = correlation.require()?;
    let (parts, body) = req.into_parts();
    let (siren, dataset, operation) = route(&parts)?;
    trace.dataset = Some(dataset);
    let siren = hygiene::siren(siren)?;
    trace.siren = Some(siren);
    chain::availability::check(cx)?;
    let presented = Credentials {
        conn,
        headers: &parts.headers,
        query: parts.uri.query(),
    };
    match operation {
        Operation::Read => {
            let year = hygiene::annee(presented.query, cx.now.year() - 1)?;
            trace.year = Some(year);
            let who = chain::authenticate(cx, &presented, out)?;
            chain::authorize(cx, &who, (dataset.scope(), year), out).await?;
            let reader = Reader {
                partner: &who.application.partner_id,
                snapshot: cx.snapshot,
            };
            let query = Query {
                siren: &siren,
                dataset,
                year,
                reader,
            };
            source::read(sources, cx.env, query, id).await
        }
        Operation::Transmit => {
            let who = chain::authenticate(cx, &presented, out)?;
            let (claims, bytes) = transmission::read(body).await?;
            trace.year = Some(claims.annee);
            chain::authorize(cx, &who, (Scope::CreancesTransmission, claims.annee), out).await?;
            let caller = (&siren, &who.application.client_id);
            let headers = &parts.headers;
            let body = (claims, bytes);
            transmission::store(sources.transmissions, cx.env, caller, headers, body, cx.now).await
        }
    }
}

/// Route: `/opale/v1/entreprises/{siren}/{dataset}` with GET, or POST on
/// `creances`; anything else is 910604.
fn route(parts: &Parts) -> Result<(&str, Dataset, Operation), Denial> {
    let path = parts.uri.path();
    let no_route = || Denial::new(Reason::NoRoute, format!("no route for {path}"));
    let rest = path.strip_prefix(API_PREFIX).ok_or_else(no_route)?;
    let mut segments = rest.split('/');
    let (Some("entreprises"), Some(siren), Some(name), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(no_route());
    };
    let dataset = Dataset::parse(name)
        .ok_or_else(|| Denial::new(Reason::NoRoute, format!("no dataset {name:?}")))?;
    let operation = match parts.method {
        Method::GET => Operation::Read,
        Method::POST if dataset == Dataset::Creances => Operation::Transmit,
        ref other => {
            let detail = format!("{other} is not allowed here");
            return Err(Denial::new(Reason::NoRoute, detail));
        }
    };
    Ok((siren, dataset, operation))
}

/// Sets `X-Correlation-ID` on `resp`.
pub fn with_correlation(mut resp: Response<Body>, id: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(hygiene::CORRELATION_HEADER, v);
    }
    resp
}
