//! The DataPass webhook (`docs/datapass.md`): `POST /datapass/webhook` on
//! the admin listener, the one route there that needs no client
//! certificate. DataPass (api.gouv.fr) authenticates each delivery with
//! `X-Hub-Signature-256`, the HMAC-SHA256 of the raw body keyed with
//! `[datapass] webhook_secret`.
//!
//! Flow of one delivery: the signature header's form is checked and the
//! body read, hashed as it arrives, at most `[datapass] max_body_bytes`
//! (`receive.rs`; 401 or 413, nothing parsed, nothing written); then the
//! body is parsed (400 naming the field), its environment taken from the
//! signed `form_uid` (an `X-App-Environment` header must agree), and
//! `approve` or `revoke` applied in `fired_at` order (`order.rs`,
//! `apply.rs`). Every delivery is traced, as an admin action of actor
//! `datapass` once the signature holds. Without a secret the route
//! answers 404.

pub mod apply;
pub mod contacts;
pub mod order;
pub mod payload;
pub mod receive;
pub mod signature;

use crate::admin::Admin;
use crate::admin::ApiError;
use crate::audit::{self, Actor, Code, TraceEvent};
use crate::chain::Control;
use crate::domain::{Environment, Plane};
use crate::registry::{Application, Snapshot};
use crate::respond::{self, Body};
use crate::server::{BodyError, RequestBody};
use crate::tls::ConnInfo;
use apply::ApplyError;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use order::Outcome;
use payload::{Delivery, PayloadError};
use serde_json::{Map, Value, json};
use signature::SignatureError;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

/// The webhook's path on the admin listener.
pub const PATH: &str = "/datapass/webhook";
/// The optional header naming the environment of a delivery; it must
/// agree with the signed `form_uid`.
pub const ENVIRONMENT_HEADER: &str = "x-app-environment";

/// Why a delivery was refused. Nothing is written on any of them.
#[derive(Debug, thiserror::Error)]
pub enum DatapassError {
    /// `[datapass] webhook_secret` is not set: 404.
    #[error("no route for {PATH}: the DataPass webhook is not configured")]
    Disabled,
    /// Another method than POST: 405.
    #[error("{PATH} accepts POST only, not {0}")]
    Method(Method),
    /// Body over `[datapass] max_body_bytes` (or the gateway's own cap
    /// when smaller), declared or while arriving: 413.
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    /// The body did not arrive whole: not within `[limits]
    /// body_read_timeout_ms` (408), or broken off by the client (400).
    #[error(transparent)]
    Body(BodyError),
    /// Missing, malformed, repeated or wrong signature: 401.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// `X-App-Environment` not `sandbox`/`production`: 400.
    #[error("X-App-Environment must be \"sandbox\" or \"production\", got {0}")]
    Environment(String),
    /// `X-App-Environment` given more than once: 400.
    #[error("X-App-Environment is given more than once")]
    EnvironmentRepeated,
    /// `X-App-Environment` names another environment than the signed
    /// `form_uid`: 400.
    #[error("X-App-Environment is {header} but the signed data.form_uid is a {signed} form")]
    EnvironmentMismatch {
        /// What the header says.
        header: Environment,
        /// What the signed body says.
        signed: Environment,
    },
    /// The body is not what DataPass sends: 400 naming the field.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The registry or the deny-list refused or failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl DatapassError {
    /// Whether the delivery's signature had been verified.
    fn authenticated(&self) -> bool {
        !matches!(
            self,
            Self::Disabled
                | Self::Method(_)
                | Self::TooLarge(_)
                | Self::Body(_)
                | Self::Signature(_)
        )
    }
}

impl From<DatapassError> for ApiError {
    fn from(e: DatapassError) -> Self {
        let message = e.to_string();
        match e {
            DatapassError::Disabled => ApiError::new(StatusCode::NOT_FOUND, None, message),
            DatapassError::Method(_) => {
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, None, message)
            }
            DatapassError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, None, message)
            }
            DatapassError::Body(BodyError::TimedOut(_)) => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, None, message)
            }
            DatapassError::Body(_) => ApiError::bad_request("body", message),
            DatapassError::Signature(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, Some(signature::FIELD), message)
            }
            DatapassError::Environment(_)
            | DatapassError::EnvironmentRepeated
            | DatapassError::EnvironmentMismatch { .. } => {
                ApiError::bad_request("X-App-Environment", message)
            }
            DatapassError::Payload(p) => ApiError::bad_request(&p.field, p.message),
            DatapassError::Apply(ApplyError::Registry(r)) => ApiError::from(r),
            DatapassError::Apply(ApplyError::DenyList(_)) => {
                tracing::error!(error = %message, "DataPass delivery not applied");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, message)
            }
        }
    }
}

/// What an accepted delivery did: the answer and what the trace names.
#[derive(Debug, Default)]
struct Done {
    /// The application concerned, if any.
    application: Option<Application>,
    /// `applied` in the answer: whether the event is in effect (then the
    /// answer names the application as `token_id`).
    applied: bool,
    /// Why a superseded event changed nothing.
    reason: Option<String>,
    /// One line for the trace: event, request id, model type, outcome.
    summary: String,
}

impl Done {
    /// The JSON answer: `applied`, and `token_id` or `reason`.
    fn answer(&self) -> Value {
        let mut body = Map::new();
        body.insert("applied".into(), self.applied.into());
        if let Some(a) = self.application.as_ref().filter(|_| self.applied) {
            body.insert("token_id".into(), json!(a.client_id));
        }
        if let Some(reason) = &self.reason {
            body.insert("reason".into(), reason.as_str().into());
        }
        Value::Object(body)
    }
}

/// Handles `POST /datapass/webhook` and traces it.
pub async fn handle(
    state: &Arc<Admin>,
    conn: &ConnInfo,
    req: Request<RequestBody>,
) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(Plane::Admin, conn, &req);
    let before = state.registry.snapshot();
    let mut signed = true;
    let resp = match receive(state, conn, req).await {
        Ok(done) => {
            if let Some(a) = &done.application {
                trace.caller(a);
            }
            let body = done.answer();
            trace.detail = Some(done.summary);
            act(&mut trace, &before, &state.registry.snapshot());
            respond::json(StatusCode::OK, &body)
        }
        Err(e) => {
            let authenticated = e.authenticated();
            signed = authenticated;
            let e = ApiError::from(e);
            trace.refuse_with(Control::Admin, Code::Status(e.status.as_u16()), &e.message);
            if authenticated {
                act(&mut trace, &before, &state.registry.snapshot());
            }
            e.into_response()
        }
    };
    let caller = audit::http::Caller::known(signed);
    audit::http::finish(&state.audit, &state.metrics, (trace, caller), resp, started).await
}

/// Names DataPass as the actor, with what changed.
fn act(trace: &mut TraceEvent, before: &Snapshot, after: &Snapshot) {
    let (before, after) = crate::admin::changes::changes(before, after);
    trace.acted(Some(Actor::Datapass), before, after);
}

/// Authenticates, reads and applies one delivery.
async fn receive(
    state: &Arc<Admin>,
    conn: &ConnInfo,
    req: Request<RequestBody>,
) -> Result<Done, DatapassError> {
    let secret = state
        .datapass
        .webhook_secret
        .clone()
        .ok_or(DatapassError::Disabled)?;
    if req.method() != Method::POST {
        return Err(DatapassError::Method(req.method().clone()));
    }
    let (parts, body) = req.into_parts();
    let cap = body_cap(state, conn);
    let signed = receive::signed(&parts.headers, body, &secret, cap).await?;
    // Authenticated from here on.
    let header = header_environment(&parts.headers)?;
    let delivery = payload::parse(&signed.body)?;
    agrees(header, &delivery)?;
    act_on(state, delivery, signed.sha256).await
}

/// The largest body read: `[datapass] max_body_bytes`, or the gateway's
/// own cap when smaller (`[limits] max_body_bytes`, and
/// `unauthenticated_max_body_bytes` on a connection without a verified
/// client certificate, as DataPass's).
fn body_cap(state: &Admin, conn: &ConnInfo) -> u64 {
    let gateway = state.reloader.limits().body_cap(conn.verified());
    state.datapass.max_body_bytes.min(gateway)
}

/// Applies an authenticated delivery; `body_sha256` identifies it.
async fn act_on(
    state: &Arc<Admin>,
    delivery: Delivery,
    body_sha256: String,
) -> Result<Done, DatapassError> {
    let (event, outcome) = match delivery {
        Delivery::Test => return Ok(nothing_done("datapass test".to_owned())),
        Delivery::Ignored(event) => {
            return Ok(nothing_done(format!("datapass {} ignored", clip(&event))));
        }
        Delivery::Approve(event, approval) => {
            let now = OffsetDateTime::now_utc();
            let outcome = apply::approve(&state.registry, &event, &approval, &body_sha256, now)
                .await
                .map_err(ApplyError::from)?;
            (event, outcome)
        }
        Delivery::Revoke(event) => {
            let outcome = apply::revoke(
                &state.registry,
                &state.oauth.denylist,
                &event,
                &body_sha256,
                OffsetDateTime::now_utc(),
            )
            .await?;
            (event, outcome)
        }
    };
    Ok(done(&event, outcome))
}

/// A delivery that asks for nothing (ping, other events).
fn nothing_done(summary: String) -> Done {
    Done {
        summary,
        ..Done::default()
    }
}

/// The answer and trace line of an `approve` or `revoke`.
fn done(event: &payload::Event, outcome: Outcome) -> Done {
    let what = format!(
        "datapass {} {} ({}, {})",
        event.kind,
        event.request_id,
        event.environment,
        clip(&event.model_type)
    );
    let applied = outcome.applied();
    let (summary, reason) = match &outcome {
        Outcome::Applied(_) => (what, None),
        Outcome::Repeated(_) => (format!("{what}: already applied"), None),
        Outcome::Superseded { last, .. } => {
            let reason = order::superseded_reason(event, last);
            (format!("{what}: superseded"), Some(reason))
        }
    };
    let application = outcome.application().cloned();
    let summary = match application.as_ref().and_then(|a| a.suspension()) {
        Some(by) if event.kind == crate::registry::DatapassEvent::Approve => {
            format!("{summary}; the application stays suspended (by {by})")
        }
        _ => summary,
    };
    Done {
        application,
        applied,
        reason,
        summary,
    }
}

/// An `X-App-Environment` given must name the environment of the signed
/// `form_uid` (deliveries that act on nothing have none to agree with).
fn agrees(header: Option<Environment>, delivery: &Delivery) -> Result<(), DatapassError> {
    let signed = match delivery {
        Delivery::Approve(event, _) | Delivery::Revoke(event) => event.environment,
        Delivery::Test | Delivery::Ignored(_) => return Ok(()),
    };
    match header {
        Some(header) if header != signed => {
            Err(DatapassError::EnvironmentMismatch { header, signed })
        }
        _ => Ok(()),
    }
}

/// `X-App-Environment`, optional: one value, `sandbox` or `production`
/// (DataPass's `staging` has no listener here).
fn header_environment(headers: &HeaderMap) -> Result<Option<Environment>, DatapassError> {
    let mut values = headers.get_all(ENVIRONMENT_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(DatapassError::EnvironmentRepeated);
    }
    let text = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    Environment::parse(&text)
        .map(Some)
        .ok_or_else(|| DatapassError::Environment(format!("{:?}", clip(&text))))
}

/// At most 128 characters of a value the sender chose.
fn clip(s: &str) -> String {
    s.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;
    use hyper::header::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ENVIRONMENT_HEADER, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn environment_header_is_optional_single_and_known() {
        assert_eq!(header_environment(&headers(&[])).unwrap(), None);
        assert_eq!(
            header_environment(&headers(&[" production "])).unwrap(),
            Some(Environment::Production)
        );
        for bad in [&["staging"][..], &["Production"], &["sandbox", "sandbox"]] {
            let e = ApiError::from(header_environment(&headers(bad)).unwrap_err());
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(e.field.as_deref(), Some("X-App-Environment"));
        }
    }

    #[test]
    fn refusals_before_the_signature_are_not_authenticated() {
        assert!(!DatapassError::Signature(SignatureError::Missing).authenticated());
        assert!(!DatapassError::TooLarge(1).authenticated());
        let late = BodyError::TimedOut(std::time::Duration::from_secs(1));
        assert!(!DatapassError::Body(late).authenticated());
        assert!(DatapassError::Environment("x".into()).authenticated());
        let e = ApiError::from(DatapassError::Apply(ApplyError::Registry(
            RegistryError::conflict("data.organization.siret", "x"),
        )));
        assert_eq!(e.status, StatusCode::CONFLICT);
    }
}
