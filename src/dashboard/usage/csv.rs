//! `GET /dashboard/usage.csv`: the usage page's data as CSV (RFC 4180:
//! a header row, comma-separated fields, CRLF line ends, a field quoted
//! when it holds a comma, a quote or a line break), sent as an attachment
//! with the pages' security headers. Two tables: one row per day and
//! application (the default), or `?table=denials`, one row per day,
//! application and code with at least one denial. A field that a
//! spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`,
//! a tab or a carriage return) is prefixed with `'` (OWASP's advice
//! against CSV injection): the ids are the gateway's, but the CSV is
//! opened in tools that execute formulas.

use super::{DAYS, Usage, collect};
use crate::admin::Admin;
use crate::dashboard::{DashboardError, off_thread, security_headers};
use crate::registry::Partner;
use crate::respond::{self, Body};
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use hyper::{Response, StatusCode};
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;
use time::OffsetDateTime;

/// Which table of the usage page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// One row per day and application (the default).
    Days,
    /// One row per day, application and code with denials (`table=denials`).
    Denials,
}

impl Table {
    /// The table a query string asks for: none or `table=days` is
    /// [`Table::Days`], `table=denials` [`Table::Denials`]; `None` for any
    /// other `table` (the first one counts).
    pub fn of_query(query: Option<&str>) -> Option<Table> {
        let asked = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .find(|(k, _)| k == "table")
            .map(|(_, v)| v);
        match asked.as_deref() {
            None | Some("days") => Some(Table::Days),
            Some("denials") => Some(Table::Denials),
            Some(_) => None,
        }
    }

    /// The file name offered to the browser.
    fn file_name(self) -> &'static str {
        match self {
            Table::Days => "attachment; filename=\"opale-usage.csv\"",
            Table::Denials => "attachment; filename=\"opale-usage-denials.csv\"",
        }
    }
}

/// The CSV of `table` for `partner` (the trail is read off the serving
/// thread).
pub async fn csv(
    state: &Arc<Admin>,
    partner: &Partner,
    table: Table,
) -> Result<Response<Body>, DashboardError> {
    let id = partner.id.clone();
    let now = OffsetDateTime::now_utc();
    let usage = off_thread(state, move |state| collect(state, &id, now)).await??;
    let text = match table {
        Table::Days => days(&usage),
        Table::Denials => denials(&usage),
    };
    let mut r = respond::bytes(StatusCode::OK, "text/csv; charset=utf-8", text);
    let h = r.headers_mut();
    security_headers(h);
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static(table.file_name()),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}

/// One row per day (oldest first) and application.
fn days(usage: &Usage) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &[
            "day",
            "client_id",
            "environment",
            "admitted",
            "denied",
            "peak_calls_per_minute",
            "quota_per_minute",
        ],
    );
    for i in 0..DAYS {
        let day = usage.day(i).to_string();
        for app in &usage.apps {
            let d = app.days.get(i).copied().unwrap_or_default();
            row(
                &mut out,
                &[
                    &day,
                    app.client_id.as_str(),
                    app.environment.as_str(),
                    &d.admitted.to_string(),
                    &d.denied.to_string(),
                    &d.peak.to_string(),
                    &app.quota_per_minute.to_string(),
                ],
            );
        }
    }
    out
}

/// One row per day, application and code with at least one denial.
fn denials(usage: &Usage) -> String {
    let mut out = String::new();
    row(&mut out, &["day", "client_id", "code", "count"]);
    for ((i, app, code), n) in &usage.denials {
        let Some(app) = usage.apps.get(*app) else {
            continue;
        };
        let day = usage.day(*i).to_string();
        row(
            &mut out,
            &[&day, app.client_id.as_str(), code, &n.to_string()],
        );
    }
    out
}

/// Appends one record, CRLF-terminated.
fn row(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        // Writing to a String cannot fail.
        let _ = write!(out, "{sep}{}", field(f));
    }
    out.push_str("\r\n");
}

/// A field as written: neutralised when a spreadsheet would run it as a
/// formula, quoted when it holds a separator, a quote or a line break.
fn field(text: &str) -> Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text: Cow<'_, str> = if formula {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    };
    if text.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::usage::{AppUsage, Day};
    use crate::domain::{ClientId, Environment};
    use std::collections::BTreeMap;
    use time::macros::date;

    fn usage(client_id: &str) -> Usage {
        let mut days = vec![Day::default(); DAYS];
        days[DAYS - 1] = Day {
            admitted: 4,
            denied: 3,
            peak: 5,
        };
        Usage {
            first: date!(2026 - 11 - 08),
            apps: vec![AppUsage {
                client_id: ClientId::new(client_id),
                name: "App".into(),
                environment: Environment::Sandbox,
                quota_per_minute: 4,
                days,
            }],
            denials: BTreeMap::from([
                ((DAYS - 1, 0, "900804".to_owned()), 1),
                ((DAYS - 1, 0, "910500".to_owned()), 2),
            ]),
            causes: BTreeMap::new(),
            complete: true,
        }
    }

    #[test]
    fn a_row_per_day_and_application_then_the_denials() {
        let text = days(&usage("c-1"));
        let lines: Vec<_> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "day,client_id,environment,admitted,denied,peak_calls_per_minute,quota_per_minute"
        );
        assert_eq!(lines[1], "2026-11-08,c-1,sandbox,0,0,0,4");
        assert_eq!(lines[DAYS], "2026-12-07,c-1,sandbox,4,3,5,4");
        assert_eq!(lines.len(), DAYS + 2, "header, 30 rows, the last CRLF");
        let text = denials(&usage("c-1"));
        assert_eq!(
            text,
            "day,client_id,code,count\r\n2026-12-07,c-1,900804,1\r\n2026-12-07,c-1,910500,2\r\n"
        );
    }

    #[test]
    fn formulas_are_neutralised_and_separators_quoted() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for f in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(field(f), format!("'{f}"));
        }
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("a\nb"), "\"a\nb\"");
        assert_eq!(field("2026-12-07"), "2026-12-07");
        let text = days(&usage("=cmd|' /C calc'!A0"));
        assert!(
            text.contains("\r\n2026-12-07,'=cmd|' /C calc'!A0,sandbox,"),
            "{text}"
        );
    }

    #[test]
    fn the_table_comes_from_the_query() {
        assert_eq!(Table::of_query(None), Some(Table::Days));
        assert_eq!(Table::of_query(Some("")), Some(Table::Days));
        assert_eq!(Table::of_query(Some("table=days")), Some(Table::Days));
        assert_eq!(
            Table::of_query(Some("x=1&table=denials")),
            Some(Table::Denials)
        );
        assert_eq!(Table::of_query(Some("table=other")), None);
    }
}
