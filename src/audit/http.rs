//! Tracing HTTP exchanges: the record of a request is started when it
//! arrives, completed with what the handlers learnt (the request's
//! outcome), counted in the metrics and appended before the response
//! leaves (durability `before_response`). A record that cannot be written
//! turns the answer into a 503: no response without its trace.

use super::unidentified::{Treatment, this_minute};
use super::{Address, Auditor, TraceEvent};
use crate::chain::{self, Denial, Reason};
use crate::domain::Plane;
use crate::metrics::Metrics;
use crate::respond::Body;
use crate::tls::ConnInfo;
use hyper::{Request, Response};
use std::time::Instant;
use time::OffsetDateTime;

/// A record for a request arriving on `plane` over `conn`.
pub fn start<B>(plane: Plane, conn: &ConnInfo, req: &Request<B>) -> TraceEvent {
    let now = OffsetDateTime::now_utc();
    let mut event = TraceEvent::arriving(plane, now, req.method(), req.uri().path());
    event.thumbprint = conn.peer.as_ref().map(|p| p.thumbprint.clone());
    event.ip = Some(Address::Ip(conn.remote.ip().to_canonical()));
    event
}

/// Whether the request named who made it: an application (by its
/// certificate or token), an admin, DataPass (by its signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Someone the gateway knows.
    Identified,
    /// No one yet: a refusal may be summarised (`super::unidentified`).
    Unidentified,
}

impl Caller {
    /// `Identified` when `known`.
    pub fn known(known: bool) -> Self {
        if known {
            Caller::Identified
        } else {
            Caller::Unidentified
        }
    }
}

/// Completes the record from the response, counts it and appends it;
/// returns the response, or a 503 (rendered like every denial) if the
/// record could not be made durable. A refusal of an unidentified caller
/// past the per-source threshold is only counted in its minute's summary.
pub async fn finish(
    audit: &Auditor,
    metrics: &Metrics,
    (mut trace, caller): (TraceEvent, Caller),
    resp: Response<Body>,
    started: Instant,
) -> Response<Body> {
    trace.status = resp.status().as_u16();
    trace.latency_us = started.elapsed().as_micros() as u64;
    // A redirection (a dashboard form's 303) is the form's success.
    if resp.status().is_client_error() || resp.status().is_server_error() {
        trace.decision = super::Decision::Denied;
    }
    metrics.observe(&trace);
    if caller == Caller::Unidentified
        && trace.decision == super::Decision::Denied
        && audit.unidentified.count(&trace, this_minute()) == Treatment::Summarised
    {
        return resp;
    }
    match audit.record(&trace).await {
        Ok(()) => resp,
        Err(e) => {
            tracing::error!(error = %e, "trace record not written; refusing the response");
            let d = Denial::new(Reason::StorageFailure, "the audit trail is unavailable");
            let correlation = trace.correlation_id.as_deref().unwrap_or_default();
            chain::render(&d, correlation, false, OffsetDateTime::now_utc())
        }
    }
}
