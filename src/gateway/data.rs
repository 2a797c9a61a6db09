//! `GET /opale/v1/entreprises/{siren}/{dataset}?annee=YYYY`: the chain,
//! then the sandbox generator or the production upstream.

use super::Failure;
use crate::app::App;
use crate::audit::TraceEvent;
use crate::chain::{self, Call, Denial, Reason, hygiene};
use crate::data::sandbox::{self, SandboxAnswer};
use crate::data::upstream::UpstreamError;
use crate::domain::{Dataset, Environment, Siren};
use crate::respond::{self, Body};
use crate::tls::ConnInfo;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use time::OffsetDateTime;

/// Runs the chain and answers from the environment's data source.
pub async fn get(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: &Request<Incoming>,
    (siren, dataset): (Siren, Dataset),
    correlation: &str,
    trace: &mut TraceEvent,
) -> Result<Response<Body>, Failure> {
    let now = OffsetDateTime::now_utc();
    let year = hygiene::annee(req.uri().query(), now.year() - 1)
        .map_err(|d| Failure::new(d, Some(correlation)))?;
    trace.year = Some(year);
    let call = Call {
        conn,
        env,
        headers: req.headers(),
        query: req.uri().query(),
        scope: dataset.scope(),
        year,
    };
    let snapshot = app.registry.snapshot();
    let admitted =
        chain::run(app, &snapshot, &call, now).map_err(|r| Failure::refused(r, correlation))?;
    let quota = admitted.quota;
    let fail = |denial| Failure::admitted(denial, correlation, quota);
    let mut resp = match env {
        Environment::Sandbox => from_sandbox(app, env, &siren, dataset, year).map_err(fail)?,
        Environment::Production => app
            .upstream
            .fetch(&siren, dataset, year, correlation)
            .await
            .map_err(|e| fail(upstream_denial(e)))?,
    };
    chain::rate_limit_headers(resp.headers_mut(), &quota);
    Ok(resp)
}

fn from_sandbox(
    app: &App,
    env: Environment,
    siren: &Siren,
    dataset: Dataset,
    year: i32,
) -> Result<Response<Body>, Denial> {
    match sandbox::generate(siren, dataset, year) {
        SandboxAnswer::Data(bytes) => {
            let body = if dataset == Dataset::Creances {
                app.transmissions.merge_into(env, siren, year, bytes)
            } else {
                bytes
            };
            Ok(respond::bytes(StatusCode::OK, "application/json", body))
        }
        other => {
            let (reason, what) = match other {
                SandboxAnswer::UnknownCompany => (Reason::UnknownCompany, "unknown company"),
                SandboxAnswer::NoDataForYear => (Reason::NoDataForYear, "no data for that year"),
                SandboxAnswer::UpstreamTimeout => (Reason::UpstreamTimeout, "simulated timeout"),
                _ => (Reason::NonDiffusible, "not diffusible"),
            };
            let message = other.message().unwrap_or(what);
            Err(Denial::new(
                reason,
                format!("{message} (SIREN {siren}, {dataset}, {year})"),
            ))
        }
    }
}

fn upstream_denial(e: UpstreamError) -> Denial {
    match e {
        UpstreamError::Timeout(_) => Denial::new(Reason::UpstreamTimeout, e.to_string()),
        other => {
            tracing::warn!(error = %other, "upstream failure");
            Denial::new(Reason::UpstreamFailure, "the data provider failed")
        }
    }
}
