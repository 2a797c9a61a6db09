//! The public status page (`GET /status`), in French: the state now, one
//! bar a day over the last 7 days per component with its rate (the same
//! figures as a table, the chart's text alternative), the 90-day rates
//! against the objective, open incidents and maintenances to come. Server
//! rendered with maud through the dashboards' layout; no script. It never
//! names a partner: only components, incidents and maintenances.

use super::board::{Incident, Maintenance, MaintenanceStatus, Update, UpdateStatus};
use super::summary::Component;
use super::window::instant;
use super::{DayView, Status};
use crate::availability::Availability;
use crate::dashboard::html::page;
use crate::dashboard::lang::Lang;
use crate::domain::Environment;
use maud::{Markup, html};
use time::OffsetDateTime;

/// Days drawn as bars.
const BARS: usize = 7;

/// The page as seen from `env`'s listener; `rates` holds each component's
/// last 90 days, oldest first.
pub fn render(
    status: &Status,
    availability: &Availability,
    env: Environment,
    rates: &[(Environment, Vec<DayView>)],
    now: OffsetDateTime,
) -> Markup {
    let components = status.components(availability, now);
    let indicator = status.indicator(&components);
    let board = status.board();
    let local = Local(status);
    let body = html! {
        p { "Heures affichées en heure locale (" (status.settings.timezone.name) "). Page de l'environnement "
            (super::summary::name(env)) ", à jour le " (local.time(now)) "." }
        section aria-labelledby="now" {
            h2 #now { "État actuel : " (indicator.description) }
            (now_table(&components))
        }
        section aria-labelledby="days" {
            h2 #days { "Disponibilité des 7 derniers jours" }
            @for (component, days) in rates {
                (week(*component, days))
            }
        }
        section aria-labelledby="quarter" {
            h2 #quarter { "Disponibilité sur 90 jours" }
            (quarter(status, rates))
        }
        section aria-labelledby="incidents" {
            h2 #incidents { "Incidents en cours" }
            (incidents(&local, board.incidents.iter().filter(|i| i.is_open())))
        }
        section aria-labelledby="maintenances" {
            h2 #maintenances { "Maintenances à venir ou en cours" }
            (maintenances(&local, board.maintenances.iter().filter(|m| m.is_pending(now)), now))
        }
        section aria-labelledby="feeds" {
            h2 #feeds { "Suivre" }
            ul {
                li { a href="/status/feed.atom" { "Flux Atom des incidents et maintenances" } }
                li { a href="/status/api/v2/summary.json" { "Résumé au format Statuspage (JSON)" } }
                li { a href="/status/history.json?days=90" { "Historique de disponibilité, 90 jours (JSON)" } }
            }
        }
    };
    page(Lang::Fr, "OPALE — état du service", body)
}

/// Each component's status now.
fn now_table(components: &[Component]) -> Markup {
    html! {
        div.table role="region" aria-label="État de chaque environnement" tabindex="0" {
            table {
                caption { "État de chaque environnement" }
                thead { tr { th scope="col" { "Environnement" } th scope="col" { "État" } } }
                tbody { @for c in components {
                    tr { th scope="row" { (c.name) } td { (c.status.label()) } }
                } }
            }
        }
    }
}

/// A rate in French (`99,95 %`), or a dash when nothing was measured.
fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{:.2} %", r * 100.0).replace('.', ","),
        None => "non mesuré".into(),
    }
}

/// One component's last 7 days: a bar chart and the same as a table.
fn week(env: Environment, days: &[DayView]) -> Markup {
    let last = &days[days.len().saturating_sub(BARS)..];
    let name = super::summary::name(env);
    let title_id = format!("bars-{env}");
    html! {
        h3 { (name) }
        svg.status-bars role="img" aria-labelledby=(title_id) viewBox="0 0 360 120" width="100%" {
            title id=(title_id) { "Disponibilité par jour, " (name) ", 7 derniers jours (détail dans le tableau ci-dessous)" }
            line x1="30" y1="100" x2="350" y2="100" stroke="#161616" {}
            text x="0" y="14" font-size="10" { "100 %" }
            text x="0" y="100" font-size="10" { "0 %" }
            @for (i, d) in last.iter().enumerate() {
                // An unmeasured day gets a grey stub, so that it reads as
                // "no data" rather than as a day at 0 %.
                @let h = d.availability.map_or(4.0, |a| a * 90.0);
                @let x = 34.0 + i as f64 * 45.0;
                rect x=(format!("{x:.0}")) y=(format!("{:.1}", 100.0 - h)) width="36"
                    height=(format!("{h:.1}")) fill=(bar_colour(d.availability)) {}
                text x=(format!("{x:.0}")) y="114" font-size="10" { (d.date.get(5..).unwrap_or(&d.date)) }
            }
        }
        div.table role="region" aria-label=(format!("Disponibilité par jour, {name}")) tabindex="0" {
            table {
                caption { "Disponibilité par jour, " (name) }
                thead { tr {
                    th scope="col" { "Jour" } th scope="col" { "Plage d'ouverture" }
                    th scope="col" { "Heures de couverture" } th scope="col" { "Minutes d'indisponibilité" }
                } }
                tbody { @for d in last {
                    tr {
                        th scope="row" { time datetime=(d.date) { (d.date) } }
                        td { (percent(d.availability)) }
                        td { (percent(d.coverage_availability)) }
                        td { (d.down_minutes) }
                    }
                } }
            }
        }
    }
}

/// Bleu France for a full day, rouge Marianne below it, grey unmeasured.
fn bar_colour(rate: Option<f64>) -> &'static str {
    match rate {
        None => "#929292",
        Some(r) if r >= 1.0 => "#000091",
        Some(_) => "#c9191e",
    }
}

/// The 90-day rates of each component against the objective.
fn quarter(status: &Status, rates: &[(Environment, Vec<DayView>)]) -> Markup {
    let objective = status.settings.coverage_objective;
    html! {
        div.table role="region" aria-label="Disponibilité sur 90 jours par environnement" tabindex="0" {
            table {
                caption { "Disponibilité sur 90 jours et objectif de " (percent(Some(objective))) " sur les heures de couverture ("
                    (status.settings.coverage_hours) ")" }
                thead { tr {
                    th scope="col" { "Environnement" } th scope="col" { "Plage d'ouverture" }
                    th scope="col" { "Heures de couverture" } th scope="col" { "Objectif" }
                } }
                tbody { @for (env, days) in rates {
                    @let (range, coverage) = totals(days);
                    tr {
                        th scope="row" { (super::summary::name(*env)) }
                        td { (percent(range)) }
                        td { (percent(coverage)) }
                        td { @match coverage {
                            Some(c) if c >= objective => { "atteint" }
                            Some(_) => { "non atteint" }
                            None => { "non mesuré" }
                        } }
                    }
                } }
            }
        }
    }
}

/// The rates over all `days`: opening range, coverage hours.
fn totals(days: &[DayView]) -> (Option<f64>, Option<f64>) {
    let sum = |f: fn(&DayView) -> (u32, u32)| {
        let (total, down) = days
            .iter()
            .map(f)
            .fold((0u32, 0u32), |a, b| (a.0 + b.0, a.1 + b.1));
        (total > 0).then(|| f64::from(total - down) / f64::from(total))
    };
    (
        sum(|d| (d.range_minutes, d.down_minutes)),
        sum(|d| (d.coverage_minutes, d.coverage_down_minutes)),
    )
}

/// Open incidents, each with its messages.
fn incidents<'a>(local: &Local<'_>, list: impl Iterator<Item = &'a Incident>) -> Markup {
    let list: Vec<_> = list.collect();
    html! {
        @if list.is_empty() { p { "Aucun incident en cours." } }
        @for i in list {
            article id=(format!("incident-{}", i.id)) {
                h3 { (i.name) }
                p { "Impact : " (impact(i)) " — environnements : " (components(&i.components)) }
                (updates(local, &i.incident_updates))
            }
        }
    }
}

/// Maintenances not over, with their local times.
fn maintenances<'a>(
    local: &Local<'_>,
    list: impl Iterator<Item = &'a Maintenance>,
    now: OffsetDateTime,
) -> Markup {
    let list: Vec<_> = list.collect();
    html! {
        @if list.is_empty() { p { "Aucune maintenance prévue." } }
        @for m in list {
            article id=(format!("maintenance-{}", m.id)) {
                h3 { (m.name) @if m.status(now) == MaintenanceStatus::InProgress { " (en cours)" } }
                p { "Du " (local.time(m.scheduled_for)) " au " (local.time(m.ends_at()))
                    " — environnements : " (components(&m.components))
                    @if m.emergency { " — maintenance d'urgence, comptée comme indisponibilité" } }
                p { (m.message) }
            }
        }
    }
}

/// The messages of an incident, newest first.
fn updates(local: &Local<'_>, list: &[Update]) -> Markup {
    html! {
        ul { @for u in list {
            li { (local.time(u.created_at)) " — " strong { (update_status(u.status)) } " : " (u.body) }
        } }
    }
}

fn impact(i: &Incident) -> &'static str {
    use super::board::Impact::*;
    match i.impact {
        None => "aucun",
        Minor => "mineur",
        Major => "majeur",
        Critical => "critique",
    }
}

fn update_status(s: UpdateStatus) -> &'static str {
    match s {
        UpdateStatus::Investigating => "Analyse en cours",
        UpdateStatus::Identified => "Cause identifiée",
        UpdateStatus::Monitoring => "Sous surveillance",
        UpdateStatus::Resolved => "Résolu",
        UpdateStatus::Scheduled => "Programmée",
        UpdateStatus::Cancelled => "Annulée",
    }
}

fn components(list: &[Environment]) -> String {
    list.iter()
        .map(|e| super::summary::name(*e))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Times shown in the configured zone.
pub(super) struct Local<'a>(pub &'a Status);

impl Local<'_> {
    /// `<time datetime="RFC 3339">07/12/2026 à 09:15</time>`.
    pub fn time(&self, t: OffsetDateTime) -> Markup {
        let local = self.0.settings.timezone.tz.to_datetime(instant(t));
        html! { time datetime=(crate::audit::timestamp(t)) { (local.strftime("%d/%m/%Y à %H:%M")) } }
    }
}
