//! The control chain and the data API over real mTLS with real tokens:
//! every row of the docs/contract.md §5 table, precedence, both renderings, exact
//! quota, sandbox determinism, the production proxy against a real
//! upstream, and claim transmission.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use opale_apim::domain::Environment::{self, Production, Sandbox};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::pki::TestPki;
use support::{Client, Reply, TestServer, correlation_id};

const SIREN: &str = "732829320";

fn path(dataset: &str, year: i32) -> String {
    format!("/opale/v1/entreprises/{SIREN}/{dataset}?annee={year}")
}

/// One call with explicit headers.
async fn call(
    s: &TestServer,
    env: Environment,
    c: &Client,
    token: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut conn = s.connect(s.env_addr(env), Some(&c.cert)).await;
    let cid = correlation_id();
    let bearer = format!("Bearer {token}");
    let mut h = vec![
        ("x-correlation-id", cid.as_str()),
        ("authorization", bearer.as_str()),
    ];
    h.extend_from_slice(extra);
    conn.send(Method::GET, path, &h, None).await
}

fn expect(r: &Reply, status: u16, code: &str, control: &str) {
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (status, code),
        "{:?}",
        r.body
    );
    if !control.is_empty() {
        assert_eq!(r.body["control"], control, "{:?}", r.body);
    }
}

const PROBLEM: (&str, &str) = ("accept", "application/problem+json");

fn forge(s: &TestServer, env: Environment, claims: &Value) -> String {
    let pair = rcgen::KeyPair::from_pem(&s.signing_key_pem(env)).unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = Some(s.signing_kid(env));
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_ed_der(&pair.serialize_der())).unwrap()
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_valid_call_returns_sandbox_data_with_ratelimit_headers() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let r = call(&s, Sandbox, &c, &t, &path("declarations", 2024), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body["siren"], SIREN);
    assert_eq!(r.headers["ratelimit-policy"], "\"default\";q=50;w=60");
    assert_eq!(r.headers["ratelimit"], "\"default\";r=49;t=60");
    assert!(r.headers.contains_key("x-correlation-id"));
}

#[tokio::test]
async fn every_row_of_the_error_table() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let p = path("declarations", 2024);
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let bearer = format!("Bearer {t}");
    let auth = ("authorization", bearer.as_str());
    // Hygiene.
    expect(
        &conn.send(Method::GET, &p, &[auth, PROBLEM], None).await,
        400,
        "910000",
        "hygiene",
    );
    let cid = correlation_id();
    let h = [auth, PROBLEM, ("x-correlation-id", cid.as_str())];
    expect(
        &conn
            .send(
                Method::GET,
                "/opale/v1/entreprises/732829321/declarations",
                &h,
                None,
            )
            .await,
        400,
        "910001",
        "hygiene",
    );
    expect(
        &conn
            .send(
                Method::GET,
                &format!("/opale/v1/entreprises/{SIREN}/declarations?annee=24"),
                &h,
                None,
            )
            .await,
        400,
        "910002",
        "hygiene",
    );
    // Certificate.
    let none = s.connect(s.sandbox, None).await;
    let mut none = none;
    expect(
        &none.send(Method::GET, &p, &h, None).await,
        401,
        "910100",
        "certificate",
    );
    let rogue = TestPki::untrusted("rogue");
    expect(
        &s.connect(s.sandbox, Some(&rogue))
            .await
            .send(Method::GET, &p, &h, None)
            .await,
        401,
        "910101",
        "certificate",
    );
    let stranger = s.pki.partner(Sandbox, "stranger");
    expect(
        &s.connect(s.sandbox, Some(&stranger))
            .await
            .send(Method::GET, &p, &h, None)
            .await,
        401,
        "910103",
        "certificate",
    );
    // Token.
    expect(
        &call(&s, Sandbox, &c, "", &p, &[PROBLEM]).await,
        401,
        "900902",
        "token",
    );
    expect(
        &call(&s, Sandbox, &c, "not.a.jwt", &p, &[PROBLEM]).await,
        401,
        "900901",
        "token",
    );
    // Identity: token bound to another certificate of the same application.
    let second = s.pki.partner(Sandbox, "second");
    assert_eq!(s.register(&c.id, &second).await.status, 201);
    let mut conn2 = s.connect(s.sandbox, Some(&second)).await;
    expect(
        &conn2.send(Method::GET, &p, &h, None).await,
        401,
        "910400",
        "identity",
    );
    // Identity: a token naming another client but bound to this certificate.
    let other = s.client(Sandbox).await;
    let mut forged = claims_of(&t);
    forged["client_id"] = json!(other.id);
    forged["sub"] = json!(other.id);
    let f = forge(&s, Sandbox, &forged);
    expect(
        &call(&s, Sandbox, &c, &f, &p, &[PROBLEM]).await,
        401,
        "910401",
        "identity",
    );
    // Rights.
    let narrow = s
        .token_request(
            Sandbox,
            Some(&c.cert),
            None,
            &format!(
                "grant_type=client_credentials&client_id={}&scope=paiements",
                c.id
            ),
        )
        .await;
    let narrow = narrow.body["access_token"].as_str().unwrap().to_owned();
    expect(
        &call(&s, Sandbox, &c, &narrow, &p, &[PROBLEM]).await,
        403,
        "900910",
        "rights",
    );
    expect(
        &call(
            &s,
            Sandbox,
            &c,
            &t,
            &path("comptes-bancaires", 2024),
            &[PROBLEM],
        )
        .await,
        403,
        "900910",
        "rights",
    );
    expect(
        &call(&s, Sandbox, &c, &t, &path("declarations", 2019), &[PROBLEM]).await,
        403,
        "910500",
        "rights",
    );
    // Service: simulated upstream timeout (reserved SIREN), then production without upstream.
    let timeout_siren = reserved("upstream timeout");
    let r = call(
        &s,
        Sandbox,
        &c,
        &t,
        &format!("/opale/v1/entreprises/{timeout_siren}/declarations?annee=2024"),
        &[PROBLEM],
    )
    .await;
    expect(&r, 504, "910601", "service");
    let pc = s.client(Production).await;
    let pt = s.token(Production, &pc.cert, &pc.id).await;
    expect(
        &call(&s, Production, &pc, &pt, &p, &[PROBLEM]).await,
        502,
        "910602",
        "service",
    );
    // IP, suspension, validity: change the application, same token.
    let app = format!("/admin/v1/applications/{}", c.id);
    s.admin_call(
        Method::PATCH,
        &app,
        Some(json!({"ip_allowlist": ["192.0.2.0/24"]})),
    )
    .await;
    let r = call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await;
    expect(&r, 403, "910200", "ip");
    assert!(r.body["detail"].as_str().unwrap().contains("127.0.0.1"));
    s.admin_call(
        Method::PATCH,
        &app,
        Some(json!({"ip_allowlist": ["127.0.0.0/8"], "status": "suspended"})),
    )
    .await;
    expect(
        &call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await,
        403,
        "910402",
        "identity",
    );
    s.admin_call(
        Method::PATCH,
        &format!("/admin/v1/partners/{}", c.partner),
        Some(json!({"status": "suspended"})),
    )
    .await;
    s.admin_call(Method::PATCH, &app, Some(json!({"status": "active"})))
        .await;
    expect(
        &call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await,
        403,
        "910402",
        "identity",
    );
    s.admin_call(
        Method::PATCH,
        &format!("/admin/v1/partners/{}", c.partner),
        Some(json!({"status": "active"})),
    )
    .await;
    s.admin_call(
        Method::PATCH,
        &app,
        Some(json!({"valid_until": "2025-01-02"})),
    )
    .await;
    expect(
        &call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await,
        403,
        "910501",
        "rights",
    );
    // Quota: the simulated-timeout call above passed the chain and counts,
    // so a quota of 2 leaves exactly one call.
    s.admin_call(
        Method::PATCH,
        &app,
        Some(json!({"valid_until": support::years_from_today(3), "quota_per_minute": 2})),
    )
    .await;
    assert_eq!(call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await.status, 200);
    let r = call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await;
    expect(&r, 429, "900804", "quota");
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Maintenance / kill switch.
    let m = s
        .admin_call(
            Method::PUT,
            "/admin/v1/environments/sandbox/maintenance",
            Some(json!({"retry_after": 120})),
        )
        .await;
    assert_eq!(m.status, 204);
    let r = call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await;
    expect(&r, 503, "910600", "service");
    assert_eq!(r.headers["retry-after"], "120");
    s.admin_call(
        Method::DELETE,
        "/admin/v1/environments/sandbox/maintenance",
        None,
    )
    .await;
    // Revoked certificate last (it ends this client).
    let del = format!("{app}/certificates/{}", c.cert.thumbprint);
    s.admin_call(Method::DELETE, &del, None).await;
    expect(
        &call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await,
        401,
        "910102",
        "certificate",
    );
}

/// The reserved SIREN whose description contains `what` (docs/sandbox.md).
fn reserved(what: &str) -> &'static str {
    opale_apim::data::sandbox::RESERVED
        .iter()
        .find(|(_, d)| d.to_lowercase().contains(what))
        .map(|(s, _)| *s)
        .unwrap_or_else(|| panic!("no reserved SIREN for {what}"))
}

#[tokio::test]
async fn the_earliest_failing_control_is_reported() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let app = format!("/admin/v1/applications/{}", c.id);
    // IP refused + no token + year not granted: ip wins.
    s.admin_call(
        Method::PATCH,
        &app,
        Some(json!({"ip_allowlist": ["192.0.2.0/24"]})),
    )
    .await;
    expect(
        &call(&s, Sandbox, &c, "", &path("declarations", 2019), &[PROBLEM]).await,
        403,
        "910200",
        "ip",
    );
    // Bad SIREN + no certificate: hygiene wins.
    let mut none = s.connect(s.sandbox, None).await;
    let cid = correlation_id();
    let r = none
        .send(
            Method::GET,
            "/opale/v1/entreprises/123/declarations",
            &[("x-correlation-id", &cid), PROBLEM],
            None,
        )
        .await;
    expect(&r, 400, "910001", "hygiene");
    // Token bad + suspended + year not granted: token wins.
    s.admin_call(
        Method::PATCH,
        &app,
        Some(json!({"ip_allowlist": ["127.0.0.1/32"], "status": "suspended"})),
    )
    .await;
    expect(
        &call(
            &s,
            Sandbox,
            &c,
            "x",
            &path("declarations", 2019),
            &[PROBLEM],
        )
        .await,
        401,
        "900901",
        "token",
    );
    // Suspended + year not granted: identity wins.
    expect(
        &call(&s, Sandbox, &c, &t, &path("declarations", 2019), &[PROBLEM]).await,
        403,
        "910402",
        "identity",
    );
}

#[tokio::test]
async fn both_renderings_carry_the_same_code() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let p = path("declarations", 2019);
    let problem = call(&s, Sandbox, &c, &t, &p, &[PROBLEM]).await;
    assert_eq!(problem.headers["content-type"], "application/problem+json");
    assert_eq!(problem.body["status"], 403);
    assert_eq!(problem.body["type"], "urn:opale:erreur:910500");
    assert!(problem.body["title"].is_string() && problem.body["detail"].is_string());
    let dgfip = call(&s, Sandbox, &c, &t, &p, &[]).await;
    assert_eq!(dgfip.headers["content-type"], "application/json");
    assert_eq!(dgfip.body["erreur"]["code"], "910500");
    assert!(
        dgfip.body["erreur"]["message"]
            .as_str()
            .unwrap()
            .contains("2019")
    );
    time::OffsetDateTime::parse(
        dgfip.body["erreur"]["horodatage"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    // Token errors carry the RFC 6750 challenge.
    let r = call(&s, Sandbox, &c, "bad", &p, &[]).await;
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}

#[tokio::test]
async fn quota_is_exact_under_concurrency() {
    let s = Arc::new(TestServer::start().await);
    let c = Arc::new(s.client(Sandbox).await);
    let t = Arc::new(s.token(Sandbox, &c.cert, &c.id).await);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (s, c, t) = (s.clone(), c.clone(), t.clone());
            tokio::spawn(async move {
                let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
                let bearer = format!("Bearer {t}");
                let mut out = Vec::new();
                for _ in 0..5 {
                    let cid = correlation_id();
                    let h = [
                        ("x-correlation-id", cid.as_str()),
                        ("authorization", bearer.as_str()),
                    ];
                    out.push(
                        conn.send(Method::GET, &path("declarations", 2024), &h, None)
                            .await,
                    );
                }
                out
            })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        for r in t.await.unwrap() {
            match r.status.as_u16() {
                200 => ok += 1,
                429 => {
                    limited += 1;
                    assert_eq!(r.code(), "900804");
                    assert!(r.headers.contains_key("retry-after"));
                    assert!(r.headers["ratelimit"].to_str().unwrap().contains("r=0"));
                }
                other => panic!("unexpected {other}: {:?}", r.body),
            }
        }
    }
    assert_eq!((ok, limited), (50, 30));
}

#[tokio::test]
async fn denied_calls_do_not_consume_quota() {
    let s = TestServer::start().await;
    let c = s
        .client_with(
            Sandbox,
            json!([{"scope": "declarations", "years": ["N-3..N-1"]}]),
            5,
        )
        .await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let this_year = time::OffsetDateTime::now_utc().year();
    for _ in 0..10 {
        let r = call(&s, Sandbox, &c, &t, &path("declarations", this_year), &[]).await;
        assert_eq!(r.code(), "910500", "N is outside N-3..N-1");
        assert_eq!(r.headers["ratelimit"], "\"default\";r=5;t=60");
    }
    for i in 0..5 {
        let r = call(
            &s,
            Sandbox,
            &c,
            &t,
            &path("declarations", this_year - 1),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "call {i}: {:?}", r.body);
    }
    assert_eq!(
        call(
            &s,
            Sandbox,
            &c,
            &t,
            &path("declarations", this_year - 3),
            &[]
        )
        .await
        .status,
        429
    );
}

#[tokio::test]
async fn sandbox_answers_are_deterministic_across_restarts() {
    let s = TestServer::start().await;
    let c = s
        .client_with(
            Sandbox,
            json!([{"scope": "comptes_bancaires", "years": [2023]}]),
            50,
        )
        .await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let p = path("comptes-bancaires", 2023);
    let a = call(&s, Sandbox, &c, &t, &p, &[]).await;
    let b = call(&s, Sandbox, &c, &t, &p, &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.raw, b.raw);
    let s = s.restart().await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(call(&s, Sandbox, &c, &t, &p, &[]).await.raw, a.raw);
    let r = call(
        &s,
        Sandbox,
        &c,
        &t,
        "/opale/v1/entreprises/000000000/comptes-bancaires?annee=2023",
        &[],
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (404, "910700"));
}

/// An upstream data provider on 127.0.0.1:0 that records what it gets.
struct FakeUpstream {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<hyper::http::request::Parts>>>,
}

async fn fake_upstream() -> FakeUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, _) = req.into_parts();
                        let q = parts.uri.query().unwrap_or("").to_owned();
                        seen.lock().unwrap().push(parts);
                        if q.contains("annee=2021") {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        let (status, body) = if q.contains("annee=2022") {
                            (500, r#"{"oops":true}"#.to_owned())
                        } else {
                            (200, format!(r#"{{"source":"upstream","query":"{q}"}}"#))
                        };
                        let mut resp = Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        resp.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        resp.headers_mut()
                            .insert("set-cookie", "secret=1".parse().unwrap());
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    FakeUpstream { addr, seen }
}

#[tokio::test]
async fn production_proxies_to_the_upstream() {
    let up = fake_upstream().await;
    let url = format!("http://{}", up.addr);
    let s = TestServer::start_with(move |c| {
        c.production.upstream = opale_apim::config::UpstreamUrl(url.parse().unwrap());
        c.production.upstream_timeout_ms = 1000;
    })
    .await;
    let c = s
        .client_with(
            Production,
            json!([{"scope": "declarations", "years": ["2020..2024"]}]),
            50,
        )
        .await;
    let t = s.token(Production, &c.cert, &c.id).await;
    let r = call(&s, Production, &c, &t, &path("declarations", 2024), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["source"], "upstream");
    assert!(
        !r.headers.contains_key("set-cookie"),
        "upstream headers are not passed through"
    );
    assert!(r.headers.contains_key("ratelimit"));
    {
        let seen = up.seen.lock().unwrap();
        let req = seen.last().unwrap();
        assert_eq!(
            req.uri.path(),
            format!("/opale/v1/entreprises/{SIREN}/declarations")
        );
        assert_eq!(req.uri.query(), Some("annee=2024"));
        assert_eq!(
            req.headers["x-correlation-id"],
            r.headers["x-correlation-id"]
        );
        assert!(
            !req.headers.contains_key("authorization"),
            "the partner's token must not leak"
        );
    }
    let r = call(&s, Production, &c, &t, &path("declarations", 2022), &[]).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (502, "910602"));
    let started = std::time::Instant::now();
    let r = call(&s, Production, &c, &t, &path("declarations", 2021), &[]).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (504, "910601"));
    assert!(started.elapsed() < Duration::from_millis(2500));
}

async fn post_claims(s: &TestServer, c: &Client, t: &str, key: &str, body: &Value) -> Reply {
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let cid = correlation_id();
    let bearer = format!("Bearer {t}");
    let h = [
        ("x-correlation-id", cid.as_str()),
        ("authorization", bearer.as_str()),
        ("idempotency-key", key),
        PROBLEM,
    ];
    conn.send(
        Method::POST,
        &format!("/opale/v1/entreprises/{SIREN}/creances"),
        &h,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn claims_transmission_is_validated_idempotent_and_durable() {
    let s = TestServer::start().await;
    let grants = json!([{"scope": "creances", "years": [2024]}, {"scope": "creances_transmission", "years": [2024]}]);
    let c = s.client_with(Sandbox, grants, 50).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let body = json!({"annee": 2024, "creances": [
        {"reference": "CR-2024-001", "montant": "1520.40", "date_echeance": "2024-09-30", "impot": "TVA"}
    ]});
    let first = post_claims(&s, &c, &t, "k-1", &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = post_claims(&s, &c, &t, "k-1", &body).await;
    assert_eq!((again.status.as_u16(), &again.raw), (201, &first.raw));
    let mut other = body.clone();
    other["creances"][0]["montant"] = json!("1.00");
    expect(
        &post_claims(&s, &c, &t, "k-1", &other).await,
        409,
        "910004",
        "hygiene",
    );
    let mut bad = body.clone();
    bad["creances"][0]["date_echeance"] = json!("2024-02-30");
    let r = post_claims(&s, &c, &t, "k-2", &bad).await;
    expect(&r, 400, "910003", "hygiene");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("creances[0].date_echeance")
    );
    // The body is judged only after authentication (steps 1–4).
    let r = post_claims(&s, &c, "not-a-token", "k-2", &bad).await;
    expect(&r, 401, "900901", "token");
    let mut y = body.clone();
    y["annee"] = json!(2019);
    expect(
        &post_claims(&s, &c, &t, "k-3", &y).await,
        403,
        "910500",
        "rights",
    );

    let s = s.restart().await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let r = call(&s, Sandbox, &c, &t, &path("creances", 2024), &[]).await;
    assert_eq!(r.status, 200);
    let tx = r.body["transmises"]
        .as_array()
        .expect("transmitted claims are listed");
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0]["id"], first.body["id"]);
    assert_eq!(tx[0]["creances"][0]["reference"], "CR-2024-001");
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "siren, annee, creances, transmises");
    assert!(
        String::from_utf8_lossy(&r.raw)
            .starts_with(&format!("{{\"siren\":\"{SIREN}\",\"annee\":2024,"))
    );
    // Still idempotent after the restart.
    let again = post_claims(&s, &c, &t, "k-1", &body).await;
    assert_eq!(again.raw, first.raw);
    // Without the transmission scope in the grant: 900910.
    let reader = s
        .client_with(Sandbox, json!([{"scope": "creances", "years": [2024]}]), 50)
        .await;
    let rt = s.token(Sandbox, &reader.cert, &reader.id).await;
    expect(
        &post_claims(&s, &reader, &rt, "k-9", &body).await,
        403,
        "900910",
        "rights",
    );
}

/// An HTTPS upstream on 127.0.0.1:0 that requires a client certificate
/// issued by its own CA; answers with the subject it saw.
async fn mtls_upstream(dir: &std::path::Path) -> std::net::SocketAddr {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "Upstream CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |sans: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        (p.signed_by(&key, &issuer).unwrap(), key)
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()], "upstream");
    let (client_cert, client_key) = leaf(vec![], "opale-gateway");
    std::fs::write(dir.join("up-ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("up-client.pem"), client_cert.pem()).unwrap();
    std::fs::write(dir.join("up-client.key"), client_key.serialize_pem()).unwrap();
    let provider = opale_apim::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let subject = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.len())
                    .unwrap_or(0);
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| async move {
                    let body = format!(r#"{{"source":"mtls-upstream","client_certs":{subject}}}"#);
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    resp.headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, std::convert::Infallible>(resp)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn production_reaches_an_https_upstream_with_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let up = mtls_upstream(dir.path()).await;
    let d = dir.path().to_path_buf();
    let s = TestServer::start_with(move |c| {
        c.production.upstream = opale_apim::config::UpstreamUrl(
            format!("https://localhost:{}", up.port()).parse().unwrap(),
        );
        c.production.upstream_ca = Some(d.join("up-ca.pem"));
        c.production.upstream_cert = Some(d.join("up-client.pem"));
        c.production.upstream_key = Some(d.join("up-client.key"));
    })
    .await;
    let c = s.client(Production).await;
    let t = s.token(Production, &c.cert, &c.id).await;
    let r = call(&s, Production, &c, &t, &path("declarations", 2024), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["source"], "mtls-upstream");
    assert_eq!(
        r.body["client_certs"], 1,
        "the gateway presented its upstream client certificate"
    );
}
