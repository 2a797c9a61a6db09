//! The control chain of DESIGN §2, one module per control in chain order,
//! and the catalogue of denials of DESIGN §5. A control returns the facts it
//! established or a [`Denial`]; `render.rs` is the one place a denial
//! becomes an HTTP response.

pub mod certificate;
pub mod hygiene;
mod render;
pub mod token;

pub use render::{accepts_problem_json, render};

use hyper::StatusCode;

/// The control that refused a request (the `control` field of errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Request hygiene, before the chain.
    Hygiene,
    /// Step 1.
    Certificate,
    /// Step 2.
    Ip,
    /// Step 3.
    Token,
    /// Step 4.
    Identity,
    /// Step 5.
    Rights,
    /// Step 6.
    Quota,
    /// Service availability (maintenance, upstream).
    Service,
}

impl Control {
    /// The name used in error bodies and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Hygiene => "hygiene",
            Control::Certificate => "certificate",
            Control::Ip => "ip",
            Control::Token => "token",
            Control::Identity => "identity",
            Control::Rights => "rights",
            Control::Quota => "quota",
            Control::Service => "service",
        }
    }
}

/// Every cause of refusal, one per row of the DESIGN §5 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 910000
    CorrelationId,
    /// 910001
    SirenMalformed,
    /// 910002
    AnneeMalformed,
    /// 910100
    CertMissing,
    /// 910101
    CertUntrusted,
    /// 910102
    CertRevoked,
    /// 910103
    CertUnregistered,
    /// 910200
    IpNotAllowed,
    /// 900902
    TokenMissing,
    /// 900901
    TokenInvalid,
    /// 910400
    TokenBoundElsewhere,
    /// 910401
    ClientMismatch,
    /// 910402
    Suspended,
    /// 900910
    ScopeNotGranted,
    /// 910500
    YearNotGranted,
    /// 910501
    GrantNotValidToday,
    /// 900804
    OverQuota,
    /// 910600
    Unavailable,
    /// 910601
    UpstreamTimeout,
    /// 910602
    UpstreamFailure,
    /// 910603: a part of the chain not built yet (temporary, never 200).
    NotImplemented,
    /// 910604: no such route.
    NoRoute,
}

impl Reason {
    /// `(control, status, code, title)` of the catalogue.
    fn entry(self) -> (Control, StatusCode, u32, &'static str) {
        use Control as C;
        use StatusCode as S;
        match self {
            Reason::CorrelationId => (
                C::Hygiene,
                S::BAD_REQUEST,
                910000,
                "X-Correlation-ID missing or not a UUID",
            ),
            Reason::SirenMalformed => (C::Hygiene, S::BAD_REQUEST, 910001, "SIREN malformed"),
            Reason::AnneeMalformed => (C::Hygiene, S::BAD_REQUEST, 910002, "annee malformed"),
            Reason::CertMissing => (
                C::Certificate,
                S::UNAUTHORIZED,
                910100,
                "No client certificate",
            ),
            Reason::CertUntrusted => (
                C::Certificate,
                S::UNAUTHORIZED,
                910101,
                "Client certificate not valid",
            ),
            Reason::CertRevoked => (
                C::Certificate,
                S::UNAUTHORIZED,
                910102,
                "Client certificate revoked",
            ),
            Reason::CertUnregistered => (
                C::Certificate,
                S::UNAUTHORIZED,
                910103,
                "Client certificate not registered",
            ),
            Reason::IpNotAllowed => (C::Ip, S::FORBIDDEN, 910200, "Caller address not allowed"),
            Reason::TokenMissing => (C::Token, S::UNAUTHORIZED, 900902, "Missing access token"),
            Reason::TokenInvalid => (C::Token, S::UNAUTHORIZED, 900901, "Invalid access token"),
            Reason::TokenBoundElsewhere => (
                C::Identity,
                S::UNAUTHORIZED,
                910400,
                "Token bound to another certificate",
            ),
            Reason::ClientMismatch => (
                C::Identity,
                S::UNAUTHORIZED,
                910401,
                "Token client is not the certificate's application",
            ),
            Reason::Suspended => (
                C::Identity,
                S::FORBIDDEN,
                910402,
                "Application or partner suspended",
            ),
            Reason::ScopeNotGranted => (C::Rights, S::FORBIDDEN, 900910, "Scope not granted"),
            Reason::YearNotGranted => (C::Rights, S::FORBIDDEN, 910500, "Year not granted"),
            Reason::GrantNotValidToday => {
                (C::Rights, S::FORBIDDEN, 910501, "Grant not valid today")
            }
            Reason::OverQuota => (C::Quota, S::TOO_MANY_REQUESTS, 900804, "Quota exceeded"),
            Reason::Unavailable => (
                C::Service,
                S::SERVICE_UNAVAILABLE,
                910600,
                "Service unavailable",
            ),
            Reason::UpstreamTimeout => (C::Service, S::GATEWAY_TIMEOUT, 910601, "Upstream timeout"),
            Reason::UpstreamFailure => (C::Service, S::BAD_GATEWAY, 910602, "Upstream failure"),
            Reason::NotImplemented => (
                C::Service,
                S::NOT_IMPLEMENTED,
                910603,
                "Not implemented yet",
            ),
            Reason::NoRoute => (C::Service, S::NOT_FOUND, 910604, "No such resource"),
        }
    }

    /// The control this reason belongs to.
    pub fn control(self) -> Control {
        self.entry().0
    }
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        self.entry().1
    }
    /// The numeric error code.
    pub fn code(self) -> u32 {
        self.entry().2
    }
    /// A short, fixed title.
    pub fn title(self) -> &'static str {
        self.entry().3
    }
}

/// A refusal: which row of the catalogue, and the specifics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The catalogue row.
    pub reason: Reason,
    /// What exactly was wrong, for the caller (never a secret).
    pub detail: String,
    /// Seconds to put in `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl Denial {
    /// A denial with a detail message.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Denial {
            reason,
            detail: detail.into(),
            retry_after: None,
        }
    }
}
