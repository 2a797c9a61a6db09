//! Issue 10's attack attempts, each over real mTLS (docs/contract.md §8): cross-site
//! writes to the admin API, `/token` from outside the IP allowlist,
//! IPv4-mapped allowlist entries, over-long tokens signed with the real
//! key, another partner's sandbox claims, an empty `Idempotency-Key`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use opale_apim::admin::client::AdminClient;
use opale_apim::domain::Environment::Sandbox;
use serde_json::{Value, json};
use support::{Client, Reply, TestServer, app_body, correlation_id};

const SIREN: &str = "732829320";
const JSON: (&str, &str) = ("content-type", "application/json");

fn creances_path() -> String {
    format!("/opale/v1/entreprises/{SIREN}/creances")
}

/// A raw admin call with the admin certificate and exactly these headers.
async fn admin_raw(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Reply {
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let bytes = serde_json::to_vec(body).unwrap();
    conn.send_raw(method, path, headers, bytes, false).await
}

async fn partner_count(s: &TestServer) -> usize {
    let r = s.admin_call(Method::GET, "/admin/v1/partners", None).await;
    r.body.as_array().unwrap().len()
}

/// Whether `secret` still obtains a token for `c` (client_secret_basic).
async fn secret_works(s: &TestServer, c: &Client, secret: &str) -> bool {
    let form = "grant_type=client_credentials";
    let r = s
        .token_request(Sandbox, Some(&c.cert), Some((&c.id, secret)), form)
        .await;
    r.status == 200
}

fn new_partner() -> Value {
    json!({"siren": support::fresh_siren(), "name": "Intrus",
        "contacts": {"technique": {"nom": "Eve", "email": "eve@example.fr"}}})
}

/// Admin refusals are traced like the others (`control: admin`, code =
/// status); returns the number of such records for `path`.
async fn traced_refusals(s: &TestServer, status: u16, path: &str) -> usize {
    let r = s
        .admin_call(Method::GET, &format!("/admin/v1/trace?code={status}"), None)
        .await;
    let records = r.body.as_array().unwrap();
    records
        .iter()
        .filter(|t| t["path"] == path && t["status"] == status && t["plane"] == "admin")
        .count()
}

/// Issue 10.1: a POST without JSON is 415 and writes nothing.
#[tokio::test]
async fn admin_posts_without_json_are_415_and_write_nothing() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let before = partner_count(&s).await;
    for headers in [&[][..], &[("content-type", "text/plain")][..]] {
        let r = admin_raw(
            &s,
            Method::POST,
            "/admin/v1/partners",
            headers,
            &new_partner(),
        )
        .await;
        assert_eq!(r.status, 415, "{headers:?}: {:?}", r.body);
        assert_eq!(r.body["error"]["status"], 415);
    }
    assert_eq!(partner_count(&s).await, before, "no partner created");
    assert_eq!(traced_refusals(&s, 415, "/admin/v1/partners").await, 2);

    let rotate = format!("/admin/v1/applications/{}/secret", c.id);
    let r = admin_raw(&s, Method::POST, &rotate, &[], &json!({})).await;
    assert_eq!(r.status, 415, "{:?}", r.body);
    assert!(r.body.get("client_secret").is_none());
    assert!(secret_works(&s, &c, &c.secret).await, "secret not rotated");

    // RFC 7662/7009 routes take forms, and only forms.
    let r = admin_raw(
        &s,
        Method::POST,
        "/admin/v1/tokens/introspect",
        &[JSON],
        &json!({"token": "x"}),
    )
    .await;
    assert_eq!(r.status, 415, "{:?}", r.body);
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let form = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let r = conn
        .send_raw(
            Method::POST,
            "/admin/v1/tokens/introspect",
            &form,
            b"token=x".to_vec(),
            false,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (200, &json!({"active": false}))
    );

    // JSON with parameters passes.
    let json_utf8 = [("content-type", "application/json; charset=utf-8")];
    let r = admin_raw(
        &s,
        Method::POST,
        "/admin/v1/partners",
        &json_utf8,
        &new_partner(),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// Issue 10.1: writes marked cross-site or from another origin are 403
/// and write nothing; the listener's own origin passes.
#[tokio::test]
async fn admin_writes_from_another_site_are_403_and_write_nothing() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let before = partner_count(&s).await;
    let refused: [&[(&str, &str)]; 6] = [
        &[JSON, ("sec-fetch-site", "cross-site")],
        &[JSON, ("sec-fetch-site", "same-site")],
        &[JSON, ("origin", "https://evil.example")],
        &[JSON, ("origin", "null")],
        &[JSON, ("origin", "http://localhost")],
        &[JSON, ("origin", "https://localhost:8443")],
    ];
    for headers in refused {
        let r = admin_raw(
            &s,
            Method::POST,
            "/admin/v1/partners",
            headers,
            &new_partner(),
        )
        .await;
        assert_eq!(r.status, 403, "{headers:?}: {:?}", r.body);
        assert_eq!(r.body["error"]["status"], 403);
    }
    assert_eq!(partner_count(&s).await, before, "no partner created");
    assert_eq!(traced_refusals(&s, 403, "/admin/v1/partners").await, 6);

    let evil = [JSON, ("origin", "https://evil.example")];
    let rotate = format!("/admin/v1/applications/{}/secret", c.id);
    assert_eq!(
        admin_raw(&s, Method::POST, &rotate, &evil, &json!({}))
            .await
            .status,
        403
    );
    assert!(secret_works(&s, &c, &c.secret).await, "secret not rotated");
    let partner = format!("/admin/v1/partners/{}", c.partner);
    let patch = json!({"status": "suspended"});
    assert_eq!(
        admin_raw(&s, Method::PATCH, &partner, &evil, &patch)
            .await
            .status,
        403
    );
    let cert = format!(
        "/admin/v1/applications/{}/certificates/{}",
        c.id, c.cert.thumbprint
    );
    let cross = [("sec-fetch-site", "cross-site")];
    assert_eq!(
        admin_raw(&s, Method::DELETE, &cert, &cross, &json!(null))
            .await
            .status,
        403
    );
    let close = "/admin/v1/environments/sandbox/maintenance";
    let window = json!({"reason": "x"});
    assert_eq!(
        admin_raw(&s, Method::PUT, close, &evil, &window)
            .await
            .status,
        403
    );
    // Partner active, certificate registered, sandbox open: a token is issued.
    s.token(Sandbox, &c.cert, &c.id).await;

    // The listener's own origin (https + the Host header) and same-origin pass.
    let own: [&[(&str, &str)]; 3] = [
        &[JSON, ("origin", "https://localhost")],
        &[JSON, ("origin", "https://LOCALHOST:443")],
        &[
            JSON,
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://localhost"),
        ],
    ];
    for headers in own {
        let r = admin_raw(
            &s,
            Method::POST,
            "/admin/v1/partners",
            headers,
            &new_partner(),
        )
        .await;
        assert_eq!(r.status, 201, "{headers:?}: {:?}", r.body);
    }
    // Reads are never refused for their origin.
    let r = s
        .connect(s.admin, Some(&s.pki.admin()))
        .await
        .send(
            Method::GET,
            "/admin/v1/partners",
            &[("sec-fetch-site", "cross-site")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

/// Issue 10.1: the CLI's client sends `{}` as JSON for a POST without
/// arguments, so it keeps working.
#[tokio::test]
async fn the_cli_client_posts_json_without_arguments() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let f = &s.pki.files;
    let url = format!("https://localhost:{}", s.admin.port());
    let cli = AdminClient::new(&url, &f.ca_pem(), &f.admin_pem(), &f.admin_key()).unwrap();
    let path = format!("/admin/v1/applications/{}/secret", c.id);
    let (status, body) = cli.call(Method::POST, &path, None).await.unwrap();
    assert_eq!(status, 200, "{body:?}");
    let rotated = body["client_secret"].as_str().unwrap();
    assert!(secret_works(&s, &c, rotated).await);
    assert!(!secret_works(&s, &c, &c.secret).await);
    let (status, _) = cli
        .call(Method::POST, "/admin/v1/trace/verify", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
}

async fn set_allowlist(s: &TestServer, client_id: &str, cidrs: &[&str]) {
    let path = format!("/admin/v1/applications/{client_id}");
    let r = s
        .admin_call(Method::PATCH, &path, Some(json!({"ip_allowlist": cidrs})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Issue 10.2: `/token` from outside the allowlist is 400
/// `unauthorized_client`, with every client authentication method.
#[tokio::test]
async fn token_endpoint_applies_the_ip_allowlist() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    set_allowlist(&s, &c.id, &["10.0.0.0/8"]).await;
    let tls_auth = format!("grant_type=client_credentials&client_id={}", c.id);
    let post = format!("{tls_auth}&client_secret={}", c.secret);
    let attempts = [
        s.token_request(Sandbox, Some(&c.cert), None, &tls_auth)
            .await,
        s.token_request(Sandbox, Some(&c.cert), None, &post).await,
        s.token_request(
            Sandbox,
            Some(&c.cert),
            Some((&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await,
    ];
    for r in attempts {
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(r.body["error"], "unauthorized_client");
        assert!(r.body.get("access_token").is_none(), "{:?}", r.body);
        let why = r.body["error_description"].as_str().unwrap();
        assert!(why.contains("127.0.0.1"), "{why}");
    }
    set_allowlist(&s, &c.id, &["10.0.0.0/8", "127.0.0.0/8"]).await;
    s.token(Sandbox, &c.cert, &c.id).await;
}

/// Issue 10.3: entries written as IPv4-mapped IPv6 match IPv4 callers,
/// at `/token` and at step 2, and the trace names the caller as the
/// denial does.
async fn mapped_entries_match_ipv4_callers(s: &TestServer) {
    let c = s.client(Sandbox).await;
    for allow in ["::ffff:127.0.0.1/128", "::ffff:127.0.0.0/104"] {
        set_allowlist(s, &c.id, &[allow]).await;
        let t = s.token(Sandbox, &c.cert, &c.id).await;
        let path = format!("/opale/v1/entreprises/{SIREN}/declarations?annee=2024");
        let r = s.data_call_with_token(Sandbox, &c.cert, &t, &path).await;
        assert_eq!(r.status, 200, "{allow}: {:?}", r.body);
    }
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    set_allowlist(s, &c.id, &["::ffff:10.0.0.0/104"]).await;
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let cid = correlation_id();
    let bearer = format!("Bearer {t}");
    let h = [
        ("x-correlation-id", cid.as_str()),
        ("authorization", bearer.as_str()),
    ];
    let path = format!("/opale/v1/entreprises/{SIREN}/declarations?annee=2024");
    let r = conn.send(Method::GET, &path, &h, None).await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (403, "910200"),
        "{:?}",
        r.body
    );
    let trace = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/trace?correlation_id={cid}"),
            None,
        )
        .await;
    let record = &trace.body[0];
    assert_eq!(record["ip"], "127.0.0.1", "{record:?}");
    let detail = record["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("IP 127.0.0.1 is not declared"),
        "{detail}"
    );
}

#[tokio::test]
async fn mapped_allowlist_entries_match_an_ipv4_peer() {
    mapped_entries_match_ipv4_callers(&TestServer::start().await).await;
}

/// The same through a dual-stack listener, where the socket peer of an
/// IPv4 client is `::ffff:127.0.0.1`: the trace records `127.0.0.1`.
#[tokio::test]
async fn mapped_peers_are_traced_by_their_ipv4_address() {
    mapped_entries_match_ipv4_callers(&TestServer::start_dual_stack().await).await;
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn sign(s: &TestServer, claims: &Value) -> String {
    let pair = rcgen::KeyPair::from_pem(&s.signing_key_pem(Sandbox)).unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = Some(s.signing_kid(Sandbox));
    let key = EncodingKey::from_ed_der(&pair.serialize_der());
    jsonwebtoken::encode(&h, claims, &key).unwrap()
}

/// Issue 10.4: a token signed with the environment's own key but living
/// longer than `oauth.token_lifetime_secs` is invalid (900901).
#[tokio::test]
async fn a_token_longer_than_the_configured_lifetime_is_refused() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let mut claims = claims_of(&s.token(Sandbox, &c.cert, &c.id).await);
    let path = format!("/opale/v1/entreprises/{SIREN}/declarations?annee=2024");
    // The same claims re-signed pass: the key and claims are right.
    let same = sign(&s, &claims);
    assert_eq!(
        s.data_call_with_token(Sandbox, &c.cert, &same, &path)
            .await
            .status,
        200
    );
    claims["exp"] = json!(claims["iat"].as_i64().unwrap() + 10 * 365 * 86_400);
    let forged = sign(&s, &claims);
    let r = s
        .data_call_with_token(Sandbox, &c.cert, &forged, &path)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (401, "900901"),
        "{:?}",
        r.body
    );
}

async fn transmit(s: &TestServer, c: &Client, key: Option<&str>) -> Reply {
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let cid = correlation_id();
    let bearer = format!("Bearer {t}");
    let mut h = vec![
        ("x-correlation-id", cid.as_str()),
        ("authorization", bearer.as_str()),
    ];
    if let Some(k) = key {
        h.push(("idempotency-key", k));
    }
    let body = json!({"annee": 2024, "creances": [{"reference": "SECRET-REF-A",
        "montant": "99.00", "date_echeance": "2024-09-30", "impot": "IS"}]});
    conn.send(Method::POST, &creances_path(), &h, Some(&body))
        .await
}

async fn read_creances(s: &TestServer, c: &Client) -> Reply {
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let path = format!("{}?annee=2024", creances_path());
    let r = s.data_call_with_token(Sandbox, &c.cert, &t, &path).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r
}

fn claims_grants() -> Value {
    json!([{"scope": "creances", "years": [2024]},
        {"scope": "creances_transmission", "years": [2024]}])
}

/// Issue 10.5: claims transmitted by partner A are shown to A's
/// applications only; partner B does not even learn there are some.
#[tokio::test]
async fn sandbox_claims_are_visible_to_the_transmitting_partner_only() {
    let s = TestServer::start().await;
    let a = s.client_with(Sandbox, claims_grants(), 50).await;
    let b = s.client_with(Sandbox, claims_grants(), 50).await;
    let untouched = read_creances(&s, &b).await.raw;
    let r = transmit(&s, &a, Some("k-1")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let seen_by_b = read_creances(&s, &b).await;
    assert!(
        seen_by_b.body.get("transmises").is_none(),
        "{:?}",
        seen_by_b.body
    );
    let text = String::from_utf8_lossy(&seen_by_b.raw);
    assert!(
        !text.contains(&a.id) && !text.contains("SECRET-REF-A"),
        "{text}"
    );
    assert_eq!(seen_by_b.raw, untouched);

    let seen_by_a = read_creances(&s, &a).await;
    let tx = seen_by_a.body["transmises"].as_array().unwrap();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0]["client_id"], a.id.as_str());
    assert_eq!(tx[0]["creances"][0]["reference"], "SECRET-REF-A");

    // Another application of partner A sees them too.
    let mut body = app_body(&a.partner, Sandbox);
    body["grants"] = claims_grants();
    let r = s
        .admin_call(Method::POST, "/admin/v1/applications", Some(body))
        .await;
    let id = r.body["client_id"].as_str().unwrap().to_owned();
    let cert = s.pki.partner(Sandbox, "a2");
    assert_eq!(s.register(&id, &cert).await.status, 201);
    let a2 = Client {
        id,
        secret: String::new(),
        cert,
        partner: a.partner.clone(),
    };
    assert_eq!(
        read_creances(&s, &a2).await.body["transmises"],
        seen_by_a.body["transmises"]
    );
}

/// Issue 10.6: an empty `Idempotency-Key` is a 400 naming the header, and
/// nothing is stored.
#[tokio::test]
async fn an_empty_idempotency_key_is_refused() {
    let s = TestServer::start().await;
    let a = s.client_with(Sandbox, claims_grants(), 50).await;
    for key in ["", "   "] {
        let r = transmit(&s, &a, Some(key)).await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (400, "910003"),
            "{:?}",
            r.body
        );
        let detail = r.body["erreur"]["message"]
            .as_str()
            .or(r.body["detail"].as_str());
        assert!(
            detail.unwrap_or("").contains("Idempotency-Key"),
            "{:?}",
            r.body
        );
    }
    assert!(read_creances(&s, &a).await.body.get("transmises").is_none());
    assert_eq!(transmit(&s, &a, None).await.status, 201);
    assert_eq!(transmit(&s, &a, Some("k-1")).await.status, 201);
}
