//! `/dashboard` on the admin listener: the partner dashboard (a partner
//! signs in with its own registered certificate and sees only its own
//! applications), with its usage page and CSV (`usage/`), and the admin
//! dashboard (admin certificate). Server-side
//! HTML and SVG in the State's design system, one language per page
//! (French, or English when the browser prefers it); no JavaScript. Pages
//! are maud templates (escaped by default); the trace scans behind them
//! run on tokio's blocking pool, off the current-thread runtimes that also
//! serve partners. `html`, `lang` and `messages` are the look shared with
//! the other pages people read.

mod admin;
pub(crate) mod chart;
mod explain;
pub mod form;
pub(crate) mod html;
pub(crate) mod lang;
pub(crate) mod messages;
mod partner;
mod selfservice;
mod usage;

use crate::admin::Admin;
use crate::domain::Status;
use crate::registry::Partner;
use crate::registry::admission::{self, Purpose};
use crate::respond::{self, Body};
use crate::server::RequestBody;
use crate::tls::ConnInfo;
use hyper::header::{CACHE_CONTROL, CONTENT_LANGUAGE, HeaderValue, LOCATION, VARY};
use hyper::{HeaderMap, Request, Response, StatusCode};
use lang::Lang;
use maud::Markup;
use messages::Msg;
use std::sync::Arc;

/// What can go wrong while building a dashboard page.
#[derive(Debug, thiserror::Error)]
enum DashboardError {
    /// The blocking task that scanned the trace panicked or was cancelled.
    #[error("dashboard trace scan did not complete: {0}")]
    Scan(#[from] tokio::task::JoinError),
    /// The trail could not be read (the usage page reads it whole for 30
    /// days: a partial count would be a wrong one).
    #[error("dashboard trace scan failed: {0}")]
    Trail(#[from] crate::audit::AuditError),
}

/// Whether `path` belongs to the dashboards (a path of theirs that is no
/// page still gets their 401/403/404 pages).
pub fn is_dashboard(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// A dashboard route (rows of the admin listener's route table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `GET /dashboard`: the viewer's own dashboard.
    Home,
    /// `GET /dashboard/usage`: the partner's usage as charts (partner).
    Usage,
    /// `GET /dashboard/usage.csv[?table=denials]`: the same data as CSV
    /// (partner).
    UsageCsv,
    /// `POST /dashboard/partners/{id}/suspend` (admin).
    Suspend,
    /// `POST /dashboard/partners/{id}/resume` (admin).
    Resume,
    /// `GET /dashboard/partners/{id}/contacts` (the partner).
    Contacts,
    /// `POST /dashboard/partners/{id}/contacts` (the partner).
    SaveContacts,
    /// `GET /dashboard/applications/{client_id}` (the partner).
    Application,
    /// `POST /dashboard/applications/{client_id}/secret` (the partner).
    RotateSecret,
    /// `POST /dashboard/applications/{client_id}/certificates` (the partner).
    IssueCertificate,
    /// `POST /dashboard/applications/{client_id}/certificates/{thumbprint}/revoke`
    /// (the partner).
    RevokeCertificate,
}

impl Page {
    /// A partner's own page or form (§12), as opposed to the admin's.
    fn is_self_service(self) -> bool {
        matches!(
            self,
            Page::Contacts
                | Page::SaveContacts
                | Page::Application
                | Page::RotateSecret
                | Page::IssueCertificate
                | Page::RevokeCertificate
        )
    }
}

/// Who is looking.
enum Viewer {
    Admin,
    Partner(Partner),
}

/// Serves a dashboard request: `route` with its path parameters (`None`:
/// a dashboard path that is no page, 404 once the viewer is known);
/// `is_admin` says whether the connection carries a registered admin
/// certificate.
pub async fn handle(
    state: &Arc<Admin>,
    conn: &ConnInfo,
    is_admin: bool,
    (route, params): (Option<Page>, &[(String, String)]),
    req: Request<RequestBody>,
) -> Response<Body> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let id = param("id");
    let lang = Lang::of_request(req.headers());
    let viewer = if is_admin {
        Some(Viewer::Admin)
    } else {
        partner_of(state, conn).map(Viewer::Partner)
    };
    let Some(viewer) = viewer else {
        let (status, title, text) = match conn.peer {
            None => (StatusCode::UNAUTHORIZED, Msg::SignInTitle, Msg::SignInText),
            Some(_) => (StatusCode::FORBIDDEN, Msg::RefusedTitle, Msg::RefusedText),
        };
        return respond(status, lang, html::message(lang, title, text, None));
    };
    let thumbprint = conn.peer.as_ref().map(|p| p.thumbprint.to_string());
    let thumbprint = thumbprint.unwrap_or_default();
    match (route, viewer) {
        (Some(Page::Home), Viewer::Partner(p)) => {
            rendered(lang, partner::render(state, lang, p).await)
        }
        (Some(page), Viewer::Partner(partner)) if page.is_self_service() => {
            let s = selfservice::Session {
                state,
                lang,
                partner,
                thumbprint,
            };
            let client_id = param("client_id");
            match page {
                Page::Contacts => {
                    let saved = req.uri().query() == Some("enregistre");
                    selfservice::contacts_page(&s, id, saved)
                }
                Page::SaveContacts => selfservice::save_contacts(&s, id, req).await,
                Page::Application => selfservice::application_page(&s, client_id),
                Page::RotateSecret => selfservice::rotate_secret(&s, client_id, req).await,
                Page::IssueCertificate => selfservice::issue_certificate(&s, client_id, req).await,
                Page::RevokeCertificate => {
                    let thumb = param("thumbprint");
                    selfservice::revoke_certificate(&s, (client_id, thumb), req).await
                }
                _ => not_found(lang),
            }
        }
        (Some(Page::Home), Viewer::Admin) => {
            rendered(lang, admin::render(state, lang, &thumbprint).await)
        }
        (Some(Page::Usage), Viewer::Partner(p)) => {
            rendered(lang, usage::render(state, lang, p).await)
        }
        (Some(Page::UsageCsv), Viewer::Partner(p)) => {
            match usage::Table::of_query(req.uri().query()) {
                Some(table) => usage::csv(state, &p, table)
                    .await
                    .unwrap_or_else(|e| failed(lang, e)),
                None => not_found(lang),
            }
        }
        (Some(Page::Suspend), Viewer::Admin) => {
            admin::action(state, req, (lang, &thumbprint), id, Status::Suspended).await
        }
        (Some(Page::Resume), Viewer::Admin) => {
            admin::action(state, req, (lang, &thumbprint), id, Status::Active).await
        }
        _ => not_found(lang),
    }
}

/// The 404 page of the dashboards.
fn not_found(lang: Lang) -> Response<Body> {
    let text = (Msg::NotFoundTitle, Msg::NotFoundText);
    let page = html::message(lang, text.0, text.1, Some("/dashboard"));
    respond(StatusCode::NOT_FOUND, lang, page)
}

/// Runs `scan` (a read of the trace store: thousands of records read and
/// parsed) on tokio's blocking pool, so that the serving thread keeps
/// serving while it runs.
async fn off_thread<T: Send + 'static>(
    state: &Arc<Admin>,
    scan: impl FnOnce(&Admin) -> T + Send + 'static,
) -> Result<T, DashboardError> {
    let state = state.clone();
    Ok(tokio::task::spawn_blocking(move || scan(&state)).await?)
}

/// The response for a rendered page, or a 500 page.
fn rendered(lang: Lang, result: Result<Markup, DashboardError>) -> Response<Body> {
    match result {
        Ok(markup) => respond(StatusCode::OK, lang, markup),
        Err(e) => failed(lang, e),
    }
}

/// The 500 page for what could not be built, the error logged.
fn failed(lang: Lang, e: DashboardError) -> Response<Body> {
    tracing::error!(error = %e, "dashboard not rendered");
    let text = (Msg::InternalErrorTitle, Msg::InternalErrorText);
    let page = html::message(lang, text.0, text.1, None);
    respond(StatusCode::INTERNAL_SERVER_ERROR, lang, page)
}

/// The partner whose registered, active, unexpired certificate is on the
/// connection (the handshake proved the key), if the partner is active:
/// the admission policy's dashboard conditions (`registry::admission`).
fn partner_of(state: &Admin, conn: &ConnInfo) -> Option<Partner> {
    let peer = conn.peer.as_ref()?;
    let snap = state.registry.snapshot();
    let now = time::OffsetDateTime::now_utc();
    admission::admit(&snap, &peer.thumbprint, Purpose::Dashboard { now })
        .ok()
        .map(|admitted| admitted.partner.clone())
}

/// An HTML page as a response, with the pages' security headers: the
/// Content-Security-Policy of [`html::CSP`] (no script; the inlined
/// stylesheet allowed by its hash), no framing, not stored by caches
/// (dashboards show private data); its language in `Content-Language`,
/// and `Vary: Accept-Language` since that header chose it.
pub(crate) fn respond(status: StatusCode, lang: Lang, html: Markup) -> Response<Body> {
    let mut r = respond::bytes(status, "text/html; charset=utf-8", html.into_string());
    let h = r.headers_mut();
    security_headers(h);
    h.insert(CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    h.insert(VARY, HeaderValue::from_static("accept-language"));
    r
}

/// The headers of everything the dashboards send (pages and CSV): the
/// Content-Security-Policy of [`html::CSP`], no framing, not stored by
/// caches.
fn security_headers(h: &mut HeaderMap) {
    // Built from a constant and a base64 hash: always a valid header; were
    // it not, the page would go out with no style allowed rather than none.
    let csp = HeaderValue::from_str(&html::CSP)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; form-action 'self'"));
    h.insert("content-security-policy", csp);
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A redirection after a form post (303: the browser then GETs `to`, a
/// path of ours).
fn redirect_to(to: String) -> Response<Body> {
    let mut r = respond::empty(StatusCode::SEE_OTHER);
    let location = HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/dashboard"));
    r.headers_mut().insert(LOCATION, location);
    r
}
