//! The catalogue of docs/contract.md §5: which control refused a request
//! ([`Control`]), every cause of refusal with its status and code
//! ([`Reason`]), and a refusal's specifics ([`Denial`]). The trace, the
//! metrics, the dashboards and the renderings all read these; nothing else
//! spells a control or a code. (A data table, hence the length.)

use hyper::StatusCode;

/// The control that refused a request (the `control` field of errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// The data source's own answer (unknown company, no data).
    Data,
    /// The token endpoint refused (an RFC 6749 §5.2 error).
    TokenEndpoint,
    /// The admin plane refused (not an admin, bad input).
    Admin,
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
            Control::Data => "data",
            Control::TokenEndpoint => "token_endpoint",
            Control::Admin => "admin",
        }
    }

    /// Every control, in chain order, then the others.
    pub const ALL: [Control; 11] = [
        Control::Hygiene,
        Control::Certificate,
        Control::Ip,
        Control::Token,
        Control::Identity,
        Control::Rights,
        Control::Quota,
        Control::Service,
        Control::Data,
        Control::TokenEndpoint,
        Control::Admin,
    ];

    /// The control named `name` (as in error bodies and traces).
    pub fn parse(name: &str) -> Option<Control> {
        Control::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::domain::serde_as_name!(Control, "control");

/// Every cause of refusal, one per row of the docs/contract.md §5 table.
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
    /// 910604: no such route.
    NoRoute,
    /// 910003: a request body that does not match its schema.
    BodyInvalid,
    /// 910004: an Idempotency-Key reused with another body.
    IdempotencyConflict,
    /// 910005: a request body over `limits.max_body_bytes` (413).
    BodyTooLarge,
    /// 910006: a request body not complete within
    /// `limits.body_read_timeout_ms` (408; the connection is closed).
    BodyTimeout,
    /// 910007: too many refusals from this address this minute on
    /// connections without a verified client certificate
    /// (`limits.unauthenticated_per_minute`, 429).
    TooManyUnidentified,
    /// 910605: the gateway's own storage failed.
    StorageFailure,
    /// 910700: no company with that SIREN.
    UnknownCompany,
    /// 910701: no data for that year.
    NoDataForYear,
    /// 910702: the company is not diffusible.
    NonDiffusible,
}

impl Reason {
    /// Every row of the catalogue, in code order of docs/contract.md §5.
    pub const ALL: [Reason; 30] = [
        Reason::CorrelationId,
        Reason::SirenMalformed,
        Reason::AnneeMalformed,
        Reason::BodyInvalid,
        Reason::IdempotencyConflict,
        Reason::BodyTooLarge,
        Reason::BodyTimeout,
        Reason::TooManyUnidentified,
        Reason::CertMissing,
        Reason::CertUntrusted,
        Reason::CertRevoked,
        Reason::CertUnregistered,
        Reason::IpNotAllowed,
        Reason::TokenMissing,
        Reason::TokenInvalid,
        Reason::TokenBoundElsewhere,
        Reason::ClientMismatch,
        Reason::Suspended,
        Reason::ScopeNotGranted,
        Reason::YearNotGranted,
        Reason::GrantNotValidToday,
        Reason::OverQuota,
        Reason::Unavailable,
        Reason::UpstreamTimeout,
        Reason::UpstreamFailure,
        Reason::NoRoute,
        Reason::StorageFailure,
        Reason::UnknownCompany,
        Reason::NoDataForYear,
        Reason::NonDiffusible,
    ];

    /// The catalogue row of a numeric code such as `910500`.
    pub fn from_code(code: u32) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

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
            Reason::NoRoute => (C::Service, S::NOT_FOUND, 910604, "No such resource"),
            Reason::BodyInvalid => (C::Hygiene, S::BAD_REQUEST, 910003, "Request body invalid"),
            Reason::BodyTooLarge => (
                C::Hygiene,
                S::PAYLOAD_TOO_LARGE,
                910005,
                "Request body too large",
            ),
            Reason::BodyTimeout => (
                C::Hygiene,
                S::REQUEST_TIMEOUT,
                910006,
                "Request body too slow",
            ),
            Reason::TooManyUnidentified => (
                C::Hygiene,
                S::TOO_MANY_REQUESTS,
                910007,
                "Too many unauthenticated requests",
            ),
            Reason::IdempotencyConflict => {
                (C::Hygiene, S::CONFLICT, 910004, "Idempotency-Key reused")
            }
            Reason::StorageFailure => (
                C::Service,
                S::SERVICE_UNAVAILABLE,
                910605,
                "Storage unavailable",
            ),
            Reason::UnknownCompany => (C::Data, S::NOT_FOUND, 910700, "Unknown company"),
            Reason::NoDataForYear => (C::Data, S::NOT_FOUND, 910701, "No data for that year"),
            Reason::NonDiffusible => (C::Data, S::FORBIDDEN, 910702, "Company not diffusible"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_to_its_reason() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
        assert_eq!(Reason::from_code(123), None);
    }

    #[test]
    fn every_control_parses_back() {
        for c in Control::ALL {
            assert_eq!(Control::parse(c.as_str()), Some(c));
        }
        assert_eq!(Control::parse("nope"), None);
    }
}
