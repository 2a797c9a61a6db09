//! Abnormal usage (docs/contract.md §9): denial bursts and new caller addresses
//! raise security events, listed and cleared through the admin API,
//! counted on /metrics, kept across a restart; `auto_suspend` suspends the
//! application and the trace names the actor `abuse`. Real server, real
//! mTLS; thresholds lowered through `TestServer::start_with`.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use opale_apim::domain::Environment::Sandbox;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use support::{Client, TestServer, client_config, correlation_id};
use tokio::net::TcpSocket;

const SIREN: &str = "732829320";

fn path(year: i32) -> String {
    format!("/opale/v1/entreprises/{SIREN}/declarations?annee={year}")
}

/// A server whose burst threshold is 3 denials in 60 s.
async fn server(auto_suspend: bool) -> TestServer {
    TestServer::start_with(move |c| {
        c.abuse.denial_burst = 3;
        c.abuse.auto_suspend = auto_suspend;
    })
    .await
}

async fn open_events(s: &TestServer) -> Vec<Value> {
    let r = s
        .admin_call(Method::GET, "/admin/v1/security-events", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

async fn metric(s: &TestServer, kind: &str) -> Option<u64> {
    let r = s.admin_call(Method::GET, "/metrics", None).await;
    let text = String::from_utf8(r.raw.to_vec()).unwrap();
    let series = format!("opale_security_events_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map(|v| v.trim().parse().unwrap())
}

/// One GET data call over a connection whose client socket is bound to
/// `from` (127.0.0.0/8 is all loopback on Linux).
async fn call_from(s: &TestServer, from: Ipv4Addr, c: &Client, token: &str, year: i32) -> u16 {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let tcp = socket.connect(s.sandbox).await.unwrap();
    let config = client_config(&s.pki.files.ca_pem(), Some(&c.cert));
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path(year))
        .header("host", "localhost")
        .header("x-correlation-id", correlation_id())
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    sender.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_denial_burst_is_listed_counted_kept_across_restart_and_cleared() {
    let s = server(false).await;
    let c = s.client(Sandbox).await;
    assert_eq!(metric(&s, "denial_burst").await, None);
    for i in 0..3 {
        assert!(open_events(&s).await.is_empty(), "raised after {i} denials");
        let r = s
            .data_call_with_token(Sandbox, &c.cert, "not-a-token", &path(2024))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    let events = open_events(&s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (
            e["kind"].as_str(),
            e["client_id"].as_str(),
            e["ip"].as_str()
        ),
        (Some("denial_burst"), Some(c.id.as_str()), Some("127.0.0.1"))
    );
    assert_eq!(e["suspended"], false);
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("3 denials within 60 s")
    );
    assert_eq!(metric(&s, "denial_burst").await, Some(1));
    // A fourth denial inside the window is refused as the others were and
    // raises nothing more: the same open event, the same count.
    let fourth = s
        .data_call_with_token(Sandbox, &c.cert, "not-a-token", &path(2024))
        .await;
    assert_eq!(
        (fourth.status.as_u16(), fourth.code()),
        (401, "900901".into()),
        "{:?}",
        fourth.body
    );
    assert_eq!(open_events(&s).await, events);
    assert_eq!(metric(&s, "denial_burst").await, Some(1));
    // Auto-suspend is off: the application is still active.
    let app = format!("/admin/v1/applications/{}", c.id);
    assert_eq!(
        s.admin_call(Method::GET, &app, None).await.body["status"],
        "active"
    );

    let s = s.restart().await;
    let kept = open_events(&s).await;
    assert_eq!(kept, events, "open events survive a restart");
    let id = kept[0]["id"].as_str().unwrap();
    let clear = format!("/admin/v1/security-events/{id}/clear");
    let r = s.admin_call(Method::POST, &clear, None).await;
    assert_eq!((r.status.as_u16(), &r.body["id"]), (200, &kept[0]["id"]));
    assert!(open_events(&s).await.is_empty());
    let again = s.admin_call(Method::POST, &clear, None).await;
    assert_eq!((again.status.as_u16(), again.field()), (404, "id".into()));
    // The clear is traced with the admin who did it.
    let trace = s
        .admin_call(
            Method::GET,
            "/admin/v1/trace?environment=admin&limit=20",
            None,
        )
        .await;
    let cleared = trace
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str() == Some(clear.as_str()) && r["status"] == 200);
    let actor = cleared.expect("clear traced")["actor"]["subject"].clone();
    assert!(actor.as_str().unwrap().contains("opale-admin"), "{actor}");
    let s = s.restart().await;
    assert!(
        open_events(&s).await.is_empty(),
        "a cleared event stays cleared"
    );
}

#[tokio::test]
async fn auto_suspend_stops_a_burst_at_once_and_the_trace_names_abuse() {
    let s = server(true).await;
    let c = s.client(Sandbox).await;
    let token = s.token(Sandbox, &c.cert, &c.id).await;
    let ok = s
        .data_call_with_token(Sandbox, &c.cert, &token, &path(2024))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    // 2019 is not granted: three rights denials.
    for _ in 0..3 {
        let r = s
            .data_call_with_token(Sandbox, &c.cert, &token, &path(2019))
            .await;
        assert_eq!(r.code(), "910500", "{:?}", r.body);
    }
    let r = s
        .data_call_with_token(Sandbox, &c.cert, &token, &path(2024))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "910402".into()),
        "{:?}",
        r.body
    );
    let app = format!("/admin/v1/applications/{}", c.id);
    assert_eq!(
        s.admin_call(Method::GET, &app, None).await.body["status"],
        "suspended"
    );
    let events = open_events(&s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["suspended"], true);
    assert!(events[0]["reason"].as_str().unwrap().contains("suspended"));

    let q = format!("/admin/v1/trace?environment=admin&client_id={}", c.id);
    let trace = s.admin_call(Method::GET, &q, None).await.body;
    let by_abuse: Vec<&Value> = trace
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"]["kind"] == "abuse_detector")
        .collect();
    let patch = by_abuse
        .iter()
        .find(|r| r["action"]["kind"] == "application_suspended")
        .expect("suspension traced with actor abuse_detector");
    assert_eq!(patch["action"]["target"], c.id.as_str());
    assert!(
        patch.get("method").is_none(),
        "a system action has no method"
    );
    assert_eq!(
        patch["admin"]["before"]["applications"][&c.id]["status"],
        "active"
    );
    assert_eq!(
        patch["admin"]["after"]["applications"][&c.id]["status"],
        "suspended"
    );
    assert!(patch["detail"].as_str().unwrap().contains("denials"));
    assert!(
        by_abuse
            .iter()
            .any(|r| r["action"]["kind"] == "security_event_raised"
                && r["admin"]["after"]["kind"] == "denial_burst")
    );
    // Denials of a suspended application (910402, docs/contract.md §5)
    // raise nothing more: the same open event, the same count.
    for _ in 0..4 {
        let r = s
            .data_call_with_token(Sandbox, &c.cert, &token, &path(2019))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (403, "910402".into()),
            "{:?}",
            r.body
        );
    }
    assert_eq!(open_events(&s).await, events);
    assert_eq!(metric(&s, "denial_burst").await, Some(1));
}

#[tokio::test]
async fn a_call_from_a_new_address_raises_an_event_and_known_addresses_persist() {
    let s = TestServer::start_with(|c| c.abuse.denial_burst = 0).await;
    let c = s.client(Sandbox).await;
    let app = format!("/admin/v1/applications/{}", c.id);
    let wide = json!({"ip_allowlist": ["127.0.0.0/8"]});
    assert_eq!(
        s.admin_call(Method::PATCH, &app, Some(wide)).await.status,
        200
    );
    let token = s.token(Sandbox, &c.cert, &c.id).await;
    let (one, two, three) = (
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
    );
    // The application's first address is learnt silently.
    assert_eq!(call_from(&s, one, &c, &token, 2024).await, 200);
    assert_eq!(call_from(&s, one, &c, &token, 2024).await, 200);
    assert!(open_events(&s).await.is_empty());
    assert_eq!(call_from(&s, two, &c, &token, 2024).await, 200);
    let events = open_events(&s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["kind"].as_str(), events[0]["ip"].as_str()),
        (Some("new_address"), Some("127.0.0.2"))
    );
    assert_eq!(metric(&s, "new_address").await, Some(1));
    // Known now: no second event.
    assert_eq!(call_from(&s, two, &c, &token, 2024).await, 200);
    assert_eq!(open_events(&s).await.len(), 1);

    // After a restart the known addresses are still known, and another
    // one is still new (were the book lost, it would be the "first").
    let s = s.restart().await;
    assert_eq!(call_from(&s, one, &c, &token, 2024).await, 200);
    assert_eq!(call_from(&s, two, &c, &token, 2024).await, 200);
    assert_eq!(open_events(&s).await.len(), 1);
    assert_eq!(call_from(&s, three, &c, &token, 2024).await, 200);
    let events = open_events(&s).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["ip"], "127.0.0.3", "newest first");
}
