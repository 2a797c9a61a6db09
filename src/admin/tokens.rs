//! Token introspection (RFC 7662) and revocation (RFC 7009) for admins, and
//! client-secret rotation.

use super::ApiError;
use super::api::blocking;
use crate::app::App;
use crate::domain::{ClientId, Status};
use crate::oauth::{self, AccessClaims, unix_now};
use crate::respond::{self, Body};
use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// `POST /admin/v1/tokens/introspect` (form `token=`).
pub fn introspect(
    app: &App,
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let token = token_param(content_type, body)?;
    let now = unix_now();
    let active = app.oauth.identify(&token).and_then(|(authority, _)| {
        authority
            .verify(&token, &app.oauth.denylist, now)
            .ok()
            .filter(|c| client_active(app, c))
    });
    let body = match active {
        None => json!({"active": false}),
        Some(c) => json!({
            "active": true,
            "client_id": c.client_id,
            "sub": c.sub,
            "scope": c.scope,
            "token_type": "Bearer",
            "exp": c.exp,
            "iat": c.iat,
            "iss": c.iss,
            "aud": c.aud,
            "jti": c.jti,
            "cnf": {"x5t#S256": c.cnf.x5t_s256},
        }),
    };
    Ok(respond::json(StatusCode::OK, &body))
}

/// `POST /admin/v1/tokens/revoke` (form `token=`): 200 whatever the token.
pub async fn revoke(
    app: &Arc<App>,
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let token = token_param(content_type, body)?;
    if let Some((_, claims)) = app.oauth.identify(&token) {
        let (jti, exp) = (claims.jti.clone(), claims.exp);
        if exp > unix_now() {
            let app2 = app.clone();
            tokio::task::spawn_blocking(move || app2.oauth.denylist.revoke(&jti, exp))
                .await
                .map_err(|_| internal())?
                .map_err(|e| {
                    tracing::error!(error = %e, "deny-list write failed");
                    internal()
                })?;
        }
    }
    Ok(respond::json(StatusCode::OK, &json!({})))
}

/// `POST /admin/v1/applications/{client_id}/secret`: a new secret, shown once.
pub async fn rotate_secret(app: &Arc<App>, client_id: String) -> Result<Response<Body>, ApiError> {
    let secret = blocking(app, move |app| app.registry.rotate_secret(&client_id)).await?;
    Ok(respond::json(StatusCode::OK, &secret))
}

fn client_active(app: &App, claims: &AccessClaims) -> bool {
    let snap = app.registry.snapshot();
    snap.applications
        .get(&ClientId::new(claims.client_id.as_str()))
        .filter(|a| a.status == Status::Active)
        .and_then(|a| snap.partners.get(&a.partner_id))
        .is_some_and(|p| p.status == Status::Active)
}

fn token_param(content_type: Option<&str>, body: &Bytes) -> Result<String, ApiError> {
    let params = oauth::parse_form(content_type, body).map_err(|e| form_error(e.to_string()))?;
    params
        .get("token")
        .cloned()
        .ok_or_else(|| form_error("the token parameter is required".into()))
}

fn form_error(description: String) -> ApiError {
    ApiError::bad_request("token", description)
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "revocation could not be stored",
    )
}

/// The RFC 7009/7662 error body for a bad request (`invalid_request`).
pub fn oauth_error_body(e: &ApiError) -> Value {
    json!({"error": "invalid_request", "error_description": e.message})
}
