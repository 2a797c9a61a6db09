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
use opale_apim::domain::Environment::{self, Production, Sandbox};
use opale_apim::domain::Thumbprint;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::TestServer;
use support::pki::Identity;

const DATA: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// Runs `script` with bash (`pipefail`) in `dir` off the test's runtime
/// (which also drives the server); its stdout, or a panic with its stderr.
async fn sh(dir: &Path, script: &str) -> String {
    let (dir, script) = (dir.to_path_buf(), script.to_owned());
    tokio::task::spawn_blocking(move || run(&dir, &script))
        .await
        .unwrap()
}

fn run(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The listener's base URL (the server certificate names `localhost`).
fn base(s: &TestServer, env: Environment) -> String {
    format!("https://localhost:{}", s.env_addr(env).port())
}

/// A partner's working directory: the gateway's root CA (to trust the
/// server) and the current certificate and key as `old.pem` / `old.key`.
fn workdir(s: &TestServer, current: &Identity) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(s.pki.files.ca_pem(), dir.path().join("ca.pem")).unwrap();
    std::fs::write(dir.path().join("old.pem"), &current.cert_pem).unwrap();
    std::fs::write(dir.path().join("old.key"), &current.key_pem).unwrap();
    dir
}

/// The partner's cron, word for word (docs/partners.md): a new key, a CSR
/// under `subj`, posted with the current certificate; the new certificate
/// in `new.pem`, its key in `new.key`.
async fn renew(dir: &Path, url: &str, subj: &str) -> Identity {
    sh(
        dir,
        &format!(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out new.key\n\
             SUBJ='{subj}'\n\
             openssl req -new -key new.key -subj \"$SUBJ\" -outform DER | base64 \\\n\
             | curl -sS --fail --cacert ca.pem --cert old.pem --key old.key --data-binary @- \\\n\
               -H 'Content-Type: application/pkcs10' {url}/.well-known/est/simplereenroll \\\n\
             | base64 -d | openssl pkcs7 -inform DER -print_certs > new.pem"
        ),
    )
    .await;
    identity(dir, "new")
}

/// The certificate and key `{name}.pem` / `{name}.key` in `dir`.
fn identity(dir: &Path, name: &str) -> Identity {
    let cert_pem = std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap();
    let key_pem = std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap();
    let der = opale_apim::pki::parse_certificate_chain(&cert_pem).unwrap();
    Identity {
        thumbprint: Thumbprint::of_der(&der[0]).to_string(),
        cert_pem,
        key_pem,
        serial: Vec::new(),
    }
}

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

/// The trail's record of the first renewal (the trail is written
/// asynchronously: polled for a few seconds).
async fn renewal_record(s: &TestServer) -> Value {
    for _ in 0..50 {
        let r = s
            .admin_call(Method::GET, "/admin/v1/trace/export", None)
            .await;
        let found = String::from_utf8_lossy(&r.raw)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| {
                v.to_string().contains("simplereenroll") && v.to_string().contains("\"after\"")
            });
        if let Some(v) = found {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no trace record of the renewal");
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
