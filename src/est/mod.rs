//! Certificate renewal by machine: EST (RFC 7030) on each environment
//! listener (docs/contract.md §12). A partner's cron renews its client
//! certificate before it expires with curl and openssl, without an admin:
//!
//! - `GET /.well-known/est/cacerts` (§4.1): the environment's issuing CA
//!   (the one that signs that environment's partner certificates), base64
//!   PKCS #7 certs-only; no client certificate needed.
//! - `POST /.well-known/est/simplereenroll` (§4.2.2): a base64 PKCS #10
//!   CSR, authenticated by the TLS connection's client certificate, which
//!   must pass step 1 of the chain (presented, trusted, within its dates,
//!   not revoked, registered to an application of this environment) and the
//!   admission policy (address, application and partner active). The CSR
//!   keeps the subject of that certificate (a renewal, not a new identity),
//!   is signed by the code of the admin's `cert issue`, and the new
//!   certificate is registered to the same application within
//!   `[dashboard] max_certificates_per_application`. The old one stays
//!   valid until it expires or is revoked.
//!
//! A refusal of the caller (steps 1, 2, 4) is the chain's [`Denial`],
//! rendered like every refusal of this plane; a refusal of the request
//! itself (media type, CSR, full) is an [`EstError`], RFC 9457
//! problem+json naming the reason.

mod pkcs7;
mod renew;

pub use pkcs7::{Pkcs7Error, certs_only, decode_base64};
pub use renew::{Renewal, caller, simplereenroll};

use crate::chain::Denial;
use crate::domain::Environment;
use crate::pki::PkiError;
use crate::registry::RegistryError;
use crate::respond::{self, Body};
use hyper::{Method, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// `/.well-known/est/cacerts` (RFC 7030 §4.1.2).
pub const CACERTS_PATH: &str = "/.well-known/est/cacerts";
/// `/.well-known/est/simplereenroll` (RFC 7030 §4.2.2).
pub const SIMPLEREENROLL_PATH: &str = "/.well-known/est/simplereenroll";
/// The largest CSR body read: a base64 P-256 or RSA-4096 CSR is 0.5 to
/// 2.5 KiB (the connection's `[limits] max_body_bytes` applies first).
pub const MAX_CSR_BODY: usize = 16 * 1024;

/// The EST operations served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET /.well-known/est/cacerts`.
    CaCerts,
    /// `POST /.well-known/est/simplereenroll`.
    SimpleReenroll,
}

impl Operation {
    /// The operation of a request line, if it is one (another method on
    /// these paths is an unknown route).
    pub fn of(method: &Method, path: &str) -> Option<Operation> {
        match (method, path) {
            (&Method::GET, CACERTS_PATH) => Some(Operation::CaCerts),
            (&Method::POST, SIMPLEREENROLL_PATH) => Some(Operation::SimpleReenroll),
            _ => None,
        }
    }
}

/// What EST runs on besides the registry and the chain.
pub struct Est {
    /// The TLS state in force, whose environment CAs sign renewals.
    pub live: Arc<crate::reload::Live>,
    /// `[dashboard] max_certificates_per_application`.
    pub max_certificates: usize,
}

impl Est {
    /// The issuing CA of `env` in force now.
    pub fn ca(&self, env: Environment) -> Arc<crate::pki::IssuingCa> {
        self.live.trust().env(env).ca.clone()
    }
}

/// Why an EST request (not its caller) was refused.
#[derive(Debug, thiserror::Error)]
pub enum EstError {
    /// The body is not declared as a PKCS #10 request: 415.
    #[error("Content-Type must be application/pkcs10 (RFC 7030 §4.2.1), got {0:?}")]
    MediaType(String),
    /// The body is not base64: 400.
    #[error(transparent)]
    Body(Pkcs7Error),
    /// The CSR is unusable (parse, signature, extensions, empty subject):
    /// 400, the admin's `cert issue` rules.
    #[error("{0}")]
    Csr(#[source] PkiError),
    /// The CSR names another subject than the certificate presented: 400.
    #[error(
        "the CSR's subject \"{requested}\" is not the subject of the certificate presented \
         (\"{presented}\"): simplereenroll renews a certificate under the same subject"
    )]
    SubjectMismatch {
        /// The CSR's subject (RFC 4514).
        requested: String,
        /// The presented certificate's subject (RFC 4514).
        presented: String,
    },
    /// The application holds its maximum of active certificates: 409.
    #[error("{0}")]
    Full(String),
    /// A certificate of ours could not be encoded as PKCS #7: 500.
    #[error("{0}")]
    Encode(#[source] Pkcs7Error),
    /// The certificate could not be built or registered: 503.
    #[error("the new certificate could not be registered: {0}")]
    Storage(String),
}

impl EstError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            EstError::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EstError::Body(_) | EstError::Csr(_) | EstError::SubjectMismatch { .. } => {
                StatusCode::BAD_REQUEST
            }
            EstError::Full(_) => StatusCode::CONFLICT,
            EstError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
            EstError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 9457 `type` slug.
    fn kind(&self) -> &'static str {
        match self {
            EstError::MediaType(_) => "media-type",
            EstError::Body(_) => "body-not-base64",
            EstError::Csr(_) => "csr-refused",
            EstError::SubjectMismatch { .. } => "subject-mismatch",
            EstError::Full(_) => "certificate-limit",
            EstError::Encode(_) => "encoding",
            EstError::Storage(_) => "storage",
        }
    }

    /// The problem+json answer, echoing `correlation_id`.
    pub fn into_response(self, correlation_id: &str) -> Response<Body> {
        let status = self.status();
        let body = json!({
            "type": format!("urn:opale:est:{}", self.kind()),
            "title": status.canonical_reason().unwrap_or("Refused"),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "correlation_id": correlation_id,
        });
        respond::json_typed(status, "application/problem+json", &body)
    }
}

impl From<RegistryError> for EstError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Conflict { message, .. } => EstError::Full(message),
            other => EstError::Storage(other.to_string()),
        }
    }
}

/// An EST refusal: of the caller (the chain's catalogue) or of the request.
#[derive(Debug)]
pub enum Refused {
    /// The caller is not admitted (401/403, the plane's usual shape).
    Caller(Denial),
    /// The request is refused (415, 400, 409, 503).
    Request(EstError),
}

impl From<EstError> for Refused {
    fn from(e: EstError) -> Self {
        Refused::Request(e)
    }
}

impl From<Denial> for Refused {
    fn from(d: Denial) -> Self {
        Refused::Caller(d)
    }
}

/// `GET /.well-known/est/cacerts`: the environment's issuing CA.
pub fn cacerts(est: &Est, env: Environment) -> Result<Response<Body>, EstError> {
    let ca = est.ca(env);
    let body = certs_only(ca.certificate()).map_err(EstError::Encode)?;
    Ok(respond::bytes(
        StatusCode::OK,
        "application/pkcs7-mime",
        body,
    ))
}
