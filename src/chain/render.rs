//! The single mapping from a [`Denial`] to an HTTP response (docs/contract.md §5):
//! RFC 9457 `application/problem+json` when the client asks for it, else the
//! DGFIP envelope `{"erreur":{"code","message","horodatage"}}`.

use super::{Control, Denial};
use crate::quota::{Decision, WINDOW};
use crate::respond::{Body, json_typed};
use hyper::header::{ACCEPT, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Response};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Whether the `Accept` header names `application/problem+json`.
pub fn accepts_problem_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/problem+json"))
        })
}

/// Sets `RateLimit-Policy` and `RateLimit`
/// (draft-ietf-httpapi-ratelimit-headers-11) from a quota decision.
pub fn rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    let policy = format!("\"default\";q={};w={}", d.limit, WINDOW.as_secs());
    let state = format!("\"default\";r={};t={}", d.remaining, d.reset_secs);
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

/// Renders `denial`; `correlation_id` is echoed in the body and the header.
pub fn render(
    denial: &Denial,
    correlation_id: &str,
    problem_json: bool,
    now: OffsetDateTime,
) -> Response<Body> {
    let r = denial.reason;
    let code = r.code().to_string();
    let mut resp = if problem_json {
        let body = json!({
            "type": format!("urn:opale:erreur:{code}"),
            "title": r.title(),
            "status": r.status().as_u16(),
            "detail": denial.detail,
            "code": code,
            "control": r.control().as_str(),
            "correlation_id": correlation_id,
        });
        json_typed(r.status(), "application/problem+json", &body)
    } else {
        let horodatage = now.format(&Rfc3339).unwrap_or_default();
        let body = json!({
            "erreur": {
                "code": code,
                "message": format!("{}: {}", r.title(), denial.detail),
                "horodatage": horodatage,
            }
        });
        json_typed(r.status(), "application/json", &body)
    };
    let headers = resp.headers_mut();
    if let Some(v) = Some(correlation_id)
        .filter(|id| !id.is_empty())
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        headers.insert(super::hygiene::CORRELATION_HEADER, v);
    }
    if r.control() == Control::Token {
        let challenge = if r == super::Reason::TokenMissing {
            "Bearer"
        } else {
            "Bearer error=\"invalid_token\""
        };
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    if let Some(secs) = denial.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    // A revoked certificate's connection serves nothing more (contract §8).
    if r == super::Reason::CertRevoked {
        resp.extensions_mut()
            .insert(crate::respond::CloseConnection);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::super::Reason;
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(resp: Response<Body>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn both_renderings_carry_the_code() {
        let d = Denial::new(Reason::CertMissing, "none");
        let now = OffsetDateTime::now_utc();
        let p = render(&d, "c-1", true, now);
        assert_eq!(p.status(), 401);
        assert_eq!(p.headers()["content-type"], "application/problem+json");
        assert_eq!(p.headers()["x-correlation-id"], "c-1");
        let v = body_json(p).await;
        assert_eq!(v["code"], "910100");
        assert_eq!(v["control"], "certificate");
        assert_eq!(v["correlation_id"], "c-1");
        let e = body_json(render(&d, "c-1", false, now)).await;
        assert_eq!(e["erreur"]["code"], "910100");
        assert!(e["erreur"]["horodatage"].as_str().unwrap().len() >= 20);
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_problem_json(&h));
        h.insert(
            ACCEPT,
            "application/json, application/problem+json;q=0.9"
                .parse()
                .unwrap(),
        );
        assert!(accepts_problem_json(&h));
    }
}
