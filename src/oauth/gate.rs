//! The two primitives we hand oxide-auth's client-credentials flow: the
//! registrar (`Gate`: authenticates the client, binds it, negotiates the
//! scope) and the issuer (`Minter`: signs the RFC 9068 JWT). oxide-auth's
//! traits are synchronous, so the gate reads the registry snapshot taken
//! when the request arrived.
//!
//! The policy itself is pure functions of the snapshot — whether the
//! certificate's holder may be served (the admission policy shared with
//! the chain and the dashboard, `registry::admission`, through
//! [`Gate::admission`]) and [`grant_scope`] — so that the flow can explain
//! a refusal oxide-auth reports only as a silent denial (see
//! `explain_denial` in `flow.rs`).

use super::TokenAuthority;
use super::code::ErrorCode;
use super::flow::{AuthMethod, TokenError};
use super::jwt::AccessClaims;
use crate::domain::{ClientId, Environment, Scope, Thumbprint};
use crate::registry::admission::{self, Admitted, Call, Purpose, Refusal};
use crate::registry::{Application, Snapshot};
use oxide_auth::primitives::grant::Grant;
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};
use oxide_auth::primitives::scope::Scope as OxideScope;
use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

/// The registrar of one token request.
pub(super) struct Gate<'a> {
    /// The registry when the request arrived.
    pub snapshot: &'a Snapshot,
    /// The listener's environment.
    pub env: Environment,
    /// The connection's (verified) client certificate.
    pub thumbprint: &'a Thumbprint,
    /// How the client authenticates (decided from the request's shape).
    pub method: AuthMethod,
    /// The connection's peer address (checked against the allowlist).
    pub remote: IpAddr,
}

impl<'a> Gate<'a> {
    /// Whether the holder of the connection's certificate may be served
    /// now, as a call on this environment from the connection's address
    /// (docs/contract.md §3: status, validity dates, IP allowlist).
    pub(super) fn admission(&self) -> Result<Admitted<'a>, Refusal<'a>> {
        let call = Call {
            environment: self.env,
            address: self.remote,
            today: time::OffsetDateTime::now_utc().date(),
        };
        admission::admit(self.snapshot, self.thumbprint, Purpose::Call(call))
    }

    /// Whether `pass` proves the client's identity, besides the certificate.
    /// Both ids and secrets arrive decoded (`flow.rs` decodes HTTP Basic).
    fn passphrase_ok(&self, id: &ClientId, pass: &[u8]) -> bool {
        match self.method {
            // The flow was handed the certificate's thumbprint (flow.rs,
            // `tls_client_auth_credentials`): the certificate is the credential.
            AuthMethod::TlsClientAuth => {
                bool::from(pass.ct_eq(self.thumbprint.as_str().as_bytes()))
            }
            AuthMethod::SecretBasic | AuthMethod::SecretPost => std::str::from_utf8(pass)
                .ok()
                .zip(self.snapshot.secrets.get(id))
                .is_some_and(|(p, digest)| digest.matches(p)),
        }
    }
}

impl Registrar for Gate<'_> {
    /// Client authentication (RFC 8705 §2): the connection's certificate
    /// active and registered to this client, an application of this
    /// environment (admission's conditions up to the holder), and the
    /// secret (or, for `tls_client_auth`, the certificate). Whether the
    /// client may be served now is for [`Self::bound_redirect`].
    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let id = ClientId::new(client_id);
        let holder = match self.admission() {
            Ok(admitted) => Some(admitted.holder),
            Err(refusal) => refusal.holder(),
        };
        let cert_ok = holder.is_some_and(|h| h.certificate.client_id == id);
        let pass_ok = self.passphrase_ok(&id, passphrase.unwrap_or_default());
        if cert_ok && pass_ok {
            Ok(())
        } else {
            Err(RegistrarError::Unspecified)
        }
    }

    fn bound_redirect<'a>(&self, bound: ClientUrl<'a>) -> Result<BoundClient<'a>, RegistrarError> {
        let id = ClientId::new(bound.client_id.as_ref());
        self.admission()
            .ok()
            .filter(|admitted| admitted.holder.certificate.client_id == id)
            .ok_or(RegistrarError::Unspecified)?;
        // Client credentials has no redirect; oxide-auth's types want one.
        let placeholder =
            url::Url::parse("https://localhost/").map_err(|_| RegistrarError::PrimitiveError)?;
        Ok(BoundClient {
            client_id: Cow::Owned(id.to_string()),
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
            .ok_or(RegistrarError::Unspecified)?;
        let requested = scope.as_ref().map(|s| s.iter().collect::<Vec<_>>());
        let scope = grant_scope(app, requested.as_deref())
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(RegistrarError::Unspecified)?;
        Ok(PreGrant {
            client_id: client.client_id.into_owned(),
            redirect_uri: client.redirect_uri.into_owned(),
            scope,
        })
    }
}

/// The RFC 6749 §5.2 answer to an admission refusal (docs/contract.md
/// §3): a certificate that names no client of this environment fails
/// client authentication (`invalid_client`, one text for every cause: no
/// oracle); a client that may not be served now is `unauthorized_client`,
/// saying why.
pub(super) fn refused(refusal: Refusal<'_>, remote: IpAddr) -> TokenError {
    let unauthorized = |why: String| TokenError::new(ErrorCode::UnauthorizedClient, why);
    match refusal {
        Refusal::AddressNotAllowed(holder) => {
            unauthorized(crate::chain::ip::not_declared(remote, holder.application).detail)
        }
        Refusal::ApplicationSuspended(_) | Refusal::PartnerSuspended(_) => {
            unauthorized("the application or its partner is suspended".into())
        }
        Refusal::OutsideValidity(holder) => unauthorized(format!(
            "the application is valid from {} to {}",
            holder.application.valid_from, holder.application.valid_until
        )),
        Refusal::NotRegistered
        | Refusal::CertificateRevoked
        | Refusal::CertificateOutOfDates
        | Refusal::NoApplication => TokenError::invalid_client(),
    }
}

/// The scope to put in the token (space-separated): the requested scopes if
/// all are granted to `app`, every granted scope when none is requested
/// (`invalid_scope` otherwise).
pub(super) fn grant_scope(
    app: &Application,
    requested: Option<&[&str]>,
) -> Result<String, TokenError> {
    let granted: Vec<&str> = app.grants.iter().map(|g| g.scope.as_str()).collect();
    let requested = requested.unwrap_or(&granted);
    if requested.is_empty() {
        return Err(TokenError::new(
            ErrorCode::InvalidScope,
            "no scope is granted to this client",
        ));
    }
    if let Some(bad) = requested.iter().find(|r| !granted.contains(r)) {
        let why = match Scope::parse(bad) {
            Ok(_) => format!("scope {bad} is not granted to this client"),
            Err(_) => format!("unknown scope {bad}"),
        };
        return Err(TokenError::new(ErrorCode::InvalidScope, why));
    }
    Ok(requested.join(" "))
}

/// The issuer of one token request: signs the JWT and keeps what it
/// signed, since we write the RFC 6749 §5.1 response ourselves.
pub(super) struct Minter<'a> {
    /// This environment's issuer.
    pub authority: &'a TokenAuthority,
    /// The certificate the token is bound to (RFC 8705 §3).
    pub thumbprint: &'a Thumbprint,
    /// Seconds since the epoch.
    pub now: i64,
    /// The signed token and its claims, once issued.
    pub minted: Option<(String, AccessClaims)>,
}

impl Issuer for Minter<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let scope = grant.scope.iter().collect::<Vec<_>>().join(" ");
        let (token, claims) = self
            .authority
            .mint(&grant.client_id, &scope, self.thumbprint, self.now)
            .map_err(|e| tracing::error!(error = %e, "token signing failed"))?;
        self.minted = Some((token.clone(), claims));
        let lifetime = Duration::from_secs(self.authority.lifetime_secs.unsigned_abs());
        Ok(IssuedToken {
            token,
            refresh: None,
            until: (SystemTime::now() + lifetime).into(),
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
