//! `GET /status/feed.atom`: incidents (90 days) and maintenances as an
//! Atom feed (RFC 4287), newest change first, one entry each. The markup
//! goes through maud, so every spliced text is escaped; elements are
//! closed explicitly (`<link …></link>`), which XML accepts.

use super::Status;
use super::board::{Incident, Maintenance};
use crate::domain::Environment;
use maud::{Markup, PreEscaped, html};
use time::OffsetDateTime;

/// The feed as seen from `env`'s listener.
pub fn render(status: &Status, env: Environment, now: OffsetDateTime) -> String {
    let base = format!("{}/status", status.url(env));
    let board = status.board();
    let cutoff = now - time::Duration::days(super::task::RETENTION_DAYS);
    let mut entries: Vec<(OffsetDateTime, Markup)> = Vec::new();
    for i in board
        .incidents
        .iter()
        .filter(|i| i.resolved_at.is_none_or(|r| r >= cutoff))
    {
        entries.push((i.updated_at, incident(&base, i)));
    }
    for m in &board.maintenances {
        entries.push((m.updated_at, maintenance(&base, m)));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let updated = entries.first().map_or(board.since.unwrap_or(now), |e| e.0);
    let feed = html! {
        (PreEscaped("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"))
        (PreEscaped("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"fr\">"))
        id { (base) }
        title { "OPALE — incidents et maintenances" }
        updated { (stamp(updated)) }
        link rel="self" type="application/atom+xml" href=(format!("{base}/feed.atom")) {}
        link rel="alternate" type="text/html" href=(base) {}
        author { name { "OPALE" } }
        @for (_, entry) in &entries { (entry) }
        (PreEscaped("</feed>\n"))
    };
    feed.into_string()
}

/// RFC 3339 in UTC.
fn stamp(t: OffsetDateTime) -> String {
    crate::audit::timestamp(t)
}

fn incident(base: &str, i: &Incident) -> Markup {
    let link = format!("{base}#incident-{}", i.id);
    let state = serde_json::to_value(i.status).ok();
    let state = state.as_ref().and_then(|v| v.as_str()).unwrap_or("");
    html! {
        entry {
            id { (link) }
            title { "Incident : " (i.name) " (" (state) ")" }
            published { (stamp(i.created_at)) }
            updated { (stamp(i.updated_at)) }
            link rel="alternate" type="text/html" href=(link) {}
            content type="text" {
                @for u in &i.incident_updates { (stamp(u.created_at)) " — " (u.body) "\n" }
            }
        }
    }
}

fn maintenance(base: &str, m: &Maintenance) -> Markup {
    let link = format!("{base}#maintenance-{}", m.id);
    let cancelled = m.cancelled_at.is_some();
    html! {
        entry {
            id { (link) }
            title { (m.name) @if cancelled { " (annulée)" } }
            published { (stamp(m.created_at)) }
            updated { (stamp(m.updated_at)) }
            link rel="alternate" type="text/html" href=(link) {}
            content type="text" {
                "Du " (stamp(m.scheduled_for)) " au " (stamp(m.scheduled_until)) "\n"
                @for u in &m.incident_updates { (stamp(u.created_at)) " — " (u.body) "\n" }
            }
        }
    }
}
