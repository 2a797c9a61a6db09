//! RFC 8414 authorization server metadata and the JWKS of an environment.

use super::TokenAuthority;
use crate::domain::Scope;
use serde_json::{Value, json};

/// Path of the JWKS document on each environment listener.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// `GET /.well-known/oauth-authorization-server`
pub fn metadata(authority: &TokenAuthority) -> Value {
    let issuer = &authority.issuer;
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported":
            ["tls_client_auth", "client_secret_basic", "client_secret_post"],
        "tls_client_certificate_bound_access_tokens": true,
        "scopes_supported": Scope::ALL.map(Scope::as_str),
        "access_token_signing_alg_values_supported": ["EdDSA"],
    })
}

/// `GET /.well-known/jwks.json`: every node's keys of the environment
/// that still verify at `now` (RFC 7517 §5).
pub fn jwks(authority: &TokenAuthority, now: i64) -> Value {
    authority.keys().jwks(authority.environment, now)
}
