//! `/.well-known/est/…` on an environment listener (docs/contract.md §12,
//! `crate::est`): builds the renewal's context from the gateway, answers,
//! and fills the trace — a refused caller as the chain's refusal, a
//! refused request with its status, a renewal as a partner's action (the
//! actor is the presenting certificate's thumbprint; the change is the new
//! certificate's record).

use super::Gateway;
use super::pipeline::with_correlation;
use crate::audit::{Actor, Code, TraceEvent};
use crate::chain::{self, Control, hygiene::Correlation};
use crate::domain::Environment;
use crate::est::{self, Operation, Refused, Renewal};
use crate::respond::Body;
use crate::server::RequestBody;
use crate::tls::ConnInfo;
use hyper::{Request, Response};
use std::sync::Arc;
use time::OffsetDateTime;

/// Answers one EST request and traces it.
pub(super) async fn answer(
    gateway: &Arc<Gateway>,
    conn: &ConnInfo,
    env: Environment,
    op: Operation,
    correlation: &Correlation,
    req: Request<RequestBody>,
    trace: &mut TraceEvent,
) -> Response<Body> {
    let id = correlation.echo();
    trace.correlation_id = Some(id.clone());
    super::name_caller(gateway, conn, trace);
    let problem = chain::accepts_problem_json(req.headers());
    let resp = match op {
        Operation::CaCerts => est::cacerts(&gateway.est, env).map_err(Refused::Request),
        Operation::SimpleReenroll => renew(gateway, conn, env, req, trace).await,
    };
    let resp = resp.unwrap_or_else(|refused| match refused {
        Refused::Caller(denial) => {
            trace.refuse(&denial);
            chain::render(&denial, &id, problem, OffsetDateTime::now_utc())
        }
        Refused::Request(e) => {
            let status = e.status().as_u16();
            trace.refuse_with(Control::Admin, Code::Status(status), &e.to_string());
            e.into_response(&id)
        }
    });
    with_correlation(resp, &id)
}

/// `simplereenroll`, recording the new certificate as the partner's action.
async fn renew(
    gateway: &Arc<Gateway>,
    conn: &ConnInfo,
    env: Environment,
    req: Request<RequestBody>,
    trace: &mut TraceEvent,
) -> Result<Response<Body>, Refused> {
    let snapshot = gateway.registry.snapshot();
    let cx = Renewal {
        chain: gateway.chain_context(env, &snapshot),
        est: &gateway.est,
        registry: &gateway.registry,
    };
    let (parts, body) = req.into_parts();
    let (resp, stored) = est::simplereenroll(&cx, conn, &parts.headers, body).await?;
    let actor = conn.peer.as_ref().map(|p| Actor::Partner {
        thumbprint: p.thumbprint.as_str().to_owned(),
    });
    let after = serde_json::to_value(&stored).unwrap_or_default();
    trace.acted(actor, serde_json::Value::Null, after);
    Ok(resp)
}
