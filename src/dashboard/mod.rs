//! `/dashboard` on the admin listener: the partner dashboard (a partner
//! signs in with its own registered certificate and sees only its own
//! applications) and the admin dashboard (admin certificate). Server-side
//! HTML and SVG; no JavaScript.

mod admin;
mod html;
mod partner;

use crate::app::App;
use crate::domain::Status;
use crate::registry::{CertStatus, Partner};
use crate::respond::{self, Body};
use crate::tls::ConnInfo;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// Whether `path` belongs to the dashboards.
pub fn is_dashboard(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// Who is looking.
enum Viewer {
    Admin,
    Partner(Partner),
}

/// Serves a dashboard request; `is_admin` says whether the connection
/// carries a registered admin certificate.
pub async fn handle(
    app: &Arc<App>,
    conn: &ConnInfo,
    is_admin: bool,
    req: Request<Incoming>,
) -> Response<Body> {
    let viewer = if is_admin {
        Some(Viewer::Admin)
    } else {
        partner_of(app, conn).map(Viewer::Partner)
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
        return page(
            status,
            html::page("OPALE — accès refusé", &format!("<p>{msg}</p>")),
        );
    };
    let path = req.uri().path().to_owned();
    match (req.method(), viewer) {
        (&Method::GET, Viewer::Partner(p)) if path == "/dashboard" => {
            page(StatusCode::OK, partner::render(app, &p))
        }
        (&Method::GET, Viewer::Admin) if path == "/dashboard" => {
            page(StatusCode::OK, admin::render(app))
        }
        (&Method::POST, Viewer::Admin) => admin::action(app, &req, &path).await,
        _ => page(
            StatusCode::NOT_FOUND,
            html::page("OPALE", "<p>Page introuvable. / Not found.</p>"),
        ),
    }
}

/// The partner whose registered, active, unexpired certificate is on the
/// connection (the handshake proved the key).
fn partner_of(app: &App, conn: &ConnInfo) -> Option<Partner> {
    let peer = conn.peer.as_ref()?;
    let snap = app.registry.snapshot();
    let cert = snap.certificates.get(&peer.thumbprint)?;
    let now = time::OffsetDateTime::now_utc();
    if cert.status != CertStatus::Active || cert.not_after < now || cert.not_before > now {
        return None;
    }
    let app_rec = snap.applications.get(&cert.client_id)?;
    snap.partners
        .get(&app_rec.partner_id)
        .filter(|p| p.status == Status::Active)
        .cloned()
}

fn page(status: StatusCode, html: String) -> Response<Body> {
    let mut r = respond::bytes(status, "text/html; charset=utf-8", html);
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
