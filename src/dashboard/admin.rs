//! The admin dashboard: every partner (with suspend / resume), live
//! denials by control, top partners by calls, recent admin actions.

use super::html::{esc, page};
use super::{page as respond_page, redirect};
use crate::app::App;
use crate::audit::TraceEvent;
use crate::audit::query;
use crate::domain::Status;
use crate::registry::ops::PartnerPatch;
use crate::respond::Body;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

const WINDOW: usize = 5000;

/// The page.
pub fn render(app: &App) -> String {
    let snap = app.registry.snapshot();
    let (denials, top, actions) = activity(app);
    let mut partners: Vec<_> = snap.partners.values().collect();
    partners.sort_by(|a, b| a.name.cmp(&b.name));
    let mut body = String::from(
        "<section><h2>Partenaires / Partners</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Nom</th><th scope=\"col\">SIREN</th><th scope=\"col\">Applications</th><th scope=\"col\">Statut</th><th scope=\"col\">Action</th></tr></thead><tbody>",
    );
    for p in partners {
        let n = snap
            .applications
            .values()
            .filter(|a| a.partner_id == p.id)
            .count();
        let (verb, label) = match p.status {
            Status::Active => ("suspend", "Suspendre / Suspend"),
            Status::Suspended => ("resume", "Réactiver / Resume"),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{n}</td><td>{:?}</td><td><form method=\"post\" action=\"/dashboard/partners/{}/{verb}\"><button type=\"submit\" aria-label=\"{label} {}\">{label}</button></form></td></tr>",
            esc(&p.name),
            p.siren,
            p.status,
            p.id,
            esc(&p.name)
        );
    }
    body.push_str("</tbody></table></div></section>");
    body.push_str(&counts(
        "Refus récents par contrôle / Recent denials by control",
        "Contrôle / control",
        &denials,
    ));
    body.push_str(&counts(
        "Partenaires les plus actifs / Top partners by calls",
        "Partenaire / partner",
        &top,
    ));
    body.push_str("<section><h2>Actions d'administration récentes / Recent admin actions</h2><table><thead><tr><th scope=\"col\">Heure</th><th scope=\"col\">Qui / who</th><th scope=\"col\">Quoi / what</th><th scope=\"col\">Statut</th></tr></thead><tbody>");
    for e in actions {
        let who = e
            .admin
            .as_ref()
            .map(|a| a.actor_subject.clone())
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            esc(&e.time),
            esc(&who),
            e.method,
            esc(&e.path),
            e.status
        );
    }
    body.push_str("</tbody></table></section>");
    page("OPALE — administration", &body)
}

fn counts(title: &str, col: &str, m: &BTreeMap<String, u64>) -> String {
    let mut rows: Vec<_> = m.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    let mut s = format!(
        "<section><h2>{}</h2><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">Nombre / count</th></tr></thead><tbody>",
        esc(title),
        esc(col)
    );
    for (k, v) in rows.into_iter().take(10) {
        let _ = write!(s, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
    }
    s.push_str("</tbody></table></section>");
    s
}

type Activity = (
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
    Vec<TraceEvent>,
);

fn activity(app: &App) -> Activity {
    let snap = app.registry.snapshot();
    let (mut denials, mut top, mut actions, mut seen) =
        (BTreeMap::new(), BTreeMap::new(), Vec::new(), 0);
    let _ = query::scan_newest(app.audit.store(), None, |r| {
        seen += 1;
        let e = r.event;
        if e.plane == crate::domain::Plane::Admin {
            if e.method != "GET" && actions.len() < 20 {
                actions.push(e);
            }
        } else {
            if let Some(c) = &e.control {
                *denials.entry(c.to_string()).or_default() += 1;
            }
            if let Some(p) = &e.partner_id {
                let name = snap
                    .partners
                    .get(&crate::domain::PartnerId::new(p.as_str()))
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| p.clone());
                *top.entry(name).or_default() += 1;
            }
        }
        seen < WINDOW
    });
    (denials, top, actions)
}

/// `POST /dashboard/partners/{id}/suspend|resume`, same-origin forms only.
pub async fn action(app: &Arc<App>, req: &Request<Incoming>, path: &str) -> Response<Body> {
    let same_origin = match req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        Some(site) => site == "same-origin",
        None => req.headers().get("origin").is_none(),
    };
    if !same_origin {
        return respond_page(
            StatusCode::FORBIDDEN,
            page(
                "OPALE",
                "<p>Requête d'une autre origine refusée. / Cross-origin request refused.</p>",
            ),
        );
    }
    let segs: Vec<&str> = path.split('/').collect();
    let (id, status) = match segs.as_slice() {
        ["", "dashboard", "partners", id, "suspend"] => (*id, "suspended"),
        ["", "dashboard", "partners", id, "resume"] => (*id, "active"),
        _ => return respond_page(StatusCode::NOT_FOUND, page("OPALE", "<p>Not found.</p>")),
    };
    let (app2, id) = (app.clone(), id.to_owned());
    let patch = PartnerPatch {
        status: Some(status.into()),
        ..PartnerPatch::default()
    };
    match tokio::task::spawn_blocking(move || app2.registry.update_partner(&id, patch)).await {
        Ok(Ok(_)) => redirect("/dashboard"),
        _ => respond_page(
            StatusCode::BAD_REQUEST,
            page("OPALE", "<p>Action impossible. / Action failed.</p>"),
        ),
    }
}
