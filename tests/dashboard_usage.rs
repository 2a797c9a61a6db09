//! The usage page (`/dashboard/usage`) and its CSV (`/dashboard/usage.csv`)
//! over real mTLS on the admin listener: a partner's calls admitted and
//! denied, per day, by code and per minute against its quota, exactly as
//! the trail recorded them, and nothing of another partner's. The page in
//! a real browser (axe-core, keyboard) is tests/accessibility.rs.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use serde_json::json;
use std::collections::BTreeMap;
use support::pki::Identity;
use support::{Client, Reply, TestServer};

const DECLARATIONS: &str = "/opale/v1/entreprises/732829320/declarations";

/// A's quota: small, so that the fifth call of the minute is refused.
const QUOTA: u32 = 4;

/// A partner's application with quota [`QUOTA`].
async fn client_a(s: &TestServer) -> Client {
    let grants = json!([{"scope": "declarations", "years": [2023, 2024]}]);
    s.client_with(Sandbox, grants, QUOTA).await
}

/// A's calls: five for 2024 (four admitted, the fifth over the quota:
/// 900804), two for 2019 (not granted: 910500), one with a forged token
/// (900901), plus a token request (not a call).
async fn traffic_a(s: &TestServer, a: &Client) {
    let t = s.token(Sandbox, &a.cert, &a.id).await;
    let mut statuses = Vec::new();
    for year in [2024, 2024, 2024, 2024, 2024, 2019, 2019] {
        let p = format!("{DECLARATIONS}?annee={year}");
        statuses.push(s.data_call_with_token(Sandbox, &a.cert, &t, &p).await);
    }
    let forged = format!("{t}x");
    let p = format!("{DECLARATIONS}?annee=2024");
    statuses.push(s.data_call_with_token(Sandbox, &a.cert, &forged, &p).await);
    let got: Vec<_> = statuses
        .iter()
        .map(|r| (r.status.as_u16(), r.code()))
        .collect();
    let ok = (200, String::new());
    assert_eq!(
        got,
        [
            ok.clone(),
            ok.clone(),
            ok.clone(),
            ok,
            (429, "900804".into()),
            (403, "910500".into()),
            (403, "910500".into()),
            (401, "900901".into()),
        ]
    );
}

/// B's calls: one admitted, one denied (910500).
async fn traffic_b(s: &TestServer, b: &Client) {
    let t = s.token(Sandbox, &b.cert, &b.id).await;
    for year in [2024, 2019] {
        let p = format!("{DECLARATIONS}?annee={year}");
        s.data_call_with_token(Sandbox, &b.cert, &t, &p).await;
    }
}

/// `GET path` on the admin listener with this certificate and language.
async fn get(s: &TestServer, id: Option<&Identity>, path: &str, lang: Option<&str>) -> Reply {
    let mut conn = s.connect(s.admin, id).await;
    let headers: Vec<_> = lang.map(|l| ("accept-language", l)).into_iter().collect();
    conn.send(Method::GET, path, &headers, None).await
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.raw).into_owned()
}

/// What the trail says of an application's calls, computed here from
/// `GET /admin/v1/trace`: per UTC day, (admitted, denied, busiest
/// minute); per (day, code), denials.
struct Expected {
    days: BTreeMap<String, (u64, u64, u64)>,
    codes: BTreeMap<(String, String), u64>,
    /// Minutes with at least one call.
    minutes: u64,
}

async fn expected(s: &TestServer, client_id: &str) -> Expected {
    let r = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/trace?client_id={client_id}&limit=1000"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut days: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut minutes: BTreeMap<String, u64> = BTreeMap::new();
    let mut codes = BTreeMap::new();
    for rec in r.body.as_array().unwrap() {
        // Calls: data API requests on an environment listener.
        if rec["dataset"].is_null() || rec["plane"] == "admin" {
            continue;
        }
        let time = rec["time"].as_str().unwrap();
        let (day, minute) = (time[..10].to_owned(), time[..16].to_owned());
        let entry = days.entry(day.clone()).or_default();
        if rec["decision"] == "admitted" {
            entry.0 += 1;
        } else {
            entry.1 += 1;
            let code = rec["code"].as_str().unwrap().to_owned();
            *codes.entry((day, code)).or_default() += 1;
        }
        *minutes.entry(minute).or_default() += 1;
    }
    let spanned = minutes.len() as u64;
    for (minute, n) in minutes {
        let entry = days.get_mut(&minute[..10]).unwrap();
        entry.2 = entry.2.max(n);
    }
    Expected {
        days,
        codes,
        minutes: spanned,
    }
}

/// A data table's row: its label, then numbers.
fn row(label: &str, numbers: &[u64]) -> String {
    let cells: String = numbers
        .iter()
        .map(|n| format!("<td class=\"num\">{n}</td>"))
        .collect();
    format!("<tr><td>{label}</td>{cells}</tr>")
}

#[tokio::test]
async fn the_usage_page_shows_the_partners_own_calls_as_charts_and_tables() {
    let s = TestServer::start().await;
    let a = client_a(&s).await;
    let b = s.client(Sandbox).await;
    traffic_a(&s, &a).await;
    traffic_b(&s, &b).await;
    let want = expected(&s, &a.id).await;
    let totals = want
        .days
        .values()
        .fold((0, 0), |t, d| (t.0 + d.0, t.1 + d.1));
    assert_eq!(totals, (4, 4), "the trail holds A's eight calls");

    let r = get(&s, Some(&a.cert), "/dashboard/usage", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["content-language"], "fr");
    let html = text(&r);
    assert!(html.contains("<html lang=\"fr\">"));
    assert!(html.contains(&a.id), "own application listed");
    assert!(
        !html.contains(&b.id),
        "another partner's application leaked"
    );
    assert!(html.contains("<h1>Usage de l'API sur 30 jours — Partenaire Test</h1>"));

    // (a) Calls per day by decision: a stacked chart, its table exact.
    for (day, (admitted, denied, peak)) in &want.days {
        let total = admitted + denied;
        assert!(
            html.contains(&row(day, &[*admitted, *denied, total])),
            "calls of {day}: {html}"
        );
        // (c) The busiest minute of the day against the quota.
        assert!(
            html.contains(&row(day, &[*peak, u64::from(QUOTA)])),
            "peak of {day}"
        );
    }
    let svg = html.split("<svg").nth(1).unwrap();
    assert!(svg.starts_with(" role=\"img\" aria-labelledby=\"calls-0-title calls-0-desc\""));
    for label in [
        ">Jour</text>",
        ">Appels</text>",
        ">Acceptés</text>",
        ">Refusés</text>",
    ] {
        assert!(svg.contains(label), "axis or legend label {label}");
    }
    assert!(svg.contains("text-anchor=\"end\">0</text>"), "axis values");
    assert!(
        svg.contains("fill=\"url(#calls-0-hatch)\""),
        "denials hatched"
    );
    assert!(
        html.contains(": 4 appels acceptés et 4 refusés"),
        "text alternative"
    );

    // (b) Denials by code, with their meaning: the codes produced.
    for (code, meaning, n) in [
        ("910500", "année non couverte par l'habilitation", 2),
        ("900804", "quota de la minute atteint", 1),
        ("900901", "jeton d'accès invalide, expiré ou révoqué", 1),
    ] {
        let label = format!("{code} — {meaning}");
        assert!(html.contains(&row(&label, &[n])), "{label}: {html}");
        assert!(
            html.contains(&format!(">{label}</text>")),
            "{label} on the chart"
        );
    }

    // (c) The page's peak is the busiest minute of the trail (asserted
    // row by row above): eight calls over so few minutes make at least
    // 8 / minutes in one. The quota is drawn as a labelled line.
    let peak = want.days.values().map(|d| d.2).max().unwrap();
    assert!(peak >= 8_u64.div_ceil(want.minutes), "{peak}");
    assert!(html.contains(">quota : 4 appels par minute</text>"));
    assert!(html.contains("class=\"chart__limit\""));
    assert!(html.contains(&format!("au plus {peak} appels en une minute")));
}

#[tokio::test]
async fn the_csv_has_the_same_numbers_and_only_the_partners_rows() {
    let s = TestServer::start().await;
    let a = client_a(&s).await;
    let b = s.client(Sandbox).await;
    traffic_a(&s, &a).await;
    traffic_b(&s, &b).await;
    let want = expected(&s, &a.id).await;

    let r = get(&s, Some(&a.cert), "/dashboard/usage.csv", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"opale-usage.csv\""
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert!(r.headers.contains_key("content-security-policy"));
    let csv = text(&r);
    assert!(!csv.contains(&b.id), "another partner's rows leaked");
    let lines: Vec<_> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "day,client_id,environment,admitted,denied,peak_calls_per_minute,quota_per_minute"
    );
    assert_eq!(lines.len(), 31, "a header and one row a day: {csv}");
    for (day, (admitted, denied, peak)) in &want.days {
        let line = format!("{day},{},sandbox,{admitted},{denied},{peak},{QUOTA}", a.id);
        assert!(lines.contains(&line.as_str()), "{line} in {csv}");
    }
    let quiet = lines[1..]
        .iter()
        .filter(|l| l.ends_with(&format!(",{},sandbox,0,0,0,{QUOTA}", a.id)))
        .count();
    assert_eq!(quiet, 30 - want.days.len(), "the other days are zeros");

    let r = get(
        &s,
        Some(&a.cert),
        "/dashboard/usage.csv?table=denials",
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    let csv = text(&r);
    assert!(!csv.contains(&b.id));
    let mut want_lines = vec!["day,client_id,code,count".to_owned()];
    for ((day, code), n) in &want.codes {
        want_lines.push(format!("{day},{},{code},{n}", a.id));
    }
    let lines: Vec<_> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines, want_lines, "{csv}");
    let codes: Vec<_> = want.codes.keys().map(|k| k.1.as_str()).collect();
    for code in ["900804", "900901", "910500"] {
        assert!(codes.contains(&code), "{code} produced and listed");
    }

    // B sees B's only.
    let r = get(&s, Some(&b.cert), "/dashboard/usage.csv", None).await;
    let csv = text(&r);
    assert!(csv.contains(&b.id) && !csv.contains(&a.id), "{csv}");
    let today = time::OffsetDateTime::now_utc().date();
    let want_b = expected(&s, &b.id).await;
    let (admitted, denied, peak) = want_b.days[&today.to_string()];
    assert_eq!((admitted, denied), (1, 1));
    assert!(csv.contains(&format!("{today},{},sandbox,1,1,{peak},50\r\n", b.id)));
}

#[tokio::test]
async fn each_partner_sees_its_own_and_nobody_else_gets_in() {
    let s = TestServer::start().await;
    let a = client_a(&s).await;
    let b = s.client(Sandbox).await;
    traffic_a(&s, &a).await;
    traffic_b(&s, &b).await;

    let r = get(&s, Some(&b.cert), "/dashboard/usage", None).await;
    assert_eq!(r.status, 200);
    let html = text(&r);
    assert!(html.contains(&b.id) && !html.contains(&a.id));
    assert!(html.contains(": 1 appels acceptés et 1 refusés"), "{html}");
    assert!(html.contains("910500 — année non couverte"));
    assert!(
        !html.contains("900804") && !html.contains("900901"),
        "A's codes"
    );

    for path in ["/dashboard/usage", "/dashboard/usage.csv"] {
        assert_eq!(get(&s, None, path, None).await.status, 401, "{path}");
        let admin = s.pki.admin();
        let r = get(&s, Some(&admin), path, None).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(text(&r).contains("Page introuvable"));
        let stranger = s.pki.partner(Sandbox, "stranger");
        assert_eq!(get(&s, Some(&stranger), path, None).await.status, 403);
    }
    let r = get(&s, Some(&a.cert), "/dashboard/usage.csv?table=other", None).await;
    assert_eq!(r.status, 404);

    // The home page sums the 30 days up and leads to the usage page.
    let r = get(&s, Some(&a.cert), "/dashboard", None).await;
    let html = text(&r);
    assert!(html.contains("8 appels sur les 30 derniers jours, dont 4 refusés."));
    assert!(html.contains("<a href=\"/dashboard/usage\">Voir l'usage détaillé</a>"));
    assert!(html.contains("<a href=\"/dashboard/usage.csv\">"));
    assert!(!html.contains("<svg"), "the charts moved to the usage page");
}

#[tokio::test]
async fn the_usage_page_is_in_english_when_the_browser_prefers_it() {
    let s = TestServer::start().await;
    let a = client_a(&s).await;
    traffic_a(&s, &a).await;
    let r = get(
        &s,
        Some(&a.cert),
        "/dashboard/usage",
        Some("en-GB,en;q=0.9"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-language"], "en");
    let html = text(&r);
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<h1>API usage over 30 days — Partenaire Test</h1>"));
    for shown in [
        ">Day</text>",
        ">Admitted</text>",
        ">Denied</text>",
        ": 4 calls admitted and 4 denied",
        "910500 — year not covered by the grant",
        ">quota: 4 calls per minute</text>",
        "Chart data: Calls per day",
    ] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    let body = html.split("</style>").nth(1).unwrap();
    for french in [
        "Appels par jour",
        "Acceptés",
        "Refusés",
        "année non couverte",
        " / ",
    ] {
        assert!(!body.contains(french), "{french} on the English page");
    }
}
