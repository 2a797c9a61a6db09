//! `/dashboard` on the admin listener: the partner dashboard (a partner
//! signs in with its own registered certificate and sees only its own
//! applications) and the admin dashboard (admin certificate). Server-side
//! HTML and SVG; no JavaScript. Pages are maud templates (escaped by
//! default); the trace scans behind them run on tokio's blocking pool, off
//! the current-thread runtimes that also serve partners.

mod admin;
mod explain;
pub(crate) mod html;
mod partner;

use crate::admin::Admin;
use crate::domain::Status;
use crate::registry::Partner;
use crate::registry::admission::{self, Purpose};
use crate::respond::{self, Body};
use crate::server::RequestBody;
use crate::tls::ConnInfo;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};
use maud::Markup;
use std::sync::Arc;

/// What can go wrong while building a dashboard page.
#[derive(Debug, thiserror::Error)]
enum DashboardError {
    /// The blocking task that scanned the trace panicked or was cancelled.
    #[error("dashboard trace scan did not complete: {0}")]
    Scan(#[from] tokio::task::JoinError),
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
    /// `POST /dashboard/partners/{id}/suspend` (admin).
    Suspend,
    /// `POST /dashboard/partners/{id}/resume` (admin).
    Resume,
}

/// Who is looking.
enum Viewer {
    Admin,
    Partner(Partner),
}

/// Serves a dashboard request: `route` with its partner `id` (`None`: a
/// dashboard path that is no page, 404 once the viewer is known);
/// `is_admin` says whether the connection carries a registered admin
/// certificate.
pub async fn handle(
    state: &Arc<Admin>,
    conn: &ConnInfo,
    is_admin: bool,
    (route, id): (Option<Page>, &str),
    req: Request<RequestBody>,
) -> Response<Body> {
    let viewer = if is_admin {
        Some(Viewer::Admin)
    } else {
        partner_of(state, conn).map(Viewer::Partner)
    };
    let Some(viewer) = viewer else {
        let (status, msg) = match conn.peer {
            None => (
                StatusCode::UNAUTHORIZED,
                "Un certificat client est requis. / A client certificate is required.",
            ),
            Some(_) => (
                StatusCode::FORBIDDEN,
                "Ce certificat n'ouvre aucun tableau de bord. / This certificate opens no dashboard.",
            ),
        };
        return page(status, html::message("OPALE — accès refusé", msg));
    };
    match (route, viewer) {
        (Some(Page::Home), Viewer::Partner(p)) => rendered(partner::render(state, p).await),
        (Some(Page::Home), Viewer::Admin) => rendered(admin::render(state).await),
        (Some(Page::Suspend), Viewer::Admin) => {
            admin::action(state, &req, id, Status::Suspended).await
        }
        (Some(Page::Resume), Viewer::Admin) => admin::action(state, &req, id, Status::Active).await,
        _ => page(
            StatusCode::NOT_FOUND,
            html::message("OPALE", "Page introuvable. / Not found."),
        ),
    }
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
fn rendered(result: Result<Markup, DashboardError>) -> Response<Body> {
    match result {
        Ok(markup) => page(StatusCode::OK, markup),
        Err(e) => {
            tracing::error!(error = %e, "dashboard not rendered");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                html::message("OPALE", "Erreur interne. / Internal error."),
            )
        }
    }
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

/// An HTML page with the dashboards' security headers (the public status
/// page uses them too, `crate::status::public`).
pub(crate) fn html_response(status: StatusCode, html: Markup) -> Response<Body> {
    page(status, html)
}

/// An HTML response with the dashboards' security headers: nothing but
/// inline styles, same-origin images and same-origin form posts; no frames.
fn page(status: StatusCode, html: Markup) -> Response<Body> {
    let mut r = respond::bytes(status, "text/html; charset=utf-8", html.into_string());
    r.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'",
        ),
    );
    r.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut r = respond::empty(StatusCode::SEE_OTHER);
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    r
}
