//! The public routes under `/status` on both environment listeners
//! (docs/contract.md §11), answered without a client certificate and
//! without the control chain: the HTML page, the Statuspage-shaped JSON,
//! the history and the Atom feed. They never name a partner. What reads
//! the store (the history) awaits it: the worker serves other calls
//! meanwhile.

use super::{DayView, Status};
use crate::availability::Availability;
use crate::dashboard::lang::Lang;
use crate::domain::Environment;
use crate::respond::{self, Body};
use hyper::header::{CACHE_CONTROL, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

/// Days shown when `days` is not given.
const DEFAULT_DAYS: u32 = 7;

/// A public status route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Public {
    /// `GET /status`: the page.
    Page,
    /// `GET /status/api/v2/summary.json`.
    Summary,
    /// `GET /status/api/v2/status.json`.
    StatusDoc,
    /// `GET /status/api/v2/incidents.json`.
    Incidents,
    /// `GET /status/history.json?days=N`.
    History,
    /// `GET /status/feed.atom`.
    Feed,
}

impl Public {
    /// The route of `path`, if it is one.
    pub fn of(path: &str) -> Option<Public> {
        Some(match path {
            "/status" | "/status/" => Public::Page,
            "/status/api/v2/summary.json" => Public::Summary,
            "/status/api/v2/status.json" => Public::StatusDoc,
            "/status/api/v2/incidents.json" => Public::Incidents,
            "/status/history.json" => Public::History,
            "/status/feed.atom" => Public::Feed,
            _ => return None,
        })
    }
}

/// What the public routes read.
#[derive(Clone)]
pub struct Sources {
    /// The status state.
    pub status: Arc<Status>,
    /// Whether an environment is closed now.
    pub availability: Arc<Availability>,
}

/// Answers `route` on `env`'s listener; `query` is the raw query string.
pub async fn answer(s: &Sources, env: Environment, route: Public, query: &str) -> Response<Body> {
    let now = OffsetDateTime::now_utc();
    let (status, availability) = (&s.status, &*s.availability);
    let resp = match route {
        Public::Summary => respond::json(StatusCode::OK, &status.summary(env, availability, now)),
        Public::StatusDoc => {
            respond::json(StatusCode::OK, &status.status_doc(env, availability, now))
        }
        Public::Incidents => respond::json(
            StatusCode::OK,
            &status.incidents_doc(env, availability, now),
        ),
        Public::Feed => respond::bytes(
            StatusCode::OK,
            "application/atom+xml; charset=utf-8",
            super::feed::render(status, env, now),
        ),
        Public::History => match days(query) {
            Ok(days) => history(s, days, now).await,
            Err(message) => bad_days(&message),
        },
        Public::Page => page(s, env, now).await,
    };
    public(resp)
}

/// `days`: absent → 7; else an integer from 1 to 90.
fn days(query: &str) -> Result<u32, String> {
    let mut value = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "days" {
            value = Some(v.into_owned());
        }
    }
    let Some(v) = value else {
        return Ok(DEFAULT_DAYS);
    };
    let max = super::task::RETENTION_DAYS as u32;
    match v.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "days must be an integer from 1 to {max}, got {v:?}"
        )),
    }
}

/// 400 naming `days` (RFC 9457 problem).
fn bad_days(message: &str) -> Response<Body> {
    let body = json!({
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": message,
        "field": "days",
    });
    respond::json_typed(StatusCode::BAD_REQUEST, "application/problem+json", &body)
}

/// Both components' last `days` days.
async fn history(s: &Sources, days: u32, now: OffsetDateTime) -> Response<Body> {
    match rates(s, days, now).await {
        Ok(components) => {
            let list: Vec<_> = components
                .into_iter()
                .map(|(env, days)| json!({"id": env, "name": super::summary::name(env), "days": days}))
                .collect();
            respond::json(StatusCode::OK, &json!({ "components": list }))
        }
        Err(()) => unavailable(),
    }
}

/// Each component's rates over `days` days.
pub(super) async fn rates(
    s: &Sources,
    days: u32,
    now: OffsetDateTime,
) -> Result<Vec<(Environment, Vec<DayView>)>, ()> {
    let mut rates = Vec::with_capacity(Environment::ALL.len());
    for env in Environment::ALL {
        match s.status.history(env, days, now).await {
            Ok(days) => rates.push((env, days)),
            Err(e) => {
                tracing::warn!(error = %e, "availability history not read");
                return Err(());
            }
        }
    }
    Ok(rates)
}

/// The HTML page.
async fn page(s: &Sources, env: Environment, now: OffsetDateTime) -> Response<Body> {
    match rates(s, super::task::RETENTION_DAYS as u32, now).await {
        Ok(rates) => {
            let markup = super::page::render(&s.status, &s.availability, env, &rates, now);
            crate::dashboard::respond(StatusCode::OK, Lang::Fr, markup)
        }
        Err(()) => unavailable(),
    }
}

/// 503 when the history could not be read.
fn unavailable() -> Response<Body> {
    let body = json!({
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "the availability history cannot be read now; try again later",
    });
    respond::json_typed(
        StatusCode::SERVICE_UNAVAILABLE,
        "application/problem+json",
        &body,
    )
}

/// Public documents: readable from any origin (status aggregators), never
/// cached for long.
fn public(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_defaults_to_7_and_stays_within_90() {
        assert_eq!(days(""), Ok(7));
        assert_eq!(days("days=1"), Ok(1));
        assert_eq!(days("x=1&days=90"), Ok(90));
        for bad in [
            "days=0",
            "days=91",
            "days=-1",
            "days=7.5",
            "days=",
            "days=%37x",
        ] {
            assert!(days(bad).is_err(), "{bad}");
        }
        assert_eq!(Public::of("/status/"), Some(Public::Page));
        assert_eq!(
            Public::of("/status/api/v2/summary.json"),
            Some(Public::Summary)
        );
        assert_eq!(Public::of("/status/nothing"), None);
    }
}
