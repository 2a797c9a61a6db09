//! The admin listener: mTLS with an admin certificate, JSON REST under
//! `/admin/v1/` (DESIGN §6; documented in `docs/openapi-admin.yaml`).
//! `client.rs` is the CLI's side of the same API.

mod api;
mod certs;
pub mod cli;
pub mod client;
mod error;
mod tokens;

pub use error::ApiError;

use crate::app::App;
use crate::registry::Snapshot;
use crate::respond::Body;
use crate::tls::ConnInfo;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;

/// Handles one request on the admin listener.
pub async fn handle(app: &Arc<App>, conn: &ConnInfo, req: Request<Incoming>) -> Response<Body> {
    let snapshot = app.registry.snapshot();
    if let Err(e) = authenticate(conn, &snapshot) {
        return e.into_response();
    }
    match api::route(app, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
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
