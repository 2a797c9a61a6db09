//! The partner dashboard: usage per day, last 50 requests with the reason
//! of each refusal, errors by control, quota use, certificate and
//! credential expiry warnings, expiry notices sent or due. Only the
//! partner's own applications.

use super::explain::explain;
use super::html::{bar_chart, page};
use super::{DashboardError, off_thread};
use crate::admin::Admin;
use crate::audit::TraceEvent;
use crate::audit::query::{self, Filter};
use crate::notify::{Delivery, Notice};
use crate::registry::{CertStatus, Partner};
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Rows of the "last requests" table.
const LAST: usize = 50;
/// Days of the usage chart.
const DAYS: i64 = 30;

/// The page for `partner` (the trace scan runs off the serving thread).
pub async fn render(state: &Arc<Admin>, partner: Partner) -> Result<Markup, DashboardError> {
    let now = OffsetDateTime::now_utc();
    let id = partner.id.to_string();
    let (recent, per_day, per_control) =
        off_thread(state, move |state| activity(state, &id, now)).await?;
    let points: Vec<(String, u64)> = per_day.into_iter().collect();
    let body = html! {
        p {
            (partner.name) " — SIREN " (partner.siren) " — "
            a href="/dashboard" { "actualiser / refresh" }
        }
        (service_notices(state, &partner, now))
        (applications(state, &partner, now).await)
        (notices(&state.notices.list(Some(partner.id.as_str()))))
        section {
            h2 { "Usage par jour (30 jours) / Usage per day (30 days)" }
            (bar_chart("Appels par jour / Calls per day", &points))
        }
        (errors_by_control(&per_control))
        (last_requests(&recent))
    };
    let title = format!(
        "OPALE — tableau de bord partenaire / partner dashboard — {}",
        partner.name
    );
    Ok(page(&title, body))
}

/// Each application: quota left this minute, grant and certificate expiry.
async fn applications(state: &Admin, partner: &Partner, now: OffsetDateTime) -> Markup {
    let snap = state.registry.snapshot();
    let mut apps: Vec<_> = snap
        .applications
        .values()
        .filter(|a| a.partner_id == partner.id)
        .collect();
    apps.sort_by_key(|a| a.created_at);
    // Read before rendering: with the Redis backend each is a round trip.
    let mut quotas = Vec::with_capacity(apps.len());
    for a in &apps {
        let q = state
            .quotas
            .peek(a.environment, &a.client_id, a.quota_per_minute);
        quotas.push(q.await.ok());
    }
    html! {
        section {
            h2 { "Applications, quotas et échéances / Applications, quotas and expiry" }
            @for (a, q) in apps.iter().zip(quotas) {
                @let status = a.status.as_str();
                h3 { (a.name) " (" (a.environment) ", " (status) ")" }
                p {
                    "client_id " code { (a.client_id) } " — quota : "
                    @match q {
                        Some(q) => { (q.remaining) " / " (q.limit) " appels restants cette minute (calls left this minute)" }
                        None => { "indisponible (unavailable)" }
                    }
                }
                (expiry("Habilitation / grant", a.valid_until.midnight().assume_utc(), now))
                @for c in snap.certificates_of(&a.client_id) {
                    @if c.status == CertStatus::Active {
                        @let thumb = c.thumbprint.as_str();
                        @let short = thumb.get(..12).unwrap_or(thumb);
                        (expiry(&format!("Certificat / certificate {short}"), c.not_after, now))
                    }
                }
            }
        }
    }
}

type Activity = (
    Vec<TraceEvent>,
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
);

/// The partner's last [`LAST`] requests, calls per day over [`DAYS`] days
/// and denials by control. Blocking: reads the store.
fn activity(state: &Admin, partner_id: &str, now: OffsetDateTime) -> Activity {
    let mut per_day = BTreeMap::new();
    for d in 0..DAYS {
        per_day.insert((now - Duration::days(DAYS - 1 - d)).date().to_string(), 0);
    }
    let filter = Filter {
        partner_id: Some(partner_id.to_owned()),
        ..Filter::default()
    };
    let (mut recent, mut per_control) = (Vec::new(), BTreeMap::new());
    let scanned = query::scan_newest(&state.audit, None, |r| {
        if !filter.matches(&r) || r.event.plane == crate::domain::Plane::Admin {
            return true;
        }
        if let Some(n) = per_day.get_mut(&r.event.at.date().to_string()) {
            *n += 1;
        }
        if let Some(c) = &r.event.control {
            *per_control.entry(c.to_string()).or_default() += 1;
        }
        if recent.len() < LAST {
            recent.push(r.event);
        }
        true
    });
    if let Err(e) = scanned {
        tracing::warn!(error = %e, "partner dashboard: trace scan stopped early");
    }
    (recent, per_day, per_control)
}

/// An expiry date, flagged from 90 days before (critical from 7).
fn expiry(what: &str, until: OffsetDateTime, now: OffsetDateTime) -> Markup {
    let days = (until - now).whole_days();
    let (class, note) = match days {
        d if d < 0 => ("crit", "expiré / expired".to_owned()),
        d if d <= 7 => (
            "crit",
            format!("expire dans {d} jours / expires in {d} days"),
        ),
        d if d <= 90 => (
            "warn",
            format!("expire dans {d} jours / expires in {d} days"),
        ),
        _ => return html! { p { (what) " : " (until.date()) " " } },
    };
    html! { p class=(class) role="status" { (what) " : " (until.date()) " — " (note) } }
}

/// Open incidents and maintenances not over on the environments of the
/// partner's applications (docs/contract.md §11), as announced by e-mail.
fn service_notices(state: &Admin, partner: &Partner, now: OffsetDateTime) -> Markup {
    let snap = state.registry.snapshot();
    let envs: Vec<_> = snap
        .applications
        .values()
        .filter(|a| a.partner_id == partner.id)
        .map(|a| a.environment)
        .collect();
    let touches = |list: &[crate::domain::Environment]| list.iter().any(|e| envs.contains(e));
    let board = state.status.board();
    let incidents: Vec<_> = board
        .incidents
        .iter()
        .filter(|i| i.is_open() && touches(&i.components))
        .collect();
    let maintenances: Vec<_> = board
        .maintenances
        .iter()
        .filter(|m| m.is_pending(now) && touches(&m.components))
        .collect();
    let stamp = crate::audit::timestamp;
    html! {
        section #service {
            h2 { "Incidents et maintenances" }
            @if incidents.is_empty() && maintenances.is_empty() {
                p { "Aucun incident en cours, aucune maintenance prévue." }
            }
            @for i in &incidents {
                div.crit role="status" {
                    strong { "Incident : " (i.name) } " — " (i.components.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "))
                    @if let Some(u) = i.incident_updates.first() { br; (u.body) }
                }
            }
            @for m in &maintenances {
                div.warn role="status" {
                    strong { (m.name) } " — " (m.components.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "))
                    " : du " time datetime=(stamp(m.scheduled_for)) { (stamp(m.scheduled_for)) }
                    " au " time datetime=(stamp(m.ends_at())) { (stamp(m.ends_at())) }
                    br; (m.message)
                }
            }
            @if let Some(env) = envs.first() {
                @let url = format!("{}/status", state.status.url(*env));
                p { "État du service et disponibilité : " a href=(url) { (url) } }
            }
        }
    }
}

/// The partner's expiry notices (`crate::notify`): object, threshold,
/// expiry date and whether the e-mail went out.
fn notices(list: &[Notice]) -> Markup {
    html! {
        section #notices {
            h2 { "Avis d'expiration / Notices" }
            @if list.is_empty() {
                p { "Aucun avis. / No notice." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Objet / object" } th scope="col" { "Seuil / threshold" }
                        th scope="col" { "Expiration" } th scope="col" { "Envoi / sent" }
                    } }
                    tbody { @for n in list {
                        tr {
                            td { (n.kind.as_str()) " " (n.label) br; code { (n.object_id) } }
                            td { (n.threshold_days) " j / days" }
                            td { (n.expires_at.date()) }
                            td { (delivery(n)) }
                        }
                    } }
                }
            }
        }
    }
}

/// A notice's delivery, in words.
fn delivery(n: &Notice) -> String {
    match (n.delivery, n.sent_at) {
        (Delivery::Sent, Some(at)) => format!(
            "envoyé / sent {} {:02}:{:02} UTC",
            at.date(),
            at.hour(),
            at.minute()
        ),
        (Delivery::Sent, None) => "envoyé / sent".into(),
        (Delivery::Pending, _) => "à renvoyer / to be retried".into(),
        (Delivery::DashboardOnly, _) => "tableau de bord seulement / dashboard only".into(),
        (Delivery::NoRecipient, _) => "aucun contact e-mail / no contact e-mail".into(),
    }
}

/// Denials by failing control.
fn errors_by_control(per_control: &BTreeMap<String, u64>) -> Markup {
    html! {
        section {
            h2 { "Erreurs par contrôle / Errors by control" }
            table {
                thead { tr {
                    th scope="col" { "Contrôle / control" } th scope="col" { "Refus / denials" }
                } }
                tbody { @for (control, n) in per_control {
                    tr { td { (control) } td { (n) } }
                } }
            }
        }
    }
}

/// The last requests, newest first, each refusal explained.
fn last_requests(recent: &[TraceEvent]) -> Markup {
    html! {
        section {
            h2 { "50 dernières requêtes / Last 50 requests" }
            div.scroll { table #last-requests {
                thead { tr {
                    th scope="col" { "Heure / time" } th scope="col" { "Requête / request" }
                    th scope="col" { "Statut" } th scope="col" { "Décision" }
                    th scope="col" { "Motif / reason" }
                } }
                tbody { @for e in recent {
                    tr {
                        td { (to_the_second(e)) }
                        td { (request(e)) }
                        td { (e.status) }
                        td class=(e.decision) { (e.decision) }
                        td { (explain(e)) }
                    }
                } }
            } }
        }
    }
}

/// When `e` arrived, to the second (`2026-11-23T20:17:15`, UTC).
fn to_the_second(e: &TraceEvent) -> String {
    let mut text = crate::audit::timestamp(e.at);
    text.truncate(19);
    text
}

/// A data call as `GET dataset SIREN year`, anything else as method and path.
fn request(e: &TraceEvent) -> String {
    let method = e.method.as_ref().map_or("", |m| m.as_str());
    match (&e.dataset, &e.siren, e.year) {
        (Some(d), Some(s), Some(y)) => format!("{method} {d} {s} {y}"),
        _ => format!("{method} {}", e.path),
    }
}
