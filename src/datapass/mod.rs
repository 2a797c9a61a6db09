//! The DataPass webhook (DESIGN §9, `docs/datapass.md`): `POST
//! /datapass/webhook` on the admin listener, the one route there that needs
//! no client certificate. DataPass (api.gouv.fr) authenticates each
//! delivery with `X-Hub-Signature-256`, the HMAC-SHA256 of the raw body
//! keyed with `[datapass] webhook_secret`.
//!
//! Flow of one delivery: the body is read (at most `[limits]
//! max_body_bytes`), the signature checked over those raw bytes (401,
//! nothing parsed, nothing written), then `X-App-Environment` and the body
//! are read (400 naming the field), then `approve` or `revoke` is applied
//! (`apply.rs`) and the delivery traced as an admin action of actor
//! `datapass`. Without a secret the route answers 404.

pub mod apply;
pub mod payload;
pub mod signature;

use crate::admin::ApiError;
use crate::app::App;
use crate::audit::{self, Actor, AdminAction, Code, TraceEvent};
use crate::chain::Control;
use crate::domain::{Environment, Plane};
use crate::registry::{Application, Snapshot};
use crate::respond::{self, Body};
use crate::server::{BodyError, RequestBody};
use crate::tls::ConnInfo;
use apply::ApplyError;
use hyper::{Method, Request, Response, StatusCode};
use payload::{Delivery, PayloadError};
use serde_json::json;
use signature::SignatureError;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

/// The webhook's path on the admin listener.
pub const PATH: &str = "/datapass/webhook";
/// The header naming the environment of a delivery.
pub const ENVIRONMENT_HEADER: &str = "x-app-environment";

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum DatapassError {
    /// `[datapass] webhook_secret` is not set: 404.
    #[error("no route for {PATH}: the DataPass webhook is not configured")]
    Disabled,
    /// Another method than POST: 405.
    #[error("{PATH} accepts POST only, not {0}")]
    Method(Method),
    /// Body over `[limits] max_body_bytes`, or cut off: 413.
    #[error("the body is larger than {0} bytes or was cut off")]
    TooLarge(u64),
    /// The body did not arrive within `[limits] body_read_timeout_ms`: 408.
    #[error(transparent)]
    Body(crate::server::BodyError),
    /// Missing or wrong signature: 401.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// `X-App-Environment` missing or not `sandbox`/`production`: 400.
    #[error("X-App-Environment must be \"sandbox\" or \"production\", got {0}")]
    Environment(String),
    /// The body is not what DataPass sends: 400 naming the field.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The registry or the deny-list refused or failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The blocking task running the operation panicked or was cancelled.
    #[error("the operation was interrupted")]
    Interrupted,
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
            DatapassError::Body(_) => ApiError::new(StatusCode::REQUEST_TIMEOUT, None, message),
            DatapassError::Signature(_) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                Some("X-Hub-Signature-256"),
                message,
            ),
            DatapassError::Environment(_) => ApiError::bad_request("X-App-Environment", message),
            DatapassError::Payload(p) => ApiError::bad_request(&p.field, p.message),
            DatapassError::Apply(ApplyError::Registry(r)) => ApiError::from(r),
            DatapassError::Apply(ApplyError::DenyList(_)) | DatapassError::Interrupted => {
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
    /// One line for the trace: event, request id, model type.
    summary: String,
}

/// Handles `POST /datapass/webhook` and traces it.
pub async fn handle(app: &Arc<App>, conn: &ConnInfo, req: Request<RequestBody>) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(Plane::Admin, conn, &req);
    let before = app.registry.snapshot();
    let mut signed = true;
    let resp = match receive(app, req).await {
        Ok(done) => {
            let body = match &done.application {
                Some(a) => json!({"token_id": a.client_id}),
                None => json!({}),
            };
            if let Some(a) = &done.application {
                trace.caller(a);
            }
            trace.detail = Some(done.summary);
            act(&mut trace, &before, &app.registry.snapshot());
            respond::json(StatusCode::OK, &body)
        }
        Err(e) => {
            let authenticated = e.authenticated();
            signed = authenticated;
            let e = ApiError::from(e);
            trace.refuse_with(Control::Admin, Code::Status(e.status.as_u16()), &e.message);
            if authenticated {
                act(&mut trace, &before, &app.registry.snapshot());
            }
            e.into_response()
        }
    };
    let caller = audit::http::Caller::known(signed);
    audit::http::finish(&app.audit, &app.metrics, (trace, caller), resp, started).await
}

/// Names DataPass as the actor, with what changed.
fn act(trace: &mut TraceEvent, before: &Snapshot, after: &Snapshot) {
    let (before, after) = crate::admin::changes::changes(before, after);
    trace.actor = Some(Actor::Datapass);
    trace.admin = Some(AdminAction::change(before, after));
}

/// Authenticates, reads and applies one delivery.
async fn receive(app: &Arc<App>, req: Request<RequestBody>) -> Result<Done, DatapassError> {
    let secret = app
        .config
        .datapass
        .webhook_secret
        .clone()
        .ok_or(DatapassError::Disabled)?;
    if req.method() != Method::POST {
        return Err(DatapassError::Method(req.method().clone()));
    }
    let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes().to_vec());
    let (signed, environment) = (header(signature::HEADER), header(ENVIRONMENT_HEADER));
    let max = app.limits().max_body_bytes;
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let body = req.into_body().read(limit).await.map_err(|e| match e {
        BodyError::TimedOut(_) => DatapassError::Body(e),
        _ => DatapassError::TooLarge(max),
    })?;
    // Nothing of the body is read before this check.
    signature::verify(&secret, signed.as_deref(), &body)?;
    let env = parse_environment(environment.as_deref())?;
    act_on(app, env, payload::parse(&body)?).await
}

/// Applies an authenticated delivery about `env`.
async fn act_on(
    app: &Arc<App>,
    env: Environment,
    delivery: Delivery,
) -> Result<Done, DatapassError> {
    let (summary, application) = match delivery {
        Delivery::Test => ("datapass test".to_owned(), None),
        Delivery::Ignored(event) => (format!("datapass {} ignored", clip(&event)), None),
        Delivery::Approve(event, approval) => {
            let summary = summary(&event);
            let application = blocking(app, move |app| {
                let now = OffsetDateTime::now_utc();
                apply::approve(&app.registry, env, &event, &approval, now).map_err(ApplyError::from)
            })
            .await?;
            (summary, Some(application))
        }
        Delivery::Revoke(event) => {
            let summary = summary(&event);
            let application = blocking(app, move |app| {
                apply::revoke(app, env, &event.request_id, OffsetDateTime::now_utc())
            })
            .await?;
            (summary, application)
        }
    };
    Ok(Done {
        application,
        summary,
    })
}

/// `X-App-Environment`: `sandbox` or `production` (DataPass's `staging`
/// has no listener here).
fn parse_environment(value: Option<&[u8]>) -> Result<Environment, DatapassError> {
    let text = value.map(|v| String::from_utf8_lossy(v).trim().to_owned());
    text.as_deref().and_then(Environment::parse).ok_or_else(|| {
        DatapassError::Environment(text.map_or("nothing".into(), |t| format!("{:?}", clip(&t))))
    })
}

fn summary(event: &payload::Event) -> String {
    format!(
        "datapass {} {} ({})",
        event.name,
        event.request_id,
        clip(&event.model_type)
    )
}

/// At most 128 characters of a value the sender chose.
fn clip(s: &str) -> String {
    s.chars().take(128).collect()
}

/// Runs a registry / deny-list operation (which flushes to disk) off the
/// async threads.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    op: impl FnOnce(&App) -> Result<T, ApplyError> + Send + 'static,
) -> Result<T, DatapassError> {
    let app = app.clone();
    Ok(tokio::task::spawn_blocking(move || op(&app))
        .await
        .map_err(|_| DatapassError::Interrupted)??)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;

    #[test]
    fn environment_header_is_sandbox_or_production() {
        assert_eq!(
            parse_environment(Some(b"sandbox")).unwrap(),
            Environment::Sandbox
        );
        assert_eq!(
            parse_environment(Some(b" production ")).unwrap(),
            Environment::Production
        );
        for bad in [Some(&b"staging"[..]), Some(b"Production"), None] {
            let e = ApiError::from(parse_environment(bad).unwrap_err());
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.field.as_deref(), Some("X-App-Environment"));
        }
    }

    #[test]
    fn refusals_before_the_signature_are_not_authenticated() {
        assert!(!DatapassError::Signature(SignatureError::Missing).authenticated());
        assert!(!DatapassError::TooLarge(1).authenticated());
        assert!(DatapassError::Environment("x".into()).authenticated());
        let e = ApiError::from(DatapassError::Apply(ApplyError::Registry(
            RegistryError::conflict("data.organization.siret", "x"),
        )));
        assert_eq!(e.status, StatusCode::CONFLICT);
    }
}
