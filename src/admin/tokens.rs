//! Token introspection (RFC 7662) and revocation (RFC 7009) for admins, and
//! client-secret rotation.

use super::Admin;
use super::ApiError;
use super::api::{Answer, Call, read_limited};
use crate::domain::ClientId;
use crate::oauth::{self, AccessClaims, unix_now};
use crate::registry::admission::active_owner;
use crate::respond::{self, Body};
use crate::server::RequestBody;
use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

/// `POST /admin/v1/tokens/introspect` (form `token=`, RFC 7662).
pub(super) async fn introspect(c: Call) -> Answer {
    let token = match form_token(c.req).await? {
        Ok(token) => token,
        Err(e) => return Ok(oauth_error(&e)),
    };
    let now = unix_now();
    let active = c
        .admin
        .oauth
        .identify(&token, now)
        .and_then(|(authority, _)| {
            authority
                .verify(&token, &c.admin.oauth.denylist, now)
                .ok()
                .filter(|claims| client_active(&c.admin, claims))
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

/// `POST /admin/v1/tokens/revoke` (form `token=`, RFC 7009): 200 whatever
/// the token.
pub(super) async fn revoke(c: Call) -> Answer {
    let token = match form_token(c.req).await? {
        Ok(token) => token,
        Err(e) => return Ok(oauth_error(&e)),
    };
    let now = unix_now();
    if let Some((_, claims)) = c.admin.oauth.identify(&token, now) {
        let (jti, exp) = (claims.jti.clone(), claims.exp);
        if exp > now {
            c.admin
                .oauth
                .denylist
                .revoke(&jti, exp)
                .await
                .map_err(ApiError::from)?;
        }
    }
    Ok(respond::json(StatusCode::OK, &json!({})))
}

/// `POST /admin/v1/applications/{client_id}/secret`: a new secret, shown once.
pub(super) async fn rotate_secret(c: Call) -> Answer {
    let client_id = c.param("client_id").to_owned();
    let secret = c.admin.registry.rotate_secret(&client_id).await?;
    Ok(respond::json(StatusCode::OK, &secret))
}

/// The `token` of a form body: the outer error is the body's own (too
/// large), the inner one a malformed form, answered the RFC 7009/7662 way.
async fn form_token(req: Request<RequestBody>) -> Result<Result<String, ApiError>, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_limited(req, oauth::MAX_FORM_BODY).await?;
    Ok(token_param(content_type.as_deref(), &body))
}

/// Whether the token's application and its partner are still active
/// (docs/oauth.md, "Introspection"; the policy is the admission module's).
fn client_active(admin: &Admin, claims: &AccessClaims) -> bool {
    let snap = admin.registry.snapshot();
    snap.applications
        .get(&ClientId::new(claims.client_id.as_str()))
        .is_some_and(|a| active_owner(&snap, a).is_some())
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

/// The RFC 7009/7662 answer to a bad request (400 `invalid_request`).
fn oauth_error(e: &ApiError) -> Response<Body> {
    let error = crate::oauth::ErrorCode::InvalidRequest;
    let body = json!({"error": error, "error_description": e.message});
    respond::json(StatusCode::BAD_REQUEST, &body)
}
