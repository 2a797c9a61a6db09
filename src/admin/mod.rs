//! The admin listener: mTLS with an admin certificate, JSON REST under
//! `/admin/v1/` (docs/contract.md §6; documented in `docs/openapi-admin.yaml`).
//! `client.rs` is the CLI's side of the same API.
//!
//! An admin's browser holds an admin certificate, so any page it visits
//! could make it send requests here: before routing, [`same_origin_call`]
//! refuses writes a browser would send on another site's behalf (docs/contract.md §8).
//! The dashboard's own form keeps its own check (`dashboard/admin.rs`).
//!
//! One path needs no certificate: the DataPass webhook (`crate::datapass`),
//! authenticated by its HMAC signature instead.

mod api;
mod certs;
pub(crate) mod changes;
pub mod cli;
pub mod client;
mod environments;
mod error;
mod export;
mod keys;
mod notices;
mod partners;
mod reload;
mod security;
mod status;
mod tokens;
mod trace;
pub mod types;

pub use api::{Op, call, parse_json};

use api::{Routed, Target};
pub use error::ApiError;

use crate::audit::{self, Actor, Code};
use crate::chain::Control;
use crate::domain::Plane;
use crate::registry::Snapshot;
use crate::respond::Body;
use crate::server::RequestBody;
use crate::tls::ConnInfo;
use hyper::header::{CONTENT_TYPE, HOST, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// What the admin listener runs on: the admin API, the dashboards and the
/// DataPass webhook (built by `crate::app::App::planes`).
pub struct Admin {
    /// Partners, applications, certificates, admins.
    pub(crate) registry: Arc<crate::registry::Registry>,
    /// Token introspection and revocation, the deny-list.
    pub(crate) oauth: Arc<crate::oauth::Oauth>,
    /// Maintenance per environment.
    pub(crate) availability: Arc<crate::availability::Availability>,
    /// Quota usage shown on the partner dashboard.
    pub(crate) quotas: Arc<crate::quota::Quotas>,
    /// The trail: appended to, queried, verified, purged.
    pub(crate) audit: Arc<crate::audit::Auditor>,
    /// Series counted per request and exposed on `/metrics`.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Security events (listed, cleared).
    pub(crate) abuse: Arc<crate::abuse::Abuse>,
    /// Expiry notices (listed).
    pub(crate) notices: Arc<crate::notify::Notices>,
    /// `POST /admin/v1/reload`, and the TLS state certificates are checked
    /// against.
    pub(crate) reloader: Arc<crate::reload::Reloader>,
    /// `[audit] retention_days`.
    pub(crate) retention_days: u32,
    /// `[datapass]`.
    pub(crate) datapass: crate::config::DatapassSettings,
    /// Incidents, maintenances and availability (§11).
    pub(crate) status: Arc<crate::status::Status>,
    /// E-mails incidents and maintenances to the partners concerned.
    pub(crate) announcer: Arc<crate::status::announce::Announcer>,
    /// Signs and checks the dashboards' form tokens.
    pub(crate) form_key: Arc<crate::dashboard::form::FormKey>,
    /// `[dashboard] max_certificates_per_application`.
    pub(crate) max_certificates: usize,
}

/// Handles one request on the admin listener, and traces it with the
/// acting admin and, for a change, the entities before and after.
pub async fn handle(
    admin: &Arc<Admin>,
    conn: &ConnInfo,
    req: Request<RequestBody>,
) -> Response<Body> {
    let routed = api::routed(&req);
    // Authenticated by its HMAC signature, not by a certificate.
    if let Routed::Found(Target::Datapass, _) | Routed::OtherMethod(Target::Datapass) = routed {
        return crate::datapass::handle(admin, conn, req).await;
    }
    let started = Instant::now();
    let mut trace = audit::http::start(Plane::Admin, conn, &req);
    let before = admin.registry.snapshot();
    let board_before = admin.status.board();
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
    let is_admin = authenticate(conn, &before);
    let admin_signed = is_admin.is_ok();
    let caller = audit::http::Caller::known(is_admin.is_ok());
    let outcome = match routed {
        Routed::Found(Target::Dashboard(page), params) => {
            let view = (Some(page), params.as_slice());
            Ok(crate::dashboard::handle(admin, conn, admin_signed, view, req).await)
        }
        _ if crate::dashboard::is_dashboard(req.uri().path()) => {
            let view = (None, [].as_slice());
            Ok(crate::dashboard::handle(admin, conn, admin_signed, view, req).await)
        }
        Routed::Found(Target::Api(handler), params) => {
            match is_admin.and_then(|()| same_origin_call(&req)) {
                Err(e) => Err(e),
                Ok(()) => api::run(admin, handler, params, req).await,
            }
        }
        _ => is_admin.and_then(|()| Err(api::not_found(&req))),
    };
    let resp = match outcome {
        Ok(resp) => resp,
        Err(e) => {
            let code = Code::Status(e.status.as_u16());
            trace.refuse_with(Control::Admin, code, &e.message);
            e.into_response()
        }
    };
    let (b, a) = if mutating {
        let (mut b, mut a) = changes::changes(&before, &admin.registry.snapshot());
        changes::board_changes(&board_before, &admin.status.board(), (&mut b, &mut a));
        (b, a)
    } else {
        (Value::Null, Value::Null)
    };
    // Anyone else signed in on this listener is a partner on its
    // dashboard (self-service, docs/contract.md §12).
    let actor = conn.peer.as_ref().map(|p| match admin_signed {
        true => Actor::Admin {
            subject: p.subject.clone(),
            thumbprint: p.thumbprint.to_string(),
        },
        false => Actor::Partner {
            thumbprint: p.thumbprint.to_string(),
        },
    });
    trace.acted(actor, b, a);
    audit::http::finish(&admin.audit, &admin.metrics, (trace, caller), resp, started).await
}

/// An admin is a client certificate that chains to the root CA (`ca.pem`)
/// and whose thumbprint is registered as an admin.
fn authenticate(conn: &ConnInfo, snapshot: &Snapshot) -> Result<(), ApiError> {
    let peer = conn.peer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "an admin client certificate is required on this listener",
        )
    })?;
    if let Err(fault) = &peer.verdict {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            format!("not an admin certificate: {fault}"),
        ));
    }
    if !snapshot.admins.contains_key(&peer.thumbprint) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            None,
            format!(
                "certificate {} is not registered as an admin",
                peer.thumbprint
            ),
        ));
    }
    Ok(())
}

/// The RFC 7662/7009 routes, whose bodies are forms.
const FORM_ROUTES: [&str; 2] = ["/admin/v1/tokens/introspect", "/admin/v1/tokens/revoke"];

/// Refuses, before anything is read or written, an API call a browser may
/// have sent for another site (docs/contract.md §8; `docs/openapi-admin.yaml`):
/// a POST to `/admin/v1/*` whose `Content-Type` is not `application/json`
/// (a form on the RFC 7662/7009 routes) is 415, since no cross-site form
/// can send JSON without a CORS preflight we never answer; a POST, PATCH,
/// PUT or DELETE marked `Sec-Fetch-Site: cross-site|same-site`, or whose
/// `Origin` is not this listener's own, is 403. Requests without these
/// headers (the CLI, curl) pass.
fn same_origin_call<B>(req: &Request<B>) -> Result<(), ApiError> {
    let method = req.method();
    if !matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    ) {
        return Ok(());
    }
    let header = |name| req.headers().get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = header("sec-fetch-site")
        && matches!(
            site.trim().to_ascii_lowercase().as_str(),
            "cross-site" | "same-site"
        )
    {
        return Err(forbidden(format!(
            "{method} refused: Sec-Fetch-Site is {site}"
        )));
    }
    if let Some(origin) = header(ORIGIN.as_str())
        && !is_own_origin(origin, req)
    {
        return Err(forbidden(format!(
            "{method} refused from origin {origin:?}"
        )));
    }
    let path = req.uri().path().trim_end_matches('/');
    if *method == Method::POST && path.starts_with("/admin/v1/") {
        let expected = if FORM_ROUTES.contains(&path) {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let sent = header(CONTENT_TYPE.as_str()).unwrap_or("");
        if crate::server::media_type(req.headers()) != expected {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                format!("{path} expects Content-Type: {expected}, got {sent:?}"),
            ));
        }
    }
    Ok(())
}

/// Whether `origin` is this listener's own origin: scheme `https`, and
/// the host (ASCII case-insensitively) and port (443 when absent) of the
/// request's authority (its `Host` header, or the HTTP/2 `:authority`).
/// TLS binds that authority: a browser only reaches this listener under
/// a name its certificate is valid for. `Origin: null` is never ours.
pub(crate) fn is_own_origin<B>(origin: &str, req: &Request<B>) -> bool {
    let authority = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<hyper::http::uri::Authority>().ok())
        .or_else(|| req.uri().authority().cloned());
    let Ok(origin) = origin.parse::<hyper::Uri>() else {
        return false;
    };
    let (Some(own), Some(host)) = (authority, origin.host()) else {
        return false;
    };
    origin.scheme_str() == Some("https")
        && origin.path_and_query().is_none_or(|p| p.as_str() == "/")
        && host.eq_ignore_ascii_case(own.host())
        && origin.port_u16().unwrap_or(443) == own.port_u16().unwrap_or(443)
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, None, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::post("/admin/v1/partners").header(HOST, "admin.example:8443");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn own_origin_is_https_and_the_host_header() {
        let req = post(&[]);
        assert!(is_own_origin("https://admin.example:8443", &req));
        assert!(is_own_origin("https://ADMIN.example:8443", &req));
        assert!(!is_own_origin("http://admin.example:8443", &req));
        assert!(!is_own_origin("https://admin.example", &req));
        assert!(!is_own_origin("https://evil.example:8443", &req));
        assert!(!is_own_origin("null", &req));
        let default_port = Request::post("/")
            .header(HOST, "a.example")
            .body(())
            .unwrap();
        assert!(is_own_origin("https://a.example:443", &default_port));
        assert!(is_own_origin("https://a.example", &default_port));
    }

    #[test]
    fn content_type_essence() {
        let json = [("content-type", "application/json;charset=utf-8")];
        assert!(same_origin_call(&post(&json)).is_ok());
        let text = [("content-type", "text/plain")];
        assert_eq!(
            same_origin_call(&post(&text)).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
