//! The admin listener: mTLS with an admin certificate, JSON REST under
//! `/admin/v1/` (DESIGN §6; documented in `docs/openapi-admin.yaml`).
//! `client.rs` is the CLI's side of the same API.

mod api;
mod certs;
mod changes;
pub mod cli;
pub mod client;
mod environments;
mod error;
mod export;
mod partners;
mod tokens;
mod trace;
pub mod types;

pub use error::ApiError;

use crate::app::App;
use crate::audit::{self, AdminAction, Code};
use crate::chain::Control;
use crate::domain::Plane;
use crate::registry::Snapshot;
use crate::respond::Body;
use crate::tls::ConnInfo;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Handles one request on the admin listener, and traces it with the
/// acting admin and, for a change, the entities before and after.
pub async fn handle(app: &Arc<App>, conn: &ConnInfo, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let mut trace = audit::http::start(Plane::Admin, conn, &req);
    let before = app.registry.snapshot();
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
    let is_admin = authenticate(conn, &before);
    let outcome = if crate::dashboard::is_dashboard(req.uri().path()) {
        Ok(crate::dashboard::handle(app, conn, is_admin.is_ok(), req).await)
    } else {
        match is_admin {
            Err(e) => Err(e),
            Ok(()) => api::route(app, req).await,
        }
    };
    let resp = match outcome {
        Ok(resp) => resp,
        Err(e) => {
            let code = Code::Status(e.status.as_u16());
            trace.refuse_with(Control::Admin, code, &e.message);
            e.into_response()
        }
    };
    let (b, a) = if mutating {
        changes::changes(&before, &app.registry.snapshot())
    } else {
        (Value::Null, Value::Null)
    };
    trace.admin = Some(AdminAction {
        actor_subject: conn
            .peer
            .as_ref()
            .map(|p| p.subject.clone())
            .unwrap_or_default(),
        actor_thumbprint: conn
            .peer
            .as_ref()
            .map(|p| p.thumbprint.to_string())
            .unwrap_or_default(),
        before: b,
        after: a,
    });
    audit::http::finish(&app.audit, &app.metrics, trace, resp, started).await
}

/// An admin is a client certificate that chains to the root CA (`ca.pem`)
/// and whose thumbprint is registered as an admin.
fn authenticate(conn: &ConnInfo, snapshot: &Snapshot) -> Result<(), ApiError> {
    let peer = conn.peer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "an admin client certificate is required on this listener",
        )
    })?;
    if let Err(fault) = &peer.verdict {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            format!("not an admin certificate: {fault}"),
        ));
    }
    if !snapshot.admins.contains_key(&peer.thumbprint) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            format!(
                "certificate {} is not registered as an admin",
                peer.thumbprint
            ),
        ));
    }
    Ok(())
}
