//! `GET /dashboard/usage`: the partner's usage as charts, each followed by
//! its data table — calls per day per application by decision (stacked
//! bars), denials by error code with its meaning (horizontal bars), and
//! each day's busiest minute against the application's quota (bars and a
//! labelled quota line) — with the span, what counts as a call, and links
//! to the same data as CSV.

use super::{AppUsage, DAYS, Usage, collect};
use crate::admin::Admin;
use crate::audit::query::MAX_SCAN;
use crate::dashboard::chart::{
    BarChart, Fill, HorizontalChart, Limit, Series, bar_chart, horizontal_chart,
};
use crate::dashboard::explain::meaning;
use crate::dashboard::html::{Tone, alert, page, section};
use crate::dashboard::lang::Lang;
use crate::dashboard::messages::{CallsSummary, Msg, PeaksSummary};
use crate::dashboard::partner::environment_badge;
use crate::dashboard::{DashboardError, off_thread};
use crate::registry::Partner;
use maud::{Markup, html};
use std::sync::Arc;
use time::OffsetDateTime;

/// The page for `partner` (the trail is read off the serving thread).
pub async fn render(
    state: &Arc<Admin>,
    lang: Lang,
    partner: Partner,
) -> Result<Markup, DashboardError> {
    let id = partner.id.clone();
    let now = OffsetDateTime::now_utc();
    let usage = off_thread(state, move |state| collect(state, &id, now)).await??;
    let body = html! {
        p.lead { (partner.name) " — SIREN " (partner.siren) }
        p { (lang.period(usage.first, usage.last())) " " (lang.t(Msg::UsageCalls)) }
        ul {
            li { a href="/dashboard" { (lang.t(Msg::BackToDashboard)) } }
            li { a href="/dashboard/usage.csv" { (lang.t(Msg::CsvDays)) } }
            li { a href="/dashboard/usage.csv?table=denials" { (lang.t(Msg::CsvDenials)) } }
        }
        @if !usage.complete {
            (alert(Tone::Warning, false, lang.t(Msg::PartialTitle), html! { (lang.partial(MAX_SCAN)) }))
        }
        (section("calls", lang.t(Msg::UsageTitle), calls(lang, &usage)))
        (section("denials", lang.t(Msg::DenialsByCode), denials(lang, &usage)))
        (section("peaks", lang.t(Msg::PeakTitle), peaks(lang, &usage)))
    };
    let title = format!("{} — {}", lang.t(Msg::UsagePage), partner.name);
    Ok(page(lang, &title, body))
}

/// Calls per day of each application, admitted at the bottom of each bar
/// (solid), denied on top (hatched).
fn calls(lang: Lang, usage: &Usage) -> Markup {
    let series = [
        Series {
            name: lang.t(Msg::Admitted),
            fill: Fill::Solid,
        },
        Series {
            name: lang.t(Msg::Denied),
            fill: Fill::Hatched,
        },
    ];
    let (first, last) = (usage.first.to_string(), usage.last().to_string());
    html! {
        @for (i, app) in usage.apps.iter().enumerate() {
            @let points = per_day(usage, app, |d| vec![d.admitted, d.denied]);
            @let busiest = largest(&points);
            @let (admitted, denied) = app.days.iter()
                .fold((0, 0), |(a, d), day| (a + day.admitted, d + day.denied));
            @let desc = lang.calls_summary(&CallsSummary { first: &first, last: &last, admitted, denied, busiest });
            (heading(lang, app))
            (bar_chart(lang, &BarChart {
                id: &format!("calls-{i}"),
                title: &format!("{} — {}", lang.t(Msg::CallsPerDay), app.name),
                desc: &desc,
                x_label: lang.t(Msg::Day),
                y_label: lang.t(Msg::Calls),
                series: &series,
                points: &points,
                limit: None,
            }))
        }
    }
}

/// Denials by code over every application and day, with each code's
/// meaning.
fn denials(lang: Lang, usage: &Usage) -> Markup {
    let by_code = usage.by_code();
    let Some(&(most, most_n)) = by_code.first() else {
        return html! { p { (lang.t(Msg::NoDenial)) } };
    };
    let points: Vec<(String, u64)> = (by_code.iter())
        .map(|(code, n)| {
            let said = usage.causes.get(*code).map(|c| meaning(c, lang));
            (format!("{code} — {}", said.unwrap_or_default()), *n)
        })
        .collect();
    let total = by_code.iter().map(|c| c.1).sum();
    let desc = lang.codes_summary(total, by_code.len(), (most, most_n));
    horizontal_chart(
        lang,
        &HorizontalChart {
            id: "denials-chart",
            title: lang.t(Msg::DenialsByCode),
            desc: &desc,
            label_head: lang.t(Msg::CodeMeaning),
            value_label: lang.t(Msg::Denials),
            points: &points,
        },
    )
}

/// Each application's busiest minute of each day, against its quota.
fn peaks(lang: Lang, usage: &Usage) -> Markup {
    let series = [Series {
        name: lang.t(Msg::PeakPerMinute),
        fill: Fill::Solid,
    }];
    let (first, last) = (usage.first.to_string(), usage.last().to_string());
    html! {
        @for (i, app) in usage.apps.iter().enumerate() {
            @let points = per_day(usage, app, |d| vec![d.peak]);
            @let highest = largest(&points);
            @let quota = app.quota_per_minute;
            @let days_at_quota = app.days.iter().filter(|d| d.peak >= u64::from(quota)).count();
            @let desc = lang.peaks_summary(&PeaksSummary { first: &first, last: &last, highest, quota, days_at_quota });
            @let label = lang.quota_line(quota);
            (heading(lang, app))
            (bar_chart(lang, &BarChart {
                id: &format!("peaks-{i}"),
                title: &format!("{} — {}", lang.t(Msg::PeakPerMinute), app.name),
                desc: &desc,
                x_label: lang.t(Msg::Day),
                y_label: lang.t(Msg::PeakPerMinute),
                series: &series,
                points: &points,
                limit: Some(Limit { value: u64::from(quota), label: &label, column: lang.t(Msg::QuotaPerMinute) }),
            }))
        }
    }
}

/// An application's heading: its name, client id and environment.
fn heading(lang: Lang, app: &AppUsage) -> Markup {
    html! {
        h3 { (app.name) }
        p {
            (lang.t(Msg::ClientId)) (lang.pick(" : ", ": ")) code { (app.client_id) } " "
            (environment_badge(lang, app.environment))
        }
    }
}

/// The first day with the largest (positive) sum of values, and that sum.
fn largest(points: &[(String, Vec<u64>)]) -> Option<(&str, u64)> {
    let mut best: Option<(&str, u64)> = None;
    for (day, values) in points {
        let n = values.iter().sum();
        if n > 0 && best.is_none_or(|(_, m)| n > m) {
            best = Some((day, n));
        }
    }
    best
}

/// One point per day shown (`YYYY-MM-DD`, oldest first) with `values` of
/// `app`'s day.
fn per_day(
    usage: &Usage,
    app: &AppUsage,
    values: impl Fn(&super::Day) -> Vec<u64>,
) -> Vec<(String, Vec<u64>)> {
    (0..DAYS)
        .zip(&app.days)
        .map(|(i, d)| (usage.day(i).to_string(), values(d)))
        .collect()
}
