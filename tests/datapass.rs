//! The DataPass webhook (DESIGN §9) over real TLS on the admin listener,
//! without a client certificate: HMAC signature before anything else,
//! approve / revoke / replay / ping with the fixtures of
//! `tests/fixtures/datapass/` (the shape DataPass sends), the trace of each
//! delivery with actor `datapass`, and the admin routes still closed to
//! callers without an admin certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::WebhookSecret;
use opale_apim::datapass::signature;
use opale_apim::domain::Environment::Sandbox;
use rustls::AlertDescription;
use serde_json::{Value, json};
use std::time::Duration;
use support::handshake::{self, Outcome};
use support::pki::TestPki;
use support::{Reply, TestServer};

const SECRET: &str = "datapass-secret-of-the-test-suite";
const APPROVE: &str = include_str!("fixtures/datapass/approve.json");
const REVOKE: &str = include_str!("fixtures/datapass/revoke.json");
const PING: &str = include_str!("fixtures/datapass/test.json");

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.datapass.webhook_secret = Some(WebhookSecret::new(SECRET).unwrap());
    })
    .await
}

fn sign(body: &[u8]) -> String {
    signature::sign(&WebhookSecret::new(SECRET).unwrap(), body)
}

/// Posts `body` to the webhook without a client certificate, with these
/// extra headers.
async fn post(s: &TestServer, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut conn = s.connect(s.admin, None).await;
    conn.send_raw(
        Method::POST,
        "/datapass/webhook",
        headers,
        body.as_bytes().to_vec(),
        true,
    )
    .await
}

/// A delivery signed as DataPass signs it, for `environment`.
async fn deliver(s: &TestServer, body: &str, environment: &str) -> Reply {
    let sig = sign(body.as_bytes());
    let h = [
        ("x-hub-signature-256", sig.as_str()),
        ("x-app-environment", environment),
    ];
    post(s, body, &h).await
}

async fn list(s: &TestServer, path: &str) -> Value {
    let r = s.admin_call(Method::GET, path, None).await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r.body
}

fn token_id(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["token_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn approve_creates_the_partner_and_its_application() {
    let s = server().await;
    let client_id = token_id(&deliver(&s, APPROVE, "sandbox").await);

    let app = list(&s, &format!("/admin/v1/applications/{client_id}")).await;
    assert_eq!(app["name"], "datapass-9001");
    assert_eq!(app["environment"], "sandbox");
    assert_eq!(app["status"], "active");
    assert_eq!(
        app["grants"],
        json!([
            {"scope": "declarations", "years": ["N-3..N-1"]},
            {"scope": "comptes_bancaires", "years": ["N-3..N-1"]}
        ])
    );
    assert_eq!(app["valid_from"], "2021-08-06");
    assert_eq!(app["valid_until"], "2024-12-31");
    assert_eq!(app["ip_allowlist"], json!([]));
    let partner = list(
        &s,
        &format!("/admin/v1/partners/{}", app["partner_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(partner["siren"], "980430334");
    assert_eq!(partner["name"], "UMAD CORP");
    assert_eq!(partner["contacts"]["technique"]["email"], "tech@example.fr");
    assert_eq!(partner["contacts"]["technique"]["nom"], "Tech Os");
    assert_eq!(
        partner["contacts"]["demandeur"]["email"],
        "jean.dupont@example.fr"
    );
}

#[tokio::test]
async fn replay_changes_nothing_more() {
    let s = server().await;
    let first = token_id(&deliver(&s, APPROVE, "sandbox").await);
    let partners = list(&s, "/admin/v1/partners").await;
    let apps = list(&s, "/admin/v1/applications").await;
    let second = token_id(&deliver(&s, APPROVE, "sandbox").await);
    assert_eq!(first, second, "same request, same application");
    assert_eq!(list(&s, "/admin/v1/partners").await, partners);
    assert_eq!(list(&s, "/admin/v1/applications").await, apps);
    assert_eq!(apps.as_array().unwrap().len(), 1);

    // The same request approved for production is another application.
    let prod = token_id(&deliver(&s, APPROVE, "production").await);
    assert_ne!(prod, first);
    assert_eq!(
        list(&s, "/admin/v1/partners")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_and_writes_nothing() {
    let s = server().await;
    let wrong = signature::sign(
        &WebhookSecret::new("another-secret-entirely").unwrap(),
        APPROVE.as_bytes(),
    );
    let good = sign(APPROVE.as_bytes());
    let tampered = APPROVE.replace("9001", "9002");
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        (APPROVE, vec![("x-hub-signature-256", wrong.as_str())]),
        (APPROVE, vec![]),
        (APPROVE, vec![("x-hub-signature-256", "sha256=nothex")]),
        (
            tampered.as_str(),
            vec![("x-hub-signature-256", good.as_str())],
        ),
    ];
    for (body, mut headers) in cases {
        headers.push(("x-app-environment", "sandbox"));
        let r = post(&s, body, &headers).await;
        assert_eq!(r.status, 401, "{headers:?}: {:?}", r.body);
        assert_eq!(r.field(), "X-Hub-Signature-256");
    }
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
    assert_eq!(list(&s, "/admin/v1/applications").await, json!([]));
}

#[tokio::test]
async fn environment_and_payload_faults_are_400_and_write_nothing() {
    let s = server().await;
    let sig = sign(APPROVE.as_bytes());
    for env in [None, Some("staging"), Some("PRODUCTION")] {
        let mut h = vec![("x-hub-signature-256", sig.as_str())];
        h.extend(env.map(|e| ("x-app-environment", e)));
        let r = post(&s, APPROVE, &h).await;
        assert_eq!(r.status, 400, "{env:?}");
        assert_eq!(r.field(), "X-App-Environment");
    }
    let bad_siren = APPROVE.replace("98043033400022", "98043033500022");
    let r = deliver(&s, &bad_siren, "sandbox").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), "data.organization.siret");
    let unknown_scope = APPROVE.replace("\"comptes-bancaires\"]", "\"cnaf_identite\"]");
    let r = deliver(&s, &unknown_scope, "sandbox").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), "data.data.scopes[1]");
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn ping_and_other_events_answer_200() {
    let s = server().await;
    let r = deliver(&s, PING, "production").await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})));
    let submit = APPROVE.replace("\"approve\"", "\"submit\"");
    let r = deliver(&s, &submit, "sandbox").await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})));
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn revoke_suspends_the_application_and_revokes_its_tokens() {
    let s = server().await;
    // Approved today, so that the grant is valid now.
    let now = time::OffsetDateTime::now_utc();
    let approve = APPROVE.replace("1628253953", &now.unix_timestamp().to_string());
    let client_id = token_id(&deliver(&s, &approve, "sandbox").await);
    // DataPass grants rights; an admin still declares IPs and a certificate.
    let path = format!("/admin/v1/applications/{client_id}");
    let r = s
        .admin_call(
            Method::PATCH,
            &path,
            Some(json!({"ip_allowlist": ["127.0.0.1/32"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cert = s.pki.partner(Sandbox, "datapass-app");
    assert_eq!(s.register(&client_id, &cert).await.status, 201);
    let token = s.token(Sandbox, &cert, &client_id).await;
    let year = now.year() - 1;
    let data = format!(
        "/opale/v1/entreprises/{}/declarations?annee={year}",
        support::fresh_siren()
    );
    let r = s.data_call_with_token(Sandbox, &cert, &token, &data).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let r = deliver(&s, REVOKE, "sandbox").await;
    assert_eq!(token_id(&r), client_id);
    assert_eq!(list(&s, &path).await["status"], "suspended");
    let r = s.data_call_with_token(Sandbox, &cert, &token, &data).await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (401, "900901"),
        "token revoked"
    );

    // Replayed: same answer, nothing more written.
    let apps = list(&s, "/admin/v1/applications").await;
    assert_eq!(token_id(&deliver(&s, REVOKE, "sandbox").await), client_id);
    assert_eq!(list(&s, "/admin/v1/applications").await, apps);
    // A revoke for a request never approved here changes nothing.
    let r = deliver(&s, REVOKE, "production").await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})));
}

#[tokio::test]
async fn every_delivery_is_traced_with_actor_datapass() {
    let s = server().await;
    let client_id = token_id(&deliver(&s, APPROVE, "sandbox").await);
    deliver(&s, APPROVE, "sandbox").await;
    deliver(&s, REVOKE, "sandbox").await;
    deliver(&s, PING, "sandbox").await;
    post(&s, APPROVE, &[("x-app-environment", "sandbox")]).await;

    let trace = list(&s, "/admin/v1/trace?limit=100").await;
    let hooks: Vec<&Value> = trace
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/datapass/webhook")
        .collect();
    // Newest first.
    let details: Vec<&str> = hooks
        .iter()
        .map(|r| r["detail"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(hooks.len(), 5, "{details:?}");
    assert_eq!(hooks[0]["status"], 401);
    assert!(hooks[0]["admin"].is_null(), "unauthenticated: no actor");
    for r in &hooks[1..] {
        assert_eq!(r["admin"]["actor_subject"], "datapass", "{r}");
        assert_eq!(r["status"], 200);
    }
    assert_eq!(details[1], "datapass test");
    assert!(
        details[2].starts_with("datapass revoke 9001"),
        "{details:?}"
    );
    assert!(
        details[3].starts_with("datapass approve 9001"),
        "{details:?}"
    );
    assert!(
        details[4].starts_with("datapass approve 9001"),
        "{details:?}"
    );
    // The first approve created the application; the replay changed nothing.
    assert!(hooks[4]["admin"]["after"]["applications"][&client_id].is_object());
    assert_eq!(hooks[3]["admin"]["after"], json!({}));
    assert_eq!(
        hooks[2]["admin"]["after"]["applications"][&client_id]["status"],
        "suspended"
    );
    let by_app = list(&s, &format!("/admin/v1/trace?client_id={client_id}")).await;
    assert_eq!(
        by_app.as_array().unwrap().len(),
        3,
        "approve, replay, revoke"
    );
}

/// Issue 11: opening the admin listener to certificate-less handshakes
/// for the webhook must not open anything else.
#[tokio::test]
async fn admin_routes_still_demand_an_admin_certificate() {
    let plain = TestServer::start().await;
    let s = server().await;
    for (server, name) in [(&plain, "without datapass"), (&s, "with datapass")] {
        let mut none = server.connect(server.admin, None).await;
        let r = none
            .send(Method::GET, "/admin/v1/partners", &[], None)
            .await;
        assert_eq!(r.status, 401, "{name}");
        assert_eq!(
            r.body["error"]["message"], "an admin client certificate is required on this listener",
            "{name}"
        );
        let r = none
            .send(
                Method::POST,
                "/admin/v1/partners",
                &[],
                Some(&json!({"siren": "980430334", "name": "x"})),
            )
            .await;
        assert_eq!(r.status, 401, "{name}");
        let r = none.send(Method::GET, "/dashboard", &[], None).await;
        assert_eq!(r.status, 401, "{name}");
    }
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
    // Without a secret the webhook does not exist.
    let r = post(&plain, PING, &[]).await;
    assert_eq!(r.status, 404);
}

/// What the admin listener answers a connection presenting `identity`
/// (a refusal is an alert; a hang is `Outcome::Hung`, never a refusal).
async fn admin_handshake(s: &TestServer, identity: Option<&support::pki::Identity>) -> Outcome {
    let config = support::client_config(&s.pki.files.ca_pem(), identity);
    handshake::attempt(s.admin, config, Duration::from_secs(5)).await
}

#[tokio::test]
async fn reject_at_handshake_admits_no_certificate_only_for_the_webhook() {
    let closed = TestServer::start_with(|c| c.tls.reject_at_handshake = true).await;
    assert_eq!(
        admin_handshake(&closed, None).await,
        Outcome::Alert(AlertDescription::CertificateRequired),
        "no datapass: unchanged"
    );

    let s = TestServer::start_with(|c| {
        c.tls.reject_at_handshake = true;
        c.datapass.webhook_secret = Some(WebhookSecret::new(SECRET).unwrap());
    })
    .await;
    let rogue = TestPki::untrusted("admin-lookalike");
    assert_eq!(
        admin_handshake(&s, Some(&rogue)).await,
        Outcome::Alert(AlertDescription::UnknownCA),
        "a bad certificate is still refused"
    );
    let r = deliver(&s, PING, "sandbox").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut none = s.connect(s.admin, None).await;
    let r = none
        .send(Method::GET, "/admin/v1/partners", &[], None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        s.admin_call(Method::GET, "/admin/v1/partners", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bodies_over_max_body_bytes_are_413() {
    let s = TestServer::start_with(|c| {
        c.datapass.webhook_secret = Some(WebhookSecret::new(SECRET).unwrap());
        c.limits.max_body_bytes = 1024;
    })
    .await;
    let r = deliver(&s, APPROVE, "sandbox").await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}
