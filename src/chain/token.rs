//! Step 3 — token: an `Authorization: Bearer` access token (never in the
//! query string) of this environment's issuer, with a valid signature, not
//! expired and not revoked. Pure: token, public key, deny-list, clock.

use super::{Denial, Reason};
use crate::oauth::{AccessClaims, DenyList, TokenAuthority};
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

/// Runs step 3; `query` is the request's query string.
pub fn check(
    headers: &HeaderMap,
    query: Option<&str>,
    authority: &TokenAuthority,
    denylist: &DenyList,
    now: i64,
) -> Result<AccessClaims, Denial> {
    let in_query = query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
    });
    if in_query {
        return Err(Denial::new(
            Reason::TokenMissing,
            "access tokens are refused in the query string; send Authorization: Bearer",
        ));
    }
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        Denial::new(
            Reason::TokenMissing,
            "the Authorization: Bearer header is required",
        )
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Denial::new(
                Reason::TokenMissing,
                "the Authorization header is not Bearer",
            )
        })?;
    authority
        .verify(token, denylist, now)
        .map_err(|e| Denial::new(Reason::TokenInvalid, e.to_string()))
}
