//! The control chain of DESIGN §2, one module per control in chain order,
//! and the catalogue of denials of DESIGN §5. A control returns the facts it
//! established or a [`Denial`]; `render.rs` is the one place a denial
//! becomes an HTTP response.

pub mod certificate;
pub mod hygiene;
pub mod identity;
pub mod ip;
pub mod quota;
mod render;
pub mod rights;
pub mod token;

pub use render::{accepts_problem_json, rate_limit_headers, render};

use crate::app::App;
use crate::domain::{Environment, Scope};
use crate::oauth::AccessClaims;
use crate::quota::Decision;
use crate::registry::{Application, Snapshot};
use crate::tls::ConnInfo;
use hyper::{HeaderMap, StatusCode};
use time::OffsetDateTime;

/// A data request, after hygiene: what the chain judges.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The connection's facts.
    pub conn: &'a ConnInfo,
    /// The listener's environment.
    pub env: Environment,
    /// Request headers (Authorization).
    pub headers: &'a HeaderMap,
    /// Raw query string (to refuse tokens there).
    pub query: Option<&'a str>,
    /// The scope the dataset needs.
    pub scope: Scope,
    /// The requested fiscal year.
    pub year: i32,
}

/// A caller established by steps 1–4.
#[derive(Debug)]
pub struct Authenticated<'s> {
    /// The caller's application.
    pub application: &'s Application,
    /// The verified token.
    pub claims: AccessClaims,
}

/// A request that passed every control.
#[derive(Debug)]
pub struct Admitted<'s> {
    /// The caller's application.
    pub application: &'s Application,
    /// The verified token.
    pub claims: AccessClaims,
    /// The quota state after counting this call.
    pub quota: Decision,
}

/// A refused request: the earliest failing control, and the quota state
/// when the application is known (for the RateLimit headers).
#[derive(Debug)]
pub struct Refused {
    /// Why.
    pub denial: Denial,
    /// Quota state (not counted), once step 1 identified the application.
    pub quota: Option<Decision>,
}

/// Runs the whole chain in its contractual order: certificate, ip, token,
/// identity, rights, quota. The first refusal wins; only a call that passed
/// 1–5 is counted by the quota.
pub fn run<'s>(
    app: &App,
    snapshot: &'s Snapshot,
    call: &Call<'_>,
    now: OffsetDateTime,
) -> Result<Admitted<'s>, Refused> {
    let who = authenticate(app, snapshot, call, now)?;
    authorize(app, who, call, now)
}

/// Steps 1–4: who is calling (certificate, ip, token, identity).
pub fn authenticate<'s>(
    app: &App,
    snapshot: &'s Snapshot,
    call: &Call<'_>,
    now: OffsetDateTime,
) -> Result<Authenticated<'s>, Refused> {
    let certified =
        certificate::check(call.conn, call.env, snapshot).map_err(|denial| Refused {
            denial,
            quota: None,
        })?;
    let application = certified.application;
    let refuse = |denial| refused(app, call.env, application, denial);
    ip::check(call.conn.remote.ip(), application).map_err(refuse)?;
    let authority = app.oauth.authority(call.env);
    let now_secs = now.unix_timestamp();
    let claims = token::check(
        call.headers,
        call.query,
        authority,
        &app.oauth.denylist,
        now_secs,
    )
    .map_err(refuse)?;
    identity::check(&claims, &certified, snapshot).map_err(refuse)?;
    Ok(Authenticated {
        application,
        claims,
    })
}

/// Steps 5–6 for an authenticated caller: rights for `call.scope` and
/// `call.year`, then the quota.
pub fn authorize<'s>(
    app: &App,
    who: Authenticated<'s>,
    call: &Call<'_>,
    now: OffsetDateTime,
) -> Result<Admitted<'s>, Refused> {
    let Authenticated {
        application,
        claims,
    } = who;
    rights::check(&claims, application, call.scope, call.year, now.date())
        .map_err(|d| refused(app, call.env, application, d))?;
    let quota =
        quota::check(&app.quotas, call.env, application).map_err(|(denial, decision)| Refused {
            denial,
            quota: Some(decision),
        })?;
    Ok(Admitted {
        application,
        claims,
        quota,
    })
}

/// A refusal after step 1, with the (uncounted) quota state.
pub fn refused(app: &App, env: Environment, application: &Application, denial: Denial) -> Refused {
    let quota = app
        .quotas
        .peek(env, &application.client_id, application.quota_per_minute);
    Refused {
        denial,
        quota: Some(quota),
    }
}

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
    /// The data source's own answer (unknown company, no data).
    Data,
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
    /// 910604: no such route.
    NoRoute,
    /// 910003: a request body that does not match its schema.
    BodyInvalid,
    /// 910004: an Idempotency-Key reused with another body.
    IdempotencyConflict,
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
    /// Every row of the catalogue, in code order of DESIGN §5.
    pub const ALL: [Reason; 27] = [
        Reason::CorrelationId,
        Reason::SirenMalformed,
        Reason::AnneeMalformed,
        Reason::BodyInvalid,
        Reason::IdempotencyConflict,
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
}

/// A refusal as a value: which catalogue row, and why (STYLE §3).
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
