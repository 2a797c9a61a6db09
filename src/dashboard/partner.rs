//! The partner dashboard: usage per day, last 50 requests with the reason
//! of each refusal, errors by control, quota use, certificate and
//! credential expiry warnings. Only the partner's own applications.

use super::html::{bar_chart, esc, explain, page};
use crate::app::App;
use crate::audit::TraceEvent;
use crate::audit::query::{self, Filter};
use crate::registry::{CertStatus, Partner};
use std::collections::BTreeMap;
use std::fmt::Write;
use time::{Duration, OffsetDateTime};

const LAST: usize = 50;
const DAYS: i64 = 30;

/// The page for `partner`.
pub fn render(app: &App, partner: &Partner) -> String {
    let snap = app.registry.snapshot();
    let mut apps: Vec<_> = snap
        .applications
        .values()
        .filter(|a| a.partner_id == partner.id)
        .collect();
    apps.sort_by_key(|a| a.created_at);
    let now = OffsetDateTime::now_utc();
    let (recent, per_day, per_control) = activity(app, partner, now);
    let mut body = format!(
        "<p>{} — SIREN {} — <a href=\"/dashboard\">actualiser / refresh</a></p>",
        esc(&partner.name),
        partner.siren
    );
    body.push_str(
        "<section><h2>Applications, quotas et échéances / Applications, quotas and expiry</h2>",
    );
    for a in &apps {
        let q = app
            .quotas
            .peek(a.environment, &a.client_id, a.quota_per_minute);
        let _ = write!(
            body,
            "<h3>{} ({}, {})</h3><p>client_id <code>{}</code> — quota : {} / {} appels restants cette minute (calls left this minute)</p>",
            esc(&a.name),
            a.environment,
            esc(&format!("{:?}", a.status).to_lowercase()),
            a.client_id,
            q.remaining,
            q.limit
        );
        body.push_str(&expiry(
            "Habilitation / grant",
            a.valid_until.midnight().assume_utc(),
            now,
        ));
        for c in snap
            .certificates_of(&a.client_id)
            .into_iter()
            .filter(|c| c.status == CertStatus::Active)
        {
            body.push_str(&expiry(
                &format!("Certificat / certificate {}", &c.thumbprint.as_str()[..12]),
                c.not_after,
                now,
            ));
        }
    }
    body.push_str("</section>");
    let points: Vec<(String, u64)> = per_day.into_iter().collect();
    let _ = write!(
        body,
        "<section><h2>Usage par jour (30 jours) / Usage per day (30 days)</h2>{}</section>",
        bar_chart("Appels par jour / Calls per day", &points)
    );
    body.push_str("<section><h2>Erreurs par contrôle / Errors by control</h2><table><thead><tr><th scope=\"col\">Contrôle / control</th><th scope=\"col\">Refus / denials</th></tr></thead><tbody>");
    for (control, n) in &per_control {
        let _ = write!(body, "<tr><td>{}</td><td>{n}</td></tr>", esc(control));
    }
    body.push_str("</tbody></table></section>");
    body.push_str(&last_requests(&recent));
    page(
        &format!(
            "OPALE — tableau de bord partenaire / partner dashboard — {}",
            partner.name
        ),
        &body,
    )
}

type Activity = (
    Vec<TraceEvent>,
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
);

fn activity(app: &App, partner: &Partner, now: OffsetDateTime) -> Activity {
    let mut per_day = BTreeMap::new();
    for d in 0..DAYS {
        per_day.insert((now - Duration::days(DAYS - 1 - d)).date().to_string(), 0);
    }
    let filter = Filter {
        partner_id: Some(partner.id.to_string()),
        ..Filter::default()
    };
    let (mut recent, mut per_control) = (Vec::new(), BTreeMap::new());
    let _ = query::scan_newest(app.audit.store(), None, |r| {
        if !filter.matches(&r) || r.event.plane == crate::domain::Plane::Admin {
            return true;
        }
        if let Some(n) = r.event.time.get(..10).and_then(|d| per_day.get_mut(d)) {
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
    (recent, per_day, per_control)
}

fn expiry(what: &str, until: OffsetDateTime, now: OffsetDateTime) -> String {
    let days = (until - now).whole_days();
    let (class, note) = match days {
        d if d < 0 => ("crit", "expiré / expired".to_owned()),
        d if d <= 7 => (
            "crit",
            format!("expire dans {d} jours / expires in {d} days"),
        ),
        d if d <= 30 => (
            "warn",
            format!("expire dans {d} jours / expires in {d} days"),
        ),
        d if d <= 90 => (
            "warn",
            format!("expire dans {d} jours / expires in {d} days"),
        ),
        _ => return format!("<p>{} : {} </p>", esc(what), until.date()),
    };
    format!(
        "<p class=\"{class}\" role=\"status\">{} : {} — {}</p>",
        esc(what),
        until.date(),
        esc(&note)
    )
}

fn last_requests(recent: &[TraceEvent]) -> String {
    let mut t = String::from(
        "<section><h2>50 dernières requêtes / Last 50 requests</h2><div class=\"scroll\"><table id=\"last-requests\"><thead><tr>\
         <th scope=\"col\">Heure / time</th><th scope=\"col\">Requête / request</th><th scope=\"col\">Statut</th>\
         <th scope=\"col\">Décision</th><th scope=\"col\">Motif / reason</th></tr></thead><tbody>",
    );
    for e in recent {
        let what = match (&e.dataset, &e.siren, e.year) {
            (Some(d), Some(s), Some(y)) => format!("{} {d} {s} {y}", e.method),
            _ => format!("{} {}", e.method, e.path),
        };
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(e.time.get(..19).unwrap_or(&e.time)),
            esc(&what),
            e.status,
            esc(e.decision.as_str()),
            esc(e.decision.as_str()),
            explain(e)
        );
    }
    t.push_str("</tbody></table></div></section>");
    t
}
