//! `POST /token`: client credentials (RFC 6749 §4.4) with RFC 8705 client
//! authentication and certificate-bound tokens.
//!
//! We parse and check the HTTP layer (method, content type, size, repeated
//! parameters, which client authentication method is used); oxide-auth's
//! `ClientCredentialsFlow` then drives the grant (`oxide.rs`) through our
//! registrar and issuer (`gate.rs`) and tells us, typed, which RFC 6749
//! §5.2 error it chose. What its API cannot express is worked around here,
//! in two named places: `tls_client_auth_credentials` (it knows no
//! certificate-only client authentication) and `explain_denial` (it reports
//! a refused binding or scope only as a silent denial).
//!
//! HTTP Basic credentials are decoded once, here (`parse_basic`: base64,
//! then the form decoding RFC 6749 §2.3.1 asks for), and the decoded id and
//! secret are what the flow and the gate see (`basic_credentials`).

use super::code::ErrorCode;
use super::form::{MAX_FORM_BODY, parse_form};
use super::gate::{Gate, Minter, grant_scope, refused};
use super::oxide::{self, FlowFailure, FlowRequest, FlowResponse};
use super::{AccessClaims, Oauth, TokenAuthority, unix_now};
use crate::domain::{ClientId, Environment, Thumbprint};
use crate::registry::{Registry, Snapshot};
use crate::respond::{self, Body};
use crate::server::RequestBody;
use crate::tls::ConnInfo;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PRAGMA, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::endpoint::{NormalizedParameter, OAuthError as OxideError};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the token endpoint may read (docs/architecture.md style rule 11): this environment's
/// issuer, the registry as it is when the request arrives, and whether
/// that registry is too old to be trusted. Connection facts come
/// separately, as [`ConnInfo`].
pub struct TokenContext<'a> {
    /// The environment's token authority (issuer, key, lifetime).
    pub authority: &'a TokenAuthority,
    /// The registry snapshot the grant is decided on.
    pub registry: Arc<Snapshot>,
    /// The listener's environment.
    pub environment: Environment,
    /// The node has been cut off from its store for longer than
    /// `cluster.max_staleness_secs`: no token is issued (503
    /// `temporarily_unavailable`), as no data call is served (docs/contract.md §3, §10).
    pub stale: bool,
}

impl<'a> TokenContext<'a> {
    /// The context of `environment`'s token endpoint; `stale` as
    /// [`crate::availability::Availability::is_stale`] says now.
    pub fn new(
        oauth: &'a Oauth,
        registry: &Registry,
        environment: Environment,
        stale: bool,
    ) -> Self {
        TokenContext {
            authority: oauth.authority(environment),
            registry: registry.snapshot(),
            environment,
            stale,
        }
    }
}

/// An RFC 6749 §5.2 error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TokenError {
    error: ErrorCode,
    description: String,
}

impl TokenError {
    pub(super) fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        TokenError {
            error,
            description: description.into(),
        }
    }
    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }
    /// One text for every client authentication failure: no oracle.
    pub(super) fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }
}

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthMethod {
    /// RFC 8705 §2.1: the registered certificate is the credential.
    TlsClientAuth,
    /// HTTP Basic with the client secret.
    SecretBasic,
    /// `client_secret` in the body.
    SecretPost,
}

/// The client authentication a request presents, decoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Presented {
    /// How the client authenticates.
    method: AuthMethod,
    /// The client it names.
    client_id: ClientId,
    /// The secret of HTTP Basic, decoded; `None` for the other methods
    /// (a `client_secret_post` secret stays in the form parameters).
    basic_secret: Option<String>,
}

/// The token endpoint's answer and, when refused, the RFC 6749 error and
/// its description (for the trace).
pub type TokenOutcome = (Response<Body>, Option<(ErrorCode, String)>);

/// `POST /token` on an environment listener.
pub async fn token_endpoint(
    ctx: TokenContext<'_>,
    conn: &ConnInfo,
    req: Request<RequestBody>,
) -> TokenOutcome {
    let (parts, body) = req.into_parts();
    let outcome = if parts.method != Method::POST {
        Err(TokenError::invalid_request(
            "the token endpoint accepts POST only",
        ))
    } else if parts.uri.query().is_some() {
        Err(TokenError::invalid_request(
            "parameters must be sent in the body, not the URL",
        ))
    } else if ctx.stale {
        Err(TokenError::new(
            ErrorCode::TemporarilyUnavailable,
            "the gateway lost contact with its store; try again later",
        ))
    } else {
        match body.read(MAX_FORM_BODY).await {
            Err(e) => Err(TokenError::invalid_request(e.to_string())),
            Ok(collected) => {
                let content_type = parts
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                let auth = parts
                    .headers
                    .get(AUTHORIZATION)
                    .map(|v| v.as_bytes().to_vec());
                grant(&ctx, conn, content_type, auth.as_deref(), &collected)
            }
        }
    };
    let basic = parts.headers.contains_key(AUTHORIZATION);
    let refused = outcome
        .as_ref()
        .err()
        .map(|e| (e.error, e.description.clone()));
    (render(outcome, basic), refused)
}

/// A successful token response (RFC 6749 §5.1).
struct Issued {
    token: String,
    claims: AccessClaims,
    lifetime: i64,
}

fn render(outcome: Result<Issued, TokenError>, basic: bool) -> Response<Body> {
    let mut resp = match outcome {
        Ok(issued) => respond::json(
            StatusCode::OK,
            &json!({
                "access_token": issued.token,
                "token_type": "Bearer",
                "expires_in": issued.lifetime,
                "scope": issued.claims.scope,
            }),
        ),
        Err(e) => {
            let status = match e.error {
                ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
                ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            let mut r = respond::json(
                status,
                &json!({"error": e.error, "error_description": e.description}),
            );
            if status == StatusCode::UNAUTHORIZED && basic {
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"opale\""),
                );
            }
            r
        }
    };
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

fn grant(
    ctx: &TokenContext<'_>,
    conn: &ConnInfo,
    content_type: Option<&str>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<Issued, TokenError> {
    let params =
        parse_form(content_type, body).map_err(|e| TokenError::invalid_request(e.to_string()))?;
    match params.get("grant_type").map(String::as_str) {
        None => return Err(TokenError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(TokenError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {other:?} is not supported; use client_credentials"),
            ));
        }
    }
    let presented = credentials(&params, authorization)?;
    let thumbprint = match &conn.peer {
        Some(peer) if peer.verdict.is_ok() => peer.thumbprint.clone(),
        _ => {
            return Err(TokenError::new(
                ErrorCode::InvalidClient,
                "a valid client certificate is required on the connection",
            ));
        }
    };
    let request = flow_request(&presented, &params, &thumbprint);
    let gate = Gate {
        snapshot: &ctx.registry,
        env: ctx.environment,
        thumbprint: &thumbprint,
        method: presented.method,
        remote: conn.remote.ip(),
    };
    let mut minter = Minter {
        authority: ctx.authority,
        thumbprint: &thumbprint,
        now: unix_now(),
        minted: None,
    };
    match (oxide::run(&gate, &mut minter, request), minter.minted) {
        (Ok(resp), Some((token, claims))) if resp.status == StatusCode::OK => Ok(Issued {
            token,
            claims,
            lifetime: ctx.authority.lifetime_secs,
        }),
        (Ok(resp), _) => Err(refusal(&resp)),
        (Err(FlowFailure::Oxide(OxideError::DenySilently)), _) => Err(explain_denial(
            &gate,
            params.get("scope").map(String::as_str),
        )),
        (Err(_), _) => Err(TokenError::invalid_request("the request was refused")),
    }
}

/// The request oxide-auth reads: the form parameters, with the client's
/// credentials in the body whatever the method. A `client_id` in the body
/// beside HTTP Basic has been checked to name the same client (RFC 6749
/// §3.2.1 lets a client send it); it is replaced by the decoded one.
fn flow_request(
    presented: &Presented,
    params: &BTreeMap<String, String>,
    thumbprint: &Thumbprint,
) -> FlowRequest {
    let mut body = NormalizedParameter::new();
    for (k, v) in params {
        if !(presented.method == AuthMethod::SecretBasic && k == "client_id") {
            body.insert_or_poison(k.clone().into(), v.clone().into());
        }
    }
    match (presented.method, &presented.basic_secret) {
        (AuthMethod::TlsClientAuth, _) => tls_client_auth_credentials(&mut body, thumbprint),
        (AuthMethod::SecretBasic, Some(secret)) => {
            basic_credentials(&mut body, &presented.client_id, secret);
        }
        _ => {}
    }
    FlowRequest { body }
}

/// HTTP Basic, decoded once by [`parse_basic`]: the decoded id and secret
/// go to the flow as body credentials (allowed, `oxide.rs`). Handed the
/// header instead, oxide-auth would base64-decode it a second time and
/// pass the gate the still form-encoded halves to decode a third time.
fn basic_credentials(body: &mut NormalizedParameter, id: &ClientId, secret: &str) {
    body.insert_or_poison("client_id".into(), id.as_str().to_owned().into());
    body.insert_or_poison("client_secret".into(), secret.to_owned().into());
}

/// Workaround: oxide-auth 0.6.1 knows only secrets, while with
/// `tls_client_auth` (RFC 8705 §2.1) the certificate is the credential. The
/// connection's certificate thumbprint is handed to the flow as the
/// `client_secret`; the gate accepts it only for this method, and only
/// after checking that this certificate is registered to the client.
fn tls_client_auth_credentials(body: &mut NormalizedParameter, thumbprint: &Thumbprint) {
    body.insert_or_poison(
        "client_secret".into(),
        thumbprint.as_str().to_owned().into(),
    );
}

/// Workaround: oxide-auth turns a registrar's refusal to bind the client
/// or to negotiate its scope into a silent denial without a reason. Both
/// come after authentication succeeded, so we ask the same pure policy the
/// gate applied, on the same snapshot, which RFC 6749 §5.2 error it was.
fn explain_denial(gate: &Gate<'_>, scope: Option<&str>) -> TokenError {
    let requested: Option<Vec<&str>> = scope.map(|s| s.split_ascii_whitespace().collect());
    match gate.admission() {
        Err(refusal) => refused(refusal, gate.remote),
        Ok(admitted) => grant_scope(admitted.holder.application, requested.as_deref())
            .err()
            .unwrap_or_else(|| TokenError::invalid_request("the request was refused")),
    }
}

/// The error oxide-auth answered with (typed, from its response template).
fn refusal(resp: &FlowResponse) -> TokenError {
    let error = match resp.error {
        Some(AccessTokenErrorType::InvalidClient) => return TokenError::invalid_client(),
        Some(AccessTokenErrorType::UnsupportedGrantType) => ErrorCode::UnsupportedGrantType,
        Some(AccessTokenErrorType::InvalidScope) => ErrorCode::InvalidScope,
        Some(AccessTokenErrorType::UnauthorizedClient) => ErrorCode::UnauthorizedClient,
        Some(AccessTokenErrorType::InvalidGrant) => ErrorCode::InvalidGrant,
        Some(AccessTokenErrorType::InvalidRequest) | None => ErrorCode::InvalidRequest,
    };
    TokenError::new(error, "the request was refused")
}

/// Which client authentication method the request uses, the client it
/// names and, for HTTP Basic, the secret (decoded). Exactly one method is
/// allowed.
fn credentials(
    params: &BTreeMap<String, String>,
    authorization: Option<&[u8]>,
) -> Result<Presented, TokenError> {
    let body_id = params.get("client_id");
    let body_secret = params.contains_key("client_secret");
    if let Some(header) = authorization {
        if body_secret {
            return Err(TokenError::invalid_request(
                "use one client authentication method only",
            ));
        }
        let (id, secret) = parse_basic(header).ok_or_else(TokenError::invalid_client)?;
        if body_id.is_some_and(|b| b != &id) {
            return Err(TokenError::invalid_request(
                "client_id differs from the Authorization header",
            ));
        }
        return Ok(Presented {
            method: AuthMethod::SecretBasic,
            client_id: ClientId::new(id),
            basic_secret: Some(secret),
        });
    }
    let presented = |method, id: &String| Presented {
        method,
        client_id: ClientId::new(id.as_str()),
        basic_secret: None,
    };
    match (body_id, body_secret) {
        (Some(id), true) => Ok(presented(AuthMethod::SecretPost, id)),
        (Some(id), false) => Ok(presented(AuthMethod::TlsClientAuth, id)),
        (None, true) => Err(TokenError::invalid_request(
            "client_secret without client_id",
        )),
        (None, false) => Err(TokenError::new(
            ErrorCode::InvalidClient,
            "no client authentication was given",
        )),
    }
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id):urlencode(secret))`.
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, data) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(data.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        let joined: String = url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        Some(joined)
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() || id.contains(':') {
        return None;
    }
    Some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxide_auth::endpoint::QueryParameter;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        assert_eq!(
            parse_basic(h.as_bytes()),
            Some(("my id".into(), "s:cret".into()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
    }

    /// Issue 22: HTTP Basic was decoded three times (here, inside
    /// oxide-auth, in the gate). The flow now gets the decoded id and
    /// secret as body credentials and no `Authorization` header.
    #[test]
    fn basic_credentials_reach_the_flow_decoded_once() {
        let h = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        let params = BTreeMap::from([
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), "my id".to_owned()),
        ]);
        let presented = credentials(&params, Some(h.as_bytes())).unwrap();
        assert_eq!(presented.method, AuthMethod::SecretBasic);
        assert_eq!(presented.basic_secret.as_deref(), Some("s:cret"));
        let request = flow_request(&presented, &params, &Thumbprint::new("t"));
        let get = |k: &str| request.body.unique_value(k).map(|v| v.into_owned());
        assert_eq!(get("client_id").as_deref(), Some("my id"));
        assert_eq!(get("client_secret").as_deref(), Some("s:cret"));
        assert_eq!(get("grant_type").as_deref(), Some("client_credentials"));
    }

    proptest::proptest! {
        // 256 cases unless PROPTEST_CASES says otherwise (docs/testing.md).
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any id without `:` and any secret, form-encoded then base64'd as
        /// RFC 6749 §2.3.1 says, decode back to themselves.
        #[test]
        fn basic_credentials_round_trip(id in "\\PC{1,24}", secret in "\\PC{0,24}", scheme in "[Bb][Aa][Ss][Ii][Cc]") {
            proptest::prop_assume!(!id.contains(':'));
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let h = format!("{scheme} {}", STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret))));
            proptest::prop_assert_eq!(parse_basic(h.as_bytes()), Some((id, secret)));
        }

        /// Arbitrary header bytes never panic; what parses has a non-empty id.
        #[test]
        fn basic_header_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            if let Some((id, _)) = parse_basic(&bytes) {
                proptest::prop_assert!(!id.is_empty() && !id.contains(':'));
            }
        }
    }
}
