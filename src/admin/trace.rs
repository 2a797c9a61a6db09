//! Trace endpoints: listing (filtered, newest first, paginated), JSON Lines
//! export, chain verification, statistics, purge. Every scan of the trail
//! runs on the blocking pool, never on the worker threads that also serve
//! partners; the export is streamed from its scan (see [`super::export`]).

use super::Admin;
use super::ApiError;
use super::api::{Answer, Call, MAX_BODY, interrupted, parse_json, read_json, read_limited};
use super::export;
use super::types::{PurgeRequest, TraceQuery, VerifyRequest};
use crate::audit::AuditError;
use crate::audit::cluster::ClusterError;
use crate::audit::query::{self, Filter};
use crate::respond;
use hyper::StatusCode;
use serde::Serialize;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    scan(c.admin, move |admin| query::list(&admin.audit, &f, limit)).await
}

/// `GET /admin/v1/trace/export`: JSON Lines, newest first, same filters,
/// streamed as the scan goes.
pub(super) async fn export(c: Call) -> Answer {
    let f = filter(&TraceQuery::parse(c.query()))?;
    export::stream(c.admin, f).await
}

/// `POST /admin/v1/trace/verify` with an optional `{"checkpoint": text}`:
/// ok false unless the trail is whole and still extends that checkpoint.
pub(super) async fn verify(c: Call) -> Answer {
    let bytes = read_limited(c.req, MAX_BODY).await?;
    let input: VerifyRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        VerifyRequest::default()
    } else {
        parse_json(&bytes)?
    };
    scan(c.admin, move |admin| {
        admin.audit.verify(input.checkpoint.as_deref())
    })
    .await
}

/// `GET /admin/v1/trace/checkpoint`: the latest signed checkpoint, as
/// text, to be kept elsewhere and given back to `verify` later.
pub(super) async fn checkpoint(c: Call) -> Answer {
    let admin = c.admin;
    let text = tokio::task::spawn_blocking(move || admin.audit.checkpoint())
        .await
        .map_err(|_| interrupted())?
        .map_err(trail_error)?;
    Ok(respond::bytes(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        text,
    ))
}

/// `GET /admin/v1/stats` (same filters).
pub(super) async fn stats(c: Call) -> Answer {
    let f = filter(&TraceQuery::parse(c.query()))?;
    scan(c.admin, move |admin| query::stats(&admin.audit, &f)).await
}

/// `POST /admin/v1/trace/purge`: deletes the segments whose records are
/// all older than `before`, behind a signed purge checkpoint; `before`
/// must not be newer than now − `audit.retention_days` (400 otherwise,
/// nothing deleted).
pub(super) async fn purge(c: Call) -> Answer {
    let input: PurgeRequest = read_json(c.req).await?;
    let cutoff = OffsetDateTime::parse(&input.before, &Rfc3339)
        .map_err(|_| ApiError::bad_request("before", "not an RFC 3339 time"))?;
    let days = c.admin.retention_days;
    let latest = OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
    if cutoff > latest {
        return Err(ApiError::bad_request(
            "before",
            format!(
                "records are kept {days} days (audit.retention_days): `before` must not be after {}",
                crate::audit::timestamp(latest)
            ),
        ));
    }
    scan(c.admin, move |admin| admin.audit.purge_before(cutoff)).await
}

/// Runs a read of the trail on the blocking pool → 200 with its JSON.
async fn scan<T>(
    admin: Arc<Admin>,
    read: impl FnOnce(&Admin) -> Result<T, AuditError> + Send + 'static,
) -> Answer
where
    T: Serialize + Send + 'static,
{
    let value = tokio::task::spawn_blocking(move || read(&admin))
        .await
        .map_err(|_| interrupted())?
        .map_err(trail_error)?;
    Ok(respond::json(StatusCode::OK, &value))
}

/// A trail failure: 503 while the cluster's PostgreSQL does not answer
/// (retry later), 500 otherwise.
pub(super) fn trail_error(e: AuditError) -> ApiError {
    match e {
        AuditError::Cluster(e @ ClusterError::Unavailable { .. }) => {
            tracing::warn!(error = %e, "trace read failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the trail (PostgreSQL) is unreachable; try again later",
            )
        }
        other => internal(other),
    }
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

/// An RFC 3339 query parameter, cut to the records' precision.
fn time_param(value: &Option<String>, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
    match value.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => crate::audit::parse_time(v)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(name, "not an RFC 3339 time")),
    }
}

/// A 500 carrying the trail's error.
pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string())
}
