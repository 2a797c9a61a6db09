//! Trace endpoints: listing (filtered, newest first, paginated), JSON Lines
//! export, chain verification, statistics, purge.

use super::ApiError;
use super::api::query_param;
use crate::app::App;
use crate::audit::query::{self, Filter};
use crate::respond::{self, Body};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Default and largest page of `GET /admin/v1/trace`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn filter(q: &str) -> Result<Filter, ApiError> {
    let p = |n| query_param(q, n).filter(|v| !v.is_empty());
    let before = match p("before") {
        Some(b) => Some(
            b.parse()
                .map_err(|_| ApiError::bad_request("before", "a record number"))?,
        ),
        None => None,
    };
    Ok(Filter {
        client_id: p("client_id"),
        partner_id: p("partner_id").or_else(|| p("partner")),
        decision: p("decision"),
        control: p("control"),
        code: p("code"),
        correlation_id: p("correlation_id"),
        plane: p("environment"),
        from: time_param(q, "from")?,
        to: time_param(q, "to")?,
        before,
    })
}

/// An RFC 3339 query parameter, normalised to the records' time format.
fn time_param(q: &str, name: &str) -> Result<Option<String>, ApiError> {
    match query_param(q, name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => crate::audit::normalize(&v)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(name, "not an RFC 3339 time")),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string())
}

/// `GET /admin/v1/trace?client_id=&partner_id=&decision=&control=&code=&correlation_id=&environment=&from=&to=&before=&limit=`
pub fn list(app: &App, q: &str) -> Result<Response<Body>, ApiError> {
    let limit = match query_param(q, "limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit", format!("1..={MAX_LIMIT}")))?,
        None => DEFAULT_LIMIT,
    };
    let records = query::list(app.audit.store(), &filter(q)?, limit).map_err(internal)?;
    Ok(respond::json(StatusCode::OK, &records))
}

/// `GET /admin/v1/trace/export`: JSON Lines, oldest last, same filters.
pub fn export(app: &App, q: &str) -> Result<Response<Body>, ApiError> {
    let f = filter(q)?;
    let mut out = Vec::new();
    query::scan_newest(app.audit.store(), f.before, |r| {
        if f.matches(&r) && serde_json::to_writer(&mut out, &r).is_ok() {
            out.push(b'\n');
        }
        true
    })
    .map_err(internal)?;
    Ok(respond::bytes(StatusCode::OK, "application/x-ndjson", out))
}

/// `POST /admin/v1/trace/verify`
pub async fn verify(app: &Arc<App>) -> Result<Response<Body>, ApiError> {
    let app2 = app.clone();
    let report = tokio::task::spawn_blocking(move || app2.audit.verify())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(respond::json(StatusCode::OK, &report))
}

/// `GET /admin/v1/stats` (same filters).
pub fn stats(app: &App, q: &str) -> Result<Response<Body>, ApiError> {
    let s = query::stats(app.audit.store(), &filter(q)?).map_err(internal)?;
    Ok(respond::json(StatusCode::OK, &s))
}

/// `POST /admin/v1/trace/purge`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeInput {
    /// Delete records strictly older than this RFC 3339 UTC time.
    pub before: String,
}

/// Purges records older than `before`, keeping a signed checkpoint.
pub async fn purge(app: &Arc<App>, input: PurgeInput) -> Result<Response<Body>, ApiError> {
    let cutoff = crate::audit::normalize(&input.before)
        .ok_or_else(|| ApiError::bad_request("before", "not an RFC 3339 time"))?;
    let deleted = app.audit.purge_before(cutoff).await.map_err(internal)?;
    Ok(respond::json(StatusCode::OK, &json!({"deleted": deleted})))
}
