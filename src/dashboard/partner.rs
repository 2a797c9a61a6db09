//! The partner dashboard: a summary of the last 30 days' calls with links
//! to the usage page (`usage/`) and its CSV, last 50 requests with the
//! reason of each refusal, errors by control, quota use, certificate and
//! credential expiry warnings, expiry notices sent or due. Only the
//! partner's own applications.

use super::admin::status_badge;
use super::explain::explain;
use super::html::{Tone, alert, badge, page, section, table};
use super::lang::Lang;
use super::messages::Msg;
use super::usage::{first_day, is_call};
use super::{DashboardError, off_thread};
use crate::admin::Admin;
use crate::audit::query::{self, Filter};
use crate::audit::{Decision, TraceEvent};
use crate::chain::Control;
use crate::domain::Environment;
use crate::notify::{Delivery, Notice};
use crate::quota::Decision as QuotaLeft;
use crate::registry::{Application, CertStatus, Partner, Snapshot};
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// Rows of the "last requests" table.
const LAST: usize = 50;

/// The page for `partner` (the trace scan runs off the serving thread).
pub async fn render(
    state: &Arc<Admin>,
    lang: Lang,
    partner: Partner,
) -> Result<Markup, DashboardError> {
    let now = OffsetDateTime::now_utc();
    let id = partner.id.to_string();
    let (recent, calls, per_control) =
        off_thread(state, move |state| activity(state, &id, now)).await?;
    let body = html! {
        p.lead { (partner.name) " — SIREN " (partner.siren) }
        ul.links {
            li { a href="/dashboard" { (lang.t(Msg::Refresh)) } }
            li { a href=(format!("/dashboard/partners/{}/contacts", partner.id)) {
                (lang.pick("Contacts de la convention", "Contacts of the agreement")) } }
        }
        (service_notices(state, lang, &partner, now))
        (applications(state, lang, &partner, now).await)
        (notices(lang, &state.notices.list(Some(partner.id.as_str()))))
        (section("usage", lang.t(Msg::UsagePage), usage(lang, calls)))
        (errors_by_control(lang, &per_control))
        (last_requests(lang, &recent))
    };
    let title = format!("{} — {}", lang.t(Msg::PartnerTitle), partner.name);
    Ok(page(lang, &title, body))
}

/// Each application as a card: quota left this minute, grant and
/// certificate expiry.
async fn applications(state: &Admin, lang: Lang, partner: &Partner, now: OffsetDateTime) -> Markup {
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
    section(
        "applications",
        lang.t(Msg::AppsTitle),
        html! {
            div.row {
                @for (a, q) in apps.iter().zip(quotas) {
                    div.col-12.col-md-6.col-lg-4 { (card(&snap, lang, a, q, now)) }
                }
            }
        },
    )
}

/// One application's card.
fn card(
    snap: &Snapshot,
    lang: Lang,
    a: &Application,
    q: Option<QuotaLeft>,
    now: OffsetDateTime,
) -> Markup {
    html! {
        div.card {
            h3 { (a.name) }
            p { (environment_badge(lang, a.environment)) " " (status_badge(lang, a.status)) }
            dl.facts {
                dt { (lang.t(Msg::ClientId)) } dd { code { (a.client_id) } }
                dt { (lang.t(Msg::Quota)) }
                dd { @match q {
                    Some(q) => { (lang.quota_left(q.remaining.into(), q.limit.into())) }
                    None => { (lang.t(Msg::QuotaUnavailable)) }
                } }
            }
            p { a href=(format!("/dashboard/applications/{}", a.client_id))
                aria-label=(format!("{} {}", lang.pick("Secret et certificats de", "Secret and certificates of"), a.name)) {
                (lang.pick("Secret et certificats", "Secret and certificates")) } }
            (expiry(lang, lang.t(Msg::Grant), a.valid_until.midnight().assume_utc(), now))
            @for c in snap.certificates_of(&a.client_id) {
                @if c.status == CertStatus::Active {
                    @let thumb = c.thumbprint.as_str();
                    @let short = thumb.get(..12).unwrap_or(thumb);
                    (expiry(lang, &format!("{} {short}", lang.t(Msg::Certificate)), c.not_after, now))
                }
            }
        }
    }
}

/// The last requests, the 30 days' calls (all, denied) and denials by
/// control.
type Activity = (Vec<TraceEvent>, (u64, u64), BTreeMap<Control, u64>);

/// The partner's last [`LAST`] requests, its calls over the usage page's
/// 30 days (calls as that page counts them) and denials by control.
/// Blocking: reads the store.
fn activity(state: &Admin, partner_id: &str, now: OffsetDateTime) -> Activity {
    let since = first_day(now).midnight().assume_utc();
    let mut calls = (0, 0);
    let filter = Filter {
        partner_id: Some(partner_id.to_owned()),
        ..Filter::default()
    };
    let (mut recent, mut per_control) = (Vec::new(), BTreeMap::new());
    let scanned = query::scan_newest(&state.audit, None, |r| {
        if !filter.matches(&r) || r.event.plane == crate::domain::Plane::Admin {
            return true;
        }
        if is_call(&r.event) && r.event.at >= since {
            calls.0 += 1;
            if r.event.decision == Decision::Denied {
                calls.1 += 1;
            }
        }
        if let Some(c) = r.event.control {
            *per_control.entry(c).or_default() += 1;
        }
        if recent.len() < LAST {
            recent.push(r.event);
        }
        true
    });
    if let Err(e) = scanned {
        tracing::warn!(error = %e, "partner dashboard: trace scan stopped early");
    }
    (recent, calls, per_control)
}

/// The 30 days' calls in one sentence, and the way to the usage page and
/// its CSV.
fn usage(lang: Lang, (calls, denied): (u64, u64)) -> Markup {
    html! {
        p { (lang.usage_summary(calls, denied)) }
        ul {
            li { a href="/dashboard/usage" { (lang.t(Msg::UsageLink)) } }
            li { a href="/dashboard/usage.csv" { (lang.t(Msg::CsvDays)) } }
        }
    }
}

/// An expiry date: a plain line, or an alert from 90 days before
/// (a red one from 7 days before, and once expired).
fn expiry(lang: Lang, what: &str, until: OffsetDateTime, now: OffsetDateTime) -> Markup {
    let days = (until - now).whole_days();
    let (tone, note) = match days {
        d if d < 0 => (Tone::Error, lang.t(Msg::Expired).to_owned()),
        d if d <= 7 => (Tone::Error, lang.expires_in(d)),
        d if d <= 90 => (Tone::Warning, lang.expires_in(d)),
        _ => return html! { p.text-sm { (what) (lang.pick(" : ", ": ")) (until.date()) } },
    };
    alert(tone, false, what, html! { (until.date()) " — " (note) })
}

/// Open incidents and maintenances not over on the environments of the
/// partner's applications (docs/contract.md §11), as announced by e-mail.
fn service_notices(state: &Admin, lang: Lang, partner: &Partner, now: OffsetDateTime) -> Markup {
    let snap = state.registry.snapshot();
    let envs: Vec<_> = snap
        .applications
        .values()
        .filter(|a| a.partner_id == partner.id)
        .map(|a| a.environment)
        .collect();
    let touches = |list: &[crate::domain::Environment]| list.iter().any(|e| envs.contains(e));
    let board = state.status.board();
    let incidents: Vec<_> = (board.incidents.iter())
        .filter(|i| i.is_open() && touches(&i.components))
        .collect();
    let maintenances: Vec<_> = (board.maintenances.iter())
        .filter(|m| m.is_pending(now) && touches(&m.components))
        .collect();
    let names = |list: &[crate::domain::Environment]| {
        list.iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let stamp = crate::audit::timestamp;
    let title = lang.pick("Incidents et maintenances", "Incidents and maintenance");
    section(
        "service",
        title,
        html! {
            @if incidents.is_empty() && maintenances.is_empty() {
                p { (lang.pick("Aucun incident en cours, aucune maintenance prévue.",
                    "No open incident, no maintenance scheduled.")) }
            }
            @for i in &incidents {
                (alert(Tone::Error, false, &format!("Incident : {}", i.name), html! {
                    (names(&i.components))
                    @if let Some(u) = i.incident_updates.first() { " — " (u.body) }
                }))
            }
            @for m in &maintenances {
                (alert(Tone::Warning, false, &m.name, html! {
                    (names(&m.components)) " — "
                    time datetime=(stamp(m.scheduled_for)) { (stamp(m.scheduled_for)) }
                    " → "
                    time datetime=(stamp(m.ends_at())) { (stamp(m.ends_at())) }
                    " — " (m.message)
                }))
            }
            @if let Some(env) = envs.first() {
                @let url = format!("{}/status", state.status.url(*env));
                p { (lang.pick("État du service et disponibilité : ", "Service status and availability: "))
                    a href=(url) { (url) } }
            }
        },
    )
}

/// The partner's expiry notices (`crate::notify`): object, threshold,
/// expiry date and whether the e-mail went out.
fn notices(lang: Lang, list: &[Notice]) -> Markup {
    let head = [Msg::Object, Msg::Threshold, Msg::Expiry, Msg::Delivery].map(|m| lang.t(m));
    section(
        "notices",
        lang.t(Msg::NoticesTitle),
        html! {
            @if list.is_empty() {
                p { (lang.t(Msg::NoNotice)) }
            } @else {
                (table("notices-title", &head, html! {
                    @for n in list {
                        tr {
                            td { (lang.notice_object(n.kind)) " " (n.label) br; code { (n.object_id) } }
                            td { (lang.days(n.threshold_days)) }
                            td { (n.expires_at.date()) }
                            td { (delivery(lang, n)) }
                        }
                    }
                }))
            }
        },
    )
}

/// A notice's delivery, in words.
fn delivery(lang: Lang, n: &Notice) -> String {
    match (n.delivery, n.sent_at) {
        (Delivery::Sent, Some(at)) => lang.sent_at(at.date(), at.hour(), at.minute()),
        (Delivery::Sent, None) => lang.t(Msg::Sent).to_owned(),
        (Delivery::Pending, _) => lang.t(Msg::Pending).to_owned(),
        (Delivery::DashboardOnly, _) => lang.t(Msg::DashboardOnly).to_owned(),
        (Delivery::NoRecipient, _) => lang.t(Msg::NoRecipient).to_owned(),
    }
}

/// Denials by failing control.
fn errors_by_control(lang: Lang, per_control: &BTreeMap<Control, u64>) -> Markup {
    let head = [lang.t(Msg::Control), lang.t(Msg::Denials)];
    section(
        "errors",
        lang.t(Msg::ErrorsByControl),
        html! {
            @if per_control.is_empty() {
                p { (lang.t(Msg::NothingYet)) }
            } @else {
                (table("errors-title", &head, html! {
                    @for (control, n) in per_control {
                        tr { td { (lang.control(*control)) } td.num { (n) } }
                    }
                }))
            }
        },
    )
}

/// The last requests, newest first, each refusal explained.
fn last_requests(lang: Lang, recent: &[TraceEvent]) -> Markup {
    let head = [
        Msg::Time,
        Msg::Request,
        Msg::HttpStatus,
        Msg::Decision,
        Msg::Reason,
    ]
    .map(|m| lang.t(m));
    section(
        "last-requests",
        lang.t(Msg::LastRequests),
        html! {
            @if recent.is_empty() {
                p { (lang.t(Msg::NothingYet)) }
            } @else {
                (table("last-requests-title", &head, html! {
                    @for e in recent {
                        tr {
                            td { (to_the_second(e)) }
                            td { code { (request(e)) } }
                            td { (e.status) }
                            td { (decision_badge(lang, e.decision)) }
                            td { (explain(e, lang)) }
                        }
                    }
                }))
            }
        },
    )
}

/// An environment as a badge: the sandbox stands out in blue.
pub(super) fn environment_badge(lang: Lang, e: Environment) -> Markup {
    let tone = match e {
        Environment::Sandbox => Tone::Info,
        Environment::Production => Tone::Neutral,
    };
    badge(tone, lang.environment(e))
}

/// A traced decision as a badge.
fn decision_badge(lang: Lang, d: Decision) -> Markup {
    let tone = match d {
        Decision::Admitted => Tone::Success,
        Decision::Denied => Tone::Error,
    };
    badge(tone, lang.decision(d))
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
