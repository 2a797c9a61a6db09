//! The control chain of docs/contract.md §2, one module per control in chain order:
//! availability (maintenance, kill switch), then certificate, ip, token,
//! identity, rights, quota. A control returns the facts it established or a
//! [`Denial`] from the catalogue (`catalogue.rs`); `render.rs` is the one
//! place a denial becomes an HTTP response.
//!
//! The chain sees a narrow [`Context`] (the registry snapshot, the token
//! authority, the deny-list, the quotas, the availability switch and the
//! clock), built once per request: a control can only touch what is there.
//! What the chain learns about the caller (the application and partner once
//! step 1 identified them, the quota state) is written into the request's
//! [`Outcome`], which the response, the trace and the metrics read.

pub mod availability;
mod catalogue;
pub mod certificate;
pub mod hygiene;
pub mod identity;
pub mod ip;
pub mod quota;
mod render;
pub mod rights;
pub mod token;

pub use catalogue::{Control, Denial, Reason};
pub use render::{accepts_problem_json, rate_limit_headers, render};

use crate::availability::Availability;
use crate::domain::{Environment, Scope};
use crate::oauth::{AccessClaims, DenyList, TokenAuthority};
use crate::quota::{Decision, Quotas};
use crate::registry::admission::Refusal;
use crate::registry::{Application, Snapshot};
use crate::tls::ConnInfo;
use hyper::HeaderMap;
use time::OffsetDateTime;

/// Everything the controls may read, for one request on one environment.
#[derive(Clone, Copy)]
pub struct Context<'s> {
    /// The listener's environment.
    pub env: Environment,
    /// The registry as of this request.
    pub snapshot: &'s Snapshot,
    /// This environment's token issuer (step 3).
    pub authority: &'s TokenAuthority,
    /// Revoked tokens (step 3).
    pub denylist: &'s DenyList,
    /// Per-application call logs (step 6).
    pub quotas: &'s Quotas,
    /// Maintenance and kill switch (before step 1).
    pub availability: &'s Availability,
    /// The request's arrival time.
    pub now: OffsetDateTime,
}

/// What a caller presents: the connection's facts and the request head.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'r> {
    /// The connection (client certificate, peer address).
    pub conn: &'r ConnInfo,
    /// Request headers (Authorization).
    pub headers: &'r HeaderMap,
    /// Raw query string (to refuse tokens there).
    pub query: Option<&'r str>,
}

/// What is known of a request when it is answered: filled in by the chain
/// as it goes, read by the response (RateLimit headers), the trace and the
/// metrics. The refusal itself, if any, is the `Err` of the pipeline.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome<'s> {
    /// The caller's application, once step 1 identified it (its partner
    /// is `partner_id`).
    pub caller: Option<&'s Application>,
    /// The quota state after counting this call (set by step 6).
    pub quota: Option<Decision>,
    /// Step 6 ran but its backend could not decide (Redis away): there is
    /// no quota state to show, and none is asked for again.
    pub quota_unknown: bool,
}

impl Outcome<'_> {
    /// The quota state for the RateLimit headers: counted if step 6 ran,
    /// else read without counting once the caller is known (with the Redis
    /// backend, one more round trip, only for calls refused before step 6;
    /// none if it fails).
    pub async fn quota_state(&self, quotas: &Quotas, env: Environment) -> Option<Decision> {
        if self.quota.is_some() || self.quota_unknown {
            return self.quota;
        }
        let a = self.caller?;
        quotas
            .peek(env, &a.client_id, a.quota_per_minute)
            .await
            .ok()
    }
}

/// A caller established by steps 1–4.
#[derive(Debug)]
pub struct Authenticated<'s> {
    /// The caller's application.
    pub application: &'s Application,
    /// The verified token.
    pub claims: AccessClaims,
    /// What the admission policy found against the application that step
    /// 5 reports (its validity dates), if anything.
    pub admission: Result<(), Refusal<'s>>,
}

/// Steps 1–4: who is calling (certificate, ip, token, identity). Records
/// the application in `out` as soon as step 1 identified it.
pub fn authenticate<'s>(
    cx: &Context<'s>,
    presented: &Credentials<'_>,
    out: &mut Outcome<'s>,
) -> Result<Authenticated<'s>, Denial> {
    let certified = certificate::check(cx, presented.conn)?;
    let application = certified.application;
    out.caller = Some(application);
    ip::check(presented.conn.remote.ip(), &certified)?;
    let now = cx.now.unix_timestamp();
    let claims = token::check(
        presented.headers,
        presented.query,
        cx.authority,
        cx.denylist,
        now,
    )?;
    identity::check(&claims, &certified)?;
    Ok(Authenticated {
        application,
        claims,
        admission: certified.admission,
    })
}

/// Steps 5–6 for an authenticated caller: rights for `scope` and `year`,
/// then the quota (only a call that passed 1–5 is counted).
pub async fn authorize<'s>(
    cx: &Context<'s>,
    who: &Authenticated<'s>,
    (scope, year): (Scope, i32),
    out: &mut Outcome<'s>,
) -> Result<(), Denial> {
    rights::check(who, scope, year, cx.now.date())?;
    let (verdict, decision) = quota::check(cx.quotas, cx.env, who.application).await;
    out.quota = decision;
    out.quota_unknown = decision.is_none();
    verdict
}
