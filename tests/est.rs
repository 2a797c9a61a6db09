//! Certificate renewal by machine (EST, RFC 7030; docs/contract.md §12) on
//! a real server, driven by real `openssl` and `curl` processes exactly as
//! a partner's cron runs them (docs/partners.md): the CA fetched by
//! `cacerts`, a renewal whose certificate gets a token and a 200 data call
//! while the old one keeps working, and every refusal (another subject,
//! no or an unregistered or a revoked certificate, the fourth active
//! certificate).
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::{Production, Sandbox};
use serde_json::Value;
use std::path::Path;
use support::TestServer;
use support::est::{base, renew, sh, workdir};

const DATA: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// A simplereenroll with `client` (curl options naming the certificate,
/// or none) and a CSR under `subj`: the status and the body.
async fn attempt(dir: &Path, url: &str, client: &str, subj: &str) -> (u16, String) {
    let out = sh(
        dir,
        &format!(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out try.key\n\
             openssl req -new -key try.key -subj '{subj}' -outform DER | base64 \\\n\
             | curl -sS --cacert ca.pem {client} --data-binary @- -o body -w '%{{http_code}}' \\\n\
               -H 'Content-Type: application/pkcs10' {url}/.well-known/est/simplereenroll"
        ),
    )
    .await;
    let body = std::fs::read_to_string(dir.join("body")).unwrap_or_default();
    (out.trim().parse().unwrap(), body)
}

const OLD: &str = "--cert old.pem --key old.key";

#[tokio::test]
async fn cacerts_is_each_environment_ca_as_pkcs7() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(s.pki.files.ca_pem(), dir.path().join("ca.pem")).unwrap();
    for env in [Sandbox, Production] {
        let url = base(&s, env);
        let head = sh(
            dir.path(),
            &format!("curl -sS --cacert ca.pem -o cacerts.b64 -w '%{{http_code}} %{{content_type}}' {url}/.well-known/est/cacerts"),
        )
        .await;
        assert_eq!(head, "200 application/pkcs7-mime", "{env}");
        let pem = sh(
            dir.path(),
            "base64 -d cacerts.b64 | openssl pkcs7 -inform DER -print_certs",
        )
        .await;
        let got = opale_apim::pki::parse_certificate_chain(&pem).unwrap();
        let ca = std::fs::read_to_string(s.pki.files.env_ca_pem(env)).unwrap();
        let want = opale_apim::pki::parse_certificate_chain(&ca).unwrap();
        assert_eq!(got, want, "{env}: cacerts is not the {env} CA");
    }
}

#[tokio::test]
async fn a_cron_renewal_works_and_the_old_certificate_still_does() {
    let s = TestServer::start().await;
    let (client_id, old) = s.provisioned(Sandbox).await;
    let dir = workdir(&s, &old);
    let new = renew(dir.path(), &base(&s, Sandbox), "/CN=app-test").await;
    assert_ne!(new.thumbprint, old.thumbprint);
    let pem = sh(
        dir.path(),
        "openssl x509 -in new.pem -noout -subject -issuer",
    )
    .await;
    assert!(pem.contains("subject=CN = app-test"), "{pem}");
    assert!(pem.contains("sandbox partner CA"), "{pem}");

    for who in [&new, &old] {
        let token = s.token(Sandbox, who, &client_id).await;
        let r = s.data_call_with_token(Sandbox, who, &token, DATA).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let list = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/applications/{client_id}/certificates"),
            None,
        )
        .await;
    let certs = list.body.as_array().unwrap();
    assert_eq!(certs.len(), 2, "{:?}", list.body);
    let renewed = certs
        .iter()
        .find(|c| c["thumbprint"] == new.thumbprint.as_str())
        .unwrap();
    assert_eq!(renewed["status"], "active");
    assert_eq!(renewed["origin"], "issued");
    let traced = renewal_record(&s).await;
    assert_eq!(traced["status"], 200, "{traced}");
    assert_eq!(traced["actor"]["kind"], "partner", "{traced}");
    assert_eq!(traced["actor"]["thumbprint"], old.thumbprint.as_str());
    assert_eq!(traced["client_id"], client_id.as_str());
    assert_eq!(
        traced["admin"]["after"]["thumbprint"],
        new.thumbprint.as_str()
    );
}

/// The trail's record of the first renewal.
async fn renewal_record(s: &TestServer) -> Value {
    s.trail_record("the renewal", |v| {
        v.to_string().contains("simplereenroll") && v.to_string().contains("\"after\"")
    })
    .await
}

#[tokio::test]
async fn another_subject_is_400_and_the_caller_must_be_registered() {
    let s = TestServer::start().await;
    let (client_id, old) = s.provisioned(Production).await;
    let dir = workdir(&s, &old);
    let url = base(&s, Production);

    let (status, body) = attempt(dir.path(), &url, OLD, "/CN=someone-else").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("subject-mismatch"), "{body}");
    assert!(body.contains("CN=someone-else"), "{body}");

    let (status, body) = attempt(dir.path(), &url, "", "/CN=app-test").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("910100"), "{body}");

    let stranger = s.pki.partner(Production, "app-test");
    std::fs::write(dir.path().join("stranger.pem"), &stranger.cert_pem).unwrap();
    std::fs::write(dir.path().join("stranger.key"), &stranger.key_pem).unwrap();
    let other = "--cert stranger.pem --key stranger.key";
    let (status, body) = attempt(dir.path(), &url, other, "/CN=app-test").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("910103"), "{body}");

    // A sandbox listener does not renew a production certificate.
    let (status, body) = attempt(dir.path(), &base(&s, Sandbox), OLD, "/CN=app-test").await;
    assert_eq!(status, 401, "{body}");

    let path = format!(
        "/admin/v1/applications/{client_id}/certificates/{}",
        old.thumbprint
    );
    assert_eq!(s.admin_call(Method::DELETE, &path, None).await.status, 204);
    let (status, body) = attempt(dir.path(), &url, OLD, "/CN=app-test").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("910102"), "{body}");
}

#[tokio::test]
async fn the_fourth_active_certificate_is_409() {
    let s = TestServer::start().await;
    let (client_id, old) = s.provisioned(Sandbox).await;
    let dir = workdir(&s, &old);
    let url = base(&s, Sandbox);
    for _ in 0..2 {
        renew(dir.path(), &url, "/CN=app-test").await;
    }
    let (status, body) = attempt(dir.path(), &url, OLD, "/CN=app-test").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("certificate-limit"), "{body}");
    let list = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/applications/{client_id}/certificates"),
            None,
        )
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 3, "{:?}", list.body);
}
