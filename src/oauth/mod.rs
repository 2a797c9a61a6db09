//! The authorization server of each environment (docs/contract.md §3): the token
//! endpoint (RFC 6749 §4.4 client credentials with RFC 8705 certificate
//! binding), RFC 9068 JWT access tokens, RFC 8414 metadata, and the
//! deny-list behind revocation (RFC 7009) and introspection (RFC 7662).
//!
//! oxide-auth drives the grant flow (`flow.rs`; its adapter in `oxide.rs`,
//! our registrar and issuer in `gate.rs`), behind our own types;
//! see `docs/oauth.md` for what it does for us and what we do around it.

mod code;
mod denylist;
mod flow;
mod form;
mod gate;
mod jwt;
mod keys;
mod metadata;
mod oxide;

pub use code::ErrorCode;
pub use denylist::DenyList;
pub use flow::{TokenContext, TokenOutcome, token_endpoint};
pub use form::{FormError, MAX_FORM_BODY, parse_form};
pub use jwt::{AccessClaims, Confirmation, TokenAuthority, TokenRejection};
pub use keys::{KeyRecord, Keyring, PublicKey, SigningKey};
pub use metadata::{jwks, metadata};

/// Failures of the authorization server's own machinery (not client errors).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The signing key file.
    #[error("signing key {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Signing a token failed.
    #[error("cannot sign the access token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// No random token id could be drawn.
    #[error(transparent)]
    Random(#[from] crate::domain::RandomError),
    /// The deny-list store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Seconds since the Unix epoch, the unit of JWT time claims.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

use crate::domain::Environment;

/// The authorization servers of both environments, the cluster's signing
/// keys and the shared deny-list.
pub struct Oauth {
    /// Sandbox issuer.
    pub sandbox: TokenAuthority,
    /// Production issuer.
    pub production: TokenAuthority,
    /// Revoked tokens and certificates (shared with the cluster reloader).
    pub denylist: std::sync::Arc<DenyList>,
    /// The signing keys of every node (shared with both authorities and
    /// the cluster reloader).
    pub keys: std::sync::Arc<Keyring>,
}

impl Oauth {
    /// The authority of `environment`.
    pub fn authority(&self, environment: Environment) -> &TokenAuthority {
        match environment {
            Environment::Sandbox => &self.sandbox,
            Environment::Production => &self.production,
        }
    }

    /// The environment whose key signed `token` and whose issuer it names,
    /// with its claims (time not checked, but for the key's retirement at
    /// `now`).
    pub fn identify(&self, token: &str, now: i64) -> Option<(&TokenAuthority, AccessClaims)> {
        Environment::ALL.into_iter().find_map(|env| {
            let authority = self.authority(env);
            authority
                .decode_signed(token, now)
                .ok()
                .map(|c| (authority, c))
        })
    }
}
