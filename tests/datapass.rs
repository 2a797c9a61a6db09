//! The DataPass webhook over real TLS on the admin listener, without a
//! client certificate: HMAC signature before anything else, approve /
//! revoke / replay / ping with the fixtures of `tests/fixtures/datapass/`
//! (the shape DataPass sends), the environment taken from the signed
//! `form_uid`, the trace of each delivery with actor `datapass`, and the
//! admin routes still closed to callers without an admin certificate.
//! `datapass/order.rs`: events in `fired_at` order and who may lift a
//! suspension; `datapass/limits.rs`: what an unauthenticated caller can
//! make the webhook hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "datapass/limits.rs"]
mod limits;
#[path = "datapass/order.rs"]
mod order;
mod support;

use hyper::Method;
use opale_apim::config::{Config, WebhookSecret};
use opale_apim::datapass::signature;
use opale_apim::domain::Environment::{self, Sandbox};
use rustls::AlertDescription;
use serde_json::{Value, json};
use std::time::Duration;
use support::handshake::{self, Outcome};
use support::pki::{Identity, TestPki};
use support::{Reply, TestServer};

const SECRET: &str = "datapass-secret-of-the-test-suite";
const APPROVE: &str = include_str!("fixtures/datapass/approve.json");
const REVOKE: &str = include_str!("fixtures/datapass/revoke.json");
const PING: &str = include_str!("fixtures/datapass/test.json");
/// `fired_at` of the approve fixture.
const APPROVED_AT: i64 = 1_628_253_953;

async fn server() -> TestServer {
    TestServer::start_with(with_secret).await
}

fn with_secret(c: &mut Config) {
    c.datapass.webhook_secret = Some(WebhookSecret::new(SECRET).unwrap());
}

fn sign(body: &[u8]) -> String {
    signature::sign(&WebhookSecret::new(SECRET).unwrap(), body)
}

/// A fixture as DataPass sends it for `env`'s form (`form_uid`), fired at
/// `fired_at` (the fixture's own when `None`).
fn body(fixture: &str, env: Environment, fired_at: Option<i64>) -> String {
    let mut v: Value = serde_json::from_str(fixture).unwrap();
    v["data"]["form_uid"] = format!("api-opale-{env}").into();
    if let Some(t) = fired_at {
        v["fired_at"] = t.into();
    }
    serde_json::to_string_pretty(&v).unwrap()
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

/// A delivery signed as DataPass signs it, with `X-App-Environment:
/// environment` when given.
async fn deliver(s: &TestServer, body: &str, environment: Option<&str>) -> Reply {
    let sig = sign(body.as_bytes());
    let mut h = vec![("x-hub-signature-256", sig.as_str())];
    h.extend(environment.map(|e| ("x-app-environment", e)));
    post(s, body, &h).await
}

async fn list(s: &TestServer, path: &str) -> Value {
    let r = s.admin_call(Method::GET, path, None).await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r.body
}

async fn application(s: &TestServer, client_id: &str) -> Value {
    list(s, &format!("/admin/v1/applications/{client_id}")).await
}

/// The `token_id` of an applied delivery.
fn token_id(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["applied"], true, "{:?}", r.body);
    r.body["token_id"].as_str().unwrap().to_owned()
}

/// An approved application made callable (IP allowlist, a certificate)
/// and a token of it.
async fn callable(s: &TestServer, client_id: &str) -> (Identity, String) {
    let path = format!("/admin/v1/applications/{client_id}");
    let allow = json!({"ip_allowlist": ["127.0.0.1/32"]});
    let r = s.admin_call(Method::PATCH, &path, Some(allow)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cert = s.pki.partner(Sandbox, "datapass-app");
    assert_eq!(s.register(client_id, &cert).await.status, 201);
    let token = s.token(Sandbox, &cert, client_id).await;
    (cert, token)
}

/// A data call for last year (granted by an approval of today).
fn data_path() -> String {
    let year = time::OffsetDateTime::now_utc().year() - 1;
    format!(
        "/opale/v1/entreprises/{}/declarations?annee={year}",
        support::fresh_siren()
    )
}

#[tokio::test]
async fn approve_creates_the_partner_and_its_application() {
    let s = server().await;
    let r = deliver(&s, &body(APPROVE, Sandbox, None), None).await;
    let client_id = token_id(&r);

    let app = application(&s, &client_id).await;
    assert_eq!(app["name"], "datapass-9001");
    assert_eq!(app["environment"], "sandbox");
    assert_eq!(app["status"], "active");
    assert!(app.get("suspended_by").is_none(), "{app}");
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
    let sandbox = body(APPROVE, Sandbox, None);
    let first = deliver(&s, &sandbox, Some("sandbox")).await;
    let partners = list(&s, "/admin/v1/partners").await;
    let apps = list(&s, "/admin/v1/applications").await;
    let second = deliver(&s, &sandbox, Some("sandbox")).await;
    assert_eq!(second.body, first.body, "answered as the first time");
    assert_eq!(token_id(&first), token_id(&second));
    assert_eq!(list(&s, "/admin/v1/partners").await, partners);
    assert_eq!(list(&s, "/admin/v1/applications").await, apps);
    assert_eq!(apps.as_array().unwrap().len(), 1);

    // The fixture as it is names the production form: another application.
    let prod = token_id(&deliver(&s, APPROVE, None).await);
    assert_ne!(prod, token_id(&first));
    assert_eq!(application(&s, &prod).await["environment"], "production");
    let partners = list(&s, "/admin/v1/partners").await;
    assert_eq!(partners.as_array().unwrap().len(), 1);
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
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        (APPROVE, vec![("x-hub-signature-256", wrong.as_str())]),
        (APPROVE, vec![]),
        (APPROVE, vec![("x-hub-signature-256", "sha256=nothex")]),
        (
            tampered.as_str(),
            vec![("x-hub-signature-256", good.as_str())],
        ),
        // Two header lines, even both right, are not one signature.
        (
            APPROVE,
            vec![
                ("x-hub-signature-256", good.as_str()),
                ("x-hub-signature-256", good.as_str()),
            ],
        ),
    ];
    for (body, headers) in cases {
        let r = post(&s, body, &headers).await;
        assert_eq!(r.status, 401, "{headers:?}: {:?}", r.body);
        assert_eq!(r.field(), "X-Hub-Signature-256");
    }
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
    assert_eq!(list(&s, "/admin/v1/applications").await, json!([]));
}

/// Issue 17: the environment came from `X-App-Environment`, which the
/// signature does not cover; it now comes from the signed `form_uid`.
#[tokio::test]
async fn a_header_contradicting_the_signed_form_is_400_and_writes_nothing() {
    let s = server().await;
    let sandbox = body(APPROVE, Sandbox, None);
    let r = deliver(&s, &sandbox, Some("production")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), "X-App-Environment");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("form_uid"), "{msg}");
    // Two header lines, even agreeing with the form.
    let sig = sign(sandbox.as_bytes());
    let twice = [
        ("x-hub-signature-256", sig.as_str()),
        ("x-app-environment", "sandbox"),
        ("x-app-environment", "sandbox"),
    ];
    let r = post(&s, &sandbox, &twice).await;
    assert_eq!(
        (r.status.as_u16(), r.field()),
        (400, "X-App-Environment".into())
    );
    for env in ["staging", "PRODUCTION"] {
        let r = deliver(&s, &sandbox, Some(env)).await;
        assert_eq!(r.status, 400, "{env}");
        assert_eq!(r.field(), "X-App-Environment");
    }
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
    assert_eq!(list(&s, "/admin/v1/applications").await, json!([]));
    // Agreeing, the header changes nothing: the form's environment rules.
    let id = token_id(&deliver(&s, &sandbox, Some("sandbox")).await);
    assert_eq!(application(&s, &id).await["environment"], "sandbox");
    let apps = list(&s, "/admin/v1/applications").await;
    let envs: Vec<&Value> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["environment"])
        .collect();
    assert_eq!(envs, [&json!("sandbox")], "no production application");
}

#[tokio::test]
async fn payload_faults_are_400_and_write_nothing() {
    let s = server().await;
    let unknown_form = APPROVE.replace("api-opale-production", "api-opale-staging");
    let r = deliver(&s, &unknown_form, None).await;
    assert_eq!(
        (r.status.as_u16(), r.field()),
        (400, "data.form_uid".into())
    );
    let bad_siren = APPROVE.replace("98043033400022", "98043033500022");
    let r = deliver(&s, &bad_siren, None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), "data.organization.siret");
    let unknown_scope = APPROVE.replace("\"comptes-bancaires\"]", "\"cnaf_identite\"]");
    let r = deliver(&s, &unknown_scope, None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), "data.data.scopes[1]");
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn ping_and_other_events_answer_200_applied_false() {
    let s = server().await;
    let r = deliver(&s, PING, Some("production")).await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (200, &json!({"applied": false}))
    );
    let r = deliver(&s, PING, None).await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (200, &json!({"applied": false}))
    );
    let submit = APPROVE.replace("\"approve\"", "\"submit\"");
    let r = deliver(&s, &submit, None).await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (200, &json!({"applied": false}))
    );
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn revoke_suspends_the_application_and_revokes_its_tokens() {
    let s = server().await;
    // Approved today, so that the grant is valid now.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let approve = body(APPROVE, Sandbox, Some(now - 60));
    let client_id = token_id(&deliver(&s, &approve, None).await);
    // DataPass grants rights; an admin still declares IPs and a certificate.
    let (cert, token) = callable(&s, &client_id).await;
    let data = data_path();
    let r = s.data_call_with_token(Sandbox, &cert, &token, &data).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let revoke = body(REVOKE, Sandbox, Some(now));
    let r = deliver(&s, &revoke, None).await;
    assert_eq!(token_id(&r), client_id);
    let app = application(&s, &client_id).await;
    assert_eq!(
        (&app["status"], &app["suspended_by"]),
        (&json!("suspended"), &json!("datapass"))
    );
    let r = s.data_call_with_token(Sandbox, &cert, &token, &data).await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (401, "900901"),
        "token revoked"
    );

    // Replayed: same answer, nothing more written.
    let apps = list(&s, "/admin/v1/applications").await;
    assert_eq!(token_id(&deliver(&s, &revoke, None).await), client_id);
    assert_eq!(list(&s, "/admin/v1/applications").await, apps);
    // A revoke for a request never approved in production: recorded (an
    // older approve arriving later creates nothing), no application.
    let r = deliver(&s, &body(REVOKE, Environment::Production, Some(now)), None).await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (200, &json!({"applied": true}))
    );
}

#[tokio::test]
async fn every_delivery_is_traced_with_actor_datapass() {
    let s = server().await;
    let approve = body(APPROVE, Sandbox, None);
    let client_id = token_id(&deliver(&s, &approve, None).await);
    deliver(&s, &approve, None).await;
    deliver(&s, &body(REVOKE, Sandbox, None), None).await;
    deliver(&s, PING, None).await;
    post(&s, &approve, &[]).await;

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
        assert_eq!(r["actor"]["kind"], "datapass", "{r}");
        assert_eq!(r["status"], 200);
    }
    assert_eq!(details[1], "datapass test");
    assert!(
        details[2].starts_with("datapass revoke 9001 (sandbox"),
        "{details:?}"
    );
    assert!(details[3].ends_with("already applied"), "{details:?}");
    assert!(
        details[4].starts_with("datapass approve 9001 (sandbox"),
        "{details:?}"
    );
    // The first approve created the application and recorded the event;
    // the replay changed nothing.
    let created = &hooks[4]["admin"]["after"];
    assert!(created["applications"][&client_id].is_object());
    assert_eq!(created["datapass"]["sandbox/9001"]["event"], "approve");
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
async fn admin_handshake(s: &TestServer, identity: Option<&Identity>) -> Outcome {
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
        with_secret(c);
    })
    .await;
    let rogue = TestPki::untrusted("admin-lookalike");
    assert_eq!(
        admin_handshake(&s, Some(&rogue)).await,
        Outcome::Alert(AlertDescription::UnknownCA),
        "a bad certificate is still refused"
    );
    let r = deliver(&s, PING, Some("sandbox")).await;
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
