//! The environment listeners (sandbox, production): the health route, the
//! token endpoint and the data API. A data call runs request hygiene, then
//! the control chain in order; the first control that refuses answers.

use crate::app::App;
use crate::chain::{self, Denial, Reason, hygiene};
use crate::domain::Environment;
use crate::oauth;
use crate::respond::{self, Body};
use crate::tls::ConnInfo;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

/// Path prefix of the data API.
pub const API_PREFIX: &str = "/opale/v1/";

/// Datasets of DESIGN §4, as they appear in paths.
pub const DATASETS: [&str; 7] = [
    "declarations",
    "comptes-bancaires",
    "creances",
    "paiements",
    "remboursements",
    "obligations-fiscales",
    "habilitations",
];

/// Handles one request on an environment listener.
pub async fn handle(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: Request<Incoming>,
) -> Response<Body> {
    let authority = app.oauth.authority(env);
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/opale/v1/etatSante") => {
            return respond::json(
                StatusCode::OK,
                &json!({"statut": "UP", "environnement": env}),
            );
        }
        (_, "/token") => return oauth::token_endpoint(app, conn, env, req).await,
        (&Method::GET, "/.well-known/oauth-authorization-server") => {
            return respond::json(StatusCode::OK, &oauth::metadata(authority));
        }
        (&Method::GET, "/.well-known/jwks.json") => {
            return respond::json(StatusCode::OK, &oauth::jwks(authority));
        }
        _ => {}
    }
    let path = req.uri().path();
    let problem = chain::accepts_problem_json(req.headers());
    let outcome = if let Some(rest) = path.strip_prefix(API_PREFIX) {
        data_call(app, conn, env, &req, rest)
    } else {
        Err((
            Denial::new(Reason::NoRoute, format!("no route for {path}")),
            None,
        ))
    };
    match outcome {
        Ok(resp) => resp,
        Err((denial, correlation)) => {
            let id = correlation.unwrap_or_else(|| crate::domain::random_uuid().to_string());
            chain::render(&denial, &id, problem, OffsetDateTime::now_utc())
        }
    }
}

type Refusal = (Denial, Option<String>);

/// `GET /opale/v1/entreprises/{siren}/{dataset}?annee=YYYY`
fn data_call(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: &Request<Incoming>,
    rest: &str,
) -> Result<Response<Body>, Refusal> {
    let correlation = hygiene::correlation_id(req.headers()).map_err(|d| (d, None))?;
    let cid = Some(correlation.to_string());
    let segments: Vec<&str> = rest.split('/').collect();
    let (siren, dataset) = match segments.as_slice() {
        ["entreprises", siren, dataset] if DATASETS.contains(dataset) => (*siren, *dataset),
        _ => {
            let d = Denial::new(Reason::NoRoute, format!("no dataset at {API_PREFIX}{rest}"));
            return Err((d, cid));
        }
    };
    let _siren = hygiene::siren(siren).map_err(|d| (d, cid.clone()))?;
    let previous_year = OffsetDateTime::now_utc().year() - 1;
    let _annee = hygiene::annee(req.uri().query(), previous_year).map_err(|d| (d, cid.clone()))?;
    let snapshot = app.registry.snapshot();
    let certified =
        chain::certificate::check(conn, env, &snapshot).map_err(|d| (d, cid.clone()))?;
    let claims = chain::token::check(
        req.headers(),
        req.uri().query(),
        app.oauth.authority(env),
        &app.oauth.denylist,
        oauth::unix_now(),
    )
    .map_err(|d| (d, cid.clone()))?;
    let detail = format!(
        "certificate and token accepted for application {} (token client {}); the ip, identity, rights and quota controls and the {dataset} data source are not built yet",
        certified.application.client_id, claims.client_id
    );
    Err((Denial::new(Reason::NotImplemented, detail), cid))
}
