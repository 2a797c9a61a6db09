//! The admin dashboard: open security events (abnormal usage), every
//! partner (with suspend / resume), live denials by control, top partners
//! by calls, recent admin actions.

use super::html::{Tone, alert, badge, message, page, section, table};
use super::lang::Lang;
use super::messages::Msg;
use super::{DashboardError, form, off_thread, redirect_to, respond};
use crate::admin::Admin;
use crate::audit::TraceEvent;
use crate::audit::query;
use crate::chain::Control;
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
pub async fn render(
    state: &Arc<Admin>,
    lang: Lang,
    thumbprint: &str,
) -> Result<Markup, DashboardError> {
    let (denials, top, actions) = off_thread(state, activity).await?;
    let denials: BTreeMap<String, u64> = denials
        .into_iter()
        .map(|(c, n)| (lang.control(c).to_owned(), n))
        .collect();
    let body = html! {
        (trail_banner(lang, state.audit.open_report()))
        (security_events(lang, &state.abuse.open_events()))
        (partners(lang, &state.registry.snapshot(), |action| {
            form::token_field(&state.form_key, thumbprint, action)
        }))
        (counts(lang, "denials", (Msg::DenialsByControl, Msg::Control), &denials))
        (counts(lang, "top-partners", (Msg::TopPartners, Msg::Partner), &top))
        (admin_actions(lang, &actions))
    };
    Ok(page(lang, lang.t(Msg::AdminTitle), body))
}

/// A red banner while the trail failed its start-up check (records
/// missing or altered since its last checkpoint).
fn trail_banner(lang: Lang, report: &crate::audit::OpenReport) -> Markup {
    if report.intact {
        return html! {};
    }
    let first = report
        .first_bad
        .map(|n| format!(" ({})", lang.record(n)))
        .unwrap_or_default();
    let reason = report.reason.as_deref().unwrap_or("");
    html! {
        div #trail-alert {
            (alert(Tone::Error, true, lang.t(Msg::TrailDamaged), html! {
                (reason) (first) ". " (lang.t(Msg::TrailSee)) " "
                code { "opale-apim admin trace verify" } "."
            }))
        }
    }
}

/// Open security events, newest first, with their reason (cleared with
/// `POST /admin/v1/security-events/{id}/clear`).
fn security_events(lang: Lang, events: &[crate::abuse::SecurityEvent]) -> Markup {
    let title = format!("{} ({})", lang.t(Msg::SecurityEvents), events.len());
    let head = [
        Msg::Time,
        Msg::Kind,
        Msg::Application,
        Msg::IpAddress,
        Msg::Reason,
        Msg::Identifier,
    ]
    .map(|m| lang.t(m));
    section(
        "security-events",
        &title,
        html! {
            @if events.is_empty() {
                p { (lang.t(Msg::NoOpenEvent)) }
            } @else {
                (table("security-events-title", &head, html! {
                    @for e in events.iter().take(100) {
                        tr {
                            td { (crate::audit::timestamp(e.raised_at)) }
                            td { (badge(Tone::Warning, lang.security_kind(e.kind))) }
                            td { code { (e.client_id) } " (" (lang.environment(e.environment)) ")" }
                            td { (e.ip) }
                            td { (e.reason) }
                            td { code { (e.id) } }
                        }
                    }
                }))
            }
        },
    )
}

/// Every partner, by name, with its suspend or resume form (each with the
/// token field `token` gives for its action).
fn partners(lang: Lang, snap: &Snapshot, token: impl Fn(&str) -> Markup) -> Markup {
    let mut partners: Vec<_> = snap.partners.values().collect();
    partners.sort_by(|a, b| a.name.cmp(&b.name));
    let apps_of = |p: &crate::registry::Partner| {
        snap.applications
            .values()
            .filter(|a| a.partner_id == p.id)
            .count()
    };
    let head = [
        Msg::Name,
        Msg::Siren,
        Msg::Applications,
        Msg::Status,
        Msg::Action,
    ]
    .map(|m| lang.t(m));
    section(
        "partners",
        lang.t(Msg::Partners),
        html! {
            (table("partners-title", &head, html! {
                @for p in partners {
                    @let (verb, label) = toggle(p.status);
                    tr {
                        td { (p.name) } td { (p.siren) } td.num { (apps_of(p)) }
                        td { (status_badge(lang, p.status)) }
                        td {
                            @let action = format!("/dashboard/partners/{}/{verb}", p.id);
                            form method="post" action=(action) {
                                (token(&action))
                                button.button.button--secondary.button--sm type="submit"
                                    aria-label=(format!("{} {}", lang.t(label), p.name)) {
                                    (lang.t(label))
                                }
                            }
                        }
                    }
                }
            }))
        },
    )
}

/// A partner's or an application's status as a badge.
pub fn status_badge(lang: Lang, status: Status) -> Markup {
    let tone = match status {
        Status::Active => Tone::Success,
        Status::Suspended => Tone::Warning,
    };
    badge(tone, lang.status(status))
}

/// The action that flips `status`, and its button label.
fn toggle(status: Status) -> (&'static str, Msg) {
    match status {
        Status::Active => ("suspend", Msg::Suspend),
        Status::Suspended => ("resume", Msg::Resume),
    }
}

/// The ten largest counts of `m`, largest first, under `(title, column)`.
fn counts(lang: Lang, id: &str, (title, col): (Msg, Msg), m: &BTreeMap<String, u64>) -> Markup {
    let mut rows: Vec<_> = m.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    let label = format!("{id}-title");
    section(
        id,
        lang.t(title),
        html! {
            @if rows.is_empty() {
                p { (lang.t(Msg::NothingYet)) }
            } @else {
                (table(&label, &[lang.t(col), lang.t(Msg::Count)], html! {
                    @for (k, v) in rows.into_iter().take(10) {
                        tr { td { (k) } td.num { (v) } }
                    }
                }))
            }
        },
    )
}

/// Recent changes made through the admin listener (method and path as
/// recorded, so as any caller sent them: escaped like everything else).
fn admin_actions(lang: Lang, actions: &[TraceEvent]) -> Markup {
    let head = [Msg::Time, Msg::Who, Msg::What, Msg::HttpStatus].map(|m| lang.t(m));
    section(
        "admin-actions",
        lang.t(Msg::AdminActions),
        html! {
            @if actions.is_empty() {
                p { (lang.t(Msg::NothingYet)) }
            } @else {
                (table("admin-actions-title", &head, html! {
                    @for e in actions {
                        tr {
                            td { (crate::audit::timestamp(e.at)) }
                            td { (e.actor_name()) }
                            td { code { (what(e)) } }
                            td { (e.status) }
                        }
                    }
                }))
            }
        },
    )
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
    BTreeMap<Control, u64>,
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
            if let Some(c) = e.control {
                *denials.entry(c).or_default() += 1;
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

/// `POST /dashboard/partners/{id}/suspend|resume`: same-origin forms
/// carrying the token their page gave the signed-in admin only.
pub async fn action(
    state: &Arc<Admin>,
    req: Request<RequestBody>,
    (lang, thumbprint): (Lang, &str),
    id: &str,
    status: Status,
) -> Response<Body> {
    let verb = match status {
        Status::Suspended => "suspend",
        Status::Active => "resume",
    };
    let path = format!("/dashboard/partners/{id}/{verb}");
    let (parts, body) = req.into_parts();
    // Read (bounded) before answering: see `selfservice::Session::posted`.
    let body = body.read(4096).await.unwrap_or_default();
    if !form::same_origin(&Request::from_parts(parts, ())) {
        let page = message(
            lang,
            Msg::RefusedTitle,
            Msg::CrossOriginText,
            Some("/dashboard"),
        );
        return respond(StatusCode::FORBIDDEN, lang, page);
    }
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == form::FIELD)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if !state.form_key.accepts(&token, thumbprint, &path, now) {
        let page = message(
            lang,
            Msg::RefusedTitle,
            Msg::FormExpiredText,
            Some("/dashboard"),
        );
        return respond(StatusCode::FORBIDDEN, lang, page);
    }
    let patch = PartnerPatch {
        status: Some(status),
        ..PartnerPatch::default()
    };
    match state.registry.update_partner(id, patch).await {
        Ok(_) => redirect_to("/dashboard".to_owned()),
        _ => {
            let page = message(
                lang,
                Msg::ActionFailedTitle,
                Msg::ActionFailedText,
                Some("/dashboard"),
            );
            respond(StatusCode::BAD_REQUEST, lang, page)
        }
    }
}
