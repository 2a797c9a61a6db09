//! Tracing HTTP exchanges: the record of a request is started when it
//! arrives, completed with what the handlers learnt, and appended before
//! the response leaves (durability `before_response`). A record that cannot
//! be written turns the answer into a 503: no response without its trace.

use super::TraceEvent;
use crate::app::App;
use crate::chain::{Denial, Reason};
use crate::respond::{self, Body};
use crate::tls::ConnInfo;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::time::Instant;
use time::OffsetDateTime;

/// A record for a request arriving on `plane` (no query string: it may
/// carry anything, including a misplaced token).
pub fn start<B>(plane: &str, conn: &ConnInfo, req: &Request<B>) -> TraceEvent {
    TraceEvent {
        time: super::timestamp(OffsetDateTime::now_utc()),
        plane: plane.to_owned(),
        thumbprint: conn.peer.as_ref().map(|p| p.thumbprint.to_string()),
        ip: conn.remote.ip().to_string(),
        method: req.method().to_string(),
        path: req.uri().path().chars().take(512).collect(),
        ..TraceEvent::default()
    }
}

/// Marks the record as refused by `denial`.
pub fn deny(trace: &mut TraceEvent, denial: &Denial) {
    trace.decision = "denied".into();
    trace.control = Some(denial.reason.control().as_str().to_owned());
    trace.code = Some(denial.reason.code().to_string());
    trace.detail = Some(denial.detail.chars().take(512).collect());
}

/// Completes the record from the response and appends it; returns the
/// response, or a 503 if the record could not be made durable.
pub async fn finish(
    app: &App,
    conn: &ConnInfo,
    mut trace: TraceEvent,
    resp: Response<Body>,
    started: Instant,
) -> Response<Body> {
    trace.status = resp.status().as_u16();
    trace.latency_us = started.elapsed().as_micros() as u64;
    if trace.decision.is_empty() {
        let ok = resp.status().is_success() && trace.control.is_none();
        trace.decision = if ok { "admitted" } else { "denied" }.into();
    }
    if trace.client_id.is_none() {
        fill_caller(app, conn, &mut trace);
    }
    app.metrics.observe(&trace);
    match app.audit.record(trace).await {
        Ok(()) => resp,
        Err(e) => {
            tracing::error!(error = %e, "trace record not written; refusing the response");
            let d = Denial::new(Reason::StorageFailure, "the audit trail is unavailable");
            let body =
                json!({"erreur": {"code": d.reason.code().to_string(), "message": d.detail}});
            respond::json(StatusCode::SERVICE_UNAVAILABLE, &body)
        }
    }
}

/// The application and partner of the connection's registered certificate.
fn fill_caller(app: &App, conn: &ConnInfo, trace: &mut TraceEvent) {
    let Some(peer) = &conn.peer else { return };
    let snap = app.registry.snapshot();
    if let Some(cert) = snap.certificates.get(&peer.thumbprint) {
        trace.client_id = Some(cert.client_id.to_string());
        trace.partner_id = snap
            .applications
            .get(&cert.client_id)
            .map(|a| a.partner_id.to_string());
    }
}
