//! The admin dashboard: open security events (abnormal usage), every
//! partner (with suspend / resume), live denials by control, top partners
//! by calls, recent admin actions.

use super::html::{message, page};
use super::{DashboardError, off_thread, page as respond_page, redirect};
use crate::admin::Admin;
use crate::audit::TraceEvent;
use crate::audit::query;
use crate::domain::Status;
use crate::registry::Snapshot;
use crate::registry::ops::PartnerPatch;
use crate::respond::Body;
use crate::server::RequestBody;
use hyper::{Request, Response, StatusCode};
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many of the newest trace records the activity sections read.
const WINDOW: usize = 5000;

/// The page (the trace scan runs off the serving thread).
pub async fn render(state: &Arc<Admin>) -> Result<Markup, DashboardError> {
    let (denials, top, actions) = off_thread(state, activity).await?;
    let body = html! {
        (trail_banner(state.audit.open_report()))
        (security_events(&state.abuse.open_events()))
        (partners(&state.registry.snapshot()))
        (counts(
            "Refus récents par contrôle / Recent denials by control",
            "Contrôle / control",
            &denials,
        ))
        (counts(
            "Partenaires les plus actifs / Top partners by calls",
            "Partenaire / partner",
            &top,
        ))
        (admin_actions(&actions))
    };
    Ok(page("OPALE — administration", body))
}

/// A red banner while the trail failed its start-up check (records
/// missing or altered since its last checkpoint).
fn trail_banner(report: &crate::audit::OpenReport) -> Markup {
    if report.intact {
        return html! {};
    }
    let first = report
        .first_bad
        .map(|n| format!(" (record {n})"))
        .unwrap_or_default();
    let reason = report.reason.as_deref().unwrap_or("");
    html! {
        p.crit role="alert" id="trail-alert" {
            "Piste d'audit altérée / audit trail damaged" (first) " : " (reason)
            " — " "voir / see " code { "opale-apim admin trace verify" }
        }
    }
}

/// Open security events, newest first, with their reason (cleared with
/// `POST /admin/v1/security-events/{id}/clear`).
fn security_events(events: &[crate::abuse::SecurityEvent]) -> Markup {
    html! {
        section id="security-events" {
            h2 { "Événements de sécurité / Security events (" (events.len()) ")" }
            @if events.is_empty() {
                p { "Aucun événement ouvert. / No open event." }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "Heure" } th scope="col" { "Type / kind" }
                        th scope="col" { "Application" } th scope="col" { "IP" }
                        th scope="col" { "Raison / reason" } th scope="col" { "Id" }
                    } }
                    tbody { @for e in events.iter().take(100) {
                        tr {
                            td { (crate::audit::timestamp(e.raised_at)) }
                            td { (e.kind.as_str()) }
                            td { (e.client_id) " (" (e.environment) ")" }
                            td { (e.ip) }
                            td { (e.reason) }
                            td { code { (e.id) } }
                        }
                    } }
                } }
            }
        }
    }
}

/// Every partner, by name, with its suspend or resume form.
fn partners(snap: &Snapshot) -> Markup {
    let mut partners: Vec<_> = snap.partners.values().collect();
    partners.sort_by(|a, b| a.name.cmp(&b.name));
    let apps_of = |p: &crate::registry::Partner| {
        snap.applications
            .values()
            .filter(|a| a.partner_id == p.id)
            .count()
    };
    html! {
        section {
            h2 { "Partenaires / Partners" }
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Nom" } th scope="col" { "SIREN" }
                    th scope="col" { "Applications" } th scope="col" { "Statut" }
                    th scope="col" { "Action" }
                } }
                tbody { @for p in partners {
                    @let (verb, label) = toggle(p.status);
                    tr {
                        td { (p.name) } td { (p.siren) } td { (apps_of(p)) }
                        td { (format!("{:?}", p.status)) }
                        td {
                            form method="post"
                                action=(format!("/dashboard/partners/{}/{verb}", p.id)) {
                                button type="submit" aria-label=(format!("{label} {}", p.name)) {
                                    (label)
                                }
                            }
                        }
                    }
                } }
            } }
        }
    }
}

/// The action that flips `status`, and its button label.
fn toggle(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Active => ("suspend", "Suspendre / Suspend"),
        Status::Suspended => ("resume", "Réactiver / Resume"),
    }
}

/// The ten largest counts of `m`, largest first.
fn counts(title: &str, col: &str, m: &BTreeMap<String, u64>) -> Markup {
    let mut rows: Vec<_> = m.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    html! {
        section {
            h2 { (title) }
            table {
                thead { tr { th scope="col" { (col) } th scope="col" { "Nombre / count" } } }
                tbody { @for (k, v) in rows.into_iter().take(10) {
                    tr { td { (k) } td { (v) } }
                } }
            }
        }
    }
}

/// Recent changes made through the admin listener (method and path as
/// recorded, so as any caller sent them: escaped like everything else).
fn admin_actions(actions: &[TraceEvent]) -> Markup {
    html! {
        section {
            h2 { "Actions d'administration récentes / Recent admin actions" }
            table {
                thead { tr {
                    th scope="col" { "Heure" } th scope="col" { "Qui / who" }
                    th scope="col" { "Quoi / what" } th scope="col" { "Statut" }
                } }
                tbody { @for e in actions {
                    tr {
                        td { (crate::audit::timestamp(e.at)) }
                        td { (e.actor_name()) }
                        td { (what(e)) }
                        td { (e.status) }
                    }
                } }
            }
        }
    }
}

/// What an admin-plane record did: its method and path, or its system
/// action.
fn what(e: &TraceEvent) -> String {
    match &e.action {
        Some(a) => {
            let kind = serde_json::to_value(a.kind).unwrap_or_default();
            format!("{} {}", kind.as_str().unwrap_or_default(), a.target)
        }
        None => format!(
            "{} {}",
            e.method.as_ref().map_or("", |m| m.as_str()),
            e.path
        ),
    }
}

type Activity = (
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
    Vec<TraceEvent>,
);

/// Denials by control, calls by partner name, and the last 20 admin
/// changes, over the newest [`WINDOW`] records. Blocking: reads the store.
fn activity(state: &Admin) -> Activity {
    let snap = state.registry.snapshot();
    let (mut denials, mut top, mut actions, mut seen) =
        (BTreeMap::new(), BTreeMap::new(), Vec::new(), 0);
    let scanned = query::scan_newest(&state.audit, None, |r| {
        seen += 1;
        let e = r.event;
        if e.plane == crate::domain::Plane::Admin {
            if e.method != Some(hyper::Method::GET) && actions.len() < 20 {
                actions.push(e);
            }
        } else {
            if let Some(c) = &e.control {
                *denials.entry(c.to_string()).or_default() += 1;
            }
            if let Some(p) = &e.partner_id {
                let name = snap
                    .partners
                    .get(p)
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| p.to_string());
                *top.entry(name).or_default() += 1;
            }
        }
        seen < WINDOW
    });
    if let Err(e) = scanned {
        tracing::warn!(error = %e, "admin dashboard: trace scan stopped early");
    }
    (denials, top, actions)
}

/// `POST /dashboard/partners/{id}/suspend|resume`, same-origin forms only.
pub async fn action(
    state: &Arc<Admin>,
    req: &Request<RequestBody>,
    id: &str,
    status: Status,
) -> Response<Body> {
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
            message(
                "OPALE",
                "Requête d'une autre origine refusée. / Cross-origin request refused.",
            ),
        );
    }
    let (app2, id) = (state.clone(), id.to_owned());
    let patch = PartnerPatch {
        status: Some(status),
        ..PartnerPatch::default()
    };
    match tokio::task::spawn_blocking(move || app2.registry.update_partner(&id, patch)).await {
        Ok(Ok(_)) => redirect("/dashboard"),
        _ => respond_page(
            StatusCode::BAD_REQUEST,
            message("OPALE", "Action impossible. / Action failed."),
        ),
    }
}
