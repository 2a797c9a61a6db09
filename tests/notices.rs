//! Expiry notices end to end (docs/contract.md §9, docs/notices.md): a real SMTP
//! receiver (Python aiosmtpd, `tests/support/smtp.rs`) gets the
//! e-mails the gateway's notice task sends over SMTP; marks survive a
//! restart; a refused send is retried; the partner dashboard, the admin
//! API and the trace show the notices.
//!
//! Without aiosmtpd the SMTP tests fail, saying what to install
//! (`scripts/test.sh` installs it): a missing tool is never a pass.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::SmtpUrl;
use opale_apim::domain::Environment::Sandbox;
use serde_json::{Value, json};
use std::time::Duration as StdDuration;
use support::TestServer;
use support::pki::Identity;
use support::smtp::{Sink, python};
use time::{Duration, OffsetDateTime};

/// A server whose notice task e-mails through `port` every second.
async fn server(smtp_port: Option<u16>) -> TestServer {
    TestServer::start_with(move |c| {
        c.notify.check_interval_secs = 1;
        c.notify.smtp_url =
            smtp_port.map(|p| SmtpUrl::parse(&format!("smtp://127.0.0.1:{p}")).unwrap());
    })
    .await
}

/// Registers a certificate of `client_id` expiring `days` from now.
async fn cert_expiring(s: &TestServer, client_id: &str, days: i64) -> Identity {
    let now = OffsetDateTime::now_utc();
    let cn = format!("notice-{days}d");
    let id = s.pki.partner_valid(
        Sandbox,
        &cn,
        now - Duration::days(1),
        now + Duration::days(days),
    );
    assert_eq!(s.register(client_id, &id).await.status, 201);
    id
}

/// `GET /admin/v1/notices?partner_id=`.
async fn notices(s: &TestServer, partner: &str) -> Vec<Value> {
    let r = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/notices?partner_id={partner}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

/// Waits (up to 20 s) until the partner has a notice whose delivery is
/// `delivery`; returns the list.
async fn wait_notice(s: &TestServer, partner: &str, delivery: &str) -> Vec<Value> {
    for _ in 0..200 {
        let list = notices(s, partner).await;
        if list.iter().any(|n| n["delivery"] == delivery) {
            return list;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("no {delivery} notice: {:?}", notices(s, partner).await);
}

async fn partner_dashboard(s: &TestServer, id: &Identity) -> String {
    let mut conn = s.connect(s.admin, Some(id)).await;
    let r = conn.send(Method::GET, "/dashboard", &[], None).await;
    assert_eq!(r.status, 200);
    String::from_utf8_lossy(&r.raw).into_owned()
}

#[tokio::test]
async fn a_certificate_within_30_days_is_notified_once_even_across_restarts() {
    let python = python();
    let sink = Sink::start(python, 0);
    let s = server(Some(sink.port)).await;
    let partner = s.partner().await;
    let (client_id, _) = s.application(&partner, Sandbox).await;
    let soon = cert_expiring(&s, &client_id, 20).await;
    let later = cert_expiring(&s, &client_id, 200).await;

    let mail = sink.wait_for(1).await;
    assert_eq!(mail[0]["rcpt_tos"], json!(["jd@example.fr"]));
    let subject = mail[0]["subject"].as_str().unwrap();
    assert_eq!(subject, "[OPALE] Certificat : expiration dans 30 jours");
    let body = mail[0]["body"].as_str().unwrap();
    assert!(body.contains(&soon.thumbprint), "{body}");
    assert!(body.contains("30 jours avant l'expiration"), "{body}");
    assert!(!body.contains("days"), "one language: {body}");
    assert!(!body.contains(&later.thumbprint), "{body}");

    let list = wait_notice(&s, &partner, "sent").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["object_id"], soon.thumbprint.as_str());
    assert_eq!(list[0]["threshold_days"], 30);
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    assert_eq!(sink.messages().len(), 1, "a second pass sent again");

    let s = s.restart().await;
    tokio::time::sleep(StdDuration::from_millis(3500)).await;
    assert_eq!(sink.messages().len(), 1, "sent again after a restart");
    let after = notices(&s, &partner).await;
    assert_eq!(after, list, "the notice changed across the restart");

    let html = partner_dashboard(&s, &soon).await;
    let section = &html[html.find("id=\"notices\"").expect("a notices section")..];
    assert!(section.contains(&soon.thumbprint), "{section}");
    assert!(
        section.contains("30 jours") && section.contains("envoyé le"),
        "{section}"
    );
    assert!(!section.contains(&later.thumbprint), "{section}");

    let r = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/trace?partner_id={partner}"),
            None,
        )
        .await;
    let traced: Vec<&Value> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["kind"] == "notifier" && e["action"]["kind"] == "notice_sent")
        .collect();
    assert_eq!(traced.len(), 1, "{:?}", r.body);
    assert!(
        traced[0].get("method").is_none(),
        "a notice is not an HTTP request"
    );
    assert_eq!(traced[0]["client_id"], client_id.as_str());
    assert_eq!(
        traced[0]["admin"]["after"]["recipient_domain"],
        "example.fr"
    );
}

#[tokio::test]
async fn a_refused_send_is_retried_and_marked_only_once_accepted() {
    let python = python();
    // A port nobody listens on yet: the first passes fail to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = server(Some(port)).await;
    let partner = s.partner().await;
    let (client_id, _) = s.application(&partner, Sandbox).await;
    let cert = cert_expiring(&s, &client_id, 5).await;

    let list = wait_notice(&s, &partner, "pending").await;
    assert_eq!(list[0]["threshold_days"], 7);
    assert!(list[0]["attempts"].as_u64().unwrap() >= 1);
    assert!(list[0]["last_error"].is_string(), "{list:?}");
    assert!(list[0]["sent_at"].is_null());

    let sink = Sink::start(python, port);
    let mail = sink.wait_for(1).await;
    assert!(mail[0]["body"].as_str().unwrap().contains(&cert.thumbprint));
    assert!(mail[0]["subject"].as_str().unwrap().contains("7 jours"));
    let list = wait_notice(&s, &partner, "sent").await;
    assert!(list[0]["sent_at"].is_string());
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn without_a_relay_notices_are_listed_for_the_dashboard_only() {
    let s = server(None).await;
    let partner = s.partner().await;
    let mut body = support::app_body(&partner, Sandbox);
    let until = (OffsetDateTime::now_utc() + Duration::days(60)).date();
    body["valid_until"] = json!(until.to_string());
    let r = s
        .admin_call(Method::POST, "/admin/v1/applications", Some(body))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let client_id = r.body["client_id"].as_str().unwrap().to_owned();
    let far = cert_expiring(&s, &client_id, 200).await;

    let list = wait_notice(&s, &partner, "dashboard_only").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["kind"], "application");
    assert_eq!(list[0]["object_id"], client_id.as_str());
    assert_eq!(list[0]["threshold_days"], 90);
    assert!(list[0]["label"].as_str().unwrap().contains("declarations"));
    let html = partner_dashboard(&s, &far).await;
    assert!(html.contains("tableau de bord seulement"), "{html}");
    let all = s.admin_call(Method::GET, "/admin/v1/notices", None).await;
    let all = all.body.as_array().unwrap();
    assert!(
        all.iter().any(|n| n["object_id"] == client_id.as_str()),
        "{all:?}"
    );
}
