//! The trail says what happened, not what a protocol would have said
//! (docs/contract.md §7): a run with a DataPass delivery, an abuse
//! auto-suspension and a reload by `SIGHUP` leaves records whose methods
//! are only real HTTP methods of real requests; every other record is a
//! system action with a typed actor (`abuse_detector`, `signal`), a kind
//! and a target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::WebhookSecret;
use opale_apim::datapass::signature;
use opale_apim::domain::Environment::Sandbox;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::TestServer;

const SECRET: &str = "datapass-secret-of-the-trail-actions-test";
const APPROVE: &str = include_str!("fixtures/datapass/approve.json");
const DENIED: &str = "/opale/v1/entreprises/732829320/declarations?annee=2019";

async fn trail(s: &TestServer) -> Vec<Value> {
    let r = s
        .admin_call(Method::GET, "/admin/v1/trace/export", None)
        .await;
    assert_eq!(r.status, 200);
    String::from_utf8_lossy(&r.raw)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_actions_have_a_typed_actor_and_no_http_method() {
    let s = TestServer::start_with(|c| {
        c.abuse.denial_burst = 3;
        c.abuse.auto_suspend = true;
        c.datapass.webhook_secret = Some(WebhookSecret::new(SECRET).unwrap());
    })
    .await;
    // A DataPass delivery (an HTTP request, actor datapass).
    let sig = signature::sign(&WebhookSecret::new(SECRET).unwrap(), APPROVE.as_bytes());
    let mut conn = s.connect(s.admin, None).await;
    // The environment comes from the signed form_uid.
    let h = [("x-hub-signature-256", sig.as_str())];
    let r = conn
        .send_raw(Method::POST, "/datapass/webhook", &h, APPROVE.into(), true)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A denial burst and the automatic suspension it causes.
    let c = s.client(Sandbox).await;
    let token = s.token(Sandbox, &c.cert, &c.id).await;
    for _ in 0..3 {
        let r = s
            .data_call_with_token(Sandbox, &c.cert, &token, DENIED)
            .await;
        assert_eq!(r.code(), "910500");
    }
    // A reload by signal, through the same handler `serve` installs.
    tokio::spawn(opale_apim::reload::hangups(s.reloader()).unwrap());
    let pid = std::process::id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let mut records = Vec::new();
    for _ in 0..50 {
        records = trail(&s).await;
        if records.iter().any(|r| r["action"]["kind"] == "reloaded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let methods: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r["method"].as_str())
        .collect();
    println!("methods in the trail: {methods:?}");
    assert!(
        methods.is_subset(&BTreeSet::from(["GET", "POST", "PATCH", "PUT", "DELETE"])),
        "{methods:?}"
    );
    let actions: BTreeSet<(String, String)> = records
        .iter()
        .filter(|r| r.get("method").is_none())
        .map(|r| {
            assert!(r["action"]["kind"].is_string(), "no method, no action: {r}");
            (
                r["actor"]["kind"].to_string(),
                r["action"]["kind"].to_string(),
            )
        })
        .collect();
    println!("system actions: {actions:?}");
    for (actor, kind) in [
        ("abuse_detector", "security_event_raised"),
        ("abuse_detector", "application_suspended"),
        ("signal", "reloaded"),
    ] {
        assert!(
            actions.contains(&(json!(actor).to_string(), json!(kind).to_string())),
            "{actor} {kind} missing from {actions:?}"
        );
    }
    let datapass = records
        .iter()
        .find(|r| r["path"] == "/datapass/webhook")
        .expect("delivery traced");
    assert_eq!(datapass["actor"]["kind"], "datapass");
    assert_eq!(datapass["method"], "POST");
    assert_eq!(s.verify_trail(None).await["ok"], true);
}
