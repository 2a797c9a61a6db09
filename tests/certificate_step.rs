//! docs/contract.md §2 step 1 over real mTLS: each certificate code, on both
//! environment listeners, the health route, revocation effective on an
//! already-open connection, CRLs, and hard rejection at the handshake.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::{Production, Sandbox};
use rustls::AlertDescription;
use support::handshake::{self, Outcome};
use support::pki::TestPki;
use support::{TestServer, correlation_id};
use time::{Duration, OffsetDateTime};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

#[tokio::test]
async fn health_route_needs_no_certificate() {
    let s = TestServer::start().await;
    for env in [Sandbox, Production] {
        let mut c = s.connect(s.env_addr(env), None).await;
        let r = c.send(Method::GET, "/opale/v1/etatSante", &[], None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["statut"], "UP");
    }
}

#[tokio::test]
async fn no_certificate_is_910100_on_both_environments() {
    let s = TestServer::start().await;
    for env in [Sandbox, Production] {
        let r = s.data_call(env, None, PATH).await;
        assert_eq!(r.status, 401, "{env}: {:?}", r.body);
        assert_eq!(r.code(), "910100");
    }
}

#[tokio::test]
async fn untrusted_expired_and_not_yet_valid_are_910101() {
    let s = TestServer::start().await;
    let now = OffsetDateTime::now_utc();
    let rogue = TestPki::untrusted("rogue");
    let expired = s.pki.partner_valid(
        Sandbox,
        "old",
        now - Duration::days(60),
        now - Duration::days(1),
    );
    let future = s.pki.partner_valid(
        Sandbox,
        "new",
        now + Duration::days(1),
        now + Duration::days(60),
    );
    for (id, word) in [
        (&rogue, "trusted"),
        (&expired, "expired"),
        (&future, "not yet valid"),
    ] {
        let r = s.data_call(Sandbox, Some(id), PATH).await;
        assert_eq!(r.status, 401, "{word}: {:?}", r.body);
        assert_eq!(r.code(), "910101", "{word}");
        let msg = r.body["erreur"]["message"].as_str().unwrap();
        assert!(msg.contains(word), "{word}: {msg}");
    }
    // A sandbox certificate is not trusted by the production listener.
    let (_, sandbox_id) = s.provisioned(Sandbox).await;
    let r = s.data_call(Production, Some(&sandbox_id), PATH).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (401, "910101"));
}

#[tokio::test]
async fn valid_but_unregistered_is_910103_and_registered_passes_step_1() {
    let s = TestServer::start().await;
    for env in [Sandbox, Production] {
        let stranger = s.pki.partner(env, "stranger");
        let r = s.data_call(env, Some(&stranger), PATH).await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (401, "910103"),
            "{env}"
        );

        let (_, id) = s.provisioned(env).await;
        let r = s.data_call(env, Some(&id), PATH).await;
        // Step 1 passed: the next control (token) is the one that refuses.
        assert_eq!(r.status, 401, "{env}: {:?}", r.body);
        assert_eq!(r.code(), "900902", "{env}");
    }
}

#[tokio::test]
async fn revocation_applies_to_the_next_request_on_an_open_connection() {
    let s = TestServer::start().await;
    let (client_id, id) = s.provisioned(Sandbox).await;
    let mut conn = s.connect(s.sandbox, Some(&id)).await;
    let cid = correlation_id();
    let h = [
        ("x-correlation-id", cid.as_str()),
        ("accept", "application/problem+json"),
    ];
    let r = conn.send(Method::GET, PATH, &h, None).await;
    assert_eq!(r.code(), "900902", "step 1 passes");

    let del = s
        .admin_call(
            Method::DELETE,
            &format!(
                "/admin/v1/applications/{client_id}/certificates/{}",
                id.thumbprint
            ),
            None,
        )
        .await;
    assert_eq!(del.status, 204);

    let r = conn.send(Method::GET, PATH, &h, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "910102");
    assert_eq!(r.body["control"], "certificate");
    assert_eq!(r.body["correlation_id"], cid.as_str());
    assert_eq!(r.headers["x-correlation-id"], cid.as_str());
    // And on a new connection.
    let r = s.data_call(Sandbox, Some(&id), PATH).await;
    assert_eq!(r.code(), "910102");
}

#[tokio::test]
async fn certificate_listed_in_a_configured_crl_is_910102() {
    // The CRL must exist before the server starts: make the PKI first.
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::init(&tmp.path().join("certs"));
    let revoked = pki.partner(Sandbox, "revoked-by-crl");
    let crl_path = pki.files.dir().join("sandbox.crl.pem");
    std::fs::write(&crl_path, pki.crl(Sandbox, &[&revoked])).unwrap();
    let mut config = opale_apim::config::Config {
        data_dir: tmp.path().join("data"),
        certs_dir: tmp.path().join("certs"),
        ..Default::default()
    };
    config.sandbox.crls = vec![crl_path];
    let (app, _) = opale_apim::app::App::build(config).await.unwrap();
    let planes = app.planes();
    let bind = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let listeners = opale_apim::server::Listeners {
        sandbox: bind().await,
        production: bind().await,
        admin: bind().await,
    };
    let addr = listeners.sandbox.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(opale_apim::server::run_workers(
        (planes.server, planes.tasks),
        listeners,
        support::WORKERS,
        async {
            let _ = stopped.await;
        },
    ));
    let cfg = support::client_config(&pki.files.ca_pem(), Some(&revoked));
    let mut conn = support::Conn::open(addr, cfg).await.unwrap();
    let cid = correlation_id();
    let r = conn
        .send(Method::GET, PATH, &[("x-correlation-id", &cid)], None)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (401, "910102"),
        "{:?}",
        r.body
    );

    // A certificate not on the CRL is judged on registration as usual.
    let fine = pki.partner(Sandbox, "fine");
    let cfg = support::client_config(&pki.files.ca_pem(), Some(&fine));
    let mut conn = support::Conn::open(addr, cfg).await.unwrap();
    let r = conn
        .send(Method::GET, PATH, &[("x-correlation-id", &cid)], None)
        .await;
    assert_eq!(r.code(), "910103");
    drop(conn);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn reject_at_handshake_refuses_missing_or_untrusted_certificates_in_tls() {
    let s = TestServer::start_with(|c| c.tls.reject_at_handshake = true).await;
    let ca = s.pki.files.ca_pem();
    // Refused by an alert within 5 s: a hang or an HTTP answer is a failure.
    let config = support::client_config(&ca, None);
    let outcome = handshake::attempt(s.sandbox, config, std::time::Duration::from_secs(5)).await;
    assert_eq!(
        outcome,
        Outcome::Alert(AlertDescription::CertificateRequired),
        "a handshake without certificate must be refused"
    );
    // A registered certificate still works.
    let (_, id) = s.provisioned(Sandbox).await;
    let r = s.data_call(Sandbox, Some(&id), PATH).await;
    assert_eq!(r.code(), "900902", "step 1 passes");
}

#[tokio::test]
async fn hygiene_comes_before_the_certificate_step() {
    let s = TestServer::start().await;
    let mut c = s.connect(s.sandbox, None).await;
    let r = c.send(Method::GET, PATH, &[], None).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (400, "910000"));
    assert!(r.headers.contains_key("x-correlation-id"));
    let cid = correlation_id();
    let h = [("x-correlation-id", cid.as_str())];
    let r = c
        .send(
            Method::GET,
            "/opale/v1/entreprises/732829321/declarations",
            &h,
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (400, "910001"));
    let r = c
        .send(
            Method::GET,
            "/opale/v1/entreprises/732829320/declarations?annee=24",
            &h,
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (400, "910002"));
}
