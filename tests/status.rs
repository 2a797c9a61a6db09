//! Service quality end to end (docs/contract.md §11, docs/status.md), on a
//! real server with real mTLS and a real sled directory: a maintenance
//! closes and reopens its environment by itself with `Retry-After`
//! counting down; the window is enforced; a closure counts as down
//! minutes; an incident is mailed (real SMTP receiver) to the partners of
//! the affected environment only, listed while open, then in the history
//! and the Atom feed; the public routes need no client certificate while
//! the data routes still do.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::SmtpUrl;
use opale_apim::domain::Environment::{self, Production, Sandbox};
use serde_json::{Value, json};
use std::time::Duration;
use support::smtp::{Sink, python};
use support::{Reply, TestServer, app_body, fresh_siren};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// `GET path` on `env`'s listener without a client certificate.
async fn public(s: &TestServer, env: Environment, path: &str) -> Reply {
    let mut c = s.connect(s.env_addr(env), None).await;
    c.send(Method::GET, path, &[], None).await
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// Sleeps until `t`.
async fn until(t: OffsetDateTime) {
    let left = t - OffsetDateTime::now_utc();
    if left.is_positive() {
        tokio::time::sleep(left.try_into().unwrap()).await;
    }
}

#[tokio::test]
async fn an_emergency_maintenance_closes_and_reopens_by_itself() {
    let s = TestServer::start().await;
    let client = s.client(Sandbox).await;
    let token = s.token(Sandbox, &client.cert, &client.id).await;
    let call = || s.data_call_with_token(Sandbox, &client.cert, &token, PATH);
    assert_eq!(call().await.status, 200, "before");
    let start = OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let end = start + time::Duration::seconds(7);
    let body = json!({"components": ["sandbox"], "scheduled_for": rfc3339(start),
        "scheduled_until": rfc3339(end), "message": "Remplacement d'un serveur", "emergency": true});
    let r = s
        .admin_call(Method::POST, "/admin/v1/maintenances", Some(body))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "scheduled");
    assert_eq!(r.body["impact"], "maintenance");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(call().await.status, 200, "still open before scheduled_for");
    // During: 503 910600, its message, Retry-After counting down.
    let mut seen = Vec::new();
    for k in 0..4 {
        until(start + time::Duration::milliseconds(500 + 1500 * k)).await;
        let r = call().await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (503, "910600"),
            "{:?}",
            r.body
        );
        assert!(r.raw.windows(8).any(|w| w == b"Remplace"), "{:?}", r.body);
        let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=7).contains(&retry), "{retry}");
        seen.push(retry);
    }
    assert!(
        seen.windows(2).all(|w| w[1] < w[0]),
        "Retry-After must count down: {seen:?}"
    );
    let summary = public(&s, Production, "/status/api/v2/summary.json").await;
    let sandbox = &summary.body["components"][0];
    assert_eq!(
        (sandbox["id"].as_str(), sandbox["status"].as_str()),
        (Some("sandbox"), Some("under_maintenance"))
    );
    assert_eq!(summary.body["scheduled_maintenances"][0]["id"], id.as_str());
    assert_eq!(
        summary.body["scheduled_maintenances"][0]["status"],
        "in_progress"
    );
    assert_eq!(summary.body["status"]["indicator"], "maintenance");
    // After: open again with no admin call.
    until(end + time::Duration::milliseconds(300)).await;
    assert_eq!(call().await.status, 200, "reopened at scheduled_until");
    let list = s
        .admin_call(Method::GET, "/admin/v1/maintenances", None)
        .await;
    assert_eq!(list.body[0]["status"], "completed");
    // Emergency minutes count as unavailability: today's sandbox is down.
    let h = public(&s, Sandbox, "/status/history.json?days=1").await;
    assert!(
        h.body["components"][0]["days"][0]["down_minutes"]
            .as_u64()
            .unwrap()
            >= 1,
        "{:?}",
        h.body
    );
}

/// Noon tomorrow in Europe/Paris, as an instant.
fn paris(hour: i8, minute: i8) -> OffsetDateTime {
    let tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
    let today = tz.to_datetime(jiff::Timestamp::now()).date();
    let dt = jiff::civil::DateTime::from_parts(
        today.tomorrow().unwrap(),
        jiff::civil::Time::constant(hour, minute, 0, 0),
    );
    let ts = tz.to_timestamp(dt).unwrap();
    OffsetDateTime::from_unix_timestamp(ts.as_second()).unwrap()
}

#[tokio::test]
async fn a_maintenance_at_noon_is_refused_naming_scheduled_for() {
    let s = TestServer::start().await;
    let maintenance = |from: OffsetDateTime, minutes: i64, emergency: bool| {
        json!({"components": ["production"], "scheduled_for": rfc3339(from),
            "scheduled_until": rfc3339(from + time::Duration::minutes(minutes)),
            "message": "Montée de version", "emergency": emergency})
    };
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/maintenances",
            Some(maintenance(paris(12, 0), 30, false)),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (400, "scheduled_for"),
        "{:?}",
        r.body
    );
    // Inside the window but longer than 120 minutes, or past 06:00.
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/maintenances",
            Some(maintenance(paris(0, 0), 150, false)),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (400, "scheduled_until"),
        "{:?}",
        r.body
    );
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/maintenances",
            Some(maintenance(paris(5, 30), 60, false)),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (400, "scheduled_until"),
        "{:?}",
        r.body
    );
    let list = s
        .admin_call(Method::GET, "/admin/v1/maintenances", None)
        .await;
    assert_eq!(list.body, json!([]), "nothing written");
    // The same noon slot as an emergency, and a night slot, are accepted;
    // a cancelled one is announced as over.
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/maintenances",
            Some(maintenance(paris(12, 0), 30, true)),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/maintenances",
            Some(maintenance(paris(1, 0), 90, false)),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap();
    let summary = public(&s, Sandbox, "/status/api/v2/summary.json").await;
    assert_eq!(
        summary.body["scheduled_maintenances"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let path = format!("/admin/v1/maintenances/{id}");
    assert_eq!(s.admin_call(Method::DELETE, &path, None).await.status, 204);
    assert_eq!(
        s.admin_call(Method::DELETE, &path, None).await.status,
        409,
        "already over"
    );
    assert_eq!(
        s.admin_call(Method::DELETE, "/admin/v1/maintenances/nope", None)
            .await
            .status,
        404
    );
    let summary = public(&s, Sandbox, "/status/api/v2/summary.json").await;
    assert_eq!(
        summary.body["scheduled_maintenances"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let trace = s
        .admin_call(Method::GET, "/admin/v1/trace?limit=5", None)
        .await;
    let cancel = trace
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "DELETE" && r["status"] == 204)
        .unwrap();
    assert!(
        cancel["admin"]["after"]["maintenances"][id]["cancelled_at"].is_string(),
        "{cancel:?}"
    );
}

#[tokio::test]
async fn a_manual_closure_counts_as_down_minutes_in_the_history() {
    let s = TestServer::start().await;
    let path = "/admin/v1/environments/sandbox/maintenance";
    let r = s
        .admin_call(Method::PUT, path, Some(json!({"retry_after": 5})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(s.admin_call(Method::DELETE, path, None).await.status, 204);
    let h = public(&s, Production, "/status/history.json?days=1").await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let sandbox = &h.body["components"][0];
    assert_eq!(sandbox["id"], "sandbox");
    let today = &sandbox["days"][0];
    assert!(today["down_minutes"].as_u64().unwrap() >= 1, "{today:?}");
    assert!(today["availability"].as_f64().unwrap() < 1.0, "{today:?}");
    let week = public(&s, Production, "/status/history.json").await;
    assert_eq!(
        week.body["components"][1]["days"].as_array().unwrap().len(),
        7
    );
    assert!(
        week.body["components"][1]["days"][0]["availability"].is_null(),
        "before the first start"
    );
    for bad in ["0", "91", "x"] {
        let r = public(&s, Sandbox, &format!("/status/history.json?days={bad}")).await;
        assert_eq!(
            (r.status.as_u16(), r.body["field"].as_str()),
            (400, Some("days")),
            "{bad}"
        );
    }
}

/// A partner with a technical contact at `email` and an active
/// application on `env`.
async fn partner_on(s: &TestServer, env: Environment, name: &str, email: &str) -> String {
    let body = json!({"siren": fresh_siren(), "name": name,
        "contacts": {"technique": {"nom": "Contact", "email": email}}});
    let r = s
        .admin_call(Method::POST, "/admin/v1/partners", Some(body))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/applications",
            Some(app_body(&id, env)),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["client_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_incident_is_mailed_to_the_affected_partners_listed_then_archived() {
    let sink = Sink::start(python(), 0);
    let port = sink.port;
    let s = TestServer::start_with(move |c| {
        c.notify.smtp_url = Some(SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}")).unwrap());
    })
    .await;
    let app = partner_on(&s, Sandbox, "Banque Alpha", "tech@alpha.example").await;
    partner_on(&s, Production, "Éditeur Beta", "tech@beta.example").await;
    let body = json!({"name": "Lenteurs du bac à sable", "impact": "minor",
        "components": ["sandbox"], "message": "Temps de réponse dégradés."});
    let r = s
        .admin_call(Method::POST, "/admin/v1/incidents", Some(body))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "investigating");
    let id = r.body["id"].as_str().unwrap().to_owned();
    sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mails = sink.messages();
    assert_eq!(
        mails.len(),
        1,
        "one mail, none to the production-only partner: {mails:?}"
    );
    assert_eq!(mails[0]["rcpt_tos"], json!(["tech@alpha.example"]));
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .contains("Lenteurs du bac à sable"),
        "{mails:?}"
    );
    // Listed while open, on both listeners, without a certificate.
    let summary = public(&s, Production, "/status/api/v2/summary.json").await;
    assert_eq!(summary.body["incidents"][0]["id"], id.as_str());
    assert_eq!(summary.body["status"]["indicator"], "minor");
    assert_eq!(
        summary.body["components"][0]["status"],
        "degraded_performance"
    );
    // The partner's dashboard shows it.
    let cert = s.pki.partner(Sandbox, "dash");
    assert_eq!(s.register(&app, &cert).await.status, 201);
    let mut c = s.connect(s.admin, Some(&cert)).await;
    let dash = c.send(Method::GET, "/dashboard", &[], None).await;
    assert!(String::from_utf8_lossy(&dash.raw).contains("Lenteurs du bac à sable"));
    // Resolved: no longer in the summary, in incidents.json and the feed.
    let update = json!({"status": "resolved", "message": "Rétabli."});
    let r = s
        .admin_call(
            Method::POST,
            &format!("/admin/v1/incidents/{id}/updates"),
            Some(update),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["status"].as_str()),
        (201, Some("resolved")),
        "{:?}",
        r.body
    );
    assert!(r.body["resolved_at"].is_string());
    assert_eq!(
        sink.wait_for(2).await[1]["rcpt_tos"],
        json!(["tech@alpha.example"])
    );
    let summary = public(&s, Sandbox, "/status/api/v2/summary.json").await;
    assert_eq!(summary.body["incidents"], json!([]));
    let incidents = public(&s, Sandbox, "/status/api/v2/incidents.json").await;
    let listed = &incidents.body["incidents"][0];
    assert_eq!(
        (listed["id"].as_str(), listed["status"].as_str()),
        (Some(id.as_str()), Some("resolved"))
    );
    assert_eq!(listed["incident_updates"].as_array().unwrap().len(), 2);
    let feed = public(&s, Sandbox, "/status/feed.atom").await;
    assert_eq!(
        feed.headers["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let xml = String::from_utf8_lossy(&feed.raw);
    assert!(
        xml.starts_with("<?xml") && xml.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""),
        "{xml}"
    );
    assert!(
        xml.contains("Lenteurs du bac à sable") && xml.contains(&format!("#incident-{id}</id>")),
        "{xml}"
    );
    // The public page never names a partner.
    let page = public(&s, Sandbox, "/status").await;
    let html = String::from_utf8_lossy(&page.raw);
    assert!(!html.contains("Alpha") && !html.contains("Beta"), "{html}");
}

#[tokio::test]
async fn the_status_routes_need_no_certificate_and_the_data_routes_still_do() {
    let s = TestServer::start().await;
    for env in [Sandbox, Production] {
        let page = public(&s, env, "/status").await;
        assert_eq!(page.status, 200);
        assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
        let html = String::from_utf8_lossy(&page.raw);
        assert!(
            html.contains("lang=\"fr\"") && html.contains("État actuel"),
            "{html}"
        );
        assert!(
            html.contains("<caption>") && html.contains("scope=\"row\""),
            "{html}"
        );
        for doc in ["summary.json", "status.json", "incidents.json"] {
            let r = public(&s, env, &format!("/status/api/v2/{doc}")).await;
            assert_eq!(r.status, 200, "{doc}");
            assert_eq!(r.body["page"]["time_zone"], "Europe/Paris", "{doc}");
        }
        let r = public(&s, env, "/status/history.json").await;
        assert_eq!(r.status, 200);
        let mut c = s.connect(s.env_addr(env), None).await;
        let cid = support::correlation_id();
        let r = c
            .send(Method::GET, PATH, &[("x-correlation-id", &cid)], None)
            .await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (401, "910100"),
            "{:?}",
            r.body
        );
        let r = c
            .send(Method::POST, "/status", &[], Some(&Value::Null))
            .await;
        assert_eq!(r.status, 404, "only GET");
    }
}
