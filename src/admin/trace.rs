//! Trace endpoints: listing (filtered, newest first, paginated), JSON Lines
//! export, chain verification, statistics, purge. Every scan of the trail
//! runs on the blocking pool, never on the worker threads that also serve
//! partners; the export is streamed from its scan (see [`super::export`]).

use super::ApiError;
use super::api::{Answer, Call, interrupted, read_json};
use super::export;
use super::types::{PurgeRequest, TraceQuery};
use crate::app::App;
use crate::audit::query::{self, Filter};
use crate::respond;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// Default and largest page of `GET /admin/v1/trace`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// `GET /admin/v1/trace?client_id=&partner_id=&decision=&control=&code=&correlation_id=&environment=&from=&to=&before=&limit=`
pub(super) async fn list(c: Call) -> Answer {
    let q = TraceQuery::parse(c.query());
    let limit = match q.limit.as_deref() {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit", format!("1..={MAX_LIMIT}")))?,
        None => DEFAULT_LIMIT,
    };
    let f = filter(&q)?;
    scan(c.app, move |app| query::list(app.audit.store(), &f, limit)).await
}

/// `GET /admin/v1/trace/export`: JSON Lines, newest first, same filters,
/// streamed as the scan goes.
pub(super) async fn export(c: Call) -> Answer {
    let f = filter(&TraceQuery::parse(c.query()))?;
    export::stream(c.app, f).await
}

/// `POST /admin/v1/trace/verify`
pub(super) async fn verify(c: Call) -> Answer {
    scan(c.app, |app| app.audit.verify()).await
}

/// `GET /admin/v1/stats` (same filters).
pub(super) async fn stats(c: Call) -> Answer {
    let f = filter(&TraceQuery::parse(c.query()))?;
    scan(c.app, move |app| query::stats(app.audit.store(), &f)).await
}

/// `POST /admin/v1/trace/purge`: deletes records older than `before`,
/// keeping a signed checkpoint.
pub(super) async fn purge(c: Call) -> Answer {
    let input: PurgeRequest = read_json(c.req).await?;
    let cutoff = crate::audit::normalize(&input.before)
        .ok_or_else(|| ApiError::bad_request("before", "not an RFC 3339 time"))?;
    let deleted = c.app.audit.purge_before(cutoff).await.map_err(internal)?;
    Ok(respond::json(StatusCode::OK, &json!({"deleted": deleted})))
}

/// Runs a read of the trail on the blocking pool → 200 with its JSON.
async fn scan<T, E>(
    app: Arc<App>,
    read: impl FnOnce(&App) -> Result<T, E> + Send + 'static,
) -> Answer
where
    T: Serialize + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let value = tokio::task::spawn_blocking(move || read(&app))
        .await
        .map_err(|_| interrupted())?
        .map_err(internal)?;
    Ok(respond::json(StatusCode::OK, &value))
}

/// The audit filter of a query; a malformed value is a 400 naming it.
fn filter(q: &TraceQuery) -> Result<Filter, ApiError> {
    let p = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let before = match p(&q.before) {
        Some(b) => Some(
            b.parse()
                .map_err(|_| ApiError::bad_request("before", "a record number"))?,
        ),
        None => None,
    };
    Ok(Filter {
        client_id: p(&q.client_id),
        partner_id: p(&q.partner_id).or_else(|| p(&q.partner)),
        decision: p(&q.decision),
        control: p(&q.control),
        code: p(&q.code),
        correlation_id: p(&q.correlation_id),
        plane: p(&q.environment),
        from: time_param(&q.from, "from")?,
        to: time_param(&q.to, "to")?,
        before,
    })
}

/// An RFC 3339 query parameter, normalised to the records' time format.
fn time_param(value: &Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    match value.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => crate::audit::normalize(v)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(name, "not an RFC 3339 time")),
    }
}

/// A 500 carrying the trail's error.
pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string())
}
