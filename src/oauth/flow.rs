//! `POST /token`: client credentials (RFC 6749 §4.4) with RFC 8705 client
//! authentication and certificate-bound tokens.
//!
//! We parse and check the HTTP layer (method, content type, size, repeated
//! parameters, which client authentication method is used); oxide-auth's
//! `ClientCredentialsFlow` then drives the grant through our `Gate`
//! (registrar: authenticates the client, binds it, negotiates the scope)
//! and our `Minter` (issuer: signs the RFC 9068 JWT). Its traits are
//! synchronous, so they read the registry snapshot taken before the flow.
//! `tls_client_auth` has no native path in oxide-auth: the certificate is
//! the credential, so we hand the flow a one-time random passphrase that
//! only this request's `Gate` accepts, after checking that the connection's
//! certificate is registered to the client.

use super::form::{MAX_FORM_BODY, parse_form};
use super::{AccessClaims, TokenAuthority, unix_now};
use crate::app::App;
use crate::domain::{ClientId, Environment, Scope, Status, Thumbprint, random_bytes};
use crate::registry::{CertStatus, Snapshot};
use crate::respond::{self, Body};
use crate::tls::ConnInfo;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PRAGMA, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use oxide_auth::endpoint::{
    ClientCredentialsFlow, Endpoint, NormalizedParameter, OAuthError as OxideError, OwnerConsent,
    OwnerSolicitor, QueryParameter, Scopes, Solicitation, Template, WebRequest, WebResponse,
};
use oxide_auth::primitives::grant::Grant;
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};
use oxide_auth::primitives::scope::Scope as OxideScope;
use serde_json::json;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// An RFC 6749 §5.2 error response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenError {
    error: &'static str,
    description: String,
}

impl TokenError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        TokenError {
            error,
            description: description.into(),
        }
    }
    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }
    /// One text for every client authentication failure: no oracle.
    fn invalid_client() -> Self {
        Self::new("invalid_client", "client authentication failed")
    }
}

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMethod {
    /// RFC 8705 §2.1: the registered certificate is the credential.
    TlsClientAuth,
    /// HTTP Basic with the client secret.
    SecretBasic,
    /// `client_secret` in the body.
    SecretPost,
}

/// The token endpoint's answer and, when refused, the RFC 6749 error and
/// its description (for the trace).
pub type TokenOutcome = (Response<Body>, Option<(&'static str, String)>);

/// `POST /token` on an environment listener.
pub async fn token_endpoint(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: Request<Incoming>,
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
    } else {
        match Limited::new(body, MAX_FORM_BODY).collect().await {
            Err(_) => Err(TokenError::invalid_request(format!(
                "the body exceeds {MAX_FORM_BODY} bytes"
            ))),
            Ok(collected) => {
                let content_type = parts
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                let auth = parts
                    .headers
                    .get(AUTHORIZATION)
                    .map(|v| v.as_bytes().to_vec());
                grant(
                    app,
                    conn,
                    env,
                    content_type,
                    auth.as_deref(),
                    &collected.to_bytes(),
                )
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
            let status = if e.error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
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
    app: &App,
    conn: &ConnInfo,
    env: Environment,
    content_type: Option<&str>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<Issued, TokenError> {
    let mut params =
        parse_form(content_type, body).map_err(|e| TokenError::invalid_request(e.to_string()))?;
    match params.get("grant_type").map(String::as_str) {
        None => return Err(TokenError::invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(TokenError::new(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported; use client_credentials"),
            ));
        }
    }
    let (method, client_id, passphrase) = credentials(&mut params, authorization)?;
    let thumbprint = match &conn.peer {
        Some(peer) if peer.verdict.is_ok() => peer.thumbprint.clone(),
        _ => {
            return Err(TokenError::new(
                "invalid_client",
                "a valid client certificate is required on the connection",
            ));
        }
    };
    let authority = app.oauth.authority(env);
    let snapshot = app.registry.snapshot();
    let nonce = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let passphrase = if method == AuthMethod::TlsClientAuth {
        nonce.clone()
    } else {
        passphrase
    };
    let header = format!(
        "Basic {}",
        STANDARD.encode(format!("{client_id}:{passphrase}"))
    );
    let mut oxide_body = NormalizedParameter::new();
    for (k, v) in params {
        if k != "client_id" && k != "client_secret" {
            oxide_body.insert_or_poison(k.into(), v.into());
        }
    }
    let mut endpoint = OxideEndpoint {
        gate: Gate {
            snapshot: &snapshot,
            env,
            thumbprint: &thumbprint,
            method,
            nonce,
            failure: RefCell::new(None),
        },
        minter: Minter {
            authority,
            thumbprint: &thumbprint,
            now: unix_now(),
            minted: None,
        },
        solicitor: Solicitor,
    };
    let request = OxideRequest {
        body: oxide_body,
        authorization: Some(header),
    };
    let flow_result =
        ClientCredentialsFlow::prepare(&mut endpoint).and_then(|mut flow| flow.execute(request));
    if let Some(failure) = endpoint.gate.failure.take() {
        return Err(failure);
    }
    match (flow_result, endpoint.minter.minted.take()) {
        (Ok(resp), Some((token, claims))) if resp.status == StatusCode::OK => Ok(Issued {
            token,
            claims,
            lifetime: authority.lifetime_secs,
        }),
        (Ok(resp), _) => Err(oxide_error(&resp)),
        (Err(_), _) => Err(TokenError::invalid_request("the request was refused")),
    }
}

/// Which client authentication method the request uses, the client id and
/// the secret (empty for `tls_client_auth`). Exactly one method is allowed.
fn credentials(
    params: &mut BTreeMap<String, String>,
    authorization: Option<&[u8]>,
) -> Result<(AuthMethod, String, String), TokenError> {
    let body_id = params.get("client_id").cloned();
    let body_secret = params.get("client_secret").cloned();
    if let Some(header) = authorization {
        if body_secret.is_some() {
            return Err(TokenError::invalid_request(
                "use one client authentication method only",
            ));
        }
        let (id, secret) = parse_basic(header).ok_or_else(TokenError::invalid_client)?;
        if body_id.as_ref().is_some_and(|b| b != &id) {
            return Err(TokenError::invalid_request(
                "client_id differs from the Authorization header",
            ));
        }
        return Ok((AuthMethod::SecretBasic, id, secret));
    }
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok((AuthMethod::SecretPost, id, secret)),
        (Some(id), None) => Ok((AuthMethod::TlsClientAuth, id, String::new())),
        (None, Some(_)) => Err(TokenError::invalid_request(
            "client_secret without client_id",
        )),
        (None, None) => Err(TokenError::new(
            "invalid_client",
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
        let joined: String = form_urlencoded::parse(format!("x={s}").as_bytes())
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

fn oxide_error(resp: &OxideResponse) -> TokenError {
    let body: serde_json::Value = resp
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    let error = match body["error"].as_str() {
        Some("invalid_client") => return TokenError::invalid_client(),
        Some("unsupported_grant_type") => "unsupported_grant_type",
        Some("invalid_scope") => "invalid_scope",
        Some("unauthorized_client") => "unauthorized_client",
        _ => "invalid_request",
    };
    TokenError::new(error, "the request was refused")
}

/// The registrar of one token request.
struct Gate<'a> {
    snapshot: &'a Snapshot,
    env: Environment,
    thumbprint: &'a Thumbprint,
    method: AuthMethod,
    nonce: String,
    failure: RefCell<Option<TokenError>>,
}

impl Gate<'_> {
    fn fail(&self, e: TokenError) -> RegistrarError {
        self.failure.borrow_mut().get_or_insert(e);
        RegistrarError::Unspecified
    }
}

impl Registrar for Gate<'_> {
    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let id = ClientId::new(client_id);
        let app = self
            .snapshot
            .applications
            .get(&id)
            .filter(|a| a.environment == self.env);
        let cert_ok = self
            .snapshot
            .certificates
            .get(self.thumbprint)
            .is_some_and(|c| {
                c.client_id == id && c.status == CertStatus::Active && c.environment == self.env
            });
        let pass = passphrase.unwrap_or_default();
        let secret_ok = match self.method {
            AuthMethod::TlsClientAuth => bool::from(pass.ct_eq(self.nonce.as_bytes())),
            _ => std::str::from_utf8(pass)
                .ok()
                .zip(self.snapshot.secrets.get(&id))
                .is_some_and(|(p, digest)| digest.matches(p)),
        };
        if app.is_some() && cert_ok && secret_ok {
            Ok(())
        } else {
            Err(self.fail(TokenError::invalid_client()))
        }
    }

    fn bound_redirect<'a>(&self, bound: ClientUrl<'a>) -> Result<BoundClient<'a>, RegistrarError> {
        let app = self
            .snapshot
            .applications
            .get(&ClientId::new(bound.client_id.as_ref()))
            .ok_or_else(|| self.fail(TokenError::invalid_client()))?;
        let partner_active = self
            .snapshot
            .partners
            .get(&app.partner_id)
            .is_some_and(|p| p.status == Status::Active);
        if app.status != Status::Active || !partner_active {
            return Err(self.fail(TokenError::new(
                "unauthorized_client",
                "the application or its partner is suspended",
            )));
        }
        let today = time::OffsetDateTime::now_utc().date();
        if today < app.valid_from || today > app.valid_until {
            return Err(self.fail(TokenError::new(
                "unauthorized_client",
                format!(
                    "the application is valid from {} to {}",
                    app.valid_from, app.valid_until
                ),
            )));
        }
        // Client credentials has no redirect; oxide-auth's types want one.
        let placeholder = url::Url::parse("https://localhost/")
            .map_err(|_| self.fail(TokenError::invalid_request("internal URL error")))?;
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Semantic(placeholder)),
        })
    }

    fn negotiate(
        &self,
        client: BoundClient,
        scope: Option<OxideScope>,
    ) -> Result<PreGrant, RegistrarError> {
        let app = self
            .snapshot
            .applications
            .get(&ClientId::new(client.client_id.as_ref()))
            .ok_or_else(|| self.fail(TokenError::invalid_client()))?;
        let granted: Vec<&str> = app.grants.iter().map(|g| g.scope.as_str()).collect();
        let requested: Vec<String> = match &scope {
            None => granted.iter().map(|s| (*s).to_owned()).collect(),
            Some(s) => s.iter().map(str::to_owned).collect(),
        };
        if requested.is_empty() {
            return Err(self.fail(TokenError::new(
                "invalid_scope",
                "no scope is granted to this client",
            )));
        }
        if let Some(bad) = requested.iter().find(|r| !granted.contains(&r.as_str())) {
            let why = match Scope::parse(bad) {
                Ok(_) => format!("scope {bad} is not granted to this client"),
                Err(_) => format!("unknown scope {bad}"),
            };
            return Err(self.fail(TokenError::new("invalid_scope", why)));
        }
        let scope = requested
            .join(" ")
            .parse()
            .map_err(|_| self.fail(TokenError::new("invalid_scope", "malformed scope")))?;
        Ok(PreGrant {
            client_id: client.client_id.into_owned(),
            redirect_uri: client.redirect_uri.into_owned(),
            scope,
        })
    }
}

/// The issuer of one token request: signs the JWT.
struct Minter<'a> {
    authority: &'a TokenAuthority,
    thumbprint: &'a Thumbprint,
    now: i64,
    minted: Option<(String, AccessClaims)>,
}

impl Issuer for Minter<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let scope = grant.scope.iter().collect::<Vec<_>>().join(" ");
        let (token, claims) = self
            .authority
            .mint(&grant.client_id, &scope, self.thumbprint, self.now)
            .map_err(|e| tracing::error!(error = %e, "token signing failed"))?;
        self.minted = Some((token.clone(), claims));
        Ok(IssuedToken {
            token,
            refresh: None,
            until: chrono::Utc::now() + chrono::Duration::seconds(self.authority.lifetime_secs),
            token_type: TokenType::Bearer,
        })
    }

    fn refresh(&mut self, _: &str, _: Grant) -> Result<RefreshedToken, ()> {
        Err(())
    }

    fn recover_token<'t>(&'t self, _: &'t str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }

    fn recover_refresh<'t>(&'t self, _: &'t str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }
}

/// No resource owner in client credentials: the client acts for itself.
struct Solicitor;

impl OwnerSolicitor<OxideRequest> for Solicitor {
    fn check_consent(
        &mut self,
        _: &mut OxideRequest,
        s: Solicitation,
    ) -> OwnerConsent<OxideResponse> {
        OwnerConsent::Authorized(s.pre_grant().client_id.clone())
    }
}

struct OxideEndpoint<'a> {
    gate: Gate<'a>,
    minter: Minter<'a>,
    solicitor: Solicitor,
}

/// A flow failure (oxide-auth's own error kinds).
#[derive(Debug)]
struct FlowFailure;

impl Endpoint<OxideRequest> for &mut OxideEndpoint<'_> {
    type Error = FlowFailure;

    fn registrar(&self) -> Option<&dyn Registrar> {
        Some(&self.gate)
    }
    fn authorizer_mut(
        &mut self,
    ) -> Option<&mut dyn oxide_auth::primitives::authorizer::Authorizer> {
        None
    }
    fn issuer_mut(&mut self) -> Option<&mut dyn Issuer> {
        Some(&mut self.minter)
    }
    fn owner_solicitor(&mut self) -> Option<&mut dyn OwnerSolicitor<OxideRequest>> {
        Some(&mut self.solicitor)
    }
    fn scopes(&mut self) -> Option<&mut dyn Scopes<OxideRequest>> {
        None
    }
    fn response(
        &mut self,
        _: &mut OxideRequest,
        _: Template,
    ) -> Result<OxideResponse, FlowFailure> {
        Ok(OxideResponse::default())
    }
    fn error(&mut self, _: OxideError) -> FlowFailure {
        FlowFailure
    }
    fn web_error(&mut self, e: FlowFailure) -> FlowFailure {
        e
    }
}

struct OxideRequest {
    body: NormalizedParameter,
    authorization: Option<String>,
}

impl WebRequest for OxideRequest {
    type Error = FlowFailure;
    type Response = OxideResponse;

    fn query(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, FlowFailure> {
        Ok(Cow::Owned(NormalizedParameter::new()))
    }
    fn urlbody(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, FlowFailure> {
        Ok(Cow::Borrowed(&self.body))
    }
    fn authheader(&mut self) -> Result<Option<Cow<'_, str>>, FlowFailure> {
        Ok(self.authorization.as_deref().map(Cow::Borrowed))
    }
}

#[derive(Default)]
struct OxideResponse {
    status: StatusCode,
    body: Option<String>,
}

impl WebResponse for OxideResponse {
    type Error = FlowFailure;

    fn ok(&mut self) -> Result<(), FlowFailure> {
        self.status = StatusCode::OK;
        Ok(())
    }
    fn redirect(&mut self, _: url::Url) -> Result<(), FlowFailure> {
        Err(FlowFailure)
    }
    fn client_error(&mut self) -> Result<(), FlowFailure> {
        self.status = StatusCode::BAD_REQUEST;
        Ok(())
    }
    fn unauthorized(&mut self, _: &str) -> Result<(), FlowFailure> {
        self.status = StatusCode::UNAUTHORIZED;
        Ok(())
    }
    fn body_text(&mut self, text: &str) -> Result<(), FlowFailure> {
        self.body = Some(text.to_owned());
        Ok(())
    }
    fn body_json(&mut self, data: &str) -> Result<(), FlowFailure> {
        self.body = Some(data.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
